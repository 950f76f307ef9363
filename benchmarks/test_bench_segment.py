"""Segmentation speed: every method on a 512x512 photo, and SAM click latency.

Groups ``segment-<method>`` time ``icas.segment.segment`` on the astronaut
photo; where the method is one library call (graph, felzenszwalb, superpixel)
the bare call is the reference in the same group, and the benchmark asserts
that icas returns exactly its partition (so the ratio is icas' overhead:
checks and renumbering). Group ``sam-click`` compares a click on an image whose
embedding is cached (decoder only) with a click that has to encode the image
first, on a tiny random SAM. Every benchmark asserts its result.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from icas.segment import METHODS, segment
from icas.segment._image import relabel

# Slow methods run once; the others three times.
ROUNDS = {"chanvese": 1, "quickshift": 1}


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    assert img.shape == (512, 512, 3)
    return img


def check_labels(labels, shape, *, edges_allowed=False):
    assert labels.dtype == np.int32 and labels.shape == shape
    assert labels.min() >= (0 if edges_allowed else 1)
    seg = np.unique(labels)
    seg = seg[seg > 0]
    np.testing.assert_array_equal(seg, np.arange(1, len(seg) + 1))
    assert len(seg) >= 2


@pytest.mark.parametrize("method", list(METHODS))
def test_segment_512(benchmark, photo, method):
    benchmark.group = f"segment-{method}"
    benchmark.extra_info.update(pairs=1, role="icas", image="astronaut 512x512")
    labels = benchmark.pedantic(
        segment, args=(photo, method), rounds=ROUNDS.get(method, 3), iterations=1
    )
    check_labels(labels, photo.shape[:2], edges_allowed=method == "edge")
    benchmark.extra_info["segments"] = int(labels.max())


def _graph(img):
    return cv2.ximgproc.segmentation.createGraphSegmentation(0.5, 300, 100).processImage(img)


def _felzenszwalb(img):
    from skimage.segmentation import felzenszwalb

    return felzenszwalb(img[..., ::-1], scale=100, sigma=0.5, min_size=100)


def _superpixel(img):
    lab = cv2.cvtColor(cv2.GaussianBlur(img, (3, 3), 0), cv2.COLOR_BGR2Lab)
    slic = cv2.ximgproc.createSuperpixelSLIC(lab, cv2.ximgproc.MSLIC, 40, 30.0)
    slic.iterate(10)
    slic.enforceLabelConnectivity(25)
    return slic.getLabels()


@pytest.mark.parametrize(
    "method,bare", [("graph", _graph), ("felzenszwalb", _felzenszwalb), ("superpixel", _superpixel)]
)
def test_library_call_512(benchmark, photo, method, bare):
    benchmark.group = f"segment-{method}"
    benchmark.extra_info.update(pairs=1, role="reference", image="astronaut 512x512")
    raw = benchmark.pedantic(bare, args=(photo,), rounds=3, iterations=1)
    np.testing.assert_array_equal(relabel(np.asarray(raw) + 1), segment(photo, method))


# ---------------------------------------------------------------- SAM


@pytest.fixture(scope="module")
def tiny_model():
    pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    from icas.segment.sam import tiny_sam

    return tiny_sam(seed=0)


def _click(session, img):
    session.set_image(img)
    session.add_point((256, 200))
    session.add_point((100, 400), positive=False)
    return session.predict()


def test_sam_click_cached(benchmark, photo, tiny_model):
    from icas.segment import SamSession

    s = SamSession(tiny_model)
    s.set_image(photo)  # the embedding is ready, as after a background precompute
    benchmark.group = "sam-click"
    benchmark.extra_info.update(pairs=1, role="icas", model="tiny random SAM, 256 px input")
    masks, scores = benchmark.pedantic(_click, args=(s, photo), rounds=5, iterations=1)
    assert masks.shape == (1, 512, 512) and masks.dtype == bool and scores.shape == (1,)
    assert s.encoder_calls == 1


def test_sam_click_encoding(benchmark, photo, tiny_model):
    from icas.segment import SamSession

    s = SamSession(tiny_model, memory_cache=0)  # every click encodes the image again
    benchmark.group = "sam-click"
    benchmark.extra_info.update(pairs=1, role="reference", model="tiny random SAM, 256 px input")
    clicks = []

    def click():
        clicks.append(1)
        return _click(s, photo)

    masks, _ = benchmark.pedantic(click, rounds=5, iterations=1)
    assert masks.shape == (1, 512, 512)
    # One encoder run per click (5 rounds; 1 with --benchmark-disable).
    assert s.encoder_calls == len(clicks) >= 1


def test_sam_automatic_512(benchmark, photo, tiny_model):
    from icas.segment import SamSession

    s = SamSession(tiny_model)
    benchmark.group = "sam-automatic"
    benchmark.extra_info.update(pairs=1, role="icas", points_per_side=8)
    labels = benchmark.pedantic(
        s.automatic,
        args=(photo,),
        kwargs={"points_per_side": 8, "pred_iou_thresh": 0, "stability_score_thresh": 0},
        rounds=1,
        iterations=1,
    )
    check_labels(labels, photo.shape[:2])
