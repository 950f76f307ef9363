"""Option 'merge': merge an existing folder of batch folders (the output of a
'dontmerge' run, or folders sorted by hand) into one set of clusters."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from icas.cluster import batches as _batches
from icas.cluster import checkpoint, output, plan
from icas.cluster.merge import Batch, merge_nodes


class FolderSteps:
    """The folder merge of :class:`icas.cluster.Clusteror`; runs the same
    stages as :meth:`~icas.cluster.Clusteror.process`, with the batches read
    from folders instead of computed."""

    def _merge_folder(self, src: Path, threshold, rule: str, timings: dict, t0: float):
        """option='merge': merge an existing folder of batch folders."""
        out = Path(self.out) if self.out else src.with_name(src.resolve().name + "_merged")
        self._moved = plan.moved_away(out.resolve()) if self.resume else {}
        plan_key = {"input": str(src.resolve()), "option": self.option}
        planned = plan.unflatten(self._load_plan(out, plan_key), src, out)
        parsed = planned if planned is not None else _batches.read_batch_folders(src)
        fresh = not (out.exists() and any(out.iterdir()))
        out_dir = output.prepare(src, out, overwrite=self.overwrite, resume=self.resume)
        if planned is None:
            checkpoint.save_plan(out_dir, plan_key, plan.flatten(parsed, src))
        files = [str(p) for clusters, outl in parsed for p in [*sum(clusters, []), *outl]]
        try:
            threshold = self._choose_threshold(threshold, rule, files, timings)
        except BaseException:
            if fresh:  # leave no half-made output behind when no threshold was chosen
                output.discard(out_dir)
            raise
        results, skipped = [], []
        for index, (clusters, outliers) in enumerate(parsed):
            paths = [str(p) for c in clusters for p in c] + [str(p) for p in outliers]
            labels = np.array(
                [k for k, c in enumerate(clusters) for _ in c] + [-1] * len(outliers),
                dtype=np.int64,
            )
            feats, nodes, sk = self._node_features(paths, merge_nodes(labels), timings)
            skipped.extend(sk)
            results.append(
                Batch(
                    index,
                    paths,
                    labels,
                    np.empty((0, 2), np.int64),
                    np.empty(0, np.float32),
                    feats,
                    nodes,
                )
            )
        placed = self._merged_placement(self._merge_units, results, threshold, timings)
        return self._finish(out_dir, threshold, rule, placed, skipped, timings, t0)
