"""Real windows: ``python -m icas.segment`` under a virtual screen (Xvfb), driven
with xdotool (mouse clicks, double clicks, drags, keys); the saved masks are
checked pixel by pixel. Skipped only where Xvfb or xdotool cannot run."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from icas.segment.export import mask_name
from icas.segment.palette import DEFAULT_COLORS, Palette

pytestmark = [
    pytest.mark.gui,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Xvfb runs on Linux only"),
]

H, W = 120, 160
BG, FG = (40, 40, 200), (200, 120, 40)  # BGR
RED = DEFAULT_COLORS[0]


@pytest.fixture(scope="module")
def display(tmp_path_factory):
    """A fresh Xvfb server on a display number it picks itself (-displayfd)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb)")
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed (Debian: apt-get install xdotool)")
    log = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    r, w = os.pipe()
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            # -noreset: by default the server resets when its last client leaves,
            # and refuses the next app's connection while it does.
            [
                xvfb,
                "-displayfd",
                str(w),
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ],
            pass_fds=(w,),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    os.close(w)
    # Xvfb writes the number, then a newline: keep reading (and the pipe open)
    # until the newline, or Xvfb dies on a broken pipe.
    text, deadline = b"", time.monotonic() + 15
    while not text.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(r, 64) if ready else b""
        if not chunk:
            break
        text += chunk
    number = text.decode().strip()
    if not number.isdigit() or proc.poll() is not None:
        proc.kill()
        proc.wait()
        os.close(r)
        reason = log.read_text(errors="replace").strip().splitlines()[-2:]
        pytest.skip(f"Xvfb could not start: {' '.join(reason) or 'no display number'}")
    yield f":{number}"
    os.close(r)
    proc.terminate()
    proc.wait(10)


def poll(check, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class App:
    """``python -m icas.segment ARGS`` on a display, with xdotool at hand."""

    def __init__(self, display: str, args, tmp_path: Path):
        self.env = {**os.environ, "DISPLAY": display}
        self.err = tmp_path / "stderr.txt"
        self.out = tmp_path / "stdout.txt"
        with open(self.err, "wb") as e, open(self.out, "wb") as o:
            self.proc = subprocess.Popen(
                ["timeout", "60", sys.executable, "-m", "icas.segment", *map(str, args)],
                env=self.env,
                stdout=o,
                stderr=e,
            )

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"exited ({self.proc.returncode}):\n{self.stderr()}")

    def wait_for(self, text: str) -> None:
        def seen():
            self.alive()
            return text in self.stderr()

        poll(seen, repr(text))

    def xdotool(self, *args) -> str:
        res = subprocess.run(
            ["xdotool", *map(str, args)], env=self.env, capture_output=True, text=True, timeout=20
        )
        return res.stdout.strip() if res.returncode == 0 else ""

    def window(self, title: str, size: tuple[int, int]) -> str:
        """Id of the visible window whose title starts with ``title``, once it has
        ``size`` (w, h): mapped and showing its picture."""

        def found():
            self.alive()
            ids = self.xdotool("search", "--onlyvisible", "--name", f"^{title}").split()
            for wid in ids:
                geometry = self.xdotool("getwindowgeometry", wid)
                if f"Geometry: {size[0]}x{size[1]}" in geometry:
                    return wid
            return None

        return poll(found, f"window {title!r} of size {size}")

    def click(self, wid: str, x: int, y: int, button: int = 1, repeat: int = 1) -> None:
        self.xdotool(
            "mousemove", "--window", wid, x, y, "click", "--repeat", repeat, "--delay", 60, button
        )

    def drag(self, wid: str, start, end, button: int) -> None:
        self.xdotool("mousemove", "--window", wid, *start, "mousedown", button)
        self.xdotool(
            "mousemove", "--window", wid, (start[0] + end[0]) // 2, (start[1] + end[1]) // 2
        )
        self.xdotool("mousemove", "--window", wid, *end, "mouseup", button)

    def key(self, wid: str, key: str) -> None:
        self.xdotool("windowfocus", "--sync", wid, "key", key)

    def finish(self) -> int:
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def app(display, tmp_path):
    apps = []

    def start(*args):
        a = App(display, args, tmp_path)
        apps.append(a)
        return a

    yield start
    for a in apps:
        a.close()


def rect_image(top, left, bottom, right) -> np.ndarray:
    img = np.empty((H, W, 3), np.uint8)
    img[:] = BG
    img[top:bottom, left:right] = FG
    return img


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    cv2.imwrite(str(d / "im0.png"), rect_image(30, 40, 90, 110))
    cv2.imwrite(str(d / "im1.png"), rect_image(20, 20, 100, 140))
    return d


def read_mask(path: Path) -> np.ndarray:
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert m is not None, f"{path.name} was not written"
    return m


def region(top, left, bottom, right) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[top:bottom, left:right] = 255
    return m


def test_click_pick_cut_save_and_quit(app, folder, tmp_path):
    out = tmp_path / "out"
    a = app(folder, "--method", "kmeans", "--k", "2", "--out", out)
    a.wait_for("[1/2] im0.png: 2 segments")
    palette = Palette()
    img = a.window("icas painter", (W, H))
    colors = a.window("icas colours", (palette.width, palette.grid_height + palette.status_height))
    a.click(img, 60, 50)  # the rectangle, in the first colour
    a.click(colors, *palette.swatch_center(2))
    a.click(img, 5, 5)  # the background, in the third colour
    a.key(img, "space")
    a.wait_for("[2/2] im1.png: 2 segments")
    red = read_mask(out / mask_name("im0", RED))
    np.testing.assert_array_equal(red, region(30, 40, 90, 110))
    third = read_mask(out / mask_name("im0", DEFAULT_COLORS[2]))
    np.testing.assert_array_equal(third, 255 - region(30, 40, 90, 110))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [mask_name("im0", RED), mask_name("im0", DEFAULT_COLORS[2])]
    )
    # Two middle clicks cut the second rectangle at x = 80; fill its left part.
    a.click(img, 80, 10, button=2)
    a.click(img, 80, 110, button=2)
    a.click(img, 40, 50)
    a.key(img, "space")
    a.wait_for("that was the last image")
    left = read_mask(out / mask_name("im1", DEFAULT_COLORS[2]))
    np.testing.assert_array_equal(left, region(20, 20, 100, 80))
    a.key(img, "q")
    assert a.finish() == 0
    assert "2 of 2 image(s) saved" in a.out.read_text()
    assert "Traceback" not in a.stderr()


def test_continuous_fill_then_q_quits_without_saving(app, folder, tmp_path):
    out = tmp_path / "out"
    a = app(folder, "--method", "kmeans", "--k", "2", "--out", out)
    a.wait_for("[1/2] im0.png")
    img = a.window("icas painter", (W, H))
    a.click(img, 5, 5, repeat=2)  # double click: continuous filling on
    for x, y in ((30, 30), (50, 45), (60, 50)):  # the mouse passes over the rectangle
        a.xdotool("mousemove", "--window", img, x, y)
    a.key(img, "space")
    a.wait_for("[2/2] im1.png")
    np.testing.assert_array_equal(read_mask(out / mask_name("im0", RED)), np.full((H, W), 255))
    a.click(img, 5, 5)
    a.key(img, "q")
    assert a.finish() == 0
    assert not list(out.glob("im1*"))  # q does not save
    assert "1 of 2 image(s) saved" in a.out.read_text()


def test_grabcut_windows_then_paint(app, tmp_path):
    d = tmp_path / "one"
    d.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([60 + xx * 0.3, 140 + yy * 0.2, 50 + 0 * xx], -1)
    truth = (xx - 80) ** 2 / 35**2 + (yy - 60) ** 2 / 28**2 <= 1
    img[truth] = (40, 40, 200)
    img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(d / "ell.png"), img)
    out = tmp_path / "out"
    a = app(d, "--method", "grabcut", "--out", out)
    notes = a.window("icas grabcut annotations", (W, H))
    a.window("icas grabcut segments", (W, H))
    a.drag(notes, (35, 22), (125, 98), button=2)  # the attention rectangle
    a.wait_for("rectangle set")
    for i in (1, 2):
        a.key(notes, "space")
        a.wait_for(f"GrabCut iteration {i}")
    a.key(notes, "f")
    painter = a.window("icas painter", (W, H))
    a.click(painter, 80, 60)
    a.key(painter, "space")
    a.wait_for("that was the last image")
    mask = read_mask(out / mask_name("ell", RED)) > 0
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9
    a.key(painter, "q")
    assert a.finish() == 0
