"""MinHash signature similarity (estimated Jaccard similarity of sets).

Signatures are ``(n, k)`` uint64 or uint32 arrays, one signature per row, as
``datasketch.MinHash.hashvalues`` stacked (``k = num_perm``; datasketch >= 2
stores uint32 for its default ``"affine32"`` scheme and uint64 for
``"affine64"`` and ``"legacy"``). The similarity of two signatures is the
share of equal slots, ``count / k`` computed in float64: bit for bit
``datasketch.MinHash.jaccard``. All signatures must come from the same
permutations (same seed, num_perm and scheme), as datasketch requires.
"""

from __future__ import annotations

import numpy as np

from icas import _core
from icas import _validate as v

__all__ = ["minhash_components", "minhash_cross", "minhash_matrix", "minhash_pairs"]


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


def minhash_matrix(signatures, *, n_threads=None) -> np.ndarray:
    """Similarity (share of equal slots) of every pair of signatures.

    Parameters
    ----------
    signatures : (n, k) uint64 or uint32 array
        MinHash signatures (``MinHash.hashvalues`` stacked). A non-contiguous
        array is copied once to C order (``np.ascontiguousarray``); nothing
        else is converted.
    n_threads : int, optional
        None: OpenMP default (honours ``OMP_NUM_THREADS``); -1: all cores.

    Returns
    -------
    similarity : (n, n) float64 array
        ``count / k``, equal to ``MinHash.jaccard`` (float64, exactly);
        symmetric with a diagonal of 1.
    """
    sigs = _signatures(signatures, "signatures")
    return _core.minhash_matrix(sigs, v.threads(n_threads))


def minhash_cross(a, b, *, n_threads=None) -> np.ndarray:
    """Similarity of every signature of ``a`` with every signature of ``b``.

    Parameters
    ----------
    a : (na, k) uint64 or uint32 array
    b : (nb, k) array of the same dtype
        Signatures with the same number of slots.
    n_threads : int, optional
        None: OpenMP default; -1: all cores.

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
    return _core.minhash_cross(a, b, v.threads(n_threads))


def minhash_pairs(signatures, threshold, *, groups=None, n_threads=None):
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

    Returns
    -------
    edges : (m, 2) int64 array
        Pairs ``i < j`` ordered by ``(i, j)``, the same for any thread count.
    scores : (m,) float32 array
        ``count / k`` of each pair, rounded to float32.
    """
    sigs = _signatures(signatures, "signatures")
    t = v.threshold(threshold)
    g = v.groups(groups, sigs.shape[0])
    return _core.minhash_pairs(sigs, t, g, v.threads(n_threads))


def minhash_components(signatures, threshold, *, groups=None, n_threads=None) -> np.ndarray:
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

    Returns
    -------
    labels : (n,) int64 array
        Component of each signature, numbered in order of first appearance.
    """
    sigs = _signatures(signatures, "signatures")
    t = v.threshold(threshold)
    g = v.groups(groups, sigs.shape[0])
    return _core.minhash_components(sigs, t, g, v.threads(n_threads))
