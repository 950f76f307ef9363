"""Where every file goes in the output folder, and the final write: transfer,
manifest, report and summary.json."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from icas.cluster import output, search
from icas.cluster.report import write_report
from icas.cluster.result import ClusterResult
from icas.cluster.transfer import Journal, Transferer


@dataclass
class Placement:
    """Where a run put every image: its cluster (``labels``, -1 outliers), its
    batch, the representatives, per-cluster weakest link and mean similarity
    (empty without a similarity graph) and the destination relative to the
    output folder."""

    labels: dict[str, int]
    batch_of: dict[str, int]
    reps: set[str]
    weak: dict
    means: dict
    dest: dict[str, str]


def _destinations(labels: dict[str, int], prefix) -> dict[str, str]:
    """{path: destination relative to the output}; ``prefix(path)`` names the
    folder above the cluster folders. Names clashing in one folder are made
    unique."""
    taken: dict[str, set[str]] = {}
    dest = {}
    for p, lab in labels.items():
        folder = prefix(p) + (f"cluster_{lab}" if lab >= 0 else "outliers")
        dest[p] = folder + "/" + output.unique_name(taken.setdefault(folder, set()), Path(p).name)
    return dest


def batch_destinations(labels: dict[str, int], batch_of: dict[str, int]) -> dict[str, str]:
    """Option 'dontmerge': ``batch_<b>/cluster_<k>`` and ``batch_<b>/outliers``."""
    return _destinations(labels, lambda p: f"batch_{batch_of[p]}/")


def result_destinations(labels: dict[str, int]) -> dict[str, str]:
    """Merged clusters: ``results/cluster_<k>`` and ``results/outliers``."""
    return _destinations(labels, lambda p: "results/")


def transfer_files(
    dest: dict[str, str], out_dir: Path, mode: str, *, progress: bool
) -> list[tuple[Path, str]]:
    """Copy (move, link) every file to its destination under out_dir, in
    journalled chunks; returns (source, reason) of the files that failed."""
    with Journal(out_dir) as journal:
        mover = Transferer(mode, journal, root=out_dir)
        items = [(Path(p), out_dir / rel) for p, rel in dest.items()]
        bar = None
        if progress:
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
    return failed


def manifest_rows(
    labels, batch_of, reps, weak, means, skipped, dest, *, per_batch: bool
) -> list[dict]:
    """Rows of the manifest: one per clustered file, then one per skipped
    file. With ``per_batch`` (option 'dontmerge') clusters are keyed by
    (batch, cluster), as are ``weak`` and ``means``."""

    def key(p, lab):
        return (batch_of[p], lab) if per_batch else lab

    sizes: dict = {}
    for p, lab in labels.items():
        if lab >= 0:
            sizes[key(p, lab)] = sizes.get(key(p, lab), 0) + 1
    rows = []
    for p, lab in labels.items():
        k = key(p, lab)
        w = weak.get(k) if lab >= 0 else None
        m = means.get(k) if lab >= 0 else None
        rows.append(
            {
                "path": p,
                "destination": dest[p],
                "cluster": lab if lab >= 0 else "outliers",
                "batch": batch_of[p],
                "representative": int(p in reps),
                "cluster_size": sizes.get(k, "") if lab >= 0 else "",
                "weakest_link": "" if w is None else f"{w:.6f}",
                "mean_similarity": "" if m is None else f"{m:.6f}",
            }
        )
    for p, reason in skipped:
        rows.append({"path": p, "cluster": "skipped", "skipped_reason": reason})
    return rows


class FinishSteps:
    """The output stage of :class:`icas.cluster.Clusteror` (and of the
    deep-learning pipeline, which reuses it); reads the run's parameters
    (``transfer``, ``progress``, ``option``, ``method``, ``report``...) and
    the state the validation set (``_candidate``, ``_max_size``,
    ``_searches``)."""

    def _batch_destinations(self, results, labels, batch_of) -> dict[str, str]:
        return batch_destinations(labels, batch_of)

    def _result_destinations(self, labels) -> dict[str, str]:
        return result_destinations(labels)

    def _finish(
        self, out_dir, threshold, rule, placed: Placement, skipped, timings, t0,
        extra: dict | None = None,
    ) -> ClusterResult:  # fmt: skip
        """Transfer the files, write the manifest, the report and summary.json
        (plus the entries of ``extra``). ``threshold`` is None for methods
        without one (the deep-learning path)."""
        labels, batch_of, reps = placed.labels, placed.batch_of, placed.reps
        weak, means, dest = placed.weak, placed.means, placed.dest
        t = time.perf_counter()
        failed = transfer_files(dest, out_dir, self.transfer, progress=self.progress)
        for src, reason in failed:
            skipped.append((str(src), reason))
            labels.pop(str(src), None)
        rows = manifest_rows(
            labels, batch_of, reps, weak, means, skipped, dest, per_batch=self.option == "dontmerge"
        )
        output.write_manifest(out_dir / output.MANIFEST, rows)
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        found = (
            search.describe(
                self.method,
                self.candidates,
                threshold,
                self._searches,
                num_perm=self.method_params.get("num_perm"),
                candidate_threshold=self._candidate,
            )
            if threshold is not None
            else {}
        )
        result = ClusterResult(
            out_dir,
            self.method,
            threshold,
            labels,
            batch_of,
            reps,
            dict(sorted(weak.items())),
            skipped,
            {p: dest[p] for p in labels},
            timings,
            dict(sorted(means.items())),
            self.linkage,
            self._max_size,
            self._candidate,
            rule,
            self.option,
            found,
        )
        if self.report:
            t = time.perf_counter()
            write_report(result, n_threads=self.num_of_threads)
            timings["report"] = time.perf_counter() - t
        output.write_json(
            out_dir / "summary.json",
            {
                "method": self.method,
                "threshold": threshold,
                "threshold_rule": rule,
                "candidate_threshold": self._candidate,
                "linkage": self.linkage,
                "max_cluster_size": self._max_size,
                "option": self.option,
                **({"candidates": found} if found else {}),
                "images": len(labels),
                "clusters": len(result.clusters),
                "outliers": len(result.outliers),
                "skipped": len(skipped),
                "timings": timings,
                **(extra or {}),
            },
        )
        return result
