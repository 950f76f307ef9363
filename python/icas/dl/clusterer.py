"""Clustering embeddings over a grid of parameters, keeping the best model.

:class:`EmbeddingClusterer` fits one scikit-learn algorithm for every
combination of its grid and keeps the candidate with the highest score

    normalised silhouette - normalised Davies-Bouldin + normalised Calinski-Harabasz

where each metric is min-max normalised over the candidates being compared
(so the three weigh the same whatever their scales) and ties go to the first
candidate in grid order. The algorithm runs on prepared embeddings (by
default a spectral re-embedding, see ``reduce``); the metrics judge its
labels on the unit-length embeddings.

Noise (label -1, from DBSCAN and HDBSCAN) is handled so that a candidate
cannot win by discarding points: the silhouette is averaged over *all*
points with a noise point counting 0 (it belongs nowhere), and for
Davies-Bouldin and Calinski-Harabasz every noise point counts with the
cluster whose centre is nearest.

**One cluster or only noise.** The three metrics need at least two clusters
(and fewer clusters than clustered points); a candidate that yields one
cluster, or nothing but noise, is *degenerate*: it is kept in ``candidates_``
with NaN scores and never beats a candidate that has scores. If every
candidate is degenerate, the one leaving the fewest points as noise is used
as it is (first in grid order on ties), so a folder of one kind of image
gives one cluster and a folder with nothing alike gives only outliers;
``best_score_`` is then NaN. Candidates that cannot run (more clusters than
points) are skipped; with none left every point is noise.
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from icas.dl._deps import require_sklearn

require_sklearn()

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

log = logging.getLogger("icas")

ALGORITHMS = ("kmeans", "hierarchy", "DBSCAN", "gaussian", "HDBSCAN")

#: The grid parameters each algorithm takes.
GRID_PARAMS = {
    "kmeans": ("n_clusters", "max_iter"),
    "hierarchy": ("n_clusters",),
    "DBSCAN": ("eps", "min_samples"),
    "gaussian": ("n_clusters", "max_iter"),
    "HDBSCAN": ("min_cluster_size", "min_samples", "max_cluster_size"),
}

#: Grids used for parameters that are not given.
DEFAULT_GRID = {
    "n_clusters": tuple(range(2, 21)),
    "max_iter": (None,),  # the algorithm's own default (kmeans 300, gaussian 100)
    "eps": None,  # from the data: see _auto_eps
    "min_samples": (5,),  # HDBSCAN: None = min_cluster_size
    "min_cluster_size": (5, 10),
    "max_cluster_size": (None,),  # no limit
}

#: Quantiles of the distance to the min_samples-th neighbour tried as eps.
EPS_QUANTILES = (0.3, 0.5, 0.7, 0.9)

#: How embeddings are prepared before clustering (see EmbeddingClusterer).
REDUCTIONS = ("spectral", "l2", "none")

#: With fewer points than this, ``reduce="spectral"`` falls back to ``"l2"``.
SPECTRAL_MIN_POINTS = 20

#: From this many points on, ``hierarchy`` merges only neighbours (a
#: connected k-nearest-neighbour graph, :data:`CONNECTIVITY_NEIGHBORS` per
#: point): memory O(n k) instead of the n^2 / 2 distances of the full Ward
#: tree (400 MB at 10,000 points, 40 GB at 100,000).
HIERARCHY_DENSE_LIMIT = 5000
CONNECTIVITY_NEIGHBORS = 10

NEIGHBORS = ("auto", "exact", "ann")


def check_algorithm(algorithm: str) -> str:
    """The canonical name of ``algorithm`` (case-insensitive), or ValueError."""
    for name in ALGORITHMS:
        if isinstance(algorithm, str) and algorithm.lower() == name.lower():
            return name
    raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")


@dataclass
class Candidate:
    """One fitted model of the grid and its scores (NaN when undefined)."""

    params: dict
    n_clusters: int = 0
    n_noise: int = 0
    silhouette: float = math.nan
    davies_bouldin: float = math.nan
    calinski_harabasz: float = math.nan
    score: float = math.nan
    note: str = ""
    labels: np.ndarray | None = field(default=None, repr=False)

    @property
    def degenerate(self) -> bool:
        return math.isnan(self.silhouette)


def _as_grid(name: str, value, *, integer: bool, low: float, allow_none: bool = False):
    """A tuple of values for one grid parameter; a scalar is a grid of one."""
    values = (value,) if value is None or isinstance(value, (numbers.Number, str)) else tuple(value)
    if not values:
        raise ValueError(f"{name}: give at least one value")
    out = []
    for v in values:
        if v is None and allow_none:
            out.append(None)
            continue
        ok = isinstance(v, numbers.Integral) if integer else isinstance(v, numbers.Real)
        if isinstance(v, bool) or not ok or not math.isfinite(float(v)) or v < low:
            kind = "integers" if integer else "numbers"
            raise ValueError(f"{name} must be {kind} >= {low}, got {v!r}")
        out.append(int(v) if integer else float(v))
    return tuple(dict.fromkeys(out))  # without repeats, in order


def relabel(labels: np.ndarray, *, min_size: int = 1) -> np.ndarray:
    """Labels renumbered 0, 1, ... in order of first appearance; clusters
    smaller than ``min_size`` and noise become -1."""
    labels = np.asarray(labels)
    out = np.full(len(labels), -1, dtype=np.int64)
    counts: dict[int, int] = {}
    for lab in labels.tolist():
        if lab >= 0:
            counts[lab] = counts.get(lab, 0) + 1
    seen: dict[int, int] = {}
    for i, lab in enumerate(labels.tolist()):
        if lab >= 0 and counts[lab] >= min_size:
            out[i] = seen.setdefault(lab, len(seen))
    return out


def scores(
    X: np.ndarray, labels: np.ndarray, *, sample_size: int | None = 4000, random_state: int = 0
) -> tuple[float, float, float]:
    """(silhouette, Davies-Bouldin, Calinski-Harabasz) of a labelling with noise.

    The silhouette is averaged over all points, a noise point counting 0;
    for Davies-Bouldin and Calinski-Harabasz each noise point counts with the
    cluster whose centre is nearest. Marking the rim of a cluster as noise
    thus makes no cluster look tighter, and costs silhouette. NaN for all
    three when fewer than two clusters remain or every clustered point is its
    own cluster. The silhouette is computed on at most ``sample_size`` points
    (seeded) to keep it linear in memory.
    """
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_samples

    labels = np.asarray(labels)
    keep = labels >= 0
    k = len(np.unique(labels[keep]))
    n_in = int(keep.sum())
    if k < 2 or k >= n_in:
        return math.nan, math.nan, math.nan
    full = labels
    if not keep.all():
        ids = np.unique(labels[keep])
        centres = np.stack([X[labels == c].mean(axis=0) for c in ids])
        d2 = ((X[~keep, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        full = labels.copy()
        full[~keep] = ids[np.argmin(d2, axis=1)]
    idx = np.arange(len(labels))
    if sample_size is not None and len(labels) > sample_size:
        idx = np.sort(
            np.random.default_rng(random_state).choice(len(labels), sample_size, replace=False)
        )
    sub = idx[keep[idx]]
    sil_sum = 0.0
    if len(np.unique(labels[sub])) >= 2 and len(sub) > len(np.unique(labels[sub])):
        sil_sum = float(silhouette_samples(X[sub], labels[sub]).sum())
    silhouette = sil_sum / len(idx)  # noise points of the sample count 0
    return silhouette, float(davies_bouldin_score(X, full)), float(calinski_harabasz_score(X, full))


def _minmax(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return np.zeros_like(values)
    return (values - lo) / (hi - lo)


def select(candidates: list[Candidate]) -> int | None:
    """Index of the best candidate by the selection rule (see the module
    docstring), or None when there are none. Fills each candidate's ``score``."""
    if not candidates:
        return None
    valid = [i for i, c in enumerate(candidates) if not c.degenerate]
    if valid:
        s = np.array([candidates[i].silhouette for i in valid])
        db = np.array([candidates[i].davies_bouldin for i in valid])
        ch = np.array([candidates[i].calinski_harabasz for i in valid])
        combined = _minmax(s) - _minmax(db) + _minmax(ch)
        for i, v in zip(valid, combined, strict=True):
            candidates[i].score = float(v)
        return valid[int(np.argmax(combined))]  # argmax: first of equals
    return min(range(len(candidates)), key=lambda i: (candidates[i].n_noise, i))


class EmbeddingClusterer:
    """Cluster embeddings with one algorithm over a grid of its parameters.

    scikit-learn style: ``__init__`` stores the parameters, :meth:`fit`
    returns self and sets ``labels_``.

    Parameters
    ----------
    algorithm : {"kmeans", "hierarchy", "DBSCAN", "gaussian", "HDBSCAN"}
        k-means, agglomerative (Ward), DBSCAN, Gaussian mixture, HDBSCAN
        (scikit-learn's).
    n_clusters : int or sequence of int, optional
        kmeans, hierarchy, gaussian (components). Default 2, 3, ..., 20.
    max_iter : int or sequence of int, optional
        kmeans, gaussian. Default: the algorithm's own (300 / 100).
    eps : float or sequence of float, optional
        DBSCAN. Default: the quantiles :data:`EPS_QUANTILES` of each point's
        distance to its ``min_samples``-th neighbour (the usual k-distance
        heuristic, so the grid follows the scale of the embeddings).
    min_samples : int or sequence of int, optional
        DBSCAN (default 5), HDBSCAN (default: equal to ``min_cluster_size``).
    min_cluster_size : int or sequence of int, optional
        HDBSCAN. Default 5 and 10.
    max_cluster_size : int or sequence of int or None, optional
        HDBSCAN. Default no limit.
    reduce : {"spectral", "l2", "none"}, default "spectral"
        How the embeddings are prepared: ``"l2"`` scales each to unit length
        (cosine geometry: an autoencoder code's length mostly follows image
        contrast); ``"spectral"`` then re-embeds them by the eigenvectors of
        their 10-nearest-neighbour graph, as many as the largest eigengap
        says (:func:`icas.dl.spectral.spectral_embedding`; with fewer than
        :data:`SPECTRAL_MIN_POINTS` points only ``"l2"`` is applied);
        ``"none"`` uses them as they are. The algorithm runs in the
        prepared space; the metrics of the selection rule judge its labels on
        the unit-length embeddings (the embeddings as they are with
        ``"none"``). Judged in the spectral coordinates themselves, the
        metrics keep rising with the number of clusters (on the digits they
        picked 17-20 clusters for 10 digits); judged on the embeddings, they
        pick 10-11.
    neighbors : {"auto", "exact", "ann"}, default "auto"
        How nearest neighbours are found for the spectral graph, the DBSCAN
        radii and the connectivity of ``hierarchy`` from
        :data:`HIERARCHY_DENSE_LIMIT` points on: exactly, approximately
        (HNSW; the extra ``icas[ann]``), or approximately only for large sets
        when the extra is installed (:func:`icas.dl.neighbors.knn_graph`).
    random_state : int, default 0
        Seeds kmeans, the mixture, the spectral solver, the HNSW graph and
        the silhouette sample.
    silhouette_sample : int or None, default 4000
        Points the silhouette is computed on (None: all).
    n_threads : int, optional
        Threads of the BLAS and OpenMP pools scikit-learn uses while fitting
        (threadpoolctl). None: their defaults (``OMP_NUM_THREADS``); -1: all
        cores. On a machine busy with other work, 1 avoids the spinning of
        oversubscribed OpenMP threads, which made a Gaussian-mixture grid
        ten times slower here.

    Attributes
    ----------
    labels_ : ndarray of int64, shape (n,)
        Clusters 0, 1, ... in order of first appearance; -1 noise.
    best_params_ : dict or None
    best_score_ : float
        NaN when every candidate is degenerate (see the module docstring).
    candidates_ : list of Candidate
        Every candidate in grid order, with its metrics and score.
    embedding_ : ndarray (n, m)
        The prepared embeddings the algorithm ran on.
    """

    def __init__(
        self,
        algorithm: str = "kmeans",
        *,
        n_clusters=None,
        max_iter=None,
        eps=None,
        min_samples=None,
        min_cluster_size=None,
        max_cluster_size=None,
        reduce: str = "spectral",
        neighbors: str = "auto",
        random_state: int = 0,
        silhouette_sample: int | None = 4000,
        n_threads: int | None = None,
    ):
        self.algorithm = algorithm
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.eps = eps
        self.min_samples = min_samples
        self.min_cluster_size = min_cluster_size
        self.max_cluster_size = max_cluster_size
        self.reduce = reduce
        self.neighbors = neighbors
        self.random_state = random_state
        self.silhouette_sample = silhouette_sample
        self.n_threads = n_threads

    # -- the grid ---------------------------------------------------------
    def grid(self) -> dict[str, tuple | None]:
        """The validated grid of the algorithm (``eps`` None: from the data)."""
        algo = check_algorithm(self.algorithm)
        given = {
            "n_clusters": self.n_clusters,
            "max_iter": self.max_iter,
            "eps": self.eps,
            "min_samples": self.min_samples,
            "min_cluster_size": self.min_cluster_size,
            "max_cluster_size": self.max_cluster_size,
        }
        for name, value in given.items():
            if value is not None and name not in GRID_PARAMS[algo]:
                raise ValueError(
                    f"{name} does not apply to {algo} (it takes {', '.join(GRID_PARAMS[algo])})"
                )
        rules = {
            "n_clusters": (True, 2),
            "max_iter": (True, 1),
            "eps": (False, 1e-12),
            "min_samples": (True, 1),
            "min_cluster_size": (True, 2),
            "max_cluster_size": (True, 2),
        }
        out: dict[str, tuple | None] = {}
        for name in GRID_PARAMS[algo]:
            value = given[name]
            if value is None:
                if name == "min_samples" and algo == "HDBSCAN":
                    out[name] = (None,)
                else:
                    out[name] = DEFAULT_GRID[name]
                continue
            integer, low = rules[name]
            out[name] = _as_grid(
                name,
                value,
                integer=integer,
                low=low,
                allow_none=name in ("max_cluster_size", "max_iter"),
            )
        return out

    def prepare(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the embeddings the algorithm runs on, the ones the metrics judge);
        see ``reduce``."""
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {', '.join(REDUCTIONS)}, got {self.reduce!r}")
        if self.reduce == "none" or len(X) == 0:
            return X, X
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        X = X / np.where(norms > 0, norms, 1.0)
        if self.reduce == "spectral" and len(X) >= SPECTRAL_MIN_POINTS:
            from icas.dl.spectral import spectral_embedding

            return spectral_embedding(X, random_state=self.random_state, neighbors=self.neighbors)[
                0
            ], X
        return X, X

    def _auto_eps(self, X: np.ndarray, min_samples: int) -> tuple[float, ...]:
        from icas.dl.neighbors import knn_graph

        if len(X) < 2:
            return (1.0,)
        kth = knn_graph(X, min_samples, method=self.neighbors, seed=self.random_state)[1][:, -1]
        eps = [float(np.quantile(kth, q)) for q in EPS_QUANTILES]
        return tuple(dict.fromkeys(e for e in eps if e > 0)) or (1.0,)

    def _combinations(self, X: np.ndarray):
        grid = self.grid()
        algo = check_algorithm(self.algorithm)
        names = GRID_PARAMS[algo]
        if algo == "DBSCAN" and grid["eps"] is None:
            for ms in grid["min_samples"]:
                for e in self._auto_eps(X, ms):
                    yield {"eps": e, "min_samples": ms}
            return
        for values in itertools.product(*(grid[n] for n in names)):
            yield dict(zip(names, values, strict=True))

    # -- fitting ----------------------------------------------------------
    def _fit_one(self, X: np.ndarray, params: dict, tree) -> np.ndarray:
        algo = check_algorithm(self.algorithm)
        rs = self.random_state
        if algo == "kmeans":
            from sklearn.cluster import KMeans

            kw = {} if params["max_iter"] is None else {"max_iter": params["max_iter"]}
            return KMeans(params["n_clusters"], n_init=4, random_state=rs, **kw).fit_predict(X)
        if algo == "gaussian":
            from sklearn.mixture import GaussianMixture

            kw = {} if params["max_iter"] is None else {"max_iter": params["max_iter"]}
            # Three starts: one k-means start often settles in a local optimum
            # (two groups shared by one component) where k-means with its
            # four starts does not.
            gm = GaussianMixture(
                params["n_clusters"],
                covariance_type="full",
                reg_covar=1e-4,
                n_init=3,
                random_state=rs,
                **kw,
            )
            return gm.fit(X).predict(X)
        if algo == "hierarchy":
            from scipy.cluster.hierarchy import fcluster

            # One Ward tree for the whole grid, cut at each number of clusters
            # (scikit-learn's AgglomerativeClustering would rebuild it each time).
            return fcluster(tree, t=params["n_clusters"], criterion="maxclust") - 1
        if algo == "DBSCAN":
            from sklearn.cluster import DBSCAN

            return DBSCAN(eps=params["eps"], min_samples=params["min_samples"]).fit_predict(X)
        from sklearn.cluster import HDBSCAN

        return HDBSCAN(
            min_cluster_size=params["min_cluster_size"],
            min_samples=params["min_samples"],
            max_cluster_size=params["max_cluster_size"],
            copy=True,
        ).fit_predict(X)

    def _ward(self, X: np.ndarray) -> np.ndarray:
        """The Ward tree as a scipy linkage matrix; from HIERARCHY_DENSE_LIMIT
        points on, merging only along a connected neighbour graph."""
        n = len(X)
        if n < HIERARCHY_DENSE_LIMIT:
            from scipy.cluster.hierarchy import ward

            return ward(X)
        from sklearn.cluster import ward_tree

        from icas.dl.neighbors import connectivity_graph

        graph = connectivity_graph(
            X, CONNECTIVITY_NEIGHBORS, method=self.neighbors, seed=self.random_state
        )
        children = ward_tree(X, connectivity=graph)[0]
        # Constrained merges need not grow in height, so the linkage carries
        # the merge order as its height: fcluster's maxclust then undoes the
        # last merges, as scikit-learn's cut of such a tree does.
        size = np.ones(2 * n - 1)
        for i, (a, b) in enumerate(children):
            size[n + i] = size[a] + size[b]
        return np.column_stack([children.astype(np.float64), np.arange(1.0, n), size[n:]])

    def _cannot_run(self, params: dict, n: int) -> str:
        k = params.get("n_clusters")
        if k is not None and k >= n:
            return f"needs more than {k} points, has {n}"
        mcs = params.get("min_cluster_size")
        if mcs is not None and mcs > n:
            return f"min_cluster_size {mcs} exceeds the {n} points"
        return ""

    def fit(self, X) -> EmbeddingClusterer:
        """Fit every candidate of the grid on ``X`` ``(n, d)`` and keep the best."""
        from icas import _validate

        k = _validate.threads(self.n_threads)
        if k == 0:
            return self._fit(X)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=(os.cpu_count() or 1) if k == -1 else k):
            return self._fit(X)

    def _fit(self, X) -> EmbeddingClusterer:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"embeddings must be a 2-d array (n, d), got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("embeddings contain NaN or infinite values")
        algo = check_algorithm(self.algorithm)
        self.grid()  # validate before any work
        if self.neighbors not in NEIGHBORS:
            raise ValueError(
                f"neighbors must be one of {', '.join(NEIGHBORS)}, got {self.neighbors!r}"
            )
        if self.neighbors == "ann":
            from icas.dl.neighbors import require_faiss

            require_faiss()  # before any work, not at the first large graph
        X, judged = self.prepare(X)
        self.embedding_ = X
        n = len(X)
        tree = None
        if algo == "hierarchy" and n >= 2:
            tree = self._ward(X)
        self.candidates_: list[Candidate] = []
        for params in self._combinations(X) if n >= 2 else ():
            why = self._cannot_run(params, n)
            if why:
                log.info("%s %s skipped: %s", algo, params, why)
                continue
            with warnings.catch_warnings():
                # e.g. k-means asked for more clusters than there are distinct
                # points: the candidate records the clusters it really found.
                warnings.simplefilter("ignore", ConvergenceWarning)
                labels = relabel(self._fit_one(X, params, tree))
            c = Candidate(
                dict(params),
                n_clusters=int(labels.max(initial=-1)) + 1,
                n_noise=int((labels < 0).sum()),
                labels=labels,
            )
            c.silhouette, c.davies_bouldin, c.calinski_harabasz = scores(
                judged, labels, sample_size=self.silhouette_sample, random_state=self.random_state
            )
            if c.degenerate:
                c.note = "one cluster or only noise: metrics undefined"
            self.candidates_.append(c)
        best = select(self.candidates_)
        if best is None:
            self.labels_ = np.full(n, -1, dtype=np.int64)
            self.best_params_, self.best_score_ = None, math.nan
            log.info("%s: no candidate can run on %d points; all are outliers", algo, n)
            return self
        chosen = self.candidates_[best]
        self.labels_ = chosen.labels
        self.best_params_, self.best_score_ = dict(chosen.params), chosen.score
        if chosen.degenerate:
            log.info(
                "%s: every candidate gives one cluster or only noise; kept %s", algo, chosen.params
            )
        else:
            log.info(
                "%s on %d points: best %s (%d clusters, %d noise, score %.3f)",
                algo,
                n,
                chosen.params,
                chosen.n_clusters,
                chosen.n_noise,
                chosen.score,
            )
        return self

    def fit_predict(self, X) -> np.ndarray:
        return self.fit(X).labels_
