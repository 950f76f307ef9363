"""Spectral embedding of a k-nearest-neighbour graph, dimension by eigengap.

Autoencoder embeddings of one kind of image often lie on a curved, elongated
set rather than a round blob, which k-means and Gaussian mixtures split badly.
Re-embedding the points by the leading eigenvectors of their neighbour graph
(as spectral clustering does, Ng, Jordan & Weiss 2002) turns such sets into
compact groups: on autoencoder embeddings of scikit-learn's handwritten
digits it lifts the grid search with k-means from an ARI of about 0.64 to
about 0.8 (the README has the measurements).

The graph links each point to its ``n_neighbors`` nearest neighbours with
self-tuning weights ``exp(-d_ij^2 / (s_i s_j))``, ``s_i`` the distance of
point i to its 7th neighbour (Zelnik-Manor & Perona 2004), symmetrised by the
maximum; the neighbours are exact, or approximate (HNSW, the extra
``icas[ann]``) for large sets, see :mod:`icas.dl.neighbors`. The number
of eigenvectors kept is where the gap between consecutive eigenvalues of
the normalised Laplacian is largest (at least 2, at most ``max_dim``); the
rows are then L2-normalised.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

#: Above this many points the eigenvectors come from an iterative sparse solver.
DENSE_LIMIT = 3000


def _affinity(
    X: np.ndarray, n_neighbors: int, neighbors: str = "auto", random_state: int = 0
) -> sparse.csr_matrix:
    from icas.dl.neighbors import knn_graph

    n = len(X)
    ind, dist = knn_graph(X, n_neighbors, method=neighbors, seed=random_state)
    k = ind.shape[1]
    scale = dist[:, min(7, k) - 1]
    scale = np.where(scale > 0, scale, max(float(scale.max()), 1e-12))  # duplicates
    w = np.exp(-(dist**2) / (scale[:, None] * scale[ind]))
    A = sparse.csr_matrix((w.ravel(), (np.repeat(np.arange(n), k), ind.ravel())), shape=(n, n))
    return A.maximum(A.T).tocsr()


def _leading_eigenvectors(M: sparse.csr_matrix, m: int, random_state: int):
    """The m largest eigenvalues (descending) of a symmetric matrix and their vectors."""
    n = M.shape[0]
    if n <= DENSE_LIMIT:
        from scipy.linalg import eigh

        vals, vecs = eigh(M.toarray(), subset_by_index=[n - m, n - 1])
    else:
        from scipy.sparse.csgraph import connected_components
        from scipy.sparse.linalg import eigsh, lobpcg

        rng = np.random.default_rng(random_state)
        vals, vecs = eigsh(M, k=m, which="LA", v0=rng.normal(size=n), tol=1e-6)
        # A disconnected graph has eigenvalue 1 once per component. Lanczos
        # (ARPACK) can miss copies of a repeated eigenvalue; if it did, ask
        # LOBPCG, a block method that does not (and is several times slower).
        n_comp = connected_components(M, directed=False)[0]
        if int((vals > 1 - 1e-6).sum()) < min(n_comp, m):
            vals, vecs = lobpcg(M, rng.normal(size=(n, m)), largest=True, tol=1e-4, maxiter=500)
    order = np.argsort(-vals, kind="stable")
    return vals[order], vecs[:, order]


def spectral_embedding(
    X, *, n_neighbors: int = 10, max_dim: int = 20, random_state: int = 0, neighbors: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Re-embed points by the eigenvectors of their neighbour graph.

    Parameters
    ----------
    X : array (n, d)
        Needs n >= 4.
    n_neighbors : int, default 10
    max_dim : int, default 20
        Largest number of dimensions kept.
    random_state : int, default 0
        Seeds the sparse eigensolver and the HNSW levels.
    neighbors : {"auto", "exact", "ann"}, default "auto"
        How the neighbour graph is found (:func:`icas.dl.neighbors.knn_graph`).

    Returns
    -------
    U : ndarray (n, m) float64
        Rows of unit length, ``2 <= m <= max_dim`` chosen by the eigengap.
    eigenvalues : ndarray (max_dim + 1,)
        The smallest eigenvalues of the normalised Laplacian, ascending.
    """
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n < 4:
        raise ValueError(f"spectral embedding needs at least 4 points, got {n}")
    A = _affinity(X, n_neighbors, neighbors, random_state)
    d = np.asarray(A.sum(axis=1)).ravel()
    inv = sparse.diags(1.0 / np.sqrt(np.maximum(d, 1e-300)))
    M = (inv @ A @ inv).tocsr()
    m = min(max_dim + 1, n - 1)
    vals, vecs = _leading_eigenvectors(M, m, random_state)
    lam = 1.0 - vals
    gaps = np.diff(lam)
    dim = int(np.argmax(gaps[1:]) + 2) if len(gaps) > 1 else 2  # first of equal gaps
    U = vecs[:, :dim]
    norms = np.linalg.norm(U, axis=1, keepdims=True)
    return U / np.where(norms > 0, norms, 1.0), lam
