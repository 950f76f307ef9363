"""The classic clustering pipeline: features per batch, exact chaining,
merge through representatives, safe output."""

from __future__ import annotations

import logging
import numbers
import os
import sys
import time
from pathlib import Path

import numpy as np

from icas import _device, _validate
from icas.cluster import batches as _batches
from icas.cluster import blocks, checkpoint, guards, output, plan, search
from icas.cluster.folder import FolderSteps
from icas.cluster.layout import FinishSteps
from icas.cluster.links import mean_similarities
from icas.cluster.merge import Batch, MergeSteps, internal, merge_nodes
from icas.cluster.methods import (
    Extracted,
    check_method,
    default_threshold,
    extract,
    pairs,
    similarity_matrix,
    split_method,
    threshold_range,
)
from icas.cluster.result import ClusterResult
from icas.cluster.threshold import sample_indices, sample_similarities
from icas.io import _check_resize
from icas.similarity._ssim import WIN_SIZE as SSIM_WINDOW

log = logging.getLogger("icas")

OPTIONS = ("full", "dontmerge", "merge")
THRESHOLD_CHOICES = ("auto", "pick")


class Clusteror(MergeSteps, FolderSteps, FinishSteps):
    """Sort a folder of images into folders of similar images.

    Parameters mirror the original tool: ``images_folder_path``, ``method``
    (imagehash, ssim, tm, orb, minhash, or a verified pair such as
    ``"imagehash+orb"``: see :mod:`icas.cluster.verified`), ``batch_size``,
    ``threshold`` (a number; None: the method's default; ``"auto"``: chosen
    from a sample, see :mod:`icas.cluster.threshold`; ``"pick"``: chosen by
    clicking on a plot, see :mod:`icas.cluster.picker`), ``num_of_threads``,
    ``size=(w, h)`` or ``scale=(fx, fy)``, ``option`` (full, dontmerge,
    merge), ``transfer`` (copy, move, symlink, hardlink), ``overwrite``; plus
    ``out`` (default ``<input>_clustered`` beside the input), ``order`` (size
    or name), ``resume``, ``progress``, ``report`` (write report.html),
    ``linkage`` (single, average, complete) and ``max_cluster_size`` (guards
    against chaining, see :mod:`icas.cluster.guards`), ``candidate_threshold``
    (the loose threshold of a verified pair's first method),
    ``threshold_plot`` (a PNG path: save the plot of a sample's
    similarities), ``candidates`` (auto, all, index: how pairs are found,
    see :mod:`icas.cluster.search`), ``dask_scheduler`` (an address) or
    ``dask_workers`` (a local cluster of N processes) to compute the batches
    on Dask (see :mod:`icas.cluster.distributed`), ``device`` (where the
    similarity kernels run: "auto", "cpu", "cuda"; None reads ``ICAS_DEVICE``,
    see :mod:`icas._device`) and method parameters (``hash_size``,
    ``highfreq_factor``, ``nfeatures``, ``num_perm``...).

    Calling the object or :meth:`process` runs everything and returns a
    :class:`ClusterResult`.
    """

    def __init__(
        self,
        images_folder_path,
        method="imagehash",
        batch_size=1000,
        threshold=None,
        num_of_threads=None,
        size=None,
        scale=None,
        option="full",
        transfer="copy",
        overwrite=False,
        *,
        out=None,
        order="size",
        resume=False,
        progress=True,
        recursive=False,
        report=True,
        linkage="single",
        max_cluster_size=None,
        candidate_threshold=None,
        threshold_plot=None,
        candidates="auto",
        dask_scheduler=None,
        dask_workers=None,
        device=None,
        **method_params,
    ):
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
        self.linkage = linkage
        self.max_cluster_size = max_cluster_size
        self.candidate_threshold = candidate_threshold
        self.threshold_plot = threshold_plot
        self.candidates = candidates
        self.dask_scheduler = dask_scheduler
        self.dask_workers = dask_workers
        self.method_params = method_params
        # Where the similarity kernels run; an explicit "cuda" without support
        # fails here, before any image is read.
        self.device = _device.check(device)
        if self.device == "cuda":
            _device.resolve("cuda")

    def __call__(self) -> ClusterResult:
        return self.process()

    # -- validation -------------------------------------------------------
    def _check(self):
        """Validate the parameters; returns the threshold (a number, or
        'auto'/'pick') and the rule it came from."""
        check_method(self.method)
        first, second = split_method(self.method)
        if second is not None:
            from icas.cluster.verified import check_candidate_threshold

            self._candidate = check_candidate_threshold(
                first, self.candidate_threshold, self.method_params
            )
        elif self.candidate_threshold is not None:
            raise ValueError(
                "candidate_threshold applies to verified methods only "
                "(two methods joined by '+', e.g. imagehash+orb)"
            )
        else:
            self._candidate = None
        if self.option not in OPTIONS:
            raise ValueError(f"option must be one of {', '.join(OPTIONS)}, got {self.option!r}")
        bs = self.batch_size
        if isinstance(bs, bool) or not isinstance(bs, numbers.Integral) or bs < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {bs!r}")
        if self.size is not None and self.scale is not None:
            raise ValueError("give size or scale, not both")
        _validate.threads(self.num_of_threads)
        if self.method == "ssim" and self.size is not None:
            # Checked before the output folder is made, not after reading.
            (w, h), _ = _check_resize(self.size, None)
            if min(w, h) < SSIM_WINDOW:
                win = f"{SSIM_WINDOW}x{SSIM_WINDOW}"
                raise ValueError(
                    f"size {w}x{h} is smaller than the {win} SSIM window: "
                    f"pass a size of at least {win}"
                )
        guards.check_linkage(self.linkage)
        search.check(self.candidates, self.method)
        if self.dask_scheduler is not None or self.dask_workers is not None:
            from icas.cluster import distributed

            distributed.check(self.dask_scheduler, self.dask_workers)
        self._searches = []
        self._max_size = guards.check_max_size(self.max_cluster_size)
        if self.threshold_plot is not None:
            from icas.cluster.picker import _matplotlib

            _matplotlib()
            if not Path(self.threshold_plot).parent.is_dir():
                raise FileNotFoundError(
                    f"{self.threshold_plot}: the folder for the threshold plot does not exist"
                )
        if self.threshold is None:
            return default_threshold(self.method), "default"
        if isinstance(self.threshold, str) and self.threshold in THRESHOLD_CHOICES:
            if self.threshold == "pick":
                from icas.cluster.picker import check_screen

                check_screen()  # fail before any work, never open a window that cannot show
            return self.threshold, self.threshold
        if isinstance(self.threshold, str):
            raise ValueError(
                f"threshold must be a number, 'auto' or 'pick', got {self.threshold!r}"
            )
        lo, hi = threshold_range(self.method)
        return _validate.threshold(self.threshold, low=lo, high=hi), "given"

    # -- features and pairs -------------------------------------------------
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

    def _load_plan(self, out: Path, key: dict):
        """The file list of the interrupted run (see :func:`checkpoint.save_plan`)
        when a resumed run finds that its moves already took files away; None
        otherwise (then the input is listed again, new files included)."""
        if not self._moved:
            return None
        return checkpoint.load_plan(out.resolve(), key)

    def _pairs(self, fs, threshold: float, groups=None):
        """(edges, scores, evidence); evidence (both scores of every candidate
        pair) only for a verified method."""
        self._searches.append(search.used(fs, threshold, self.candidates))
        if self._candidate is None:
            e, s = pairs(
                fs,
                threshold,
                groups=groups,
                n_threads=self.num_of_threads,
                candidates=self.candidates,
                device=self.device,
            )
            return e, s, None
        from icas.cluster.verified import verified_pairs

        ev = verified_pairs(
            fs, threshold, groups=groups, n_threads=self.num_of_threads, candidates=self.candidates
        )
        e, s = ev.confirmed(threshold)
        return e, s, ev

    def _matrix(self, fs):
        return lambda idx: similarity_matrix(
            fs.take(idx), n_threads=self.num_of_threads, device=self.device
        )

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

    def _choose_threshold(self, threshold, rule: str, files: list[str], timings: dict) -> float:
        """Resolve 'auto'/'pick' and write the threshold plot, from one sample."""
        if rule not in THRESHOLD_CHOICES and self.threshold_plot is None:
            return threshold
        t = time.perf_counter()
        sample = [files[i] for i in sample_indices(len(files))]
        res = self._features(sample, timings)
        # The sample stands for the readable share of all files.
        readable = round(len(files) * len(res.paths) / max(1, len(sample)))
        stats = sample_similarities(
            res.features, self.method, readable, n_threads=self.num_of_threads
        )
        timings["threshold"] = time.perf_counter() - t
        if rule == "auto":
            threshold = stats.auto()
            log.info(
                "auto threshold for %s on %d sampled images: %.4f",
                self.method,
                len(res.paths),
                threshold,
            )
        elif rule == "pick":
            from icas.cluster.picker import pick_threshold

            threshold = pick_threshold(stats)
            print(
                f"picked threshold {threshold:.4f} (pass --threshold {threshold:.4f} to repeat)",
                file=sys.stderr,
            )
        if self.threshold_plot is not None:
            from icas.cluster.picker import save_plot

            save_plot(stats, self.threshold_plot, threshold=threshold)
        return threshold

    # -- stages -----------------------------------------------------------
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

    def _batch_pairs(self, fs, threshold: float, stamp_of, partial: Path | None):
        """(edges, scores, evidence) of a batch; a long pair stage goes by
        tiles saved to ``partial`` (see :mod:`icas.cluster.blocks`)."""
        if (why := search.advice(fs, self.candidates)) is not None:
            log.warning(why)
        tile = (
            blocks.tile_size(fs)
            if (
                self._candidate is None
                and partial is not None
                and search.used(fs, threshold, self.candidates) == "all"
            )
            else None
        )
        if tile is None:
            return self._pairs(fs, threshold)
        self._searches.append("all")
        e, s = blocks.blocked_pairs(
            fs,
            tile,
            lambda sub, groups: pairs(
                sub,
                threshold,
                groups=groups,
                n_threads=self.num_of_threads,
                candidates=self.candidates,
                device=self.device,
            ),
            path=partial,
            stamp=stamp_of(tile),
            resume=self.resume,
            progress=self.progress,
        )
        return e, s, None

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

    def process(self) -> ClusterResult:
        threshold, rule = self._check()
        src = Path(self.images_folder_path)
        if not src.is_dir():
            raise FileNotFoundError(f"{src}: input folder does not exist")
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        if self.option == "merge":
            return self._merge_folder(src, threshold, rule, timings, t0)
        out = Path(self.out) if self.out else output.default_out(src)
        self._moved = plan.moved_away(out.resolve()) if self.resume else {}
        # (a resumed move continues the interrupted run's list, whatever the
        # listing options are now)
        plan_key = {"input": str(src.resolve()), "option": self.option}
        ordered = plan.absolute(self._load_plan(out, plan_key), src, out)
        if ordered is None:
            files = _batches.list_files(src, recursive=self.recursive)
            if not files:
                raise ValueError(f"{src}: no files to cluster")
        fresh = not (out.exists() and any(out.iterdir()))
        out_dir = output.prepare(src, out, overwrite=self.overwrite, resume=self.resume)
        if ordered is None:
            ordered = [str(p) for p in _batches.order_files(files, self.order)]
            checkpoint.save_plan(out_dir, plan_key, plan.relative(ordered, src))
        try:
            threshold = self._choose_threshold(threshold, rule, ordered, timings)
        except BaseException:
            if fresh:  # leave no half-made output behind when no threshold was chosen
                output.discard(out_dir)
            raise
        chunks = _batches.split(ordered, self.batch_size)
        if self.dask_scheduler is not None or self.dask_workers is not None:
            from icas.cluster import distributed

            results, skipped = distributed.batches(self, chunks, threshold, out_dir, timings)
        else:
            results, skipped = [], []
            steps = enumerate(chunks)
            if self.progress and len(chunks) > 1:
                from tqdm import tqdm

                steps = tqdm(steps, total=len(chunks), desc="batches", unit="batch")
            for index, chunk in steps:
                batch, sk = self._run_batch(index, chunk, threshold, out_dir, timings)
                results.append(batch)
                skipped.extend(sk)
        if self.option == "dontmerge":
            labels, batch_of, reps, weak, means = self._batch_layout(results)
            dest = self._batch_destinations(results, labels, batch_of)
        else:
            t = time.perf_counter()
            labels, batch_of, reps, weak, todo = self._merge(results, threshold)
            timings["merge"] = time.perf_counter() - t
            means = self._final_means(todo, timings)
            dest = self._result_destinations(labels)
        return self._finish(
            out_dir,
            threshold,
            rule,
            labels,
            batch_of,
            reps,
            weak,
            means,
            skipped,
            dest,
            timings,
            t0,
        )
