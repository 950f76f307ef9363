"""Choosing a threshold from the data (``threshold='auto'``).

Rule: take a sample of up to ``sample_size`` images (evenly spread over the
ordered file list, so the choice is deterministic), compute all pair
similarities, and for every image its best match (highest similarity to any
other image). Images with a near-duplicate have a high best match, the others a
low one, so these values split in two groups; the threshold is the Otsu split
between them (the value that maximises the between-group variance). When the
sample has no such structure (fewer than 4 images, or all best matches equal)
the method's default threshold is kept.
"""

from __future__ import annotations

import numpy as np

from icas import similarity as sim
from icas.cluster.methods import DEFAULT_THRESHOLDS, KERNELS, FeatureSet


def best_matches(fs: FeatureSet, *, n_threads=None) -> np.ndarray:
    """(n,) highest similarity of each item to any other item."""
    m = np.array(getattr(sim, KERNELS[fs.method] + "_matrix")(*fs.arrays, n_threads=n_threads),
                 dtype=np.float64)
    if fs.method == "imagehash":  # the hamming kernel returns distances
        bits = fs.arrays[0].shape[1] * 8
        m = 1.0 - m / bits
    m = np.maximum(m, m.T)  # orb is not symmetric: a link in either direction counts
    np.fill_diagonal(m, -np.inf)
    return m.max(axis=1)


def otsu(values: np.ndarray) -> float | None:
    """Split point maximising the between-class variance of sorted values;
    None when the values do not split."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    if n < 4 or v[0] == v[-1]:
        return None
    csum = np.cumsum(v)
    k = np.arange(1, n)  # split after k values
    w0, w1 = k / n, (n - k) / n
    m0 = csum[:-1] / k
    m1 = (csum[-1] - csum[:-1]) / (n - k)
    between = w0 * w1 * (m0 - m1) ** 2
    between[v[1:] == v[:-1]] = -1  # only split between distinct values
    best = int(np.argmax(between))
    return float((v[best] + v[best + 1]) / 2)


def auto_threshold(fs: FeatureSet, method: str, *, n_threads=None) -> float:
    if len(fs) < 4:
        return DEFAULT_THRESHOLDS[method]
    t = otsu(best_matches(fs, n_threads=n_threads))
    return DEFAULT_THRESHOLDS[method] if t is None else t


def sample_indices(n: int, sample_size: int = 1000) -> np.ndarray:
    if n <= sample_size:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, sample_size).round().astype(np.int64))
