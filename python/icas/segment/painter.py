"""The painter's state machine: what every click and key does, without windows.

:class:`Painter` walks a folder of images and holds the painting of the
current one (a :class:`~icas.segment.canvas.Canvas`), the paint colour, the
continuous mode and the last message. Its methods are the actions (fill,
unfill, cut, undo, reset, save, next, previous, template painting...);
:meth:`Painter.key` and :meth:`Painter.mouse` turn OpenCV key codes and
mouse events into those actions, so the windows (``icas.segment.windows``)
only forward events and draw, and every behaviour is tested without a screen.

Mouse (image window)
    left click fills the segment under the mouse with the paint colour,
    right click unfills it; a double left (right) click toggles continuous
    filling (unfilling) of every segment the mouse passes over; middle clicks
    are cut points: each one after the first cuts the image along the line
    from the previous point (cut pixels become edges, splitting segments),
    and a double middle click ends the line.
Mouse (colour window)
    left click picks the paint colour.
Keys
    see :data:`KEYS`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from icas.segment.canvas import Canvas, ColorTable
from icas.segment.export import (
    check_formats,
    color_label,
    existing_outputs,
    output_stems,
    save_outputs,
)
from icas.segment.palette import Palette
from icas.segment.prefetch import SegmentError

#: Key -> (action, what it does). Letters are case-insensitive; Esc also quits.
KEYS: dict[str, tuple[str, str]] = {
    "q": ("quit", "quit (the current image is not saved)"),
    "n": ("next", "next image, without saving"),
    "p": ("previous", "previous image, without saving"),
    " ": ("save_and_next", "save the masks of this image and go to the next"),
    "z": ("undo", "undo the last action"),
    "r": ("reset", "reset this image (remove paint and cuts)"),
    "d": ("toggle_debug", "show or hide the debug views (labels, painted pixels)"),
    "t": ("template_paint", "paint the templates found in this image"),
}

MOUSE_HELP = (
    ("left click", "fill the segment with the paint colour"),
    ("right click", "unfill the segment"),
    ("double left click", "continuous filling on/off (fills what the mouse passes over)"),
    ("double right click", "continuous unfilling on/off"),
    ("middle clicks", "cut points: the line from the previous point becomes an edge"),
    ("double middle click", "end the cut line"),
    ("colour window click", "pick the paint colour"),
)

#: The key list printed when the painter starts.
HELP = "\n".join(
    ["icas-segment keys:"]
    + [f"  {'space' if k == ' ' else k:6} {text}" for k, (_, text) in KEYS.items()]
    + ["mouse:"]
    + [f"  {what:20} {text}" for what, text in MOUSE_HELP]
)

log = logging.getLogger(__name__)

_ESC = 27
_BUTTON_DOWN = {
    cv2.EVENT_LBUTTONDOWN: "left",
    cv2.EVENT_RBUTTONDOWN: "right",
    cv2.EVENT_MBUTTONDOWN: "middle",
}
_BUTTON_UP = {
    cv2.EVENT_LBUTTONUP: "left",
    cv2.EVENT_RBUTTONUP: "right",
    cv2.EVENT_MBUTTONUP: "middle",
}
_DOUBLE = {
    cv2.EVENT_LBUTTONDBLCLK: "left",
    cv2.EVENT_RBUTTONDBLCLK: "right",
    cv2.EVENT_MBUTTONDBLCLK: "middle",
}


def key_char(code) -> str | None:
    """The character of an OpenCV key code (``waitKeyEx``), lower-cased; None
    for special keys and no key (-1). Esc becomes ``"q"``."""
    if isinstance(code, str):
        return code.lower() if len(code) == 1 else None
    if code == _ESC:
        return "q"
    if code is None or not 0 <= code < 256:
        return None
    return chr(code).lower()


class Painter:
    """Painting a folder of images, one at a time.

    Parameters
    ----------
    source : Prefetcher or similar
        Has ``paths`` (the images in order), ``get(i) -> Loaded`` (raising
        :class:`~icas.segment.prefetch.SegmentError` for a bad image) and
        ``around(i)`` (prepare the neighbours of image ``i``).
    out_dir : str or os.PathLike
        Where outputs go.
    export : sequence of str, default ("masks",)
        Output formats (see :mod:`icas.segment.export`).
    overwrite : bool, default False
        Replace outputs saved before; otherwise saving refuses (and says so).
    templates : TemplateSet, optional
        Used by :meth:`template_paint`.
    template_threshold : float, optional
        Largest matching error painted; None paints each template's best match.
    palette : Palette, optional
        The colour picker (default swatches when None).
    alpha : float, default 0.5
        Opacity of paint in the image window.
    max_undo : int, default 100
        Undo steps kept per image.
    on_message : callable, optional
        Called with every message (the windows print them to stderr).

    Attributes
    ----------
    index : int
        Index of the current image (-1 before :meth:`start`).
    canvas : Canvas or None
        The current painting; None while an interactive method (GrabCut,
        prompted SAM) still has to give the labels (see :meth:`set_labels`).
    color : int
        Id of the paint colour in :attr:`colors`.
    mode : {None, "fill", "unfill"}
        Continuous mode.
    quit : bool
        Set by the quit key; the window loop ends.
    message : str
        The last message.
    skipped : dict of str to str
        Images that could not be opened, with the reason.
    saved : set of int
        Indices of the images saved.
    files : dict of int to list of pathlib.Path
        For each image saved, the files its last save wrote.
    """

    def __init__(
        self,
        source,
        *,
        out_dir,
        export=("masks",),
        overwrite: bool = False,
        templates=None,
        template_threshold: float | None = None,
        palette: Palette | None = None,
        alpha: float = 0.5,
        max_undo: int = 100,
        on_message: Callable[[str], None] | None = None,
    ):
        self.source = source
        self.paths = [Path(p) for p in source.paths]
        if not self.paths:
            raise ValueError("no images to paint")
        self.stems = output_stems(self.paths)
        self.out_dir = Path(out_dir)
        self.export = check_formats(export)
        self.overwrite = bool(overwrite)
        self.templates = templates
        self.template_threshold = template_threshold
        self.palette = palette or Palette()
        self.colors = ColorTable(self.palette.colors)
        self.color = 1
        self.alpha = alpha
        self.max_undo = max_undo
        self.on_message = on_message
        self.mode: str | None = None
        self.debug = False
        self.quit = False
        self.message = ""
        self.index = -1
        self.image: np.ndarray | None = None
        self.canvas: Canvas | None = None
        self.skipped: dict[str, str] = {}
        self.saved: set[int] = set()
        self.files: dict[int, list[Path]] = {}
        self._swallow: set[str] = set()

    # ------------------------------------------------------------------ messages
    def say(self, text: str) -> None:
        """Set the message (shown in the colour window) and pass it on."""
        self.message = text
        if self.on_message is not None:
            self.on_message(text)

    @property
    def path(self) -> Path | None:
        """The current image's path."""
        return self.paths[self.index] if self.index >= 0 else None

    @property
    def title(self) -> str:
        """``name (i/n)`` of the current image."""
        if self.index < 0:
            return ""
        return f"{self.path.name} ({self.index + 1}/{len(self.paths)})"

    @property
    def needs_labels(self) -> bool:
        """True when the current image waits for interactive labels."""
        return self.index >= 0 and self.canvas is None

    # ------------------------------------------------------------------ navigation
    def start(self) -> bool:
        """Open the first image that can be opened; False when none can."""
        if self._open(0, +1):
            return True
        self.say("no image could be opened")
        return False

    def _open(self, i: int, step: int) -> bool:
        while 0 <= i < len(self.paths):
            try:
                loaded = self.source.get(i)
            except SegmentError as exc:
                self.skipped[str(self.paths[i])] = exc.reason
                self.say(f"skipped {self.paths[i].name}: {exc.reason}")
                i += step
                continue
            self.index = i
            self.image = loaded.image
            self.canvas = None
            self.mode = None
            self._swallow.clear()
            if loaded.labels is not None:
                self.set_labels(loaded.labels)
            self.source.around(i)
            done = (
                " (saved before)"
                if existing_outputs(self.out_dir, self.stems[i], self.export)
                else ""
            )
            self.say(self.status() + done)
            return True
        return False

    def status(self) -> str:
        """``[i/n] name: k segments`` of the current image."""
        segments = "" if self.canvas is None else f": {self.canvas.labels.max()} segments"
        return f"[{self.index + 1}/{len(self.paths)}] {self.path.name}{segments}"

    def set_labels(self, labels) -> None:
        """Start painting the current image with ``labels`` (from the
        pre-segmentation or an interactive GrabCut / SAM window)."""
        if self.image is None:
            raise ValueError("no image is open")
        self.canvas = Canvas(
            self.image, labels, self.colors, max_undo=self.max_undo, alpha=self.alpha
        )

    def next(self) -> bool:
        """Next image, without saving. False on the last image."""
        if self.index >= len(self.paths) - 1:
            self.say("this is the last image (q quits)")
            return False
        if not self._open(self.index + 1, +1):
            self.say("no image after this one could be opened")
            return False
        return True

    def previous(self) -> bool:
        """Previous image, without saving. False on the first image."""
        if self.index <= 0:
            self.say("this is the first image")
            return False
        if not self._open(self.index - 1, -1):
            self.say("no image before this one could be opened")
            return False
        return True

    # ------------------------------------------------------------------ painting
    def _need_canvas(self) -> Canvas | None:
        if self.canvas is None:
            self.say("this image has no segments yet")
        return self.canvas

    def fill(self, x: int, y: int) -> bool:
        """Fill the segment at ``(x, y)`` with the paint colour."""
        c = self._need_canvas()
        return c is not None and c.fill(x, y, self.color)

    def unfill(self, x: int, y: int) -> bool:
        """Remove the paint of the segment at ``(x, y)``."""
        c = self._need_canvas()
        return c is not None and c.unfill(x, y)

    def cut(self, x: int, y: int) -> bool:
        """Add a cut point (see :meth:`Canvas.cut`)."""
        c = self._need_canvas()
        return c is not None and c.cut(x, y)

    def end_cut(self) -> bool:
        """End the cut line."""
        return self.canvas is not None and self.canvas.end_cut()

    def toggle_fill(self) -> bool:
        """Continuous filling on / off (turns continuous unfilling off)."""
        self.mode = None if self.mode == "fill" else "fill"
        return True

    def toggle_unfill(self) -> bool:
        """Continuous unfilling on / off (turns continuous filling off)."""
        self.mode = None if self.mode == "unfill" else "unfill"
        return True

    def pick(self, swatch: int) -> bool:
        """Make palette swatch ``swatch`` the paint colour."""
        self.color = self.colors.id_of(self.palette.colors[swatch])
        return True

    def undo(self) -> bool:
        """Undo the last action on this image."""
        c = self._need_canvas()
        if c is None:
            return False
        if not c.undo():
            self.say("nothing to undo")
            return False
        return True

    def reset(self) -> bool:
        """Remove all paint and cuts of this image (undo brings them back)."""
        self.mode = None
        c = self._need_canvas()
        return c is not None and c.reset()

    def toggle_debug(self) -> bool:
        """Show or hide the debug views."""
        self.debug = not self.debug
        return True

    def template_paint(self) -> bool:
        """Paint every template found in the image (one undo step)."""
        c = self._need_canvas()
        if c is None:
            return False
        if not self.templates:
            self.say("no templates: start icas-segment with --templates DIR")
            return False
        ys, xs, colors, matches = self.templates.pixels(c.image, threshold=self.template_threshold)
        if not matches:
            self.say("template painting: no template matched")
            return False
        uniq, inverse = np.unique(colors, axis=0, return_inverse=True)
        ids = np.array([self.colors.id_of(u) for u in uniq], np.int32)[inverse.ravel()]
        changed = c.paint_pixels(ys, xs, ids)
        self.say(f"template painting: {len(matches)} match(es) painted")
        return changed

    # ------------------------------------------------------------------ saving
    def save(self) -> bool:
        """Write the outputs of this image; False (with a message) when it cannot."""
        c = self._need_canvas()
        if c is None:
            return False
        try:
            files = save_outputs(
                self.out_dir,
                self.stems[self.index],
                c.paint,
                self.colors,
                formats=self.export,
                overwrite=self.overwrite,
                image_path=self.path,
            )
        except (OSError, ValueError) as exc:
            self.say(f"not saved: {exc}")
            return False
        self.saved.add(self.index)
        self.files[self.index] = files
        if files:
            self.say(f"saved {len(files)} file(s) to {os.fspath(self.out_dir)}")
        else:
            self.say(f"{self.path.name}: nothing painted, nothing written")
        return True

    def save_and_next(self) -> bool:
        """Save, then go to the next image (stays, saved, on the last one)."""
        if not self.save():
            return False
        if self.index >= len(self.paths) - 1:
            self.say(f"{self.message}; that was the last image (q quits)")
            return True
        self.next()
        return True

    # ------------------------------------------------------------------ events
    def key(self, code) -> str:
        """Do what key ``code`` (an OpenCV key code or a character) means.

        Returns
        -------
        str
            ``"quit"``, ``"opened"`` (another image is current), ``"changed"``
            (redraw), ``"unchanged"`` or ``"unknown"`` (not a painter key).
        """
        ch = key_char(code)
        if ch not in KEYS:
            return "unknown"
        action = KEYS[ch][0]
        if action == "quit":
            self.quit = True
            log.info("key %r: quit", ch)
            return "quit"
        before = self.index
        changed = getattr(self, action)()
        outcome = "opened" if self.index != before else ("changed" if changed else "unchanged")
        log.info("key %r: %s, %s", ch, action, outcome)
        return outcome

    def mouse(self, event: int, x: int, y: int, flags: int = 0) -> bool:
        """Handle an OpenCV mouse event on the image window (image coordinates).

        Returns True when the picture changed.

        Notes
        -----
        Qt reports a double click as press, release, double click, press,
        release; the press right after a double click is part of it and is
        ignored (other back ends send no such press: the release clears it).
        """
        what, changed = self._mouse(event, x, y)
        if what is not None and (changed or not what.startswith("move")):
            log.info("%s (%d, %d): %s", what, x, y, "changed" if changed else "no change")
        return changed

    def _mouse(self, event: int, x: int, y: int) -> tuple[str | None, bool]:
        """``(what happened, changed)`` for one mouse event."""
        if event in _DOUBLE:
            button = _DOUBLE[event]
            self._swallow.add(button)
            action = {"left": "toggle_fill", "right": "toggle_unfill", "middle": "end_cut"}[button]
            return f"double {button} click: {action}", getattr(self, action)()
        if event in _BUTTON_UP:
            self._swallow.discard(_BUTTON_UP[event])
            return None, False
        if self.canvas is None or not self.canvas.inside(x, y):
            return None, False
        if event in _BUTTON_DOWN:
            button = _BUTTON_DOWN[event]
            if button in self._swallow:  # the second press of a double click
                self._swallow.discard(button)
                return None, False
            action = {"left": "fill", "right": "unfill", "middle": "cut"}[button]
            return f"{button} click: {action}", getattr(self, action)(x, y)
        if event == cv2.EVENT_MOUSEMOVE and self.mode is not None:
            return f"move: {self.mode}", getattr(self, self.mode)(x, y)
        return None, False

    def palette_mouse(self, event: int, x: int, y: int, flags: int = 0) -> bool:
        """Handle a mouse event on the colour window: a left click picks a colour."""
        if event != cv2.EVENT_LBUTTONDOWN:
            return False
        swatch = self.palette.color_at(x, y)
        if swatch is None:
            return False
        self.pick(swatch)
        log.info("colour click (%d, %d): %s", x, y, color_label(self.colors.bgr(self.color)))
        return True

    # ------------------------------------------------------------------ pictures
    def picture(self) -> np.ndarray:
        """What the image window shows (the image itself while waiting for labels)."""
        if self.canvas is not None:
            return self.canvas.picture()
        if self.image is not None:
            return self.image
        return np.zeros((240, 320, 3), np.uint8)

    def palette_picture(self) -> np.ndarray:
        """What the colour window shows."""
        return self.palette.draw(self.colors.bgr(self.color), self.mode, self.message)
