"""ORB similarity: icas kernels vs cv2.BFMatcher(NORM_HAMMING, crossCheck=True) + the ratio rule.

80 images of 256 x 256 derived from real photos (crops, re-encoding, brightness,
blur, noise), ORB descriptors with OpenCV's defaults (500 features, about 350
per image here). The reference is the straightforward per-pair loop; it runs on
a subset of pairs because it is slow, and every benchmark checks its result
against it.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from icas.similarity import orb_components, orb_matrix, orb_pairs

PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "immunohistochemistry",
    "cat",
    "clock",
    "hubble_deep_field",
    "stereo_motorcycle",
)
PER_PHOTO = 8
SIZE = 256
REFERENCE_PAIRS = 150
THRESHOLD = 0.5
GROUP = "orb similarity (80 images, ~350 descriptors)"

BF = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)


def reference_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The straightforward per-pair code (with icas's rule for all-perfect matches)."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    matches = BF.match(a, b)
    if not matches:
        return 0.0
    largest = max(m.distance for m in matches)
    if largest == 0:
        return 1.0
    return sum(m.distance < 0.75 * largest for m in matches) / len(matches)


def derived_images(rng: np.random.Generator) -> list[np.ndarray]:
    from skimage import data

    images = []
    for name in PHOTOS:
        img = getattr(data, name)()
        img = img[0] if isinstance(img, tuple) else img
        gray = img if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        for k in range(PER_PHOTO):
            # A random crop of 70-100 % of the photo, then one distortion.
            ch, cw = (int(s * rng.uniform(0.7, 1.0)) for s in (h, w))
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            v = cv2.resize(gray[y : y + ch, x : x + cw], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
            if k % 4 == 1:
                v = cv2.imdecode(cv2.imencode(".jpg", v, [cv2.IMWRITE_JPEG_QUALITY, 50])[1], 0)
            elif k % 4 == 2:
                v = cv2.convertScaleAbs(v, alpha=1.1, beta=float(rng.integers(5, 25)))
            elif k % 4 == 3:
                noise = rng.normal(0, 5, v.shape)
                v = np.clip(cv2.GaussianBlur(v, (3, 3), 0) + noise, 0, 255).astype(np.uint8)
            images.append(np.ascontiguousarray(v))
    return images


@pytest.fixture(scope="module")
def orb_data():
    rng = np.random.default_rng(0)
    orb = cv2.ORB_create()
    descs = []
    for img in derived_images(rng):
        _, d = orb.detectAndCompute(img, None)
        descs.append(np.zeros((0, 32), np.uint8) if d is None else d)
    offsets = np.zeros(len(descs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(d) for d in descs])
    stacked = np.ascontiguousarray(np.concatenate(descs))
    n = len(descs)
    iu, ju = np.triu_indices(n, 1)
    pick = rng.choice(len(iu), REFERENCE_PAIRS, replace=False)
    subset = list(zip(iu[pick].tolist(), ju[pick].tolist(), strict=True))
    want = np.array([reference_similarity(descs[i], descs[j]) for i, j in subset])
    return descs, stacked, offsets, subset, want


def check_subset(full: np.ndarray, subset, want) -> None:
    got = np.array([full[i, j] for i, j in subset])
    np.testing.assert_array_equal(got, want)


@pytest.mark.benchmark(group=GROUP)
def test_reference_bfmatcher_loop(benchmark, orb_data):
    descs, _, _, subset, want = orb_data
    benchmark.extra_info.update(pairs=len(subset), role="reference")

    def run():
        return np.array([reference_similarity(descs[i], descs[j]) for i, j in subset])

    got = benchmark.pedantic(run, rounds=3, iterations=1)
    np.testing.assert_array_equal(got, want)
    assert 0.0 < np.mean(got) < 1.0


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("n_threads", [1, -1], ids=["1-thread", "all-cores"])
def test_icas_orb_matrix(benchmark, orb_data, n_threads):
    descs, stacked, offsets, subset, want = orb_data
    n = len(descs)
    # Symmetric: each pair (and the diagonal) is computed once.
    benchmark.extra_info.update(pairs=n * (n + 1) // 2, role="icas")
    full = benchmark.pedantic(
        orb_matrix, args=(stacked, offsets), kwargs={"n_threads": n_threads}, rounds=5
    )
    check_subset(full, subset, want)


@pytest.mark.benchmark(group=GROUP)
def test_icas_orb_pairs(benchmark, orb_data):
    descs, stacked, offsets, subset, want = orb_data
    n = len(descs)
    benchmark.extra_info.update(pairs=n * (n - 1) // 2, role="icas")
    edges, scores = benchmark.pedantic(
        orb_pairs, args=(stacked, offsets, THRESHOLD), kwargs={"n_threads": -1}, rounds=5
    )
    kept = {(i, j) for i, j in edges.tolist()}
    for (i, j), w in zip(subset, want, strict=True):
        assert ((i, j) in kept) == (w >= THRESHOLD)
    assert len(edges) > 0


@pytest.mark.benchmark(group=GROUP)
def test_icas_orb_components(benchmark, orb_data):
    descs, stacked, offsets, _, _ = orb_data
    n = len(descs)
    # Pairs inside an already joined component are skipped, so fewer than
    # n (n - 1) / 2 are computed: the per-pair figure is per pair of the input.
    benchmark.extra_info.update(pairs=n * (n - 1) // 2, role="icas")
    labels = benchmark.pedantic(
        orb_components, args=(stacked, offsets, THRESHOLD), kwargs={"n_threads": -1}, rounds=5
    )
    from icas import connected_components

    edges, _ = orb_pairs(stacked, offsets, THRESHOLD)
    np.testing.assert_array_equal(labels, connected_components(edges, n))
