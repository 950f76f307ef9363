"""Per-cluster diagnostics: the weakest link and the mean internal similarity."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from icas.cluster.threshold import sample_indices

#: Clusters larger than this get their mean similarity from this many members
#: spread evenly over the cluster (an estimate; exact up to this size).
MEAN_SAMPLE = 100


def weakest_links(edges: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """Weakest link of each cluster: the lowest similarity on its maximum
    spanning tree, i.e. the similarity at which the chain holding the
    cluster together would first break. A cluster whose weakest link sits just
    above the threshold is held by a single bridge and deserves a look.

    edges (m, 2) int64 and scores (m,) over n items; labels (n,) with -1 for
    outliers. Only pairs inside one cluster count (a guard may have split a
    chain: the pairs between its parts are not links). Returns
    {cluster label: weakest link}."""
    from icas.cluster.guards import unique_edges

    labels = np.asarray(labels)
    n = len(labels)
    out: dict[int, float] = {}
    if len(edges) == 0 or n == 0:
        return out
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    inside = (labels[edges[:, 0]] == labels[edges[:, 1]]) & (labels[edges[:, 0]] >= 0)
    edges, scores = unique_edges(edges[inside], np.asarray(scores)[inside])
    if not len(edges):
        return out
    # Maximum spanning tree = minimum spanning tree of (3 - s) > 0: scipy
    # drops zero weights, and similarities lie in [-1, 1].
    w = 3.0 - scores.astype(np.float64)
    graph = coo_matrix((w, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    tree = minimum_spanning_tree(graph).tocoo()
    for i, wt in zip(tree.row, tree.data, strict=True):
        lab = int(labels[i])
        s = 3.0 - float(wt)
        if lab not in out or s < out[lab]:
            out[lab] = s
    return out


def mean_similarities(
    labels: np.ndarray, matrix: Callable[[np.ndarray], np.ndarray], *, sample: int = MEAN_SAMPLE
) -> dict[int, float]:
    """Mean similarity over all pairs of members of each cluster, compared or
    not: a chained cluster of unrelated images has a low mean even when each
    of its links is strong.

    labels (n,) with -1 for outliers; ``matrix(idx)`` gives the (k, k)
    similarities of items idx. Clusters of more than ``sample`` members use
    ``sample`` of them, evenly spread in item order. Returns
    {cluster label: mean similarity}."""
    labels = np.asarray(labels)
    out: dict[int, float] = {}
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    cuts = np.flatnonzero(np.diff(sorted_labels)) + 1
    for members in np.split(order, cuts):
        if not len(members) or labels[members[0]] < 0 or len(members) < 2:
            continue
        idx = members[sample_indices(len(members), sample)]
        out[int(labels[members[0]])] = mean_offdiagonal(matrix(idx))
    return out


def mean_offdiagonal(m: np.ndarray) -> float:
    m = np.asarray(m, dtype=np.float64)
    k = len(m)
    if k < 2:
        return float("nan")
    return float((m.sum() - np.trace(m)) / (k * (k - 1)))
