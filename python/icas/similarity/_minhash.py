"""MinHash signature similarity (estimated Jaccard similarity of sets).

Signatures are ``(n, k)`` uint64 or uint32 arrays, one signature per row, as
``datasketch.MinHash.hashvalues`` stacked (``k = num_perm``; datasketch >= 2
stores uint32 for its default ``"affine32"`` scheme and uint64 for
``"affine64"`` and ``"legacy"``). The similarity of two signatures is the
share of equal slots, ``count / k`` computed in float64: bit for bit
``datasketch.MinHash.jaccard``. All signatures must come from the same
permutations (same seed, num_perm and scheme), as datasketch requires.

The threshold forms compare every pair by default, which is exact. With
``candidates="index"`` they use LSH banding instead (datasketch's
``MinHashLSH``): only pairs equal on all slots of at least one band are
compared, which is much faster for many signatures but approximate: a pair
of Jaccard similarity s is found with probability ``1 - (1 - s^r)^b``
(:func:`minhash_lsh_recall`). Found pairs have their exact scores.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np
from scipy.integrate import quad

from icas import _core, _device
from icas import _validate as v
from icas.chaining import connected_components
from icas.similarity import _candidates

__all__ = [
    "minhash_components",
    "minhash_cross",
    "minhash_lsh_params",
    "minhash_lsh_recall",
    "minhash_matrix",
    "minhash_pairs",
]


_DTYPES = (np.dtype(np.uint64), np.dtype(np.uint32))


def _signatures(sigs, name: str) -> np.ndarray:
    if isinstance(sigs, np.ndarray) and sigs.dtype not in _DTYPES:
        raise TypeError(
            f"{name} must have dtype uint64 or uint32 (MinHash.hashvalues), got {sigs.dtype}"
        )
    dtype = sigs.dtype if isinstance(sigs, np.ndarray) else np.uint64
    sigs = v.array(sigs, name=name, dtype=dtype, ndim=2)
    if sigs.shape[1] < 1:
        raise ValueError(
            f"{name} must have at least 1 slot per signature, got shape {v.shape_str(sigs)}"
        )
    return sigs


def minhash_matrix(signatures, *, n_threads=None, device=None) -> np.ndarray:
    """Similarity (share of equal slots) of every pair of signatures.

    Parameters
    ----------
    signatures : (n, k) uint64 or uint32 array
        MinHash signatures (``MinHash.hashvalues`` stacked). A non-contiguous
        array is copied once to C order (``np.ascontiguousarray``); nothing
        else is converted.
    n_threads : int, optional
        None: OpenMP default (honours ``OMP_NUM_THREADS``); -1: all cores.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    similarity : (n, n) float64 array
        ``count / k``, equal to ``MinHash.jaccard`` (float64, exactly);
        symmetric with a diagonal of 1.
    """
    sigs = _signatures(signatures, "signatures")
    if _device.on_cuda(device):
        return _device.cuda_module().minhash_matrix(sigs)
    return _core.minhash_matrix(sigs, v.threads(n_threads))


def minhash_cross(a, b, *, n_threads=None, device=None) -> np.ndarray:
    """Similarity of every signature of ``a`` with every signature of ``b``.

    Parameters
    ----------
    a : (na, k) uint64 or uint32 array
    b : (nb, k) array of the same dtype
        Signatures with the same number of slots.
    n_threads : int, optional
        None: OpenMP default; -1: all cores.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    similarity : (na, nb) float64 array
        Equal to ``MinHash.jaccard`` exactly.
    """
    a = _signatures(a, "a")
    b = _signatures(b, "b")
    if a.dtype != b.dtype:
        raise TypeError(
            "a and b must have the same dtype (the same MinHash scheme), "
            f"got {a.dtype} and {b.dtype}"
        )
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"a and b must have the same number of slots, got shapes "
            f"{v.shape_str(a)} and {v.shape_str(b)}"
        )
    if _device.on_cuda(device):
        return _device.cuda_module().minhash_cross(a, b)
    return _core.minhash_cross(a, b, v.threads(n_threads))


def minhash_pairs(
    signatures,
    threshold,
    *,
    groups=None,
    n_threads=None,
    candidates="auto",
    bands=None,
    device=None,
):
    """Pairs of signatures whose similarity is >= ``threshold``.

    The comparison is done in float64 on ``count / k``, exactly as comparing
    ``MinHash.jaccard`` with the threshold.

    Parameters
    ----------
    signatures : (n, k) uint64 or uint32 array
    threshold : float in [0, 1]
    groups : (n,) int array, optional
        Pairs whose two signatures have the same group are skipped.
    n_threads : int, optional
        None: OpenMP default; -1: all cores.
    candidates : {"auto", "all", "index"}, default "auto"
        "auto" and "all" compare every pair: exact. "index" uses LSH banding
        and is approximate: only pairs equal on all slots of one of ``b``
        bands of ``r`` slots are compared, so a pair of Jaccard similarity
        ``s`` is missed with probability ``(1 - s^r)^b`` (see
        :func:`minhash_lsh_recall`); the pairs found are exact, with exact
        scores. "auto" never chooses the approximate search.
    bands : (int, int), optional
        ``(b, r)`` for ``candidates="index"``, ``b * r <= k``; default
        :func:`minhash_lsh_params` ``(threshold, k)``, datasketch's choice.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both. The GPU compares every pair
        (``candidates`` and ``bands`` apply to the CPU).

    Returns
    -------
    edges : (m, 2) int64 array
        Pairs ``i < j`` ordered by ``(i, j)``, the same for any thread count
        (with ``candidates="index"``: those of the exact result that share a
        band).
    scores : (m,) float32 array
        ``count / k`` of each pair, rounded to float32.
    """
    sigs = _signatures(signatures, "signatures")
    t = v.threshold(threshold)
    g = v.groups(groups, sigs.shape[0])
    if _device.on_cuda(device):
        return _device.cuda_module().minhash_pairs(sigs, t, g)
    lsh = _lsh_bands(candidates, bands, t, sigs.shape[1])
    if lsh is None:
        return _core.minhash_pairs(sigs, t, g, v.threads(n_threads))
    return _core.minhash_lsh_pairs(sigs, t, *lsh, g, v.threads(n_threads))


def minhash_components(
    signatures,
    threshold,
    *,
    groups=None,
    n_threads=None,
    candidates="auto",
    bands=None,
    device=None,
) -> np.ndarray:
    """Clusters of signatures chained by pairs with similarity >= ``threshold``.

    Same labels as ``icas.connected_components(minhash_pairs(...)[0], n)``;
    memory stays O(n) at any threshold (a row keeps one edge per component
    it reaches), unlike the edge list of the pairs form.

    Parameters
    ----------
    signatures : (n, k) uint64 or uint32 array
    threshold : float in [0, 1]
    groups : (n,) int array, optional
        Pairs whose two signatures have the same group are skipped.
    n_threads : int, optional
        None: OpenMP default; -1: all cores.
    candidates : {"auto", "all", "index"}, default "auto"
        "auto" and "all" compare every pair: exact. "index" uses LSH banding
        and is approximate: only pairs equal on all slots of one of ``b``
        bands of ``r`` slots are compared, so a pair of Jaccard similarity
        ``s`` is missed with probability ``(1 - s^r)^b`` (see
        :func:`minhash_lsh_recall`); the pairs found are exact, with exact
        scores. "auto" never chooses the approximate search.
    bands : (int, int), optional
        ``(b, r)`` for ``candidates="index"``, ``b * r <= k``; default
        :func:`minhash_lsh_params` ``(threshold, k)``, datasketch's choice.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both. On the GPU: the pairs form on the
        device, then union-find on the host.

    Returns
    -------
    labels : (n,) int64 array
        Component of each signature, numbered in order of first appearance
        (with ``candidates="index"``: of the pairs that share a band).
    """
    sigs = _signatures(signatures, "signatures")
    t = v.threshold(threshold)
    g = v.groups(groups, sigs.shape[0])
    if _device.on_cuda(device):
        return connected_components(
            _device.cuda_module().minhash_pairs(sigs, t, g)[0], sigs.shape[0]
        )
    lsh = _lsh_bands(candidates, bands, t, sigs.shape[1])
    if lsh is None:
        return _core.minhash_components(sigs, t, g, v.threads(n_threads))
    return _core.minhash_lsh_components(sigs, t, *lsh, g, v.threads(n_threads))


# ---- LSH banding -------------------------------------------------------------------


def _lsh_bands(candidates, bands, threshold: float, k: int) -> tuple[int, int] | None:
    """(b, r) for the LSH search, or None to compare every pair."""
    how = _candidates.candidates(candidates)
    if how != "index":
        if bands is not None:
            raise ValueError(f"bands is only used with candidates='index', got {how!r}")
        return None
    if bands is None:
        return minhash_lsh_params(threshold, k)
    return _check_bands(bands, k)


def _check_bands(bands, k: int | None) -> tuple[int, int]:
    if (
        not isinstance(bands, (tuple, list))
        or len(bands) != 2
        or not all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in bands)
    ):
        raise TypeError(f"bands must be a pair of ints (b, r), got {bands!r}")
    b, r = int(bands[0]), int(bands[1])
    if b < 1 or r < 1 or (k is not None and b * r > k):
        limit = "" if k is None else f" and b * r <= k = {k}"
        raise ValueError(f"bands (b, r) must have b >= 1, r >= 1{limit}, got ({b}, {r})")
    return b, r


def minhash_lsh_params(threshold, num_perm, *, weights=(0.5, 0.5)) -> tuple[int, int]:
    """Bands for an LSH search at ``threshold``: datasketch's ``MinHashLSH`` rule.

    Among all ``(b, r)`` with ``b * r <= num_perm``, the one minimising
    ``weights[0] * FP + weights[1] * FN``, where FP is the integral of the
    collision probability ``1 - (1 - s^r)^b`` over ``s`` in ``[0, threshold]``
    and FN that of the miss probability over ``[threshold, 1]`` (integrated
    with ``scipy.integrate.quad``, scanned in datasketch's order, so the
    result is the ``(lsh.b, lsh.r)`` of ``MinHashLSH(threshold, num_perm,
    weights)``). Unlike datasketch, ``num_perm = 1`` and ``b = 1`` are
    allowed. Cached.

    Parameters
    ----------
    threshold : float in [0, 1]
    num_perm : int >= 1
        Slots per signature, ``k``.
    weights : (float, float), default (0.5, 0.5)
        Weights of false positives and false negatives; non-negative, sum 1.

    Returns
    -------
    bands : (int, int)
        ``(b, r)``: b bands of r slots.
    """
    t = v.threshold(threshold)
    if isinstance(num_perm, bool) or not isinstance(num_perm, numbers.Integral):
        raise TypeError(f"num_perm must be an int, got {type(num_perm).__name__}")
    if num_perm < 1:
        raise ValueError(f"num_perm must be >= 1, got {num_perm}")
    if (
        not isinstance(weights, (tuple, list))
        or len(weights) != 2
        or not all(isinstance(w, numbers.Real) and 0.0 <= w <= 1.0 for w in weights)
        or not math.isclose(weights[0] + weights[1], 1.0)
    ):
        raise ValueError(f"weights must be two numbers in [0, 1] summing to 1, got {weights!r}")
    return _optimal_bands(t, int(num_perm), float(weights[0]), float(weights[1]))


@functools.lru_cache(maxsize=256)
def _optimal_bands(threshold: float, k: int, fp_weight: float, fn_weight: float):
    def collide(s, b, r):
        return 1.0 - (1.0 - s ** float(r)) ** float(b)

    def miss(s, b, r):
        return 1.0 - collide(s, b, r)

    best, opt = float("inf"), (0, 0)
    for b in range(1, k + 1):
        for r in range(1, k // b + 1):
            fp = quad(collide, 0.0, threshold, args=(b, r))[0]
            fn = quad(miss, threshold, 1.0, args=(b, r))[0]
            error = fp * fp_weight + fn * fn_weight
            if error < best:
                best, opt = error, (b, r)
    return opt


def minhash_lsh_recall(similarity, bands):
    """Probability that an LSH search finds a pair of Jaccard ``similarity``.

    ``1 - (1 - s^r)^b``: the chance that two signatures whose slots agree
    independently with probability ``s`` share all ``r`` slots of at least
    one of ``b`` bands. It grows with ``s``, so at ``s = threshold`` it is
    the expected recall of the worst-placed pairs the search should find;
    pairs above the threshold are found more often.

    Parameters
    ----------
    similarity : float or array of float in [0, 1]
        Jaccard similarity ``s`` (e.g. the threshold).
    bands : (int, int)
        ``(b, r)``, as returned by :func:`minhash_lsh_params`.

    Returns
    -------
    recall : float or float64 array of the shape of ``similarity``
    """
    b, r = _check_bands(bands, None)
    s = np.asarray(similarity, dtype=np.float64)
    if not np.all((s >= 0.0) & (s <= 1.0)):
        raise ValueError("similarity must be in [0, 1]")
    p = 1.0 - (1.0 - s**r) ** b
    return float(p) if p.ndim == 0 else p
