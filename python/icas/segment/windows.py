"""The OpenCV windows: forward mouse and keys to the state objects, draw them.

Nothing here decides what a click means (that is :mod:`icas.segment.painter`
and :mod:`icas.segment.interactive`); this module opens windows, maps window
coordinates to image coordinates (large images are shown scaled down) and
redraws after each change.

OpenCV's Qt back end aborts the whole process (an uncatchable SIGABRT) when
it cannot reach a screen, so :func:`screen_problem` is asked first, and the
windows are opened only when it finds none. Windows are created with
``cv2.WINDOW_GUI_NORMAL``: no toolbar (window coordinates are image
coordinates) and no context menu on right click (it would block the keys).
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from collections.abc import Callable

import cv2
import numpy as np

from icas.segment.painter import HELP, Painter

IMAGE_WINDOW = "icas painter"
COLOR_WINDOW = "icas colours"
DEBUG_WINDOWS = {"labels": "icas labels", "painted": "icas painted"}
_FLAGS = cv2.WINDOW_GUI_NORMAL | cv2.WINDOW_AUTOSIZE
_GAP = 10


class NoScreenError(RuntimeError):
    """Windows cannot be opened here (no display, or OpenCV without a GUI)."""


class _Screen:
    """A connection to the X display, held while the windows are open.

    An X server with no client left resets itself (Xvfb and ``xvfb-run`` do
    by default) and refuses connections for a moment while it does; Qt
    aborts the process when its connection is refused. Holding a connection
    of our own from before the first window until after the last one means
    the server never resets under Qt, and connecting is retried for a moment
    to ride out a reset that another client's exit started.
    """

    def __init__(self, *, retry_seconds: float = 2.0):
        self.problem: str | None = None
        self._xcb = None
        self._conn = None
        if sys.platform in ("win32", "darwin"):
            return
        display = os.environ.get("DISPLAY")
        if not display:
            self.problem = (
                "no screen: DISPLAY is not set; run icas-segment in a desktop session "
                "(or under a virtual screen: xvfb-run icas-segment ...)"
            )
            return
        try:
            xcb = ctypes.CDLL("libxcb.so.1")
        except OSError:
            self.problem = "cannot open windows: the X11 library libxcb.so.1 is not installed"
            return
        xcb.xcb_connect.restype = ctypes.c_void_p
        xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
        xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
        deadline = time.monotonic() + retry_seconds
        while True:
            conn = xcb.xcb_connect(None, None)
            if not xcb.xcb_connection_has_error(conn):
                self._xcb, self._conn = xcb, conn
                return
            xcb.xcb_disconnect(conn)  # frees the error object of a failed connection
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        self.problem = (
            f"no screen: cannot connect to the X display {display!r} (is its X server running?)"
        )

    def close(self) -> None:
        if self._conn is not None:
            self._xcb.xcb_disconnect(self._conn)
            self._conn = None

    def __enter__(self):
        if self.problem:
            self.close()
            raise NoScreenError(self.problem)
        return self

    def __exit__(self, *exc):
        self.close()


def screen_problem() -> str | None:
    """Why windows cannot be opened here, in one line, or None when they can.

    On Linux and other X11 systems the display named by ``DISPLAY`` must
    accept a connection (checked with libxcb, the library OpenCV's Qt uses;
    retried for up to two seconds, while a server resets); Windows and macOS
    always have a screen.
    """
    screen = _Screen()
    screen.close()
    return screen.problem


def _named_window(title: str) -> None:
    try:
        cv2.namedWindow(title, _FLAGS)
    except cv2.error as exc:  # a build without GUI support (the headless wheels)
        raise NoScreenError(
            "this OpenCV build cannot open windows (a headless build?); install "
            "opencv-contrib-python"
        ) from exc


class _View:
    """Scale between image and window coordinates (large images shown smaller)."""

    def __init__(self, max_size: tuple[int, int]):
        self.max_w, self.max_h = max_size
        self.scale = 1.0

    def fit(self, shape) -> None:
        h, w = shape[:2]
        self.scale = min(1.0, self.max_w / w, self.max_h / h)

    def to_image(self, x: int, y: int) -> tuple[int, int]:
        if self.scale == 1.0:
            return x, y
        return int(x / self.scale), int(y / self.scale)

    def show(self, title: str, picture: np.ndarray) -> None:
        if self.scale != 1.0:
            h, w = picture.shape[:2]
            size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
            picture = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
        cv2.imshow(title, picture)


def _visible(title: str) -> bool:
    try:
        return cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) >= 1
    except cv2.error:
        return False


class PainterWindows:
    """The painter's windows: the colour picker and the image (and the debug views).

    Parameters
    ----------
    painter : Painter
    tool_factory : callable, optional
        ``tool_factory(image) -> GrabCutTool | SamTool`` for interactive
        methods: called for each image the painter opens without labels.
    max_size : (int, int), default (1600, 1000)
        Largest window size; larger images are shown scaled down (clicks are
        mapped back to image pixels).
    log : callable, default print to stderr
        Receives the help text and every message.
    """

    def __init__(
        self,
        painter: Painter,
        *,
        tool_factory: Callable | None = None,
        max_size: tuple[int, int] = (1600, 1000),
        log: Callable[[str], None] | None = None,
    ):
        self.painter = painter
        self.tool_factory = tool_factory
        self.view = _View(max_size)
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self._pending: list[str] = []
        self._dirty = True
        self._open: set[str] = set()
        painter.on_message = self._pending.append

    # ------------------------------------------------------------------ events
    def _on_image(self, event, x, y, flags, _param) -> None:
        xi, yi = self.view.to_image(x, y)
        if self.painter.mouse(event, xi, yi, flags):
            self._dirty = True

    def _on_colors(self, event, x, y, flags, _param) -> None:
        if self.painter.palette_mouse(event, x, y, flags):
            self._dirty = True

    # ------------------------------------------------------------------ drawing
    def _flush(self) -> None:
        for text in self._pending:
            self.log(text)
        self._pending.clear()

    def _window(self, title: str, callback=None, position=None) -> None:
        if title in self._open:
            return
        _named_window(title)
        self._open.add(title)
        if callback is not None:
            cv2.setMouseCallback(title, callback)
        if position is not None:
            cv2.moveWindow(title, *position)

    def _close(self, title: str) -> None:
        if title in self._open:
            cv2.destroyWindow(title)
            self._open.discard(title)

    def _draw(self) -> None:
        p = self.painter
        self.view.fit(p.picture().shape)
        self._window(COLOR_WINDOW, self._on_colors, (0, 0))
        self._window(IMAGE_WINDOW, self._on_image, (p.palette.width + _GAP, 0))
        cv2.imshow(COLOR_WINDOW, p.palette_picture())
        self.view.show(IMAGE_WINDOW, p.picture())
        cv2.setWindowTitle(IMAGE_WINDOW, f"{IMAGE_WINDOW} - {p.title}")
        if p.debug and p.canvas is not None:
            y = p.palette.grid_height + p.palette.status_height + 40
            for key, picture in p.canvas.debug_views().items():
                self._window(DEBUG_WINDOWS[key], None, (0 if key == "labels" else 400, y))
                self.view.show(DEBUG_WINDOWS[key], picture)
        else:
            for title in DEBUG_WINDOWS.values():
                self._close(title)
        self._dirty = False

    # ------------------------------------------------------------------ loops
    def run(self) -> int:
        """Show the windows until the painter quits.

        Returns
        -------
        int
            0 after quitting, 1 when no image could be opened.

        Raises
        ------
        NoScreenError
            When no window can be opened (checked before any window call).
        """
        with _Screen():
            return self._run()

    def _run(self) -> int:
        p = self.painter
        self.log(HELP)
        started = p.start()
        self._flush()
        if not started:
            return 1
        try:
            while not p.quit:
                if p.needs_labels:
                    self._flush()  # e.g. "[i/n] name" of the image the tool opens on
                    labels = self._labels_from_tool()
                    if labels is None:
                        break
                    p.set_labels(labels)
                    p.say(p.status())
                    self._dirty = True
                if self._dirty:
                    self._draw()
                key = cv2.waitKeyEx(20)
                self._flush()  # after drawing: a message means the window shows it
                if key != -1 and p.key(key) != "unknown":
                    self._dirty = True
                if not p.quit and not _visible(IMAGE_WINDOW):
                    break  # closed by the window manager
        finally:
            cv2.destroyAllWindows()
            cv2.waitKey(1)  # let the back end process the destruction
            self._open.clear()
            self._flush()
        return 0

    def _labels_from_tool(self) -> np.ndarray | None:
        """Run the interactive tool of the current image; its labels, or None on quit."""
        p = self.painter
        if self.tool_factory is None:
            raise RuntimeError("the labels of this image come from a window, but no tool was given")
        tool = self.tool_factory(p.image)
        self.view.fit(p.image.shape)
        titles = list(tool.titles)

        def on_mouse(event, x, y, flags, _param):
            if tool.mouse(event, *self.view.to_image(x, y), flags):
                state["dirty"] = True

        state = {"dirty": True, "message": None}
        x = 0
        for title in titles:
            self._window(title, on_mouse, (x, 0))
            x += int(p.image.shape[1] * self.view.scale) + _GAP
        try:
            while True:
                if state["dirty"]:
                    for title, picture in tool.pictures().items():
                        self.view.show(title, picture)
                        cv2.setWindowTitle(title, f"{title} - {p.title}")
                    state["dirty"] = False
                key = cv2.waitKeyEx(20)
                if tool.message != state["message"]:
                    state["message"] = tool.message
                    self.log(tool.message)
                if key == -1:
                    if not all(_visible(t) for t in titles):
                        return None
                    continue
                outcome = tool.key(key)
                if outcome == "quit":
                    return None
                if outcome == "finish":
                    return tool.labels()
                state["dirty"] = outcome != "unknown"
        finally:
            for title in titles:
                self._close(title)
            cv2.waitKey(1)  # gone from the screen before the painter's windows appear


def show_picture(picture: np.ndarray, *, title: str = "icas preview") -> None:
    """Show a picture until a key is pressed or its window is closed.

    Raises
    ------
    NoScreenError
        When no window can be opened (checked before any window call).
    """
    with _Screen():
        _named_window(title)
        try:
            cv2.imshow(title, picture)
            while cv2.waitKeyEx(50) == -1 and _visible(title):
                pass
        finally:
            cv2.destroyWindow(title)
            cv2.waitKey(1)
