"""Choosing a threshold from the data: ``threshold='auto'``, and the numbers
behind the threshold plot and picker (:mod:`icas.cluster.picker`).

Rule of ``auto``: take a sample of up to ``sample_size`` images (evenly
spread over the ordered file list, so the choice is deterministic), compute
all pair similarities, and for every image its best match (highest similarity
to any other image). Images with a near-duplicate have a high best match, the
others a low one, so these values split in two groups; the threshold is the
Otsu split between them (the midpoint between the two sorted values where the
between-group variance is largest). When the sample has no such structure
(fewer than 4 images, or all best matches equal) the method's default
threshold is kept. Images whose best match is the bottom of the similarity
range (no match at all, e.g. without a candidate pair of a verified method)
are outliers at any threshold and are left out of the split.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass

import numpy as np

from icas.cluster.methods import default_threshold, similarity_matrix, threshold_range

SAMPLE_SIZE = 1000
THRESHOLD_CHOICES = ("auto", "pick")

log = logging.getLogger("icas")


def best_matches(fs, *, n_threads=None) -> np.ndarray:
    """(n,) highest similarity of each item to any other item."""
    m = similarity_matrix(fs, n_threads=n_threads)
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


def auto_threshold(fs, method: str, *, n_threads=None) -> float:
    """The ``auto`` threshold of a sample's features (see the module docstring)."""
    return sample_similarities(fs, method, len(fs), n_threads=n_threads).auto()


def sample_indices(n: int, sample_size: int = SAMPLE_SIZE) -> np.ndarray:
    if n <= sample_size:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, sample_size).round().astype(np.int64))


@dataclass
class SampleSimilarities:
    """The similarities of all pairs of a sample, and what a threshold does to it.

    Attributes
    ----------
    method : str
    n_total : int
        Images in the whole run (the sample stands for them).
    n_sample : int
        Images in the sample.
    pairs : (n_sample * (n_sample - 1) / 2,) float64
        Similarity of every pair, sorted from most to least similar: the
        x-th value is the threshold at which x pairs are at least that similar.
    best : (n_sample,) float64
        Each image's best match, sorted ascending.
    merge_heights : (n_sample - 1,) float64
        Similarities at which single linkage joins the sample, most similar
        first (the maximum spanning tree's edges, sorted).
    clusters_after : (n_sample - 1,) int64
        Number of clusters (components of 2 or more) after each of those joins.
    """

    method: str
    n_total: int
    n_sample: int
    pairs: np.ndarray
    best: np.ndarray
    merge_heights: np.ndarray
    clusters_after: np.ndarray

    @classmethod
    def from_matrix(cls, m: np.ndarray, method: str, n_total: int) -> SampleSimilarities:
        """From the (n, n) similarity matrix of a sample."""
        from scipy.sparse.csgraph import minimum_spanning_tree

        n = len(m)
        iu = np.triu_indices(n, 1)
        pairs = np.sort(m[iu])[::-1].copy()
        off = m.astype(np.float64, copy=True)
        np.fill_diagonal(off, -np.inf)
        best = np.sort(off.max(axis=1)) if n > 1 else np.empty(0)
        # Maximum spanning tree through the minimum one of 3 - s (> 0 for
        # s in [-1, 1]; scipy treats 0 as "no edge").
        w = np.triu(3.0 - m, k=1)
        tree = minimum_spanning_tree(w).tocoo() if n > 1 else None
        if tree is None or tree.nnz == 0:
            heights = np.empty(0)
            rows = cols = np.empty(0, np.int64)
        else:
            order = np.argsort(tree.data, kind="stable")
            heights = 3.0 - tree.data[order]
            rows, cols = tree.row[order], tree.col[order]
        parent = list(range(n))
        size = [1] * n

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        clusters, counts = 0, []
        for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
            ra, rb = find(a), find(b)
            clusters += 1 - (size[ra] > 1) - (size[rb] > 1)
            parent[rb] = ra
            size[ra] += size[rb]
            counts.append(clusters)
        return cls(
            method, int(n_total), n, pairs, best, heights, np.asarray(counts, dtype=np.int64)
        )

    def pairs_at_least(self, t: float) -> int:
        """Sample pairs with similarity >= t."""
        return int(np.searchsorted(-self.pairs, -t, side="right"))

    def images_clustered(self, t: float) -> int:
        """Sample images with at least one match >= t (not outliers at t)."""
        return int(len(self.best) - np.searchsorted(self.best, t, side="left"))

    def clusters(self, t: float) -> int:
        """Clusters in the sample at threshold t (single linkage)."""
        k = int(np.searchsorted(-self.merge_heights, -t, side="right"))
        return int(self.clusters_after[k - 1]) if k else 0

    def estimate(self, t: float) -> int:
        """Approximate number of images of the whole run that would be
        clustered at t: the sample's share scaled to the run."""
        if not self.n_sample:
            return 0
        return int(round(self.images_clustered(t) * self.n_total / self.n_sample))

    def auto(self) -> float:
        """The ``auto`` threshold of this sample. Images whose best match is
        the bottom of the range (no match at all: e.g. no candidate pair of a
        verified method) are outliers at any threshold and are left out."""
        best = self.best[self.best > self.range[0]]
        t = otsu(best) if self.n_sample >= 4 else None
        return default_threshold(self.method) if t is None else t

    @property
    def range(self) -> tuple[float, float]:
        return threshold_range(self.method)


def sample_similarities(fs, method: str, n_total: int, *, n_threads=None) -> SampleSimilarities:
    """The :class:`SampleSimilarities` of a sample's features."""
    return SampleSimilarities.from_matrix(
        similarity_matrix(fs, n_threads=n_threads), method, n_total
    )


def choose(
    threshold,
    rule: str,
    files: list[str],
    read,
    method: str,
    timings: dict,
    *,
    n_threads=None,
    plot=None,
):
    """Resolve 'auto'/'pick' and write the threshold plot, from one sample.

    Parameters
    ----------
    threshold : float or str
        The checked threshold parameter; kept unless ``rule`` is auto or pick.
    rule : str
        Where the threshold came from (given, default, auto, pick).
    files : list of str
        All files of the run, in order; the sample is spread over them.
    read : callable
        ``read(paths)`` returns the :class:`~icas.cluster.methods.Extracted`
        features of the readable ones.
    method : str
        The similarity method.
    timings : dict
        Gets the sample's time under "threshold".
    n_threads : int, optional
        Threads of the similarity kernels.
    plot : path, optional
        Where to save the threshold plot (PNG).
    """
    t = time.perf_counter()
    sample = [files[i] for i in sample_indices(len(files))]
    res = read(sample)
    # The sample stands for the readable share of all files.
    readable = round(len(files) * len(res.paths) / max(1, len(sample)))
    stats = sample_similarities(res.features, method, readable, n_threads=n_threads)
    timings["threshold"] = time.perf_counter() - t
    if rule == "auto":
        threshold = stats.auto()
        log.info(
            "auto threshold for %s on %d sampled images: %.4f", method, len(res.paths), threshold
        )
    elif rule == "pick":
        from icas.cluster.picker import pick_threshold

        threshold = pick_threshold(stats)
        print(
            f"picked threshold {threshold:.4f} (pass --threshold {threshold:.4f} to repeat)",
            file=sys.stderr,
        )
    if plot is not None:
        from icas.cluster.picker import save_plot

        save_plot(stats, plot, threshold=threshold)
    return threshold
