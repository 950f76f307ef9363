"""k-nearest-neighbour graphs of embeddings: exact, or approximate (HNSW) when large.

The exact graph is scikit-learn's ``NearestNeighbors``: in embedding
dimensions it computes all n^2 distances (in blocks, so memory stays
linear). The approximate graph is a hierarchical navigable small-world
index (HNSW, Malkov & Yashunin 2016) from faiss, the optional extra
``icas[ann]`` (``faiss-cpu``), imported on first use; its time grows about
as n log n.

``method="auto"`` takes the approximate graph only from :data:`ANN_MIN_POINTS`
points on and only when faiss is installed (otherwise the exact one, said
at debug level).

Determinism: the exact graph is a function of the data. The HNSW graph
depends on the level drawn for each point, which is seeded with ``seed``,
and on the order of insertions, which is fixed only when the index is built
by one thread: so it is always built by one thread (faiss adds points in
parallel under per-node locks, which makes the links depend on timing), and
only the queries, independent of each other, run on ``n_threads``. The
same data, ``k`` and ``seed`` then give the same graph, whatever
``n_threads``.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse

log = logging.getLogger("icas")

METHODS = ("auto", "exact", "ann")

#: From this many points on, ``method="auto"`` uses HNSW (when faiss is
#: installed). Measured here (2 shared cores; 64-d float32 blobs scaled to
#: unit length, 10 to 80 clusters; k = 10; one-thread HNSW build plus queries
#: on 2 threads, against scikit-learn's brute force): HNSW took 0.87x the
#: exact time at 5,000 points, 0.63x at 10,000, 0.45x at 20,000 and 0.28x at
#: 40,000 (recall 0.99 to 0.98); the two are even near 5,000 and exact is
#: exact, hence the margin. benchmarks/test_bench_dl_neighbors.py has 100,000.
ANN_MIN_POINTS = 10_000

#: HNSW links per point, and the candidate lists while building / querying
#: (the query list is at least ``2 (k + 1)``). With M 24, efConstruction 60,
#: efSearch 40 the recall rose to 0.997 for 1.5x the time; 0.98 is plenty for
#: an affinity graph. tests/test_dl_neighbors.py checks a floor.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 32

ANN_HINT = 'pip install "icas[ann]"  (faiss-cpu)'


def require_faiss():
    """Return the ``faiss`` module, or raise ImportError naming ``icas[ann]``."""
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(
            f"the approximate nearest-neighbour graph needs faiss, which is not installed: "
            f"{ANN_HINT}"
        ) from exc
    return faiss


def ann_available() -> bool:
    """Whether faiss (the extra ``icas[ann]``) can be imported."""
    try:
        require_faiss()
    except ImportError:
        return False
    return True


def resolve_method(method: str, n: int) -> str:
    """``"exact"`` or ``"ann"``: what ``method`` means for ``n`` points.

    Raises ValueError for an unknown method and ImportError (naming
    ``icas[ann]``) for ``"ann"`` without faiss.
    """
    if method not in METHODS:
        raise ValueError(f"neighbors must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "ann":
        require_faiss()
        return "ann"
    if method == "exact" or n < ANN_MIN_POINTS:
        return "exact"
    if not ann_available():
        log.debug("%d points: exact nearest neighbours (faiss not installed: %s)", n, ANN_HINT)
        return "exact"
    return "ann"


def _drop_self(ind: np.ndarray, dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Of k + 1 neighbours per row, drop the point itself (or, when it is
    missing, e.g. behind duplicates or missed by HNSW, the farthest)."""
    n = len(ind)
    is_self = ind == np.arange(n)[:, None]
    drop = is_self & (np.cumsum(is_self, axis=1) == 1)  # the first self only
    none = ~drop.any(axis=1)
    drop[none, -1] = True
    keep = ~drop
    return ind[keep].reshape(n, k), dist[keep].reshape(n, k)


def _exact(X: np.ndarray, k: int, n_threads: int | None):
    from sklearn.neighbors import NearestNeighbors

    jobs = None if n_threads is None else n_threads
    dist, ind = NearestNeighbors(n_neighbors=k + 1, n_jobs=jobs).fit(X).kneighbors(X)
    return ind.astype(np.int64, copy=False), dist.astype(np.float64, copy=False)


def _hnsw(X: np.ndarray, k: int, seed: int, n_threads: int | None):
    faiss = require_faiss()
    data = np.ascontiguousarray(X, dtype=np.float32)
    index = faiss.IndexHNSWFlat(data.shape[1], HNSW_M)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.rng = faiss.RandomGenerator(int(seed))  # the level of each point
    index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * (k + 1))
    before = faiss.omp_get_max_threads()
    try:
        # faiss has only a process-wide thread count; set it around the calls.
        faiss.omp_set_num_threads(1)
        index.add(data)
        if n_threads is not None:
            faiss.omp_set_num_threads(n_threads)
        else:
            faiss.omp_set_num_threads(before)
        d2, ind = index.search(data, k + 1)
    finally:
        faiss.omp_set_num_threads(before)
    # Fewer than k + 1 found (tiny or degenerate data) shows as -1: fill from the exact graph.
    missing = (ind < 0).any(axis=1)
    if missing.any():
        ei, ed = _exact(X, k, n_threads)
        ind[missing], d2[missing] = ei[missing], ed[missing] ** 2
    dist = np.sqrt(np.maximum(d2.astype(np.float64), 0.0))
    # Equal distances from float32 queries may come in any order: sort each
    # row by (distance, index) so the graph does not depend on it.
    order = np.lexsort((ind, dist), axis=1)
    return (
        np.take_along_axis(ind, order, axis=1).astype(np.int64),
        np.take_along_axis(dist, order, axis=1),
    )


def knn_graph(
    X, k: int, *, method: str = "auto", seed: int = 0, n_threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of every point (itself excluded).

    Parameters
    ----------
    X : array (n, d)
        Points; Euclidean distance. Needs n >= 2.
    k : int
        Neighbours per point, ``1 <= k``; at most ``n - 1`` are returned.
    method : {"auto", "exact", "ann"}, default "auto"
        ``"exact"``: scikit-learn (all pairs). ``"ann"``: HNSW from faiss
        (extra ``icas[ann]``; ImportError naming it without). ``"auto"``:
        HNSW from :data:`ANN_MIN_POINTS` points on when faiss is installed,
        else exact.
    seed : int, default 0
        Seeds the HNSW levels (see the module docstring on determinism).
    n_threads : int, optional
        Threads of the queries (the HNSW build uses one). None: the
        libraries' defaults (``OMP_NUM_THREADS``); -1: all cores.

    Returns
    -------
    indices : ndarray (n, min(k, n - 1)) int64
        Neighbours of each point, nearest first.
    distances : ndarray (n, min(k, n - 1)) float64
        Their Euclidean distances, ascending along each row.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d array (n, d), got shape {X.shape}")
    n = len(X)
    if n < 2:
        raise ValueError(f"a neighbour graph needs at least 2 points, got {n}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if n_threads is not None and (n_threads == 0 or n_threads < -1):
        raise ValueError(f"n_threads must be >= 1, -1 or None, got {n_threads!r}")
    k = min(int(k), n - 1)
    how = resolve_method(method, n)
    if how == "ann":
        import os

        threads = (os.cpu_count() or 1) if n_threads == -1 else n_threads
        ind, dist = _hnsw(X, k, seed, threads)
    else:
        ind, dist = _exact(X, k, n_threads)
    return _drop_self(ind, dist, k)


def _representatives(X: np.ndarray, labels: np.ndarray, m: int) -> np.ndarray:
    """For each of the m components, the member nearest the component's mean."""
    n = len(X)
    member = sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(m, n))
    centres = (member @ X) / np.asarray(member.sum(axis=1))
    d2 = ((X - centres[labels]) ** 2).sum(axis=1)
    order = np.lexsort((np.arange(n), d2, labels))
    first = np.r_[True, labels[order][1:] != labels[order][:-1]]
    return order[first]


def connectivity_graph(
    X, k: int, *, method: str = "auto", seed: int = 0, n_threads: int | None = None
) -> sparse.csr_matrix:
    """A connected, symmetric k-nearest-neighbour graph of the points.

    Parameters
    ----------
    X : array (n, d)
        Needs n >= 2.
    k, method, seed, n_threads
        As for :func:`knn_graph`.

    Returns
    -------
    G : scipy.sparse.csr_matrix (n, n) float64
        1 where two points are neighbours (either way). When the neighbour
        graph falls apart (well separated groups), each part is bridged to
        the parts whose central members (the member nearest the part's mean)
        are nearest, until one part remains: so constrained agglomeration can
        still join the parts, and nothing costs more than O(n k) memory
        (scikit-learn's own repair computes distances between whole parts).
    """
    from scipy.sparse.csgraph import connected_components

    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    ind, _ = knn_graph(X, k, method=method, seed=seed, n_threads=n_threads)
    rows = [np.repeat(np.arange(n), ind.shape[1])]
    cols = [ind.ravel()]
    while True:
        G = sparse.csr_matrix(
            (np.ones(sum(map(len, rows))), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, n),
        )
        m, labels = connected_components(G, directed=False)
        if m == 1:
            break
        reps = _representatives(X, labels, m)
        # Each part links to its nearest parts: the count at least halves per round.
        near, _ = knn_graph(X[reps], min(3, m - 1), method="exact")
        rows.append(np.repeat(reps, near.shape[1]))
        cols.append(reps[near.ravel()])
    G = G.maximum(G.T).tocsr()
    G.data[:] = 1.0
    return G
