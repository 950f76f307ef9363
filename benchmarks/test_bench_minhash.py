"""MinHash kernels against datasketch (``MinHash.jaccard`` per pair) and numpy
``(a[:, None] == b[None]).mean(-1)``, on 2000 signatures of 128 slots.

Two groups: uint32 signatures (datasketch's default "affine32" scheme) and
uint64 ones ("affine64"). The references run on a subset (pairs sampled for
datasketch, a block of rows for numpy); matrix, pairs and components count
the n (n - 1) / 2 distinct pairs. The matrix also runs on one thread, for a
per-core ratio that a busy machine disturbs less.
"""

import numpy as np
import pytest
from datasketch import MinHash

import icas
from icas.similarity import minhash_components, minhash_cross, minhash_matrix, minhash_pairs

N = 2000
NUM_PERM = 128
N_PAIRS_DATASKETCH = 2000
NUMPY_ROWS = 100
THRESHOLD = 0.5
SCHEMES = {"minhash-128-uint32": "affine32", "minhash-128-uint64": "affine64"}


def make_minhashes(scheme: str, n: int, seed: int) -> list[MinHash]:
    """n MinHash of token sets in families that share most of their tokens."""
    rng = np.random.default_rng(seed)
    universe = np.array([rng.bytes(12) for _ in range(5000)], dtype=object)
    cores = [rng.choice(len(universe), size=60, replace=False) for _ in range(n // 8)]
    hashes = []
    for _i in range(n):
        core = cores[int(rng.integers(0, len(cores)))]
        tokens = np.concatenate([core[rng.random(60) < 0.85], rng.choice(len(universe), size=8)])
        m = MinHash(num_perm=NUM_PERM, seed=1, scheme=scheme)
        m.update_batch(list(universe[tokens]))
        hashes.append(m)
    return hashes


@pytest.fixture(scope="module", params=list(SCHEMES))
def setup(request):
    group = request.param
    hashes = make_minhashes(SCHEMES[group], N, seed=3)
    sigs = np.stack([m.hashvalues for m in hashes])
    rng = np.random.default_rng(1)
    sample = rng.integers(0, N, size=(N_PAIRS_DATASKETCH, 2))
    full = minhash_matrix(sigs)
    return group, hashes, sigs, sample, full


def _info(benchmark, group, pairs, role):
    benchmark.group = group
    benchmark.extra_info["pairs"] = pairs
    benchmark.extra_info["role"] = role


def test_datasketch_per_pair(benchmark, setup):
    group, hashes, sigs, sample, full = setup
    _info(benchmark, group, len(sample), "reference")
    got = benchmark(lambda: [hashes[i].jaccard(hashes[j]) for i, j in sample])
    np.testing.assert_array_equal(got, full[sample[:, 0], sample[:, 1]])  # exactly


def test_numpy_mean_equal(benchmark, setup):
    group, hashes, sigs, sample, full = setup
    a = sigs[:NUMPY_ROWS]
    _info(benchmark, group, NUMPY_ROWS * N, "reference")
    got = benchmark.pedantic(lambda: (a[:, None] == sigs[None]).mean(-1), rounds=3, iterations=1)
    np.testing.assert_array_equal(got, full[:NUMPY_ROWS])


@pytest.mark.parametrize("n_threads", [None, 1], ids=["all-threads", "1-thread"])
def test_icas_matrix(benchmark, setup, n_threads):
    group, hashes, sigs, sample, full = setup
    _info(benchmark, group, N * (N - 1) // 2, "icas")
    got = benchmark(minhash_matrix, sigs, n_threads=n_threads)
    np.testing.assert_array_equal(got, full)
    np.testing.assert_array_equal(got[3, :50], [hashes[3].jaccard(h) for h in hashes[:50]])


def test_icas_cross(benchmark, setup):
    group, hashes, sigs, sample, full = setup
    _info(benchmark, group, NUMPY_ROWS * N, "icas")
    got = benchmark(minhash_cross, sigs[:NUMPY_ROWS], sigs)
    np.testing.assert_array_equal(got, full[:NUMPY_ROWS])


def test_icas_pairs(benchmark, setup):
    group, hashes, sigs, sample, full = setup
    _info(benchmark, group, N * (N - 1) // 2, "icas")
    edges, scores = benchmark(minhash_pairs, sigs, THRESHOLD)
    i, j = np.nonzero(np.triu(full >= THRESHOLD, 1))
    assert len(i) > N  # the families make edges
    np.testing.assert_array_equal(edges, np.stack([i, j], axis=1))
    np.testing.assert_array_equal(scores, full[i, j].astype(np.float32))


def test_icas_components(benchmark, setup):
    group, hashes, sigs, sample, full = setup
    _info(benchmark, group, N * (N - 1) // 2, "icas")
    labels = benchmark(minhash_components, sigs, THRESHOLD)
    edges, _ = minhash_pairs(sigs, THRESHOLD)
    np.testing.assert_array_equal(labels, icas.connected_components(edges, N))
    assert labels.max() + 1 < N // 2  # the families are found
