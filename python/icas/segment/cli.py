"""Command line: ``icas-segment`` (also ``python -m icas.segment``).

``icas-segment FOLDER --method superpixel [method parameters]`` opens the
painter on the images of FOLDER (it builds a :class:`~icas.segment.Segmentator`
of the flags and runs it); ``icas-segment --preview IMAGE`` renders
every method on one image. Method parameters are flags named after the API's
parameters in kebab-case (``region_size`` -> ``--region-size``,
``sigmaColor`` -> ``--sigma-color``).

Exit codes: 0 done, 1 runtime error (one line; the traceback with ``-v``),
2 usage error (bad flag or parameter).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import textwrap
from pathlib import Path

from icas.segment.export import FORMATS
from icas.segment.methods import METHODS
from icas.segment.pipeline import (
    INTERACTIVE,
    SAM_MODES,
    ParameterError,
    Segmentator,
    method_parameters,
    resolve_params,
)

log = logging.getLogger("icas")

PROG = "icas-segment"


class UsageError(Exception):
    """A bad combination of flags (exit 2)."""


def _flag(name: str) -> str:
    """``sigmaColor`` -> ``--sigma-color``, ``region_size`` -> ``--region-size``."""
    return "--" + re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", name).lower().replace("_", "-")


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Paint pre-segmented images into per-colour masks, one image after another "
        "(outputs in FOLDER_segmented/), or preview the segmentation methods on one image.",
        epilog="keys in the painter:\n  q quit, n next, p previous, space save and next, z undo, "
        "r reset,\n  d debug views, t template painting\nmouse:\n  left fill, right unfill, "
        "double left/right continuous fill/unfill,\n  middle clicks cut, double middle ends "
        "the cut line",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folder", nargs="?", type=Path, help="folder of images to paint")
    p.add_argument(
        "--preview",
        type=Path,
        metavar="IMAGE",
        help="render every method on IMAGE side by side (a PNG and a window)",
    )
    methods = [*METHODS, *INTERACTIVE]
    p.add_argument(
        "--method",
        choices=methods,
        default="superpixel",
        help="pre-segmentation method (default superpixel)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        metavar="METHOD",
        help="with --preview: the methods to show (default all)",
    )
    p.add_argument(
        "--templates",
        nargs="+",
        type=Path,
        metavar="DIR",
        default=[],
        help="template folders for the t key, each holding templates/ and segments/ "
        "(attentions/ and masks/ optional)",
    )
    p.add_argument(
        "--template-threshold",
        type=float,
        default=None,
        metavar="T",
        help="paint every match with error <= T (default: each template's best match)",
    )
    p.add_argument(
        "--export",
        nargs="+",
        choices=FORMATS,
        default=["masks"],
        metavar="FORMAT",
        help="output formats: " + ", ".join(FORMATS) + " (default masks)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="output folder (default FOLDER_segmented beside "
        "FOLDER); with --preview the PNG (default IMAGE-STEM_preview.png here)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace outputs saved before")
    p.add_argument(
        "--thread-range",
        type=int,
        default=2,
        metavar="N",
        help="pre-segment N images on each side of the current one (default 2)",
    )
    p.add_argument(
        "--workers", type=int, default=2, metavar="N", help="threads pre-segmenting (default 2)"
    )
    p.add_argument("--alpha", type=float, default=0.5, help="opacity of paint (default 0.5)")
    p.add_argument(
        "--max-window",
        type=int,
        nargs=2,
        default=(1600, 1000),
        metavar=("W", "H"),
        help="largest window; larger images are shown scaled (default 1600 1000)",
    )
    p.add_argument(
        "--tile-width",
        type=int,
        default=None,
        metavar="N",
        help="with --preview: width of each tile (default min(image width, 400))",
    )
    p.add_argument("--no-window", action="store_true", help="with --preview: only write the PNG")
    sam = p.add_argument_group("SAM (--method sam; needs icas[sam])")
    sam.add_argument("--checkpoint", type=Path, help="local path of the SAM weights")
    sam.add_argument("--model-type", choices=("vit_b", "vit_l", "vit_h"), default="vit_b")
    sam.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    sam.add_argument(
        "--sam-cache-dir",
        type=Path,
        metavar="DIR",
        help="keep image embeddings on disk in DIR: reopening the images skips the encoder",
    )
    sam.add_argument(
        "--sam-mode",
        choices=SAM_MODES,
        default="prompt",
        help="prompt: points and boxes in a window; automatic: SAM's mask generator",
    )
    lines = []
    seen: dict[str, str] = {}
    for method, names in method_parameters().items():
        flags = [
            f"{_flag(n)} ({names[n]:g})"
            if isinstance(names[n], float)
            else f"{_flag(n)} ({names[n]})"
            for n in names
        ]
        lines.append(
            textwrap.fill(
                f"{method}: " + ", ".join(flags),
                76,
                subsequent_indent="  ",
                break_on_hyphens=False,
            )
        )
    params = p.add_argument_group(
        "method parameters (flag (default) per --method)", "\n".join(lines)
    )
    for names in method_parameters().values():
        for name in names:
            flag = _flag(name)
            if flag in seen:
                continue
            seen[flag] = name
            params.add_argument(
                flag,
                dest=f"param:{name}",
                type=_value,
                default=None,
                metavar="V",
                help=argparse.SUPPRESS,
            )
    p.add_argument("-v", "--verbose", action="store_true", help="tracebacks on errors")
    return p


def _given_params(args) -> dict:
    return {
        k.split(":", 1)[1]: v
        for k, v in vars(args).items()
        if k.startswith("param:") and v is not None
    }


def _spell(name: str, value: str | None) -> str:
    """A parameter as the command line writes it: ``--method sam``, ``FOLDER``."""
    if name == "images_folder_path":
        return "FOLDER"
    return _flag(name) if value is None else f"{_flag(name)} {value}"


def _usage(exc: ParameterError) -> UsageError:
    return UsageError(exc.render(_spell))


def _params_for(method: str, given: dict) -> dict:
    """The given parameters checked against ``method`` (UsageError when one does not apply)."""
    try:
        return resolve_params(method, given)
    except ParameterError as exc:
        raise _usage(exc) from None


# ---------------------------------------------------------------------- preview


def _preview(args, given: dict) -> int:
    from icas.io import read_image
    from icas.segment.preview import preview, save_png
    from icas.segment.windows import screen_problem, show_picture

    names = list(args.methods or METHODS)
    per_method = {}
    for name, value in given.items():
        users = [m for m in names if name in METHODS[m]]
        if not users:
            raise UsageError(f"{_flag(name)} is not a parameter of any method shown")
        for m in users:
            per_method.setdefault(m, {})[name] = value
    out = args.out or Path(f"{args.preview.stem}_preview.png")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; use --overwrite to replace it")
    image = read_image(args.preview)
    tile = args.tile_width or min(image.shape[1], 400)
    try:
        picture = preview(image, methods=names, tile_width=tile, **per_method)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    save_png(picture, out)
    print(out)
    if not args.no_window:
        problem = screen_problem()
        if problem:
            print(f"{PROG}: {problem}; the preview is only written to {out}", file=sys.stderr)
        else:
            show_picture(picture, title=f"icas preview - {args.preview.name}")
    return 0


# ---------------------------------------------------------------------- painter


def _segmentator(args, given: dict) -> Segmentator:
    """The :class:`Segmentator` the flags describe."""
    return Segmentator(
        args.folder,
        args.method,
        out=args.out,
        overwrite=args.overwrite,
        templates=args.templates or None,
        template_threshold=args.template_threshold,
        export=args.export,
        thread_range=args.thread_range,
        workers=args.workers,
        alpha=args.alpha,
        max_window=tuple(args.max_window),
        checkpoint=args.checkpoint,
        model_type=args.model_type,
        device=args.device,
        sam_cache_dir=args.sam_cache_dir,
        sam_mode=args.sam_mode,
        **given,
    )


def _jobs(args, params: dict, paths=None):
    """``(job(path) -> Loaded, tool_factory or None, workers)`` of the flags'
    method with resolved ``params``: what the Segmentator hands the prefetcher."""
    return _segmentator(args, {})._jobs(args.method, params)


def _paint(args, given: dict) -> int:
    """Build the :class:`Segmentator` of the flags and run it."""
    if args.methods or args.tile_width or args.no_window:
        raise UsageError("--methods, --tile-width and --no-window go with --preview")
    segmentator = _segmentator(args, given)

    def on_error(path, reason):
        print(f"{PROG}: cannot segment {path}: {reason}", file=sys.stderr, flush=True)

    try:
        result = segmentator.process(on_error=on_error)
    except ParameterError as exc:
        raise _usage(exc) from None
    print(
        f"{len(result.saved)} of {len(result.images)} image(s) saved to {result.out_dir}; "
        f"{len(result.skipped)} skipped"
    )
    return result.status


def main(argv: list[str] | None = None) -> int:
    """Run ``icas-segment`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    given = _given_params(args)
    try:
        if args.folder is None and args.preview is None:
            raise UsageError("give a FOLDER to paint, or --preview IMAGE")
        if args.folder is not None and args.preview is not None:
            raise UsageError("give either FOLDER or --preview IMAGE, not both")
        if args.preview is not None:
            return _preview(args, given)
        return _paint(args, given)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user; the traceback with -v
        if args.verbose:
            log.exception("failed")
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1


def run() -> None:  # pragma: no cover - console entry point
    sys.exit(main())
