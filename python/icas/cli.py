"""Command line: ``icas-cluster``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from icas import __version__
from icas.cluster import search
from icas.cluster.methods import CANDIDATE_THRESHOLDS, DEFAULT_THRESHOLDS, METHODS, check_method
from icas.dl import cli as dl_cli

log = logging.getLogger("icas")
LINKAGES = ("single", "average", "complete")


def _threshold(text: str):
    if text in ("auto", "pick"):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number, 'auto' or 'pick', got {text!r}"
        ) from None


def _method(text: str) -> str:
    if text == "dl":
        return text
    try:
        return check_method(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _person_at_a_screen() -> bool:
    """The seed asks for a threshold interactively when none is given: do so
    only when someone can answer (terminal in and out, a usable screen and
    matplotlib), so scripts and pipes never wait on a window."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return False
    try:
        from icas.cluster.picker import check_screen

        check_screen()
    except (ImportError, RuntimeError):
        return False
    return True


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {text!r}")
    return value


def _positive_int_or_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _cluster_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="icas-cluster",
        description="Sort a folder of images into folders of similar images "
        "(results/cluster_<k>/, results/outliers/, clusters.csv).",
    )
    p.add_argument("--version", action="version", version=f"icas {__version__}")
    p.add_argument("folder", nargs="?", type=Path, help="folder of images")
    p.add_argument(
        "--demo",
        nargs="?",
        const=Path("icas-demo"),
        type=Path,
        metavar="DIR",
        help="make a small mixed dataset in DIR (default ./icas-demo) and cluster it",
    )
    p.add_argument(
        "--undo",
        type=Path,
        metavar="OUT",
        help="reverse the transfers of the run that wrote OUT (moved files go back)",
    )
    p.add_argument(
        "--method",
        type=_method,
        default="imagehash",
        metavar="METHOD",
        help=f"one of {', '.join(METHODS)}, dl (a neural network's embeddings, "
        "icas[dl]), or a verified pair CHEAP+EXPENSIVE "
        "(e.g. imagehash+orb: candidates from the first at --candidate-threshold, "
        "confirmed by the second at --threshold); default imagehash",
    )
    p.add_argument(
        "--threshold",
        type=_threshold,
        default=None,
        help="similarity >= threshold links two images; 'auto' (chosen from a "
        "sample and printed) or 'pick' (click on a plot of a sample's similarities; "
        "needs a screen and icas[plot]); without --threshold, a person at a "
        "terminal with a screen and icas[plot] gets the picker, anything else the "
        "default per method: " + ", ".join(f"{m} {t}" for m, t in DEFAULT_THRESHOLDS.items()),
    )
    p.add_argument(
        "--threshold-plot",
        type=Path,
        metavar="FILE.png",
        help="save the plot of a sample's sorted similarities, with a histogram "
        "(needs icas[plot], no screen)",
    )
    p.add_argument(
        "--candidate-threshold",
        type=float,
        default=None,
        metavar="T",
        help="verified methods: loose threshold of the first method; default "
        + ", ".join(f"{m} {t}" for m, t in CANDIDATE_THRESHOLDS.items())
        + " (imagehash: for the default 64-bit hash)",
    )
    p.add_argument(
        "--linkage",
        choices=LINKAGES,
        default="single",
        help="single (default): chains of similar pairs; average/complete: "
        "stricter, guard against chaining",
    )
    p.add_argument(
        "--max-cluster-size",
        type=_positive_int,
        nargs="+",
        default=None,
        metavar="N",
        help="split clusters of more than N images by raising the "
        "threshold inside them; with --method dl: HDBSCAN's largest cluster sizes "
        "to try (default no limit)",
    )
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument(
        "--candidates",
        choices=("auto", "all", "index"),
        default="auto",
        help="how pairs are found (imagehash, minhash, orb): all compares every "
        "pair; index searches an index first (imagehash: exact; minhash: LSH, "
        "approximate, its expected recall is reported; orb: only images sharing "
        "a near-identical descriptor, approximate, about 3x faster); auto "
        "(default): the kernel decides, always exact",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--size", type=int, nargs=2, metavar=("W", "H"))
    g.add_argument("--scale", type=float, nargs=2, metavar=("FX", "FY"))
    p.add_argument("--option", choices=("full", "dontmerge", "merge"), default="full")
    p.add_argument("--transfer", choices=("copy", "move", "symlink", "hardlink"), default="copy")
    p.add_argument("--out", type=Path, help="output folder (default <folder>_clustered)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument(
        "--order", choices=("size", "name"), default="size", help="order of images before batching"
    )
    p.add_argument("--recursive", action="store_true", help="also read sub-folders")
    p.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=None,
        help="where similarities (or, with --method dl, torch) run: auto uses "
        "CUDA when available (default: env ICAS_DEVICE, else auto)",
    )
    d = p.add_mutually_exclusive_group()
    d.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        default=None,
        help="compute the batches on this Dask cluster (e.g. tcp://host:8786; "
        "icas[dask]); workers must see the input folder at the same path",
    )
    d.add_argument(
        "--dask-workers",
        type=_positive_int_or_one,
        metavar="N",
        default=None,
        help="compute the batches on a local Dask cluster of N processes (icas[dask])",
    )
    p.add_argument("--hash-size", type=int, default=None, help="imagehash: hash size (64)")
    p.add_argument("--highfreq-factor", type=int, default=None, help="imagehash: factor (16)")
    p.add_argument("--nfeatures", type=int, default=None, help="orb: features per image (500)")
    p.add_argument("--num-perm", type=int, default=None, help="minhash: permutations (128)")
    dl_cli.add_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="log details and tracebacks")
    return p


def _summary(result) -> str:
    t = result.timings
    lines = [
        f"{len(result.labels)} images -> {len(result.clusters)} clusters, "
        f"{len(result.outliers)} outliers, {len(result.skipped)} skipped "
        f"(method {result.method}, "
        + {"auto": "auto ", "pick": "picked ", "default": "default "}.get(result.threshold_rule, "")
        + f"threshold {result.threshold:g}"
        + (f", {result.linkage} linkage" if result.linkage != "single" else "")
        + (f", at most {result.max_cluster_size} per cluster" if result.max_cluster_size else "")
        + (f", {found}" if (found := search.summary_text(result.candidates)) else "")
        + ")",
        "time: " + ", ".join(f"{k} {v:.2f} s" for k, v in t.items()),
        f"output: {result.out_dir}",
    ]
    for path, reason in result.skipped[:10]:
        lines.append(f"skipped {path}: {reason}")
    if len(result.skipped) > 10:
        lines.append(f"... {len(result.skipped) - 10} more skipped files in clusters.csv")
    return "\n".join(lines)


def _run_options(args: argparse.Namespace) -> dict:
    """The options of a run that the classic and the deep-learning pipelines
    share (Clusteror and DLClusteror take them under the same names)."""
    return {
        "batch_size": args.batch_size,
        "num_of_threads": args.threads,
        "option": args.option,
        "transfer": args.transfer,
        "overwrite": args.overwrite or args.demo is not None,
        "out": args.out,
        "order": args.order,
        "resume": args.resume,
        "progress": not args.quiet,
        "recursive": args.recursive,
    }


def cluster_main(argv: list[str] | None = None) -> int:
    parser = _cluster_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    modes = sum(x is not None for x in (args.folder, args.demo, args.undo))
    if modes != 1:
        parser.print_usage(sys.stderr)
        print("icas-cluster: error: give exactly one of FOLDER, --demo or --undo", file=sys.stderr)
        return 2
    problem = dl_cli.check(args)
    if not problem and args.method != "dl" and len(args.max_cluster_size or ()) > 1:
        problem = "--max-cluster-size takes one value (several only with --method dl)"
    if (
        not problem
        and args.method == "dl"
        and (args.candidates != "auto" or args.dask_scheduler or args.dask_workers)
    ):
        problem = "--candidates, --dask-scheduler and --dask-workers do not apply to --method dl"
    if problem:
        parser.print_usage(sys.stderr)
        print(f"icas-cluster: error: {problem}", file=sys.stderr)
        return 2
    try:
        if args.undo is not None:
            from icas.cluster.transfer import undo

            n, problems = undo(args.undo)
            print(f"undone {n} transfers from {args.undo}")
            for p in problems:
                print(f"not undone: {p}", file=sys.stderr)
            return 1 if problems else 0
        folder = args.folder
        if args.demo is not None:
            from icas.demo import make_demo

            folder = make_demo(args.demo)
            print(f"demo images written to {folder}", file=sys.stderr)
        if args.method == "dl":
            result = dl_cli.run(args, folder, **_run_options(args))
            print(dl_cli.summary(result))
            return 0
        from icas.cluster import Clusteror

        threshold = args.threshold
        if threshold is None and _person_at_a_screen():
            threshold = "pick"

        params = {
            k: v
            for k, v in (
                ("hash_size", args.hash_size),
                ("highfreq_factor", args.highfreq_factor),
                ("nfeatures", args.nfeatures),
                ("num_perm", args.num_perm),
            )
            if v is not None
        }
        result = Clusteror(
            folder,
            method=args.method,
            threshold=threshold,
            size=tuple(args.size) if args.size else None,
            scale=tuple(args.scale) if args.scale else None,
            linkage=args.linkage,
            max_cluster_size=args.max_cluster_size[0] if args.max_cluster_size else None,
            candidate_threshold=args.candidate_threshold,
            threshold_plot=args.threshold_plot,
            device=args.device,
            candidates=args.candidates,
            dask_scheduler=args.dask_scheduler,
            dask_workers=args.dask_workers,
            **_run_options(args),
            **params,
        ).process()
    except KeyboardInterrupt:
        print("icas-cluster: interrupted; run again with --resume to finish", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user; the traceback with -v
        if args.verbose:
            log.exception("failed")
        print(f"icas-cluster: error: {exc}", file=sys.stderr)
        return 1
    print(_summary(result))
    return 0


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(cluster_main())
