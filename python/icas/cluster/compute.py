"""The work on one batch: features, pairs and clusters, with the checkpoints
that let an interrupted run skip the batches it finished (and, for a long
pair stage, the tiles it finished: see :mod:`icas.cluster.blocks`)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from icas.cluster import blocks, checkpoint, guards, output, search
from icas.cluster.links import mean_similarities
from icas.cluster.merge import Batch, internal, merge_nodes
from icas.cluster.methods import Extracted, extract, similarity_matrix

log = logging.getLogger("icas")


class BatchSteps:
    """The per-batch stage of :class:`icas.cluster.Clusteror` (also run on
    Dask workers, see :mod:`icas.cluster.distributed`); uses its pair stage
    (``_batch_pairs``) and the state the validation set (``_candidate``,
    ``_max_size``, ``_searches``)."""

    def _features(self, paths: list[str], timings: dict):
        t = time.perf_counter()
        extra = {"candidate_threshold": self._candidate} if self._candidate is not None else {}
        # Files an interrupted move already put into the output are read
        # there, and reported under their original path.
        moved = getattr(self, "_moved", None)
        where = [moved.get(os.path.abspath(p), p) for p in paths] if moved else paths
        res = extract(
            where,
            self.method,
            size=self.size,
            scale=self.scale,
            n_threads=self.num_of_threads,
            progress=self.progress,
            **extra,
            **self.method_params,
        )
        if where is not paths:
            back = dict(zip(where, paths, strict=True))
            res = Extracted(
                res.features,
                [back[p] for p in res.paths],
                [(back[p], why) for p, why in res.skipped],
            )
        timings["features"] = timings.get("features", 0.0) + time.perf_counter() - t
        return res

    def _node_features(self, paths: list[str], nodes: np.ndarray, timings: dict):
        """Features of the merge nodes read again (after a resume, or from batch
        folders); nodes that can no longer be read are dropped and reported."""
        if not len(nodes):
            return None, nodes, []
        res = self._features([paths[i] for i in nodes], timings)
        ok = set(res.paths)
        keep = np.array([paths[i] in ok for i in nodes], dtype=bool)
        return res.features, nodes[keep], list(res.skipped)

    def _matrix(self, fs):
        return lambda idx: similarity_matrix(
            fs.take(idx), n_threads=self.num_of_threads, device=self.device
        )

    def _key(self, threshold: float, paths: list[str]) -> dict:
        key = {
            "method": self.method,
            "threshold": threshold,
            "size": self.size,
            "scale": self.scale,
            "params": self.method_params,
            "files": paths,
        }
        if self._candidate is not None:
            key["candidate_threshold"] = self._candidate
        key.update(search.key_entry(self.method, self.candidates))
        return key

    def _guard(self) -> dict:
        return {"linkage": self.linkage, "max_cluster_size": self._max_size}

    def _cluster_batch(self, fs, edges, scores, threshold):
        """Guarded labels and mean similarities of one batch's clusters."""
        matrix = self._matrix(fs)
        labels = guards.guarded_labels(
            len(fs),
            edges,
            scores,
            threshold,
            linkage=self.linkage,
            max_size=self._max_size,
            matrix=matrix,
        )
        return labels, mean_similarities(labels, matrix)

    def _cached_batch(
        self, index: int, files: list[str], threshold: float, out_dir: Path, timings: dict
    ):
        """(key, checkpoint record or None, the finished batch or None): a
        batch whose similarities and clusters are in a checkpoint is not
        computed again; one whose guard changed reuses its similarities."""
        key = self._key(threshold, files)
        cached = checkpoint.load_record(out_dir, index, key) if self.resume else None
        if cached is None or cached.get("guard") != self._guard() or "labels" not in cached:
            return key, cached, None
        log.info("batch %d: similarities and clusters from checkpoint", index)
        paths, skipped = cached["paths"], cached["skipped"]
        labels = np.asarray(cached["labels"], dtype=np.int64)
        edges, scores = internal(cached["edges"], cached["scores"], labels)
        means = {int(k): float(v) for k, v in cached.get("means", {}).items()}
        nodes = merge_nodes(labels)
        feats = None
        if self.option == "full":
            feats, nodes, sk = self._node_features(paths, nodes, timings)
            skipped = skipped + sk
        return (
            key,
            cached,
            (Batch(index, paths, labels, edges, scores, feats, nodes, means), skipped),
        )

    def _compute_batch(
        self,
        index: int,
        files: list[str],
        threshold: float,
        key: dict,
        cached: dict | None,
        out_dir: Path,
    ):
        """Features, pairs and clusters of one batch (in this process or on a
        Dask worker: the output folder is used only for the partial
        checkpoint, when it is visible here). Returns the batch, its skipped
        files, the checkpoint record, timings and the searches made."""
        timings: dict[str, float] = {}
        self._searches = []
        fres = self._features(files, timings)
        paths = list(fres.paths)
        t = time.perf_counter()
        if cached is not None and cached["paths"] == paths:
            # Only the guard changed: the similarities are reused.
            log.info("batch %d: similarities from checkpoint", index)
            edges, scores = cached["edges"], cached["scores"]
            evidence = cached.get("evidence")
        else:
            visible = (Path(out_dir) / output.MARKER).exists()
            edges, scores, ev = self._batch_pairs(
                fres.features,
                threshold,
                lambda tile: blocks.digest(key, paths, tile),
                blocks.partial_path(out_dir, index) if visible else None,
            )
            evidence = ev.to_json() if ev is not None else None
        timings["pairs"] = time.perf_counter() - t
        t = time.perf_counter()
        labels, means = self._cluster_batch(fres.features, edges, scores, threshold)
        timings["clusters"] = time.perf_counter() - t
        record = {
            "paths": paths,
            "skipped": list(fres.skipped),
            "edges": edges,
            "scores": scores,
            "extra": {
                "guard": self._guard(),
                "labels": labels.tolist(),
                "means": {str(k): v for k, v in means.items()},
            },
        }
        if evidence is not None:
            record["extra"]["evidence"] = evidence
        nodes = merge_nodes(labels)
        feats = fres.features.take(nodes) if self.option == "full" else None
        edges, scores = internal(edges, scores, labels)
        batch = Batch(index, paths, labels, edges, scores, feats, nodes, means)
        return batch, list(fres.skipped), record, timings, self._searches

    def _save_batch(self, index: int, key: dict, record: dict, out_dir: Path) -> None:
        checkpoint.save(
            out_dir,
            index,
            key,
            record["paths"],
            record["skipped"],
            record["edges"],
            record["scores"],
            record["extra"],
        )
        blocks.discard(out_dir, index)

    def _run_batch(
        self, index: int, files: list[str], threshold: float, out_dir: Path, timings: dict
    ) -> tuple[Batch, list[tuple[str, str]]]:
        key, cached, done = self._cached_batch(index, files, threshold, out_dir, timings)
        if done is not None:
            return done
        searches = self._searches
        batch, skipped, record, times, found = self._compute_batch(
            index, files, threshold, key, cached, out_dir
        )
        self._searches = searches + found
        for k, v in times.items():
            timings[k] = timings.get(k, 0.0) + v
        self._save_batch(index, key, record, out_dir)
        return batch, skipped
