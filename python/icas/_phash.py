"""Perceptual hash (pHash) equal to ``imagehash.phash`` bit for bit, faster.

imagehash computes the full 2-D DCT-II of an ``N x N`` image
(``N = hash_size * highfreq_factor``, 1024 x 1024 with icas' defaults) and
keeps only its ``hash_size x hash_size`` low-frequency corner. Here only that
corner is computed, as ``D = C X C^T`` with ``C`` the ``(hash_size, N)`` rows
of the DCT-II basis (scipy's type 2, no normalisation:
``y_k = 2 sum_n x_n cos(pi k (2n + 1) / (2N))``), in float64 matrix
products (BLAS).

The basis is symmetric (``C[k, N-1-n] = (-1)^k C[k, n]``), so the image is
first folded in half along each axis: even rows of ``C`` see the sum of
mirrored pixels, odd rows their difference. The first fold is done on the
integers, exactly; it halves the work of the big product.

Bit identity: the DCT values here and scipy's differ by rounding only
(about 1e-7 on values up to 1e8). A bit can differ only where a value is
within that rounding of the median. Every hash checks that no value lies
within a strict bound of the rounding error of both computations (see
``_tolerance``) of the median; if one does (constant or mirror-symmetric
images, whose coefficients are exact ties or zeros), that image is hashed
with scipy's full DCT instead, exactly as imagehash does.

The resize before the DCT (Pillow's LANCZOS to ``N x N``, the larger cost at
``N = 1024``) is icas' own C++ resize (:func:`lanczos_resize`), equal to
Pillow's bit for bit and about ten times faster; Pillow still decodes and
converts to ``L``, so the pixels are imagehash's.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from icas import _core
from icas import _validate as _v

__all__ = ["lanczos_resize", "phash_bits", "phash_pixels"]

_EPS = float(np.finfo(np.float64).eps)

# Per-thread scratch arrays, reused from image to image: the fold of a
# 1024 x 1024 image is 4 MB of float64, and fresh arrays of that size come
# from mmap each time, whose page faults cost more than the product itself.
_scratch = threading.local()


def _scratch_array(name: str, shape: tuple, dtype) -> np.ndarray:
    a = getattr(_scratch, name, None)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = np.empty(shape, dtype=dtype)
        setattr(_scratch, name, a)
    return a


@functools.lru_cache(maxsize=16)
def _basis(hash_size: int, n: int):
    """(even rows, odd rows) of the folded basis, or the full basis for odd n."""
    k = np.arange(hash_size, dtype=np.float64)[:, None]
    i = np.arange(n, dtype=np.float64)[None, :]
    c = 2.0 * np.cos(np.pi * k * (2.0 * i + 1.0) / (2.0 * n))
    if n % 2:
        c.setflags(write=False)
        return c, None
    h = n // 2
    even = np.ascontiguousarray(c[0::2, :h])
    odd = np.ascontiguousarray(c[1::2, :h])
    even.setflags(write=False)
    odd.setflags(write=False)
    return even, odd


@functools.lru_cache(maxsize=16)
def _even_split(hash_size: int, n: int):
    """Rows 0, 4, 8... and rows 2, 6, 10... of the basis on the first N / 4
    columns (N a multiple of 4), for the twice-folded sum."""
    even, _ = _basis(hash_size, n)
    q = n // 4
    ee = np.ascontiguousarray(even[0::2, :q])
    eo = np.ascontiguousarray(even[1::2, :q])
    ee.setflags(write=False)
    eo.setflags(write=False)
    return ee, eo


def dct_lowfreq(pixels: np.ndarray, hash_size: int) -> np.ndarray:
    """The ``(hash_size, hash_size)`` corner of scipy's 2-D DCT-II of `pixels`.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``(N, N)`` uint8, ``N >= hash_size``.
    hash_size : int

    Returns
    -------
    numpy.ndarray
        ``(hash_size, hash_size)`` float64, equal to
        ``scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)[:hash_size, :hash_size]``
        up to rounding.
    """
    return _lowfreq(pixels, hash_size)[0]


def _lowfreq(pixels: np.ndarray, hash_size: int) -> tuple[np.ndarray, int]:
    """(:func:`dct_lowfreq`, sum of the pixels)."""
    n = pixels.shape[0]
    even, odd = _basis(hash_size, n)
    if odd is None:  # odd N: no fold
        x = _scratch_array("x", pixels.shape, np.float64)
        np.copyto(x, pixels)
        return even @ x @ even.T, int(pixels.sum(dtype=np.uint64))
    h = n // 2
    # Rows: fold, exact in float64 (sums of two uint8), then one product per
    # parity; the same values as an integer fold, so the same products. The
    # fold (and the pixel sum the tolerance needs) is one C++ pass. When 4
    # divides N the sum is folded once more: DCT rows 0, 4, 8... are even
    # about its middle and rows 2, 6, 10... odd, so each needs half of it.
    # Products go to kept arrays (fresh ones per image cost page faults).
    fold_diff = _scratch_array("fold_diff", (h, n), np.float64)
    if n % 4 == 0:
        q = n // 4
        ss = _scratch_array("fold_ss", (q, n), np.float64)
        sd = _scratch_array("fold_sd", (q, n), np.float64)
        total = _core.dct_row_fold4(np.ascontiguousarray(pixels), ss, sd, fold_diff)
        ee, eo = _even_split(hash_size, n)
        parts = [(slice(0, None, 4), ee, ss), (slice(2, None, 4), eo, sd)]
    else:
        fold_sum = _scratch_array("fold", (h, n), np.float64)
        total = _core.dct_row_fold(np.ascontiguousarray(pixels), fold_sum, fold_diff)
        parts = [(slice(0, None, 2), even, fold_sum)]
    parts.append((slice(1, None, 2), odd, fold_diff))
    # Columns: the same fold on the (small) row products.
    out = np.empty((hash_size, hash_size), dtype=np.float64)
    for i, (rows, basis, folded) in enumerate(parts):
        r = basis.shape[0]
        y = np.matmul(basis, folded, out=_scratch_array(f"y{i}", (r, n), np.float64))
        left, right = y[:, :h], y[:, h:][:, ::-1]
        both = _scratch_array(f"lr{i}", (2, r, h), np.float64)
        np.add(left, right, out=both[0])
        np.subtract(left, right, out=both[1])
        out[rows, 0::2] = both[0] @ even.T
        out[rows, 1::2] = both[1] @ odd.T
    return out, total


def _tolerance(pixels: np.ndarray, total: int | None = None) -> float:
    """A bound on |ours - scipy's| for any DCT value or the median.

    Worst-case rounding of a length-N dot product is about N eps sum|terms|;
    two passes, basis entries |c| <= 2, so each computation is within
    2 N eps 4 sum|x| of the exact value. A bit can differ only if a value is
    within twice the sum of both errors of the median (the median moves by at
    most the largest error). Observed differences are ~1e4 times smaller.
    """
    n = pixels.shape[0]
    if total is None:
        total = int(pixels.sum(dtype=np.uint64))
    per_computation = 2.0 * n * _EPS * 4.0 * float(total)
    return 2.0 * (2.0 * per_computation)


def _reference_lowfreq(pixels: np.ndarray, hash_size: int) -> np.ndarray:
    import scipy.fftpack

    return scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)[:hash_size, :hash_size]


def phash_pixels(pixels: np.ndarray, hash_size: int) -> tuple[np.ndarray, bool]:
    """pHash bits of an already converted and resized ``(N, N)`` uint8 image.

    Returns
    -------
    bits : numpy.ndarray
        ``(hash_size, hash_size)`` bool, ``imagehash.phash(...).hash``.
    exact : bool
        True when the value was close to the median and scipy's DCT was used.
    """
    low, total = _lowfreq(pixels, hash_size)
    med = np.median(low)
    gap = np.abs(low - med).ravel()
    # With an odd number of values the median is one of them (gap 0, and its
    # own bit is 0 either way): look at the nearest other value.
    k = gap.size % 2
    if np.partition(gap, k)[k] > _tolerance(pixels, total):
        return low > med, False
    low = _reference_lowfreq(pixels, hash_size)
    return low > np.median(low), True


@functools.lru_cache(maxsize=1)
def _pillow13_order() -> bool:
    """Whether the installed Pillow orders its resize passes as Pillow 13 does
    (vertical first when the height shrinks much more than the width)."""
    import PIL

    return int(PIL.__version__.split(".")[0]) >= 13


def lanczos_resize(pixels: np.ndarray, size, *, out: np.ndarray | None = None) -> np.ndarray:
    """Pillow's LANCZOS resize of a grayscale image, bit for bit, faster.

    Equal to ``np.asarray(Image.fromarray(pixels).resize(size,
    Image.Resampling.LANCZOS))`` (mode ``"L"``, no `box`, no `reducing_gap`)
    for the installed Pillow: Pillow 13 resizes vertically first when the
    height shrinks by more than twice as many pixels as the width, older
    versions always horizontally first, and the rounding between the passes
    makes the two orders differ. Runs without the GIL, so threads resize
    images in parallel.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``(h, w)`` uint8. A non-contiguous array is copied to C order first
        (the only conversion).
    size : (int, int)
        ``(width, height)`` of the result, as in Pillow; each at least 1.
    out : numpy.ndarray, optional
        A writeable, C-contiguous ``(height, width)`` uint8 array to write the
        result into (kept from image to image, it saves allocating one).

    Returns
    -------
    numpy.ndarray
        ``(height, width)`` uint8: `out`, or a new array (a copy when the size
        is equal, as Pillow's).
    """
    pixels = _v.array(pixels, name="pixels", dtype=np.uint8, ndim=2)
    if pixels.size == 0:
        raise ValueError(f"pixels must not be empty, got shape {_v.shape_str(pixels)}")
    try:
        w, h = size
    except (TypeError, ValueError):
        raise TypeError(f"size must be a (width, height) pair of ints, got {size!r}") from None
    for name, v in (("width", w), ("height", h)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"size {name} must be an int, got {type(v).__name__}")
        if v < 1:
            raise ValueError(f"size {name} must be >= 1, got {v}")
    return _core.resize_lanczos(pixels, int(h), int(w), _pillow13_order(), into=out)


def phash_bits(image, hash_size: int = 64, highfreq_factor: int = 16) -> np.ndarray:
    """``imagehash.phash(image, hash_size, highfreq_factor).hash``, faster.

    Parameters
    ----------
    image : PIL.Image.Image
    hash_size, highfreq_factor : int
        As in imagehash (icas defaults 64 and 16; imagehash's own are 8 and 4).

    Returns
    -------
    numpy.ndarray
        ``(hash_size, hash_size)`` bool.
    """
    n = hash_size * highfreq_factor
    # imagehash's operations on the very same pixels: Pillow's convert("L"),
    # then Pillow's LANCZOS resize, here in C++ (bit for bit), into this
    # thread's kept array.
    gray = np.asarray(image if image.mode == "L" else image.convert("L"))
    resized = lanczos_resize(gray, (n, n), out=_scratch_array("resized", (n, n), np.uint8))
    return phash_pixels(resized, hash_size)[0]


def check_params(hash_size, highfreq_factor) -> tuple[int, int]:
    for name, v, low in (("hash_size", hash_size, 2), ("highfreq_factor", highfreq_factor, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
        if v < low:
            raise ValueError(f"{name} must be >= {low}, got {v}")
    return int(hash_size), int(highfreq_factor)
