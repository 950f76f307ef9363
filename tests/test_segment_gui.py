"""Real windows: ``python -m icas.segment`` under a virtual screen (Xvfb), driven
with xdotool (mouse clicks, double clicks, drags, keys); the saved masks are
checked pixel by pixel. Skipped only where Xvfb or xdotool cannot run."""

from __future__ import annotations

import json
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
from PIL import Image

from icas.segment.export import color_label, mask_name
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
            # Without -noreset, as xvfb-run starts it: the server resets whenever its
            # last client leaves (between two apps), which icas-segment must survive.
            [xvfb, "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
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
    """``python -m icas.segment -v ARGS`` (or ``python ENTRY -v ARGS``) on a
    display, with xdotool at hand.

    ``-v`` makes the painter log every click and key it handles, so each step
    waits for its effect before the next one.
    """

    def __init__(self, display: str, args, tmp_path: Path, entry=("-m", "icas.segment")):
        self.env = {**os.environ, "DISPLAY": display}
        self.last_press: dict[int, float] = {}
        self.pointer: tuple | None = None  # (window, x, y) the mouse was last moved to
        self.err = tmp_path / "stderr.txt"
        self.out = tmp_path / "stdout.txt"
        command = [sys.executable, *map(str, entry), "-v", *map(str, args)]
        with open(self.err, "wb") as e, open(self.out, "wb") as o:
            self.proc = subprocess.Popen(
                ["timeout", "60", *command],
                env=self.env,
                stdout=o,
                stderr=e,
            )

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"exited ({self.proc.returncode}):\n{self.stderr()}")

    def wait_for(self, text: str, *, after: int = 0, timeout: float = 20.0) -> None:
        """Wait until ``text`` appears in stderr (past its first ``after`` characters)."""

        def seen():
            self.alive()
            return text in self.stderr()[after:]

        try:
            poll(seen, repr(text), timeout)
        except AssertionError as exc:
            tail = "\n".join(self.stderr()[after:].splitlines()[-15:])
            raise AssertionError(f"{exc}; the app logged since:\n{tail}") from None

    def xdotool(self, *args, check: bool = True) -> str:
        res = subprocess.run(
            ["xdotool", *map(str, args)], env=self.env, capture_output=True, text=True, timeout=20
        )
        if check and res.returncode != 0:
            raise AssertionError(f"xdotool {' '.join(map(str, args))} failed: {res.stderr}")
        return res.stdout.strip() if res.returncode == 0 else ""

    def window(self, title: str, size: tuple[int, int]) -> str:
        """Id of the visible window whose title starts with ``title``, once it has
        ``size`` (w, h): mapped and showing its picture."""

        def found():
            self.alive()
            ids = self.xdotool("search", "--onlyvisible", "--name", f"^{title}", check=False)
            for wid in ids.split():
                geometry = self.xdotool("getwindowgeometry", wid, check=False)
                if f"Geometry: {size[0]}x{size[1]}" in geometry:
                    return wid
            return None

        return poll(found, f"window {title!r} of size {size}")

    def gone(self, title: str) -> None:
        """Wait until no visible window's title starts with ``title``."""

        def none_left():
            self.alive()
            return not self.xdotool("search", "--onlyvisible", "--name", f"^{title}", check=False)

        poll(none_left, f"windows {title!r} to close")

    def click(self, wid: str, x: int, y: int, expect: str, button: int = 1, repeat: int = 1):
        """Click and wait for the app to log ``expect``.

        Synthetic input on a heavily loaded machine now and then loses a
        click; every click here is idempotent (fill, unfill, pick a colour, a
        cut point repeating the last one), so an unseen one is sent again.
        """
        for _attempt in range(3):
            # Qt takes two presses of a button within its double-click interval
            # (400 ms) for a double click unless it saw the mouse move away in
            # between, which may come late under load: single clicks keep apart.
            wait = self.last_press.get(button, -1.0) + 0.45 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            start = len(self.stderr())
            self.move(wid, x, y)
            self.xdotool("click", "--repeat", repeat, "--delay", 60, button)
            self.last_press[button] = time.monotonic()
            try:
                self.wait_for(expect, after=start, timeout=8)
                return
            except AssertionError:
                self.alive()
        raise AssertionError(f"the app never logged {expect!r}:\n{self.stderr()}")

    def move(self, wid: str, x: int, y: int) -> None:
        # xdotool's --sync waits for the pointer to move: about 15 s in vain
        # when it is there already.
        if self.pointer != (wid, x, y):
            self.xdotool("mousemove", "--sync", "--window", wid, x, y)
            self.pointer = (wid, x, y)

    def drag(self, wid: str, start, end, button: int) -> None:
        self.move(wid, *start)
        self.xdotool("mousedown", button)
        self.move(wid, (start[0] + end[0]) // 2, (start[1] + end[1]) // 2)
        self.move(wid, *end)
        self.xdotool("mouseup", button)

    def key(self, wid: str, key: str, expect: str) -> None:
        """Press a key and wait for ``expect``.

        Keys are not idempotent, so a key is sent again only when it was
        lost: the app logs every key it handles (``key 'n': ...``), and on a
        heavily loaded machine a synthetic key sent just as a window appears
        now and then never arrives."""
        for _attempt in range(3):
            start = len(self.stderr())
            self.xdotool("windowfocus", "--sync", wid, "key", key)
            try:
                self.wait_for(expect, after=start, timeout=10)
                return
            except AssertionError:
                self.alive()
                if "key " in self.stderr()[start:]:  # handled, just slow: wait on
                    self.wait_for(expect, after=start)
                    return
        raise AssertionError(f"the app never handled the key {key!r}:\n{self.stderr()}")

    def finish(self) -> int:
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.close()
            raise

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # timeout passes SIGTERM on to the app
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def app(display, tmp_path):
    apps = []

    def start(*args, entry=("-m", "icas.segment")):
        a = App(display, args, tmp_path, entry)
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
    a.click(img, 60, 50, "left click: fill (60, 50): changed")  # the rectangle, first colour
    third = DEFAULT_COLORS[2]
    a.click(colors, *palette.swatch_center(2), f"R:{third[2]},G:{third[1]},B:{third[0]}")
    a.click(img, 5, 5, "left click: fill (5, 5): changed")  # the background, third colour
    a.key(img, "space", "[2/2] im1.png: 2 segments")
    red = read_mask(out / mask_name("im0", RED))
    np.testing.assert_array_equal(red, region(30, 40, 90, 110))
    np.testing.assert_array_equal(
        read_mask(out / mask_name("im0", third)), 255 - region(30, 40, 90, 110)
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [mask_name("im0", RED), mask_name("im0", third)]
    )
    # Two middle clicks cut the second rectangle at x = 80; fill its left part.
    a.click(img, 5, 5, "left click: fill (5, 5): changed")
    a.click(img, 80, 10, "middle click: cut (80, 10)", button=2)
    a.click(img, 80, 110, "middle click: cut (80, 110)", button=2)
    a.click(img, 40, 50, "left click: fill (40, 50): changed")
    # Right click unfills (and opens no context menu that would swallow the keys).
    a.click(img, 5, 5, "right click: unfill (5, 5): changed", button=3)
    a.key(img, "space", "that was the last image")
    left = read_mask(out / mask_name("im1", third))
    np.testing.assert_array_equal(left, region(20, 20, 100, 80))
    a.xdotool("windowfocus", "--sync", img, "key", "q")
    assert a.finish() == 0
    assert "2 of 2 image(s) saved" in a.out.read_text()
    assert "Traceback" not in a.stderr()


def test_continuous_fill_on_a_scaled_window_then_q_quits_without_saving(app, folder, tmp_path):
    out = tmp_path / "out"
    # The window is at most 120x120: the image is shown at 3/4 size.
    a = app(folder, "--method", "kmeans", "--k", "2", "--out", out, "--max-window", 120, 120)
    a.wait_for("[1/2] im0.png")
    img = a.window("icas painter", (120, 90))
    # A double click (at image pixel (4, 4)): continuous filling on.
    a.click(img, 3, 3, "double left click: toggle_fill (4, 4): changed", repeat=2)
    for x, y in ((20, 20), (40, 35), (56, 45)):  # the mouse passes over the rectangle
        a.move(img, x, y)
    a.wait_for("move: fill (53, 46): changed")  # window (40, 35) is image pixel (53, 46)
    a.key(img, "space", "[2/2] im1.png")
    np.testing.assert_array_equal(read_mask(out / mask_name("im0", RED)), np.full((H, W), 255))
    a.click(img, 3, 3, "left click: fill (4, 4): changed")
    a.xdotool("windowfocus", "--sync", img, "key", "q")
    assert a.finish() == 0
    assert not list(out.glob("im1*"))  # q does not save
    assert "1 of 2 image(s) saved" in a.out.read_text()


def ellipse_folder(tmp_path) -> tuple[Path, np.ndarray]:
    """A folder with one noisy gradient holding a red ellipse; and the ellipse."""
    d = tmp_path / "one"
    d.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([60 + xx * 0.3, 140 + yy * 0.2, 50 + 0 * xx], -1)
    truth = (xx - 80) ** 2 / 35**2 + (yy - 60) ** 2 / 28**2 <= 1
    img[truth] = (40, 40, 200)
    img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(d / "ell.png"), img)
    return d, truth


def test_grabcut_windows_then_paint(app, tmp_path):
    d, truth = ellipse_folder(tmp_path)
    out = tmp_path / "out"
    a = app(d, "--method", "grabcut", "--out", out)
    notes = a.window("icas grabcut annotations", (W, H))
    a.window("icas grabcut segments", (W, H))
    a.drag(notes, (35, 22), (125, 98), button=2)  # the attention rectangle
    a.wait_for("rectangle 35,22 91x77 set")
    a.key(notes, "space", "GrabCut iteration 1")
    a.key(notes, "space", "GrabCut iteration 2")
    a.key(notes, "f", "[1/1] ell.png: 1 segments")
    a.gone("icas grabcut")  # they could be over the painter window and take its clicks
    painter = a.window("icas painter", (W, H))
    a.click(painter, 80, 60, "left click: fill (80, 60): changed")
    a.key(painter, "space", "that was the last image")
    mask = read_mask(out / mask_name("ell", RED)) > 0
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9
    a.xdotool("windowfocus", "--sync", painter, "key", "q")
    assert a.finish() == 0


def test_grabcut_strokes_with_ctrl_undo_reset_then_q(app, tmp_path):
    d, _ = ellipse_folder(tmp_path)
    out = tmp_path / "out"
    a = app(d, "--method", "grabcut", "--out", out)
    notes = a.window("icas grabcut annotations", (W, H))
    a.window("icas grabcut segments", (W, H))

    def stroke(start, end, button, what):
        before = len(a.stderr())
        a.drag(notes, start, end, button=button)
        a.wait_for(f"grabcut stroke: {what}", after=before)

    stroke((80, 55), (90, 60), 1, "sure foreground")
    stroke((5, 5), (20, 5), 3, "sure background")
    a.xdotool("keydown", "ctrl")
    try:
        stroke((70, 60), (75, 62), 1, "probable foreground")
        stroke((140, 100), (150, 104), 3, "probable background")
    finally:
        a.xdotool("keyup", "ctrl")
    a.key(notes, "z", "last stroke removed: 3 stroke(s) left")
    a.key(notes, "space", "GrabCut iteration 1")
    a.key(notes, "r", "key 'r': reset, changed")
    a.key(notes, "z", "no stroke to undo")
    a.xdotool("windowfocus", "--sync", notes, "key", "q")
    assert a.finish() == 0
    assert not out.exists()  # nothing painted, nothing saved
    assert "0 of 1 image(s) saved" in a.out.read_text()
    assert "Traceback" not in a.stderr()


# The CLI loads SAM from a vit_b/l/h checkpoint; a random vit_b takes half a
# minute per image on a CPU. This wrapper swaps in the tiny random SAM, then
# runs the real command line.
TINY_SAM_CLI = """\
import sys
from pathlib import Path

import icas.segment.sam as sam


def load_tiny(torch, sa, model_type, checkpoint):
    # Called where the checkpoint would be loaded: the flags must have got here.
    assert model_type == "vit_b" and Path(checkpoint).name == "tiny.pth", (model_type, checkpoint)
    return sam.tiny_sam(seed=0), "tiny-seed-0"


sam._load = load_tiny
from icas.segment.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
"""

BOX = ((30, 20), (120, 100))
FG_POINT, BG_POINT, EXTRA_POINT = (75, 60), (10, 10), (60, 50)


def test_sam_prompt_window_then_paint(app, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    from icas.segment import SamSession
    from icas.segment.sam import tiny_sam

    d = tmp_path / "imgs"
    d.mkdir()
    cv2.imwrite(str(d / "a.png"), rect_image(30, 40, 90, 110))
    cv2.imwrite(str(d / "b.png"), rect_image(20, 20, 100, 140))
    script = tmp_path / "tiny_sam_segment.py"
    script.write_text(TINY_SAM_CLI)
    out = tmp_path / "out"
    (tmp_path / "tiny.pth").write_bytes(b"")  # the CLI checks it exists; load_tiny ignores it
    cache = tmp_path / "embeddings"
    args = (d, "--method", "sam", "--checkpoint", tmp_path / "tiny.pth", "--out", out,
            "--sam-cache-dir", cache)  # fmt: skip
    a = app(*args, entry=(script,))
    # While the app starts: the reference, the same tiny SAM with the prompts
    # the window should end with.
    session = SamSession(tiny_sam(seed=0))
    session.set_image(cv2.imread(str(d / "a.png")))
    session.add_box(*BOX)
    session.add_point(FG_POINT)
    session.add_point(BG_POINT, positive=False)
    expected = session.predict()[0][0]
    session.add_point(EXTRA_POINT)
    assert (session.predict()[0][0] != expected).any(), "the undone point would not show"
    assert 0 < expected.sum() < expected.size, "the reference mask should be partial"
    y, x = (int(v) for v in np.argwhere(expected)[expected.sum() // 2])
    win = a.window("icas sam", (W, H))

    def box():
        start = len(a.stderr())
        a.drag(win, *BOX, button=2)
        a.wait_for("sam prompt: box (30, 20)-(120, 100)", after=start)

    # First round: every prompt kind, undo, predict, then reset.
    box()
    a.click(win, *FG_POINT, "foreground point (75, 60) added: 2 prompt(s)")
    a.click(win, *BG_POINT, "background point (10, 10) added: 3 prompt(s)", button=3)
    a.key(win, "z", "last prompt removed: 2 prompt(s) left")
    a.key(win, "space", "predicted from 2 prompt(s)")
    a.key(win, "r", "reset: no prompts")
    # Second round: the reference's prompts and one more, undone; f predicts and paints.
    box()
    a.click(win, *FG_POINT, "foreground point (75, 60) added: 2 prompt(s)")
    a.click(win, *BG_POINT, "background point (10, 10) added: 3 prompt(s)", button=3)
    a.click(win, *EXTRA_POINT, "foreground point (60, 50) added: 4 prompt(s)")
    a.key(win, "z", "last prompt removed: 3 prompt(s) left")
    a.key(win, "f", "[1/2] a.png: 1 segments")
    a.gone("icas sam")
    painter = a.window("icas painter", (W, H))
    a.click(painter, x, y, f"left click: fill ({x}, {y}): changed")
    a.key(painter, "space", "[2/2] b.png")
    mask = read_mask(out / mask_name("a", RED))
    assert mask.shape == (H, W) and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, np.where(expected, 255, 0).astype(np.uint8))
    # The second image opens in a new SAM window; q there quits cleanly.
    win = a.window("icas sam", (W, H))
    a.xdotool("windowfocus", "--sync", win, "key", "q")
    assert a.finish() == 0
    assert sorted(p.name for p in out.iterdir()) == [mask_name("a", RED)]
    assert "1 of 2 image(s) saved" in a.out.read_text()
    # Both images were encoded once, in the background, into the disk cache.
    assert len(list((cache / "tiny-seed-0").glob("*.npz"))) == 2
    assert "Traceback" not in a.stderr()


def test_keys_debug_views_templates_and_exports(app, folder, tmp_path):
    # A template cut from im0 around its rectangle (the attention is derived:
    # the border-connected background is ignored) and a segment covering the
    # rectangle's left half; the mask is derived from the segment too.
    root = tmp_path / "tpl"
    (root / "templates").mkdir(parents=True)
    (root / "segments").mkdir()
    im0 = rect_image(30, 40, 90, 110)
    cv2.imwrite(str(root / "templates" / "t.png"), im0[20:100, 30:120])
    segment = np.zeros((80, 90, 3), np.uint8)
    seg_color = (10, 200, 250)  # BGR, not a palette colour
    segment[10:70, 10:45] = seg_color
    cv2.imwrite(str(root / "segments" / "s.png"), segment)
    out = tmp_path / "out"
    a = app(folder, "--method", "kmeans", "--k", "2", "--out", out, "--templates", root,
            "--export", "masks", "indexed", "labelme")  # fmt: skip
    a.wait_for("[1/2] im0.png: 2 segments")
    assert "icas-segment keys:" in a.stderr()  # the key list is printed on start
    img = a.window("icas painter", (W, H))
    a.key(img, "n", "[2/2] im1.png: 2 segments")
    a.key(img, "p", "[1/2] im0.png: 2 segments")
    # d opens the debug views (labels and painted pixels) and closes them again.
    a.key(img, "d", "key 'd': toggle_debug, changed")
    a.window("icas labels", (W, H))
    a.window("icas painted", (W, H))
    a.key(img, "d", "key 'd': toggle_debug, changed")
    a.gone("icas labels")
    a.gone("icas painted")
    a.click(img, 5, 5, "left click: fill (5, 5): changed")
    a.key(img, "z", "key 'z': undo, changed")
    a.key(img, "t", "template painting: 1 match(es) painted")
    a.key(img, "r", "key 'r': reset, changed")
    a.key(img, "z", "key 'z': undo, changed")  # brings the template paint back
    a.key(img, "space", "[2/2] im1.png")
    a.xdotool("windowfocus", "--sync", img, "key", "q")
    assert a.finish() == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([mask_name("im0", seg_color), "im0_indexed.png", "im0.json"])
    np.testing.assert_array_equal(
        read_mask(out / mask_name("im0", seg_color)), region(30, 40, 90, 75)
    )
    with Image.open(out / "im0_indexed.png") as im:
        assert im.mode == "P"
        index = np.asarray(im)
        palette = np.asarray(im.getpalette()).reshape(-1, 3)
    np.testing.assert_array_equal(index != 0, region(30, 40, 90, 75) > 0)
    assert tuple(palette[index[40, 50]]) == seg_color[::-1]  # the palette is RGB
    labelme = json.loads((out / "im0.json").read_text())
    assert [s["label"] for s in labelme["shapes"]] == [color_label(seg_color)]
    assert labelme["imageData"] is None
    assert "Traceback" not in a.stderr()


def test_preview_window_shows_the_png_until_a_key(app, folder, tmp_path):
    out = tmp_path / "prev.png"
    a = app("--preview", folder / "im0.png", "--out", out, "--methods", "kmeans", "graph",
            "--tile-width", 80)  # fmt: skip
    poll(lambda: out.is_file() and a.out.read_text().strip() == str(out), "the PNG")
    pic = read_mask(out)
    assert pic.shape[1] == 2 * 80 and pic.ndim == 3
    win = a.window("icas preview - im0.png", (pic.shape[1], pic.shape[0]))
    a.xdotool("windowfocus", "--sync", win, "key", "x")  # any key closes it
    assert a.finish() == 0
    assert a.stderr() == ""
