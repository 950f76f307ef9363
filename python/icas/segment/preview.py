"""Every segmentation method on one image, side by side, to choose one.

:func:`preview` returns the picture as an array (and writes it as a PNG when
asked); :func:`show` puts it in a window only when there is a screen, since
OpenCV aborts the whole process when it opens a window without one.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from icas.segment._image import as_bgr
from icas.segment.methods import METHODS, check_method, check_params, segment

_CAPTION_COLOR = (255, 255, 255)
_BOUNDARY_COLOR = (0, 255, 255)


def render(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Draw segment boundaries (yellow) and edge pixels (black) over an image.

    Parameters
    ----------
    image : ndarray of shape (h, w, 3), uint8
        BGR image.
    labels : ndarray of shape (h, w), integer
        Label image as :func:`icas.segment.segment` returns it.

    Returns
    -------
    ndarray of shape (h, w, 3), uint8
    """
    out = image.copy()
    lab = labels
    boundary = np.zeros(lab.shape, bool)
    boundary[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    boundary[1:, :] |= lab[1:, :] != lab[:-1, :]
    out[boundary] = _BOUNDARY_COLOR
    out[lab == 0] = 0
    return out


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    w = tile.shape[1]
    scale = max(0.35, min(1.0, w / 640))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    bar_h = th + base + 8
    bar = np.zeros((bar_h, w, 3), np.uint8)
    cv2.putText(
        bar, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, _CAPTION_COLOR, 1, cv2.LINE_AA
    )
    return np.vstack([bar, tile])


def preview(
    image,
    *,
    methods=None,
    columns: int = 4,
    tile_width: int | None = None,
    timings: bool = True,
    out: str | os.PathLike | None = None,
    **params,
) -> np.ndarray:
    """Segment one image with several methods and put the results side by side.

    Parameters
    ----------
    image : ndarray of shape (h, w, 3), uint8, or str or os.PathLike
        BGR image or its path.
    methods : sequence of str, optional
        Methods to show, in order; default every method in :data:`METHODS`.
    columns : int, default 4
        Tiles per row.
    tile_width : int, optional
        Width each tile is resized to for display (the segmentation always runs
        on the full image); default the image's width.
    timings : bool, default True
        Put each method's run time in its caption (turn off for byte-identical
        pictures).
    out : str or os.PathLike, optional
        Write the picture there as a PNG too.
    **params : dict
        Parameters per method, keyed by method name, e.g.
        ``kmeans={"k": 8}, graph={"k": 500}`` (the methods share names such as
        ``k`` and ``sigma`` with different meanings, so they are never shared).

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
        BGR picture: one tile per method with the segment boundaries in yellow,
        edge pixels in black and a caption ``method: n segments (t s)``; empty
        cells of the last row are black.

    Raises
    ------
    ValueError
        For an unknown method, an unknown or out-of-range parameter (checked
        for every method before any runs), or a bad ``columns``/``tile_width``.
    """
    img = as_bgr(image)
    if isinstance(methods, str):
        methods = [methods]
    names = list(METHODS) if methods is None else [check_method(m) for m in methods]
    if not names:
        raise ValueError("methods must name at least one method")
    for key, value in params.items():
        if check_method(key) not in names:
            raise ValueError(f"parameters given for {key!r}, which is not in methods {names}")
        if not isinstance(value, Mapping):
            raise TypeError(f"{key} must be a dict of parameters, got {type(value).__name__}")
    per_method = {check_method(k): dict(v) for k, v in params.items()}
    for name in names:
        check_params(name, **per_method.get(name, {}))
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be a positive integer, got {columns!r}")
    if tile_width is not None and (
        isinstance(tile_width, bool) or not isinstance(tile_width, int) or tile_width < 8
    ):
        raise ValueError(f"tile_width must be an integer >= 8 or None, got {tile_width!r}")

    h, w = img.shape[:2]
    tw = tile_width or w
    th = max(1, round(h * tw / w))
    tiles = []
    for name in names:
        t0 = time.perf_counter()
        labels = segment(img, name, **per_method.get(name, {}))
        seconds = time.perf_counter() - t0
        tile = render(img, labels)
        if (tw, th) != (w, h):
            tile = cv2.resize(
                tile, (tw, th), interpolation=cv2.INTER_AREA if tw < w else cv2.INTER_NEAREST
            )
        text = f"{name}: {int(labels.max())} segments"
        if timings:
            text += f" ({seconds:.2f} s)"
        tiles.append(_caption(tile, text))
    cell_h = tiles[0].shape[0]
    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    canvas = np.zeros((rows * cell_h, cols * tw, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas[r * cell_h : (r + 1) * cell_h, c * tw : (c + 1) * tw] = tile
    if out is not None:
        save_png(canvas, out)
    return canvas


def save_png(picture: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a BGR picture as a PNG (any path, non-ASCII too); returns the path."""
    path = Path(path)
    ok, buf = cv2.imencode(".png", picture)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR array
        raise ValueError(f"cannot encode a picture of shape {picture.shape} as PNG")
    buf.tofile(path)
    return path


def has_screen() -> bool:
    """Whether a window can be opened: always on Windows and macOS, on other
    systems only with ``DISPLAY`` or ``WAYLAND_DISPLAY`` set."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def show(picture: np.ndarray, *, title: str = "icas preview") -> bool:
    """Show a picture in a window until a key is pressed, if there is a screen.

    Returns
    -------
    bool
        False (and nothing opened) without a screen, True after the window closed.
    """
    if not has_screen():
        return False
    cv2.namedWindow(title, cv2.WINDOW_GUI_NORMAL | cv2.WINDOW_AUTOSIZE)
    cv2.imshow(title, picture)
    cv2.waitKey(0)
    cv2.destroyWindow(title)
    return True
