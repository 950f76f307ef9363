"""Hamming kernels against imagehash (``h1 - h2``) and numpy's bitwise_count."""

import imagehash
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import icas
from icas import _core
from icas.similarity import (
    hamming_components,
    hamming_cross,
    hamming_matrix,
    hamming_pairs,
)

KERNELS = _core.hamming_kernels()


def pack(h: imagehash.ImageHash) -> np.ndarray:
    """An ImageHash as packed bytes (zero padding to whole bytes adds no distance)."""
    return np.packbits(h.hash.flatten())


def ref_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(-1, dtype=np.int64)


def ref_pairs(codes: np.ndarray, threshold: float, groups=None, d=None):
    """Pairs i < j with 1 - d / bits >= threshold, evaluated in float64."""
    d = ref_distances(codes, codes) if d is None else d
    sim = 1.0 - d / (8 * codes.shape[1])
    keep = np.triu(sim >= threshold, 1)
    if groups is not None:
        keep &= groups[:, None] != groups[None, :]
    i, j = np.nonzero(keep)
    return np.stack([i, j], axis=1).astype(np.int64), sim[i, j].astype(np.float32)


def near_duplicates(rng, n: int, n_bytes: int, flip: float = 0.03) -> np.ndarray:
    """Codes in small families: copies of a few bases with a few bits flipped."""
    bases = rng.integers(0, 256, size=(max(1, n // 4), n_bytes), dtype=np.uint8)
    codes = bases[rng.integers(0, len(bases), size=n)]
    noise = np.packbits(rng.random((n, 8 * n_bytes)) < flip, axis=1)
    return np.ascontiguousarray(codes ^ noise)


# ---- against imagehash ------------------------------------------------------


@pytest.mark.parametrize("side", [8, 16, 64, 5])
def test_matrix_equals_imagehash_on_random_hashes(side):
    rng = np.random.default_rng(side)
    base = rng.random((side, side)) < 0.5
    flips = [rng.random((side, side)) < p for p in np.linspace(0, 0.6, 12)]
    hashes = [imagehash.ImageHash(base ^ f) for f in flips]
    codes = np.stack([pack(h) for h in hashes])
    got = hamming_matrix(codes)
    want = np.array([[h1 - h2 for h2 in hashes] for h1 in hashes])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)
    # the similarity of the threshold forms is 1 - d / bits, bits = side * side
    # (5 x 5 = 25 bits are padded to 32: the padding never differs)
    bits = 8 * codes.shape[1]
    edges, scores = hamming_pairs(codes, 0.0)
    want_scores = (1.0 - want[edges[:, 0], edges[:, 1]] / bits).astype(np.float32)
    np.testing.assert_array_equal(scores, want_scores)


@pytest.mark.parametrize("hash_size", [8, 16])
def test_phash_of_photos(photos, photo_groups, hash_size):
    images, groups = photo_groups
    pil = [Image.fromarray(p) for p in photos] + [Image.fromarray(im) for im in images]
    hashes = [imagehash.phash(im, hash_size=hash_size) for im in pil]
    codes = np.stack([pack(h) for h in hashes])
    want = np.array([[h1 - h2 for h2 in hashes] for h1 in hashes])
    np.testing.assert_array_equal(hamming_matrix(codes), want)
    k = len(photos)
    np.testing.assert_array_equal(hamming_cross(codes[:k], codes[k:]), want[:k, k:])
    # near-duplicates of one photo are closer than different photos
    d = hamming_matrix(codes[k:])
    same = groups[:, None] == groups[None, :]
    assert d[same].mean() < d[~same].mean() / 2
    labels = hamming_components(codes[k:], 0.75)
    edges = hamming_pairs(codes[k:], 0.75)[0]
    assert len(edges) > 0
    np.testing.assert_array_equal(labels, icas.connected_components(edges, len(images)))


# ---- against numpy, every form and kernel -------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("n_bytes", [1, 3, 8, 13, 32, 64, 65, 100, 512, 513])
def test_every_kernel_matches_numpy(kernel, n_bytes):
    rng = np.random.default_rng(n_bytes)
    codes = near_duplicates(rng, 41, n_bytes)
    other = rng.integers(0, 256, size=(19, n_bytes), dtype=np.uint8)
    want = ref_distances(codes, codes)
    np.testing.assert_array_equal(_core.hamming_matrix(codes, 0, kernel), want)
    np.testing.assert_array_equal(
        _core.hamming_cross(codes, other, 0, kernel), ref_distances(codes, other)
    )
    for threshold in (0.0, 0.5, 0.8, 0.95, 1.0):
        edges, scores = _core.hamming_pairs(codes, threshold, None, 0, kernel)
        want_edges, want_scores = ref_pairs(codes, threshold, d=want)
        np.testing.assert_array_equal(edges, want_edges)
        np.testing.assert_array_equal(scores, want_scores)
        labels = _core.hamming_components(codes, threshold, None, 0, kernel)
        np.testing.assert_array_equal(labels, icas.connected_components(want_edges, len(codes)))


def test_kernels_listed():
    assert KERNELS[-1] == "portable"
    assert set(KERNELS) <= {"avx512", "avx2", "popcnt", "portable"}
    assert (icas.build_info()["vpopcntdq"]) == ("avx512" in KERNELS)
    with pytest.raises(ValueError, match="unknown Hamming kernel 'sse9'"):
        _core.hamming_matrix(np.zeros((2, 8), np.uint8), 0, "sse9")


def test_large_matrix_tiles_and_mirror():
    # more codes than one tile in both directions, sizes not multiples of 4 / 8
    rng = np.random.default_rng(5)
    for n_bytes, n in ((512, 75), (8, 530), (20, 300)):
        codes = rng.integers(0, 256, size=(n, n_bytes), dtype=np.uint8)
        got = hamming_matrix(codes)
        np.testing.assert_array_equal(got, ref_distances(codes, codes))
        np.testing.assert_array_equal(hamming_cross(codes[:37], codes), got[:37])


def test_components_over_several_waves():
    # enough codes that the components run in several waves of rows, with
    # clusters spanning waves, chains, and codes that match nothing
    rng = np.random.default_rng(12)
    codes = near_duplicates(rng, 3000, 8, flip=0.04)
    assert not hamming_components(codes, 0.0).any()  # one component of everything
    for threshold in (0.9, 0.95, 1.0):
        edges, _ = hamming_pairs(codes, threshold)
        want = icas.connected_components(edges, len(codes))
        for n_threads in (1, 2):
            got = hamming_components(codes, threshold, n_threads=n_threads)
            np.testing.assert_array_equal(got, want)
    groups = np.arange(3000) % 7
    edges, _ = hamming_pairs(codes, 0.9, groups=groups)
    got = hamming_components(codes, 0.9, groups=groups)
    np.testing.assert_array_equal(got, icas.connected_components(edges, 3000))


def test_all_ones_and_zeros():
    codes = np.array([[0] * 13, [255] * 13, [0] * 13], dtype=np.uint8)
    np.testing.assert_array_equal(hamming_matrix(codes), [[0, 104, 0], [104, 0, 104], [0, 104, 0]])
    edges, scores = hamming_pairs(codes, 1.0)
    np.testing.assert_array_equal(edges, [[0, 2]])
    np.testing.assert_array_equal(scores, [1.0])
    edges, scores = hamming_pairs(codes, 0.0)
    np.testing.assert_array_equal(edges, [[0, 1], [0, 2], [1, 2]])
    np.testing.assert_array_equal(scores, [0.0, 1.0, 0.0])


# ---- thresholds at the boundary --------------------------------------------------


def codes_at_distances(n_bytes: int, distances) -> np.ndarray:
    """Code 0 is all zeros; code k + 1 has its first distances[k] bits set."""
    bits = np.zeros((len(distances) + 1, 8 * n_bytes), dtype=bool)
    for k, d in enumerate(distances):
        bits[k + 1, :d] = True
    return np.packbits(bits, axis=1)


@pytest.mark.parametrize("n_bytes", [1, 3, 8, 13, 512])
def test_pair_exactly_at_threshold_is_kept(n_bytes):
    bits = 8 * n_bytes
    for d in sorted({0, 1, 2, 3, bits // 3, bits // 2, bits - 1, bits}):
        codes = codes_at_distances(n_bytes, [d])
        at = 1.0 - d / bits  # the similarity as float64 computes it
        edges, scores = hamming_pairs(codes, at)
        assert edges.tolist() == [[0, 1]], (d, at)
        assert scores[0] == np.float32(at)
        assert hamming_components(codes, at).tolist() == [0, 0]
        above = np.nextafter(at, 2.0)
        if above <= 1.0:
            assert len(hamming_pairs(codes, above)[0]) == 0, (d, above)
            assert hamming_components(codes, above).tolist() == [0, 1]


def test_max_distance_follows_float64_rounding():
    # (1 - t) * bits is often a hair off an integer (1 - 0.7 = 0.30000000000000004):
    # the bound must follow the float64 comparison 1 - d / bits >= t, not that.
    for n_bytes in (1, 3, 5, 7, 10, 13):
        bits = 8 * n_bytes
        d = np.arange(bits + 1)
        sim = 1.0 - d / bits
        for t in np.concatenate([sim, d / bits, np.round(sim, 2), [0.7, 0.1, 0.3, 0.9]]):
            ok = d[sim >= t]
            want = ok.max() if len(ok) else -1
            assert _core.hamming_max_distance(float(t), bits) == want, (bits, t)


# ---- groups, threads, sizes --------------------------------------------------------


def test_groups_skip_pairs_inside_a_group():
    rng = np.random.default_rng(11)
    codes = near_duplicates(rng, 60, 16, flip=0.02)
    groups = rng.integers(0, 3, size=60)
    edges, scores = hamming_pairs(codes, 0.8, groups=groups)
    want_edges, want_scores = ref_pairs(codes, 0.8, groups)
    assert len(want_edges) > 0
    np.testing.assert_array_equal(edges, want_edges)
    np.testing.assert_array_equal(scores, want_scores)
    labels = hamming_components(codes, 0.8, groups=groups)
    np.testing.assert_array_equal(labels, icas.connected_components(want_edges, 60))
    # one group for everything: no pair at all
    assert len(hamming_pairs(codes, 0.0, groups=np.zeros(60, np.int32))[0]) == 0


def test_thread_count_does_not_change_results():
    rng = np.random.default_rng(3)
    codes = near_duplicates(rng, 300, 64, flip=0.05)

    def run(n_threads):
        return [
            hamming_matrix(codes, n_threads=n_threads),
            *hamming_pairs(codes, 0.85, n_threads=n_threads),
            hamming_components(codes, 0.85, n_threads=n_threads),
            hamming_cross(codes[:50], codes, n_threads=n_threads),
        ]

    ref = run(1)
    assert len(ref[1]) > 0
    for n_threads in (2, 3, -1, None):
        for a, b in zip(ref, run(n_threads), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [0, 1])
def test_zero_and_one_code(n):
    codes = np.zeros((n, 8), np.uint8)
    assert hamming_matrix(codes).shape == (n, n)
    assert hamming_cross(codes, np.zeros((3, 8), np.uint8)).shape == (n, 3)
    assert hamming_cross(np.zeros((3, 8), np.uint8), codes).shape == (3, n)
    edges, scores = hamming_pairs(codes, 0.5)
    assert edges.shape == (0, 2) and edges.dtype == np.int64
    assert scores.shape == (0,) and scores.dtype == np.float32
    labels = hamming_components(codes, 0.5)
    assert labels.dtype == np.int64 and labels.tolist() == list(range(n))


def test_non_contiguous_input_is_accepted():
    rng = np.random.default_rng(8)
    wide = rng.integers(0, 256, size=(20, 16), dtype=np.uint8)
    view = wide[::2, ::2]
    dense = np.ascontiguousarray(view)
    np.testing.assert_array_equal(hamming_matrix(view), ref_distances(dense, dense))


# ---- errors ---------------------------------------------------------------------------


def test_errors():
    codes = np.zeros((4, 8), np.uint8)
    with pytest.raises(TypeError, match=r"codes must have dtype uint8.*np\.packbits"):
        hamming_matrix(np.zeros((4, 64), bool))
    with pytest.raises(TypeError, match=r"got int64.*np\.packbits"):
        hamming_pairs(np.zeros((4, 8), np.int64), 0.5)
    with pytest.raises(TypeError, match="b must have dtype uint8"):
        hamming_cross(codes, np.zeros((4, 8), np.int8))
    with pytest.raises(TypeError, match="must be a numpy array"):
        hamming_matrix([[0, 1]])
    with pytest.raises(ValueError, match=r"codes must have 2 dimensions, got shape \(8,\)"):
        hamming_matrix(np.zeros(8, np.uint8))
    with pytest.raises(ValueError, match=r"at least 1 byte per code, got shape \(4, 0\)"):
        hamming_components(np.zeros((4, 0), np.uint8), 0.5)
    with pytest.raises(ValueError, match=r"same number of bytes.*\(4, 8\) and \(2, 9\)"):
        hamming_cross(codes, np.zeros((2, 9), np.uint8))
    with pytest.raises(ValueError, match=r"threshold must be in \[0.0, 1.0\], got 1.5"):
        hamming_pairs(codes, 1.5)
    with pytest.raises(ValueError, match="threshold must be in"):
        hamming_components(codes, -0.1)
    with pytest.raises(TypeError, match="threshold must be a number"):
        hamming_pairs(codes, "0.5")
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        hamming_matrix(codes, n_threads=0)
    with pytest.raises(ValueError, match=r"groups must have shape \(4,\), got \(3,\)"):
        hamming_pairs(codes, 0.5, groups=np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="groups must be integers"):
        hamming_components(codes, 0.5, groups=np.zeros(4))


def test_cpp_rechecks_shapes():
    with pytest.raises(ValueError, match=r"codes must have 2 dimensions, got shape \(3\)"):
        _core.hamming_matrix(np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="at least 1 byte"):
        _core.hamming_pairs(np.zeros((3, 0), np.uint8), 0.5)
    with pytest.raises(ValueError, match="groups must have shape"):
        _core.hamming_pairs(np.zeros((3, 2), np.uint8), 0.5, np.zeros(2, np.int64))
    with pytest.raises(TypeError):
        _core.hamming_matrix(np.zeros((3, 2), np.int64))


# ---- properties at the boundary -----------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(0, 12),
    n_bytes=st.integers(1, 70),
    seed=st.integers(0, 2**32 - 1),
    threshold=st.floats(0.0, 1.0),
)
def test_property_matches_numpy(n, n_bytes, seed, threshold):
    rng = np.random.default_rng(seed)
    codes = near_duplicates(rng, n, n_bytes, flip=0.1) if n else np.zeros((0, n_bytes), np.uint8)
    np.testing.assert_array_equal(hamming_matrix(codes), ref_distances(codes, codes))
    edges, scores = hamming_pairs(codes, threshold)
    want_edges, want_scores = ref_pairs(codes, threshold)
    np.testing.assert_array_equal(edges.reshape(-1, 2), want_edges.reshape(-1, 2))
    np.testing.assert_array_equal(scores, want_scores)


@settings(max_examples=50, deadline=None)
@given(n_bytes=st.integers(1, 600), data=st.data())
def test_property_max_distance_is_the_float64_boundary(n_bytes, data):
    bits = 8 * n_bytes
    d = data.draw(st.integers(0, bits))
    t = 1.0 - d / bits
    m = _core.hamming_max_distance(t, bits)
    assert m >= d and 1.0 - m / bits >= t
    assert m == bits or 1.0 - (m + 1) / bits < t
    t2 = data.draw(st.floats(0.0, 1.0))
    m2 = _core.hamming_max_distance(t2, bits)
    assert (m2 < 0 or 1.0 - m2 / bits >= t2) and (m2 == bits or 1.0 - (m2 + 1) / bits < t2)


@settings(max_examples=30, deadline=None)
@given(
    dtype=st.sampled_from([np.bool_, np.int8, np.uint16, np.int32, np.int64, np.float32, np.uint64])
)
def test_property_wrong_dtype_is_a_type_error(dtype):
    with pytest.raises(TypeError, match="uint8"):
        hamming_matrix(np.zeros((3, 8), dtype))
