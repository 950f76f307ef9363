"""One image being painted: labels, painted pixels, cuts and the undo stack.

A :class:`Canvas` knows nothing about windows or files. Every edit (fill,
unfill, cut, template paint, reset) records the pixels it changed, so
:meth:`Canvas.undo` restores them exactly; the picture shown in the window
is kept up to date pixel by pixel, so a click on a large image costs only
the pixels of the clicked segment.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from icas.segment.preview import render


class ColorTable:
    """Paint colours of a session, numbered from 1 (0 means unpainted).

    Ids never change once given, so exports of different images agree on
    them: the palette's colours come first, colours met later (template
    segments) are appended.

    Parameters
    ----------
    colors : iterable of (b, g, r)
        Initial colours, given ids ``1..len(colors)``.
    """

    def __init__(self, colors=()):
        self._colors: list[tuple[int, int, int]] = []
        self._ids: dict[tuple[int, int, int], int] = {}
        for c in colors:
            self.id_of(c)

    def id_of(self, bgr) -> int:
        """Id of a BGR colour, adding it when new."""
        key = tuple(int(v) for v in bgr)
        if len(key) != 3 or not all(0 <= v <= 255 for v in key):
            raise ValueError(f"a colour is three values (b, g, r) in 0..255, got {bgr!r}")
        cid = self._ids.get(key)
        if cid is None:
            self._colors.append(key)
            cid = self._ids[key] = len(self._colors)
        return cid

    def bgr(self, cid: int) -> tuple[int, int, int]:
        """The BGR colour of id ``cid`` (1-based)."""
        if not 1 <= cid <= len(self._colors):
            raise KeyError(f"no colour with id {cid}; ids are 1..{len(self._colors)}")
        return self._colors[cid - 1]

    def lut(self) -> np.ndarray:
        """``(n + 1, 3)`` uint8 BGR lookup table: row ``id`` is the colour, row 0 black."""
        return np.array([(0, 0, 0), *self._colors], np.uint8)

    def __len__(self) -> int:
        return len(self._colors)

    def __iter__(self):
        return iter(self._colors)


@dataclass
class _Edit:
    """What one action changed: flat pixel indices and their previous values.
    ``full`` holds whole arrays instead (reset), ``cut_start`` the cut point
    before the action."""

    label_idx: np.ndarray | None
    label_old: np.ndarray | None
    paint_idx: np.ndarray | None
    paint_old: np.ndarray | None
    cut_start: tuple[int, int] | None
    full: tuple[np.ndarray, np.ndarray] | None = None


_EMPTY = np.empty(0, np.intp)


class Canvas:
    """Painting state of one image.

    Parameters
    ----------
    image : ndarray of shape (h, w, 3), uint8
        BGR image.
    labels : ndarray of shape (h, w), integer
        Segments ``1..n``, 0 for edge pixels (they cannot be filled), as
        :func:`icas.segment.segment` returns them.
    colors : ColorTable
        The session's colours (painted pixels hold their ids).
    max_undo : int, default 100
        Edits kept for :meth:`undo` (the oldest are forgotten first).
    alpha : float, default 0.5
        Opacity of paint in :meth:`picture`.

    Attributes
    ----------
    labels : ndarray of shape (h, w), int32
        Current segments (cuts add edge pixels and split segments).
    paint : ndarray of shape (h, w), int32
        Colour id of each pixel, 0 where unpainted.
    cut_start : (x, y) or None
        The last cut point: the next cut point draws a cut line from here.
    """

    def __init__(self, image, labels, colors: ColorTable, *, max_undo: int = 100, alpha=0.5):
        image = np.asarray(image)
        labels = np.asarray(labels)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (h, w, 3) uint8 BGR, got {image.shape} {image.dtype}")
        if labels.shape != image.shape[:2] or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"labels must be an integer array of shape {image.shape[:2]}, got "
                f"{labels.shape} {labels.dtype}"
            )
        if labels.size and labels.min() < 0:
            raise ValueError("labels must be >= 0 (0 marks edge pixels)")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.image = image
        self.colors = colors
        self.alpha = float(alpha)
        self._original = labels.astype(np.int32, copy=True)
        self._original.setflags(write=False)
        self.labels = self._original.copy()
        self.paint = np.zeros(labels.shape, np.int32)
        self.cut_start: tuple[int, int] | None = None
        self._undo: deque[_Edit] = deque(maxlen=max_undo)
        self._next_id = int(self.labels.max(initial=0)) + 1
        self._base: np.ndarray | None = None
        self._shown: np.ndarray | None = None
        self._boxes: list | None = None  # bounding box of each segment, lazily

    # ------------------------------------------------------------------ queries
    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape

    def inside(self, x: int, y: int) -> bool:
        """Whether ``(x, y)`` is a pixel of the image."""
        h, w = self.shape
        return 0 <= x < w and 0 <= y < h

    def _check(self, x, y) -> tuple[int, int]:
        x, y = int(x), int(y)
        if not self.inside(x, y):
            h, w = self.shape
            raise ValueError(f"point ({x}, {y}) lies outside the {w}x{h} image")
        return x, y

    def segment_at(self, x: int, y: int) -> int:
        """Label of the segment at ``(x, y)`` (0 on an edge pixel)."""
        x, y = self._check(x, y)
        return int(self.labels[y, x])

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def masks(self) -> dict[int, np.ndarray]:
        """``{colour id: (h, w) bool}`` for every colour painted, in id order."""
        ids = np.unique(self.paint)
        return {int(c): self.paint == c for c in ids if c != 0}

    # ------------------------------------------------------------------ edits
    def _push(self, edit: _Edit) -> None:
        self._undo.append(edit)

    def _set_paint(self, idx: np.ndarray, value) -> np.ndarray:
        """Paint ``idx`` (flat) with ``value`` (scalar or per pixel); returns the
        indices that changed after recording them for undo."""
        flat = self.paint.ravel()
        value = np.asarray(value, np.int32)
        changed = flat[idx] != value
        if not changed.any():
            return _EMPTY
        idx = idx[changed]
        new = value if value.ndim == 0 else value[changed]
        self._push(_Edit(None, None, idx, flat[idx].copy(), self.cut_start))
        flat[idx] = new
        self._refresh(idx)
        return idx

    def fill(self, x: int, y: int, color_id: int) -> bool:
        """Paint the segment at ``(x, y)`` with colour ``color_id``.

        Returns False (and records nothing) on an edge pixel or when the
        segment already has that colour everywhere.
        """
        if not 1 <= color_id <= len(self.colors):
            raise ValueError(f"color_id must be 1..{len(self.colors)}, got {color_id}")
        label = self.segment_at(x, y)
        if label == 0:
            return False
        return self._set_paint(self._segment_pixels(label), color_id).size > 0

    def unfill(self, x: int, y: int) -> bool:
        """Remove the paint of the segment at ``(x, y)``; False when there was none."""
        label = self.segment_at(x, y)
        if label == 0:
            return False
        return self._set_paint(self._segment_pixels(label), 0).size > 0

    def _segment_pixels(self, label: int) -> np.ndarray:
        """Flat indices (ascending) of the pixels of segment ``label``."""
        if self._boxes is None:
            from scipy import ndimage

            # One pass over the labels gives every segment's bounding box, so a
            # click scans its segment's box, not the whole image.
            self._boxes = ndimage.find_objects(self.labels)
        box = self._boxes[label - 1] if label <= len(self._boxes) else None
        if box is None:
            return _EMPTY
        ys, xs = np.nonzero(self.labels[box] == label)
        return (ys + box[0].start) * self.shape[1] + (xs + box[1].start)

    def paint_pixels(self, ys, xs, color_ids) -> bool:
        """Paint single pixels (template painting): ``(ys[i], xs[i])`` gets
        ``color_ids[i]`` (or one id for all), edge pixels included. One undo step."""
        ys, xs = np.asarray(ys, np.intp).ravel(), np.asarray(xs, np.intp).ravel()
        h, w = self.shape
        if ys.shape != xs.shape or (
            ys.size and (ys.min() < 0 or xs.min() < 0 or ys.max() >= h or xs.max() >= w)
        ):
            raise ValueError(f"pixel coordinates must be pairs inside the {w}x{h} image")
        ids = np.asarray(color_ids, np.int32)
        if ids.ndim and ids.shape != ys.shape:
            raise ValueError(f"color_ids must be one id or one per pixel ({ys.size})")
        if ids.size and (ids.min() < 1 or ids.max() > len(self.colors)):
            raise ValueError(f"color ids must be 1..{len(self.colors)}")
        flat_idx = ys * w + xs
        if ids.ndim:  # the last write to a pixel wins, as when painting one after another
            flat_idx, last = np.unique(flat_idx[::-1], return_index=True)
            ids = ids[::-1][last]
        else:
            flat_idx = np.unique(flat_idx)
        return self._set_paint(flat_idx, ids).size > 0

    def cut(self, x: int, y: int) -> bool:
        """Add a cut point. From the second point on, the line from the previous
        point to this one becomes edge pixels (unpainted, label 0), and each
        part of a segment the line borders becomes a segment of its own.

        Returns True when anything changed (always, unless the point repeats the
        previous one).
        """
        x, y = self._check(x, y)
        start = self.cut_start
        if start == (x, y):
            return False
        if start is None:
            self._push(_Edit(None, None, None, None, None))
            self.cut_start = (x, y)
            return True
        line = self._line_pixels(start, (x, y))
        flat_paint = self.paint.ravel()
        # Cut pixels are edges now, and an edge is never painted.
        paint_idx = line[flat_paint[line] != 0]
        paint_old = flat_paint[paint_idx].copy()
        flat_paint[paint_idx] = 0
        label_idx, label_old = self._cut_line(line)
        self._push(_Edit(label_idx, label_old, paint_idx, paint_old, start))
        self.cut_start = (x, y)
        if label_idx.size:
            self._invalidate()
        elif paint_idx.size:
            self._refresh(paint_idx)
        return True

    def end_cut(self) -> bool:
        """Forget the last cut point, so the next one starts a new line."""
        if self.cut_start is None:
            return False
        self.cut_start = None
        return True

    def _line_pixels(self, p0, p1) -> np.ndarray:
        """Flat indices of the 8-connected line p0-p1 (it separates 4-connected regions)."""
        (x0, y0), (x1, y1) = p0, p1
        left, top = min(x0, x1), min(y0, y1)
        box = np.zeros((abs(y1 - y0) + 1, abs(x1 - x0) + 1), np.uint8)
        cv2.line(box, (x0 - left, y0 - top), (x1 - left, y1 - top), 1, 1, cv2.LINE_8)
        ys, xs = np.nonzero(box)
        return (ys + top) * self.shape[1] + (xs + left)

    def _cut_line(self, line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Make the ``line`` pixels (flat indices) edges and split the segments
        it crosses; returns the flat indices whose label changed and their old
        labels."""
        from scipy import ndimage

        h, w = self.shape
        flat = self.labels.ravel()
        old_line = flat[line].copy()
        touched = np.unique(old_line[old_line != 0])
        changed, old = [line[old_line != 0]], [old_line[old_line != 0]]
        if not touched.size:
            return changed[0], old[0]
        flat[line] = 0
        near_line = np.zeros((h, w), bool)
        near_line.ravel()[line] = True
        # A part borders the cut when one of its pixels touches a cut pixel.
        near_line = cv2.dilate(near_line.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
        boxes = ndimage.find_objects(self.labels, max_label=int(touched.max()))
        for label in touched:
            box = boxes[label - 1]
            if box is None:  # the segment was only line pixels
                continue
            part = self.labels[box] == label
            n, comp = cv2.connectedComponents(part.view(np.uint8), connectivity=4)
            if n <= 2:  # still one piece
                continue
            bordering = np.unique(comp[near_line[box] & part])
            bordering = bordering[bordering != 0]
            if bordering.size == n - 1:  # every part borders the cut: the first keeps the label
                bordering = bordering[1:]
            for k in bordering:
                ys, xs = np.nonzero(comp == k)
                idx = (ys + box[0].start) * w + (xs + box[1].start)
                changed.append(idx)
                old.append(np.full(idx.size, label, np.int32))
                flat[idx] = self._next_id
                self._next_id += 1
        return np.concatenate(changed), np.concatenate(old)

    def undo(self) -> bool:
        """Revert the last edit; False when there is nothing to undo."""
        if not self._undo:
            return False
        e = self._undo.pop()
        if e.full is not None:
            labels, paint = e.full
            self.labels[...] = labels
            self.paint[...] = paint
            self._invalidate()
        else:
            if e.label_idx is not None and e.label_idx.size:
                self.labels.ravel()[e.label_idx] = e.label_old
            if e.paint_idx is not None and e.paint_idx.size:
                self.paint.ravel()[e.paint_idx] = e.paint_old
            if e.label_idx is not None and e.label_idx.size:
                self._invalidate()
            elif e.paint_idx is not None and e.paint_idx.size:
                self._refresh(e.paint_idx)
        self.cut_start = e.cut_start
        return True

    def reset(self) -> bool:
        """Back to the pre-segmentation: no paint, no cuts (undoable).
        False when there was nothing to reset."""
        pristine = (
            self.cut_start is None
            and not self.paint.any()
            and np.array_equal(self.labels, self._original)
        )
        if pristine:
            return False
        self._push(
            _Edit(
                None, None, None, None, self.cut_start, full=(self.labels.copy(), self.paint.copy())
            )
        )
        self.labels[...] = self._original
        self.paint[...] = 0
        self.cut_start = None
        self._invalidate()
        return True

    # ------------------------------------------------------------------ pictures
    def _invalidate(self) -> None:
        """The labels changed: drop what was computed from them."""
        self._base = self._shown = None
        self._boxes = None

    def _refresh(self, idx: np.ndarray) -> None:
        if self._shown is None:
            return
        base = self._base.reshape(-1, 3)[idx].astype(np.float32)
        ids = self.paint.ravel()[idx]
        color = self.colors.lut()[ids].astype(np.float32)
        blend = np.where((ids != 0)[:, None], base * (1 - self.alpha) + color * self.alpha, base)
        self._shown.reshape(-1, 3)[idx] = np.rint(blend).astype(np.uint8)

    def picture(self) -> np.ndarray:
        """What the image window shows, ``(h, w, 3)`` uint8 BGR: the image with
        segment boundaries (yellow), edge pixels (black) and the paint blended
        in at ``alpha``. Updated in place between calls (copy it to keep it)."""
        if self._shown is None:
            self._base = render(self.image, self.labels)
            self._shown = self._base.copy()
            painted = np.flatnonzero(self.paint.ravel())
            self._refresh(painted)
        return self._shown

    def result(self) -> np.ndarray:
        """The painted image: painted pixels in their colour, the rest as in the
        image, ``(h, w, 3)`` uint8 BGR."""
        out = self.image.copy()
        painted = self.paint != 0
        out[painted] = self.colors.lut()[self.paint[painted]]
        return out

    def debug_views(self) -> dict[str, np.ndarray]:
        """``{"labels": ..., "painted": ...}``: every segment in its own colour
        (edges black) and the painted pixels on black, both ``(h, w, 3)`` uint8."""
        n = int(self.labels.max(initial=0))
        rng = np.random.default_rng(12345)
        lut = rng.integers(48, 256, size=(n + 1, 3), dtype=np.uint8)
        lut[0] = 0
        return {"labels": lut[self.labels], "painted": self.colors.lut()[self.paint]}
