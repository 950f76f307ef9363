"""The colour picker: a grid of swatches drawn at start, plus a status bar.

The picture is generated (no image file ships with the package): twelve hues
at two brightnesses, so neighbouring swatches are easy to tell apart and
the first one is the seed's red ``(R:204, G:0, B:0)``. The status bar shows
the paint colour, the continuous mode and the last message.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

_HUES = 12
_VALUES = (204, 102)


def _default_colors() -> tuple[tuple[int, int, int], ...]:
    out = []
    for value in _VALUES:
        for i in range(_HUES):
            r, g, b = colorsys.hsv_to_rgb(i / _HUES, 1.0, value / 255.0)
            out.append((round(b * 255), round(g * 255), round(r * 255)))
    return tuple(out)


#: The swatches, BGR (OpenCV's order): 12 hues at value 204, then at value 102.
DEFAULT_COLORS: tuple[tuple[int, int, int], ...] = _default_colors()

#: What the status bar says for each continuous mode.
MODE_TEXT = {
    None: "click mode",
    "fill": "CONTINUOUS FILL (double left click ends)",
    "unfill": "CONTINUOUS UNFILL (double right click ends)",
}

_FONT = cv2.FONT_HERSHEY_SIMPLEX


class Palette:
    """Swatch grid and status bar of the colour picker window.

    Parameters
    ----------
    colors : sequence of (b, g, r), default :data:`DEFAULT_COLORS`
        Swatch colours, row by row.
    columns : int, default 6
        Swatches per row.
    swatch : int, default 40
        Side of a swatch in pixels.
    """

    def __init__(self, colors=DEFAULT_COLORS, *, columns: int = 6, swatch: int = 40):
        colors = [tuple(int(c) for c in bgr) for bgr in colors]
        if not colors or any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in colors):
            raise ValueError("colors must be a non-empty sequence of (b, g, r) values in 0..255")
        if columns < 1 or swatch < 8:
            raise ValueError(f"columns must be >= 1 and swatch >= 8, got {columns}, {swatch}")
        self.colors: tuple[tuple[int, int, int], ...] = tuple(colors)
        self.columns = columns
        self.swatch = swatch
        self.rows = -(-len(colors) // columns)
        self.width = columns * swatch
        self.grid_height = self.rows * swatch
        self.status_height = 4 * 18 + 8

    def color_at(self, x: int, y: int) -> int | None:
        """Index of the swatch at pixel ``(x, y)`` of the picture, or None
        (status bar, outside, or an empty cell of the last row)."""
        if not (0 <= x < self.width and 0 <= y < self.grid_height):
            return None
        i = (y // self.swatch) * self.columns + x // self.swatch
        return i if i < len(self.colors) else None

    def swatch_center(self, i: int) -> tuple[int, int]:
        """Pixel ``(x, y)`` at the centre of swatch ``i`` (for scripts and tests)."""
        if not 0 <= i < len(self.colors):
            raise IndexError(f"swatch {i} does not exist; there are {len(self.colors)}")
        r, c = divmod(i, self.columns)
        return c * self.swatch + self.swatch // 2, r * self.swatch + self.swatch // 2

    def draw(self, current, mode: str | None = None, message: str = "") -> np.ndarray:
        """The picker picture, ``(h, w, 3)`` uint8 BGR.

        Parameters
        ----------
        current : (b, g, r)
            The paint colour, framed in the grid when it is a swatch and shown
            in the status bar.
        mode : {None, "fill", "unfill"}
            The continuous mode.
        message : str
            Last message (cut to the width of the picture).
        """
        s = self.swatch
        pic = np.full((self.grid_height + self.status_height, self.width, 3), 32, np.uint8)
        current = tuple(int(v) for v in current)
        for i, bgr in enumerate(self.colors):
            r, c = divmod(i, self.columns)
            pic[r * s : (r + 1) * s, c * s : (c + 1) * s] = bgr
            if bgr == current:
                cv2.rectangle(
                    pic,
                    (c * s + 2, r * s + 2),
                    ((c + 1) * s - 3, (r + 1) * s - 3),
                    (255, 255, 255),
                    2,
                )
                cv2.rectangle(
                    pic, (c * s + 4, r * s + 4), ((c + 1) * s - 5, (r + 1) * s - 5), (0, 0, 0), 1
                )
        y0 = self.grid_height
        pic[y0 + 4 : y0 + 22, 4:22] = current
        b, g, r = current
        mode_color = {None: (200, 200, 200), "fill": (80, 255, 80), "unfill": (80, 80, 255)}
        lines = [
            (f"R:{r} G:{g} B:{b}", (230, 230, 230), 28),
            (MODE_TEXT.get(mode, str(mode)), mode_color.get(mode, (230, 230, 230)), 4),
            ("q n p space z r d t", (170, 170, 170), 4),
            (message, (230, 230, 230), 4),
        ]
        for row, (text, color, x) in enumerate(lines):
            text = _fit(text, self.width - x - 2)
            cv2.putText(pic, text, (x, y0 + 17 + 18 * row), _FONT, 0.4, color, 1, cv2.LINE_AA)
        return pic


def _fit(text: str, width: int) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels at the status font."""
    if cv2.getTextSize(text, _FONT, 0.4, 1)[0][0] <= width:
        return text
    while text and cv2.getTextSize(text + "...", _FONT, 0.4, 1)[0][0] > width:
        text = text[:-1]
    return text + "..."
