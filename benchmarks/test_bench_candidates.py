"""Candidate search against comparing every pair.

Hamming: multi-index hashing (``candidates="index"``) on random codes with
planted near-duplicates, 1,000,000 codes of 64 bits and 100,000 of 4096
bits, against the brute-force kernel (``candidates="all"``) on a subset of
the codes: every benchmark records the pairs one call covers, n (n - 1) / 2,
so the summary compares time per pair. Checks: on the subset both give the
same pairs; on the whole set every pair found is within the distance bound
(recomputed with numpy) and every planted pair within it is found.

MinHash: LSH banding (approximate) on 200,000 signatures of 128 slots in
families, against the exact kernel on a subset; checks that LSH returns a
subset of the exact pairs with their scores and records its recall.

Under CI (environment variable CI=true) the sizes are 10x smaller so the run
stays short. Full size, measured by hand on the 2-core development machine
(wall time, default threads): 1M 64-bit codes at threshold 0.9 (distance
<= 6): index pairs 0.9 s, components 1.3 s, against about 500-900 s for the
brute-force kernel (extrapolated from 20,000 codes); at 0.8 (distance <= 12,
the pipeline's default threshold) 15 s. 100,000 4096-bit codes at 0.9: 7 s
against about 26 s. MinHash LSH on 200,000 signatures at 0.5: 1.3 s against
about 230 s, recall 0.79 on the subset.
"""

import os

import numpy as np
import pytest

import icas
from icas.similarity import hamming_components, hamming_pairs, minhash_pairs
from icas.similarity._hamming import hamming_index_plan
from icas.similarity._minhash import minhash_lsh_params, minhash_lsh_recall

CI = os.environ.get("CI", "").lower() == "true"
SCALE = 10 if CI else 1
# (codes, subset compared by brute force, threshold) per code length
HAMMING = {
    "candidates-64bit": (8, 1_000_000 // SCALE, 20_000 // SCALE, 0.9),
    "candidates-4096bit": (512, 100_000 // SCALE, 10_000 // SCALE, 0.9),
}
N_MINHASH, SUB_MINHASH, K, MINHASH_THRESHOLD = 200_000 // SCALE, 10_000 // SCALE, 128, 0.5


def _info(benchmark, group, pairs, role, **extra):
    benchmark.group = group
    benchmark.extra_info["pairs"] = pairs
    benchmark.extra_info["role"] = role
    benchmark.extra_info.update(extra)


def _once(benchmark, fn, *args, **kwargs):
    return benchmark.pedantic(fn, args=args, kwargs=kwargs, rounds=1, iterations=1)


def planted_codes(n: int, n_bytes: int, seed: int):
    """Random codes; 1% of them replaced by copies of others with 3% of the bits
    flipped (some of those copied again, making chains). Returns the codes and
    the planted (source, copy) pairs."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, n_bytes), dtype=np.uint8)
    k = n // 100
    src = rng.integers(0, n, k)
    dst = rng.permutation(n)[:k]
    codes[dst] = codes[src] ^ np.packbits(rng.random((k, 8 * n_bytes)) < 0.03, axis=1)
    pairs = np.sort(np.stack([src, dst], axis=1), axis=1)
    return codes, pairs[pairs[:, 0] != pairs[:, 1]]


def distances(codes: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bitwise_count(codes[edges[:, 0]] ^ codes[edges[:, 1]]).sum(-1, dtype=np.int64)


@pytest.fixture(scope="module", params=list(HAMMING))
def hamming(request):
    group = request.param
    n_bytes, n, sub, threshold = HAMMING[group]
    codes, planted = planted_codes(n, n_bytes, seed=n_bytes)
    subset = hamming_pairs(codes[:sub], threshold, candidates="all")
    return group, codes, planted, sub, threshold, subset


def test_brute_force_on_subset(benchmark, hamming):
    group, codes, planted, sub, threshold, subset = hamming
    _info(benchmark, group, sub * (sub - 1) // 2, "reference", n=sub)
    edges, scores = benchmark.pedantic(
        hamming_pairs, args=(codes[:sub], threshold), kwargs={"candidates": "all"}, rounds=3
    )
    np.testing.assert_array_equal(edges, subset[0])


def test_index_on_subset(benchmark, hamming):
    group, codes, planted, sub, threshold, subset = hamming
    _info(benchmark, group, sub * (sub - 1) // 2, "icas", n=sub)
    edges, scores = benchmark.pedantic(
        hamming_pairs, args=(codes[:sub], threshold), kwargs={"candidates": "index"}, rounds=3
    )
    np.testing.assert_array_equal(edges, subset[0])  # exactly the brute-force result
    np.testing.assert_array_equal(scores, subset[1])


def test_index_pairs(benchmark, hamming):
    group, codes, planted, sub, threshold, subset = hamming
    n, bits = len(codes), 8 * codes.shape[1]
    plan = hamming_index_plan(n, bits, threshold)
    _info(benchmark, group, n * (n - 1) // 2, "icas", n=n, plan=plan)
    edges, scores = _once(benchmark, hamming_pairs, codes, threshold, candidates="index")
    r = plan["max_distance"]
    d = distances(codes, edges)
    assert d.max() <= r  # every pair found is right ...
    np.testing.assert_array_equal(scores, (1.0 - d / bits).astype(np.float32))
    assert np.all(edges[:, 0] < edges[:, 1]) and np.all(np.diff(edges[:, 0]) >= 0)
    close = planted[distances(codes, planted) <= r]
    found = set(map(tuple, edges.tolist()))
    assert len(close) > n // 200 and all(tuple(p) in found for p in close.tolist())  # ... found
    inside = edges[edges[:, 1] < sub]  # and on the subset, it is the brute-force result
    np.testing.assert_array_equal(inside, subset[0])


def test_index_components(benchmark, hamming):
    group, codes, planted, sub, threshold, subset = hamming
    n = len(codes)
    _info(benchmark, group, n * (n - 1) // 2, "icas", n=n)
    labels = _once(benchmark, hamming_components, codes, threshold, candidates="index")
    edges, _ = hamming_pairs(codes, threshold, candidates="index")
    np.testing.assert_array_equal(labels, icas.connected_components(edges, n))
    assert labels.max() + 1 < n - n // 200  # the planted copies join their sources


# ---- MinHash LSH ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signatures():
    """Signatures in families: members copy each slot of their family's base with
    probability 0.75 (so their slots agree with probability about 0.56)."""
    rng = np.random.default_rng(11)
    base = rng.integers(0, 2**32, size=(N_MINHASH // 4, K), dtype=np.uint32)
    sigs = base[rng.integers(0, len(base), N_MINHASH)]
    fresh = rng.integers(0, 2**32, size=sigs.shape, dtype=np.uint32)
    sigs = np.where(rng.random(sigs.shape) < 0.75, sigs, fresh)
    exact = minhash_pairs(sigs[:SUB_MINHASH], MINHASH_THRESHOLD)
    return sigs, exact


def test_minhash_exact_on_subset(benchmark, signatures):
    sigs, exact = signatures
    _info(benchmark, "candidates-minhash", SUB_MINHASH * (SUB_MINHASH - 1) // 2, "reference")
    edges, _ = benchmark.pedantic(
        minhash_pairs, args=(sigs[:SUB_MINHASH], MINHASH_THRESHOLD), rounds=3
    )
    np.testing.assert_array_equal(edges, exact[0])


def test_minhash_lsh(benchmark, signatures):
    sigs, exact = signatures
    n = len(sigs)
    bands = minhash_lsh_params(MINHASH_THRESHOLD, K)
    _info(benchmark, "candidates-minhash", n * (n - 1) // 2, "icas", n=n, bands=bands)
    edges, scores = _once(benchmark, minhash_pairs, sigs, MINHASH_THRESHOLD, candidates="index")
    # on the subset: a subset of the exact pairs with the same scores
    inside = edges[:, 1] < SUB_MINHASH
    want = {tuple(e): s for e, s in zip(exact[0].tolist(), exact[1], strict=True)}
    got = list(zip(edges[inside].tolist(), scores[inside], strict=True))
    assert all(want[tuple(e)] == s for e, s in got)
    recall = len(got) / len(want)
    benchmark.extra_info["recall_on_subset"] = recall
    benchmark.extra_info["recall_at_threshold"] = minhash_lsh_recall(MINHASH_THRESHOLD, bands)
    assert recall >= minhash_lsh_recall(MINHASH_THRESHOLD, bands) - 0.05
