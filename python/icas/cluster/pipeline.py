"""The classic clustering pipeline: features per batch, exact chaining,
merge through representatives, safe output."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from icas import _device
from icas.cluster import batches as _batches
from icas.cluster import blocks, checkpoint, output, params, plan, search
from icas.cluster.compute import BatchSteps
from icas.cluster.folder import FolderSteps
from icas.cluster.layout import FinishSteps, Placement
from icas.cluster.merge import MergeSteps
from icas.cluster.methods import pairs
from icas.cluster.params import OPTIONS
from icas.cluster.result import ClusterResult
from icas.cluster.threshold import THRESHOLD_CHOICES
from icas.cluster.threshold import choose as choose_threshold

log = logging.getLogger("icas")

__all__ = ["OPTIONS", "THRESHOLD_CHOICES", "ClusterResult", "Clusteror"]


class Clusteror(BatchSteps, MergeSteps, FolderSteps, FinishSteps):
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
        threshold, rule, self._candidate, self._max_size = params.check(self)
        self._searches = []
        return threshold, rule

    def _choose_threshold(self, threshold, rule: str, files: list[str], timings: dict) -> float:
        """Resolve 'auto'/'pick' and write the threshold plot, from one sample."""
        if rule not in THRESHOLD_CHOICES and self.threshold_plot is None:
            return threshold
        return choose_threshold(
            threshold,
            rule,
            files,
            lambda sample: self._features(sample, timings),
            self.method,
            timings,
            n_threads=self.num_of_threads,
            plot=self.threshold_plot,
        )

    # -- pairs --------------------------------------------------------------
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

    # -- the run ----------------------------------------------------------
    def _load_plan(self, out: Path, key: dict):
        """The file list of the interrupted run (see :func:`checkpoint.save_plan`)
        when a resumed run finds that its moves already took files away; None
        otherwise (then the input is listed again, new files included)."""
        if not self._moved:
            return None
        return checkpoint.load_plan(out.resolve(), key)

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
            placed = Placement(labels, batch_of, reps, weak, means, dest)
        else:
            placed = self._merged_placement(self._merge, results, threshold, timings)
        return self._finish(out_dir, threshold, rule, placed, skipped, timings, t0)
