"""MinHash kernels against datasketch.MinHash.jaccard (exact, float64), for the
uint32 (default "affine32") and uint64 ("affine64", "legacy") signatures of datasketch."""

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

import icas
from icas import _core
from icas.similarity import (
    minhash_components,
    minhash_cross,
    minhash_matrix,
    minhash_pairs,
)


def overlapping_sets(rng, n: int, universe: int = 400, size: int = 40, families: int = 4):
    """n token sets of random byte strings; sets of one family share most tokens."""
    tokens = [rng.bytes(int(rng.integers(1, 24))) for _ in range(universe)]
    cores = [rng.choice(universe, size=size, replace=False) for _ in range(families)]
    out = []
    for i in range(n):
        core = cores[i % families]
        keep = core[rng.random(size) < rng.uniform(0.3, 1.0)]
        extra = rng.choice(universe, size=int(rng.integers(0, size // 2)), replace=False)
        out.append({tokens[t] for t in np.concatenate([keep, extra])})
    return out


SCHEMES = ["affine32", "affine64", "legacy"]  # uint32, uint64, uint64 hash values


def minhashes(sets, num_perm: int = 128, seed: int = 1, scheme: str = "affine32") -> list[MinHash]:
    hashes = []
    for s in sets:
        m = MinHash(num_perm=num_perm, seed=seed, scheme=scheme)
        for token in sorted(s):
            m.update(token)
        hashes.append(m)
    return hashes


def signatures(hashes) -> np.ndarray:
    return np.stack([m.hashvalues for m in hashes]) if hashes else np.zeros((0, 128), np.uint64)


def ref_matrix(a, b) -> np.ndarray:
    sim = np.array([[x.jaccard(y) for y in b] for x in a], dtype=np.float64)
    return sim.reshape(len(a), len(b))


def ref_pairs(sim: np.ndarray, threshold: float, groups=None):
    keep = np.triu(sim >= threshold, 1)
    if groups is not None:
        keep &= groups[:, None] != groups[None, :]
    i, j = np.nonzero(keep)
    return np.stack([i, j], axis=1).astype(np.int64), sim[i, j].astype(np.float32)


@pytest.fixture(scope="module", params=SCHEMES)
def data(request):
    rng = np.random.default_rng(2024)
    hashes = minhashes(overlapping_sets(rng, 48), scheme=request.param)
    return hashes, signatures(hashes), ref_matrix(hashes, hashes)


# ---- against datasketch ------------------------------------------------------------


def test_matrix_equals_datasketch_exactly(data):
    hashes, sigs, want = data
    assert sigs.dtype == (np.uint32 if hashes[0].scheme == "affine32" else np.uint64)
    assert sigs.shape == (48, 128)
    got = minhash_matrix(sigs)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)  # bit for bit, not approximately
    assert np.all(np.diag(got) == 1.0)
    off = want[~np.eye(48, dtype=bool)]
    assert off.min() < 0.1 and off.max() > 0.7  # the data spans the range


def test_cross_equals_datasketch(data):
    hashes, sigs, want = data
    np.testing.assert_array_equal(minhash_cross(sigs[:13], sigs[13:]), want[:13, 13:])
    np.testing.assert_array_equal(minhash_cross(sigs[5:6], sigs), want[5:6])


@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.35, 0.5, 0.75, 1.0])
def test_pairs_and_components_equal_datasketch(data, threshold):
    hashes, sigs, want = data
    edges, scores = minhash_pairs(sigs, threshold)
    want_edges, want_scores = ref_pairs(want, threshold)
    np.testing.assert_array_equal(edges, want_edges)
    np.testing.assert_array_equal(scores, want_scores)
    for i, j in edges[:50]:
        assert hashes[i].jaccard(hashes[j]) >= threshold
    labels = minhash_components(sigs, threshold)
    np.testing.assert_array_equal(labels, icas.connected_components(want_edges, len(sigs)))


@pytest.mark.parametrize("scheme", ["affine32", "affine64"])
@pytest.mark.parametrize("num_perm", [1, 7, 8, 9, 16, 17, 33, 100, 129, 256])
def test_other_signature_lengths(num_perm, scheme):
    rng = np.random.default_rng(num_perm)
    hashes = minhashes(overlapping_sets(rng, 21, size=20), num_perm=num_perm, seed=7, scheme=scheme)
    sigs = signatures(hashes)
    want = ref_matrix(hashes, hashes)
    np.testing.assert_array_equal(minhash_matrix(sigs), want)
    np.testing.assert_array_equal(minhash_cross(sigs, sigs[:9]), want[:, :9])
    for threshold in (0.0, 0.4, 0.6, 1.0):
        want_edges, want_scores = ref_pairs(want, threshold)
        edges, scores = minhash_pairs(sigs, threshold)
        np.testing.assert_array_equal(edges, want_edges)
        np.testing.assert_array_equal(scores, want_scores)
        np.testing.assert_array_equal(
            minhash_components(sigs, threshold), icas.connected_components(want_edges, 21)
        )


@pytest.mark.parametrize("dtype", [np.uint64, np.uint32])
def test_many_signatures_cross_tiles(dtype):
    # beyond one tile of rows, counts not multiples of 8, near-identical signatures
    rng = np.random.default_rng(9)
    high = np.iinfo(dtype).max
    base = rng.integers(0, high, size=(40, 128), dtype=dtype, endpoint=True)
    sigs = base[rng.integers(0, 40, size=333)].copy()
    mask = rng.random(sigs.shape) < 0.25  # same base: about 0.56 alike
    sigs[mask] = rng.integers(0, high, size=mask.sum(), dtype=dtype, endpoint=True)
    want = (sigs[:, None, :] == sigs[None, :, :]).sum(-1) / 128
    np.testing.assert_array_equal(minhash_matrix(sigs), want)
    for threshold in (0.3, 0.5):
        want_edges, want_scores = ref_pairs(want, threshold)
        assert len(want_edges) > 0
        edges, scores = minhash_pairs(sigs, threshold)
        np.testing.assert_array_equal(edges, want_edges)
        np.testing.assert_array_equal(scores, want_scores)
        np.testing.assert_array_equal(
            minhash_components(sigs, threshold), icas.connected_components(want_edges, 333)
        )


@pytest.mark.parametrize("kernel", _core.minhash_kernels())
@pytest.mark.parametrize("dtype", [np.uint64, np.uint32])
@pytest.mark.parametrize("k", [1, 5, 8, 16, 31, 33, 128, 130])
def test_every_kernel_matches_numpy(kernel, dtype, k):
    # the generic kernel (compiler clones) is what CPUs without AVX-512 run
    rng = np.random.default_rng(k)
    sigs = rng.integers(0, 3, size=(45, k), dtype=dtype)
    sigs[1::3] = sigs[::3][: len(sigs[1::3])]  # some identical signatures
    want = (sigs[:, None, :] == sigs[None, :, :]).sum(-1) / k
    np.testing.assert_array_equal(_core.minhash_matrix(sigs, 0, kernel), want)
    np.testing.assert_array_equal(_core.minhash_cross(sigs[:7], sigs, 0, kernel), want[:7])
    for threshold in (0.0, 0.34, 0.5, 0.9, 1.0):
        want_edges, want_scores = ref_pairs(want, threshold)
        edges, scores = _core.minhash_pairs(sigs, threshold, None, 0, kernel)
        np.testing.assert_array_equal(edges, want_edges)
        np.testing.assert_array_equal(scores, want_scores)
        np.testing.assert_array_equal(
            _core.minhash_components(sigs, threshold, None, 0, kernel),
            icas.connected_components(want_edges, len(sigs)),
        )


def test_kernels_listed():
    kernels = _core.minhash_kernels()
    assert kernels[-1] == "generic" and set(kernels) <= {"avx512", "generic"}
    if icas.build_info()["simd"] == "avx512":
        assert "avx512" in kernels
    with pytest.raises(ValueError, match="unknown MinHash kernel 'neon'"):
        _core.minhash_matrix(np.zeros((2, 8), np.uint64), 0, "neon")


def test_components_over_several_waves():
    # enough signatures that the components run in several waves of rows
    rng = np.random.default_rng(13)
    sigs = rng.integers(0, 2, size=(3000, 12), dtype=np.uint32)
    assert not minhash_components(sigs, 0.0).any()  # one component of everything
    for threshold in (0.75, 0.9, 1.0):
        edges, _ = minhash_pairs(sigs, threshold)
        want = icas.connected_components(edges, len(sigs))
        for n_threads in (1, 2):
            got = minhash_components(sigs, threshold, n_threads=n_threads)
            np.testing.assert_array_equal(got, want)


# ---- boundaries ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint64, np.uint32])
@pytest.mark.parametrize("k", [1, 3, 10, 100, 128])
def test_pair_exactly_at_threshold_is_kept(k, dtype):
    a = np.arange(k, dtype=dtype)
    for c in sorted({0, 1, k // 3, k // 2, k - 1, k}):
        b = a.copy()
        b[c:] += dtype(1000)  # c equal slots
        sigs = np.stack([a, b])
        at = c / k  # what MinHash.jaccard returns
        edges, scores = minhash_pairs(sigs, at)
        assert edges.tolist() == [[0, 1]], (c, at)
        assert scores[0] == np.float32(at)
        assert minhash_components(sigs, at).tolist() == [0, 0]
        above = np.nextafter(at, 2.0)
        if above <= 1.0:
            assert len(minhash_pairs(sigs, above)[0]) == 0
            assert minhash_components(sigs, above).tolist() == [0, 1]


def test_min_count_follows_float64_rounding():
    for k in (1, 3, 7, 10, 100, 128, 129):
        c = np.arange(k + 1)
        sim = c / k
        for t in np.concatenate([sim, np.round(sim, 2), 1.0 - sim, [0.1, 0.3, 0.7, 0.9]]):
            ok = c[sim >= t]
            want = ok.min() if len(ok) else k + 1
            assert _core.minhash_min_count(float(t), k) == want, (k, t)


def test_groups_skip_pairs_inside_a_group(data):
    hashes, sigs, want = data
    groups = np.arange(48) // 5
    edges, scores = minhash_pairs(sigs, 0.3, groups=groups)
    want_edges, want_scores = ref_pairs(want, 0.3, groups)
    assert 0 < len(want_edges) < len(ref_pairs(want, 0.3)[0])
    np.testing.assert_array_equal(edges, want_edges)
    np.testing.assert_array_equal(scores, want_scores)
    np.testing.assert_array_equal(
        minhash_components(sigs, 0.3, groups=groups), icas.connected_components(want_edges, 48)
    )


@pytest.mark.parametrize("dtype", [np.uint64, np.uint32])
def test_thread_count_does_not_change_results(dtype):
    rng = np.random.default_rng(4)
    sigs = rng.integers(0, 4, size=(300, 64), dtype=dtype)

    def run(n_threads):
        return [
            minhash_matrix(sigs, n_threads=n_threads),
            *minhash_pairs(sigs, 0.4, n_threads=n_threads),
            minhash_components(sigs, 0.4, n_threads=n_threads),
            minhash_cross(sigs[:50], sigs, n_threads=n_threads),
        ]

    ref = run(1)
    assert len(ref[1]) > 0
    for n_threads in (2, 3, -1, None):
        for a, b in zip(ref, run(n_threads), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [0, 1])
def test_zero_and_one_signature(n):
    sigs = np.zeros((n, 128), np.uint64)
    assert minhash_matrix(sigs).shape == (n, n)
    if n:
        assert minhash_matrix(sigs)[0, 0] == 1.0
    assert minhash_cross(sigs, np.zeros((3, 128), np.uint64)).shape == (n, 3)
    edges, scores = minhash_pairs(sigs, 0.5)
    assert edges.shape == (0, 2) and edges.dtype == np.int64
    assert scores.shape == (0,) and scores.dtype == np.float32
    labels = minhash_components(sigs, 0.5)
    assert labels.dtype == np.int64 and labels.tolist() == list(range(n))


def test_non_contiguous_input_is_accepted(data):
    hashes, sigs, want = data
    np.testing.assert_array_equal(minhash_matrix(sigs[::3]), want[::3, ::3])


# ---- errors ----------------------------------------------------------------------------


def test_errors():
    sigs = np.zeros((4, 16), np.uint64)
    with pytest.raises(TypeError, match=r"signatures must have dtype uint64 or uint32.*got int64"):
        minhash_matrix(np.zeros((4, 16), np.int64))
    with pytest.raises(TypeError, match="got uint16"):
        minhash_pairs(np.zeros((4, 16), np.uint16), 0.5)
    with pytest.raises(TypeError, match="b must have dtype uint64 or uint32"):
        minhash_cross(sigs, np.zeros((4, 16), np.float64))
    with pytest.raises(TypeError, match=r"same dtype \(the same MinHash scheme\), got uint64 and"):
        minhash_cross(sigs, np.zeros((4, 16), np.uint32))
    with pytest.raises(TypeError, match="must be a numpy array"):
        minhash_matrix([[1, 2]])
    with pytest.raises(ValueError, match=r"signatures must have 2 dimensions, got shape \(16,\)"):
        minhash_matrix(np.zeros(16, np.uint64))
    with pytest.raises(ValueError, match=r"at least 1 slot per signature, got shape \(4, 0\)"):
        minhash_components(np.zeros((4, 0), np.uint64), 0.5)
    with pytest.raises(ValueError, match=r"same number of slots.*\(4, 16\) and \(2, 8\)"):
        minhash_cross(sigs, np.zeros((2, 8), np.uint64))
    with pytest.raises(ValueError, match=r"threshold must be in \[0.0, 1.0\], got 2.0"):
        minhash_pairs(sigs, 2.0)
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        minhash_pairs(sigs, 0.5, n_threads=-2)
    with pytest.raises(ValueError, match=r"groups must have shape \(4,\), got \(5,\)"):
        minhash_components(sigs, 0.5, groups=np.zeros(5, np.int64))


def test_cpp_rechecks_shapes():
    with pytest.raises(ValueError, match="signatures must have 2 dimensions"):
        _core.minhash_matrix(np.zeros(3, np.uint64))
    with pytest.raises(ValueError, match="same number of slots"):
        _core.minhash_cross(np.zeros((2, 3), np.uint64), np.zeros((2, 4), np.uint64))
    with pytest.raises(TypeError):
        _core.minhash_matrix(np.zeros((3, 2), np.int64))
    with pytest.raises(TypeError):
        _core.minhash_cross(np.zeros((3, 2), np.uint64), np.zeros((3, 2), np.uint32))


# ---- properties at the boundary ---------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(0, 12),
    k=st.integers(1, 70),
    seed=st.integers(0, 2**32 - 1),
    threshold=st.floats(0.0, 1.0),
    dtype=st.sampled_from([np.uint64, np.uint32]),
)
def test_property_matches_numpy(n, k, seed, threshold, dtype):
    rng = np.random.default_rng(seed)
    sigs = rng.integers(0, 3, size=(n, k), dtype=dtype)
    want = (sigs[:, None, :] == sigs[None, :, :]).sum(-1, dtype=np.int64) / k
    np.testing.assert_array_equal(minhash_matrix(sigs), want.reshape(n, n))
    edges, scores = minhash_pairs(sigs, threshold)
    want_edges, want_scores = ref_pairs(want.reshape(n, n), threshold)
    np.testing.assert_array_equal(edges.reshape(-1, 2), want_edges.reshape(-1, 2))
    np.testing.assert_array_equal(scores, want_scores)


@settings(max_examples=50, deadline=None)
@given(k=st.integers(1, 1000), t=st.floats(0.0, 1.0))
def test_property_min_count_is_the_float64_boundary(k, t):
    c = _core.minhash_min_count(t, k)
    assert c == k + 1 or c / k >= t
    assert c == 0 or (c - 1) / k < t


@settings(max_examples=30, deadline=None)
@given(dtype=st.sampled_from([np.bool_, np.uint8, np.uint16, np.int32, np.int64, np.float64]))
def test_property_wrong_dtype_is_a_type_error(dtype):
    with pytest.raises(TypeError, match="uint64 or uint32"):
        minhash_matrix(np.zeros((3, 8), dtype))
