"""Automatic pre-segmentation (icas.segment.segment) and the preview, on real photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from icas.segment import METHODS, check_params, preview, segment
from icas.segment._image import relabel
from icas.segment.preview import has_screen, render, show

ALL = list(METHODS)
# Methods whose result depends on random choices; they take a `seed`.
SEEDED = ["kmeans", "slickmeans", "quickshift"]


@pytest.fixture(scope="session")
def small_photos(photos):
    """The shipped photos as BGR, the longer side shrunk to 96 pixels (tests stay fast)."""
    out = []
    for p in photos:
        h, w = p.shape[:2]
        s = 96 / max(h, w)
        small = cv2.resize(p, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(small[..., ::-1]))
    return out


@pytest.fixture(scope="session")
def photo(small_photos):
    return small_photos[0]  # astronaut


def check_labels(labels, shape, *, edges_allowed=False):
    """The contract of every method: int32, (h, w), segments 1..n numbered in
    raster order of first appearance, 0 only for edge pixels."""
    assert labels.dtype == np.int32
    assert labels.shape == shape
    assert labels.min() >= 0
    if not edges_allowed:
        assert labels.min() >= 1
    present = np.unique(labels)
    seg = present[present > 0]
    np.testing.assert_array_equal(seg, np.arange(1, len(seg) + 1))
    flat = labels.ravel()
    _, first = np.unique(flat, return_index=True)
    firsts = flat[np.sort(first)]
    firsts = firsts[firsts > 0]
    np.testing.assert_array_equal(firsts, np.arange(1, len(firsts) + 1))


# ---------------------------------------------------------------- invariants


@pytest.mark.parametrize("method", ALL)
def test_label_invariants_on_every_photo(method, small_photos):
    for img in small_photos:
        labels = segment(img, method)
        check_labels(labels, img.shape[:2], edges_allowed=method == "edge")
        assert labels.max() >= 2, f"{method} found a single segment in a photo"


def test_only_edge_method_marks_edges(photo):
    labels = segment(photo, "edge")
    assert (labels == 0).any() and (labels > 0).any()


def test_edge_separates_an_obvious_object():
    img = np.full((80, 100, 3), (40, 160, 40), np.uint8)
    cv2.rectangle(img, (30, 20), (70, 60), (30, 30, 220), -1)
    labels = segment(img, "edge")
    check_labels(labels, img.shape[:2], edges_allowed=True)
    inside, outside = labels[40, 50], labels[5, 5]
    assert inside > 0 and outside > 0 and inside != outside
    # The boundary of the square is edge pixels.
    assert (labels[20, 30:71] == 0).any() and (labels[19:22, 50] == 0).any()


@pytest.mark.parametrize("method", ALL)
def test_path_and_non_contiguous_inputs(method, photo, tmp_path):
    path = tmp_path / "ph\u00f6to.png"  # non-ASCII on purpose
    ok, buf = cv2.imencode(".png", photo)
    buf.tofile(path)
    expected = segment(photo, method)
    np.testing.assert_array_equal(segment(path, method), expected)
    np.testing.assert_array_equal(segment(str(path), method), expected)
    flipped = photo[:, ::-1]
    assert not flipped.flags.c_contiguous
    np.testing.assert_array_equal(
        segment(flipped, method), segment(np.ascontiguousarray(flipped), method)
    )


@pytest.mark.parametrize("method", ALL)
def test_deterministic(method, photo):
    a = segment(photo, method)
    b = segment(photo, method)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", SEEDED)
def test_fixed_seed_repeats_after_other_random_work(method, photo):
    a = segment(photo, method, seed=3)
    cv2.setRNGSeed(12345)
    cv2.randu(np.empty(10), 0, 1)  # disturb OpenCV's global generator
    segment(photo, method, seed=9)
    np.testing.assert_array_equal(segment(photo, method, seed=3), a)


def test_deterministic_in_background_threads(small_photos):
    # The painter pre-segments neighbouring images in worker threads.
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(img, m) for img in small_photos[:3] for m in SEEDED]
    serial = [segment(img, m) for img, m in jobs]
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(lambda job: segment(*job), jobs))
    for a, b in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ALL)
def test_tiny_and_flat_images_do_not_crash(method):
    # OpenCV's SLIC kills the process on images smaller than a few superpixels;
    # a crash here takes the whole test run down, which is the point.
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (1, 9), (9, 1), (2, 2), (3, 3), (5, 7), (16, 16), (40, 3)]:
        for img in (
            rng.integers(0, 256, (*shape, 3), dtype=np.uint8),
            np.full((*shape, 3), 77, np.uint8),
        ):
            labels = segment(img, method)
            check_labels(labels, shape, edges_allowed=method == "edge")


def test_superpixel_variants_on_small_images_with_large_regions():
    rng = np.random.default_rng(1)
    for algorithm in ("slic", "slico", "mslic"):
        for shape in [(20, 20), (60, 45), (130, 118)]:
            img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
            labels = segment(img, "superpixel", algorithm=algorithm, region_size=200)
            check_labels(labels, shape)


# ---------------------------------------------------------------- parameter effects


def n_segments(labels):
    return int(labels.max())


@pytest.mark.parametrize(
    "method,fewer,more",
    [
        ("kmeans", {"k": 3}, {"k": 12}),
        ("slickmeans", {"k": 3}, {"k": 12}),
        ("superpixel", {"region_size": 30}, {"region_size": 12}),
        (
            "superpixel",
            {"region_size": 20, "algorithm": "slic"},
            {"region_size": 10, "algorithm": "slic"},
        ),
        ("felzenszwalb", {"segment_scale": 400}, {"segment_scale": 20, "min_segment_size": 10}),
        ("quickshift", {"segment_size": 6}, {"segment_size": 2}),
        ("graph", {"k": 2000}, {"k": 100, "min_segment_size": 10}),
        ("chanvese", {"number_of_bins": 2}, {"number_of_bins": 30, "min_segment_size": 5}),
        ("edge", {"edge_th": 200}, {"edge_th": 20, "morph_size": 1}),
    ],
)
def test_parameters_change_the_number_of_segments(method, fewer, more, small_photos):
    for img in small_photos[:3]:
        a, b = n_segments(segment(img, method, **fewer)), n_segments(segment(img, method, **more))
        assert a < b, (method, fewer, a, more, b)


def test_kmeans_gives_at_most_k_segments(photo):
    for k in (1, 2, 5, 9):
        assert 1 <= n_segments(segment(photo, "kmeans", k=k)) <= k
    # More clusters than pixels is not an error: every pixel is its own cluster.
    tiny = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    assert n_segments(segment(tiny, "kmeans", k=15)) == 4


def test_color_importance_zero_clusters_by_position_only(photo):
    labels = segment(photo, "kmeans", k=4, color_importance=0)
    # Without colour, clusters are position cells: other photos with the same
    # size get the same partition.
    other = np.ascontiguousarray(photo[::-1, ::-1])
    assert (relabel(segment(other, "kmeans", k=4, color_importance=0)) == labels).mean() > 0.95


def test_edge_threshold_is_monotonic(photo):
    counts = [int((segment(photo, "edge", edge_th=t) == 0).sum()) for t in (10, 40, 80, 160)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


def test_slickmeans_segments_are_unions_of_superpixels(photo):
    sp = segment(photo, "superpixel", region_size=15)
    sk = segment(photo, "slickmeans", region_size=15, k=5)
    for s in np.unique(sp):
        assert len(np.unique(sk[sp == s])) == 1


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "method,params,error,match",
    [
        (
            "kmeans",
            {"kk": 3},
            ValueError,
            r"kmeans: unknown parameter 'kk'; its parameters are k, ",
        ),
        ("kmeans", {"k": 0}, ValueError, r"kmeans: parameter 'k' must be an integer >= 1, got 0"),
        ("kmeans", {"k": 2.5}, TypeError, r"parameter 'k' must be an integer"),
        ("kmeans", {"k": "8"}, TypeError, r"parameter 'k' must be an integer >= 1, got str"),
        ("kmeans", {"k": True}, TypeError, r"parameter 'k'"),
        (
            "kmeans",
            {"color_importance": -1},
            ValueError,
            r"'color_importance' must be a number >= 0",
        ),
        ("kmeans", {"seed": -1}, ValueError, r"'seed'"),
        (
            "edge",
            {"templateWindowSize": 8},
            ValueError,
            r"'templateWindowSize' must be an odd integer",
        ),
        ("edge", {"edge_th": float("nan")}, ValueError, r"'edge_th'"),
        ("edge", {"sigmaColor": 0}, ValueError, r"'sigmaColor' must be a number > 0"),
        ("superpixel", {"region_size": 1}, ValueError, r"'region_size' must be an integer >= 2"),
        (
            "superpixel",
            {"algorithm": "seeds"},
            ValueError,
            r"'algorithm' must be one of 'slic', 'slico', 'mslic'",
        ),
        ("chanvese", {"number_of_bins": 0}, ValueError, r"'number_of_bins'"),
        (
            "quickshift",
            {"color_weight": 1.5},
            ValueError,
            r"'color_weight' must be a number in \[0, 1\]",
        ),
        ("felzenszwalb", {"segment_scale": 0}, ValueError, r"'segment_scale'"),
        ("graph", {"min_segment_size": -5}, ValueError, r"'min_segment_size'"),
    ],
)
def test_bad_parameters(method, params, error, match, photo):
    with pytest.raises(error, match=match):
        segment(photo, method, **params)
    with pytest.raises(error, match=match):
        check_params(method, **params)


def test_parameters_are_checked_before_the_image():
    with pytest.raises(ValueError, match="unknown parameter"):
        segment("/no/such/file.png", "graph", kk=1)


def test_unknown_and_interactive_methods(photo):
    with pytest.raises(ValueError, match=r"unknown method 'watershed'; expected one of: edge, "):
        segment(photo, "watershed")
    with pytest.raises(ValueError, match="GrabCutSession"):
        segment(photo, "grabcut")
    with pytest.raises(ValueError, match=r"SamSession\(\.\.\.\)\.automatic"):
        segment(photo, "SAM")
    with pytest.raises(TypeError, match="method must be a string"):
        segment(photo, 3)
    assert np.array_equal(segment(photo, "GRAPH"), segment(photo, "graph"))


@pytest.mark.parametrize(
    "image,error,match",
    [
        (np.zeros((0, 0, 3), np.uint8), ValueError, r"image is empty: shape \(0, 0, 3\)"),
        (np.zeros((5, 0, 3), np.uint8), ValueError, "image is empty"),
        (np.zeros((8, 8), np.uint8), ValueError, r"grayscale shape \(8, 8\).*COLOR_GRAY2BGR"),
        (np.zeros((8, 8, 1), np.uint8), ValueError, "COLOR_GRAY2BGR"),
        (np.zeros((8, 8, 4), np.uint8), ValueError, r"4 channels.*COLOR_BGRA2BGR"),
        (np.zeros((8, 8, 2), np.uint8), ValueError, r"shape \(h, w, 3\), got \(8, 8, 2\)"),
        (np.zeros((2, 8, 8, 3), np.uint8), ValueError, r"got \(2, 8, 8, 3\)"),
        (np.zeros((8, 8, 3), np.float32), TypeError, "dtype uint8, got float32"),
        ([[[0, 0, 0]]], TypeError, "got list"),
        (None, TypeError, "got NoneType"),
    ],
)
def test_bad_images(image, error, match):
    with pytest.raises(error, match=match):
        segment(image, "graph")


def test_bad_image_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="image file does not exist"):
        segment(tmp_path / "missing.png", "graph")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read .* as an image"):
        segment(tmp_path / "notes.png", "graph")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="cannot read"):
        segment(tmp_path / "empty.png", "graph")


def test_grayscale_and_alpha_files_are_read_as_bgr(photo, tmp_path):
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA))
    np.testing.assert_array_equal(
        segment(tmp_path / "g.png", "graph"),
        segment(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), "graph"),
    )
    np.testing.assert_array_equal(segment(tmp_path / "a.png", "graph"), segment(photo, "graph"))


# ---------------------------------------------------------------- defaults and helpers


def test_defaults_are_the_original_tools():
    assert METHODS["edge"]["edge_th"] == 60
    assert (METHODS["edge"]["d"], METHODS["edge"]["sigmaColor"], METHODS["edge"]["sigmaSpace"]) == (
        7,
        100,
        100,
    )
    e = METHODS["edge"]
    assert (e["templateWindowSize"], e["searchWindowSize"], e["h"], e["hColor"]) == (7, 21, 10, 10)
    assert METHODS["superpixel"]["algorithm"] == "mslic"
    assert (METHODS["superpixel"]["region_size"], METHODS["superpixel"]["ruler"]) == (40, 30)
    assert (METHODS["kmeans"]["k"], METHODS["kmeans"]["color_importance"]) == (15, 5)
    assert METHODS["chanvese"]["number_of_bins"] == 20
    f = METHODS["felzenszwalb"]
    assert (f["segment_scale"], f["sigma"], f["min_segment_size"]) == (100, 0.5, 100)
    assert METHODS["quickshift"]["color_weight"] == 0.5
    assert set(METHODS["graph"]) == {"k", "sigma", "min_segment_size"}
    with pytest.raises(TypeError):
        METHODS["kmeans"]["k"] = 3  # read-only


def test_check_params_merges_defaults():
    p = check_params("KMeans", k=4)
    assert p == {**METHODS["kmeans"], "k": 4}
    assert isinstance(check_params("edge", d=7.0)["d"], int)


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        np.int64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12), elements=st.integers(0, 6)
    )
)
def test_relabel_keeps_partition_and_edges(labels):
    out = relabel(labels)
    assert out.dtype == np.int32 and out.shape == labels.shape
    np.testing.assert_array_equal(out == 0, labels == 0)
    # Same partition: a one-to-one map between old and new ids.
    pairs = set(zip(labels.ravel().tolist(), out.ravel().tolist(), strict=True))
    assert len({a for a, _ in pairs}) == len(pairs) == len({b for _, b in pairs})
    check_labels(out, labels.shape, edges_allowed=True)


# ---------------------------------------------------------------- preview


def test_preview_layout_and_file(photo, tmp_path):
    methods = ["graph", "kmeans", "edge"]
    out = tmp_path / "preview.png"
    pic = preview(photo, methods=methods, columns=2, timings=False, out=out)
    h, w = photo.shape[:2]
    assert pic.dtype == np.uint8 and pic.ndim == 3 and pic.shape[2] == 3
    assert pic.shape[1] == 2 * w
    cell_h = pic.shape[0] // 2
    assert cell_h > h  # tile plus caption bar
    # The empty fourth cell stays black; the caption bars hold text.
    assert not pic[cell_h:, w:].any()
    assert pic[: cell_h - h, :w].any()
    np.testing.assert_array_equal(cv2.imread(str(out)), pic)
    # Without timings the picture is reproducible.
    np.testing.assert_array_equal(preview(photo, methods=methods, columns=2, timings=False), pic)


def test_preview_tile_shows_segments(photo):
    labels = segment(photo, "graph")
    tile = render(photo, labels)
    pic = preview(photo, methods=["graph"], timings=False)
    np.testing.assert_array_equal(pic[-photo.shape[0] :], tile)


def test_preview_every_method_and_tile_width(photo):
    pic = preview(photo, tile_width=64, columns=4)
    assert pic.shape[1] == 4 * 64
    assert pic.shape[0] > 2 * round(photo.shape[0] * 64 / photo.shape[1])


def test_preview_per_method_parameters(photo):
    few = preview(photo, methods="kmeans", kmeans={"k": 2}, timings=False)
    many = preview(photo, methods="kmeans", kmeans={"k": 9}, timings=False)
    assert not np.array_equal(few, many)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"methods": ["kmeans"], "graph": {"k": 5}}, ValueError, "not in methods"),
        ({"kmeans": {"kk": 1}}, ValueError, "unknown parameter 'kk'"),
        ({"kmeans": 3}, TypeError, "kmeans must be a dict"),
        ({"methods": ["nope"]}, ValueError, "unknown method"),
        ({"methods": []}, ValueError, "at least one"),
        ({"columns": 0}, ValueError, "columns"),
        ({"tile_width": 2}, ValueError, "tile_width"),
    ],
)
def test_preview_errors(photo, kwargs, error, match):
    with pytest.raises(error, match=match):
        preview(photo, **kwargs)


def test_show_needs_a_screen(photo, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert not has_screen()
    assert show(photo) is False  # no window, no abort
    monkeypatch.setenv("DISPLAY", ":99")
    assert has_screen()
