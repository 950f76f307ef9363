"""SSIM kernels against scikit-image's structural_similarity (the reference)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components
from skimage.metrics import structural_similarity

import icas
from icas import _core
from icas.similarity import ssim_components, ssim_cross, ssim_matrix, ssim_pairs

TOL = 1e-4  # the spec's tolerance; measured agreement is about 1e-7


def ref(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(a, b, data_range=255)


def ref_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    symmetric = b is None
    b = a if b is None else b
    out = np.empty((len(a), len(b)))
    for i in range(len(a)):
        for j in range(i if symmetric else 0, len(b)):
            out[i, j] = ref(a[i], b[j])
            if symmetric:
                out[j, i] = out[i, j]
    return out


def canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel in order of first appearance."""
    seen: dict[int, int] = {}
    return np.array([seen.setdefault(int(x), len(seen)) for x in labels], dtype=np.int64)


def ref_components(sim: np.ndarray, threshold: float) -> np.ndarray:
    i, j = np.nonzero(np.triu(sim >= threshold, 1))
    n = len(sim)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return canonical(scipy_components(graph, directed=False)[1])


@pytest.fixture(scope="module")
def gray_groups(photo_groups):
    images, groups = photo_groups
    gray = np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in images])
    return gray, groups


@pytest.fixture(scope="module")
def gray_ref(gray_groups):
    return ref_matrix(gray_groups[0])


# -- values -------------------------------------------------------------------


def test_matrix_matches_skimage_on_photos(gray_groups, gray_ref):
    gray, _ = gray_groups
    got = ssim_matrix(gray)
    assert got.shape == (len(gray), len(gray)) and got.dtype == np.float32
    np.testing.assert_allclose(got, gray_ref, rtol=0, atol=TOL)
    assert np.array_equal(got, got.T)


def test_cross_matches_skimage_on_photo_crops(photos):
    # Full-resolution photos, cropped to odd sizes: not just the 96x96 fixture.
    rng = np.random.default_rng(3)
    gray = [cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) for p in photos]
    h, w = 45, 71
    crops = []
    for g in gray:
        for _ in range(2):
            y, x = rng.integers(0, g.shape[0] - h), rng.integers(0, g.shape[1] - w)
            crops.append(g[y : y + h, x : x + w])
    crops = np.stack(crops)
    a, b = crops[:5], crops[5:]
    np.testing.assert_allclose(ssim_cross(a, b), ref_matrix(a, b), rtol=0, atol=TOL)


@pytest.mark.parametrize("h,w", [(7, 7), (7, 31), (31, 7), (33, 17), (8, 9), (23, 64), (64, 64)])
def test_random_images_of_odd_sizes(h, w):
    rng = np.random.default_rng(h * 100 + w)
    images = rng.integers(0, 256, size=(5, h, w), dtype=np.uint8)
    images[1] = images[0] // 2 + 60  # correlated
    images[2] = 255 - images[0]  # anti-correlated: negative SSIM
    expected = ref_matrix(images)
    got = ssim_matrix(images)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
    np.testing.assert_allclose(ssim_cross(images[:2], images), expected[:2], rtol=0, atol=TOL)


def test_negative_similarity_is_not_clipped():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, size=(32, 32), dtype=np.uint8)
    pair = np.stack([a, 255 - a])
    got = ssim_matrix(pair)[0, 1]
    assert got < -0.9
    assert abs(got - ref(a, 255 - a)) < TOL
    edges, scores = ssim_pairs(pair, -1.0)
    assert edges.tolist() == [[0, 1]] and scores[0] == got
    assert ssim_pairs(pair, -0.5)[0].shape == (0, 2)


def test_constant_images():
    # Constant windows have zero variance: SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    levels = [0, 1, 17, 128, 254, 255]
    images = np.stack([np.full((12, 9), v, np.uint8) for v in levels])
    got = ssim_matrix(images)
    np.testing.assert_allclose(got, ref_matrix(images), rtol=0, atol=TOL)
    c1 = (0.01 * 255) ** 2
    a, b = np.meshgrid(np.array(levels, float), np.array(levels, float), indexing="ij")
    np.testing.assert_allclose(got, (2 * a * b + c1) / (a * a + b * b + c1), rtol=1e-5)
    assert np.all(np.diag(got) == 1.0)
    # A constant image against a textured one.
    rng = np.random.default_rng(8)
    mixed = np.stack([images[3], rng.integers(0, 256, size=(12, 9), dtype=np.uint8)])
    assert abs(ssim_matrix(mixed)[0, 1] - ref(mixed[0], mixed[1])) < TOL


def test_identical_images_are_exactly_one(gray_groups):
    gray, _ = gray_groups
    rng = np.random.default_rng(9)
    noise = rng.integers(0, 256, size=(3, 19, 23), dtype=np.uint8)
    for images in (gray[:4], noise, np.zeros((2, 7, 7), np.uint8)):
        copies = np.concatenate([images, images])
        n = len(images)
        got = ssim_cross(images, copies)
        assert np.all(got[:, :n] == got[:, n:])
        assert np.all(np.diag(got[:, n:]) == 1.0)
        assert ref(images[0], images[0]) == 1.0
        # A threshold of exactly 1 finds every duplicate.
        edges, scores = ssim_pairs(copies, 1.0)
        assert {tuple(e) for e in edges.tolist()} >= {(i, i + n) for i in range(n)}
        assert np.all(scores == 1.0)


def test_non_contiguous_input_is_accepted(gray_groups):
    gray, _ = gray_groups
    view = gray[::2, 3:90:2, ::3]  # strided in every axis
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(ssim_matrix(view), ssim_matrix(np.ascontiguousarray(view)))
    assert abs(ssim_matrix(view)[0, 1] - ref(view[0], view[1])) < TOL


# -- forms --------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [-1.0, 0.0, 0.2, 0.5, 0.9, 1.0])
def test_pairs_agree_with_the_matrix(gray_groups, gray_ref, threshold):
    gray, _ = gray_groups
    sim = ssim_matrix(gray)
    edges, scores = ssim_pairs(gray, threshold)
    assert edges.dtype == np.int64 and scores.dtype == np.float32
    i, j = np.nonzero(np.triu(sim >= threshold, 1))  # row-major: ordered by (i, j)
    np.testing.assert_array_equal(edges, np.stack([i, j], axis=1).reshape(-1, 2))
    np.testing.assert_array_equal(scores, sim[i, j])
    np.testing.assert_allclose(scores, gray_ref[i, j], rtol=0, atol=TOL)


def test_pairs_kept_at_a_threshold_equal_to_their_score(gray_groups):
    """Pairs that cannot reach the threshold stop early (see ssim.cpp): at a
    threshold equal to a pair's own float32 score the pair is still kept,
    and the pairs just below it are still dropped."""
    gray, _ = gray_groups
    sim = ssim_matrix(gray)
    values = np.unique(sim[np.triu_indices(len(gray), 1)])
    for threshold in values[np.linspace(0, len(values) - 1, 9).astype(int)]:
        edges, scores = ssim_pairs(gray, float(threshold))
        i, j = np.nonzero(np.triu(sim >= threshold, 1))
        np.testing.assert_array_equal(edges, np.stack([i, j], axis=1).reshape(-1, 2))
        np.testing.assert_array_equal(scores, sim[i, j])
        labels = ssim_components(gray, float(threshold))
        np.testing.assert_array_equal(labels, icas.connected_components(edges, len(gray)))


def test_pairs_skip_pairs_inside_a_group(gray_groups):
    gray, groups = gray_groups
    sim = ssim_matrix(gray)
    edges, scores = ssim_pairs(gray, 0.1, groups=groups)
    keep = np.triu((sim >= 0.1) & (groups[:, None] != groups[None, :]), 1)
    i, j = np.nonzero(keep)
    np.testing.assert_array_equal(edges, np.stack([i, j], axis=1).reshape(-1, 2))
    np.testing.assert_array_equal(scores, sim[i, j])
    assert len(edges) > 0  # some cross-group pairs pass, so skipping was tested


def away_from(values: np.ndarray, threshold: float) -> float:
    """The middle of the gap between reference values nearest to threshold, so
    that float rounding cannot put a pair on the other side."""
    v = np.unique(values)
    mids, widths = (v[1:] + v[:-1]) / 2, v[1:] - v[:-1]
    ok = widths > 20 * TOL
    return float(mids[ok][np.argmin(np.abs(mids[ok] - threshold))])


@pytest.mark.parametrize("nominal", [0.2, 0.3, 0.5, 0.9])
def test_components_match_the_reference_graph(gray_groups, gray_ref, nominal):
    gray, _ = gray_groups
    threshold = away_from(gray_ref, nominal)
    labels = ssim_components(gray, threshold)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, ref_components(gray_ref, threshold))
    edges, _ = ssim_pairs(gray, threshold)
    np.testing.assert_array_equal(labels, icas.connected_components(edges, len(gray)))


def test_components_recover_the_photo_groups(gray_groups, gray_ref):
    # Every variant (re-encoded, brightened, shifted, blurred, noised) chains to
    # its photo before any two photos do: between the largest SSIM of two
    # photos and the weakest link needed inside a group, the clusters are
    # exactly the photos.
    gray, groups = gray_groups
    same = groups[:, None] == groups[None, :]
    between = gray_ref[~same].max()
    weakest_link = min(
        max(v for v in np.unique(sub) if len(set(ref_components(sub, v))) == 1)
        for sub in (gray_ref[np.ix_(groups == g, groups == g)] for g in np.unique(groups))
    )
    assert between + 2 * TOL < weakest_link
    threshold = (between + weakest_link) / 2
    np.testing.assert_array_equal(ssim_components(gray, threshold), canonical(groups))
    # With the true groups as batches, nothing chains.
    assert ssim_components(gray, threshold, groups=groups).tolist() == list(range(len(gray)))


def test_components_with_groups(gray_groups):
    gray, _ = gray_groups
    # Batches of 4 consecutive images: only pairs across batches count.
    batches = np.arange(len(gray)) // 4
    for threshold in (0.1, 0.3):
        edges, _ = ssim_pairs(gray, threshold, groups=batches)
        expected = icas.connected_components(edges, len(gray))
        np.testing.assert_array_equal(ssim_components(gray, threshold, groups=batches), expected)


def test_thread_count_does_not_change_results(gray_groups):
    gray, _ = gray_groups
    rng = np.random.default_rng(11)
    many = np.concatenate([gray, rng.integers(0, 256, size=(40, 96, 96), dtype=np.uint8)])
    base = ssim_matrix(many, n_threads=1)
    base_pairs = ssim_pairs(many, 0.05, n_threads=1)
    base_labels = ssim_components(many, 0.3, n_threads=1)
    for n_threads in (2, 3, -1, None):
        np.testing.assert_array_equal(ssim_matrix(many, n_threads=n_threads), base)
        np.testing.assert_array_equal(ssim_cross(many[:7], many, n_threads=n_threads), base[:7])
        edges, scores = ssim_pairs(many, 0.05, n_threads=n_threads)
        np.testing.assert_array_equal(edges, base_pairs[0])
        np.testing.assert_array_equal(scores, base_pairs[1])
        np.testing.assert_array_equal(ssim_components(many, 0.3, n_threads=n_threads), base_labels)


def test_empty_and_single_inputs():
    none = np.zeros((0, 16, 16), np.uint8)
    one = np.zeros((1, 16, 16), np.uint8)
    assert ssim_matrix(none).shape == (0, 0)
    assert ssim_matrix(one).tolist() == [[1.0]]
    assert ssim_cross(none, one).shape == (0, 1)
    assert ssim_cross(one, none).shape == (1, 0)
    for images in (none, one):
        edges, scores = ssim_pairs(images, 0.5)
        assert edges.shape == (0, 2) and edges.dtype == np.int64
        assert scores.shape == (0,) and scores.dtype == np.float32
        assert ssim_components(images, 0.5).tolist() == list(range(len(images)))
    # No image means no size to check.
    assert ssim_matrix(np.zeros((0, 2, 3), np.uint8)).shape == (0, 0)


# -- errors -------------------------------------------------------------------


def test_errors_name_the_argument():
    good = np.zeros((3, 8, 8), np.uint8)
    with pytest.raises(TypeError, match="images must have dtype uint8, got float32"):
        ssim_matrix(good.astype(np.float32))
    with pytest.raises(TypeError, match="images must be a numpy array"):
        ssim_matrix(good.tolist())
    with pytest.raises(ValueError, match=r"images must have 3 dimensions, got shape \(8, 8\)"):
        ssim_matrix(good[0])
    with pytest.raises(ValueError, match=r"grayscale images \(n, h, w\), got shape \(3, 8, 8, 3\)"):
        ssim_matrix(np.zeros((3, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"win_size 7 exceeds image extent.*\(2, 6, 9\)"):
        ssim_matrix(np.zeros((2, 6, 9), np.uint8))
    with pytest.raises(ValueError, match=r"win_size 7 exceeds image extent.*\(2, 9, 6\)"):
        ssim_pairs(np.zeros((2, 9, 6), np.uint8), 0.5)
    with pytest.raises(ValueError, match=r"win_size 7 exceeds.*b of shape \(1, 5, 5\)"):
        ssim_cross(good, np.zeros((1, 5, 5), np.uint8))
    with pytest.raises(ValueError, match=r"one size, got shapes \(3, 8, 8\) and \(2, 8, 9\)"):
        ssim_cross(good, np.zeros((2, 8, 9), np.uint8))
    with pytest.raises(ValueError, match=r"threshold must be in \[-1.0, 1.0\], got 1.5"):
        ssim_pairs(good, 1.5)
    with pytest.raises(ValueError, match=r"threshold must be in \[-1.0, 1.0\], got -1.01"):
        ssim_components(good, -1.01)
    with pytest.raises(TypeError, match="threshold must be a number"):
        ssim_pairs(good, "0.5")
    with pytest.raises(ValueError, match=r"groups must have shape \(3,\), got \(2,\)"):
        ssim_pairs(good, 0.5, groups=np.zeros(2, np.int64))
    with pytest.raises(TypeError, match="groups must be integers"):
        ssim_components(good, 0.5, groups=np.zeros(3))
    with pytest.raises(ValueError, match="n_threads must be >= 1, -1"):
        ssim_matrix(good, n_threads=0)
    with pytest.raises(TypeError, match="n_threads must be an int"):
        ssim_matrix(good, n_threads=1.5)


def test_the_extension_rechecks_shapes():
    # Called directly, the C++ side throws std::invalid_argument -> ValueError.
    with pytest.raises(ValueError, match="win_size 7 exceeds image extent.*6x9"):
        _core.ssim_matrix(np.zeros((2, 6, 9), np.uint8), 0)
    with pytest.raises(ValueError, match=r"images must have 3 dimensions, got shape \(8, 8\)"):
        _core.ssim_pairs(np.zeros((8, 8), np.uint8), 0.5, None, 0)
    with pytest.raises(ValueError, match=r"a and b must hold images of one size"):
        _core.ssim_cross(np.zeros((1, 8, 8), np.uint8), np.zeros((1, 9, 8), np.uint8), 0)
    with pytest.raises(ValueError, match=r"groups must have shape \(2,\)"):
        _core.ssim_components(np.zeros((2, 8, 8), np.uint8), 0.5, np.zeros(3, np.int64), 0)
    with pytest.raises(TypeError):  # noconvert: no silent float -> uint8 copy
        _core.ssim_matrix(np.zeros((2, 8, 8), np.float32), 0)


# -- properties at the boundary -----------------------------------------------

sizes = st.tuples(st.integers(0, 4), st.integers(7, 24), st.integers(7, 24))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), shape=sizes)
def test_any_valid_shape_matches_skimage(data, shape):
    images = data.draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, 255)))
    got = ssim_matrix(images)
    n = shape[0]
    assert got.shape == (n, n) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref_matrix(images), rtol=0, atol=TOL)
    assert np.all((got >= -1.0) & (got <= 1.0))
    edges, scores = ssim_pairs(images, 0.0)
    assert edges.shape == (len(scores), 2) and np.all(edges[:, 0] < edges[:, 1])
    assert ssim_components(images, 0.0).shape == (n,)


@settings(max_examples=50, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(0, 10), st.integers(0, 10)).filter(
        lambda s: min(s[1], s[2]) < 7
    )
)
def test_any_too_small_image_is_rejected(shape):
    images = np.zeros(shape, np.uint8)
    for call in (ssim_matrix, lambda x: ssim_pairs(x, 0.5), lambda x: ssim_cross(x, x)):
        with pytest.raises(ValueError, match="win_size 7 exceeds image extent"):
            call(images)


@settings(max_examples=30, deadline=None)
@given(dtype=st.sampled_from([np.int8, np.uint16, np.int32, np.float32, np.float64, np.bool_]))
def test_any_other_dtype_is_a_type_error(dtype):
    with pytest.raises(TypeError, match="images must have dtype uint8"):
        ssim_matrix(np.zeros((2, 8, 8), dtype))
