"""The C++ steps of the feature extraction against their numpy definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from icas import _core


def strongest_reference(r: np.ndarray, k: int) -> np.ndarray:
    flat = r.ravel()
    pos = np.flatnonzero(flat > 0)
    return pos[np.argsort(-flat[pos], kind="stable")][:k]


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 40), st.integers(1, 40)),
        elements=st.sampled_from(
            [-1.0, 0.0, 0.5, 1.0, 2.0, 1e-30, float("nan"), 3.5, float("inf"), float("-inf")]
        ),
    ),
    st.integers(0, 120),
)
def test_strongest_positive_equals_a_stable_sort(r, k):
    # few distinct values: ties everywhere, zeros, negatives, infinities and
    # NaN, over several of the selection's blocks of 64 values
    np.testing.assert_array_equal(_core.strongest_positive(r, k), strongest_reference(r, k))


def test_strongest_positive_on_a_harris_response(photos):
    import cv2

    gray = cv2.cvtColor(photos[0], cv2.COLOR_RGB2GRAY).astype(np.float32)
    r = cv2.cornerHarris(gray, 2, 3, 0.04)
    for k in (1, 100, 5000, r.size):
        np.testing.assert_array_equal(_core.strongest_positive(r, k), strongest_reference(r, k))


def test_strongest_positive_errors():
    with pytest.raises(ValueError, match="k must be >= 0"):
        _core.strongest_positive(np.ones(4, np.float32), -1)
    with pytest.raises(TypeError):
        _core.strongest_positive(np.ones(4, np.float64), 2)


@pytest.mark.parametrize("n", [2, 6, 64, 256])
def test_dct_row_fold_equals_numpy(n):
    px = np.random.default_rng(n).integers(0, 256, (n, n), dtype=np.uint8)
    px[0, :] = 255  # extremes
    px[-1, : n // 2] = 0
    s = np.empty((n // 2, n))
    d = np.empty((n // 2, n))
    total = _core.dct_row_fold(px, s, d)
    top, bottom = px[: n // 2].astype(np.int64), px[n // 2 :][::-1].astype(np.int64)
    np.testing.assert_array_equal(s, top + bottom)
    np.testing.assert_array_equal(d, top - bottom)
    assert total == int(px.sum(dtype=np.uint64))


def test_dct_row_fold_errors():
    px = np.zeros((4, 4), np.uint8)
    ok = np.empty((2, 4))
    with pytest.raises(ValueError, match="square with an even side"):
        _core.dct_row_fold(np.zeros((3, 3), np.uint8), np.empty((1, 3)), np.empty((1, 3)))
    with pytest.raises(ValueError, match=r"\(n / 2, n\) float64"):
        _core.dct_row_fold(px, np.empty((4, 4)), ok)
    with pytest.raises(ValueError, match="different arrays"):
        _core.dct_row_fold(px, ok, ok)


@pytest.mark.parametrize("n", [4, 8, 64, 1024])
def test_dct_row_fold4_equals_numpy(n):
    px = np.random.default_rng(n).integers(0, 256, (n, n), dtype=np.uint8)
    px[0, :] = 255
    px[n // 2, :] = 0
    h, q = n // 2, n // 4
    ss, sd, d = np.empty((q, n)), np.empty((q, n)), np.empty((h, n))
    total = _core.dct_row_fold4(px, ss, sd, d)
    s = px[:h].astype(np.int64) + px[h:][::-1]
    np.testing.assert_array_equal(ss, s[:q] + s[q:][::-1])
    np.testing.assert_array_equal(sd, s[:q] - s[q:][::-1])
    np.testing.assert_array_equal(d, px[:h].astype(np.int64) - px[h:][::-1])
    assert total == int(px.sum(dtype=np.uint64))


def test_dct_row_fold4_errors():
    px = np.zeros((8, 8), np.uint8)
    q, d = np.empty((2, 8)), np.empty((4, 8))
    with pytest.raises(ValueError, match="multiple of 4"):
        _core.dct_row_fold4(
            np.zeros((6, 6), np.uint8), np.empty((1, 6)), np.empty((1, 6)), np.empty((3, 6))
        )
    with pytest.raises(ValueError, match=r"ss and sd must be writeable \(n / 4, n\)"):
        _core.dct_row_fold4(px, np.empty((4, 8)), q, d)
    with pytest.raises(ValueError, match=r"diff must be a writeable \(n / 2, n\)"):
        _core.dct_row_fold4(px, q, np.empty((2, 8)), np.empty((2, 8)))
    with pytest.raises(ValueError, match="different arrays"):
        _core.dct_row_fold4(px, q, q, d)


# -- Harris response (cv2.cornerHarris(float32(gray), 2, 3, 0.04)) -------------


def _opencv_rounds_like_icas():
    from icas.features import native_harris_agrees

    if not native_harris_agrees():
        pytest.skip("this OpenCV build rounds the Harris formula otherwise: icas uses cv2 here")


def _cv2_harris(gray: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cornerHarris(gray.astype(np.float32), 2, 3, 0.04)


def test_harris_response_equals_opencv_on_photos(photos):
    import cv2

    _opencv_rounds_like_icas()
    for p in photos:
        gray = cv2.cvtColor(p, cv2.COLOR_RGB2GRAY)
        for g in (gray, gray[:, :-3], gray[5:, 1:-1], np.ascontiguousarray(gray.T)):
            g = np.ascontiguousarray(g)
            got, want = _core.harris_response(g), _cv2_harris(g)
            assert got.dtype == np.float32 and got.shape == g.shape
            np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
            np.testing.assert_array_equal(
                _core.harris_strongest(g, 100), _core.strongest_positive(want, 100)
            )


@settings(max_examples=80, deadline=None)
@given(
    hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 24), st.integers(1, 24)),
        elements=st.sampled_from([0, 1, 127, 128, 254, 255]),
    )
    | hnp.arrays(np.uint8, st.tuples(st.integers(1, 24), st.integers(1, 24))),
    st.integers(0, 50),
)
def test_harris_response_equals_opencv_on_any_size(gray, k):
    # every flattened size modulo 8 (OpenCV's last values take other roundings),
    # one row, one column, extreme and flat images, equal responses
    _opencv_rounds_like_icas()
    want = _cv2_harris(gray)
    np.testing.assert_array_equal(_core.harris_response(gray).view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(
        _core.harris_strongest(gray, k), _core.strongest_positive(want, k)
    )


def test_harris_checks_its_arguments():
    with pytest.raises(ValueError, match="gray"):
        _core.harris_response(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        _core.harris_strongest(np.zeros((0, 5), np.uint8), 3)
    with pytest.raises(ValueError, match="k must be >= 0"):
        _core.harris_strongest(np.zeros((4, 4), np.uint8), -1)
    with pytest.raises(TypeError):
        _core.harris_response(np.zeros((4, 4), np.float32))


def test_corners_fall_back_to_opencv_when_the_roundings_differ(photos, monkeypatch):
    """On a build where the probe finds a difference, corner_values takes
    cv2.cornerHarris: the corners are OpenCV's either way."""
    import cv2

    from icas import features

    gray = cv2.cvtColor(photos[0], cv2.COLOR_RGB2GRAY)
    native = features.corner_values(gray)
    features.native_harris_agrees.cache_clear()
    off_by_one = lambda g: _cv2_harris(g) * np.float32(1.0000001)  # noqa: E731
    monkeypatch.setattr(features._core, "harris_response", off_by_one, raising=False)
    try:
        assert not features.native_harris_agrees()
        # (the native selection must not be used now: it would not be OpenCV's)
        monkeypatch.setattr(features._core, "harris_strongest", None, raising=False)
        assert features.corner_values(gray) == native
    finally:
        features.native_harris_agrees.cache_clear()
