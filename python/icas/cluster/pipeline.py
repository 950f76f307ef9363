"""The classic clustering pipeline: features per batch, exact chaining,
merge through representatives, safe output."""

from __future__ import annotations

import logging
import numbers
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from icas import _validate
from icas.chaining import connected_components
from icas.cluster import batches as _batches
from icas.cluster import checkpoint, output
from icas.cluster.links import weakest_links
from icas.cluster.report import write_report
from icas.cluster.threshold import auto_threshold, sample_indices
from icas.cluster.methods import (
    DEFAULT_THRESHOLDS,
    FeatureSet,
    check_method,
    extract,
    pairs,
    threshold_range,
)
from icas.cluster.transfer import Journal, Transferer

log = logging.getLogger("icas")

OPTIONS = ("full", "dontmerge", "merge")


@dataclass
class ClusterResult:
    """What a run produced.

    ``labels`` maps every clustered file to its cluster (0, 1, ...; -1 for an
    outlier); ``skipped`` lists (file, reason) for files that could not be used.
    """

    out_dir: Path
    method: str
    threshold: float
    labels: dict[str, int]
    batches: dict[str, int]
    representatives: set[str]
    weakest_link: dict[int, float]
    skipped: list[tuple[str, str]]
    destinations: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def clusters(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for path, lab in self.labels.items():
            if lab >= 0:
                out.setdefault(lab, []).append(path)
        return dict(sorted(out.items()))

    @property
    def outliers(self) -> list[str]:
        return [p for p, lab in self.labels.items() if lab < 0]

    @property
    def cluster_sizes(self) -> dict[int, int]:
        return {k: len(v) for k, v in self.clusters.items()}


@dataclass
class _Batch:
    index: int
    paths: list[str]          # images that were read, in batch order
    labels: np.ndarray        # (n,) cluster within the batch, -1 outlier
    edges: np.ndarray
    scores: np.ndarray
    features: FeatureSet | None  # of the merge nodes only (representatives + outliers)
    nodes: np.ndarray         # indices into paths of the merge nodes


def _chain(n: int, edges: np.ndarray) -> np.ndarray:
    """Components -> cluster labels 0.. in order of first appearance, -1 for
    components of one item."""
    comp = connected_components(edges, n)
    counts = np.bincount(comp, minlength=int(comp.max(initial=-1)) + 1)
    labels = np.full(n, -1, dtype=np.int64)
    seen: dict[int, int] = {}
    for i, c in enumerate(comp):
        if counts[c] >= 2:
            labels[i] = seen.setdefault(int(c), len(seen))
    return labels


def _merge_nodes(labels: np.ndarray) -> np.ndarray:
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


class Clusteror:
    """Sort a folder of images into folders of similar images.

    Parameters mirror the original tool: ``images_folder_path``, ``method``
    (imagehash, ssim, tm, orb, minhash), ``batch_size``, ``threshold`` (a
    number; None: the method's default; ``"auto"``: chosen from a sample, see
    :mod:`icas.cluster.threshold`), ``num_of_threads``, ``size=(w, h)`` or
    ``scale=(fx, fy)``, ``option`` (full, dontmerge, merge), ``transfer``
    (copy, move, symlink, hardlink), ``overwrite``; plus ``out`` (default
    ``<input>_clustered`` beside the input), ``order`` (size or name),
    ``resume``, ``progress``, ``report`` (write report.html) and method parameters (``hash_size``,
    ``highfreq_factor``, ``nfeatures``, ``num_perm``...).

    Calling the object or :meth:`process` runs everything and returns a
    :class:`ClusterResult`.
    """

    def __init__(self, images_folder_path, method="imagehash", batch_size=1000, threshold=None,
                 num_of_threads=None, size=None, scale=None, option="full", transfer="copy",
                 overwrite=False, *, out=None, order="size", resume=False, progress=True,
                 recursive=False, report=True, **method_params):
        self.images_folder_path = images_folder_path
        self.method = method
        self.batch_size = batch_size
        self.threshold = threshold
        self.num_of_threads = num_of_threads
        self.size = size
        self.scale = scale
        self.option = option
        self.transfer = transfer
        self.overwrite = overwrite
        self.out = out
        self.order = order
        self.resume = resume
        self.progress = progress
        self.recursive = recursive
        self.report = report
        self.method_params = method_params

    def __call__(self) -> ClusterResult:
        return self.process()

    # -- validation -------------------------------------------------------
    def _check(self) -> float:
        check_method(self.method)
        if self.option not in OPTIONS:
            raise ValueError(f"option must be one of {', '.join(OPTIONS)}, got {self.option!r}")
        bs = self.batch_size
        if isinstance(bs, bool) or not isinstance(bs, numbers.Integral) or bs < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {bs!r}")
        if self.size is not None and self.scale is not None:
            raise ValueError("give size or scale, not both")
        _validate.threads(self.num_of_threads)
        t = DEFAULT_THRESHOLDS[self.method] if self.threshold is None else self.threshold
        if t == "auto":
            return "auto"
        lo, hi = threshold_range(self.method)
        return _validate.threshold(t, low=lo, high=hi)

    def _features(self, paths: list[str], timings: dict):
        t = time.perf_counter()
        res = extract(paths, self.method, size=self.size, scale=self.scale,
                      n_threads=self.num_of_threads, progress=self.progress,
                      **self.method_params)
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

    def _key(self, threshold: float, paths: list[str]) -> dict:
        return {"method": self.method, "threshold": threshold, "size": self.size,
                "scale": self.scale, "params": self.method_params, "files": paths}

    def _auto_threshold(self, files: list[str], timings: dict) -> float:
        t = time.perf_counter()
        sample = [files[i] for i in sample_indices(len(files))]
        res = self._features(sample, timings)
        value = auto_threshold(res.features, self.method, n_threads=self.num_of_threads)
        timings["threshold"] = time.perf_counter() - t
        log.info("auto threshold for %s on %d sampled images: %.4f",
                    self.method, len(res.paths), value)
        return value

    # -- stages -----------------------------------------------------------
    def _run_batch(self, index: int, files: list[str], threshold: float, out_dir: Path,
                   timings: dict) -> tuple[_Batch, list[tuple[str, str]]]:
        key = self._key(threshold, files)
        cached = checkpoint.load(out_dir, index, key) if self.resume else None
        if cached is not None:
            log.info("batch %d: similarities from checkpoint", index)
            paths, skipped, edges, scores = cached
            labels = _chain(len(paths), edges)
            nodes = _merge_nodes(labels)
            feats = None
            if self.option == "full":
                feats, nodes, sk = self._node_features(paths, nodes, timings)
                skipped = skipped + sk
            return _Batch(index, paths, labels, edges, scores, feats, nodes), skipped
        fres = self._features(files, timings)
        paths = list(fres.paths)
        t = time.perf_counter()
        edges, scores = pairs(fres.features, threshold, n_threads=self.num_of_threads)
        timings["pairs"] = timings.get("pairs", 0.0) + time.perf_counter() - t
        checkpoint.save(out_dir, index, key, paths, fres.skipped, edges, scores)
        labels = _chain(len(paths), edges)
        nodes = _merge_nodes(labels)
        feats = fres.features.take(nodes) if self.option == "full" else None
        return _Batch(index, paths, labels, edges, scores, feats, nodes), list(fres.skipped)

    def process(self) -> ClusterResult:
        threshold = self._check()
        src = Path(self.images_folder_path)
        if not src.is_dir():
            raise FileNotFoundError(f"{src}: input folder does not exist")
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        if self.option == "merge":
            return self._merge_folder(src, threshold, timings, t0)
        files = _batches.list_files(src, recursive=self.recursive)
        if not files:
            raise ValueError(f"{src}: no files to cluster")
        out_dir = output.prepare(src, Path(self.out) if self.out else output.default_out(src),
                                 overwrite=self.overwrite, resume=self.resume)
        ordered = [str(p) for p in _batches.order_files(files, self.order)]
        if threshold == "auto":
            threshold = self._auto_threshold(ordered, timings)
        results, skipped = [], []
        chunks = _batches.split(ordered, self.batch_size)
        steps = enumerate(chunks)
        if self.progress and len(chunks) > 1:
            from tqdm import tqdm

            steps = tqdm(steps, total=len(chunks), desc="batches", unit="batch")
        for index, chunk in steps:
            batch, sk = self._run_batch(index, chunk, threshold, out_dir, timings)
            results.append(batch)
            skipped.extend(sk)
        if self.option == "dontmerge":
            labels, batch_of, reps, weak = self._batch_layout(results)
            dest = self._batch_destinations(results, labels, batch_of)
        else:
            t = time.perf_counter()
            labels, batch_of, reps, weak = self._merge(results, threshold)
            timings["merge"] = time.perf_counter() - t
            dest = self._result_destinations(labels)
        return self._finish(out_dir, threshold, labels, batch_of, reps, weak, skipped, dest,
                            timings, t0)

    def _batch_layout(self, results: list[_Batch]):
        labels, batch_of, reps, weak = {}, {}, set(), {}
        for b in results:
            for i, p in enumerate(b.paths):
                labels[p] = int(b.labels[i])
                batch_of[p] = b.index
            reps.update(b.paths[i] for i in b.nodes if b.labels[i] >= 0)
            for lab, w in weakest_links(b.edges, b.scores, b.labels).items():
                weak[(b.index, lab)] = w
        return labels, batch_of, reps, weak

    def _merge(self, results: list[_Batch], threshold: float):
        """Chain batch clusters through their representatives; outliers of
        every batch may join clusters (or other outliers) of other batches."""
        offsets = np.cumsum([0] + [len(b.paths) for b in results])
        n = int(offsets[-1])
        all_edges = [b.edges + offsets[k] for k, b in enumerate(results)]
        all_scores = [b.scores for b in results]
        with_nodes = [k for k, b in enumerate(results) if b.features is not None and len(b.nodes)]
        if len(with_nodes) > 1:
            fs = FeatureSet.concat([results[k].features for k in with_nodes])
            node_ids = np.concatenate([results[k].nodes + offsets[k] for k in with_nodes])
            groups = np.concatenate([np.full(len(results[k].nodes), k) for k in with_nodes])
            e, s = pairs(fs, threshold, groups=groups, n_threads=self.num_of_threads)
            all_edges.append(node_ids[e].reshape(-1, 2))
            all_scores.append(s)
        edges = np.concatenate(all_edges) if all_edges else np.empty((0, 2), np.int64)
        scores = np.concatenate(all_scores) if all_scores else np.empty(0, np.float32)
        glabels = _chain(n, edges)
        paths = [p for b in results for p in b.paths]
        batch_of = {p: b.index for b in results for p in b.paths}
        labels = {p: int(glabels[i]) for i, p in enumerate(paths)}
        reps = set()
        seen = set()
        for i, p in enumerate(paths):
            if glabels[i] >= 0 and glabels[i] not in seen:
                seen.add(glabels[i])
                reps.add(p)
        weak = weakest_links(edges, scores, glabels)
        return labels, batch_of, reps, weak

    def _merge_folder(self, src: Path, threshold: float, timings: dict, t0: float):
        """option='merge': merge an existing folder of batch folders."""
        parsed = _batches.read_batch_folders(src)
        if threshold == "auto":
            files = [str(p) for clusters, outl in parsed for p in [*sum(clusters, []), *outl]]
            threshold = self._auto_threshold(files, timings)
        out_dir = output.prepare(src, Path(self.out) if self.out else
                                 src.with_name(src.resolve().name + "_merged"),
                                 overwrite=self.overwrite, resume=self.resume)
        results, skipped = [], []
        for index, (clusters, outliers) in enumerate(parsed):
            paths = [str(p) for c in clusters for p in c] + [str(p) for p in outliers]
            labels = np.array([k for k, c in enumerate(clusters) for _ in c] +
                              [-1] * len(outliers), dtype=np.int64)
            feats, nodes, sk = self._node_features(paths, _merge_nodes(labels), timings)
            skipped.extend(sk)
            results.append(_Batch(index, paths, labels, np.empty((0, 2), np.int64),
                                  np.empty(0, np.float32), feats, nodes))
        t = time.perf_counter()
        labels, batch_of, reps, weak = self._merge_linked(results, threshold)
        timings["merge"] = time.perf_counter() - t
        dest = self._result_destinations(labels)
        return self._finish(out_dir, threshold, labels, batch_of, reps, weak, skipped, dest,
                            timings, t0)

    def _merge_linked(self, results: list[_Batch], threshold: float):
        """Merge for batches read from folders: members of one batch cluster are
        linked to their representative (similarity unknown: not counted in the
        weakest link)."""
        for b in results:
            first: dict[int, int] = {}
            links = []
            for i, lab in enumerate(b.labels):
                if lab >= 0:
                    r = first.setdefault(int(lab), i)
                    if r != i:
                        links.append((r, i))
            b.edges = np.array(links, dtype=np.int64).reshape(-1, 2)
            b.scores = np.ones(len(links), dtype=np.float32)
        labels, batch_of, reps, _ = self._merge(results, threshold)
        return labels, batch_of, reps, {}

    # -- output -----------------------------------------------------------
    def _batch_destinations(self, results, labels, batch_of) -> dict[str, str]:
        taken: dict[str, set[str]] = {}
        dest = {}
        for p, lab in labels.items():
            folder = f"batch_{batch_of[p]}/" + (f"cluster_{lab}" if lab >= 0 else "outliers")
            dest[p] = folder + "/" + output.unique_name(taken.setdefault(folder, set()),
                                                        Path(p).name)
        return dest

    def _result_destinations(self, labels) -> dict[str, str]:
        taken: dict[str, set[str]] = {}
        dest = {}
        for p, lab in labels.items():
            folder = "results/" + (f"cluster_{lab}" if lab >= 0 else "outliers")
            dest[p] = folder + "/" + output.unique_name(taken.setdefault(folder, set()),
                                                        Path(p).name)
        return dest

    def _finish(self, out_dir, threshold, labels, batch_of, reps, weak, skipped, dest,
                timings, t0, extra: dict | None = None) -> ClusterResult:
        """Transfer the files, write the manifest, the report and summary.json
        (plus the entries of ``extra``). ``threshold`` is None for methods
        without one (the deep-learning path)."""
        t = time.perf_counter()
        rows = []
        with Journal(out_dir) as journal:
            mover = Transferer(self.transfer, journal)
            items = [(Path(p), out_dir / rel) for p, rel in dest.items()]
            bar = None
            if self.progress:
                from tqdm import tqdm

                bar = tqdm(total=len(items), desc="writing", unit="file", leave=False)
            failed = []
            for k in range(0, len(items), Transferer.CHUNK):
                chunk = items[k : k + Transferer.CHUNK]
                failed += mover.transfer_many(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        for src, reason in failed:
            skipped.append((str(src), reason))
            labels.pop(str(src), None)
        for p, lab in labels.items():
            key = (batch_of[p], lab) if self.option == "dontmerge" else lab
            w = weak.get(key, "") if lab >= 0 else ""
            rows.append({
                "path": p, "destination": dest[p],
                "cluster": lab if lab >= 0 else "outliers", "batch": batch_of[p],
                "representative": int(p in reps), "weakest_link": f"{w:.6f}" if w != "" else "",
            })
        for p, reason in skipped:
            rows.append({"path": p, "cluster": "skipped", "skipped_reason": reason})
        output.write_manifest(out_dir / output.MANIFEST, rows)
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        result = ClusterResult(out_dir, self.method, threshold, labels, batch_of, reps,
                               {k: v for k, v in weak.items() if isinstance(k, int)},
                               skipped, {p: dest[p] for p in labels}, timings)
        if self.report:
            t = time.perf_counter()
            write_report(result, n_threads=self.num_of_threads)
            timings["report"] = time.perf_counter() - t
        output.write_json(out_dir / "summary.json", {
            "method": self.method, "threshold": threshold, "option": self.option,
            "images": len(labels), "clusters": len(result.clusters),
            "outliers": len(result.outliers), "skipped": len(skipped), "timings": timings,
            **(extra or {}),
        })
        return result
