"""GrabCut session: the state behind the GrabCut windows, tested without a screen."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from icas.segment import GrabCutSession
from icas.segment.grabcut import RECT_COLOR, STROKES


@pytest.fixture(scope="module")
def scene():
    """A noisy gradient background with a red ellipse in the middle; returns
    (BGR image, true foreground mask)."""
    rng = np.random.default_rng(0)
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([60 + xx * 0.3, 140 + yy * 0.2, 50 + 0 * xx], -1).astype(np.float64)
    truth = (xx - 80) ** 2 / 35**2 + (yy - 60) ** 2 / 28**2 <= 1
    img[truth] = (40, 40, 200)
    img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    return img, truth


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_rectangle_finds_the_object(scene):
    img, truth = scene
    s = GrabCutSession(img)
    assert s.rect is None and s.iterations == 0
    assert s.set_rect((125, 98), (35, 22)) == (35, 22, 91, 77)  # corners in any order
    labels = s.step()
    assert labels.dtype == np.int32 and labels.shape == truth.shape
    assert set(np.unique(labels)) == {0, 1}
    for _ in range(2):
        labels = s.step()
    assert s.iterations == 3
    assert iou(labels == 1, truth) > 0.95
    np.testing.assert_array_equal(s.labels(), labels)
    np.testing.assert_array_equal(s.foreground(), labels == 1)
    # Outside the rectangle is sure background.
    assert not labels[:22].any() and not labels[:, :35].any()


def test_strokes_alone_find_the_object(scene):
    img, truth = scene
    s = GrabCutSession(img)
    s.mark([(80, 60), (90, 65)], "fg", radius=4)
    s.mark([(5, 5), (150, 5), (150, 110)], "bg")
    for _ in range(2):
        labels = s.step()
    assert iou(labels == 1, truth) > 0.9


def test_strokes_are_hard_constraints(scene):
    img, truth = scene
    s = GrabCutSession(img)
    s.set_rect((35, 22), (125, 98))
    s.step()
    # Call the left third of the ellipse background, after an iteration.
    s.mark([(50, 40), (50, 80)], "bg", radius=6)
    labels = s.step()
    assert not labels[40:81, 44:57].any()
    assert labels[60, 90] == 1
    # A sure-foreground dot outside the object stays foreground.
    s.mark((10, 100), "fg", radius=2)
    assert s.step()[100, 10] == 1


def test_probable_strokes_guide_but_do_not_force(scene):
    img, truth = scene
    s = GrabCutSession(img)
    s.set_rect((35, 22), (125, 98))
    s.mark([(40, 30), (45, 30)], "pr_fg", radius=2)  # background colour, in the rectangle
    for _ in range(3):
        labels = s.step()
    # GrabCut may overrule a probable label: the background patch goes back.
    assert labels[30, 42] == 0
    assert iou(labels == 1, truth) > 0.9


def test_labels_before_any_iteration(scene):
    img, _ = scene
    s = GrabCutSession(img)
    assert not s.labels().any() and s.labels().dtype == np.int32
    s.set_rect((10, 10), (20, 20))
    assert not s.labels().any()
    assert s.foreground()[15, 15] and not s.foreground()[0, 0]


def test_reset_and_undo(scene):
    img, truth = scene
    s = GrabCutSession(img)
    s.set_rect((35, 22), (125, 98))
    s.mark((80, 60), "fg")
    s.mark((50, 50), "bg")
    s.step()
    assert len(s.strokes) == 2 and s.iterations == 1
    assert s.undo() is True
    assert [st.kind for st in s.strokes] == ["fg"] and s.iterations == 0
    assert not s.labels().any()  # starts over from the rectangle and strokes
    s.step()
    s.reset()
    assert s.rect is None and s.strokes == () and s.iterations == 0
    assert not s.labels().any()
    assert s.undo() is False
    with pytest.raises(ValueError, match="nothing to segment yet"):
        s.step()


def test_new_rectangle_starts_over(scene):
    img, truth = scene
    s = GrabCutSession(img)
    s.set_rect((35, 22), (125, 98))
    s.step()
    s.step()
    s.set_rect((0, 0), (60, 60))
    assert s.iterations == 0 and not s.labels().any()
    labels = s.step()
    assert not labels[61:].any() and not labels[:, 61:].any()


def test_deterministic(scene):
    img, _ = scene
    runs = []
    for _ in range(2):
        s = GrabCutSession(img, seed=5)
        s.set_rect((30, 20), (130, 100))
        s.mark([(60, 50), (70, 70)], "pr_bg", radius=2)
        for _ in range(3):
            s.step()
        runs.append(s.labels())
    np.testing.assert_array_equal(*runs)


def test_rectangle_is_clipped_and_checked(scene):
    img, _ = scene
    s = GrabCutSession(img)
    assert s.set_rect((-20, -5), (500, 50)) == (0, 0, 160, 51)
    with pytest.raises(ValueError, match="lies outside the 160x120 image"):
        s.set_rect((170, 10), (200, 50))
    with pytest.raises(ValueError, match="corner1 must be one"):
        s.set_rect((1, 2, 3), (4, 5))
    with pytest.raises(ValueError, match="corner2"):
        s.set_rect((1, 2), [])


def test_needs_foreground_and_background(scene):
    img, _ = scene
    s = GrabCutSession(img)
    s.set_rect((0, 0), (159, 119))  # everything probable foreground, no background
    with pytest.raises(ValueError, match="there is no background"):
        s.step()
    s = GrabCutSession(img)
    s.mark((5, 5), "bg")
    with pytest.raises(ValueError, match="there is no foreground"):
        s.step()


def test_bad_strokes(scene):
    img, _ = scene
    s = GrabCutSession(img)
    with pytest.raises(ValueError, match="kind must be one of fg, bg, pr_fg, pr_bg"):
        s.mark((1, 1), "foreground")
    with pytest.raises(ValueError, match="radius must be a non-negative integer"):
        s.mark((1, 1), "fg", radius=-1)
    with pytest.raises(ValueError, match="points must be one"):
        s.mark(np.zeros((3, 3)), "fg")
    with pytest.raises(ValueError, match="finite"):
        s.mark((np.nan, 1), "fg")
    assert s.strokes == ()


def test_bad_images_and_seed():
    with pytest.raises(ValueError, match="grayscale"):
        GrabCutSession(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        GrabCutSession(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="seed"):
        GrabCutSession(np.zeros((10, 10, 3), np.uint8), seed=-1)


def test_path_input(scene, tmp_path):
    img, _ = scene
    cv2.imwrite(str(tmp_path / "s.png"), img)
    s = GrabCutSession(tmp_path / "s.png")
    np.testing.assert_array_equal(s.image, img)


def test_views_for_the_windows(scene):
    img, truth = scene
    s = GrabCutSession(img)
    s.set_rect((35, 22), (125, 98))
    s.mark([(80, 60), (90, 60)], "fg", radius=1)
    s.mark((10, 110), "pr_bg", radius=0)
    ann = s.annotations()
    assert ann.shape == img.shape and ann.dtype == np.uint8
    assert tuple(ann[22, 60]) == RECT_COLOR
    assert tuple(ann[60, 85]) == STROKES["fg"][1]
    assert tuple(ann[110, 10]) == STROKES["pr_bg"][1]
    assert not np.shares_memory(ann, s.image)
    np.testing.assert_array_equal(s.overlay(), img)  # nothing segmented yet
    s.step()
    over = s.overlay(dim=0.5)
    fg = s.foreground()
    np.testing.assert_array_equal(over[fg], img[fg])
    assert (over[~fg].astype(int) <= img[~fg].astype(int)).all()
    assert over[~fg].mean() < img[~fg].mean() * 0.6
    with pytest.raises(ValueError, match="dim"):
        s.overlay(dim=2)


def test_tiny_image():
    img = np.zeros((3, 3, 3), np.uint8)
    img[1, 1] = 255
    s = GrabCutSession(img)
    s.mark((1, 1), "fg", radius=0)
    s.mark((0, 0), "bg", radius=0)
    labels = s.step()
    assert labels[1, 1] == 1 and labels[0, 0] == 0
