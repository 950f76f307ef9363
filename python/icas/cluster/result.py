"""What a clustering run produced: :class:`ClusterResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ClusterResult:
    """What a run produced.

    ``labels`` maps every clustered file to its cluster (0, 1, ...; -1 for an
    outlier); ``skipped`` lists (file, reason) for files that could not be used.
    ``weakest_link`` and ``mean_similarity`` map clusters (keys as in
    :attr:`clusters`) to their diagnostics
    (see :mod:`icas.cluster.links`); ``threshold_rule`` says where the
    threshold came from (given, default, auto, pick).
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
    mean_similarity: dict[int, float] = field(default_factory=dict)
    linkage: str = "single"
    max_cluster_size: int | None = None
    candidate_threshold: float | None = None
    threshold_rule: str = "given"
    option: str = "full"
    candidates: dict = field(default_factory=dict)

    @property
    def clusters(self) -> dict:
        """{cluster: [paths]}; with option 'dontmerge' the keys are (batch,
        cluster within the batch), as are those of the diagnostics."""
        per_batch = self.option == "dontmerge"
        out: dict = {}
        for path, lab in self.labels.items():
            if lab >= 0:
                out.setdefault((self.batches[path], lab) if per_batch else lab, []).append(path)
        return dict(sorted(out.items()))

    @property
    def outliers(self) -> list[str]:
        return [p for p, lab in self.labels.items() if lab < 0]

    @property
    def cluster_sizes(self) -> dict[int, int]:
        return {k: len(v) for k, v in self.clusters.items()}
