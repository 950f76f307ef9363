"""Template painting: find known shapes in an image and paint them in one key press.

A :class:`Template` has four images of the same size:

template
    What to look for (BGR).
attention
    Which template pixels count when matching (non-zero = counts). When
    missing it is derived: the template's background, the pixels of the
    border colour connected to the border, is ignored.
segment
    The paint to put over a match (BGR colours).
mask
    Which segment pixels are painted (non-zero = painted). When missing it
    is every non-black pixel of the segment.

Matching is OpenCV's masked normalised squared difference
(``cv2.TM_SQDIFF_NORMED`` with the attention as mask): 0 is a perfect match.
Without a threshold the best location is painted; with one, every location
whose error is at most the threshold (not overlapping a better one).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from icas.io import ImageReadError, list_images, read_image

#: Sub-folders of a template folder (see :meth:`TemplateSet.from_root`).
SUBFOLDERS = ("templates", "attentions", "segments", "masks")


@dataclass(frozen=True)
class Template:
    """One template (see the module docstring); arrays share one ``(h, w)`` size.

    Attributes
    ----------
    name : str
    template : ndarray of shape (h, w, 3), uint8
    attention : ndarray of shape (h, w), uint8
        255 where template pixels count, 0 where ignored.
    segment : ndarray of shape (h, w, 3), uint8
    mask : ndarray of shape (h, w), bool
    attention_derived, mask_derived : bool
        Whether the attention / mask was derived rather than given.
    """

    name: str
    template: np.ndarray
    attention: np.ndarray
    segment: np.ndarray
    mask: np.ndarray
    attention_derived: bool = False
    mask_derived: bool = False

    @classmethod
    def build(cls, template, segment, attention=None, mask=None, *, name: str = "template"):
        """Check the arrays and derive the missing attention / mask.

        Parameters
        ----------
        template, segment : ndarray of shape (h, w, 3), uint8
        attention, mask : ndarray of shape (h, w), optional
            Non-zero = on. Derived when None.
        name : str
            Used in error messages and match reports.

        Raises
        ------
        ValueError
            When the sizes differ or a given attention is empty.
        """
        template = _bgr(template, f"template {name!r}")
        segment = _bgr(segment, f"segment of {name!r}")
        size = template.shape[:2]
        if segment.shape[:2] != size:
            raise ValueError(
                f"segment of {name!r} is {_wh(segment)} but its template is {_wh(template)}; "
                "they must have the same size"
            )
        a_derived = attention is None
        if a_derived:
            attention = derive_attention(template)
        else:
            attention = _gray(attention, f"attention of {name!r}", size)
            if not attention.any():
                raise ValueError(f"attention of {name!r} is empty: nothing of the template counts")
            attention = np.where(attention != 0, 255, 0).astype(np.uint8)
        m_derived = mask is None
        mask = derive_mask(segment) if m_derived else _gray(mask, f"mask of {name!r}", size) != 0
        return cls(name, template, attention, segment, mask, a_derived, m_derived)


@dataclass(frozen=True)
class Match:
    """A template found at ``(x, y)`` (top-left corner) with ``error`` (0 = exact)."""

    template: str
    x: int
    y: int
    error: float


def derive_attention(template: np.ndarray, *, tolerance: int = 10) -> np.ndarray:
    """Attention of a template: everything but its border-connected background.

    The background colour is the most common colour of the border pixels;
    pixels within ``tolerance`` of it (every channel) that are connected to
    the border (4-connectivity) are ignored. A template that is all
    background keeps every pixel.

    Returns
    -------
    ndarray of shape (h, w), uint8
        255 where the pixel counts, 0 where ignored.
    """
    t = _bgr(template, "template")
    border = np.concatenate([t[0], t[-1], t[:, 0], t[:, -1]])
    colors, counts = np.unique(border, axis=0, return_counts=True)
    bg = colors[np.argmax(counts)].astype(np.int16)
    near = (np.abs(t.astype(np.int16) - bg) <= tolerance).all(axis=2).astype(np.uint8)
    _, parts = cv2.connectedComponents(near, connectivity=4)
    edge_parts = np.unique(np.concatenate([parts[0], parts[-1], parts[:, 0], parts[:, -1]]))
    background = np.isin(parts, edge_parts[edge_parts != 0])
    if background.all():
        return np.full(t.shape[:2], 255, np.uint8)
    return np.where(background, 0, 255).astype(np.uint8)


def derive_mask(segment: np.ndarray) -> np.ndarray:
    """Mask of a segment: its non-black pixels, ``(h, w)`` bool."""
    return (_bgr(segment, "segment") != 0).any(axis=2)


def match_template(
    image: np.ndarray, template: Template, *, threshold: float | None = None, max_matches=100
) -> list[Match]:
    """Where ``template`` appears in ``image``.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        BGR image.
    template : Template
    threshold : float, optional
        Largest error accepted (TM_SQDIFF_NORMED, 0..1 in practice). None: the
        single best location, however poor.
    max_matches : int, default 100
        Most matches returned with a threshold.

    Returns
    -------
    list of Match
        Best first; locations never overlap (each match hides the worse ones
        whose box overlaps it). Empty when the template is larger than the
        image or nothing is within the threshold.
    """
    image = _bgr(image, "image")
    if threshold is not None and not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be a number >= 0 or None, got {threshold!r}")
    th, tw = template.template.shape[:2]
    if th > image.shape[0] or tw > image.shape[1]:
        return []
    err = cv2.matchTemplate(image, template.template, cv2.TM_SQDIFF_NORMED, mask=template.attention)
    # A patch that is black under the attention has no defined error (inf/nan): no match.
    err[~np.isfinite(err)] = np.inf
    found: list[Match] = []
    limit = 1 if threshold is None else max_matches
    while len(found) < limit:
        y, x = np.unravel_index(int(np.argmin(err)), err.shape)
        e = float(err[y, x])
        if not np.isfinite(e) or (threshold is not None and e > threshold):
            break
        found.append(Match(template.name, int(x), int(y), e))
        err[max(0, y - th + 1) : y + th, max(0, x - tw + 1) : x + tw] = np.inf
    return found


def match_pixels(image_shape, templates: Sequence[Template], matches: Sequence[Match]):
    """The pixels the matches paint and their colours.

    Returns
    -------
    ys, xs : ndarray of shape (n,), intp
    colors : ndarray of shape (n, 3), uint8
        BGR colour of each pixel (from the segment); later matches come later,
        so painting in order lets them win where matches overlap.
    """
    by_name = {t.name: t for t in templates}
    h, w = image_shape[:2]
    ys_all, xs_all, cols = [], [], []
    for m in matches:
        t = by_name[m.template]
        ys, xs = np.nonzero(t.mask)
        keep = (ys + m.y < h) & (xs + m.x < w)
        ys, xs = ys[keep], xs[keep]
        ys_all.append(ys + m.y)
        xs_all.append(xs + m.x)
        cols.append(t.segment[ys, xs])
    if not ys_all:
        return np.empty(0, np.intp), np.empty(0, np.intp), np.empty((0, 3), np.uint8)
    return (
        np.concatenate(ys_all).astype(np.intp),
        np.concatenate(xs_all).astype(np.intp),
        np.concatenate(cols),
    )


class TemplateSet(Sequence):
    """Templates applied together by the painter's ``t`` key.

    Parameters
    ----------
    templates : sequence of Template
    """

    def __init__(self, templates: Sequence[Template]):
        self._items = list(templates)
        names = [t.name for t in self._items]
        if len(set(names)) != len(names):
            raise ValueError("template names must be unique")

    def __getitem__(self, i):
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def __add__(self, other: TemplateSet) -> TemplateSet:
        return TemplateSet([*self._items, *other._items])

    @classmethod
    def from_folders(cls, templates, segments, attentions=None, masks=None, *, prefix: str = ""):
        """Read templates from four folders, paired by position in name order.

        Parameters
        ----------
        templates, segments : str or os.PathLike
            Folders of template and segment images (same number of files).
        attentions, masks : str or os.PathLike, optional
            Folders of attentions / masks; missing or empty folders mean every
            attention / mask is derived. Otherwise they must hold as many files
            as ``templates``.
        prefix : str
            Put before each template's name (tells sets apart).

        Raises
        ------
        FileNotFoundError
            When ``templates`` or ``segments`` does not exist.
        ValueError
            When the folders hold different numbers of images, a file is not a
            readable image, or sizes do not match.
        """
        lists = {
            "templates": _files(templates, required=True),
            "segments": _files(segments, required=True),
            "attentions": _files(attentions),
            "masks": _files(masks),
        }
        n = len(lists["templates"])
        if n == 0:
            raise ValueError(f"no template images in {os.fspath(templates)!r}")
        folders = {
            "templates": templates,
            "segments": segments,
            "attentions": attentions,
            "masks": masks,
        }
        for key in ("segments", "attentions", "masks"):
            k = len(lists[key])
            if k != n and (key == "segments" or k):
                raise ValueError(
                    f"{os.fspath(folders[key])!r} holds {k} images but "
                    f"{os.fspath(templates)!r} holds {n} templates; they are paired in name "
                    "order, so the counts must match"
                )
        items = []
        for i, tpath in enumerate(lists["templates"]):
            attention = _read(lists["attentions"][i], color=False) if lists["attentions"] else None
            mask = _read(lists["masks"][i], color=False) if lists["masks"] else None
            items.append(
                Template.build(
                    _read(tpath),
                    _read(lists["segments"][i]),
                    attention,
                    mask,
                    name=prefix + tpath.name,
                )
            )
        return cls(items)

    @classmethod
    def from_root(cls, root, *, prefix: str = ""):
        """Read ``root/templates``, ``root/segments`` and the optional
        ``root/attentions`` and ``root/masks`` (see :meth:`from_folders`)."""
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"template folder not found: {os.fspath(root)!r}")
        missing = [s for s in ("templates", "segments") if not (root / s).is_dir()]
        if missing:
            raise ValueError(
                f"{os.fspath(root)!r} must hold the folders templates/ and segments/ "
                f"(attentions/ and masks/ are optional); {missing[0]}/ is missing"
            )
        return cls.from_folders(
            *(root / s for s in ("templates", "segments", "attentions", "masks")), prefix=prefix
        )

    def find(self, image, *, threshold: float | None = None) -> list[Match]:
        """Matches of every template in ``image``, template by template."""
        return [m for t in self._items for m in match_template(image, t, threshold=threshold)]

    def pixels(self, image, *, threshold: float | None = None):
        """``(ys, xs, colors, matches)``: what painting the matches changes
        (see :func:`match_pixels`)."""
        image = _bgr(image, "image")
        matches = self.find(image, threshold=threshold)
        return (*match_pixels(image.shape, self._items, matches), matches)


# ---------------------------------------------------------------------- helpers


def _wh(a: np.ndarray) -> str:
    return f"{a.shape[1]}x{a.shape[0]}"


def _bgr(a, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or 0 in a.shape:
        raise ValueError(
            f"{what} must be a non-empty (h, w, 3) uint8 BGR image, got {a.shape} {a.dtype}"
        )
    return np.ascontiguousarray(a)


def _gray(a, what: str, size) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 3:
        a = a.max(axis=2)
    if a.ndim != 2 or a.shape != tuple(size):
        got = _wh(a) if a.ndim == 2 else str(a.shape)
        raise ValueError(f"{what} is {got} but must be {size[1]}x{size[0]} like its template")
    return a


def _files(folder, *, required: bool = False) -> list[Path]:
    if folder is None:
        return []
    folder = Path(folder)
    if not folder.is_dir():
        if required:
            raise FileNotFoundError(f"folder not found: {os.fspath(folder)!r}")
        return []
    return list_images(folder)


def _read(path: Path, *, color: bool = True) -> np.ndarray:
    try:
        return read_image(path, color=color)
    except ImageReadError as exc:
        raise ValueError(f"cannot read {os.fspath(path)!r}: {exc.reason}") from exc
