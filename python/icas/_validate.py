"""Checks at the Python/C++ boundary.

Every public kernel wrapper validates here, so the C++ side only re-checks
shapes. Errors name the argument and what was received.
"""

from __future__ import annotations

import numbers

import numpy as np


def shape_str(a: np.ndarray) -> str:
    return "(" + ", ".join(str(s) for s in a.shape) + ("," if a.ndim == 1 else "") + ")"


def threads(n_threads) -> int:
    """None -> 0 (OpenMP default, honours OMP_NUM_THREADS), -1 -> all cores, k >= 1 -> k."""
    if n_threads is None:
        return 0
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"n_threads must be an int or None, got {type(n_threads).__name__}")
    n_threads = int(n_threads)
    if n_threads == -1 or n_threads >= 1:
        return n_threads
    raise ValueError(f"n_threads must be >= 1, -1 (all cores) or None, got {n_threads}")


def threshold(value, *, name: str = "threshold", low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (low <= value <= high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def c_array(a: np.ndarray, dtype=None) -> np.ndarray:
    """a itself if it is C-contiguous and aligned (and of dtype), else a copy
    that is. (np.ascontiguousarray keeps a misaligned view, e.g. one into a
    byte buffer at an odd offset, and the kernels read whole aligned words.)"""
    return np.require(a, dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])


def array(a, *, name: str, dtype, ndim, min_items: int = 0) -> np.ndarray:
    """Check dtype and number of dimensions; return a C-contiguous array.

    The only conversion done is a copy to C order for a non-contiguous or
    misaligned input (a view, a slice); the dtype is never changed silently.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    dtype = np.dtype(dtype)
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {a.dtype}")
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if a.ndim not in ndims:
        want = " or ".join(str(d) for d in ndims)
        raise ValueError(f"{name} must have {want} dimensions, got shape {shape_str(a)}")
    if a.ndim and a.shape[0] < min_items:
        raise ValueError(f"{name} needs at least {min_items} items, got shape {shape_str(a)}")
    return c_array(a)


def groups(g, n: int) -> np.ndarray | None:
    """Optional (n,) int64 group ids: pairs inside one group are skipped."""
    if g is None:
        return None
    g = np.asarray(g)
    if g.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), got {shape_str(g)}")
    if not np.issubdtype(g.dtype, np.integer):
        raise TypeError(f"groups must be integers, got {g.dtype}")
    return c_array(g, np.int64)
