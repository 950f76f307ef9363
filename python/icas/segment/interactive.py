"""Mouse and keys of the GrabCut and SAM windows, without the windows.

A tool wraps a session (:class:`~icas.segment.GrabCutSession`,
:class:`~icas.segment.SamSession`) and turns OpenCV mouse events and key
codes into its calls; :meth:`pictures` says what each window shows. When the
person finishes (``f``), :meth:`labels` goes to the painter.

GrabCut (two windows: segments and annotations; both take the mouse)
    middle button drag: attention rectangle; left / right drag: sure
    foreground / background strokes; ctrl + left / right drag: probable
    foreground / background. Keys: space one GrabCut iteration, f finish and
    paint, r reset, z undo the last stroke, q quit.
SAM (one window)
    middle button drag: box; left / right click: foreground / background
    point. Keys: space predict, f finish and paint, z undo the last prompt,
    r reset, q quit.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from icas.segment.painter import key_char

log = logging.getLogger(__name__)

_STROKE_NAMES = {
    "fg": "sure foreground",
    "bg": "sure background",
    "pr_fg": "probable foreground",
    "pr_bg": "probable background",
}
_POSITIVE = (0, 220, 0)
_NEGATIVE = (0, 0, 230)
_BOX = (255, 200, 0)


class _Tool:
    """What the two tools share: the message, the key dispatch, the pending
    middle-button drag (rectangle or box)."""

    keys: dict[str, str] = {}

    def __init__(self):
        self.message = ""
        self._drag: list | None = None  # [start, end] of a middle-button drag

    def key(self, code) -> str:
        """Do what key ``code`` means; returns ``"quit"``, ``"finish"``,
        ``"changed"``, ``"unchanged"`` or ``"unknown"``."""
        ch = key_char(code)
        action = self.keys.get(ch)
        if action is None:
            return "unknown"
        if action == "quit":
            log.info("key %r: quit", ch)
            return "quit"
        try:
            result = getattr(self, action)()
        except ValueError as exc:  # e.g. GrabCut without foreground: say why, go on
            self.message = str(exc)
            outcome = "changed"
        else:
            if action == "finish":
                outcome = "finish" if result else "changed"
            else:
                outcome = "changed" if result else "unchanged"
        log.info("key %r: %s, %s", ch, action, outcome)
        return outcome

    def _drag_event(self, event, x, y) -> tuple | None:
        """Track a middle-button drag; returns ``(start, end)`` when it ends."""
        if event == cv2.EVENT_MBUTTONDOWN:
            self._drag = [(x, y), (x, y)]
        elif event == cv2.EVENT_MOUSEMOVE and self._drag is not None:
            self._drag[1] = (x, y)
        elif event == cv2.EVENT_MBUTTONUP and self._drag is not None:
            start, self._drag = self._drag[0], None
            return start, (x, y)
        return None


class GrabCutTool(_Tool):
    """The GrabCut window pair's behaviour on a :class:`GrabCutSession`.

    Parameters
    ----------
    session : GrabCutSession
    radius : int, default 3
        Half thickness of strokes, in pixels.
    """

    titles = ("icas grabcut segments", "icas grabcut annotations")
    keys = {"q": "quit", "f": "finish", "r": "reset", " ": "step", "z": "undo"}

    def __init__(self, session, *, radius: int = 3):
        super().__init__()
        self.session = session
        self.radius = radius
        self._stroke: tuple[str, list] | None = None
        self.message = "middle drag: rectangle, left/right: fg/bg (ctrl: probable), space: run"

    def mouse(self, event: int, x: int, y: int, flags: int = 0) -> bool:
        """Handle a mouse event (either window); True when the pictures changed."""
        done = self._drag_event(event, x, y)
        if done is not None:
            try:
                x, y, w, h = self.session.set_rect(*done)
                self.message = f"rectangle {x},{y} {w}x{h} set: press space to run GrabCut"
            except ValueError as exc:
                self.message = str(exc)
            return True
        if self._drag is not None:
            return event == cv2.EVENT_MOUSEMOVE
        ctrl = bool(flags & cv2.EVENT_FLAG_CTRLKEY)
        if event in (cv2.EVENT_LBUTTONDOWN, cv2.EVENT_RBUTTONDOWN):
            kind = "fg" if event == cv2.EVENT_LBUTTONDOWN else "bg"
            self._stroke = (("pr_" if ctrl else "") + kind, [(x, y)])
            return True
        if self._stroke is not None:
            if event == cv2.EVENT_MOUSEMOVE:
                self._stroke[1].append((x, y))
                return True
            if event in (cv2.EVENT_LBUTTONUP, cv2.EVENT_RBUTTONUP):
                kind, points = self._stroke
                self._stroke = None
                self.session.mark(points, kind, radius=self.radius)
                what = _STROKE_NAMES[kind]
                self.message = (
                    f"{what} stroke added: {len(self.session.strokes)} stroke(s); space: run"
                )
                log.info("grabcut stroke: %s, %d point(s)", what, len(points))
                return True
        return False

    def step(self) -> bool:
        self.session.step()
        self.message = f"GrabCut iteration {self.session.iterations} (f: paint)"
        return True

    def reset(self) -> bool:
        self.session.reset()
        self._stroke = self._drag = None
        self.message = "reset"
        return True

    def undo(self) -> bool:
        if not self.session.undo():
            self.message = "no stroke to undo"
            return False
        self.message = f"last stroke removed: {len(self.session.strokes)} stroke(s) left"
        return True

    def finish(self) -> bool:
        """True when there are labels to paint (runs one iteration if none ran yet)."""
        if self.session.iterations == 0:
            self.session.step()  # raises ValueError (shown) when nothing is marked
        return True

    def labels(self) -> np.ndarray:
        """Foreground as label 1, background 0 (not paintable)."""
        return self.session.labels()

    def pictures(self) -> dict[str, np.ndarray]:
        """``{window title: BGR picture}``: the segments and the annotations."""
        notes = self.session.annotations()
        if self._stroke is not None:
            from icas.segment.grabcut import STROKES

            kind, points = self._stroke
            pts = np.asarray(points, np.int32).reshape(-1, 1, 2)
            cv2.polylines(notes, [pts], False, STROKES[kind][1], 2 * self.radius + 1)
        if self._drag is not None:
            cv2.rectangle(notes, self._drag[0], self._drag[1], (0, 255, 0), 1)
        return {self.titles[0]: self.session.overlay(), self.titles[1]: notes}


class SamTool(_Tool):
    """The SAM window's behaviour on a :class:`SamSession` and one image.

    Parameters
    ----------
    session : SamSession
        Its image is set here (from its cache when prefetched).
    image : ndarray of shape (h, w, 3), uint8
        BGR image.
    """

    titles = ("icas sam",)
    keys = {"q": "quit", "f": "finish", "r": "reset", " ": "predict", "z": "undo"}

    def __init__(self, session, image):
        super().__init__()
        self.session = session
        session.set_image(image)
        self.image = np.asarray(image)
        self.message = "left/right: fg/bg point, middle drag: box, space: predict"

    def mouse(self, event: int, x: int, y: int, flags: int = 0) -> bool:
        """Handle a mouse event; True when the picture changed."""
        h, w = self.image.shape[:2]
        done = self._drag_event(event, x, y)
        try:
            if done is not None:
                self.session.add_box(*done)
                x0, y0, x1, y1 = (int(round(v)) for v in self.session.prompts[-1].xy)
                self._prompted(f"box ({x0}, {y0})-({x1}, {y1})")
                return True
            if self._drag is not None:
                return event == cv2.EVENT_MOUSEMOVE
            inside = 0 <= x < w and 0 <= y < h
            if event in (cv2.EVENT_LBUTTONDOWN, cv2.EVENT_RBUTTONDOWN) and inside:
                positive = event == cv2.EVENT_LBUTTONDOWN
                self.session.add_point((x, y), positive=positive)
                self._prompted(f"{'foreground' if positive else 'background'} point ({x}, {y})")
                return True
        except ValueError as exc:
            self.message = str(exc)
            log.info("prompt refused: %s", exc)
            return True
        return False

    def _prompted(self, what: str) -> None:
        n = len(self.session.prompts)
        # The count makes every message differ from the one before (the window
        # prints a message when it changes).
        self.message = f"{what} added: {n} prompt(s); space: predict, f: paint"
        log.info("sam prompt: %s", what)

    def predict(self) -> bool:
        masks, scores = self.session.predict()
        pixels = int(np.count_nonzero(masks[0]))
        self.message = (
            f"mask of {pixels} pixels predicted from {len(self.session.prompts)} prompt(s) "
            f"(score {float(scores[0]):.2f}); f: paint"
        )
        return True

    def reset(self) -> bool:
        self.session.reset()
        self._drag = None
        self.message = "reset: no prompts"
        return True

    def undo(self) -> bool:
        if not self.session.undo():
            self.message = "no prompt to undo"
            return False
        self.message = f"last prompt removed: {len(self.session.prompts)} prompt(s) left"
        return True

    def finish(self) -> bool:
        """True when there is a mask to paint (predicts first if prompts are new)."""
        if self.session.mask() is None:
            self.session.predict()  # raises ValueError (shown) without prompts
        return True

    def labels(self) -> np.ndarray:
        """The mask as label 1, the rest 0 (not paintable)."""
        return self.session.labels()

    def pictures(self) -> dict[str, np.ndarray]:
        """``{window title: BGR picture}``: the image, the mask tinted, the prompts."""
        out = self.image.copy()
        mask = self.session.mask()
        if mask is not None:
            tint = np.array(_POSITIVE, np.float32)
            out[mask] = (out[mask] * 0.5 + tint * 0.5).astype(np.uint8)
        for p in self.session.prompts:
            if p.kind == "box":
                x0, y0, x1, y1 = (int(round(v)) for v in p.xy)
                cv2.rectangle(out, (x0, y0), (x1, y1), _BOX, 2)
            else:
                x, y = (int(round(v)) for v in p.xy)
                cv2.circle(out, (x, y), 4, _POSITIVE if p.positive else _NEGATIVE, -1)
                cv2.circle(out, (x, y), 4, (255, 255, 255), 1)
        if self._drag is not None:
            cv2.rectangle(out, self._drag[0], self._drag[1], _BOX, 1)
        return {self.titles[0]: out}
