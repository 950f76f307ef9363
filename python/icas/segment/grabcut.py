"""GrabCut as a state object: what the GrabCut windows do, without the windows.

A :class:`GrabCutSession` holds one image, the attention rectangle and the
strokes a person draws (sure or probable foreground/background). Each
:meth:`GrabCutSession.step` runs one ``cv2.grabCut`` iteration (press space
again to converge), :meth:`GrabCutSession.labels` hands the foreground to
the painter as a label image. The windows, mouse and keys live elsewhere and
only call these methods, so every behaviour here is testable without a screen.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import cv2
import numpy as np

from icas.segment._image import as_bgr

#: Stroke kinds, their GrabCut mask value and the colour (BGR) they are drawn in.
STROKES = {
    "fg": (cv2.GC_FGD, (0, 0, 255)),
    "bg": (cv2.GC_BGD, (255, 0, 0)),
    "pr_fg": (cv2.GC_PR_FGD, (128, 128, 255)),
    "pr_bg": (cv2.GC_PR_BGD, (255, 160, 128)),
}
RECT_COLOR = (0, 255, 0)


@dataclass(frozen=True)
class Stroke:
    """A polyline of ``points`` ((n, 2) int32, x then y) drawn ``radius`` pixels thick."""

    kind: str
    points: np.ndarray
    radius: int


def _point_list(points, name: str) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape == (2,):
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0:
        raise ValueError(
            f"{name} must be one (x, y) point or a sequence of them, got shape {pts.shape}"
        )
    if not np.isfinite(pts).all():
        raise ValueError(f"{name} must be finite")
    return np.rint(pts).astype(np.int32)


class GrabCutSession:
    """Interactive GrabCut on one image.

    Parameters
    ----------
    image : ndarray of shape (h, w, 3), uint8, or str or os.PathLike
        BGR image or its path.
    seed : int, default 0
        Seed of OpenCV's random generator before each GrabCut call (its
        Gaussian mixtures start from k-means), so a session replays exactly.

    Notes
    -----
    Coordinates are ``(x, y)`` pixels, as OpenCV mouse callbacks give them.
    Outside the rectangle is sure background, inside it probable foreground;
    strokes override both. Without a rectangle the whole image starts as
    probable background, so sure-foreground strokes are then needed.

    Examples
    --------
    >>> s = GrabCutSession(image)
    >>> s.set_rect((40, 30), (200, 180))
    >>> s.mark([(100, 100), (120, 110)], "fg")
    >>> for _ in range(3):
    ...     labels = s.step()
    """

    def __init__(self, image, *, seed: int = 0):
        self._image = as_bgr(image)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self._seed = int(seed)
        self.reset()

    # ------------------------------------------------------------------ state
    @property
    def image(self) -> np.ndarray:
        """The image, ``(h, w, 3)`` uint8 BGR (do not modify)."""
        return self._image

    @property
    def rect(self) -> tuple[int, int, int, int] | None:
        """The attention rectangle as ``(x, y, width, height)``, or None."""
        return self._rect

    @property
    def strokes(self) -> tuple[Stroke, ...]:
        """The strokes drawn since the last reset, oldest first."""
        return tuple(self._strokes)

    @property
    def iterations(self) -> int:
        """GrabCut iterations run since the last reset (or rectangle change)."""
        return self._iterations

    def reset(self) -> None:
        """Forget the rectangle, the strokes and the GrabCut result."""
        self._rect: tuple[int, int, int, int] | None = None
        self._strokes: list[Stroke] = []
        self._restart()

    def _restart(self) -> None:
        self._mask: np.ndarray | None = None  # GrabCut's mask, kept between iterations
        self._bgd = np.zeros((1, 65), np.float64)
        self._fgd = np.zeros((1, 65), np.float64)
        self._iterations = 0

    # ------------------------------------------------------------------ edits
    def set_rect(self, corner1, corner2) -> tuple[int, int, int, int]:
        """Set the attention rectangle from two opposite corners (any order).

        The corners are included and clipped to the image. A new rectangle
        starts GrabCut over (the strokes are kept).

        Returns
        -------
        tuple of int
            The rectangle as ``(x, y, width, height)``.

        Raises
        ------
        ValueError
            When a corner is not an ``(x, y)`` pair or the rectangle lies
            outside the image.
        """
        (x1, y1), (x2, y2) = _point_list(corner1, "corner1")[0], _point_list(corner2, "corner2")[0]
        h, w = self._image.shape[:2]
        left, right = sorted((int(x1), int(x2)))
        top, bottom = sorted((int(y1), int(y2)))
        if right < 0 or bottom < 0 or left >= w or top >= h:
            raise ValueError(
                f"rectangle ({left}, {top})-({right}, {bottom}) lies outside the {w}x{h} image"
            )
        left, top = max(left, 0), max(top, 0)
        right, bottom = min(right, w - 1), min(bottom, h - 1)
        self._rect = (left, top, right - left + 1, bottom - top + 1)
        self._restart()
        return self._rect

    def mark(self, points, kind: str, *, radius: int = 3) -> None:
        """Draw a stroke: one point (a dot) or a polyline through several.

        Parameters
        ----------
        points : (x, y) or sequence of (x, y)
            Pixel coordinates; points outside the image are clipped by drawing.
        kind : {"fg", "bg", "pr_fg", "pr_bg"}
            Sure foreground, sure background, probable foreground, probable
            background (the painter maps left/right click and ctrl+click here).
        radius : int, default 3
            Half the stroke's thickness in pixels; 0 draws one-pixel lines.

        Raises
        ------
        ValueError
            For an unknown ``kind``, a negative ``radius`` or malformed points.
        """
        if kind not in STROKES:
            raise ValueError(f"kind must be one of {', '.join(STROKES)}, got {kind!r}")
        if isinstance(radius, bool) or not isinstance(radius, numbers.Integral) or radius < 0:
            raise ValueError(f"radius must be a non-negative integer, got {radius!r}")
        stroke = Stroke(kind, _point_list(points, "points"), int(radius))
        self._strokes.append(stroke)
        if self._mask is not None:
            # Strokes after an iteration are hard constraints on GrabCut's current
            # labelling; its colour models carry on.
            _draw(self._mask, stroke, STROKES[kind][0])

    def undo(self) -> bool:
        """Remove the last stroke; GrabCut then starts over from the rectangle
        and the remaining strokes. Returns False when there was nothing to undo."""
        if not self._strokes:
            return False
        self._strokes.pop()
        self._restart()
        return True

    # ------------------------------------------------------------------ GrabCut
    def _initial_mask(self) -> np.ndarray:
        h, w = self._image.shape[:2]
        if self._rect is None:
            mask = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
        else:
            mask = np.full((h, w), cv2.GC_BGD, np.uint8)
            x, y, rw, rh = self._rect
            mask[y : y + rh, x : x + rw] = cv2.GC_PR_FGD
        for s in self._strokes:
            _draw(mask, s, STROKES[s.kind][0])
        return mask

    def step(self) -> np.ndarray:
        """Run one GrabCut iteration and return the new labels (see :meth:`labels`).

        Raises
        ------
        ValueError
            When there is no rectangle and no stroke yet, or when the mask has
            no foreground or no background pixel to learn colours from.
        """
        if self._rect is None and not self._strokes:
            raise ValueError("nothing to segment yet: set a rectangle or mark strokes first")
        first = self._mask is None
        mask = self._initial_mask() if first else self._mask
        fg = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD))
        if not fg.any() or fg.all():
            missing = "foreground" if not fg.any() else "background"
            raise ValueError(
                f"GrabCut needs both foreground and background pixels; there is no "
                f"{missing}: mark some {missing} (or draw a rectangle that does not cover "
                f"the whole image)"
            )
        cv2.setRNGSeed(self._seed)
        mode = cv2.GC_INIT_WITH_MASK if first else cv2.GC_EVAL
        cv2.grabCut(self._image, mask, None, self._bgd, self._fgd, 1, mode)
        self._mask = mask
        self._iterations += 1
        return self.labels()

    # ------------------------------------------------------------------ results
    def foreground(self) -> np.ndarray:
        """``(h, w)`` bool: pixels GrabCut (or the strokes, before any
        iteration) puts in the foreground."""
        mask = self._mask if self._mask is not None else self._initial_mask()
        return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD))

    def labels(self) -> np.ndarray:
        """The foreground as a label image for painting.

        Returns
        -------
        ndarray of shape (h, w), int32
            1 on the foreground (one segment, painted with one click), 0 elsewhere
            (like edge pixels, the background cannot be painted). All zero before
            the first iteration.
        """
        if self._mask is None:
            return np.zeros(self._image.shape[:2], np.int32)
        return self.foreground().astype(np.int32)

    def annotations(self) -> np.ndarray:
        """The image with the rectangle and strokes drawn on it, ``(h, w, 3)`` uint8 BGR
        (what the annotations window shows)."""
        out = self._image.copy()
        for s in self._strokes:
            _draw(out, s, STROKES[s.kind][1])
        if self._rect is not None:
            x, y, rw, rh = self._rect
            cv2.rectangle(out, (x, y), (x + rw - 1, y + rh - 1), RECT_COLOR, 1)
        return out

    def overlay(self, *, dim: float = 0.3) -> np.ndarray:
        """The image with the background darkened to ``dim`` of its brightness,
        ``(h, w, 3)`` uint8 BGR (what the segments window shows)."""
        if not 0.0 <= dim <= 1.0:
            raise ValueError(f"dim must be in [0, 1], got {dim}")
        out = self._image.copy()
        if self._mask is not None:
            bg = ~self.foreground()
            out[bg] = (out[bg] * dim).astype(np.uint8)
        return out


def _draw(canvas: np.ndarray, stroke: Stroke, value) -> None:
    thickness = 2 * stroke.radius + 1
    pts = stroke.points
    if len(pts) == 1:
        x, y = (int(v) for v in pts[0])
        cv2.circle(canvas, (x, y), stroke.radius, value, -1)
    else:
        cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], False, value, thickness)
