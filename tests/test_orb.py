"""ORB similarity kernels against cv2.BFMatcher(NORM_HAMMING, crossCheck=True) + the ratio rule."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import icas
from icas import _core
from icas.similarity import orb_components, orb_cross, orb_matrix, orb_pairs

BF = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
KERNELS = ["auto", "portable"]


# ----------------------------------------------------------------- reference


def cv2_matches(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int, float]]:
    if len(a) == 0 or len(b) == 0:
        return []
    return [(m.queryIdx, m.trainIdx, m.distance) for m in BF.match(a, b)]


def icas_matches(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int, float]]:
    q, t, d = _core.orb_matches(a, b)
    return list(zip(q.tolist(), t.tolist(), d.astype(np.float64).tolist(), strict=True))


def raw_rule(a: np.ndarray, b: np.ndarray) -> float:
    """The reference rule as written: share of matches with distance < 0.75 x the largest."""
    matches = cv2_matches(a, b)
    if not matches:
        return 0.0
    largest = max(d for _, _, d in matches)
    return sum(d < 0.75 * largest for _, _, d in matches) / len(matches)


def expected(a: np.ndarray, b: np.ndarray) -> float:
    """raw_rule with icas's one deviation: all matches perfect -> 1.0."""
    matches = cv2_matches(a, b)
    if matches and max(d for _, _, d in matches) == 0:
        return 1.0
    return raw_rule(a, b)


def expected_matrix(da: list[np.ndarray], db: list[np.ndarray]) -> np.ndarray:
    return np.array([[expected(a, b) for b in db] for a in da], dtype=np.float64).reshape(
        len(da), len(db)
    )


def stack(descs: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per-image descriptor arrays (None = no keypoint) -> (descriptors, offsets)."""
    descs = [np.zeros((0, 32), np.uint8) if d is None else d for d in descs]
    offsets = np.zeros(len(descs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(d) for d in descs])
    rows = np.concatenate(descs) if descs else np.zeros((0, 32), np.uint8)
    return np.ascontiguousarray(rows, dtype=np.uint8), offsets


def orb_of(img: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    _, d = cv2.ORB_create().detectAndCompute(gray, None)
    return np.zeros((0, 32), np.uint8) if d is None else d


def few_bit_descriptors(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    """Descriptors with only `bits` random bits set: many equal distances (ties)."""
    d = np.zeros((n, 32), np.uint8)
    d[:, 5] = rng.integers(0, 2 ** min(bits, 8), n)
    if bits > 8:
        d[:, 30] = rng.integers(0, 2 ** (bits - 8), n)
    return d


# ----------------------------------------------------------------- fixtures


@pytest.fixture(params=KERNELS)
def kernel(request):
    """Run a test with the automatic kernel and again with the portable one."""
    _core._orb_force_portable(request.param == "portable")
    yield request.param
    _core._orb_force_portable(False)


@pytest.fixture(scope="module")
def real_descs(photos) -> list[np.ndarray]:
    """ORB descriptors (cv2 defaults, 500 features) of real photos at 3 sizes."""
    out = []
    for p in photos:
        for size in (256, 128, 96):
            out.append(orb_of(cv2.resize(p, (size, size), interpolation=cv2.INTER_AREA)))
    return out


@pytest.fixture(scope="module")
def group_descs(photo_groups) -> tuple[list[np.ndarray], np.ndarray]:
    images, groups = photo_groups
    return [orb_of(im) for im in images], groups


# ----------------------------------------------------------------- matches


def test_kernel_name():
    assert _core.orb_kernel() in ("avx512-vpopcntdq", "portable")
    assert (_core.orb_kernel() == "avx512-vpopcntdq") <= icas.build_info()["vpopcntdq"]


def test_matches_equal_cv2_on_real_photos(kernel, real_descs):
    for a in real_descs[::2]:
        for b in real_descs[1::2]:
            got = icas_matches(a, b)
            assert got == cv2_matches(a, b)


def test_matches_equal_cv2_with_ties(kernel):
    rng = np.random.default_rng(11)
    for trial in range(400):
        na, nb = (int(x) for x in rng.integers(1, 80, 2))
        bits = int(rng.integers(1, 12))
        a, b = few_bit_descriptors(rng, na, bits), few_bit_descriptors(rng, nb, bits)
        got = icas_matches(a, b)
        assert got == cv2_matches(a, b), (trial, na, nb, bits)


def test_matches_sizes_around_block_edges(kernel):
    rng = np.random.default_rng(5)
    for na in (1, 3, 4, 5, 15, 16, 17, 31, 32, 33):
        for nb in (1, 7, 8, 9, 15, 16, 17, 32, 33):
            a = rng.integers(0, 256, (na, 32), dtype=np.uint8)
            b = rng.integers(0, 256, (nb, 32), dtype=np.uint8)
            got = icas_matches(a, b)
            assert got == cv2_matches(a, b), (na, nb)


def test_match_set_does_not_depend_on_roles(real_descs):
    # Why the matrix is symmetric: OpenCV's cross check is mutual first nearest neighbours.
    a, b = real_descs[0], real_descs[3]
    forward = {(q, t, d) for q, t, d in cv2_matches(a, b)}
    backward = {(t, q, d) for q, t, d in cv2_matches(b, a)}
    assert forward == backward


def test_image_with_more_than_65536_descriptors():
    # Beyond 16-bit indices the vector kernel hands over to the 64-bit one.
    rng = np.random.default_rng(2)
    big = few_bit_descriptors(rng, 70_000, 12)
    small = few_bit_descriptors(rng, 9, 12)
    for a, b in ((big, small), (small, big)):
        assert icas_matches(a, b) == cv2_matches(a, b)
    (dbig, obig), (dsmall, osmall) = stack([big]), stack([small])
    np.testing.assert_array_equal(orb_cross(dbig, obig, dsmall, osmall), [[expected(big, small)]])
    np.testing.assert_array_equal(orb_cross(dsmall, osmall, dbig, obig), [[expected(small, big)]])


# ----------------------------------------------------------------- similarity


def test_matrix_equals_cv2_rule_on_real_photos(kernel, real_descs):
    desc, off = stack(real_descs)
    got = orb_matrix(desc, off)
    assert got.dtype == np.float64 and got.shape == (len(real_descs),) * 2
    want = expected_matrix(real_descs, real_descs)
    # Exact: the same matches, the same integer comparison, the same division.
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, got.T)
    assert 0.0 < got[0, 1] < 1.0  # a real, non-trivial value is tested


def test_matrix_equals_cv2_rule_with_ties(kernel):
    rng = np.random.default_rng(3)
    descs = [
        few_bit_descriptors(rng, int(rng.integers(0, 40)), int(rng.integers(1, 10)))
        for _ in range(24)
    ]
    desc, off = stack(descs)
    want = expected_matrix(descs, descs)
    np.testing.assert_array_equal(orb_matrix(desc, off), want)
    assert len(np.unique(want)) > 5


def test_identical_images_deviation_from_raw_rule(kernel, real_descs):
    a = real_descs[0]
    assert raw_rule(a, a) == 0.0  # the raw rule: no distance < 0.75 * 0
    subset = a[::3].copy()  # every match of a subset is perfect too
    assert raw_rule(subset, a) == 0.0
    desc, off = stack([a, a.copy(), subset])
    np.testing.assert_array_equal(orb_matrix(desc, off), np.ones((3, 3)))


def test_empty_and_single_descriptor_images(kernel, real_descs):
    one = real_descs[0][:1]
    descs = [real_descs[0], np.zeros((0, 32), np.uint8), one, real_descs[4], None]
    desc, off = stack(descs)
    got = orb_matrix(desc, off)
    np.testing.assert_array_equal(got[[1, 4]], 0.0)
    np.testing.assert_array_equal(got[:, [1, 4]], 0.0)
    ok = [0, 2, 3]
    np.testing.assert_array_equal(
        got[np.ix_(ok, ok)], expected_matrix([descs[i] for i in ok], [descs[i] for i in ok])
    )
    assert got[0, 2] == 1.0  # the single descriptor matches itself exactly


def test_no_images_and_one_image(real_descs):
    empty_desc, empty_off = stack([])
    assert orb_matrix(empty_desc, empty_off).shape == (0, 0)
    edges, scores = orb_pairs(empty_desc, empty_off, 0.5)
    assert edges.shape == (0, 2) and edges.dtype == np.int64 and scores.dtype == np.float32
    assert orb_components(empty_desc, empty_off, 0.5).shape == (0,)
    desc, off = stack([real_descs[0]])
    np.testing.assert_array_equal(orb_matrix(desc, off), [[1.0]])
    assert orb_pairs(desc, off, 0.0)[0].shape == (0, 2)
    np.testing.assert_array_equal(orb_components(desc, off, 0.0), [0])
    assert orb_cross(empty_desc, empty_off, desc, off).shape == (0, 1)
    assert orb_cross(desc, off, empty_desc, empty_off).shape == (1, 0)


def test_cross_equals_cv2_rule(kernel, real_descs):
    da, db = real_descs[:7], [*real_descs[7:], np.zeros((0, 32), np.uint8)]
    got = orb_cross(*stack(da), *stack(db))
    assert got.shape == (len(da), len(db)) and got.dtype == np.float64
    np.testing.assert_array_equal(got, expected_matrix(da, db))
    # A x A through cross is the matrix.
    desc, off = stack(da)
    np.testing.assert_array_equal(orb_cross(desc, off, desc, off), orb_matrix(desc, off))


def test_pairs_and_components_follow_the_matrix(kernel, group_descs):
    descs, groups = group_descs
    desc, off = stack(descs)
    full = orb_matrix(desc, off)
    n = len(descs)
    for threshold in (0.0, 0.3, 0.5, 1.0):
        edges, scores = orb_pairs(desc, off, threshold)
        iu, ju = np.triu_indices(n, 1)
        keep = full[iu, ju] >= threshold
        np.testing.assert_array_equal(edges, np.stack([iu[keep], ju[keep]], axis=1))
        np.testing.assert_array_equal(scores, full[iu, ju][keep].astype(np.float32))
        labels = orb_components(desc, off, threshold)
        np.testing.assert_array_equal(labels, icas.connected_components(edges, n))


def test_groups_skip_pairs_within_a_group(kernel, group_descs):
    descs, groups = group_descs
    desc, off = stack(descs)
    full = orb_matrix(desc, off)
    edges, scores = orb_pairs(desc, off, 0.2, groups=groups)
    assert len(edges) and np.all(groups[edges[:, 0]] != groups[edges[:, 1]])
    np.testing.assert_array_equal(scores, full[edges[:, 0], edges[:, 1]].astype(np.float32))
    all_edges, _ = orb_pairs(desc, off, 0.2)
    cross_group = all_edges[groups[all_edges[:, 0]] != groups[all_edges[:, 1]]]
    np.testing.assert_array_equal(edges, cross_group)
    labels = orb_components(desc, off, 0.2, groups=groups)
    np.testing.assert_array_equal(labels, icas.connected_components(edges, len(descs)))


def test_near_duplicates_cluster_together(group_descs):
    # Not a reference check: the similarity is meaningful on real photos.
    descs, groups = group_descs
    desc, off = stack(descs)
    full = orb_matrix(desc, off)
    same = groups[:, None] == groups[None, :]
    off_diag = ~np.eye(len(descs), dtype=bool)
    assert np.median(full[same & off_diag]) > np.median(full[~same])


def test_results_do_not_depend_on_thread_count(real_descs, group_descs):
    descs = real_descs + group_descs[0]
    desc, off = stack(descs)
    base = orb_matrix(desc, off, n_threads=1)
    base_pairs = orb_pairs(desc, off, 0.3, n_threads=1)
    base_labels = orb_components(desc, off, 0.3, n_threads=1)
    for threads in (2, 3, -1, None):
        np.testing.assert_array_equal(orb_matrix(desc, off, n_threads=threads), base)
        edges, scores = orb_pairs(desc, off, 0.3, n_threads=threads)
        np.testing.assert_array_equal(edges, base_pairs[0])
        np.testing.assert_array_equal(scores, base_pairs[1])
        np.testing.assert_array_equal(
            orb_components(desc, off, 0.3, n_threads=threads), base_labels
        )


def test_non_contiguous_input_gives_the_same_result(real_descs):
    desc, off = stack(real_descs[:5])
    wide = np.zeros((desc.shape[0], 64), np.uint8)
    wide[:, ::2] = desc
    view = wide[:, ::2]
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(orb_matrix(view, off), orb_matrix(desc, off))


# ----------------------------------------------------------------- boundary


def test_errors_name_the_argument():
    desc, off = stack([np.zeros((3, 32), np.uint8), np.zeros((2, 32), np.uint8)])
    with pytest.raises(TypeError, match="descriptors must have dtype uint8"):
        orb_matrix(desc.astype(np.int16), off)
    with pytest.raises(TypeError, match="offsets must have dtype int64"):
        orb_matrix(desc, off.astype(np.int32))
    with pytest.raises(TypeError, match="must be a numpy array"):
        orb_matrix(desc.tolist(), off)
    with pytest.raises(ValueError, match=r"descriptors must have shape \(total, 32\).*\(5, 16\)"):
        orb_matrix(np.zeros((5, 16), np.uint8), off)
    with pytest.raises(ValueError, match="descriptors must have 2 dimensions"):
        orb_matrix(np.zeros((5, 32, 1), np.uint8), off)
    with pytest.raises(ValueError, match="offsets must have 1 dimensions"):
        orb_matrix(desc, off[None])
    with pytest.raises(ValueError, match=r"offsets must have shape \(n \+ 1,\)"):
        orb_matrix(desc, np.zeros(0, np.int64))
    with pytest.raises(ValueError, match=r"offsets\[0\] must be 0, got 1"):
        orb_matrix(desc, np.array([1, 3, 5]))
    with pytest.raises(
        ValueError, match=r"offsets must be non-decreasing, but offsets\[2\] < offsets\[1\]"
    ):
        orb_matrix(desc, np.array([0, 4, 3, 5]))
    with pytest.raises(
        ValueError, match=r"offsets\[-1\] must equal the number of rows.*\(5, 32\).*got 4"
    ):
        orb_matrix(desc, np.array([0, 3, 4]))
    with pytest.raises(ValueError, match=r"off_b\[-1\]"):
        orb_cross(desc, off, desc, np.array([0, 6]))
    with pytest.raises(ValueError, match="desc_a must have shape"):
        orb_cross(np.zeros((5, 31), np.uint8), off, desc, off)
    with pytest.raises(ValueError, match=r"threshold must be in \[0.0, 1.0\]"):
        orb_pairs(desc, off, 1.5)
    with pytest.raises(ValueError, match=r"threshold must be in"):
        orb_components(desc, off, -0.1)
    with pytest.raises(ValueError, match=r"groups must have shape \(2,\)"):
        orb_pairs(desc, off, 0.5, groups=np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        orb_matrix(desc, off, n_threads=0)


def test_cpp_rechecks_shapes():
    desc, off = stack([np.zeros((3, 32), np.uint8)])
    with pytest.raises(ValueError, match=r"offsets\[-1\] must equal"):
        _core.orb_matrix(desc, np.array([0, 2], np.int64), 1)
    with pytest.raises(ValueError, match="offsets must be non-decreasing"):
        _core.orb_pairs(desc, np.array([0, 3, 2, 3], np.int64), 0.5, None, 1)
    with pytest.raises(ValueError, match=r"descriptors must have shape \(total, 32\)"):
        _core.orb_components(np.zeros((3, 8), np.uint8), off, 0.5, None, 1)
    with pytest.raises(ValueError, match=r"groups must have shape \(1,\)"):
        _core.orb_pairs(desc, off, 0.5, np.zeros(2, np.int64), 1)
    with pytest.raises(TypeError):  # noconvert: no silent dtype conversion
        _core.orb_matrix(desc.astype(np.int8), off, 1)


@st.composite
def ragged(draw):
    counts = draw(st.lists(st.integers(0, 12), min_size=0, max_size=6))
    bits = draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return [few_bit_descriptors(rng, c, bits) for c in counts]


@settings(max_examples=50, deadline=None)
@given(ragged(), st.floats(0.0, 1.0))
def test_property_every_form_matches_the_reference(descs, threshold):
    desc, off = stack(descs)
    n = len(descs)
    full = orb_matrix(desc, off)
    assert full.shape == (n, n) and full.dtype == np.float64
    np.testing.assert_array_equal(full, expected_matrix(descs, descs))
    assert np.all((full >= 0.0) & (full <= 1.0))
    edges, scores = orb_pairs(desc, off, threshold)
    assert (
        edges.dtype == np.int64 and scores.dtype == np.float32 and edges.shape == (len(scores), 2)
    )
    assert np.all(edges[:, 0] < edges[:, 1])
    assert np.all(full[edges[:, 0], edges[:, 1]] >= threshold)
    labels = orb_components(desc, off, threshold)
    assert labels.shape == (n,) and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, icas.connected_components(edges, n))


@settings(max_examples=50, deadline=None)
@given(
    st.integers(0, 40),
    st.lists(st.integers(-3, 45), min_size=0, max_size=5),
    st.sampled_from([np.uint8, np.int8, np.float32]),
    st.integers(30, 34),
)
def test_property_bad_inputs_raise_clear_errors(total, cuts, dtype, width):
    desc = np.zeros((total, width), dtype=dtype)
    off = np.array([0, *cuts, total], dtype=np.int64)
    valid_offsets = bool(np.all(np.diff(off) >= 0))
    if dtype is not np.uint8:
        with pytest.raises(TypeError, match="descriptors must have dtype uint8"):
            orb_matrix(desc, off)
    elif width != 32:
        with pytest.raises(ValueError, match=r"descriptors must have shape \(total, 32\)"):
            orb_matrix(desc, off)
    elif not valid_offsets:
        with pytest.raises(ValueError, match="offsets must be non-decreasing"):
            orb_matrix(desc, off)
    else:
        assert orb_matrix(desc, off).shape == (len(off) - 1,) * 2


# ------------------------------------------------------- candidates="index"


def shared_near_descriptor(descs: list[np.ndarray], radius: int) -> np.ndarray:
    """(n, n) bool: images i != j own descriptors within `radius` bits of each
    other (the index mode's candidate rule, by brute force over all bits)."""
    desc, off = stack(descs)
    bits = np.unpackbits(desc, axis=1).astype(np.float64)
    dist = bits @ (1 - bits).T + (1 - bits) @ bits.T  # Hamming distance of every pair
    owner = np.repeat(np.arange(len(descs)), np.diff(off))
    near = np.zeros((len(descs), len(descs)), dtype=bool)
    a, b = np.nonzero(dist <= radius)
    near[owner[a], owner[b]] = True
    np.fill_diagonal(near, False)
    return near


@pytest.fixture(scope="module")
def index_case(group_descs, real_descs):
    descs = group_descs[0] + real_descs[:4]
    groups = np.concatenate([group_descs[1], np.arange(4) + 100])
    return descs, groups, shared_near_descriptor(descs, orb_index_radius())


def orb_index_radius() -> int:
    from icas.similarity import _orb

    return _orb.INDEX_RADIUS


def test_index_compares_exactly_the_images_sharing_a_near_descriptor(kernel, index_case):
    descs, _, near = index_case
    desc, off = stack(descs)
    full = orb_matrix(desc, off)
    n = len(descs)
    iu, ju = np.triu_indices(n, 1)
    assert 0 < near[iu, ju].sum() < iu.size  # the filter does filter
    for threshold in (0.0, 0.4, 0.8):
        edges, scores = orb_pairs(desc, off, threshold, candidates="index")
        keep = near[iu, ju] & (full[iu, ju] >= threshold)
        np.testing.assert_array_equal(edges.reshape(-1, 2), np.stack([iu[keep], ju[keep]], axis=1))
        np.testing.assert_array_equal(scores, full[iu, ju][keep].astype(np.float32))
        labels = orb_components(desc, off, threshold, candidates="index")
        np.testing.assert_array_equal(labels, icas.connected_components(edges, n))


def test_index_recall_on_near_duplicate_groups(index_case):
    # The approximation must keep the pairs that matter, the near-duplicates
    # (measured on these photos: every same-group pair at any threshold, and
    # from 0.8 up every pair; below, some pairs of unrelated photos are lost).
    descs, groups, _ = index_case
    desc, off = stack(descs)
    for threshold in (0.3, 0.6, 0.8, 0.93):
        exact = {tuple(e) for e in orb_pairs(desc, off, threshold)[0].tolist()}
        found = {tuple(e) for e in orb_pairs(desc, off, threshold, candidates="index")[0].tolist()}
        same = {e for e in exact if groups[e[0]] == groups[e[1]]}
        assert same and found <= exact and same <= found
        if threshold >= 0.8:
            assert found == exact


def test_index_groups_and_threads(index_case):
    descs, groups, near = index_case
    desc, off = stack(descs)
    base = orb_pairs(desc, off, 0.3, candidates="index", n_threads=1)
    for threads in (2, 3, None):
        got = orb_pairs(desc, off, 0.3, candidates="index", n_threads=threads)
        np.testing.assert_array_equal(got[0], base[0])
        np.testing.assert_array_equal(got[1], base[1])
    edges, scores = orb_pairs(desc, off, 0.3, groups=groups, candidates="index")
    cross = groups[base[0][:, 0]] != groups[base[0][:, 1]]
    np.testing.assert_array_equal(edges, base[0][cross])
    np.testing.assert_array_equal(scores, base[1][cross])
    labels = orb_components(desc, off, 0.3, groups=groups, candidates="index")
    np.testing.assert_array_equal(labels, icas.connected_components(edges, len(descs)))


def test_index_edge_cases(real_descs):
    empty, off0 = stack([])
    assert orb_pairs(empty, off0, 0.5, candidates="index")[0].shape == (0, 2)
    assert orb_components(empty, off0, 0.5, candidates="index").shape == (0,)
    one, off1 = stack(real_descs[:1])
    assert orb_pairs(one, off1, 0.5, candidates="index")[0].shape == (0, 2)
    np.testing.assert_array_equal(orb_components(one, off1, 0.5, candidates="index"), [0])
    # identical images share every descriptor; an image without any shares none
    desc, off = stack([real_descs[0], real_descs[0], None])
    edges, scores = orb_pairs(desc, off, 0.5, candidates="index")
    np.testing.assert_array_equal(edges, [[0, 1]])
    np.testing.assert_array_equal(scores, [1.0])
    np.testing.assert_array_equal(orb_components(desc, off, 0.5, candidates="index"), [0, 0, 1])


@pytest.mark.parametrize("bad", ["auto", "ALL", None, 1])
def test_index_bad_candidates_value(real_descs, bad):
    desc, off = stack(real_descs[:2])
    with pytest.raises(ValueError, match="candidates must be 'all' or 'index'"):
        orb_pairs(desc, off, 0.5, candidates=bad)
    with pytest.raises(ValueError, match="candidates must be 'all' or 'index'"):
        orb_components(desc, off, 0.5, candidates=bad)


def test_index_cpp_rechecks_its_parameters(real_descs):
    desc, off = stack(real_descs[:2])
    with pytest.raises(ValueError, match="radius must be in"):
        _core.orb_pairs(desc, off, 0.5, None, 0, True, 257, 1)
    with pytest.raises(ValueError, match="min_shared must be >= 1"):
        _core.orb_components(desc, off, 0.5, None, 0, True, 16, 0)
