"""Command line: ``icas-segment`` (also ``python -m icas.segment``).

``icas-segment FOLDER --method superpixel [method parameters]`` opens the
painter on the images of FOLDER; ``icas-segment --preview IMAGE`` renders
every method on one image. Method parameters are flags named after the API's
parameters in kebab-case (``region_size`` -> ``--region-size``,
``sigmaColor`` -> ``--sigma-color``).

Exit codes: 0 done, 1 runtime error (one line; the traceback with ``-v``),
2 usage error (bad flag or parameter).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import textwrap
from pathlib import Path

from icas.segment._params import Param, resolve
from icas.segment.export import FORMATS
from icas.segment.methods import METHODS, check_params

log = logging.getLogger("icas")

PROG = "icas-segment"
INTERACTIVE = ("grabcut", "sam")


class UsageError(Exception):
    """A bad combination of flags (exit 2)."""


_GRABCUT = {"seed": Param(0, "int", low=0, high=2**31 - 1)}


def _sam_params() -> dict:
    from icas.segment.sam import _AUTOMATIC

    return {name: spec.default for name, spec in _AUTOMATIC.items()}


def _method_params() -> dict[str, dict]:
    """Parameters (name -> default) of every method the command line offers."""
    out = {name: dict(params) for name, params in METHODS.items()}
    out["grabcut"] = {name: spec.default for name, spec in _GRABCUT.items()}
    out["sam"] = _sam_params()
    return out


def _flag(name: str) -> str:
    """``sigmaColor`` -> ``--sigma-color``, ``region_size`` -> ``--region-size``."""
    return "--" + re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", name).lower().replace("_", "-")


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Paint pre-segmented images into per-colour masks, one image after another "
        "(outputs in FOLDER_segmented/), or preview the segmentation methods on one image.",
        epilog="keys in the painter:\n  q quit, n next, p previous, space save and next, z undo, "
        "r reset,\n  d debug views, t template painting\nmouse:\n  left fill, right unfill, "
        "double left/right continuous fill/unfill,\n  middle clicks cut, double middle ends "
        "the cut line",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folder", nargs="?", type=Path, help="folder of images to paint")
    p.add_argument(
        "--preview",
        type=Path,
        metavar="IMAGE",
        help="render every method on IMAGE side by side (a PNG and a window)",
    )
    methods = [*METHODS, *INTERACTIVE]
    p.add_argument(
        "--method",
        choices=methods,
        default="superpixel",
        help="pre-segmentation method (default superpixel)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        metavar="METHOD",
        help="with --preview: the methods to show (default all)",
    )
    p.add_argument(
        "--templates",
        nargs="+",
        type=Path,
        metavar="DIR",
        default=[],
        help="template folders for the t key, each holding templates/ and segments/ "
        "(attentions/ and masks/ optional)",
    )
    p.add_argument(
        "--template-threshold",
        type=float,
        default=None,
        metavar="T",
        help="paint every match with error <= T (default: each template's best match)",
    )
    p.add_argument(
        "--export",
        nargs="+",
        choices=FORMATS,
        default=["masks"],
        metavar="FORMAT",
        help="output formats: " + ", ".join(FORMATS) + " (default masks)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="output folder (default FOLDER_segmented beside "
        "FOLDER); with --preview the PNG (default IMAGE-STEM_preview.png here)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace outputs saved before")
    p.add_argument(
        "--thread-range",
        type=int,
        default=2,
        metavar="N",
        help="pre-segment N images on each side of the current one (default 2)",
    )
    p.add_argument(
        "--workers", type=int, default=2, metavar="N", help="threads pre-segmenting (default 2)"
    )
    p.add_argument("--alpha", type=float, default=0.5, help="opacity of paint (default 0.5)")
    p.add_argument(
        "--max-window",
        type=int,
        nargs=2,
        default=(1600, 1000),
        metavar=("W", "H"),
        help="largest window; larger images are shown scaled (default 1600 1000)",
    )
    p.add_argument(
        "--tile-width",
        type=int,
        default=None,
        metavar="N",
        help="with --preview: width of each tile (default min(image width, 400))",
    )
    p.add_argument("--no-window", action="store_true", help="with --preview: only write the PNG")
    sam = p.add_argument_group("SAM (--method sam; needs icas[sam])")
    sam.add_argument("--checkpoint", type=Path, help="local path of the SAM weights")
    sam.add_argument("--model-type", choices=("vit_b", "vit_l", "vit_h"), default="vit_b")
    sam.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    sam.add_argument(
        "--sam-cache-dir",
        type=Path,
        metavar="DIR",
        help="keep image embeddings on disk in DIR: reopening the images skips the encoder",
    )
    sam.add_argument(
        "--sam-mode",
        choices=("prompt", "automatic"),
        default="prompt",
        help="prompt: points and boxes in a window; automatic: SAM's mask generator",
    )
    lines = []
    seen: dict[str, str] = {}
    for method, names in _method_params().items():
        flags = [
            f"{_flag(n)} ({names[n]:g})"
            if isinstance(names[n], float)
            else f"{_flag(n)} ({names[n]})"
            for n in names
        ]
        lines.append(
            textwrap.fill(
                f"{method}: " + ", ".join(flags),
                76,
                subsequent_indent="  ",
                break_on_hyphens=False,
            )
        )
    params = p.add_argument_group(
        "method parameters (flag (default) per --method)", "\n".join(lines)
    )
    for names in _method_params().values():
        for name in names:
            flag = _flag(name)
            if flag in seen:
                continue
            seen[flag] = name
            params.add_argument(
                flag,
                dest=f"param:{name}",
                type=_value,
                default=None,
                metavar="V",
                help=argparse.SUPPRESS,
            )
    p.add_argument("-v", "--verbose", action="store_true", help="tracebacks on errors")
    return p


def _given_params(args) -> dict:
    return {
        k.split(":", 1)[1]: v
        for k, v in vars(args).items()
        if k.startswith("param:") and v is not None
    }


def _params_for(method: str, given: dict) -> dict:
    """The given parameters checked against ``method`` (UsageError when one does not apply)."""
    declared = _method_params()[method]
    wrong = [n for n in given if n not in declared]
    if wrong:
        raise UsageError(
            f"{_flag(wrong[0])} is not a parameter of --method {method}; its parameters: "
            + (", ".join(_flag(n) for n in declared) or "none")
        )
    try:
        if method in METHODS:
            return check_params(method, **given)
        if method == "sam":
            from icas.segment.sam import _AUTOMATIC

            return resolve("sam", _AUTOMATIC, given)
        return resolve("grabcut", _GRABCUT, given)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


# ---------------------------------------------------------------------- preview


def _preview(args, given: dict) -> int:
    from icas.io import read_image
    from icas.segment.preview import preview, save_png
    from icas.segment.windows import screen_problem, show_picture

    names = list(args.methods or METHODS)
    per_method = {}
    for name, value in given.items():
        users = [m for m in names if name in METHODS[m]]
        if not users:
            raise UsageError(f"{_flag(name)} is not a parameter of any method shown")
        for m in users:
            per_method.setdefault(m, {})[name] = value
    out = args.out or Path(f"{args.preview.stem}_preview.png")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; use --overwrite to replace it")
    image = read_image(args.preview)
    tile = args.tile_width or min(image.shape[1], 400)
    try:
        picture = preview(image, methods=names, tile_width=tile, **per_method)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    save_png(picture, out)
    print(out)
    if not args.no_window:
        problem = screen_problem()
        if problem:
            print(f"{PROG}: {problem}; the preview is only written to {out}", file=sys.stderr)
        else:
            show_picture(picture, title=f"icas preview - {args.preview.name}")
    return 0


# ---------------------------------------------------------------------- painter


def _jobs(args, params: dict, paths):
    """``(job(path) -> Loaded, tool_factory or None, workers)`` for the method."""
    from icas.io import read_image
    from icas.segment.methods import segment
    from icas.segment.prefetch import Loaded

    method = args.method
    if method in METHODS:

        def job(path):
            image = read_image(path)
            return Loaded(path, image, segment(image, method, **params))

        return job, None, args.workers
    if method == "grabcut":
        from icas.segment.grabcut import GrabCutSession
        from icas.segment.interactive import GrabCutTool

        def job(path):
            return Loaded(path, read_image(path), None)

        seed = params["seed"]
        return job, lambda image: GrabCutTool(GrabCutSession(image, seed=seed)), args.workers
    from icas.segment.sam import SamSession

    session = SamSession(
        model_type=args.model_type,
        checkpoint=args.checkpoint,
        device=args.device,
        cache_dir=args.sam_cache_dir,
    )
    # One SAM model serves every thread; one worker keeps memory and CPU for the person.
    if args.sam_mode == "automatic":

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


def _paint(args, given: dict) -> int:
    from icas.io import list_images
    from icas.segment.painter import Painter
    from icas.segment.prefetch import Prefetcher
    from icas.segment.templates import TemplateSet
    from icas.segment.windows import PainterWindows, screen_problem

    if args.methods or args.tile_width or args.no_window:
        raise UsageError("--methods, --tile-width and --no-window go with --preview")
    if args.thread_range < 0 or args.workers < 1:
        raise UsageError("--thread-range must be >= 0 and --workers >= 1")
    if not 0.0 <= args.alpha <= 1.0:
        raise UsageError(f"--alpha must be in [0, 1], got {args.alpha}")
    if min(args.max_window) < 64:
        raise UsageError("--max-window needs W and H of at least 64")
    params = _params_for(args.method, given)
    if args.method == "sam":
        if args.checkpoint is None:
            raise UsageError("--method sam needs --checkpoint PATH (weights are never downloaded)")
        if args.sam_mode == "prompt" and given:
            raise UsageError("SAM mask generator parameters need --sam-mode automatic")
        from icas.segment.sam import _require, check_checkpoint

        # Before the screen and the slow model: a wrong path or a missing extra at once.
        check_checkpoint(args.model_type, args.checkpoint)
        _require()
    elif args.checkpoint is not None or args.sam_cache_dir is not None:
        raise UsageError("--checkpoint and --sam-cache-dir go with --method sam")
    folder = args.folder
    paths = list_images(folder)
    if not paths:
        raise FileNotFoundError(f"no images in {folder}")
    out = args.out or folder.resolve().parent / f"{folder.resolve().name}_segmented"
    if out.resolve() == folder.resolve():
        raise UsageError("--out must not be FOLDER itself (the masks would be read as images)")
    templates = None
    for i, root in enumerate(args.templates):
        more = TemplateSet.from_root(root, prefix=f"{i}:" if len(args.templates) > 1 else "")
        templates = more if templates is None else templates + more
    problem = screen_problem()
    if problem:
        raise RuntimeError(problem)
    job, tool_factory, workers = _jobs(args, params, paths)

    def on_error(path, reason):
        print(f"{PROG}: cannot segment {path}: {reason}", file=sys.stderr, flush=True)

    with Prefetcher(
        paths, job, thread_range=args.thread_range, workers=workers, on_error=on_error
    ) as source:
        painter = Painter(
            source,
            out_dir=out,
            export=args.export,
            overwrite=args.overwrite,
            templates=templates,
            template_threshold=args.template_threshold,
            alpha=args.alpha,
        )
        status = PainterWindows(
            painter, tool_factory=tool_factory, max_size=tuple(args.max_window)
        ).run()
    print(
        f"{len(painter.saved)} of {len(paths)} image(s) saved to {out}; "
        f"{len(painter.skipped)} skipped"
    )
    return status


def main(argv: list[str] | None = None) -> int:
    """Run ``icas-segment`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    given = _given_params(args)
    try:
        if args.folder is None and args.preview is None:
            raise UsageError("give a FOLDER to paint, or --preview IMAGE")
        if args.folder is not None and args.preview is not None:
            raise UsageError("give either FOLDER or --preview IMAGE, not both")
        if args.preview is not None:
            return _preview(args, given)
        return _paint(args, given)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user; the traceback with -v
        if args.verbose:
            log.exception("failed")
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1


def run() -> None:  # pragma: no cover - console entry point
    sys.exit(main())
