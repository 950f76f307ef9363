"""The painter's state machine, without a screen: every action, key and mouse
event, undo/reset, cuts, continuous modes, saving, navigation, prefetching."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from icas.segment.canvas import Canvas, ColorTable
from icas.segment.painter import HELP, KEYS, Painter, key_char
from icas.segment.palette import DEFAULT_COLORS, Palette
from icas.segment.prefetch import Loaded, Prefetcher, SegmentError
from icas.segment.preview import render
from icas.segment.sam import Prompt

H, W = 40, 60
RED, BLUE = (0, 0, 204), (204, 0, 0)  # BGR


def quadrants() -> np.ndarray:
    """Four segments (1 top-left, 2 top-right, 3 bottom-left, 4 bottom-right)
    separated by a one-pixel edge row (label 0) at y = 20."""
    labels = np.ones((H, W), np.int32)
    labels[:, 30:] = 2
    labels[21:, :30] = 3
    labels[21:, 30:] = 4
    labels[20] = 0
    return labels


def photo() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture
def canvas() -> Canvas:
    return Canvas(photo(), quadrants(), ColorTable([RED, BLUE]))


def snapshot(c: Canvas):
    return c.labels.copy(), c.paint.copy(), c.cut_start


def same(c: Canvas, snap) -> bool:
    labels, paint, start = snap
    return (
        np.array_equal(c.labels, labels)
        and np.array_equal(c.paint, paint)
        and (c.cut_start == start)
    )


# ---------------------------------------------------------------------- colours


def test_color_table_ids_are_stable():
    t = ColorTable([RED, BLUE])
    assert len(t) == 2 and t.id_of(RED) == 1 and t.id_of(BLUE) == 2
    assert t.id_of((1, 2, 3)) == 3 and t.id_of(np.array([1, 2, 3])) == 3
    assert t.bgr(3) == (1, 2, 3)
    np.testing.assert_array_equal(t.lut(), [(0, 0, 0), RED, BLUE, (1, 2, 3)])
    with pytest.raises(ValueError, match="0..255"):
        t.id_of((0, 0, 256))
    with pytest.raises(KeyError, match="no colour with id 4"):
        t.bgr(4)


def test_palette_swatches():
    p = Palette()
    assert p.colors == DEFAULT_COLORS and len(p.colors) == 24
    assert p.colors[0] == (0, 0, 204)  # the seed's red (R:204, G:0, B:0)
    assert len(set(p.colors)) == 24
    for i in range(len(p.colors)):
        assert p.color_at(*p.swatch_center(i)) == i
    assert p.color_at(5, p.grid_height + 3) is None  # status bar
    assert p.color_at(-1, 0) is None and p.color_at(p.width, 0) is None
    pic = p.draw(p.colors[3], "fill", "hello")
    assert pic.shape == (p.grid_height + p.status_height, p.width, 3) and pic.dtype == np.uint8
    # The current swatch is framed, the others are plain.
    x, y = p.swatch_center(3)
    s = p.swatch
    assert (pic[y - s // 2 + 2, x] == 255).all()
    x0, y0 = p.swatch_center(4)
    assert tuple(pic[y0 - s // 2 + 2, x0]) == p.colors[4]
    # The status bar shows the current colour.
    assert tuple(pic[p.grid_height + 10, 10]) == p.colors[3]
    with pytest.raises(ValueError):
        Palette([])


def test_palette_status_shows_the_continuous_mode():
    p = Palette()
    pics = {m: p.draw(p.colors[0], m, "msg").astype(int) for m in (None, "fill", "unfill")}
    band = slice(p.grid_height + 22, p.grid_height + 40)  # the mode line

    def tinted(pic, channel):  # pixels where one channel clearly dominates
        others = [c for c in range(3) if c != channel]
        return int((pic[band, :, channel] - pic[band][..., others].max(axis=2) > 100).sum())

    assert tinted(pics["fill"], 1) > 20 and tinted(pics["fill"], 2) == 0  # green text
    assert tinted(pics["unfill"], 2) > 20 and tinted(pics["unfill"], 1) == 0  # red text
    assert tinted(pics[None], 1) == tinted(pics[None], 2) == 0
    for m in ("fill", "unfill"):  # only the mode line differs
        outside = np.ones(pics[m].shape[0], bool)
        outside[band] = False
        np.testing.assert_array_equal(pics[m][outside], pics[None][outside])
        assert (pics[m][band] != pics[None][band]).any()


# ---------------------------------------------------------------------- canvas


def test_fill_paints_exactly_the_segment(canvas):
    assert canvas.fill(5, 5, 1)
    np.testing.assert_array_equal(canvas.paint, np.where(quadrants() == 1, 1, 0))
    assert not canvas.fill(10, 10, 1)  # same colour again: nothing changes, no undo step
    assert canvas.undo() and not canvas.paint.any() and not canvas.undo()
    assert canvas.fill(5, 5, 1) and canvas.fill(40, 30, 2) and canvas.fill(5, 5, 2)
    expected = np.where(np.isin(quadrants(), (1, 4)), 2, 0)
    np.testing.assert_array_equal(canvas.paint, expected)
    masks = canvas.masks()
    assert list(masks) == [2] and np.array_equal(masks[2], expected == 2)


def test_edge_pixels_are_never_filled(canvas):
    assert not canvas.fill(5, 20, 1) and not canvas.unfill(5, 20)
    assert not canvas.paint.any() and not canvas.can_undo


def test_unfill(canvas):
    canvas.fill(5, 5, 1)
    canvas.fill(40, 5, 2)
    assert canvas.unfill(1, 1)
    np.testing.assert_array_equal(canvas.paint, np.where(quadrants() == 2, 2, 0))
    assert not canvas.unfill(1, 1)  # nothing left to remove


def test_outside_points_and_bad_colors_raise(canvas):
    with pytest.raises(ValueError, match=r"\(60, 3\) lies outside the 60x40 image"):
        canvas.fill(60, 3, 1)
    with pytest.raises(ValueError, match="color_id must be 1..2"):
        canvas.fill(3, 3, 3)
    with pytest.raises(ValueError, match="shape"):
        Canvas(photo(), np.zeros((3, 3), np.int32), ColorTable([RED]))
    with pytest.raises(ValueError, match=">= 0"):
        Canvas(photo(), -quadrants(), ColorTable([RED]))


def test_undo_walks_back_through_every_state(canvas):
    snaps = [snapshot(canvas)]
    actions = [
        lambda: canvas.fill(5, 5, 1),
        lambda: canvas.fill(40, 30, 2),
        lambda: canvas.cut(10, 0),
        lambda: canvas.cut(10, 39),  # splits segments 1 and 3, clears paint on the line
        lambda: canvas.fill(2, 2, 2),
        lambda: canvas.unfill(40, 30),
        lambda: canvas.paint_pixels([0, 1], [50, 50], [1, 2]),
        canvas.reset,
        lambda: canvas.fill(45, 5, 1),
    ]
    for act in actions:
        assert act()
        snaps.append(snapshot(canvas))
    for snap in reversed(snaps[:-1]):
        assert canvas.undo()
        assert same(canvas, snap)
    assert not canvas.undo()


def test_undo_stack_is_bounded():
    c = Canvas(photo(), quadrants(), ColorTable([RED, BLUE]), max_undo=3)
    for i in range(6):
        c.fill(5, 5, 1 + i % 2)
    assert sum(c.undo() for _ in range(10)) == 3
    assert (c.paint[quadrants() == 1] == 1).all()  # back at the third edit, no further


def test_vertical_cut_splits_a_segment():
    c = Canvas(photo(), np.ones((H, W), np.int32), ColorTable([RED]))
    assert c.cut(20, 0) and c.cut_start == (20, 0)
    assert not c.paint.any() and (c.labels == 1).all()  # one point cuts nothing
    assert c.cut(20, H - 1)
    assert (c.labels[:, 20] == 0).all()
    left, right = c.labels[0, 0], c.labels[0, W - 1]
    assert left != right and left > 0 and right > 0
    assert (c.labels[:, :20] == left).all() and (c.labels[:, 21:] == right).all()
    c.fill(3, 3, 1)
    xx = np.arange(W)[None, :].repeat(H, 0)
    np.testing.assert_array_equal(c.paint != 0, xx < 20)


def test_diagonal_cut_separates_4_connected_sides():
    n = 40
    c = Canvas(np.zeros((n, n, 3), np.uint8), np.ones((n, n), np.int32), ColorTable([RED]))
    c.cut(0, 0)
    c.cut(n - 1, n - 1)
    yy, xx = np.mgrid[0:n, 0:n]
    assert (c.labels[yy == xx] == 0).all()
    assert c.fill(n - 1, 0, 1)  # the upper-right triangle only
    np.testing.assert_array_equal(c.paint != 0, xx > yy)


def test_a_partial_cut_does_not_split():
    c = Canvas(photo(), np.ones((H, W), np.int32), ColorTable([RED]))
    c.cut(20, 0)
    c.cut(20, 25)  # stops short of the bottom
    c.fill(0, 0, 1)
    np.testing.assert_array_equal(c.paint != 0, c.labels != 0)
    assert (c.labels != 0).sum() == H * W - 26


def test_cut_clears_paint_on_the_line_and_splits_every_crossed_segment(canvas):
    canvas.fill(5, 5, 1)
    canvas.fill(5, 30, 2)
    canvas.cut(10, 0)
    before = canvas.labels.copy()
    canvas.cut(10, H - 1)  # crosses segments 1 and 3 and the edge row
    assert not canvas.paint[:, 10].any() and (canvas.labels[:, 10] == 0).all()
    # Each crossed segment is two segments now; the others are untouched.
    for y in (5, 30):
        assert canvas.labels[y, 3] != canvas.labels[y, 20]
    assert (canvas.labels[before == 2] == 2).all() and (canvas.labels[before == 4] == 4).all()
    # Paint stays where it was (but off the line).
    assert (canvas.paint[:20, :30][:, np.arange(30) != 10] == 1).all()
    canvas.unfill(3, 3)
    assert not canvas.paint[:20, :10].any() and (canvas.paint[:20, 11:30] == 1).all()


def test_parts_of_a_segment_away_from_the_cut_stay_one_segment():
    # Label 1 is two blobs (k-means segments need not be connected).
    labels = np.full((H, W), 2, np.int32)
    labels[5:15, 5:15] = 1
    labels[25:35, 40:55] = 1
    c = Canvas(photo(), labels, ColorTable([RED]))
    c.cut(10, 0)
    c.cut(10, 19)  # through the first blob only
    c.fill(45, 30, 1)  # the far blob
    np.testing.assert_array_equal(c.paint != 0, (labels == 1) & (np.arange(H)[:, None] >= 20))
    c.fill(6, 6, 1)
    painted = c.paint != 0
    assert painted[5:15, 5:10].all() and not painted[5:15, 10:15].any()


def test_cut_points_repeat_end_and_undo(canvas):
    assert canvas.cut(5, 5) and not canvas.cut(5, 5)  # the same point again: nothing
    assert canvas.undo() and canvas.cut_start is None
    canvas.cut(5, 5)
    assert canvas.end_cut() and canvas.cut_start is None and not canvas.end_cut()
    labels = canvas.labels.copy()
    canvas.cut(50, 5)  # starts a new line: nothing is cut from (5, 5)
    np.testing.assert_array_equal(canvas.labels, labels)


def test_reset_and_its_undo(canvas):
    assert not canvas.reset()  # nothing to reset
    canvas.fill(5, 5, 1)
    canvas.cut(0, 10)
    canvas.cut(29, 10)
    snap = snapshot(canvas)
    assert canvas.reset()
    assert same(canvas, (quadrants(), np.zeros((H, W), np.int32), None))
    assert canvas.undo() and same(canvas, snap)


def test_paint_pixels_last_write_wins_and_checks(canvas):
    assert canvas.paint_pixels([3, 3, 4], [7, 7, 8], [1, 2, 1])
    assert canvas.paint[3, 7] == 2 and canvas.paint[4, 8] == 1
    assert canvas.paint_pixels([20], [0], 1)  # edge pixels can be painted this way
    assert not canvas.paint_pixels([20], [0], 1)
    with pytest.raises(ValueError, match="inside"):
        canvas.paint_pixels([H], [0], 1)
    with pytest.raises(ValueError, match="1..2"):
        canvas.paint_pixels([0], [0], 3)
    with pytest.raises(ValueError, match="one per pixel"):
        canvas.paint_pixels([0, 1], [0, 1], [1, 1, 1])


def test_picture_updated_in_place_equals_one_drawn_from_scratch(canvas):
    first = canvas.picture().copy()
    np.testing.assert_array_equal(first, render(canvas.image, canvas.labels))
    canvas.fill(5, 5, 1)
    canvas.cut(10, 0)
    canvas.cut(10, H - 1)
    canvas.fill(40, 30, 2)
    canvas.paint_pixels([1], [1], 2)
    canvas.undo()
    shown = canvas.picture()
    fresh = Canvas(canvas.image, canvas.labels, canvas.colors)
    fresh.paint[...] = canvas.paint
    np.testing.assert_array_equal(shown, fresh.picture())
    # Painted pixels are the blend of the drawn image and their colour.
    base = render(canvas.image, canvas.labels).astype(np.float32)
    y, x = 30, 45
    expected = np.rint(base[y, x] * 0.5 + np.array(BLUE, np.float32) * 0.5)
    np.testing.assert_array_equal(shown[y, x], expected)
    result = canvas.result()
    assert tuple(result[y, x]) == BLUE and np.array_equal(result[25, 5], canvas.image[25, 5])


def test_debug_views(canvas):
    canvas.fill(5, 5, 1)
    views = canvas.debug_views()
    assert set(views) == {"labels", "painted"}
    labels = views["labels"]
    assert (labels[20] == 0).all() and (labels[:20, :30] == labels[0, 0]).all()
    assert len({tuple(labels[y, x]) for y, x in ((0, 0), (0, 40), (30, 0), (30, 40))}) == 4
    assert tuple(views["painted"][0, 0]) == RED and not views["painted"][30:].any()


# ---------------------------------------------------------------------- painter


class Folder:
    """Images and labels in memory, served through a real Prefetcher."""

    def __init__(self, tmp_path: Path, n=3, bad=(), interactive=False):
        self.paths = [tmp_path / f"img{i}.png" for i in range(n)]
        self.bad = {self.paths[i] for i in bad}
        self.interactive = interactive
        self.calls: list[Path] = []
        self.errors: list[tuple[Path, str]] = []

    def job(self, path):
        self.calls.append(path)
        if path in self.bad:
            raise ValueError("not an image")
        i = self.paths.index(path)
        image = np.full((H, W, 3), 10 * i, np.uint8)
        return Loaded(path, image, None if self.interactive else quadrants())

    def prefetcher(self, **kw):
        kw.setdefault("thread_range", 1)
        return Prefetcher(
            self.paths, self.job, on_error=lambda p, r: self.errors.append((p, r)), **kw
        )


@pytest.fixture
def painter(tmp_path):
    folder = Folder(tmp_path)
    with folder.prefetcher() as source:
        p = Painter(source, out_dir=tmp_path / "out")
        assert p.start()
        yield p


def read_mask(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_key_codes():
    assert key_char(ord("Q")) == "q" and key_char(27) == "q" and key_char(32) == " "
    assert key_char(-1) is None and key_char(0x1000012) is None and key_char("N") == "n"
    for ch in "qnp zrdt":
        assert ch in KEYS and KEYS[ch][1] in HELP


def test_every_key(painter, tmp_path):
    p = painter
    assert p.index == 0 and p.title == "img0.png (1/3)"
    assert p.key(ord("x")) == "unknown"
    assert p.key(ord("z")) == "unchanged" and p.message == "nothing to undo"
    p.fill(5, 5)
    assert p.key(ord("z")) == "changed" and not p.canvas.paint.any()
    p.fill(5, 5)
    assert p.key(ord("r")) == "changed" and not p.canvas.paint.any()
    assert p.key(ord("d")) == "changed" and p.debug
    assert p.key(ord("d")) == "changed" and not p.debug
    assert p.key(ord("t")) == "unchanged" and "--templates" in p.message
    assert p.key(ord("p")) == "unchanged" and p.message == "this is the first image"
    assert p.key(ord("n")) == "opened" and p.index == 1
    assert p.key(ord("p")) == "opened" and p.index == 0
    p.fill(5, 5)
    assert p.key(ord("n")) == "opened" and not p.canvas.paint.any()  # n does not save
    assert not (tmp_path / "out").exists()
    p.fill(5, 5)
    assert p.key(ord(" ")) == "opened" and p.index == 2
    assert read_mask(tmp_path / "out" / "img1_mask_(R:204,G:0,B:0).png") is not None
    assert p.key(ord("n")) == "unchanged" and "last image" in p.message
    p.fill(40, 30)
    assert p.key(32) == "changed" and p.index == 2 and "last image" in p.message
    assert p.saved == {1, 2}
    assert p.key(ord("q")) == "quit" and p.quit


def test_mouse_clicks(painter, caplog):
    p = painter
    with caplog.at_level("INFO", logger="icas.segment.painter"):
        assert p.mouse(cv2.EVENT_LBUTTONDOWN, 5, 5)
    assert caplog.messages == ["left click: fill (5, 5): changed"]
    assert (p.canvas.paint[quadrants() == 1] == 1).all()
    assert not p.mouse(cv2.EVENT_LBUTTONUP, 5, 5)
    assert not p.mouse(cv2.EVENT_LBUTTONDOWN, -3, 5) and not p.mouse(cv2.EVENT_MOUSEMOVE, 99, 5)
    assert p.mouse(cv2.EVENT_RBUTTONDOWN, 5, 5) and not p.canvas.paint.any()
    # Middle clicks: cut points.
    assert p.mouse(cv2.EVENT_MBUTTONDOWN, 10, 0)
    assert p.mouse(cv2.EVENT_MBUTTONDOWN, 10, 19)
    assert (p.canvas.labels[:20, 10] == 0).all()
    assert p.canvas.labels[5, 5] != p.canvas.labels[5, 15]


def qt_double_click(p: Painter, button: str, x: int, y: int) -> list[bool]:
    """The events OpenCV's Qt back end sends for a double click (measured under Xvfb)."""
    down, up, dbl = {
        "left": (cv2.EVENT_LBUTTONDOWN, cv2.EVENT_LBUTTONUP, cv2.EVENT_LBUTTONDBLCLK),
        "right": (cv2.EVENT_RBUTTONDOWN, cv2.EVENT_RBUTTONUP, cv2.EVENT_RBUTTONDBLCLK),
        "middle": (cv2.EVENT_MBUTTONDOWN, cv2.EVENT_MBUTTONUP, cv2.EVENT_MBUTTONDBLCLK),
    }[button]
    return [p.mouse(e, x, y) for e in (down, up, dbl, down, up)]


def test_double_clicks_toggle_continuous_modes(painter):
    p = painter
    qt_double_click(p, "left", 5, 5)
    assert p.mode == "fill"
    assert p.canvas.paint[5, 5] == 1 and len(p.canvas._undo) == 1  # the swallowed press
    assert p.mouse(cv2.EVENT_MOUSEMOVE, 45, 5)  # passes over segment 2: filled
    assert not p.mouse(cv2.EVENT_MOUSEMOVE, 46, 6)  # same segment: nothing new
    assert not p.mouse(cv2.EVENT_MOUSEMOVE, 46, 20)  # an edge pixel
    assert p.mouse(cv2.EVENT_MOUSEMOVE, 45, 30)
    np.testing.assert_array_equal(p.canvas.paint != 0, np.isin(quadrants(), (1, 2, 4)))
    qt_double_click(p, "right", 45, 30)
    assert p.mode == "unfill" and p.canvas.paint[30, 45] == 0
    assert p.mouse(cv2.EVENT_MOUSEMOVE, 45, 5) and p.canvas.paint[5, 45] == 0
    qt_double_click(p, "right", 45, 5)
    assert p.mode is None
    assert not p.mouse(cv2.EVENT_MOUSEMOVE, 5, 5) and p.canvas.paint[5, 5] == 1
    qt_double_click(p, "left", 5, 5)
    qt_double_click(p, "left", 5, 5)
    assert p.mode is None
    # Another back end (no press after the double click): the release clears the swallow.
    p.mouse(cv2.EVENT_LBUTTONDBLCLK, 5, 5)
    p.mouse(cv2.EVENT_LBUTTONUP, 5, 5)
    assert p.mouse(cv2.EVENT_LBUTTONDOWN, 45, 30)


def test_double_middle_click_ends_the_cut_line(painter):
    p = painter
    p.mouse(cv2.EVENT_MBUTTONDOWN, 10, 0)
    qt_double_click(p, "middle", 10, 19)
    assert p.canvas.cut_start is None and (p.canvas.labels[:20, 10] == 0).all()
    labels = p.canvas.labels.copy()
    p.mouse(cv2.EVENT_MBUTTONDOWN, 50, 30)  # a new line starts: nothing cut
    np.testing.assert_array_equal(p.canvas.labels, labels)


def test_palette_clicks_pick_the_colour(painter):
    p = painter
    pal = p.palette
    assert p.palette_mouse(cv2.EVENT_LBUTTONDOWN, *pal.swatch_center(5))
    assert p.colors.bgr(p.color) == pal.colors[5]
    assert not p.palette_mouse(cv2.EVENT_RBUTTONDOWN, *pal.swatch_center(1))
    assert not p.palette_mouse(cv2.EVENT_LBUTTONDOWN, 3, pal.grid_height + 5)
    p.fill(5, 5)
    assert tuple(p.canvas.result()[5, 5]) == pal.colors[5]
    pic = p.palette_picture()
    assert tuple(pic[pal.grid_height + 10, 10]) == pal.colors[5]


def test_save_writes_one_mask_per_colour(painter, tmp_path):
    p = painter
    p.fill(5, 5)
    p.pick(1)
    p.fill(40, 30)
    p.fill(40, 5)
    assert p.save()
    out = tmp_path / "out"
    b, g, r = p.palette.colors[1]
    names = sorted(f.name for f in out.iterdir())
    assert names == sorted(["img0_mask_(R:204,G:0,B:0).png", f"img0_mask_(R:{r},G:{g},B:{b}).png"])
    red = read_mask(out / "img0_mask_(R:204,G:0,B:0).png")
    assert red.dtype == np.uint8 and red.ndim == 2
    np.testing.assert_array_equal(red, np.where(quadrants() == 1, 255, 0))
    other = read_mask(out / f"img0_mask_(R:{r},G:{g},B:{b}).png")
    np.testing.assert_array_equal(other, np.where(np.isin(quadrants(), (2, 4)), 255, 0))
    # Saving again refuses (and says why): the files stay as they are.
    p.unfill(5, 5)
    assert not p.save() and "--overwrite" in p.message
    np.testing.assert_array_equal(read_mask(out / "img0_mask_(R:204,G:0,B:0).png"), red)
    p.overwrite = True
    assert p.save()
    assert sorted(f.name for f in out.iterdir()) == [f"img0_mask_(R:{r},G:{g},B:{b}).png"]


def test_nothing_painted_saves_nothing(painter, tmp_path):
    assert painter.save() and "nothing painted" in painter.message
    assert not any((tmp_path / "out").glob("*"))


def test_bad_images_are_skipped_and_reported(tmp_path):
    folder = Folder(tmp_path, n=4, bad=(0, 2))
    with folder.prefetcher(thread_range=0) as source:
        p = Painter(source, out_dir=tmp_path / "out")
        assert p.start() and p.index == 1
        assert p.skipped == {str(folder.paths[0]): "ValueError: not an image"}
        assert p.key(ord("n")) == "opened" and p.index == 3
        assert str(folder.paths[2]) in p.skipped
        assert p.key(ord("p")) == "opened" and p.index == 1
        assert (folder.paths[0], "ValueError: not an image") in folder.errors
        assert source.errors[str(folder.paths[2])] == "ValueError: not an image"


def test_no_image_can_be_opened(tmp_path):
    folder = Folder(tmp_path, n=2, bad=(0, 1))
    with folder.prefetcher() as source:
        p = Painter(source, out_dir=tmp_path)
        assert not p.start() and p.message == "no image could be opened"


def test_interactive_labels(tmp_path):
    folder = Folder(tmp_path, interactive=True)
    with folder.prefetcher() as source:
        p = Painter(source, out_dir=tmp_path / "out")
        p.start()
        assert p.needs_labels and p.canvas is None
        assert not p.mouse(cv2.EVENT_LBUTTONDOWN, 5, 5)
        assert not p.fill(5, 5) and "no segments" in p.message
        np.testing.assert_array_equal(p.picture(), p.image)
        p.set_labels(quadrants())
        assert not p.needs_labels and p.fill(5, 5)
        p.next()
        assert p.needs_labels


# ---------------------------------------------------------------------- prefetch


def test_prefetch_prepares_the_neighbours(tmp_path):
    folder = Folder(tmp_path, n=6)
    with folder.prefetcher(thread_range=2) as source:
        loaded = source.get(2)
        assert loaded.path == folder.paths[2] and loaded.labels.shape == (H, W)
        source.around(2)
        deadline = time.monotonic() + 10
        while not all(source.ready(i) for i in (0, 1, 3, 4)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert all(source.ready(i) for i in (0, 1, 3, 4)) and not source.ready(5)
        source.get(4)
        assert folder.calls.count(folder.paths[4]) == 1  # served from the prefetch
        assert not loaded.labels.flags.writeable and not loaded.image.flags.writeable
        source.around(5)  # 0..2 are dropped
        assert not source.ready(0) and not source.ready(2)
    with pytest.raises(IndexError):
        source.get(6)


def test_prefetch_errors_are_reported_from_the_worker(tmp_path):
    folder = Folder(tmp_path, n=3, bad=(1,))
    seen = threading.Event()
    threads = []

    def on_error(path, reason):
        threads.append(threading.current_thread().name)
        seen.set()

    with Prefetcher(folder.paths, folder.job, thread_range=1, on_error=on_error) as source:
        source.around(0)
        assert seen.wait(10)  # reported without anyone asking for image 1
        assert threads[0].startswith("icas-prefetch")
        with pytest.raises(SegmentError, match="img1.png: ValueError: not an image"):
            source.get(1)


def test_prefetch_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="thread_range"):
        Prefetcher([], lambda p: None, thread_range=-1)
    with pytest.raises(ValueError, match="workers"):
        Prefetcher([], lambda p: None, workers=0)


# ---------------------------------------------------------------------- GrabCut and SAM windows


@pytest.fixture(scope="module")
def ellipse():
    """Noisy gradient with a red ellipse; returns (BGR image, true foreground)."""
    rng = np.random.default_rng(0)
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([60 + xx * 0.3, 140 + yy * 0.2, 50 + 0 * xx], -1).astype(np.float64)
    truth = (xx - 80) ** 2 / 35**2 + (yy - 60) ** 2 / 28**2 <= 1
    img[truth] = (40, 40, 200)
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8), truth


def drag(tool, button_down, button_up, points, flags=0):
    tool.mouse(button_down, *points[0], flags)
    for p in points[1:]:
        tool.mouse(cv2.EVENT_MOUSEMOVE, *p, flags)
    return tool.mouse(button_up, *points[-1], flags)


def test_grabcut_tool_mouse_and_keys(ellipse):
    from icas.segment import GrabCutSession
    from icas.segment.interactive import GrabCutTool

    img, truth = ellipse
    tool = GrabCutTool(GrabCutSession(img), radius=2)
    assert tool.key(ord("f")) == "changed" and "nothing to segment" in tool.message
    # Middle drag: the rectangle, drawn while dragging.
    tool.mouse(cv2.EVENT_MBUTTONDOWN, 125, 98)
    assert tool.mouse(cv2.EVENT_MOUSEMOVE, 60, 60)
    assert tuple(tool.pictures()["icas grabcut annotations"][60, 100]) == (0, 255, 0)
    assert tool.mouse(cv2.EVENT_MBUTTONUP, 35, 22) and tool.session.rect == (35, 22, 91, 77)
    # Left / right drags: sure strokes; with ctrl: probable ones.
    drag(tool, cv2.EVENT_LBUTTONDOWN, cv2.EVENT_LBUTTONUP, [(80, 60), (85, 62), (90, 64)])
    ctrl = cv2.EVENT_FLAG_CTRLKEY
    drag(tool, cv2.EVENT_RBUTTONDOWN, cv2.EVENT_RBUTTONUP, [(40, 30), (45, 30)], ctrl)
    drag(tool, cv2.EVENT_LBUTTONDOWN, cv2.EVENT_LBUTTONUP, [(70, 55)], ctrl)
    drag(tool, cv2.EVENT_RBUTTONDOWN, cv2.EVENT_RBUTTONUP, [(5, 5), (6, 6)])
    assert tool.message.startswith("sure background stroke added: 4 stroke(s)")
    kinds = [s.kind for s in tool.session.strokes]
    assert kinds == ["fg", "pr_bg", "pr_fg", "bg"]
    np.testing.assert_array_equal(tool.session.strokes[0].points, [(80, 60), (85, 62), (90, 64)])
    assert tool.session.strokes[0].radius == 2
    assert tool.key(ord("z")) == "changed" and len(tool.session.strokes) == 3
    assert tool.message == "last stroke removed: 3 stroke(s) left"
    assert tool.key(ord(" ")) == "changed" and tool.session.iterations == 1
    assert tool.key(ord(" ")) == "changed" and "iteration 2" in tool.message
    assert tool.key(ord("x")) == "unknown"
    assert tool.key(ord("f")) == "finish"
    labels = tool.labels()
    assert ((labels == 1) & truth).sum() / ((labels == 1) | truth).sum() > 0.9
    pictures = tool.pictures()
    assert list(pictures) == list(tool.titles)
    assert pictures["icas grabcut segments"][5, 5].sum() < img[5, 5].sum()  # background dimmed
    assert tool.key(ord("r")) == "changed" and tool.session.rect is None
    assert tool.key(ord("z")) == "unchanged" and tool.message == "no stroke to undo"
    assert tool.key(ord("q")) == "quit"


class FakeSam:
    """Records what the SAM window asks of a session (the real one needs icas[sam])."""

    def __init__(self):
        self.calls = []
        self._prompts = []
        self._mask = None

    @property
    def prompts(self):
        return tuple(self._prompts)

    def set_image(self, image):
        self.calls.append(("set_image", image.shape))

    def add_point(self, xy, positive=True):
        self.calls.append(("point", tuple(xy), positive))
        self._prompts.append(Prompt("point", tuple(xy), positive))

    def add_box(self, c1, c2):
        self.calls.append(("box", c1, c2))
        self._prompts.append(Prompt("box", (*c1, *c2)))

    def undo(self):
        self.calls.append(("undo",))
        return bool(self._prompts and self._prompts.pop())

    def reset(self):
        self.calls.append(("reset",))
        self._prompts.clear()

    def predict(self):
        self.calls.append(("predict",))
        self._mask = np.zeros((4, 5), bool)
        self._mask[1:3, 2:4] = True
        return self._mask[None], np.array([0.5], np.float32)

    def mask(self):
        return self._mask

    def labels(self):
        return self._mask.astype(np.int32)


def test_sam_tool_maps_events_to_prompts(caplog):
    from icas.segment.interactive import SamTool

    s = FakeSam()
    tool = SamTool(s, np.zeros((4, 5, 3), np.uint8))
    with caplog.at_level(logging.INFO, logger="icas.segment.interactive"):
        assert tool.mouse(cv2.EVENT_LBUTTONDOWN, 1, 2)
        assert tool.message.startswith("foreground point (1, 2) added: 1 prompt(s)")
        assert tool.mouse(cv2.EVENT_RBUTTONDOWN, 3, 1)
        assert tool.message.startswith("background point (3, 1) added: 2 prompt(s)")
        assert not tool.mouse(cv2.EVENT_LBUTTONDOWN, 9, 9)  # outside the image
        drag(tool, cv2.EVENT_MBUTTONDOWN, cv2.EVENT_MBUTTONUP, [(0, 0), (2, 2), (4, 3)])
        assert tool.message.startswith("box (0, 0)-(4, 3) added: 3 prompt(s)")
    assert [r.getMessage() for r in caplog.records] == [
        "sam prompt: foreground point (1, 2)",
        "sam prompt: background point (3, 1)",
        "sam prompt: box (0, 0)-(4, 3)",
    ]
    assert s.calls == [
        ("set_image", (4, 5, 3)),
        ("point", (1, 2), True),
        ("point", (3, 1), False),
        ("box", (0, 0), (4, 3)),
    ]
    assert tool.key(ord("f")) == "finish" and s.calls[-1] == ("predict",)  # predicts first
    assert tool.key(ord(" ")) == "changed" and "score 0.50" in tool.message
    assert tool.message.startswith("mask of 4 pixels predicted from 3 prompt(s)")
    assert tool.key(ord("z")) == "changed" and s.calls[-1] == ("undo",)
    assert tool.message == "last prompt removed: 2 prompt(s) left"
    assert tool.key(ord("r")) == "changed" and s.calls[-1] == ("reset",)
    assert tool.key(ord("z")) == "unchanged" and tool.message == "no prompt to undo"
    assert tool.key(ord("q")) == "quit" and tool.key(ord("x")) == "unknown"
    assert tool.labels().shape == (4, 5)


def test_sam_tool_with_a_tiny_sam(ellipse):
    pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    from icas.segment import SamSession
    from icas.segment.interactive import SamTool
    from icas.segment.sam import tiny_sam

    img, _ = ellipse
    tool = SamTool(SamSession(tiny_sam()), img)
    assert tool.key(ord("f")) == "changed" and "no prompt" in tool.message
    tool.mouse(cv2.EVENT_LBUTTONDOWN, 80, 60)
    drag(tool, cv2.EVENT_MBUTTONDOWN, cv2.EVENT_MBUTTONUP, [(30, 20), (130, 100)])
    assert [p.kind for p in tool.session.prompts] == ["point", "box"]
    assert tool.key(ord(" ")) == "changed" and tool.session.mask() is not None
    assert tool.key(ord("f")) == "finish"
    labels = tool.labels()
    assert labels.shape == img.shape[:2] and set(np.unique(labels)) <= {0, 1}
    (picture,) = tool.pictures().values()
    assert picture.shape == img.shape
