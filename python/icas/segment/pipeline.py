"""The segmenting pipeline: :class:`Segmentator` paints a folder of images.

``Segmentator(folder, method, ...)()`` checks every parameter, lists the
folder, opens the painter's windows (pre-segmenting the images around the
current one in the background) and returns a :class:`SegmentResult` once the
person quits. ``icas-segment FOLDER`` is this class with its options as flags
(``thread_range`` -> ``--thread-range``).

Parameter errors are :class:`ParameterError` (a ValueError) raised before
anything is read; their messages name the parameters as Python does
(``method=sam needs checkpoint=PATH``) and :meth:`ParameterError.render`
spells them as the command line does (``--method sam needs --checkpoint PATH``).
"""

from __future__ import annotations

import logging
import numbers
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from icas.segment._params import Param, resolve
from icas.segment.export import _mask_pattern, check_formats, output_stems
from icas.segment.methods import METHODS, check_params

log = logging.getLogger("icas")

#: Methods whose labels come from a window (GrabCut) or a model (SAM).
INTERACTIVE = ("grabcut", "sam")
SAM_MODES = ("prompt", "automatic")
DEVICES = ("cpu", "cuda", "auto")

_GRABCUT = {"seed": Param(0, "int", low=0, high=2**31 - 1)}
# ``<name>`` or ``<name=value>``: a parameter reference in a message template.
_REF = re.compile(r"<(\w+)(?:=([^<>]*))?>")


class ParameterError(ValueError):
    """A parameter (or a combination) the pipeline cannot take.

    ``template`` names parameters as ``<name>`` or ``<name=value>`` (unless
    ``refs`` is False: a message to show as it is); ``str(exc)`` spells them as
    in Python (``name``, ``name=value``) and :meth:`render` as the caller
    likes (the command line: ``--name value``).
    """

    def __init__(self, template: str, *, refs: bool = True):
        self.template = template
        self.refs = refs
        super().__init__(self.render(_python_spelling))

    def render(self, spell: Callable[[str, str | None], str]) -> str:
        """The message with each reference replaced by ``spell(name, value or None)``."""
        if not self.refs:
            return self.template
        return _REF.sub(lambda m: spell(m.group(1), m.group(2)), self.template)


def _python_spelling(name: str, value: str | None) -> str:
    return name if value is None else f"{name}={value}"


def method_parameters() -> dict[str, dict]:
    """``{method: {parameter: default}}`` for every method the pipeline offers,
    the interactive ones (``grabcut``, ``sam``: its mask generator) included."""
    from icas.segment.sam import _AUTOMATIC

    out = {name: dict(params) for name, params in METHODS.items()}
    out["grabcut"] = {name: spec.default for name, spec in _GRABCUT.items()}
    out["sam"] = {name: spec.default for name, spec in _AUTOMATIC.items()}
    return out


def resolve_params(method: str, given: dict) -> dict:
    """Every parameter of ``method``: its defaults overridden by ``given``, each checked.

    Raises
    ------
    ParameterError
        For an unknown method, a parameter ``method`` does not have, or a bad value.
    """
    declared = method_parameters()
    if method not in declared:
        raise ParameterError(f"unknown <method={method}>; expected one of: " + ", ".join(declared))
    wrong = [n for n in given if n not in declared[method]]
    if wrong:
        names = ", ".join(f"<{n}>" for n in declared[method]) or "none"
        raise ParameterError(
            f"<{wrong[0]}> is not a parameter of <method={method}>; its parameters: {names}"
        )
    try:
        if method in METHODS:
            return check_params(method, **given)
        if method == "sam":
            from icas.segment.sam import _AUTOMATIC

            return resolve("sam", _AUTOMATIC, given)
        return resolve("grabcut", _GRABCUT, given)
    except (TypeError, ValueError) as exc:
        raise ParameterError(str(exc), refs=False) from None


@dataclass
class SegmentResult:
    """What a painting session produced.

    Attributes
    ----------
    out_dir : pathlib.Path
        Where the outputs went.
    method : str
        The pre-segmentation method.
    images : list of pathlib.Path
        The folder's images, in painting order.
    files : dict of pathlib.Path to list of pathlib.Path
        For every image saved, the files its last save wrote (masks, and the
        indexed PNG, COCO and labelme files when exported); an empty list when
        it was saved with nothing painted.
    skipped : list of (pathlib.Path, str)
        Images that could not be read or segmented, with the reason.
    status : int
        0 when the person quit, 1 when no image could be opened.
    """

    out_dir: Path
    method: str
    images: list[Path]
    files: dict[Path, list[Path]] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    status: int = 0

    @property
    def saved(self) -> list[Path]:
        """The images saved, in painting order."""
        return [p for p in self.images if p in self.files]

    @property
    def masks(self) -> dict[Path, list[Path]]:
        """``{image: its mask PNGs}`` for every image saved (one per colour painted)."""
        stems = dict(zip(self.images, output_stems(self.images), strict=True))
        return {
            image: [f for f in files if _mask_pattern(stems[image]).fullmatch(f.name)]
            for image, files in self.files.items()
        }


def _integer(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ParameterError(f"<{name}> must be an integer >= {low}, got {value!r}")
    return int(value)


class Segmentator:
    """Paint the images of a folder into per-colour masks, one image after another.

    Parameters mirror the original tool and ``icas-segment`` (each keyword is a
    flag there: ``thread_range`` -> ``--thread-range``).

    Parameters
    ----------
    images_folder_path : str or os.PathLike
        The folder of images.
    method : str, default "superpixel"
        Pre-segmentation: one of :data:`~icas.segment.METHODS`, ``"grabcut"``
        (labels drawn in the GrabCut windows) or ``"sam"`` (``icas[sam]``).
    out : str or os.PathLike, optional
        Output folder (default ``<folder>_segmented`` beside the folder).
    overwrite : bool, default False
        Replace outputs saved before (saving refuses otherwise, and says so).
    templates : path, sequence of paths or TemplateSet, optional
        Template folders for the ``t`` key, each holding ``templates/`` and
        ``segments/`` (``attentions/`` and ``masks/`` optional).
    template_threshold : float, optional
        Paint every template match with error <= this; None: each template's best.
    export : sequence of str, default ("masks",)
        Output formats: masks, indexed, coco, labelme.
    thread_range : int, default 2
        Images pre-segmented ahead on each side of the current one.
    workers : int, default 2
        Threads pre-segmenting.
    alpha : float, default 0.5
        Opacity of the paint in the image window.
    max_window : (int, int), default (1600, 1000)
        Largest window (W, H); larger images are shown scaled down.
    checkpoint : str or os.PathLike, optional
        Local path of the SAM weights (required with ``method="sam"``; never downloaded).
    model_type : {"vit_b", "vit_l", "vit_h"}, default "vit_b"
    device : {"cpu", "cuda", "auto"}, default "cpu"
        Where SAM runs.
    sam_cache_dir : str or os.PathLike, optional
        Keep SAM image embeddings on disk there (reopening an image skips the encoder).
    sam_mode : {"prompt", "automatic"}, default "prompt"
        ``prompt``: points and boxes in a window; ``automatic``: SAM's mask generator
        (its parameters, e.g. ``points_per_side``, go in ``method_params``).
    **method_params
        Parameters of the method (``region_size``, ``k``, ``sigmaColor``...).

    Notes
    -----
    Parameters are stored as given and checked by :meth:`check`, which
    :meth:`process` and :meth:`presegment` call before reading anything.
    """

    def __init__(
        self,
        images_folder_path,
        method="superpixel",
        *,
        out=None,
        overwrite=False,
        templates=None,
        template_threshold=None,
        export=("masks",),
        thread_range=2,
        workers=2,
        alpha=0.5,
        max_window=(1600, 1000),
        checkpoint=None,
        model_type="vit_b",
        device="cpu",
        sam_cache_dir=None,
        sam_mode="prompt",
        **method_params,
    ):
        self.images_folder_path = images_folder_path
        self.method = method
        self.out = out
        self.overwrite = overwrite
        self.templates = templates
        self.template_threshold = template_threshold
        self.export = export
        self.thread_range = thread_range
        self.workers = workers
        self.alpha = alpha
        self.max_window = max_window
        self.checkpoint = checkpoint
        self.model_type = model_type
        self.device = device
        self.sam_cache_dir = sam_cache_dir
        self.sam_mode = sam_mode
        self.method_params = method_params

    def __call__(self) -> SegmentResult:
        return self.process()

    # ------------------------------------------------------------------ checks
    def check(self) -> dict:
        """Check every parameter without reading any file; returns the method's
        parameters (defaults filled in).

        Raises
        ------
        ParameterError
            Naming the parameter that is wrong.
        """
        _integer(self.thread_range, "thread_range", 0)
        _integer(self.workers, "workers", 1)
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
            raise ParameterError(f"<alpha> must be in [0, 1], got {alpha}")
        try:
            w, h = self.max_window
            small = min(w, h) < 64
        except (TypeError, ValueError):
            small = True
        if small:
            raise ParameterError("<max_window> needs W and H of at least 64")
        try:
            check_formats(self.export)
        except ValueError as exc:
            raise ParameterError(str(exc), refs=False) from None
        if self.template_threshold is not None and (
            isinstance(self.template_threshold, bool)
            or not isinstance(self.template_threshold, numbers.Real)
        ):
            raise ParameterError(
                f"<template_threshold> must be a number or None, got {self.template_threshold!r}"
            )
        method = self.method.lower() if isinstance(self.method, str) else self.method
        if not isinstance(method, str):
            raise ParameterError(f"<method> must be a string, got {method!r}")
        params = resolve_params(method, self.method_params)
        if method == "sam":
            from icas.segment.sam import MODEL_TYPES

            for name, value, allowed in (
                ("model_type", self.model_type, MODEL_TYPES),
                ("device", self.device, DEVICES),
                ("sam_mode", self.sam_mode, SAM_MODES),
            ):
                if value not in allowed:
                    raise ParameterError(
                        f"<{name}> must be one of {', '.join(allowed)}, got {value!r}"
                    )
            if self.checkpoint is None:
                raise ParameterError(
                    "<method=sam> needs <checkpoint=PATH> (weights are never downloaded)"
                )
            if self.sam_mode == "prompt" and self.method_params:
                raise ParameterError("SAM mask generator parameters need <sam_mode=automatic>")
        elif self.checkpoint is not None or self.sam_cache_dir is not None:
            raise ParameterError("<checkpoint> and <sam_cache_dir> go with <method=sam>")
        return params

    def _prepare(self) -> tuple[str, dict]:
        """:meth:`check`, then what can fail before the model loads (SAM's
        checkpoint and extra), so a wrong path fails at once."""
        params = self.check()
        method = self.method.lower()
        if method == "sam":
            from icas.segment.sam import _require, check_checkpoint

            check_checkpoint(self.model_type, self.checkpoint)
            _require()
        return method, params

    def _templates(self):
        from icas.segment.templates import TemplateSet

        if self.templates is None or isinstance(self.templates, TemplateSet):
            return self.templates
        roots = (
            [self.templates]
            if isinstance(self.templates, (str, os.PathLike))
            else list(self.templates)
        )
        found = None
        for i, root in enumerate(roots):
            more = TemplateSet.from_root(root, prefix=f"{i}:" if len(roots) > 1 else "")
            found = more if found is None else found + more
        return found

    def out_dir(self) -> Path:
        """The output folder: ``out``, or ``<folder>_segmented`` beside the folder."""
        if self.out is not None:
            return Path(self.out)
        folder = Path(self.images_folder_path).resolve()
        return folder.parent / f"{folder.name}_segmented"

    # ------------------------------------------------------------------ work
    def _sam_session(self):
        """The SAM model, loaded once per Segmentator (and again if its
        parameters changed since)."""
        from icas.segment.sam import SamSession

        key = (self.model_type, self.checkpoint, self.device, self.sam_cache_dir)
        cached = getattr(self, "_sam", None)
        if cached is None or cached[0] != key:
            session = SamSession(
                model_type=self.model_type,
                checkpoint=self.checkpoint,
                device=self.device,
                cache_dir=self.sam_cache_dir,
            )
            self._sam = cached = (key, session)
        return cached[1]

    def _jobs(self, method: str, params: dict):
        """``(job(path) -> Loaded, tool_factory or None, workers)`` for the method."""
        from icas.io import read_image
        from icas.segment.methods import segment
        from icas.segment.prefetch import Loaded

        if method in METHODS:

            def job(path):
                image = read_image(path)
                return Loaded(path, image, segment(image, method, **params))

            return job, None, self.workers
        if method == "grabcut":
            from icas.segment.grabcut import GrabCutSession
            from icas.segment.interactive import GrabCutTool

            def job(path):
                return Loaded(path, read_image(path), None)

            seed = params["seed"]
            return job, lambda image: GrabCutTool(GrabCutSession(image, seed=seed)), self.workers
        session = self._sam_session()
        # One SAM model serves every thread; one worker keeps memory and CPU for the person.
        if self.sam_mode == "automatic":

            def job(path):
                image = read_image(path)
                return Loaded(path, image, session.automatic(image, **params))

            return job, None, 1
        from icas.segment.interactive import SamTool

        def job(path):
            image = read_image(path)
            session.embedding(image)  # the SAM window then opens without encoding
            return Loaded(path, image, None)

        return job, lambda image: SamTool(session, image), 1

    def presegment(self, path) -> np.ndarray:
        """The labels the painter starts from on one image, without a window.

        Parameters
        ----------
        path : str or os.PathLike
            An image file.

        Returns
        -------
        ndarray of shape (h, w), int32
            Segments ``1..n``, edge pixels 0.

        Raises
        ------
        ParameterError
            For bad parameters, or an interactive method (GrabCut, prompted
            SAM: their labels are drawn in a window).
        """
        from icas.io import read_image
        from icas.segment.methods import segment

        method, params = self._prepare()
        if method == "grabcut" or (method == "sam" and self.sam_mode == "prompt"):
            raise ParameterError(
                f"<method={method}> draws its labels in a window; presegment needs an "
                "automatic method (or <sam_mode=automatic>)"
            )
        image = read_image(path)
        if method == "sam":
            return self._sam_session().automatic(image, **params)
        return segment(image, method, **params)

    def process(
        self,
        *,
        driver: Callable | None = None,
        on_error: Callable[[Path, str], None] | None = None,
    ) -> SegmentResult:
        """Paint the folder: open the windows and return when the person quits.

        Parameters
        ----------
        driver : callable, optional
            ``driver(painter, tool_factory) -> int`` drives the
            :class:`~icas.segment.Painter` instead of the OpenCV windows
            (scripted painting, tests): no screen is needed then.
            ``tool_factory(image)`` makes the GrabCut / SAM tool of an image
            without labels (None for automatic methods). Returns the status.
        on_error : callable, optional
            ``on_error(path, reason)`` as soon as an image fails in the
            background (default: a warning on the ``icas`` logger).

        Returns
        -------
        SegmentResult

        Raises
        ------
        ParameterError
            For a bad parameter (before anything is read).
        FileNotFoundError
            For a missing folder, no images, a missing template folder or SAM checkpoint.
        ImportError
            For ``method="sam"`` without ``icas[sam]``.
        icas.segment.windows.NoScreenError
            When no window can be opened here (checked before any window call).
        """
        from icas.io import list_images
        from icas.segment.painter import Painter
        from icas.segment.prefetch import Prefetcher
        from icas.segment.windows import NoScreenError, PainterWindows, screen_problem

        method, params = self._prepare()
        folder = Path(self.images_folder_path)
        paths = list_images(folder)
        if not paths:
            raise FileNotFoundError(f"no images in {folder}")
        out = self.out_dir()
        if out.resolve() == folder.resolve():
            raise ParameterError(
                "<out> must not be <images_folder_path> itself (the masks would be read as images)"
            )
        templates = self._templates()
        if driver is None:
            problem = screen_problem()
            if problem:
                raise NoScreenError(problem)
        job, tool_factory, workers = self._jobs(method, params)
        if on_error is None:

            def on_error(path, reason):
                log.warning("cannot segment %s: %s", path, reason)

        with Prefetcher(
            paths, job, thread_range=self.thread_range, workers=workers, on_error=on_error
        ) as source:
            painter = Painter(
                source,
                out_dir=out,
                export=self.export,
                overwrite=self.overwrite,
                templates=templates,
                template_threshold=self.template_threshold,
                alpha=self.alpha,
            )
            if driver is None:
                windows = PainterWindows(
                    painter, tool_factory=tool_factory, max_size=tuple(self.max_window)
                )
                status = windows.run()
            else:
                status = driver(painter, tool_factory)
        return SegmentResult(
            out_dir=out,
            method=method,
            images=list(painter.paths),
            files={painter.paths[i]: list(f) for i, f in sorted(painter.files.items())},
            skipped=[(Path(p), r) for p, r in painter.skipped.items()],
            status=int(status),
        )
