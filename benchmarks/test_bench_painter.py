"""Painter click latency on a 12-megapixel photo.

Group ``painter-click``: one left click (fill a segment, then the picture the
window shows). icas scans only the segment's bounding box and redraws only
the segment's pixels (after a one-off pass over the labels at the first
click, not timed here); the reference is the straightforward click: compare
every label with the clicked one, paint, and redraw the whole picture. Both
must show the same picture afterwards.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from icas.segment.canvas import Canvas, ColorTable
from icas.segment.preview import render

H, W, BLOCK = 3000, 4000, 40
COLORS = [(0, 0, 204), (204, 0, 0)]


@pytest.fixture(scope="module")
def scene():
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    image = cv2.resize(photo, (W, H), interpolation=cv2.INTER_LINEAR)
    yy, xx = np.mgrid[0:H, 0:W]
    labels = ((yy // BLOCK) * (W // BLOCK) + xx // BLOCK + 1).astype(np.int32)
    return image, labels


CLICK = (1234, 2345)  # x, y


def test_click_icas(benchmark, scene):
    image, labels = scene
    benchmark.group = "painter-click"
    benchmark.extra_info.update(pairs=1, role="icas", image=f"{W}x{H}")
    canvas = Canvas(image, labels, ColorTable(COLORS))
    canvas.picture()  # the window shows the picture before the first click
    state = {"color": 1}

    def click():
        state["color"] = 3 - state["color"]
        canvas.fill(*CLICK, state["color"])
        return canvas.picture()

    # The first click pays a one-off pass for the segments' bounding boxes.
    shown = benchmark.pedantic(click, rounds=20, iterations=1, warmup_rounds=1)
    expected = render(image, labels).astype(np.float32)
    seg = labels == labels[CLICK[1], CLICK[0]]
    color = np.array(COLORS[state["color"] - 1], np.float32)
    expected[seg] = expected[seg] * 0.5 + color * 0.5
    np.testing.assert_array_equal(shown, np.rint(expected).astype(np.uint8))


def test_click_reference(benchmark, scene):
    image, labels = scene
    benchmark.group = "painter-click"
    benchmark.extra_info.update(pairs=1, role="reference", image=f"{W}x{H}")
    paint = np.zeros(labels.shape, np.int32)
    lut = np.array([(0, 0, 0), *COLORS], np.float32)
    state = {"color": 1}

    def click():
        state["color"] = 3 - state["color"]
        paint[labels == labels[CLICK[1], CLICK[0]]] = state["color"]
        picture = render(image, labels).astype(np.float32)
        painted = paint != 0
        picture[painted] = picture[painted] * 0.5 + lut[paint[painted]] * 0.5
        return np.rint(picture).astype(np.uint8)

    shown = benchmark.pedantic(click, rounds=3, iterations=1)
    canvas = Canvas(image, labels, ColorTable(COLORS))
    canvas.fill(*CLICK, state["color"])
    np.testing.assert_array_equal(shown, canvas.picture())
