"""Multi-index hashing (candidates="index") against numpy's bitwise_count over
all pairs and the brute-force kernel: the same pairs, order and scores."""

import imagehash
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import icas
from icas import _core
from icas.similarity import hamming_components, hamming_pairs
from icas.similarity._hamming import hamming_index_plan


def ref_pairs(codes: np.ndarray, threshold: float, groups=None):
    """Pairs i < j with 1 - d / bits >= threshold, from numpy over all pairs."""
    d = np.bitwise_count(codes[:, None, :] ^ codes[None, :, :]).sum(-1, dtype=np.int64)
    sim = 1.0 - d / (8 * codes.shape[1])
    keep = np.triu(sim >= threshold, 1)
    if groups is not None:
        keep &= groups[:, None] != groups[None, :]
    i, j = np.nonzero(keep)
    return np.stack([i, j], axis=1).astype(np.int64), sim[i, j].astype(np.float32)


def planted(rng, n: int, n_bytes: int, share: float = 0.3, flip: float = 0.03) -> np.ndarray:
    """Random codes where a share of them are near copies of others (a few bits flipped),
    some of them chained (copies of copies)."""
    codes = rng.integers(0, 256, size=(n, n_bytes), dtype=np.uint8)
    for _ in range(2):
        k = int(share * n / 2)
        src, dst = rng.integers(0, n, k), rng.integers(0, n, k)
        codes[dst] = codes[src] ^ np.packbits(rng.random((k, 8 * n_bytes)) < flip, axis=1)
    return codes


def thresholds_for(bits: int, radii) -> list[float]:
    """Thresholds whose distance bound is exactly each radius."""
    return [1.0 - r / bits for r in radii if r <= bits]


def lowest_m(n: int, bits: int) -> int:
    s = _core.mih_max_substring_bits(n)
    return -(-bits // s)


def check_index(codes, threshold, substrings, want=None, groups=None):
    """Pairs and components of the index equal the reference."""
    n = len(codes)
    if want is None:
        want = ref_pairs(codes, threshold, groups)
    edges, scores = _core.hamming_index_pairs(codes, threshold, groups, 0, substrings)
    np.testing.assert_array_equal(edges.reshape(-1, 2), want[0].reshape(-1, 2))
    np.testing.assert_array_equal(scores, want[1])
    labels = _core.hamming_index_components(codes, threshold, groups, 0, substrings)
    np.testing.assert_array_equal(labels, icas.connected_components(want[0], n))
    return len(want[0])


# ---- exactly the brute-force pairs -----------------------------------------------------


@pytest.mark.parametrize("n_bytes", [8, 32, 512])
def test_small_sets_equal_numpy_at_every_radius(n_bytes):
    rng = np.random.default_rng(n_bytes)
    bits = 8 * n_bytes
    codes = planted(rng, 150, n_bytes)
    lo = lowest_m(150, bits)
    # radii from 0 to half the bits, with m from the fewest substrings to
    # one bit each (tables that are probed, and tables so wide they are scanned)
    radii = sorted({0, 1, 2, 3, 5, 8, bits // 20, bits // 10, bits // 4, bits // 2})
    ms = sorted({lo, lo + 1, 2 * lo, bits // 2, bits, -1, 0})
    found = 0
    for r in radii:
        threshold = 1.0 - r / bits
        want = ref_pairs(codes, threshold)
        # one-bit substrings of 4096-bit codes: only small radii, for time
        for m in ms if n_bytes < 512 else [lo, 512, -1, 0] + ([4096] if r <= 409 else []):
            found += check_index(codes, threshold, m, want)
    assert found > 0


@pytest.mark.parametrize("n_bytes", [1, 3, 7, 13, 63, 64, 65, 100])
def test_odd_code_lengths(n_bytes):
    # substrings that straddle bytes, end in a partial last word, and codes
    # just below and above the length kept in the tables
    rng = np.random.default_rng(100 + n_bytes)
    codes = planted(rng, 120, n_bytes, flip=0.05)
    bits = 8 * n_bytes
    lo = lowest_m(120, bits)
    for threshold in thresholds_for(bits, [0, 1, 4, bits // 8, bits // 3]):
        for m in sorted({lo, min(bits, lo + 3), bits, -1}):
            check_index(codes, threshold, m)


@pytest.mark.parametrize("n_bytes, n", [(8, 6000), (32, 3000)])
def test_larger_sets_equal_brute_force_kernel(n_bytes, n):
    # enough codes that tables are probed (not scanned) at larger radii, and
    # that the queries run on several threads
    rng = np.random.default_rng(n)
    codes = planted(rng, n, n_bytes, share=0.2)
    bits = 8 * n_bytes
    lo = lowest_m(n, bits)
    radii = [0, 2, 6, 9, 13] if n_bytes == 8 else [0, 5, 16, 30]
    found = 0
    for threshold in thresholds_for(bits, radii):
        want = _core.hamming_pairs(codes, threshold, None, 0)
        for m in (lo, lo + 2, -1):
            found += check_index(codes, threshold, m, want)
    assert found > n


def test_threshold_zero_and_one():
    rng = np.random.default_rng(4)
    codes = planted(rng, 90, 16)
    codes[10:20] = codes[5]  # exact duplicates
    for threshold in (0.0, 1.0, np.nextafter(0.0, 1.0)):
        for m in (lowest_m(90, 128), 128, -1, 0):
            check_index(codes, threshold, m)
    assert len(hamming_pairs(codes, 0.0, candidates="index")[0]) == 90 * 89 // 2


def test_large_buckets_of_identical_codes():
    # buckets far larger than the branch-free skip handles, with many pairs
    rng = np.random.default_rng(6)
    codes = planted(rng, 3000, 8, share=0.1)
    codes[rng.integers(0, 3000, 400)] = codes[7]
    codes[rng.integers(0, 3000, 300)] = codes[8] ^ np.uint8(1)
    for threshold in (1.0, 0.95, 0.9):
        want = _core.hamming_pairs(codes, threshold, None, 0)
        assert len(want[0]) > 60000
        check_index(codes, threshold, -1, want)


def test_phash_of_photos(photos, photo_groups):
    images, _ = photo_groups
    pil = [Image.fromarray(p) for p in photos] + [Image.fromarray(im) for im in images]
    codes = np.stack([np.packbits(imagehash.phash(im, hash_size=16).hash) for im in pil])
    for threshold in (0.95, 0.85, 0.75):
        want = ref_pairs(codes, threshold)
        for how in ("all", "index", "auto"):
            edges, scores = hamming_pairs(codes, threshold, candidates=how)
            np.testing.assert_array_equal(edges, want[0])
            np.testing.assert_array_equal(scores, want[1])
            labels = hamming_components(codes, threshold, candidates=how)
            np.testing.assert_array_equal(labels, icas.connected_components(want[0], len(codes)))
    assert len(want[0]) > len(images) // 2


# ---- groups, threads, the plan -----------------------------------------------------------


def test_groups_skip_pairs_inside_a_group():
    rng = np.random.default_rng(11)
    codes = planted(rng, 2500, 8, share=0.4)
    groups = rng.integers(0, 3, size=2500)
    for threshold in (0.95, 0.9):
        want = _core.hamming_pairs(codes, threshold, groups, 0)
        check_index(codes, threshold, -1, want, groups)
        check_index(codes, threshold, lowest_m(2500, 64) + 1, want, groups)
    assert len(hamming_pairs(codes, 0.0, groups=np.zeros(2500, np.int64))[0]) == 0


@pytest.mark.parametrize("n, n_bytes, threshold", [(30000, 8, 0.85), (15000, 128, 0.9)])
def test_thread_count_does_not_change_results(n, n_bytes, threshold):
    # large enough that the queries run on several threads (the tables fit in
    # one group, whose queries the plan expects to take over 10 ms)
    plan = hamming_index_plan(n, 8 * n_bytes, threshold)
    assert plan["use_index"] and plan["index_seconds"] > 0.02
    rng = np.random.default_rng(3)
    codes = planted(rng, n, n_bytes, share=0.3)

    def run(n_threads):
        return [
            *hamming_pairs(codes, threshold, n_threads=n_threads, candidates="index"),
            hamming_components(codes, threshold, n_threads=n_threads, candidates="index"),
        ]

    ref = run(1)
    assert len(ref[0]) > 100
    np.testing.assert_array_equal(ref[0], hamming_pairs(codes, threshold, candidates="all")[0])
    for n_threads in (2, 3):
        for a, b in zip(ref, run(n_threads), strict=True):
            np.testing.assert_array_equal(a, b)


def test_plan():
    # the index pays for many short codes and a small radius, not for a few
    # long codes with a large one
    p = hamming_index_plan(1_000_000, 64, 0.9)
    assert p["use_index"] and p["max_distance"] == 6
    assert p["index_seconds"] < p["brute_seconds"] / 10
    assert not hamming_index_plan(500, 4096, 0.8)["use_index"]
    assert not hamming_index_plan(10, 64, 0.9)["use_index"]
    for n, bits, threshold in ((1000, 64, 0.9), (10**6, 256, 0.8), (50_000, 4096, 0.9)):
        p = hamming_index_plan(n, bits, threshold)
        r = p["max_distance"]
        assert r == _core.hamming_max_distance(threshold, bits)
        assert lowest_m(n, bits) <= p["substrings"] <= bits
        assert p["tables"] == min(p["substrings"], r + 1)
    # no pair can qualify: nothing to plan
    assert hamming_index_plan(10**6, 64, 1.0)["max_distance"] == 0
    tiny = _core.mih_plan(10**6, 64, -1)
    assert tiny["substrings"] == 0 and not tiny["use_index"]
    assert _core.mih_max_substring_bits(1) == 16
    assert _core.mih_max_substring_bits(10**6) == 22
    assert _core.mih_max_substring_bits(2**40) == 28


def test_auto_follows_the_plan():
    rng = np.random.default_rng(9)
    for n, n_bytes, threshold in ((300, 512, 0.8), (3000, 8, 0.95)):
        codes = planted(rng, n, n_bytes)
        want = _core.hamming_pairs(codes, threshold, None, 0)
        for how in ("auto", "index"):
            got = hamming_pairs(codes, threshold, candidates=how)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    assert not hamming_index_plan(300, 4096, 0.8)["use_index"]
    assert hamming_index_plan(3000, 64, 0.95)["use_index"]


@pytest.mark.parametrize("n", [0, 1])
def test_zero_and_one_code(n):
    codes = np.zeros((n, 8), np.uint8)
    for how in ("index", "auto"):
        edges, scores = hamming_pairs(codes, 0.5, candidates=how)
        assert edges.shape == (0, 2) and edges.dtype == np.int64
        assert scores.shape == (0,) and scores.dtype == np.float32
        labels = hamming_components(codes, 0.5, candidates=how)
        assert labels.dtype == np.int64 and labels.tolist() == list(range(n))


# ---- errors ---------------------------------------------------------------------------------


def test_errors():
    codes = np.zeros((4, 8), np.uint8)
    with pytest.raises(ValueError, match="candidates must be 'auto', 'all' or 'index', got 'mih'"):
        hamming_pairs(codes, 0.5, candidates="mih")
    with pytest.raises(ValueError, match="candidates must be"):
        hamming_components(codes, 0.5, candidates=None)
    with pytest.raises(TypeError, match="codes must have dtype uint8"):
        hamming_pairs(np.zeros((4, 8), np.int64), 0.5, candidates="index")
    with pytest.raises(ValueError, match=r"threshold must be in \[0.0, 1.0\]"):
        hamming_components(codes, 2.0, candidates="index")
    with pytest.raises(ValueError, match=r"groups must have shape \(4,\)"):
        hamming_pairs(codes, 0.5, groups=np.zeros(3, np.int64), candidates="index")
    with pytest.raises(ValueError, match=r"in \[4, 64\] for 4 codes of 64 bits.*got 3"):
        _core.hamming_index_pairs(codes, 0.5, None, 0, 3)
    with pytest.raises(ValueError, match=r"got 65"):
        _core.hamming_index_components(codes, 0.5, None, 0, 65)
    with pytest.raises(ValueError, match=r"got -2"):
        _core.hamming_index_pairs(codes, 0.5, None, 0, -2)
    with pytest.raises(ValueError, match=r"codes must have 2 dimensions, got shape \(3\)"):
        _core.hamming_index_pairs(np.zeros(3, np.uint8), 0.5)
    with pytest.raises(ValueError, match="at least 1 byte"):
        _core.hamming_index_components(np.zeros((3, 0), np.uint8), 0.5)
    with pytest.raises(ValueError, match="n must be >= 0"):
        hamming_index_plan(-1, 64, 0.5)
    with pytest.raises(ValueError, match="bits must be >= 1"):
        hamming_index_plan(10, 0, 0.5)
    with pytest.raises(TypeError, match="bits must be an int"):
        hamming_index_plan(10, 64.0, 0.5)
    with pytest.raises(ValueError, match="threshold must be in"):
        hamming_index_plan(10, 64, -0.5)


# ---- properties ---------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(0, 40),
    n_bytes=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    threshold=st.floats(0.0, 1.0),
    data=st.data(),
)
def test_property_index_equals_numpy(n, n_bytes, seed, threshold, data):
    rng = np.random.default_rng(seed)
    codes = planted(rng, n, n_bytes, flip=0.1)
    bits = 8 * n_bytes
    m = data.draw(st.sampled_from([0, -1, lowest_m(n, bits), bits]))
    check_index(codes, threshold, m)
