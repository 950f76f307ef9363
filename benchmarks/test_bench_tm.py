"""Template matching: icas (integer GEMM) vs cv2.matchTemplate per pair and a
float64 numpy Gram matrix, on 64x64 colour crops of real photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from icas.similarity import tm_components, tm_cross, tm_matrix, tm_pairs

N = 300  # images in the all-pairs benchmarks
SUBSET = 40  # images whose pairs the slow cv2 loop computes
SIZE = 64
THRESHOLD = 0.8


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """N crops of real photos (random position and scale), resized to 64x64x3,
    some of them re-encoded or brightened copies of earlier ones."""
    from skimage import data

    photos = [
        data.astronaut(),
        data.coffee(),
        data.chelsea(),
        data.rocket(),
        np.stack([data.camera()] * 3, axis=-1),
        data.immunohistochemistry(),
    ]
    rng = np.random.default_rng(0)
    out = []
    for k in range(N):
        if k >= 20 and rng.random() < 0.3:  # a near-duplicate of an earlier crop
            src = out[int(rng.integers(0, len(out)))]
            out.append(cv2.convertScaleAbs(src, alpha=1.0, beta=float(rng.integers(5, 25))))
            continue
        p = photos[int(rng.integers(0, len(photos)))]
        side = int(rng.integers(64, min(p.shape[:2])))
        y = int(rng.integers(0, p.shape[0] - side + 1))
        x = int(rng.integers(0, p.shape[1] - side + 1))
        crop = p[y : y + side, x : x + side]
        out.append(cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
    return np.ascontiguousarray(np.stack(out))


def cv2_upper(x: np.ndarray) -> np.ndarray:
    """The straightforward way: one cv2.matchTemplate per pair i < j."""
    n = len(x)
    m = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            m[i, j] = m[j, i] = 1.0 - cv2.matchTemplate(x[i], x[j], cv2.TM_SQDIFF_NORMED)[0, 0]
    return m


def numpy_gram(x: np.ndarray) -> np.ndarray:
    """Same formula with a float64 BLAS Gram matrix (from the uint8 images)."""
    f = x.reshape(len(x), -1).astype(np.float64)
    gram = f @ f.T
    sq = np.diag(gram)
    root = np.sqrt(sq)
    t = root[:, None] * root[None, :]
    num = sq[:, None] + sq[None, :] - 2 * gram
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where((t > 0) & (num < t), num / t, 1.0)
    return 1.0 - v


def upper_pairs(n: int) -> int:
    return n * (n - 1) // 2


@pytest.mark.benchmark(group="tm_matrix 300x64x64x3")
def test_tm_matrix_icas(benchmark, images):
    benchmark.extra_info.update(pairs=upper_pairs(N), role="icas")
    m = benchmark(tm_matrix, images)
    np.testing.assert_allclose(m[:SUBSET, :SUBSET], cv2_upper(images[:SUBSET]), atol=1e-4)
    np.testing.assert_allclose(m, numpy_gram(images), atol=1e-6)


@pytest.mark.benchmark(group="tm_matrix 300x64x64x3")
def test_tm_matrix_icas_one_thread(benchmark, images):
    benchmark.extra_info.update(pairs=upper_pairs(N), role="icas")
    m = benchmark(tm_matrix, images, n_threads=1)
    np.testing.assert_array_equal(m, tm_matrix(images))


@pytest.mark.benchmark(group="tm_matrix 300x64x64x3")
def test_tm_matrix_cv2_matchtemplate(benchmark, images):
    benchmark.extra_info.update(pairs=upper_pairs(SUBSET), role="reference")
    m = benchmark.pedantic(cv2_upper, args=(images[:SUBSET],), rounds=3, iterations=1)
    np.testing.assert_allclose(m, tm_matrix(images[:SUBSET]), atol=1e-4)


@pytest.mark.benchmark(group="tm_matrix 300x64x64x3")
def test_tm_matrix_numpy_float64_gram(benchmark, images):
    benchmark.extra_info.update(pairs=upper_pairs(N), role="reference")
    m = benchmark(numpy_gram, images)
    np.testing.assert_allclose(m, tm_matrix(images), atol=1e-6)


@pytest.mark.benchmark(group="tm_cross 100x300x64x64x3")
def test_tm_cross_icas(benchmark, images):
    benchmark.extra_info.update(pairs=100 * N, role="icas")
    c = benchmark(tm_cross, images[:100], images)
    np.testing.assert_array_equal(c, tm_matrix(images)[:100])


@pytest.mark.benchmark(group="tm_cross 100x300x64x64x3")
def test_tm_cross_cv2_matchtemplate(benchmark, images):
    a, b = images[:10], images[:30]
    benchmark.extra_info.update(pairs=len(a) * len(b), role="reference")

    def run():
        return np.array(
            [[1 - cv2.matchTemplate(p, q, cv2.TM_SQDIFF_NORMED)[0, 0] for q in b] for p in a]
        )

    c = benchmark.pedantic(run, rounds=3, iterations=1)
    np.testing.assert_allclose(c, tm_cross(a, b), atol=1e-4)


def cv2_pairs(x: np.ndarray, threshold: float):
    edges, scores = [], []
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            s = 1.0 - cv2.matchTemplate(x[i], x[j], cv2.TM_SQDIFF_NORMED)[0, 0]
            if s >= threshold:
                edges.append((i, j))
                scores.append(s)
    return np.array(edges, np.int64).reshape(-1, 2), np.array(scores, np.float32)


@pytest.mark.benchmark(group="tm_pairs 300x64x64x3")
def test_tm_pairs_icas(benchmark, images):
    benchmark.extra_info.update(pairs=upper_pairs(N), role="icas")
    edges, scores = benchmark(tm_pairs, images, THRESHOLD)
    assert len(edges) > 0
    m = numpy_gram(images)
    i, j = np.triu_indices(N, 1)
    keep = m[i, j] >= THRESHOLD
    np.testing.assert_array_equal(edges, np.stack([i[keep], j[keep]], axis=1))
    # on the subset, the same pairs as cv2 (but for scores within 1e-4 of the threshold)
    ref = cv2_upper(images[:SUBSET])
    sub = edges[:, 1] < SUBSET
    np.testing.assert_allclose(scores[sub], ref[edges[sub, 0], edges[sub, 1]], atol=1e-4)
    i, j = np.triu_indices(SUBSET, 1)
    clear = np.abs(ref[i, j] - THRESHOLD) > 1e-4
    got = np.zeros((SUBSET, SUBSET), bool)
    got[edges[sub, 0], edges[sub, 1]] = True
    np.testing.assert_array_equal(got[i, j][clear], (ref[i, j] >= THRESHOLD)[clear])


@pytest.mark.benchmark(group="tm_pairs 300x64x64x3")
def test_tm_pairs_cv2_matchtemplate(benchmark, images):
    benchmark.extra_info.update(pairs=upper_pairs(SUBSET), role="reference")
    edges, scores = benchmark.pedantic(
        cv2_pairs, args=(images[:SUBSET], THRESHOLD), rounds=3, iterations=1
    )
    got, _ = tm_pairs(images[:SUBSET], THRESHOLD)
    clear = np.abs(scores - THRESHOLD) > 1e-4
    assert {tuple(e) for e in edges[clear]} <= {tuple(e) for e in got}
    assert len(got) >= clear.sum()


@pytest.mark.benchmark(group="tm_pairs 300x64x64x3")
def test_tm_components_icas(benchmark, images):
    benchmark.extra_info.update(pairs=upper_pairs(N), role="icas")
    labels = benchmark(tm_components, images, THRESHOLD)
    from icas import connected_components

    np.testing.assert_array_equal(labels, connected_components(tm_pairs(images, THRESHOLD)[0], N))
