"""The merge of batches through their representatives: the merge nodes of
every batch (first member of each cluster, and the outliers) are compared
across batches and chained, so clusters and outliers of different batches can
join."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from icas.cluster import guards
from icas.cluster.layout import Placement
from icas.cluster.links import MEAN_SAMPLE, mean_offdiagonal, weakest_links
from icas.cluster.methods import similarity_matrix, threshold_range
from icas.cluster.threshold import sample_indices


@dataclass
class Batch:
    """One batch as the merge sees it."""

    index: int
    paths: list[str]  # images that were read, in batch order
    labels: np.ndarray  # (n,) cluster within the batch, -1 outlier
    edges: np.ndarray  # compared pairs inside the batch's clusters
    scores: np.ndarray
    features: object | None  # of the merge nodes only (representatives + outliers)
    nodes: np.ndarray  # indices into paths of the merge nodes
    means: dict = field(default_factory=dict)  # batch cluster -> mean similarity


def internal(edges: np.ndarray, scores: np.ndarray, labels: np.ndarray):
    """The pairs whose two items are in one cluster."""
    if not len(edges):
        return edges, scores
    keep = (labels[edges[:, 0]] == labels[edges[:, 1]]) & (labels[edges[:, 0]] >= 0)
    return edges[keep], scores[keep]


def merge_nodes(labels: np.ndarray) -> np.ndarray:
    """Representatives (first member of each cluster) and outliers, in order."""
    first: set[int] = set()
    nodes = []
    for i, lab in enumerate(labels):
        if lab < 0:
            nodes.append(i)
        elif lab not in first:
            first.add(int(lab))
            nodes.append(i)
    return np.array(nodes, dtype=np.int64)


def batch_layout(results: list[Batch]):
    """Option 'dontmerge': labels, batch of each file, representatives, and
    the weakest links and mean similarities keyed by (batch, cluster)."""
    labels, batch_of, reps, weak, means = {}, {}, set(), {}, {}
    for b in results:
        for i, p in enumerate(b.paths):
            labels[p] = int(b.labels[i])
            batch_of[p] = b.index
        reps.update(b.paths[i] for i in b.nodes if b.labels[i] >= 0)
        for lab, w in weakest_links(b.edges, b.scores, b.labels).items():
            weak[(b.index, lab)] = w
        for lab, m in b.means.items():
            means[(b.index, lab)] = m
    return labels, batch_of, reps, weak, means


def merged_layout(results: list[Batch], paths: list[str], glabels: np.ndarray):
    """labels, batch of each file, representatives (first member of each cluster)."""
    batch_of = {p: b.index for b in results for p in b.paths}
    labels = {p: int(glabels[i]) for i, p in enumerate(paths)}
    reps, seen = set(), set()
    for i, p in enumerate(paths):
        if glabels[i] >= 0 and glabels[i] not in seen:
            seen.add(glabels[i])
            reps.add(p)
    return labels, batch_of, reps


def means_todo(results: list[Batch], glabels: np.ndarray, paths: list[str]) -> dict:
    """Final clusters equal to one batch cluster take its mean similarity;
    the others ({label: member paths}) are measured again."""
    blabel = np.concatenate([b.labels for b in results]) if results else np.empty(0, np.int64)
    bindex = (
        np.concatenate([np.full(len(b.paths), k) for k, b in enumerate(results)])
        if results
        else np.empty(0, np.int64)
    )
    out: dict[int, object] = {}
    for g in np.unique(glabels[glabels >= 0]):
        members = np.flatnonzero(glabels == g)
        k, lab = bindex[members[0]], blabel[members[0]]
        same = (
            lab >= 0
            and np.all(bindex[members] == k)
            and np.all(blabel[members] == lab)
            and int(np.sum(results[k].labels == lab)) == len(members)
            and int(lab) in results[k].means
        )
        out[int(g)] = results[k].means[int(lab)] if same else [paths[i] for i in members]
    return out


class MergeSteps:
    """The merge stage of :class:`icas.cluster.Clusteror`; uses its pair
    search (``_pairs``), feature reading (``_features``) and the guards the
    validation set (``linkage``, ``_max_size``)."""

    def _batch_layout(self, results: list[Batch]):
        return batch_layout(results)

    def _node_pairs(self, results: list[Batch], threshold: float, offsets: np.ndarray):
        """Features, item ids, batch of each node, and the compared pairs (in
        node order) of the merge nodes: representatives and outliers of every
        batch. Nodes of one batch are never compared: that batch's clustering
        already kept them apart."""
        with_nodes = [k for k, b in enumerate(results) if b.features is not None and len(b.nodes)]
        if len(with_nodes) < 2:
            return (
                None,
                np.empty(0, np.int64),
                np.empty(0, np.int64),
                np.empty((0, 2), np.int64),
                np.empty(0, np.float32),
            )
        fs = type(results[with_nodes[0]].features).concat([results[k].features for k in with_nodes])
        node_ids = np.concatenate([results[k].nodes + offsets[k] for k in with_nodes])
        groups = np.concatenate([np.full(len(results[k].nodes), k) for k in with_nodes])
        e, s, _ = self._pairs(fs, threshold, groups=groups)
        return fs, node_ids, groups, e, s

    def _node_matrix(self, fs, groups: np.ndarray):
        """Similarities of merge nodes for a stricter linkage: two nodes of one
        batch count as the least similar possible (a cannot-link), so the
        merge never joins what a batch kept apart."""
        low = threshold_range(self.method)[0]

        def matrix(idx):
            m = similarity_matrix(fs.take(idx), n_threads=self.num_of_threads, device=self.device)
            g = groups[idx]
            m[g[:, None] == g[None, :]] = low
            np.fill_diagonal(m, threshold_range(self.method)[1])
            return m

        return matrix

    def _merge(self, results: list[Batch], threshold: float):
        """Chain batch clusters through their representatives; outliers of
        every batch may join clusters (or other outliers) of other batches.

        With a stricter linkage the representatives and outliers are clustered
        with it (each representative standing for its batch cluster), so the
        merge cannot chain what the batches kept apart; a size cap then splits
        oversized final clusters on their compared pairs.

        Returns labels, batches, representatives, weakest links and, per
        final cluster, its batch cluster's mean similarity or its member
        paths (to be measured)."""
        offsets = np.cumsum([0] + [len(b.paths) for b in results])
        n = int(offsets[-1])
        fs, node_ids, groups, e, s = self._node_pairs(results, threshold, offsets)
        if fs is not None and self.linkage != "single":
            nl = guards.guarded_labels(
                len(fs), e, s, threshold, linkage=self.linkage, matrix=self._node_matrix(fs, groups)
            )
            e, s = internal(e, s, nl)
        edges = np.concatenate(
            [*(b.edges + offsets[k] for k, b in enumerate(results)), node_ids[e].reshape(-1, 2)]
        )
        scores = np.concatenate([*(b.scores for b in results), s]).astype(np.float32)
        glabels = guards.guarded_labels(n, edges, scores, threshold, max_size=self._max_size)
        paths = [p for b in results for p in b.paths]
        weak = weakest_links(edges, scores, glabels)
        return (
            *merged_layout(results, paths, glabels),
            weak,
            means_todo(results, glabels, paths),
        )

    def _merge_units(self, results: list[Batch], threshold: float):
        """Merge for batches read from folders (no compared pairs inside them):
        each batch cluster is one unit, standing as its representative with
        the cluster's size as weight; the guards act on the merge of units.
        Links inside a folder cluster are unknown and not counted in the
        weakest link."""
        offsets = np.cumsum([0] + [len(b.paths) for b in results])
        n = int(offsets[-1])
        fs, node_ids, groups, e, s = self._node_pairs(results, threshold, offsets)
        # part of every item: its batch cluster's node, or its own
        unit = np.arange(n, dtype=np.int64)
        for k, b in enumerate(results):
            first: dict[int, int] = {}
            for i, lab in enumerate(b.labels.tolist()):
                if lab >= 0:
                    unit[offsets[k] + i] = first.setdefault(lab, offsets[k] + i)
        parts = unit.copy()
        edges = np.empty((0, 2), np.int64)
        scores = np.empty(0, np.float32)
        if fs is not None:
            weights = np.bincount(unit, minlength=n)[node_ids]
            nl = guards.guarded_labels(
                len(fs),
                e,
                s,
                threshold,
                linkage=self.linkage,
                max_size=self._max_size,
                matrix=self._node_matrix(fs, groups),
                weights=weights,
            )
            e, s = internal(e, s, nl)
            joined = nl >= 0
            node_part = np.where(joined, n + nl, node_ids)
            remap = np.arange(n, dtype=np.int64)
            remap[node_ids] = node_part
            parts = remap[unit]
            edges, scores = node_ids[e].reshape(-1, 2), s
        glabels = guards.relabel(parts)
        paths = [p for b in results for p in b.paths]
        weak = weakest_links(edges, scores, glabels)
        todo = {
            int(g): [paths[i] for i in np.flatnonzero(glabels == g)]
            for g in np.unique(glabels[glabels >= 0])
        }
        return (*merged_layout(results, paths, glabels), weak, todo)

    def _merged_placement(self, merge, results: list[Batch], threshold: float, timings: dict):
        """Where a merged run puts its files: `merge` (:meth:`_merge`, or
        :meth:`_merge_units` for batch folders), timed as the merge stage,
        then the final clusters' mean similarities and destinations."""
        t = time.perf_counter()
        labels, batch_of, reps, weak, todo = merge(results, threshold)
        timings["merge"] = time.perf_counter() - t
        means = self._final_means(todo, timings)
        return Placement(labels, batch_of, reps, weak, means, self._result_destinations(labels))

    def _final_means(self, todo: dict, timings: dict) -> dict[int, float]:
        """Mean similarity of every final cluster; clusters that span batches
        are measured on up to MEAN_SAMPLE of their members, read again."""
        means = {g: v for g, v in todo.items() if not isinstance(v, list)}
        measure = {
            g: [v[i] for i in sample_indices(len(v), MEAN_SAMPLE)]
            for g, v in todo.items()
            if isinstance(v, list)
        }
        if not measure:
            return means
        t = time.perf_counter()
        res = self._features([p for v in measure.values() for p in v], timings)
        where = {p: i for i, p in enumerate(res.paths)}
        for g, members in measure.items():
            idx = [where[p] for p in members if p in where]
            if len(idx) >= 2:
                means[g] = mean_offdiagonal(
                    similarity_matrix(
                        res.features.take(idx), n_threads=self.num_of_threads, device=self.device
                    )
                )
        timings["clusters"] = timings.get("clusters", 0.0) + time.perf_counter() - t
        return means
