"""Hamming kernels against imagehash (``h1 - h2`` per pair) and numpy's
``bitwise_count`` over all pairs, on 2000 codes of 4096 and of 64 bits.

The references run on a subset (pairs sampled for imagehash, a block of rows
for numpy); every benchmark records the pairs one call computes, so the
summary compares time per pair. Matrix, pairs and components count the
n (n - 1) / 2 distinct pairs of the n codes. The matrix also runs on one
thread, for a per-core ratio that a busy machine disturbs less.
"""

import imagehash
import numpy as np
import pytest

import icas
from icas.similarity import hamming_components, hamming_cross, hamming_matrix, hamming_pairs

N = 2000
N_PAIRS_IMAGEHASH = 2000
NUMPY_ROWS = 100
THRESHOLD = 0.9
SIDES = {"hamming-4096bit": 64, "hamming-64bit": 8}


def make_hashes(side: int, n: int, seed: int):
    """n imagehash hashes of side x side bits in families of near-duplicates."""
    rng = np.random.default_rng(seed)
    bases = rng.random((n // 8, side, side)) < 0.5
    bits = bases[rng.integers(0, len(bases), size=n)] ^ (rng.random((n, side, side)) < 0.04)
    hashes = [imagehash.ImageHash(b) for b in bits]
    codes = np.packbits(bits.reshape(n, -1), axis=1)
    return hashes, codes


@pytest.fixture(scope="module", params=list(SIDES))
def setup(request):
    group = request.param
    hashes, codes = make_hashes(SIDES[group], N, seed=len(group))
    rng = np.random.default_rng(1)
    sample = rng.integers(0, N, size=(N_PAIRS_IMAGEHASH, 2))
    full = hamming_matrix(codes)
    return group, hashes, codes, sample, full


def _info(benchmark, group, pairs, role):
    benchmark.group = group
    benchmark.extra_info["pairs"] = pairs
    benchmark.extra_info["role"] = role


def test_imagehash_per_pair(benchmark, setup):
    group, hashes, codes, sample, full = setup
    _info(benchmark, group, len(sample), "reference")
    got = benchmark(lambda: [hashes[i] - hashes[j] for i, j in sample])
    np.testing.assert_array_equal(got, full[sample[:, 0], sample[:, 1]])


def test_numpy_bitwise_count(benchmark, setup):
    group, hashes, codes, sample, full = setup
    a = codes[:NUMPY_ROWS]
    _info(benchmark, group, NUMPY_ROWS * N, "reference")
    got = benchmark.pedantic(
        lambda: np.bitwise_count(a[:, None] ^ codes[None]).sum(-1), rounds=3, iterations=1
    )
    np.testing.assert_array_equal(got, full[:NUMPY_ROWS])


@pytest.mark.parametrize("n_threads", [None, 1], ids=["all-threads", "1-thread"])
def test_icas_matrix(benchmark, setup, n_threads):
    group, hashes, codes, sample, full = setup
    _info(benchmark, group, N * (N - 1) // 2, "icas")
    got = benchmark(hamming_matrix, codes, n_threads=n_threads)
    np.testing.assert_array_equal(got, full)
    np.testing.assert_array_equal(got[:5], np.bitwise_count(codes[:5, None] ^ codes[None]).sum(-1))


def test_icas_cross(benchmark, setup):
    group, hashes, codes, sample, full = setup
    _info(benchmark, group, NUMPY_ROWS * N, "icas")
    got = benchmark(hamming_cross, codes[:NUMPY_ROWS], codes)
    np.testing.assert_array_equal(got, full[:NUMPY_ROWS])


def test_icas_pairs(benchmark, setup):
    group, hashes, codes, sample, full = setup
    _info(benchmark, group, N * (N - 1) // 2, "icas")
    edges, scores = benchmark(hamming_pairs, codes, THRESHOLD)
    bits = 8 * codes.shape[1]
    i, j = np.nonzero(np.triu(1.0 - full / bits >= THRESHOLD, 1))
    assert len(i) > N  # the families make edges
    np.testing.assert_array_equal(edges, np.stack([i, j], axis=1))


def test_icas_components(benchmark, setup):
    group, hashes, codes, sample, full = setup
    _info(benchmark, group, N * (N - 1) // 2, "icas")
    labels = benchmark(hamming_components, codes, THRESHOLD)
    edges, _ = hamming_pairs(codes, THRESHOLD)
    np.testing.assert_array_equal(labels, icas.connected_components(edges, N))
    assert labels.max() + 1 < N // 2  # the families are found
