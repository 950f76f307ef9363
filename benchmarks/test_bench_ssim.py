"""SSIM: icas all-pairs kernels against skimage.metrics.structural_similarity per pair.

200 grayscale 64x64 images cut from real photos (19,900 pairs per icas call);
the reference loop runs on a fixed subset of 150 pairs, so its time per pair is
comparable while the run stays short.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data
from skimage.metrics import structural_similarity

from icas.similarity import ssim_matrix, ssim_pairs

N_IMAGES = 200
SIDE = 64
N_REF_PAIRS = 150
THRESHOLD = 0.5
GROUP = "ssim 64x64"


def _images() -> np.ndarray:
    """Crops of skimage's photos (several scales), resized to 64x64 gray, plus
    near-duplicates of some of them so the threshold forms find edges."""
    rng = np.random.default_rng(0)
    photos = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry"):
        img = getattr(data, name)()
        photos.append(img if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2GRAY))
    out = []
    while len(out) < N_IMAGES:
        g = photos[len(out) % len(photos)]
        side = int(rng.integers(SIDE, min(g.shape) // 2))
        y, x = rng.integers(0, g.shape[0] - side), rng.integers(0, g.shape[1] - side)
        crop = cv2.resize(g[y : y + side, x : x + side], (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        out.append(crop)
        if len(out) % 4 == 0:  # a blurred copy
            out.append(cv2.GaussianBlur(crop, (3, 3), 0))
    return np.stack(out[:N_IMAGES])


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return _images()


@pytest.fixture(scope="module")
def ref_pairs(images) -> np.ndarray:
    rng = np.random.default_rng(1)
    i, j = np.triu_indices(len(images), 1)
    pick = rng.choice(len(i), N_REF_PAIRS, replace=False)
    return np.stack([i[pick], j[pick]], axis=1)


def _reference(images, pairs) -> np.ndarray:
    return np.array([structural_similarity(images[i], images[j], data_range=255) for i, j in pairs])


@pytest.fixture(scope="module")
def ref_values(images, ref_pairs) -> np.ndarray:
    return _reference(images, ref_pairs)


@pytest.mark.benchmark(group=GROUP)
def test_skimage_per_pair(benchmark, images, ref_pairs, ref_values):
    benchmark.extra_info.update(pairs=len(ref_pairs), role="reference")
    got = benchmark.pedantic(_reference, args=(images, ref_pairs), rounds=3, iterations=1)
    np.testing.assert_array_equal(got, ref_values)


@pytest.mark.benchmark(group=GROUP)
def test_icas_ssim_matrix(benchmark, images, ref_pairs, ref_values):
    n = len(images)
    benchmark.extra_info.update(pairs=n * (n - 1) // 2, role="icas")
    sim = benchmark(ssim_matrix, images)
    np.testing.assert_allclose(sim[ref_pairs[:, 0], ref_pairs[:, 1]], ref_values, rtol=0, atol=1e-4)


@pytest.mark.benchmark(group=GROUP)
def test_icas_ssim_matrix_one_thread(benchmark, images, ref_pairs, ref_values):
    # The per-core speed-up, whatever else runs on the machine.
    n = len(images)
    benchmark.extra_info.update(pairs=n * (n - 1) // 2, role="icas")
    sim = benchmark.pedantic(ssim_matrix, args=(images,), kwargs={"n_threads": 1}, rounds=5)
    np.testing.assert_allclose(sim[ref_pairs[:, 0], ref_pairs[:, 1]], ref_values, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(sim, ssim_matrix(images))


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("threshold", [THRESHOLD, 0.8])
def test_icas_ssim_pairs(benchmark, images, ref_pairs, ref_values, threshold):
    """Pairs that cannot reach the threshold stop early: the higher it is
    (0.8 is the pipeline's default), the sooner."""
    n = len(images)
    benchmark.extra_info.update(pairs=n * (n - 1) // 2, role="icas")
    edges, scores = benchmark(ssim_pairs, images, threshold)
    sim = ssim_matrix(images)
    i, j = np.nonzero(np.triu(sim >= threshold, 1))
    assert len(i) > 0
    np.testing.assert_array_equal(edges, np.stack([i, j], axis=1))
    np.testing.assert_array_equal(scores, sim[i, j])
    # Reference pairs above the threshold (by skimage) are all found.
    want = {
        tuple(p)
        for p, v in zip(ref_pairs.tolist(), ref_values, strict=True)
        if v >= threshold + 1e-4
    }
    assert want <= {tuple(e) for e in edges.tolist()}
