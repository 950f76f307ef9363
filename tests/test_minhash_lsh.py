"""MinHash LSH banding (candidates="index") against datasketch's MinHashLSH and
a numpy reference; its recall on planted pairs against 1 - (1 - s^r)^b."""

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from datasketch.lsh import _optimal_param
from hypothesis import given, settings
from hypothesis import strategies as st

import icas
from icas import _core
from icas.similarity import minhash_components, minhash_pairs
from icas.similarity._minhash import minhash_lsh_params, minhash_lsh_recall


def family_sets(rng, n: int, families: int = 30, size: int = 50, universe: int = 4000):
    """n token sets in families that share a random part of a core of tokens."""
    tokens = [rng.bytes(10) for _ in range(universe)]
    cores = [rng.choice(universe, size=size, replace=False) for _ in range(families)]
    out = []
    for i in range(n):
        core = cores[i % families]
        keep = core[rng.random(size) < rng.uniform(0.4, 1.0)]
        extra = rng.choice(universe, size=int(rng.integers(0, 12)), replace=False)
        out.append([tokens[t] for t in np.concatenate([keep, extra])])
    return out


def minhashes(sets, num_perm=128, scheme="affine32"):
    hashes = []
    for s in sets:
        m = MinHash(num_perm=num_perm, seed=1, scheme=scheme)
        m.update_batch(s)
        hashes.append(m)
    return hashes


def ref_lsh_pairs(sigs: np.ndarray, threshold: float, b: int, r: int, groups=None):
    """Pairs i < j equal on all slots of some band and with share >= threshold (numpy)."""
    n, k = sigs.shape
    collide = np.zeros((n, n), dtype=bool)
    for t in range(b):
        band = sigs[:, t * r : (t + 1) * r]
        collide |= (band[:, None, :] == band[None, :, :]).all(-1)
    sim = (sigs[:, None, :] == sigs[None, :, :]).sum(-1) / k
    keep = np.triu(collide & (sim >= threshold), 1)
    if groups is not None:
        keep &= groups[:, None] != groups[None, :]
    i, j = np.nonzero(keep)
    return np.stack([i, j], axis=1).astype(np.int64), sim[i, j].astype(np.float32)


def check_lsh(sigs, threshold, bands, groups=None, want=None):
    if want is None:
        want = ref_lsh_pairs(sigs, threshold, *bands, groups)
    edges, scores = minhash_pairs(sigs, threshold, groups=groups, candidates="index", bands=bands)
    np.testing.assert_array_equal(edges.reshape(-1, 2), want[0].reshape(-1, 2))
    np.testing.assert_array_equal(scores, want[1])
    labels = minhash_components(sigs, threshold, groups=groups, candidates="index", bands=bands)
    np.testing.assert_array_equal(labels, icas.connected_components(want[0], len(sigs)))
    return edges, scores


@pytest.fixture(scope="module", params=["affine32", "affine64"])
def family(request):
    rng = np.random.default_rng(7)
    hashes = minhashes(family_sets(rng, 300), scheme=request.param)
    return hashes, np.stack([m.hashvalues for m in hashes])


# ---- datasketch semantics -----------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.9])
def test_same_pairs_as_datasketch_lsh_query(family, threshold):
    hashes, sigs = family
    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    for i, m in enumerate(hashes):
        lsh.insert(i, m)
    want = sorted(
        (i, j)
        for i, m in enumerate(hashes)
        for j in lsh.query(m)
        if j > i and m.jaccard(hashes[j]) >= threshold
    )
    edges, scores = minhash_pairs(sigs, threshold, candidates="index")
    assert edges.tolist() == [list(p) for p in want]
    np.testing.assert_array_equal(
        scores, np.array([hashes[i].jaccard(hashes[j]) for i, j in want], np.float32)
    )
    # a subset of the exact pairs, with the same scores
    all_edges, all_scores = minhash_pairs(sigs, threshold)
    rows = {tuple(e): s for e, s in zip(all_edges.tolist(), all_scores, strict=True)}
    assert all(rows[tuple(e)] == s for e, s in zip(edges.tolist(), scores, strict=True))
    if threshold <= 0.5:
        assert len(edges) > 0.4 * len(all_edges) > 0


def test_params_are_datasketchs():
    for num_perm in (2, 3, 16, 64, 128, 200):
        for threshold in (0.0, 0.1, 0.25, 0.5, 0.66, 0.8, 0.95, 1.0):
            got = minhash_lsh_params(threshold, num_perm)
            assert got == _optimal_param(threshold, num_perm, 0.5, 0.5), (threshold, num_perm)
            if got[0] >= 2:  # datasketch refuses a single band
                lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
                assert got == (lsh.b, lsh.r)
    for weights in ((0.3, 0.7), (0.9, 0.1)):
        assert minhash_lsh_params(0.6, 128, weights=weights) == _optimal_param(0.6, 128, *weights)
    assert minhash_lsh_params(0.5, 1) == (1, 1)


def test_default_bands_are_the_params(family):
    hashes, sigs = family
    for threshold in (0.4, 0.8):
        bands = minhash_lsh_params(threshold, sigs.shape[1])
        want = ref_lsh_pairs(sigs, threshold, *bands)
        got = minhash_pairs(sigs, threshold, candidates="index")
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("bands", [(1, 1), (1, 128), (128, 1), (7, 9), (40, 3), (3, 40)])
def test_any_bands_equal_numpy(family, bands):
    hashes, sigs = family
    for threshold in (0.0, 0.35, 0.6, 1.0):
        check_lsh(sigs, threshold, bands)


# ---- recall ---------------------------------------------------------------------------------


def agreeing_pairs(rng, pairs: int, k: int, s: float) -> np.ndarray:
    """2 * pairs signatures: row 2p + 1 copies each slot of row 2p with probability s,
    else holds a fresh random value, so the pair's slots agree independently with
    probability s, the model behind 1 - (1 - s^r)^b."""
    a = rng.integers(0, 2**63, size=(pairs, k), dtype=np.uint64)
    b = np.where(
        rng.random((pairs, k)) < s, a, rng.integers(0, 2**63, size=(pairs, k), dtype=np.uint64)
    )
    return np.ascontiguousarray(np.stack([a, b], axis=1).reshape(2 * pairs, k))


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_recall_on_planted_pairs_matches_the_formula(threshold):
    rng = np.random.default_rng(int(threshold * 10))
    k, pairs = 128, 3000
    bands = minhash_lsh_params(threshold, k)
    for s in (threshold - 0.1, threshold, min(1.0, threshold + 0.1)):
        sigs = agreeing_pairs(rng, pairs, k, s)
        # threshold 0: every colliding pair is kept, so this measures collisions
        edges, _ = minhash_pairs(sigs, 0.0, candidates="index", bands=bands)
        assert np.all((edges[:, 0] % 2 == 0) & (edges[:, 1] == edges[:, 0] + 1))  # only planted
        found = len(edges) / pairs
        p = minhash_lsh_recall(s, bands)
        sigma = np.sqrt(p * (1 - p) / pairs)
        assert abs(found - p) < 5 * sigma + 1e-9, (s, bands, found, p)
    # at the threshold the formula is the recall of the pairs the exact search finds
    # with similarity near it; pairs found by the exact search at this threshold are
    # recalled at least that often
    sigs = agreeing_pairs(rng, pairs, k, threshold)
    exact = minhash_pairs(sigs, threshold)[0]
    got = minhash_pairs(sigs, threshold, candidates="index")[0]
    assert len(exact) > pairs / 4
    recall = len(got) / len(exact)
    assert minhash_lsh_recall(threshold, bands) - 0.05 < recall <= 1.0


def test_recall_function():
    assert minhash_lsh_recall(0.5, (25, 5)) == pytest.approx(1 - (1 - 0.5**5) ** 25)
    assert minhash_lsh_recall(1.0, (3, 7)) == 1.0
    assert minhash_lsh_recall(0.0, (3, 7)) == 0.0
    s = np.linspace(0, 1, 11)
    got = minhash_lsh_recall(s, (9, 13))
    assert got.shape == (11,) and np.all(np.diff(got) >= 0)
    np.testing.assert_allclose(got, 1 - (1 - s**13) ** 9)
    assert isinstance(minhash_lsh_recall(0.7, (5, 25)), float)


# ---- forms, groups, threads, sizes ----------------------------------------------------------


def test_identical_and_constant_signatures():
    # one large run of equal bands, and signatures that share bands but little else
    rng = np.random.default_rng(5)
    sigs = rng.integers(0, 50, size=(400, 64), dtype=np.uint32)
    sigs[100:300] = sigs[7]
    sigs[300:350, :8] = 3
    for threshold in (0.0, 0.1, 0.5, 1.0):
        edges, _ = check_lsh(sigs, threshold, (8, 8))
    assert len(edges) >= 201 * 200 // 2


def test_groups():
    rng = np.random.default_rng(2)
    sigs = rng.integers(0, 4, size=(200, 32), dtype=np.uint64)
    groups = rng.integers(0, 3, size=200)
    check_lsh(sigs, 0.5, (8, 4), groups=groups)
    assert len(minhash_pairs(sigs, 0.0, groups=np.zeros(200, np.int32), candidates="index")[0]) == 0


def test_thread_count_does_not_change_results():
    # n * bands large enough for several threads
    rng = np.random.default_rng(8)
    base = rng.integers(0, 2**32, size=(3000, 128), dtype=np.uint32)
    sigs = base[rng.integers(0, 3000, 12000)]
    sigs = np.where(
        rng.random(sigs.shape) < 0.15, rng.integers(0, 2**32, sigs.shape, np.uint32), sigs
    )

    def run(n_threads):
        return [
            *minhash_pairs(sigs, 0.6, n_threads=n_threads, candidates="index"),
            minhash_components(sigs, 0.6, n_threads=n_threads, candidates="index"),
        ]

    ref = run(1)
    assert len(ref[0]) > 1000
    for n_threads in (2, 3, None):
        for a, b in zip(ref, run(n_threads), strict=True):
            np.testing.assert_array_equal(a, b)


def test_auto_and_all_stay_exact(family):
    hashes, sigs = family
    want = _core.minhash_pairs(sigs, 0.4, None, 0)
    for how in ("auto", "all"):
        got = minhash_pairs(sigs, 0.4, candidates=how)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(
            minhash_components(sigs, 0.4, candidates=how), _core.minhash_components(sigs, 0.4)
        )


@pytest.mark.parametrize("n", [0, 1])
def test_zero_and_one_signature(n):
    sigs = np.zeros((n, 16), np.uint64)
    edges, scores = minhash_pairs(sigs, 0.5, candidates="index")
    assert edges.shape == (0, 2) and edges.dtype == np.int64
    assert scores.shape == (0,) and scores.dtype == np.float32
    labels = minhash_components(sigs, 0.5, candidates="index")
    assert labels.dtype == np.int64 and labels.tolist() == list(range(n))


# ---- errors ---------------------------------------------------------------------------------


def test_errors():
    sigs = np.zeros((4, 16), np.uint64)
    with pytest.raises(ValueError, match="candidates must be 'auto', 'all' or 'index', got 'lsh'"):
        minhash_pairs(sigs, 0.5, candidates="lsh")
    with pytest.raises(ValueError, match="bands is only used with candidates='index', got 'auto'"):
        minhash_pairs(sigs, 0.5, bands=(4, 4))
    with pytest.raises(ValueError, match=r"b \* r <= k = 16, got \(5, 4\)"):
        minhash_components(sigs, 0.5, candidates="index", bands=(5, 4))
    with pytest.raises(ValueError, match=r"b >= 1, r >= 1"):
        minhash_pairs(sigs, 0.5, candidates="index", bands=(0, 4))
    with pytest.raises(TypeError, match="bands must be a pair of ints"):
        minhash_pairs(sigs, 0.5, candidates="index", bands=(2.0, 4))
    with pytest.raises(TypeError, match="bands must be a pair of ints"):
        minhash_pairs(sigs, 0.5, candidates="index", bands=8)
    with pytest.raises(TypeError, match="dtype uint64 or uint32"):
        minhash_pairs(np.zeros((4, 16), np.int64), 0.5, candidates="index")
    with pytest.raises(ValueError, match=r"threshold must be in \[0.0, 1.0\]"):
        minhash_pairs(sigs, 1.5, candidates="index")
    with pytest.raises(ValueError, match="num_perm must be >= 1"):
        minhash_lsh_params(0.5, 0)
    with pytest.raises(TypeError, match="num_perm must be an int"):
        minhash_lsh_params(0.5, 128.0)
    with pytest.raises(ValueError, match="weights must be two numbers"):
        minhash_lsh_params(0.5, 128, weights=(0.5, 0.6))
    with pytest.raises(ValueError, match="similarity must be in"):
        minhash_lsh_recall(1.2, (4, 4))
    with pytest.raises(ValueError, match="bands and rows must be >= 1 with bands"):
        _core.minhash_lsh_pairs(sigs, 0.5, 5, 4)
    with pytest.raises(ValueError, match="signatures must have 2 dimensions"):
        _core.minhash_lsh_components(np.zeros(4, np.uint32), 0.5, 1, 1)


# ---- properties -----------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(0, 40),
    k=st.integers(1, 24),
    values=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    threshold=st.floats(0.0, 1.0),
    dtype=st.sampled_from([np.uint32, np.uint64]),
    data=st.data(),
)
def test_property_equals_numpy(n, k, values, seed, threshold, dtype, data):
    # few distinct slot values, so bands collide often
    rng = np.random.default_rng(seed)
    sigs = rng.integers(0, values, size=(n, k)).astype(dtype)
    b = data.draw(st.integers(1, k))
    r = data.draw(st.integers(1, k // b))
    check_lsh(sigs, threshold, (b, r))
