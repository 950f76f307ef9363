"""``icas-cluster --method dl``: the deep-learning flags and the run.

Importing this module needs nothing optional, so the flags show in
``--help`` without torch; the run imports :mod:`icas.dl.pipeline` and raises
the ImportError naming ``icas[dl]`` when the extra is missing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ALGORITHMS = ("kmeans", "hierarchy", "DBSCAN", "gaussian", "HDBSCAN")
LOSSES = ("mse", "mae", "perceptual")

# dest -> the keyword of DLClusteror it feeds
_DL_FLAGS = {
    "algorithm": "algorithm",
    "n_clusters": "n_clusters",
    "epochs": "epochs",
    "loss": "loss",
    "checkpoint": "checkpoint",
    "device": "device",
    "eps": "eps",
    "min_samples": "min_samples",
    "min_cluster_size": "min_cluster_size",
    "max_cluster_size": "max_cluster_size",
    "max_iter": "max_iter",
    "image_size": "image_size",
    "vgg_weights": "vgg_weights",
    "reduce": "reduce",
    "neighbors": "neighbors",
}
# flags the classic methods share (--max-cluster-size: with dl, HDBSCAN's
# grid; --device, a top-level flag: with dl, where torch runs)
_SHARED = ("max_cluster_size", "device")
# classic-only flags (dest, default) that mean nothing with --method dl
_CLASSIC_ONLY = (
    ("threshold", None),
    ("size", None),
    ("scale", None),
    ("hash_size", None),
    ("highfreq_factor", None),
    ("nfeatures", None),
    ("num_perm", None),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``--method dl`` flags to ``parser`` as one argument group."""
    g = parser.add_argument_group('deep learning (--method dl; needs pip install "icas[dl]")')
    g.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        default=None,
        help="clustering of the embeddings (default kmeans)",
    )
    g.add_argument(
        "--n-clusters",
        type=int,
        nargs="+",
        metavar="N",
        help="kmeans/hierarchy/gaussian: numbers of clusters to try (default 2..20)",
    )
    g.add_argument(
        "--max-iter",
        type=int,
        nargs="+",
        metavar="N",
        help="kmeans/gaussian: iteration limits to try",
    )
    g.add_argument(
        "--eps",
        type=float,
        nargs="+",
        metavar="E",
        help="DBSCAN: radii to try (default: from the data)",
    )
    g.add_argument(
        "--min-samples",
        type=int,
        nargs="+",
        metavar="N",
        help="DBSCAN/HDBSCAN: neighbourhood sizes to try",
    )
    g.add_argument(
        "--min-cluster-size",
        type=int,
        nargs="+",
        metavar="N",
        help="HDBSCAN: smallest cluster sizes to try (default 5 10)",
    )
    g.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs (default 15; ignored with --checkpoint)",
    )
    g.add_argument("--loss", choices=LOSSES, default=None, help="training loss (default mse)")
    g.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="load this model instead of training (e.g. <out>/dl/model.pt of an earlier run)",
    )
    g.add_argument(
        "--vgg-weights",
        type=Path,
        metavar="FILE",
        help="perceptual loss: local VGG19 weights (default random, with a warning)",
    )
    g.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="N",
        help="square model input, a power of two (default 64, or the checkpoint's)",
    )
    g.add_argument(
        "--reduce",
        choices=("spectral", "l2", "none"),
        default=None,
        help="embedding preparation before clustering (default spectral)",
    )
    g.add_argument(
        "--neighbors",
        choices=("auto", "exact", "ann"),
        default=None,
        help="nearest-neighbour search: exact, approximate (HNSW; needs pip install "
        '"icas[ann]"), or auto: approximate from 10,000 embeddings on when '
        "installed (default auto)",
    )


def check(args: argparse.Namespace) -> str | None:
    """A usage error for flags that do not fit the method, or None."""
    if args.method == "dl":
        given = [d for d, default in _CLASSIC_ONLY if getattr(args, d, default) is not default]
        if given:
            return (
                f"--{given[0].replace('_', '-')} does not apply to --method dl "
                "(use --image-size for the input size)"
            )
        return None
    given = [d for d in _DL_FLAGS if d not in _SHARED and getattr(args, d, None) is not None]
    if given:
        return f"--{given[0].replace('_', '-')} applies only to --method dl"
    return None


def run(args: argparse.Namespace, folder: Path, **options):
    """Run :class:`icas.dl.DLClusteror` with the parsed flags and the run
    `options` shared with the classic pipeline; returns its result."""
    from icas.dl.pipeline import DLClusteror

    kwargs = {
        kw: getattr(args, dest)
        for dest, kw in _DL_FLAGS.items()
        if getattr(args, dest, None) is not None
    }
    return DLClusteror(folder, **options, **kwargs).process()


def summary(result) -> str:
    """The lines ``icas-cluster`` prints after a deep-learning run."""
    t = result.timings
    merged = [s for s in result.selection if s["stage"] == "merge"]
    batches = [s for s in result.selection if s["stage"] != "merge"]
    lines = [
        f"{len(result.labels)} images -> {len(result.clusters)} clusters, "
        f"{len(result.outliers)} outliers, {len(result.skipped)} skipped "
        f"(method dl, algorithm {result.algorithm})",
    ]
    for s in batches[:5]:
        lines.append(
            f"batch {s['stage']}: best {s['best_params']} -> {s['clusters']} clusters, "
            f"{s['outliers']} outliers"
        )
    if len(batches) > 5:
        lines.append(f"... {len(batches) - 5} more batches in summary.json")
    for s in merged:
        lines.append(
            f"merge of {s['images']} representatives and outliers: best {s['best_params']}"
        )
    how = "trained and saved to" if result.trained else "loaded from"
    if result.model_path:
        lines.append(
            f"model {how} {result.model_path}"
            + ("" if not result.trained else " (pass --checkpoint to reuse it)")
        )
    lines.append("time: " + ", ".join(f"{k} {v:.2f} s" for k, v in t.items()))
    lines.append(f"output: {result.out_dir}")
    for path, reason in result.skipped[:10]:
        lines.append(f"skipped {path}: {reason}")
    if len(result.skipped) > 10:
        lines.append(f"... {len(result.skipped) - 10} more skipped files in clusters.csv")
    return "\n".join(lines)
