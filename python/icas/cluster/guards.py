"""Guards against chaining: stricter linkage and a cap on cluster size.

Single linkage (the default, the original tool's rule) puts two images in one
cluster when a chain of similar pairs joins them, so a bridge of a few weak
pairs can glue unrelated groups. Two guards split such clusters:

``linkage="complete"`` / ``"average"``
    Inside each single-linkage component (every complete- or average-linkage
    cluster lies inside one), images are clustered agglomeratively
    (``scipy.cluster.hierarchy.linkage``) on the component's similarities and
    the tree is cut at the threshold: in a complete-linkage cluster *every*
    pair is >= the threshold; in an average-linkage cluster the mean
    similarity between any two of the groups it was built from is. This
    needs all pairs of the component, so it runs on components of at most
    :data:`LINKAGE_LIMIT` images; a larger component is first cut into parts
    of at most that size by the ``max_size`` rule below.

``max_size=N``
    A cluster of more than N images is split by raising the threshold inside
    it: its weakest pairs are dropped, level by level, until every part has at
    most N images (parts that fall to one image become outliers). Each part
    stops as soon as it is small enough, so the rest of the cluster keeps the
    run's threshold. Formally: the parts are the largest subtrees of the
    cluster's dendrogram with at most N leaves, where all joins at one
    similarity level are undone together. For single linkage it works on the
    compared pairs alone (the maximum spanning tree), never on an n x n matrix.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from icas.chaining import connected_components

LINKAGES = ("single", "average", "complete")
LINKAGE_LIMIT = 5000  # images per component for average/complete (k^2/2 floats in memory)


def check_linkage(linkage: str) -> str:
    if linkage not in LINKAGES:
        raise ValueError(f"linkage must be one of {', '.join(LINKAGES)}, got {linkage!r}")
    return linkage


def check_max_size(max_size) -> int | None:
    if max_size is None:
        return None
    if isinstance(max_size, bool) or not isinstance(max_size, numbers.Integral) or max_size < 2:
        raise ValueError(f"max_cluster_size must be an integer >= 2, got {max_size!r}")
    return int(max_size)


def relabel(parts: np.ndarray) -> np.ndarray:
    """Part ids -> cluster labels 0.. in order of first appearance; parts of
    one item -> -1."""
    parts = np.asarray(parts, dtype=np.int64).reshape(-1)
    if not len(parts):
        return np.full(0, -1, dtype=np.int64)
    _, first, inverse, counts = np.unique(
        parts, return_index=True, return_inverse=True, return_counts=True
    )
    big = np.flatnonzero(counts >= 2)
    label_of = np.full(len(counts), -1, dtype=np.int64)
    label_of[big[np.argsort(first[big], kind="stable")]] = np.arange(len(big))
    return label_of[inverse]


def unique_edges(edges: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges as (i < j) pairs, each once with its highest score (sparse
    matrices would add up repeated pairs)."""
    edges = np.sort(np.asarray(edges, dtype=np.int64).reshape(-1, 2), axis=1)
    scores = np.asarray(scores)
    if len(edges) < 2:
        return edges, scores
    order = np.lexsort((-scores.astype(np.float64), edges[:, 1], edges[:, 0]))
    e, s = edges[order], scores[order]
    first = np.ones(len(e), dtype=bool)
    first[1:] = np.any(e[1:] != e[:-1], axis=1)
    return e[first], s[first]


def _single_tree(k: int, edges: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Single-linkage dendrogram (scipy's Z layout, heights = 1 - similarity)
    of k connected items from their pairs, through the maximum spanning tree."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    edges, scores = unique_edges(edges, scores)
    w = 3.0 - scores.astype(np.float64)  # > 0 for similarities in [-1, 1]
    tree = minimum_spanning_tree(coo_matrix((w, (edges[:, 0], edges[:, 1])), shape=(k, k))).tocoo()
    order = np.lexsort((tree.col, tree.row, tree.data))  # strongest first, ties stable
    parent = np.arange(2 * k - 1)
    node_of = list(range(k))  # union-find root -> dendrogram node
    size = np.ones(2 * k - 1, dtype=np.int64)
    z = np.zeros((len(order), 4))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for r, e in enumerate(order.tolist()):
        ra, rb = find(int(tree.row[e])), find(int(tree.col[e]))
        na, nb = node_of[ra], node_of[rb]
        new = k + r
        size[new] = size[na] + size[nb]
        z[r] = (min(na, nb), max(na, nb), 1.0 - (3.0 - tree.data[e]), size[new])
        parent[rb] = ra
        node_of[ra] = new
    return z


def _linkage_tree(sim: np.ndarray, method: str) -> np.ndarray:
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    d = np.clip(1.0 - sim, 0.0, None)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    return linkage(squareform(d, checks=False), method=method)


def cut_tree(
    z: np.ndarray,
    k: int,
    *,
    max_height: float = np.inf,
    max_size: int | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Parts (k,) of a dendrogram (scipy's Z layout): subtrees joined at
    height <= max_height and holding at most max_size leaves (or total leaf
    weight); a join refused for its size also refuses every join at the same
    height below it (the threshold is raised above that level)."""
    parts = np.full(k, -1, dtype=np.int64)
    if k == 1 or not len(z):
        return np.arange(k, dtype=np.int64)
    children = z[:, :2].astype(np.int64)
    heights = z[:, 2]
    if weights is None:
        counts = z[:, 3].astype(np.int64)
    else:
        node_w = np.concatenate([np.asarray(weights, dtype=np.int64), np.zeros(len(z), np.int64)])
        for r, (a, b) in enumerate(children.tolist()):
            node_w[k + r] = node_w[a] + node_w[b]
        counts = node_w[k:]
    next_part = 0
    # Roots: nodes without a parent (z may describe a forest).
    has_parent = np.zeros(k + len(z), dtype=bool)
    has_parent[children.ravel()] = True
    stack = [(int(v), max_height) for v in np.flatnonzero(~has_parent)[::-1]]
    while stack:
        node, limit = stack.pop()
        if node < k:
            parts[node] = next_part
            next_part += 1
            continue
        r = node - k
        h = heights[r]
        if h <= limit and (max_size is None or counts[r] <= max_size):
            todo = [node]  # the whole subtree is one part
            while todo:
                v = todo.pop()
                if v < k:
                    parts[v] = next_part
                else:
                    todo.extend(children[v - k].tolist())
            next_part += 1
            continue
        if h <= limit:  # too large: raise the threshold just above this level
            limit = min(limit, float(np.nextafter(h, -np.inf)))
        stack.extend((int(c), limit) for c in children[r][::-1])
    return parts


def guarded_labels(
    n: int,
    edges: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    linkage: str = "single",
    max_size: int | None = None,
    matrix: Callable[[np.ndarray], np.ndarray] | None = None,
    components: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Cluster labels (n,) int64 (0.., -1 for outliers) of n items linked by
    pairs >= threshold, with the guards of this module.

    Parameters
    ----------
    n : int
    edges : (m, 2) int64, scores : (m,) float
        The pairs >= threshold (as from the ``*_pairs`` kernels).
    threshold : float
    linkage : {"single", "average", "complete"}
    max_size : int, optional
    matrix : callable, optional
        ``matrix(idx)`` -> (len(idx), len(idx)) similarities of those items;
        needed for average and complete linkage.
    components : (n,) int64, optional
        Connected components of the edges, if already known. Items of one
        component must be connected by the given edges.
    weights : (n,) int, optional
        Size of each item for ``max_size`` (an item standing for a group of
        images that is never split); 1 each by default.

    With the defaults (single, no max size) this equals the connected
    components of the edges.
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    scores = np.asarray(scores)
    comp = connected_components(edges, n) if components is None else components
    if linkage == "single" and max_size is None:
        return relabel(comp)
    if linkage != "single" and matrix is None:
        raise ValueError(f"{linkage} linkage needs the similarities of each component")
    comp = np.asarray(comp, dtype=np.int64)
    counts = np.bincount(comp, minlength=int(comp.max(initial=-1)) + 1)
    w = None if weights is None else np.asarray(weights, dtype=np.int64)
    totals = counts if w is None else np.bincount(comp, weights=w, minlength=len(counts))
    # Only components that a guard may split are visited; the others stay whole.
    todo = np.zeros(len(counts), dtype=bool)
    if max_size is not None:
        todo |= totals > max_size
    if linkage != "single":
        todo |= counts >= 3
    todo &= counts >= 2
    parts = comp.copy()
    next_part = len(counts)
    # Members of every component, and its edges, in one pass.
    order = np.argsort(comp, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    ecomp = comp[edges[:, 0]] if len(edges) else np.empty(0, np.int64)
    eorder = np.argsort(ecomp, kind="stable")
    estarts = np.concatenate([[0], np.cumsum(np.bincount(ecomp, minlength=len(counts)))])
    for c in np.flatnonzero(todo).tolist():
        members = order[starts[c] : starts[c + 1]]
        k = len(members)
        mw = None if w is None else w[members]
        rows = eorder[estarts[c] : estarts[c + 1]]
        local = np.searchsorted(members, edges[rows])  # members are sorted
        tree = _single_tree(k, local, scores[rows])
        if linkage == "single":
            sub = cut_tree(tree, k, max_size=max_size, weights=mw)
        else:
            # Average/complete on pieces of at most LINKAGE_LIMIT images.
            pieces = (
                cut_tree(tree, k, max_size=LINKAGE_LIMIT)
                if k > LINKAGE_LIMIT
                else np.zeros(k, dtype=np.int64)
            )
            sub = np.empty(k, dtype=np.int64)
            base = 0
            for p in np.unique(pieces):
                idx = np.flatnonzero(pieces == p)
                if len(idx) == 1:
                    sub[idx] = base
                    base += 1
                    continue
                z = _linkage_tree(np.asarray(matrix(members[idx]), dtype=np.float64), linkage)
                got = cut_tree(
                    z,
                    len(idx),
                    max_height=1.0 - threshold + 1e-9,
                    max_size=max_size,
                    weights=None if mw is None else mw[idx],
                )
                sub[idx] = got + base
                base += int(got.max()) + 1
        parts[members] = sub + next_part
        next_part += int(sub.max()) + 1
    return relabel(parts)
