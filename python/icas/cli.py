"""Command line: ``icas-cluster``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from icas.cluster.methods import DEFAULT_THRESHOLDS, METHODS
from icas.dl import cli as dl_cli

log = logging.getLogger("icas")


def _threshold(text: str):
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def _cluster_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="icas-cluster",
        description="Sort a folder of images into folders of similar images "
        "(results/cluster_<k>/, results/outliers/, clusters.csv).",
    )
    p.add_argument("folder", nargs="?", type=Path, help="folder of images")
    p.add_argument("--demo", nargs="?", const=Path("icas-demo"), type=Path, metavar="DIR",
                   help="make a small mixed dataset in DIR (default ./icas-demo) and cluster it")
    p.add_argument("--undo", type=Path, metavar="OUT",
                   help="reverse the transfers of the run that wrote OUT (moved files go back)")
    p.add_argument("--method", choices=(*METHODS, "dl"), default="imagehash",
                   help="similarity method, or dl: a neural network's embeddings (icas[dl])")
    p.add_argument("--threshold", type=_threshold, default=None,
                   help="similarity >= threshold links two images, or 'auto' (chosen from a "
                   "sample and printed); default per method: "
                   + ", ".join(f"{m} {t}" for m, t in DEFAULT_THRESHOLDS.items()))
    p.add_argument("--batch-size", type=int, default=1000)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--size", type=int, nargs=2, metavar=("W", "H"))
    g.add_argument("--scale", type=float, nargs=2, metavar=("FX", "FY"))
    p.add_argument("--option", choices=("full", "dontmerge", "merge"), default="full")
    p.add_argument("--transfer", choices=("copy", "move", "symlink", "hardlink"), default="copy")
    p.add_argument("--out", type=Path, help="output folder (default <folder>_clustered)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--order", choices=("size", "name"), default="size",
                   help="order of images before batching")
    p.add_argument("--recursive", action="store_true", help="also read sub-folders")
    p.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
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
        f"(method {result.method}, threshold {result.threshold:g})",
        "time: " + ", ".join(f"{k} {v:.2f} s" for k, v in t.items()),
        f"output: {result.out_dir}",
    ]
    for path, reason in result.skipped[:10]:
        lines.append(f"skipped {path}: {reason}")
    if len(result.skipped) > 10:
        lines.append(f"... {len(result.skipped) - 10} more skipped files in clusters.csv")
    return "\n".join(lines)


def cluster_main(argv: list[str] | None = None) -> int:
    parser = _cluster_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    modes = sum(x is not None for x in (args.folder, args.demo, args.undo))
    if modes != 1:
        parser.print_usage(sys.stderr)
        print("icas-cluster: error: give exactly one of FOLDER, --demo or --undo", file=sys.stderr)
        return 2
    problem = dl_cli.check(args)
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
            result = dl_cli.run(args, folder)
            print(dl_cli.summary(result))
            return 0
        from icas.cluster import Clusteror

        params = {k: v for k, v in (("hash_size", args.hash_size),
                                    ("highfreq_factor", args.highfreq_factor),
                                    ("nfeatures", args.nfeatures),
                                    ("num_perm", args.num_perm)) if v is not None}
        result = Clusteror(
            folder, method=args.method, batch_size=args.batch_size, threshold=args.threshold,
            num_of_threads=args.threads, size=tuple(args.size) if args.size else None,
            scale=tuple(args.scale) if args.scale else None, option=args.option,
            transfer=args.transfer, overwrite=args.overwrite or args.demo is not None,
            out=args.out, order=args.order, resume=args.resume, progress=not args.quiet,
            recursive=args.recursive, **params,
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
