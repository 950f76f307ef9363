"""Guards against chaining (linkage, size cap) and the per-cluster diagnostics."""

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components
from scipy.spatial.distance import squareform

from icas.cluster import Clusteror
from icas.cluster.guards import cut_tree, guarded_labels, relabel
from icas.cluster.links import mean_similarities, weakest_links
from icas.cluster.output import read_manifest


def partition(labels) -> set[frozenset[int]]:
    """Clusters as sets of item indices (outliers left out)."""
    out: dict[int, set[int]] = {}
    for i, lab in enumerate(np.asarray(labels).tolist()):
        if lab >= 0:
            out.setdefault(lab, set()).add(i)
    return {frozenset(v) for v in out.values()}


def edges_of(sim: np.ndarray, t: float):
    i, j = np.nonzero(np.triu(sim >= t, k=1))
    return np.stack([i, j], 1).astype(np.int64), sim[i, j].astype(np.float32)


def bridge_matrix() -> np.ndarray:
    """Two tight groups of 5 (similarity 0.95 inside) joined by one pair at
    0.81; every other pair 0.2."""
    s = np.full((10, 10), 0.2)
    s[:5, :5] = 0.95
    s[5:, 5:] = 0.95
    s[4, 5] = s[5, 4] = 0.81
    np.fill_diagonal(s, 1.0)
    return s


A, B = frozenset(range(5)), frozenset(range(5, 10))


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({}, {A | B}),
        ({"linkage": "complete"}, {A, B}),
        ({"linkage": "average"}, {A, B}),
        ({"max_size": 5}, {A, B}),
        ({"max_size": 9}, {A, B}),  # the bridge is the weakest level: both halves stay whole
        ({"max_size": 10}, {A | B}),
    ],
)
def test_guards_split_a_bridge(kwargs, expected):
    s = bridge_matrix()
    e, sc = edges_of(s, 0.8)
    labels = guarded_labels(10, e, sc, 0.8, matrix=lambda idx: s[np.ix_(idx, idx)], **kwargs)
    assert partition(labels) == expected


def test_single_linkage_unchanged():
    rng = np.random.default_rng(0)
    n = 300
    e = rng.integers(0, n, size=(250, 2))
    e = e[e[:, 0] != e[:, 1]]
    sc = rng.uniform(0.8, 1.0, len(e)).astype(np.float32)
    labels = guarded_labels(n, e, sc, 0.8)
    graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    ncomp, comp = scipy_components(graph, directed=False)
    assert partition(labels) == partition(relabel(comp))
    assert 1 < ncomp < n


def random_similarities(rng, n: int, groups: int) -> np.ndarray:
    """Continuous similarities with planted groups, so ties do not occur."""
    g = rng.integers(0, groups, n)
    s = rng.uniform(0.0, 0.75, (n, n))
    s[g[:, None] == g[None, :]] += rng.uniform(0.1, 0.25, (n, n))[g[:, None] == g[None, :]]
    s = np.minimum((s + s.T) / 2, 0.999)
    np.fill_diagonal(s, 1.0)
    return s


@pytest.mark.parametrize("method", ["average", "complete"])
@pytest.mark.parametrize("seed", range(6))
def test_linkage_equals_scipy_on_the_full_matrix(method, seed):
    rng = np.random.default_rng(seed)
    n, t = 60, 0.7
    s = random_similarities(rng, n, 5)
    e, sc = edges_of(s, t)
    ours = guarded_labels(n, e, sc, t, linkage=method, matrix=lambda idx: s[np.ix_(idx, idx)])
    z = linkage(squareform(1.0 - s, checks=False), method=method)
    ref = fcluster(z, t=1.0 - t, criterion="distance")
    assert partition(ours) == partition(relabel(ref))


def naive_cap(s: np.ndarray, t: float, cap: int) -> set[frozenset[int]]:
    """The size rule by its definition: components at t; a component larger
    than cap is cut again just above its weakest link, recursively."""
    out = set()
    todo = [(np.arange(len(s)), t, False)]
    while todo:
        idx, level, strict = todo.pop()
        sub = s[np.ix_(idx, idx)]
        adj = (sub > level) if strict else (sub >= level)
        np.fill_diagonal(adj, False)
        _, comp = scipy_components(adj, directed=False)
        for c in np.unique(comp):
            part = idx[comp == c]
            if len(part) <= cap:
                if len(part) > 1:
                    out.add(frozenset(part.tolist()))
                continue
            inner = s[np.ix_(part, part)]
            mask = np.triu((inner > level) if strict else (inner >= level), k=1)
            # weakest link = lowest level at which the part is still connected
            vals = np.unique(inner[mask])
            for v in vals:
                a = inner >= v
                np.fill_diagonal(a, False)
                if scipy_components(a, directed=False)[0] > 1:
                    break
                weakest = v
            todo.append((part, weakest, True))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_size_cap_follows_its_definition(seed):
    rng = np.random.default_rng(seed)
    n, t = 50, 0.6
    s = random_similarities(rng, n, 3)
    s = np.round(s * 20) / 20  # coarse levels: many ties
    np.fill_diagonal(s, 1.0)
    e, sc = edges_of(s, t)
    for cap in (2, 4, 7, 15):
        ours = partition(guarded_labels(n, e, sc.astype(np.float64), t, max_size=cap))
        assert ours == naive_cap(s, t, cap)
        assert all(len(c) <= cap for c in ours)


def test_cut_tree_weights_count_units():
    # units of sizes 3, 1, 3: 0 and 1 join first, then 2
    z = np.array([[0, 1, 0.1, 2], [2, 3, 0.2, 3]], dtype=float)
    parts = cut_tree(z, 3, max_size=4, weights=np.array([3, 1, 3]))
    assert parts[0] == parts[1] != parts[2]
    assert len(set(cut_tree(z, 3, max_size=3).tolist())) == 1


def test_mean_and_weakest_link_against_direct_values():
    rng = np.random.default_rng(3)
    s = random_similarities(rng, 40, 4)
    e, sc = edges_of(s, 0.7)
    labels = guarded_labels(
        40, e, sc, 0.7, linkage="average", matrix=lambda idx: s[np.ix_(idx, idx)]
    )
    means = mean_similarities(labels, lambda idx: s[np.ix_(idx, idx)])
    weak = weakest_links(e, sc, labels)
    for lab in set(labels[labels >= 0].tolist()):
        idx = np.flatnonzero(labels == lab)
        sub = s[np.ix_(idx, idx)]
        assert means[lab] == pytest.approx(sub[~np.eye(len(idx), dtype=bool)].mean())
        # weakest link: highest level at which the cluster is still connected
        # by its own pairs
        levels = np.unique(sub[np.triu(sub >= 0.7, k=1)])
        connected = [v for v in levels if scipy_components(sub >= v, directed=False)[0] == 1]
        assert weak[lab] == pytest.approx(max(connected), abs=1e-6)


# -- end to end: a chain of cross-fades between two photos ---------------------


def _photo(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2BGR)
    return cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)


def _copies(img: np.ndarray) -> list[np.ndarray]:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 50])
    return [
        img,
        cv2.imdecode(buf, cv2.IMREAD_COLOR),
        cv2.convertScaleAbs(img, beta=15),
        cv2.GaussianBlur(img, (3, 3), 0),
    ]


@pytest.fixture(scope="module")
def bridged(tmp_path_factory) -> Path:
    """Four copies of one photo (a*), four of another (b*), and five
    cross-fades between them (m*): each fade is similar to the next, so
    single linkage chains the two photos into one cluster."""
    folder = tmp_path_factory.mktemp("bridge") / "images"
    folder.mkdir()
    a, b = _photo("astronaut"), _photo("coffee")
    for k, img in enumerate(_copies(a)):
        cv2.imwrite(str(folder / f"a{k}.png"), img)
    for k, img in enumerate(_copies(b)):
        cv2.imwrite(str(folder / f"b{k}.png"), img)
    for k in range(1, 6):
        cv2.imwrite(str(folder / f"m{k}.png"), cv2.addWeighted(a, 1 - k / 6, b, k / 6, 0))
    return folder


def _groups(result) -> list[set[str]]:
    return [{Path(p).stem for p in c} for c in result.clusters.values()]


def test_single_linkage_chains_the_bridge(bridged, tmp_path):
    r = Clusteror(bridged, out=tmp_path / "o", progress=False)()
    chained = [g for g in _groups(r) if "a0" in g]
    assert len(chained) == 1 and "b0" in chained[0]  # the run-away cluster
    k = next(k for k, c in r.clusters.items() if any(p.endswith("a0.png") for p in c))
    # The diagnostics show it: a mean similarity far below the threshold.
    assert r.mean_similarity[k] < r.threshold < r.weakest_link[k]


@pytest.mark.parametrize("batch_size", [100, 5])
@pytest.mark.parametrize(
    "guard", [{"linkage": "complete"}, {"linkage": "average"}, {"max_cluster_size": 6}]
)
def test_guards_split_the_bridge(bridged, tmp_path, guard, batch_size):
    r = Clusteror(
        bridged, out=tmp_path / "o", progress=False, batch_size=batch_size, order="name", **guard
    )()
    groups = _groups(r)
    a = {f"a{k}" for k in range(4)}
    b = {f"b{k}" for k in range(4)}
    assert any(a <= g for g in groups) and any(b <= g for g in groups)
    assert not any(g & a and g & b for g in groups)
    if "max_cluster_size" in guard:
        assert max(r.cluster_sizes.values()) <= 6
    rows = read_manifest(r.out_dir / "clusters.csv")
    for row in rows:
        if re.fullmatch(r"\d+", row["cluster"]):
            k = int(row["cluster"])
            assert int(row["cluster_size"]) == r.cluster_sizes[k]
            assert float(row["mean_similarity"]) == pytest.approx(r.mean_similarity[k], abs=1e-6)
    report = (r.out_dir / "report.html").read_text(encoding="utf-8")
    assert f"{guard.get('linkage', 'single')} linkage" in report
    for k in r.clusters:
        assert "mean similarity <span class='mean" in report
        assert f"{r.mean_similarity[k]:.3f}" in report


def test_bad_guard_parameters(bridged, tmp_path):
    with pytest.raises(ValueError, match="linkage must be one of"):
        Clusteror(bridged, linkage="ward", progress=False)()
    with pytest.raises(ValueError, match="max_cluster_size must be an integer >= 2"):
        Clusteror(bridged, max_cluster_size=1, progress=False)()


@pytest.mark.parametrize("batch_size,option", [(100, "full"), (5, "full"), (5, "merge")])
def test_mean_similarity_equals_the_direct_mean(bridged, tmp_path, batch_size, option):
    """Per cluster, the mean over all pairs of its members, whether the
    cluster came from one batch, from a merge, or from folders."""
    from icas.cluster.methods import extract, similarity_matrix

    src = bridged
    if option == "merge":
        src = Clusteror(
            bridged,
            batch_size=batch_size,
            option="dontmerge",
            order="name",
            out=tmp_path / "parts",
            progress=False,
        )().out_dir
    r = Clusteror(
        src, batch_size=batch_size, option=option, order="name", out=tmp_path / "o", progress=False
    )()
    assert set(r.mean_similarity) == set(r.clusters)
    for k, members in r.clusters.items():
        s = similarity_matrix(extract(members, "imagehash").features)
        direct = (s.sum() - np.trace(s)) / (len(s) * (len(s) - 1))
        assert r.mean_similarity[k] == pytest.approx(direct, abs=1e-9)


def test_cli_guard_flags(bridged, tmp_path, capsys):
    from icas.cli import cluster_main

    assert (
        cluster_main(
            [
                str(bridged),
                "--linkage",
                "complete",
                "--max-cluster-size",
                "6",
                "--out",
                str(tmp_path / "o"),
                "-q",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "complete linkage, at most 6 per cluster" in out
    for bad in (["--linkage", "ward"], ["--max-cluster-size", "1"], ["--max-cluster-size", "x"]):
        with pytest.raises(SystemExit) as e:
            cluster_main([str(bridged), *bad])
        assert e.value.code == 2
