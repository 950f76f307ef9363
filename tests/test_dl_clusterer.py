"""Clustering embeddings over grids: each algorithm against scikit-learn, the
selection rule, degenerate candidates, the spectral preparation."""

import math

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering, KMeans  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture  # noqa: E402

from icas.dl import clusterer as C  # noqa: E402
from icas.dl.clusterer import Candidate, EmbeddingClusterer, relabel, scores, select  # noqa: E402


def blobs(k: int, per: int, dim: int = 16, spread: float = 0.05, seed: int = 0):
    """k well-separated groups of `per` points on random directions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    X = np.concatenate([c + spread * rng.normal(size=(per, dim)) for c in centres])
    return X, np.repeat(np.arange(k), per)


@pytest.mark.parametrize(
    "algorithm,params,reference",
    [
        (
            "kmeans",
            {"n_clusters": [4]},
            lambda X: KMeans(4, n_init=4, random_state=0).fit_predict(X),
        ),
        (
            "hierarchy",
            {"n_clusters": [4]},
            lambda X: AgglomerativeClustering(4, linkage="ward").fit_predict(X),
        ),
        (
            "gaussian",
            {"n_clusters": [4]},
            lambda X: (
                GaussianMixture(4, reg_covar=1e-4, n_init=3, random_state=0).fit(X).predict(X)
            ),
        ),
        (
            "DBSCAN",
            {"eps": [0.5], "min_samples": [4]},
            lambda X: DBSCAN(eps=0.5, min_samples=4).fit_predict(X),
        ),
        (
            "HDBSCAN",
            {"min_cluster_size": [6]},
            lambda X: HDBSCAN(min_cluster_size=6, copy=True).fit_predict(X),
        ),
    ],
)
def test_each_algorithm_is_scikit_learns(algorithm, params, reference):
    X, y = blobs(4, 25, seed=3)
    density = algorithm in ("DBSCAN", "HDBSCAN")
    if density:
        X = np.concatenate([X, [[3.0] * 16]])  # one far point: noise
    c = EmbeddingClusterer(algorithm, reduce="none", **params).fit(X)
    ref = reference(X)
    assert adjusted_rand_score(ref, c.labels_) == 1.0
    assert np.array_equal(c.labels_ < 0, ref < 0)  # noise stays noise
    assert c.best_params_ == {
        **{n: None for n in C.GRID_PARAMS[algorithm]},
        **{k: v[0] for k, v in params.items()},
        **({"min_samples": None} if algorithm == "HDBSCAN" else {}),
    }
    assert adjusted_rand_score(y, c.labels_[: len(y)]) == 1.0
    if density:
        assert c.labels_[-1] == -1


@pytest.mark.parametrize("reduce", ["spectral", "l2", "none"])
@pytest.mark.parametrize("algorithm", ["kmeans", "hierarchy", "gaussian"])
def test_grid_finds_the_true_number_of_groups(algorithm, reduce):
    for k in (3, 7):
        X, y = blobs(k, 20, seed=k)
        c = EmbeddingClusterer(algorithm, reduce=reduce, n_threads=1).fit(X)  # grid 2..20
        assert c.best_params_["n_clusters"] == k
        assert adjusted_rand_score(y, c.labels_) == 1.0
        assert len(c.candidates_) == 19


@pytest.mark.parametrize("algorithm", ["DBSCAN", "HDBSCAN"])
def test_density_grids_find_the_groups_and_the_noise(algorithm):
    X, y = blobs(5, 30, seed=1)
    rng = np.random.default_rng(2)
    noise = rng.uniform(-3, 3, size=(6, 16))
    c = EmbeddingClusterer(algorithm, reduce="none").fit(np.concatenate([X, noise]))
    assert (c.labels_[150:] == -1).all()  # the scattered points are noise (outliers)
    # Points at the rim of a group may be noise too, but few, and the rest
    # are grouped exactly.
    kept = c.labels_[:150] >= 0
    assert kept.mean() >= 0.9
    assert adjusted_rand_score(y[kept], c.labels_[:150][kept]) == 1.0
    assert c.best_params_ is not None and not math.isnan(c.best_score_)


def test_scores_match_scikit_learn_and_count_noise_as_zero():
    X, y = blobs(3, 20, spread=0.3, seed=4)
    s, db, ch = scores(X, y, sample_size=None)
    assert s == pytest.approx(silhouette_score(X, y))
    assert db == pytest.approx(davies_bouldin_score(X, y))
    assert ch == pytest.approx(calinski_harabasz_score(X, y))
    noisy = y.copy()
    noisy[:10] = -1
    s2, db2, ch2 = scores(X, noisy, sample_size=None)
    keep = noisy >= 0
    assert s2 == pytest.approx(silhouette_score(X[keep], noisy[keep]) * keep.mean())
    # Noise counts with the nearest cluster centre for the other two.
    centres = np.stack([X[noisy == c].mean(axis=0) for c in range(3)])
    nearest = noisy.copy()
    nearest[~keep] = np.argmin(((X[~keep, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert db2 == pytest.approx(davies_bouldin_score(X, nearest))
    assert ch2 == pytest.approx(calinski_harabasz_score(X, nearest))
    # Undefined with one cluster, only noise, or one point per cluster.
    for labels in (np.zeros(60), np.full(60, -1), np.arange(60)):
        assert all(math.isnan(v) for v in scores(X, labels))


def test_selection_rule():
    def cand(s, db, ch):
        return Candidate({}, silhouette=s, davies_bouldin=db, calinski_harabasz=ch)

    # Min-max over the candidates: s - db + ch, each in [0, 1].
    cs = [cand(0.2, 1.0, 100.0), cand(0.6, 0.5, 50.0), cand(0.4, 0.5, 300.0)]
    assert select(cs) == 2
    assert [c.score for c in cs] == pytest.approx([0 - 1 + 0.2, 1 - 0 + 0, 0.5 - 0 + 1])
    # A degenerate candidate (NaN metrics) never beats a scored one...
    cs = [Candidate({}, n_noise=0), cand(0.1, 2.0, 1.0)]
    assert select(cs) == 1
    # ...when all are degenerate, the one with the least noise, first on ties.
    cs = [Candidate({}, n_noise=5), Candidate({}, n_noise=2), Candidate({}, n_noise=2)]
    assert select(cs) == 1
    assert select([]) is None
    # Equal scores: the first in grid order.
    assert select([cand(0.5, 1.0, 10.0), cand(0.5, 1.0, 10.0)]) == 0


def test_one_cluster_or_only_noise():
    X, _ = blobs(1, 40, seed=5)
    # eps far beyond the spread: one cluster; metrics undefined, kept as it is.
    one = EmbeddingClusterer("DBSCAN", eps=[10.0], reduce="none").fit(X)
    assert (one.labels_ == 0).all() and math.isnan(one.best_score_)
    assert one.candidates_[0].degenerate and "undefined" in one.candidates_[0].note
    # eps far below the spacing: only noise -> every point an outlier.
    none = EmbeddingClusterer("DBSCAN", eps=[1e-6], reduce="none").fit(X)
    assert (none.labels_ == -1).all() and math.isnan(none.best_score_)
    # Both degenerate: the one clustering more points wins.
    both = EmbeddingClusterer("DBSCAN", eps=[1e-6, 10.0], reduce="none").fit(X)
    assert both.best_params_["eps"] == 10.0
    # With a real split on offer, the split wins over one cluster.
    X2, y2 = blobs(2, 20, seed=6)
    c = EmbeddingClusterer("DBSCAN", eps=[10.0, 0.5], reduce="none").fit(X2)
    assert c.best_params_["eps"] == 0.5 and adjusted_rand_score(y2, c.labels_) == 1.0


def test_too_few_points():
    X, _ = blobs(2, 2, seed=7)  # 4 points
    c = EmbeddingClusterer("kmeans", n_clusters=[5, 6]).fit(X)
    assert (c.labels_ == -1).all() and c.best_params_ is None and c.candidates_ == []
    c = EmbeddingClusterer("kmeans", n_clusters=[2, 5]).fit(X)
    assert [cc.params["n_clusters"] for cc in c.candidates_] == [2]
    assert (EmbeddingClusterer().fit(X[:1]).labels_ == -1).all()
    assert len(EmbeddingClusterer().fit(np.zeros((0, 3))).labels_) == 0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"algorithm": "spectral"}, "algorithm must be one of"),
        ({"algorithm": "kmeans", "eps": 0.5}, "eps does not apply to kmeans"),
        ({"algorithm": "DBSCAN", "n_clusters": 3}, "n_clusters does not apply to DBSCAN"),
        ({"algorithm": "kmeans", "n_clusters": [1, 2]}, "n_clusters must be integers >= 2"),
        ({"algorithm": "DBSCAN", "eps": [-1.0]}, "eps must be numbers"),
        ({"algorithm": "HDBSCAN", "min_cluster_size": []}, "at least one value"),
        ({"algorithm": "kmeans", "reduce": "pca"}, "reduce must be one of"),
    ],
)
def test_bad_parameters(kwargs, message):
    X, _ = blobs(2, 10)
    with pytest.raises(ValueError, match=message):
        EmbeddingClusterer(**kwargs).fit(X)


def test_bad_embeddings():
    with pytest.raises(ValueError, match="2-d array"):
        EmbeddingClusterer().fit(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        EmbeddingClusterer().fit(np.full((5, 2), np.nan))


def test_relabel():
    out = relabel(np.array([7, 7, 3, -1, 9, 3, 7]), min_size=2)
    assert out.tolist() == [0, 0, 1, -1, -1, 1, 0]
    assert relabel(np.array([5, 5]), min_size=1).tolist() == [0, 0]


def test_spectral_dimension_follows_the_groups_and_solvers_agree(monkeypatch):
    from icas.dl import spectral

    X, y = blobs(6, 15, seed=8)
    U, lam = spectral.spectral_embedding(X)
    assert U.shape == (90, 6)  # eigengap after the six near-zero eigenvalues
    assert np.allclose(np.linalg.norm(U, axis=1), 1.0)
    assert lam[:6].max() < 0.05 and lam[6] > 0.5
    labels = KMeans(6, n_init=4, random_state=0).fit_predict(U)
    assert adjusted_rand_score(y, labels) == 1.0
    # The iterative solvers for large inputs give the same result: Lanczos,
    # and LOBPCG when Lanczos misses a copy of the repeated eigenvalue 1.
    import scipy.sparse.linalg as sla

    X, y = blobs(6, 40, seed=9)
    U, lam = spectral.spectral_embedding(X)
    monkeypatch.setattr(spectral, "DENSE_LIMIT", 10)
    from scipy.linalg import eigh

    real_lobpcg = sla.lobpcg
    calls = []

    def lanczos(missed: int):
        def eigsh(M, k, **kw):  # exact eigenpairs, minus `missed` copies of 1
            calls.append("eigsh")
            n = M.shape[0]
            vals, vecs = eigh(M.toarray(), subset_by_index=[n - k, n - 1])
            vals[np.argsort(-vals)[:missed]] = 0.5
            return vals, vecs

        return eigsh

    def lobpcg(*args, **kw):
        calls.append("lobpcg")
        return real_lobpcg(*args, **kw)

    monkeypatch.setattr(sla, "lobpcg", lobpcg)
    for missed, expected in ((0, ["eigsh"]), (1, ["eigsh", "lobpcg"])):
        calls.clear()
        monkeypatch.setattr(sla, "eigsh", lanczos(missed))
        U2, lam2 = spectral.spectral_embedding(X)
        assert calls == expected
        assert U2.shape == U.shape == (240, 6)
        np.testing.assert_allclose(lam2[:7], lam[:7], atol=1e-3)
        assert adjusted_rand_score(y, KMeans(6, n_init=4, random_state=0).fit_predict(U2)) == 1.0
    with pytest.raises(ValueError, match="at least 4 points"):
        spectral.spectral_embedding(X[:3])


def test_threads_do_not_change_the_result():
    X, _ = blobs(4, 30, spread=0.3, seed=10)
    ref = EmbeddingClusterer("gaussian", n_clusters=[3, 4, 5]).fit(X)
    for n in (1, 2, -1):
        c = EmbeddingClusterer("gaussian", n_clusters=[3, 4, 5], n_threads=n).fit(X)
        assert c.best_params_ == ref.best_params_
        assert adjusted_rand_score(ref.labels_, c.labels_) == 1.0
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        EmbeddingClusterer(n_threads=0).fit(X)
