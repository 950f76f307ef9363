"""The C++ LANCZOS resize against Pillow's own, pixel for pixel."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import imagehash
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from icas import _core
from icas._phash import lanczos_resize, phash_bits

SIDES = (8, 32, 64, 256, 1024)


def pillow(pixels: np.ndarray, size) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels, "L").resize(size, Image.Resampling.LANCZOS))


def check(pixels: np.ndarray, size) -> None:
    ours = lanczos_resize(pixels, size)
    assert ours.dtype == np.uint8 and ours.shape == (size[1], size[0])
    np.testing.assert_array_equal(ours, pillow(pixels, size), err_msg=f"{pixels.shape} -> {size}")


@pytest.fixture(scope="module")
def gray_photos(photos) -> list[np.ndarray]:
    """The photos as Pillow converts them to L (imagehash's input)."""
    return [np.asarray(Image.fromarray(p).convert("L")) for p in photos]


def test_photos_to_square_sides(gray_photos):
    for px, n in itertools.product(gray_photos, SIDES):
        check(px, (n, n))


def test_photos_odd_sizes_and_crops(gray_photos):
    rng = np.random.default_rng(5)
    for k, px in enumerate(gray_photos):
        h, w = px.shape
        y, x = rng.integers(0, 60, 2)
        crop = px[y : y + 101 + 37 * k, x : x + 233 - 11 * k]  # a view: copied to C order
        for size in (
            (31, 47),
            (333, 77),
            (crop.shape[1] + 1, crop.shape[0]),
            (w // 3, h * 2),
            (1, 9),
            (9, 1),
        ):
            check(crop, size)


@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 37), (37, 1), (3, 5), (17, 33), (255, 257), (600, 40)]
)
def test_random_shapes_up_and_down(shape):
    rng = np.random.default_rng(sum(shape))
    px = rng.integers(0, 256, shape, dtype=np.uint8)
    for n in SIDES:
        check(px, (n, n))
    h, w = shape
    for size in (
        (1, 1),
        (1, 50),
        (50, 1),
        (w, h + 3),
        (w + 3, h),
        (w, h),
        (2 * w + 1, max(1, h // 2)),
    ):
        check(px, size)


def test_clipping_and_constant_images():
    """Hard edges ring past 0 and 255: the rounding clips them like Pillow."""
    checker = (np.indices((40, 40)).sum(axis=0) % 2 * 255).astype(np.uint8)
    bars = np.repeat(np.tile(np.array([0, 255], np.uint8), 8), 5)[None, :].repeat(9, axis=0)
    for px in (checker, bars, np.full((13, 29), 255, np.uint8), np.zeros((29, 13), np.uint8)):
        for size in ((7, 5), (64, 64), (101, 3), (3, 101)):
            check(px, size)
    out = lanczos_resize(checker, (97, 97))
    assert out.min() == 0 and out.max() == 255  # the clip was exercised


def test_large_reductions():
    """Wide filters (many taps per output) and heavy one-axis reductions."""
    rng = np.random.default_rng(9)
    px = rng.integers(0, 256, (1200, 900), dtype=np.uint8)
    for size in ((7, 5), (32, 32), (900, 11), (13, 1200), (450, 1000)):
        check(px, size)


def order_differs(px, size) -> bool:
    """Whether resizing horizontally or vertically first gives other pixels
    here (each single-axis resize is itself Pillow's, see the other tests)."""
    w, h = size
    ih, iw = px.shape
    h_first = lanczos_resize(lanczos_resize(px, (w, ih)), (w, h))
    v_first = lanczos_resize(lanczos_resize(px, (iw, h)), (w, h))
    return not np.array_equal(h_first, v_first)


def test_order_of_passes_rule():
    """Pillow 13 resizes vertically first when the height shrinks by more than
    twice as many pixels as the width (older versions always horizontally
    first): both sides of that boundary, against the installed Pillow."""
    rng = np.random.default_rng(2)
    px = rng.integers(0, 256, (90, 70), dtype=np.uint8)
    sizes = []
    for dw in (-20, -1, 0, 5, 10):
        for dh_extra in (-1, 0, 1):
            dh = 2 * dw + dh_extra
            if 0 < 70 - dw and 0 < 90 - dh and (dw, dh) != (0, 0):
                sizes.append((70 - dw, 90 - dh))
    for size in sizes:
        check(px, size)
    # the boundary cases do depend on the order, so the test can catch a wrong rule
    assert order_differs(px, (60, 70)) and order_differs(px, (60, 69))


def test_order_of_passes_before_pillow_13():
    """The order of Pillow 10 to 12, always horizontal first, on the sizes
    where Pillow 13 goes vertically first."""
    rng = np.random.default_rng(4)
    px = rng.integers(0, 256, (90, 70), dtype=np.uint8)
    for w, h in ((60, 69), (80, 40), (71, 85), (40, 20)):
        assert order_differs(px, (w, h))  # else this test could not fail
        h_first = _core.resize_lanczos(_core.resize_lanczos(px, 90, w), h, w)
        np.testing.assert_array_equal(_core.resize_lanczos(px, h, w, False), h_first)
        v_first = _core.resize_lanczos(_core.resize_lanczos(px, h, 70), h, w)
        np.testing.assert_array_equal(_core.resize_lanczos(px, h, w, True), v_first)


@settings(max_examples=50, deadline=None)
@given(
    h=st.integers(1, 60),
    w=st.integers(1, 60),
    out_h=st.integers(1, 90),
    out_w=st.integers(1, 90),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_sizes_property(h, w, out_h, out_w, seed):
    px = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    check(px, (out_w, out_h))


def test_threads_and_weight_cache(gray_photos):
    """Worker threads (GIL released) and more sizes than the per-thread cache
    of weights holds give the same pixels as Pillow."""
    px = gray_photos[0]
    sizes = [(n, n) for n in (16, 48, 64, 100, 128, 200)] * 3
    expect = {s: pillow(px, s) for s in set(sizes)}
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda s: lanczos_resize(px, s), sizes))
    for s, out in zip(sizes, outs, strict=True):
        np.testing.assert_array_equal(out, expect[s], err_msg=str(s))


def test_same_size_is_a_copy():
    px = np.random.default_rng(1).integers(0, 256, (20, 30), dtype=np.uint8)
    out = lanczos_resize(px, (30, 20))
    np.testing.assert_array_equal(out, px)
    assert not np.shares_memory(out, px)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P", "CMYK", "1", "I;16", "L"])
def test_phash_bits_every_mode(photos, mode):
    """phash_bits takes any Pillow image, converted to L as imagehash does."""
    im = Image.fromarray(photos[1][::2, ::2])
    if mode == "I;16":
        im = Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 3)
        assert im.mode == "I;16"
    elif mode == "P":
        im = im.quantize(64)
    else:
        im = im.convert(mode)
    for hash_size, factor in ((8, 4), (16, 4)):
        ref = imagehash.phash(im, hash_size, factor).hash
        np.testing.assert_array_equal(phash_bits(im, hash_size, factor), ref, err_msg=mode)


def test_errors():
    px = np.zeros((4, 5), np.uint8)
    with pytest.raises(TypeError, match="pixels must have dtype uint8, got float32"):
        lanczos_resize(px.astype(np.float32), (3, 3))
    with pytest.raises(TypeError, match="pixels must be a numpy array"):
        lanczos_resize([[1, 2]], (3, 3))
    with pytest.raises(ValueError, match=r"pixels must have 2 dimensions, got shape \(4, 5, 3\)"):
        lanczos_resize(np.zeros((4, 5, 3), np.uint8), (3, 3))
    with pytest.raises(ValueError, match=r"pixels must not be empty, got shape \(0, 5\)"):
        lanczos_resize(np.zeros((0, 5), np.uint8), (3, 3))
    with pytest.raises(ValueError, match="size height must be >= 1, got 0"):
        lanczos_resize(px, (3, 0))
    with pytest.raises(TypeError, match="size width must be an int, got float"):
        lanczos_resize(px, (2.5, 3))
    with pytest.raises(TypeError, match=r"size must be a \(width, height\) pair"):
        lanczos_resize(px, 3)
    # the C++ side re-checks
    with pytest.raises(ValueError, match=r"output width must be in \[1, 16777216\], got 0"):
        _core.resize_lanczos(px, 3, 0)
    with pytest.raises(ValueError, match=r"image must have 2 dimensions, got shape \(4\)"):
        _core.resize_lanczos(np.zeros(4, np.uint8), 3, 3)
    with pytest.raises(TypeError):
        _core.resize_lanczos(px.astype(np.int16), 3, 3)  # noconvert: no hidden cast


@settings(max_examples=50, deadline=None)
@given(
    dtype=st.sampled_from([np.uint8, np.int8, np.uint16, np.float32, np.float64, np.int64]),
    ndim=st.integers(0, 4),
)
def test_boundary_dtypes_and_shapes(dtype, ndim):
    px = np.zeros((3,) * ndim, dtype=dtype)
    if dtype is not np.uint8:
        with pytest.raises(TypeError, match="pixels must have dtype uint8"):
            lanczos_resize(px, (2, 2))
    elif ndim != 2:
        with pytest.raises(ValueError, match="pixels must have 2 dimensions"):
            lanczos_resize(px, (2, 2))
    else:
        assert lanczos_resize(px, (2, 2)).shape == (2, 2)


def test_resize_into_a_kept_array():
    """`into` receives the same pixels as a fresh result, and is refused when
    its shape, type or memory is wrong."""
    rng = np.random.default_rng(3)
    px = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    into = np.full((70, 90), 7, np.uint8)
    got = _core.resize_lanczos(px, 70, 90, into=into)
    assert got is not None and np.shares_memory(got, into)
    np.testing.assert_array_equal(into, _core.resize_lanczos(px, 70, 90))
    with pytest.raises(ValueError, match="into must be"):
        _core.resize_lanczos(px, 70, 91, into=into)
    with pytest.raises(TypeError):
        _core.resize_lanczos(px, 70, 90, into=into.astype(np.int16))
    src = np.zeros(100 * 100 + 10, np.uint8)
    with pytest.raises(ValueError, match="overlap"):
        _core.resize_lanczos(
            src[:100].reshape(10, 10), 100, 100, into=src[:10000].reshape(100, 100)
        )
