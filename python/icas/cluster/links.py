"""Per-cluster diagnostics from the similarity graph."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree


def weakest_links(edges: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """Weakest link of each cluster: the lowest similarity on its maximum
    spanning tree, i.e. the similarity at which the chain holding the
    cluster together would first break. A cluster whose weakest link sits just
    above the threshold is held by a single bridge and deserves a look.

    edges (m, 2) int64 and scores (m,) over n items; labels (n,) with -1 for
    outliers. Returns {cluster label: weakest link}."""
    n = len(labels)
    out: dict[int, float] = {}
    if len(edges) == 0 or n == 0:
        return out
    # Maximum spanning tree = minimum spanning tree of (2 - s) > 0: scipy
    # drops zero weights, and similarities lie in [-1, 1].
    w = 2.0 - scores.astype(np.float64)
    graph = coo_matrix((w, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    tree = minimum_spanning_tree(graph).tocoo()
    for i, wt in zip(tree.row, tree.data):
        lab = int(labels[i])
        if lab < 0:
            continue
        s = 2.0 - float(wt)
        if lab not in out or s < out[lab]:
            out[lab] = s
    return out
