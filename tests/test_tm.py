"""Template-matching similarity against cv2.matchTemplate(TM_SQDIFF_NORMED)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import icas
from icas.similarity import tm_components, tm_cross, tm_matrix, tm_pairs, tm_similarity

TOL = 1e-4


def ref_sim(a: np.ndarray, b: np.ndarray) -> float:
    """The reference: 1 - min of OpenCV's normalised squared difference."""
    return 1.0 - float(cv2.matchTemplate(a, b, cv2.TM_SQDIFF_NORMED).min())


def ref_cross(a, b) -> np.ndarray:
    return np.array([[ref_sim(x, y) for y in b] for x in a], dtype=np.float64).reshape(
        len(a), len(b)
    )


def exact_matrix(x: np.ndarray) -> np.ndarray:
    """Same formula in float64 from int64 numpy dot products (independent of cv2)."""
    f = x.reshape(len(x), -1).astype(np.int64)
    gram = f @ f.T
    sq = np.diag(gram)
    num = (sq[:, None] + sq[None, :] - 2 * gram).astype(np.float64)
    t = np.sqrt(sq.astype(np.float64))[:, None] * np.sqrt(sq.astype(np.float64))[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where((t > 0) & (num < t), num / t, 1.0)
    return 1.0 - v


def gray(images):
    return np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in images])


def safe_thresholds(values: np.ndarray, k: int = 4) -> list[float]:
    """Thresholds halfway between distinct similarities, so float32 rounding
    of a score can never put it on the other side."""
    v = np.unique(np.round(values.ravel().astype(np.float64), 6))
    v = v[(v > 0) & (v < 1)]
    mids = (v[1:] + v[:-1]) / 2
    gaps = v[1:] - v[:-1]
    mids = mids[gaps > 1e-5]
    picks = np.linspace(0, len(mids) - 1, k).astype(int)
    return [float(mids[i]) for i in picks]


def brute_pairs(m: np.ndarray, threshold: float, groups=None):
    n = len(m)
    i, j = np.triu_indices(n, 1)
    keep = m[i, j] >= threshold
    if groups is not None:
        keep &= groups[i] != groups[j]
    return np.stack([i[keep], j[keep]], axis=1).astype(np.int64), m[i, j][keep]


@pytest.fixture(scope="module")
def groups_rgb(photo_groups):
    images, groups = photo_groups
    return np.stack(images), groups


# ------------------------------------------------------------------ values


@pytest.mark.parametrize("colour", [True, False], ids=["rgb", "gray"])
def test_matrix_matches_opencv_on_photos(groups_rgb, colour):
    x, _ = groups_rgb
    if not colour:
        x = gray(x)
    got = tm_matrix(x)
    assert got.dtype == np.float32 and got.shape == (len(x), len(x))
    np.testing.assert_allclose(got, ref_cross(x, x), atol=TOL, rtol=0)
    np.testing.assert_array_equal(got, got.T)
    assert np.all(np.diag(got) == 1.0)


def test_near_duplicates_score_higher_than_other_photos(groups_rgb):
    x, groups = groups_rgb
    m = tm_matrix(x)
    same = groups[:, None] == groups[None, :]
    off = ~np.eye(len(x), dtype=bool)
    # every image's best match is one of its own variants
    best = np.where(off, m, -1).argmax(axis=1)
    np.testing.assert_array_equal(groups[best], groups)
    assert m[same & off].mean() > m[~same].mean() + 0.1


@pytest.mark.parametrize(
    "shape",
    [(5, 1, 1), (6, 3, 5), (7, 5, 3, 3), (9, 17, 13, 3), (5, 6, 7, 4), (4, 31, 29, 2)],
    ids=str,
)
def test_matrix_matches_opencv_on_random_odd_sizes(shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    got = tm_matrix(x)
    np.testing.assert_allclose(got, ref_cross(x, x), atol=TOL, rtol=0)


def test_many_images_cross_tile_edges():
    # n spans several 64-item tiles and rows that are not a multiple of the
    # micro-block; compared exactly with an int64 numpy reference.
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (203, 4, 5, 3), dtype=np.uint8)
    x[10] = x[150]  # identical pair in different tiles
    got = tm_matrix(x, n_threads=2)
    np.testing.assert_allclose(got, exact_matrix(x), atol=1e-6, rtol=0)
    assert got[10, 150] == 1.0
    sub = [0, 3, 63, 64, 65, 130, 202]
    np.testing.assert_allclose(got[np.ix_(sub, sub)], ref_cross(x[sub], x[sub]), atol=TOL)


def test_long_bright_features_stay_exact():
    # 200 * 180 * 3 = 108000 values: dot products reach 255^2 * 108000, past
    # int32, and the depth spans many packing blocks.
    rng = np.random.default_rng(4)
    x = rng.integers(200, 256, (5, 200, 180, 3), dtype=np.uint8)
    x[1] = 255
    x[2] = x[0] // 2 + 127
    got = tm_matrix(x)
    np.testing.assert_allclose(got, exact_matrix(x), atol=1e-6, rtol=0)
    np.testing.assert_allclose(got, ref_cross(x, x), atol=TOL, rtol=0)


def test_black_constant_identical_and_inverse_images(photos):
    h, w = 12, 10
    black = np.zeros((h, w, 3), np.uint8)
    white = np.full((h, w, 3), 255, np.uint8)
    dark = np.full((h, w, 3), 3, np.uint8)
    grey = np.full((h, w, 3), 128, np.uint8)
    half = np.zeros((h, w, 3), np.uint8)
    half[:, : w // 2] = 255
    inverse = 255 - half
    photo = cv2.resize(photos[0], (w, h), interpolation=cv2.INTER_AREA)
    x = np.stack([black, white, dark, grey, half, inverse, photo, photo, black])
    got = tm_matrix(x)
    np.testing.assert_allclose(got, ref_cross(x, x), atol=TOL, rtol=0)
    # OpenCV: an all-black image scores 1 (similarity 0) with everything, itself too
    assert np.all(got[0] == 0) and np.all(got[:, 8] == 0)
    assert got[6, 7] == 1.0  # identical
    assert got[1, 3] == pytest.approx(1 - 127**2 / (255 * 128), abs=1e-7)  # constants
    assert got[4, 5] == 0.0 and got[1, 2] == 0.0  # clamped: difference exceeds the norms
    assert np.all((got >= 0) & (got <= 1))


@pytest.mark.parametrize("colour", [True, False], ids=["rgb", "gray"])
def test_cross_matches_opencv(groups_rgb, colour):
    x, _ = groups_rgb
    if not colour:
        x = gray(x)
    a, b = x[:7], x[5:]
    got = tm_cross(a, b)
    assert got.dtype == np.float32 and got.shape == (7, len(x) - 5)
    np.testing.assert_allclose(got, ref_cross(a, b), atol=TOL, rtol=0)
    np.testing.assert_array_equal(got, tm_matrix(x)[:7, 5:])


def test_gray_with_or_without_channel_axis_is_the_same():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (6, 9, 8), dtype=np.uint8)
    np.testing.assert_array_equal(tm_matrix(x), tm_matrix(x[..., None]))
    np.testing.assert_array_equal(tm_cross(x, x[:2]), tm_cross(x[..., None], x[:2, ..., None]))


def test_non_contiguous_input_is_accepted():
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, (8, 20, 16, 3), dtype=np.uint8)
    view = x[::2, ::2, :, ::-1]
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(tm_matrix(view), tm_matrix(np.ascontiguousarray(view)))


# ------------------------------------------------------------ sparse forms


@pytest.mark.parametrize("colour", [True, False], ids=["rgb", "gray"])
def test_pairs_are_the_thresholded_matrix(groups_rgb, colour):
    x, groups = groups_rgb
    if not colour:
        x = gray(x)
    m = tm_matrix(x)
    for thr in safe_thresholds(m):
        edges, scores = tm_pairs(x, thr)
        want_e, want_s = brute_pairs(m, thr)
        assert edges.dtype == np.int64 and scores.dtype == np.float32
        np.testing.assert_array_equal(edges, want_e)
        np.testing.assert_array_equal(scores, want_s)
        ref = ref_cross(x, x)
        np.testing.assert_allclose(scores, ref[edges[:, 0], edges[:, 1]], atol=TOL)
        e2, _ = tm_pairs(x, thr, groups=groups)
        np.testing.assert_array_equal(e2, brute_pairs(m, thr, groups)[0])


def test_pairs_and_components_over_many_tiles_with_groups():
    rng = np.random.default_rng(8)
    base = rng.integers(0, 256, (12, 6, 6, 3), dtype=np.int16)
    pick = rng.integers(0, 12, 260)
    x = np.clip(base[pick] + rng.integers(-20, 21, (260, 6, 6, 3)), 0, 255).astype(np.uint8)
    m = tm_matrix(x)
    # sorted groups: whole tiles inside one group are skipped; shuffled: none are
    for groups in (np.arange(260) // 70, rng.integers(0, 5, 260), None):
        for thr in safe_thresholds(m, 3):
            edges, scores = tm_pairs(x, thr, groups=groups)
            want_e, want_s = brute_pairs(m, thr, groups)
            np.testing.assert_array_equal(edges, want_e)
            np.testing.assert_array_equal(scores, want_s)
            labels = tm_components(x, thr, groups=groups)
            assert labels.dtype == np.int64
            np.testing.assert_array_equal(labels, icas.connected_components(want_e, 260))


def test_components_on_photos_are_the_chained_pairs(groups_rgb):
    x, groups = groups_rgb
    m = tm_matrix(x)
    for thr in safe_thresholds(m):
        want = icas.connected_components(brute_pairs(m, thr)[0], len(x))
        np.testing.assert_array_equal(tm_components(x, thr), want)
        want = icas.connected_components(brute_pairs(m, thr, groups)[0], len(x))
        np.testing.assert_array_equal(tm_components(x, thr, groups=groups), want)


def test_one_big_cluster_skips_tiles_and_stays_exact():
    rng = np.random.default_rng(9)
    # 32x32x3 images: enough work per call for the kernel to use several threads
    base = rng.integers(0, 256, (32, 32, 3), dtype=np.int16)
    x = np.clip(base + rng.integers(-3, 4, (300, 32, 32, 3)), 0, 255).astype(np.uint8)
    x[-1] = 255 - x[-1]  # one outsider
    labels = tm_components(x, 0.9)
    assert labels[:-1].tolist() == [0] * 299 and labels[-1] == 1
    for k in (1, 2, 3):
        np.testing.assert_array_equal(tm_components(x, 0.9, n_threads=k), labels)
    edges, _ = tm_pairs(x, 0.9)
    np.testing.assert_array_equal(labels, icas.connected_components(edges, 300))


def test_threshold_bounds():
    rng = np.random.default_rng(10)
    x = rng.integers(0, 256, (7, 5, 5), dtype=np.uint8)
    x[3] = 0
    edges, scores = tm_pairs(x, 0.0)
    assert len(edges) == 21  # every pair, the black image's zeros included
    edges, _ = tm_pairs(x, 1.0)
    assert len(edges) == 0
    assert tm_components(x, 1.0).tolist() == list(range(7))
    assert tm_components(x, 0.0).tolist() == [0] * 7


# ----------------------------------------------------------- empty / tiny


def test_zero_and_one_image():
    for shape in [(0, 4, 4), (0, 4, 4, 3), (1, 4, 4, 3)]:
        x = np.full(shape, 9, np.uint8)
        n = shape[0]
        m = tm_matrix(x)
        assert m.shape == (n, n) and m.dtype == np.float32
        edges, scores = tm_pairs(x, 0.5)
        assert edges.shape == (0, 2) and edges.dtype == np.int64
        assert scores.shape == (0,) and scores.dtype == np.float32
        assert tm_components(x, 0.5).tolist() == list(range(n))
        assert tm_cross(x, np.full((2, *shape[1:]), 9, np.uint8)).shape == (n, 2)
    assert tm_matrix(np.full((1, 4, 4), 9, np.uint8)).tolist() == [[1.0]]


# ---------------------------------------------------------------- threads


def test_results_do_not_depend_on_thread_count(groups_rgb):
    x, groups = groups_rgb
    x = np.concatenate([x] * 6)  # 144 images: several tiles
    g = np.concatenate([groups] * 6)
    m1 = tm_matrix(x, n_threads=1)
    e1, s1 = tm_pairs(x, 0.6, groups=g, n_threads=1)
    l1 = tm_components(x, 0.6, n_threads=1)
    c1 = tm_cross(x[:70], x, n_threads=1)
    for k in (2, 3, -1, None):
        np.testing.assert_array_equal(tm_matrix(x, n_threads=k), m1)
        e, s = tm_pairs(x, 0.6, groups=g, n_threads=k)
        np.testing.assert_array_equal(e, e1)
        np.testing.assert_array_equal(s, s1)
        np.testing.assert_array_equal(tm_components(x, 0.6, n_threads=k), l1)
        np.testing.assert_array_equal(tm_cross(x[:70], x, n_threads=k), c1)


# ------------------------------------------------------ any sizes (sliding)


@pytest.mark.parametrize("colour", [True, False], ids=["rgb", "gray"])
def test_similarity_of_different_sizes_matches_opencv(photos, colour):
    imgs = [cv2.resize(p, (120, 90), interpolation=cv2.INTER_AREA) for p in photos[:4]]
    if not colour:
        imgs = list(gray(imgs))
    big = imgs[0]
    crop = np.ascontiguousarray(big[20:70, 31:100])
    other = cv2.resize(imgs[1], (41, 33))
    small = np.ascontiguousarray(imgs[2][:20, :25])  # small template: OpenCV's IPP path for gray
    cases = [(big, crop), (crop, big), (big, other), (big, small), (crop, other), (big, big)]
    for a, b in cases:
        got = tm_similarity(a, b)
        assert isinstance(got, float)
        assert abs(got - ref_sim(a, b)) <= TOL
        assert got == tm_similarity(b, a)
    assert tm_similarity(big, crop) == pytest.approx(1.0, abs=1e-12)  # exact integers
    assert tm_similarity(big, big) == float(tm_matrix(big[None])[0, 0])


def test_similarity_equal_sizes_is_the_matrix_value(groups_rgb):
    x, _ = groups_rgb
    m = tm_matrix(x[:5])
    for i in range(5):
        for j in range(5):
            assert abs(tm_similarity(x[i], x[j]) - m[i, j]) < 1e-6


def test_similarity_edge_cases():
    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    black_t = np.zeros((5, 7, 3), np.uint8)
    img_hole = img.copy()
    img_hole[10:20, 5:30] = 0  # some windows entirely black
    one = rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)
    row = rng.integers(0, 256, (1, 40, 3), dtype=np.uint8)
    col = rng.integers(0, 256, (30, 1), dtype=np.uint8)
    for a, b in [
        (img, black_t),
        (np.zeros_like(img), black_t),
        (img_hole, img[12:16, 8:20]),
        (img, one),
        (img, row),
        (img[..., 0].copy(), col),
        (np.full((9, 9), 77, np.uint8), np.full((3, 4), 200, np.uint8)),
    ]:
        assert abs(tm_similarity(a, b) - ref_sim(a, b)) <= TOL
    assert tm_similarity(img, black_t) == 0.0
    # (h, w) and (h, w, 1) are one channel
    assert tm_similarity(img[..., 0].copy(), col[..., None]) == tm_similarity(
        img[..., 0].copy(), col
    )


def test_similarity_threads_agree():
    rng = np.random.default_rng(12)
    # large enough (~10^8 multiply-adds) for the kernel to use several threads
    a = rng.integers(0, 256, (160, 170, 3), dtype=np.uint8)
    b = np.ascontiguousarray(a[40:140, 30:130])
    b[0, 0] ^= 1
    values = {tm_similarity(a, b, n_threads=k) for k in (1, 2, 3, -1, None)}
    assert len(values) == 1
    assert abs(values.pop() - ref_sim(a, b)) <= TOL


# ------------------------------------------------------------------ errors


def test_errors_name_the_argument():
    x = np.zeros((3, 4, 4), np.uint8)
    with pytest.raises(TypeError, match="images must have dtype uint8, got float32"):
        tm_matrix(x.astype(np.float32))
    with pytest.raises(TypeError, match="images must be a numpy array"):
        tm_matrix(x.tolist())
    with pytest.raises(
        ValueError,
        match=r"images must have 3 or 4 dimensions, got shape \(3, 16\)",
    ):
        tm_matrix(x.reshape(3, 16))
    with pytest.raises(ValueError, match=r"at least one pixel.*\(3, 0, 4\)"):
        tm_matrix(np.zeros((3, 0, 4), np.uint8))
    with pytest.raises(ValueError, match=r"one size.*\(3, 4, 4\) and \(2, 4, 5\)"):
        tm_cross(x, np.zeros((2, 4, 5), np.uint8))
    with pytest.raises(ValueError, match=r"one size.*\(3, 4, 4\) and \(2, 4, 4, 3\)"):
        tm_cross(x, np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(TypeError, match="b must have dtype uint8"):
        tm_cross(x, x.astype(np.int8))
    with pytest.raises(ValueError, match=r"threshold must be in \[0.0, 1.0\], got 1.5"):
        tm_pairs(x, 1.5)
    with pytest.raises(ValueError, match="threshold must be in"):
        tm_components(x, -0.1)
    with pytest.raises(ValueError, match=r"groups must have shape \(3,\), got \(2,\)"):
        tm_pairs(x, 0.5, groups=np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="n_threads must be >= 1, -1"):
        tm_matrix(x, n_threads=0)
    with pytest.raises(TypeError, match="n_threads must be an int"):
        tm_matrix(x, n_threads=1.5)


def test_similarity_errors():
    a = np.zeros((4, 6, 3), np.uint8)
    with pytest.raises(ValueError, match=r"neither image fits inside the other: a is 4x6, b is"):
        tm_similarity(a, np.zeros((6, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"same number of channels.*\(4, 6, 3\) and \(2, 2\)"):
        tm_similarity(a, np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match=r"b must have 2 or 3 dimensions, got shape \(1, 2, 2, 3"):
        tm_similarity(a, np.zeros((1, 2, 2, 3), np.uint8))
    with pytest.raises(TypeError, match="a must have dtype uint8, got float64"):
        tm_similarity(a.astype(float), a)
    with pytest.raises(ValueError, match="at least one pixel"):
        tm_similarity(a, np.zeros((0, 2, 3), np.uint8))


def test_core_rechecks_shapes():
    from icas import _core

    with pytest.raises(ValueError, match="images must have shape"):
        _core.tm_matrix(np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="one size"):
        _core.tm_cross(np.zeros((2, 3, 3), np.uint8), np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(ValueError, match="does not fit"):
        _core.tm_similarity(np.zeros((3, 3), np.uint8), np.zeros((4, 3), np.uint8))
    with pytest.raises(TypeError):  # no silent conversion in the binding
        _core.tm_matrix(np.zeros((2, 3, 3), np.float32))


# -------------------------------------------------------------- properties

pixels = st.sampled_from(["random", "binary", "dark", "zero"])


def make_images(rng, shape, kind):
    if kind == "random":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if kind == "binary":
        return (rng.integers(0, 2, shape) * 255).astype(np.uint8)
    if kind == "dark":
        return rng.integers(0, 3, shape, dtype=np.uint8)
    return np.zeros(shape, np.uint8)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 6),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    c=st.sampled_from([None, 1, 3, 4]),
    kind=pixels,
    seed=st.integers(0, 2**32 - 1),
)
def test_property_matrix_matches_opencv(n, h, w, c, kind, seed):
    rng = np.random.default_rng(seed)
    shape = (n, h, w) if c is None else (n, h, w, c)
    x = make_images(rng, shape, kind)
    got = tm_matrix(x)
    assert got.shape == (n, n)
    assert np.all((got >= 0) & (got <= 1))
    np.testing.assert_array_equal(got, got.T)
    np.testing.assert_allclose(got, ref_cross(x, x), atol=TOL, rtol=0)


@settings(max_examples=50, deadline=None)
@given(
    ih=st.integers(1, 12),
    iw=st.integers(1, 12),
    dh=st.integers(0, 6),
    dw=st.integers(0, 6),
    c=st.sampled_from([None, 1, 3]),
    kind=pixels,
    swap=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_similarity_matches_opencv(ih, iw, dh, dw, c, kind, swap, seed):
    rng = np.random.default_rng(seed)
    th, tw = max(1, ih - dh), max(1, iw - dw)
    extra = () if c is None else (c,)
    image = make_images(rng, (ih, iw, *extra), kind)
    templ = make_images(rng, (th, tw, *extra), "random" if seed % 2 else kind)
    a, b = (templ, image) if swap else (image, templ)
    got = tm_similarity(a, b)
    assert 0.0 <= got <= 1.0
    assert abs(got - ref_sim(image, templ)) <= TOL


@settings(max_examples=50, deadline=None)
@given(
    dtype=st.sampled_from([np.int8, np.uint16, np.int32, np.float32, np.float64, np.bool_]),
    ndim=st.integers(1, 5),
)
def test_property_wrong_dtype_or_ndim_is_rejected(dtype, ndim):
    shape = (2, 3, 3, 2, 2)[:ndim]
    x = np.zeros(shape, dtype)
    if dtype is not np.uint8:
        with pytest.raises(TypeError, match="must have dtype uint8"):
            tm_matrix(x)
    u = np.zeros(shape, np.uint8)
    if ndim in (3, 4):
        assert tm_matrix(u).shape == (2, 2)
    else:
        with pytest.raises(ValueError, match="must have 3 or 4 dimensions"):
            tm_matrix(u)
        with pytest.raises(ValueError, match="must have 3 or 4 dimensions"):
            tm_pairs(u, 0.5)
