"""Hamming distance between binary codes (perceptual hashes, binary descriptors).

Codes are ``(n, n_bytes)`` uint8 arrays, one code per row, bits packed with
``np.packbits`` (any bit order, as long as all codes use the same). Distances
are exact bit counts; the similarity of the threshold forms is
``1 - d / bits`` with ``bits = 8 * n_bytes``, as in ``imagehash``
(``h1 - h2`` is the distance). The popcount kernel is chosen for the CPU at
run time (AVX-512 VPOPCNTDQ, AVX2, hardware popcnt or portable code).

The threshold forms can find their pairs without comparing every pair:
``candidates="index"`` uses multi-index hashing (the codes are cut into m
substrings; a pair within distance R agrees within about R / m bits on one
of them, so only codes in nearby buckets of some substring table are
compared). The result is exactly that of the brute-force kernel;
``candidates="auto"`` (the default) uses the index when a cost model
measured on this kind of machine predicts it is faster.
"""

from __future__ import annotations

import numbers

import numpy as np

from icas import _core, _device
from icas import _validate as v
from icas.chaining import connected_components
from icas.similarity import _candidates

__all__ = [
    "hamming_components",
    "hamming_cross",
    "hamming_index_plan",
    "hamming_matrix",
    "hamming_pairs",
]

# 0: the planner decides (index or brute force); -1: the index, planned m.
_SUBSTRINGS = {"auto": 0, "index": -1}


def _codes(codes, name: str) -> np.ndarray:
    if isinstance(codes, np.ndarray) and codes.dtype != np.uint8:
        raise TypeError(
            f"{name} must have dtype uint8 (bits packed 8 per byte), got {codes.dtype}: "
            f"pack bit arrays with np.packbits({name}, axis=-1)"
        )
    codes = v.array(codes, name=name, dtype=np.uint8, ndim=2)
    if codes.shape[1] < 1:
        raise ValueError(
            f"{name} must have at least 1 byte per code, got shape {v.shape_str(codes)}"
        )
    return codes


def hamming_matrix(codes, *, n_threads=None, device=None) -> np.ndarray:
    """Bit distance between every pair of codes.

    Parameters
    ----------
    codes : (n, n_bytes) uint8 array
        Binary codes, bits packed with ``np.packbits``. A non-contiguous array
        is copied once to C order (``np.ascontiguousarray``); nothing else is
        converted.
    n_threads : int, optional
        None: OpenMP default (honours ``OMP_NUM_THREADS``); -1: all cores.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    distances : (n, n) int32 array
        Number of differing bits; symmetric with a zero diagonal.
    """
    codes = _codes(codes, "codes")
    if _device.on_cuda(device):
        return _device.cuda_module().hamming_matrix(codes)
    return _core.hamming_matrix(codes, v.threads(n_threads))


def hamming_cross(a, b, *, n_threads=None, device=None) -> np.ndarray:
    """Bit distance between every code of ``a`` and every code of ``b``.

    Parameters
    ----------
    a : (na, n_bytes) uint8 array
    b : (nb, n_bytes) uint8 array
        Binary codes of the same length (see :func:`hamming_matrix`).
    n_threads : int, optional
        None: OpenMP default; -1: all cores.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    distances : (na, nb) int32 array
    """
    a = _codes(a, "a")
    b = _codes(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"a and b must have the same number of bytes per code, got shapes "
            f"{v.shape_str(a)} and {v.shape_str(b)}"
        )
    if _device.on_cuda(device):
        return _device.cuda_module().hamming_cross(a, b)
    return _core.hamming_cross(a, b, v.threads(n_threads))


def hamming_pairs(codes, threshold, *, groups=None, n_threads=None, candidates="auto", device=None):
    """Pairs of codes whose similarity ``1 - d / bits`` is >= ``threshold``.

    The threshold is turned into the largest admissible distance exactly as
    float64 arithmetic evaluates ``1 - d / bits >= threshold``, so a pair
    exactly at the threshold is kept.

    Parameters
    ----------
    codes : (n, n_bytes) uint8 array
        Binary codes (see :func:`hamming_matrix`); ``bits = 8 * n_bytes``.
    threshold : float in [0, 1]
    groups : (n,) int array, optional
        Pairs whose two codes have the same group are skipped.
    n_threads : int, optional
        None: OpenMP default; -1: all cores.
    candidates : {"auto", "all", "index"}, default "auto"
        How pairs are found; the result is identical with each. "all"
        compares every pair. "index" uses multi-index hashing with the
        number of substrings :func:`hamming_index_plan` finds cheapest, even
        where comparing every pair would be faster. "auto" uses the index
        when the plan predicts it is faster: many codes and a distance bound
        small next to the bits (64-bit codes at threshold 0.9 from about
        1,200 codes, at 0.8 from about 3,000; 4096-bit codes at 0.95 from
        about 5,000, at 0.9 from about 25,000), else compares every pair.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both. The GPU compares every pair
        (``candidates`` applies to the CPU).

    Returns
    -------
    edges : (m, 2) int64 array
        Pairs ``i < j`` ordered by ``(i, j)``, the same for any thread count.
    scores : (m,) float32 array
        ``1 - d / bits`` of each pair.
    """
    codes = _codes(codes, "codes")
    t = v.threshold(threshold)
    g = v.groups(groups, codes.shape[0])
    if _device.on_cuda(device):
        return _device.cuda_module().hamming_pairs(codes, t, g)
    how = _candidates.candidates(candidates)
    if how == "all":
        return _core.hamming_pairs(codes, t, g, v.threads(n_threads))
    return _core.hamming_index_pairs(codes, t, g, v.threads(n_threads), _SUBSTRINGS[how])


def hamming_components(
    codes, threshold, *, groups=None, n_threads=None, candidates="auto", device=None
) -> np.ndarray:
    """Clusters of codes chained by pairs with ``1 - d / bits >= threshold``.

    Same labels as ``icas.connected_components(hamming_pairs(...)[0], n)``;
    memory stays O(n) at any threshold (a row keeps one edge per component
    it reaches), unlike the edge list of the pairs form.

    Parameters
    ----------
    codes : (n, n_bytes) uint8 array
    threshold : float in [0, 1]
    groups : (n,) int array, optional
        Pairs whose two codes have the same group are skipped.
    n_threads : int, optional
        None: OpenMP default; -1: all cores.
    candidates : {"auto", "all", "index"}, default "auto"
        How pairs are found; the result is identical with each. "all"
        compares every pair. "index" uses multi-index hashing with the
        number of substrings :func:`hamming_index_plan` finds cheapest, even
        where comparing every pair would be faster. "auto" uses the index
        when the plan predicts it is faster: many codes and a distance bound
        small next to the bits (64-bit codes at threshold 0.9 from about
        1,200 codes, at 0.8 from about 3,000; 4096-bit codes at 0.95 from
        about 5,000, at 0.9 from about 25,000), else compares every pair.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both. On the GPU: the pairs form on the
        device, then union-find on the host.

    Returns
    -------
    labels : (n,) int64 array
        Component of each code, numbered in order of first appearance.
    """
    codes = _codes(codes, "codes")
    t = v.threshold(threshold)
    g = v.groups(groups, codes.shape[0])
    if _device.on_cuda(device):
        return connected_components(
            _device.cuda_module().hamming_pairs(codes, t, g)[0], codes.shape[0]
        )
    how = _candidates.candidates(candidates)
    if how == "all":
        return _core.hamming_components(codes, t, g, v.threads(n_threads))
    return _core.hamming_index_components(codes, t, g, v.threads(n_threads), _SUBSTRINGS[how])


def hamming_index_plan(n, bits, threshold) -> dict:
    """How ``candidates="auto"`` and ``"index"`` would search n codes.

    Parameters
    ----------
    n : int
        Number of codes (>= 0).
    bits : int
        Bits per code, ``8 * n_bytes`` (>= 1).
    threshold : float in [0, 1]
        Similarity threshold; the distance bound is the largest d with
        ``1 - d / bits >= threshold`` in float64.

    Returns
    -------
    plan : dict
        ``max_distance`` (the bound R, -1 when no pair can qualify),
        ``substrings`` (m of the cheapest index), ``tables`` (substrings
        actually searched, ``min(m, R + 1)``), ``index_seconds`` and
        ``brute_seconds`` (cost-model estimates on one thread of the machine
        the model was measured on), ``use_index`` (what "auto" does).
    """
    for name, value, low in (("n", n, 0), ("bits", bits, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    t = v.threshold(threshold)
    return _core.mih_plan(int(n), int(bits), _core.hamming_max_distance(t, int(bits)))
