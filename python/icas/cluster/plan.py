"""The run plan and resume helpers: the file list an interrupted run saved
(see :func:`icas.cluster.checkpoint.save_plan`), checked before a resumed run
trusts it, and the files an interrupted ``move`` already took from the input."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from icas.cluster import checkpoint, output
from icas.cluster.transfer import Journal, inside


def relative(paths, src: Path) -> list[str]:
    """Paths under src as the plan stores them (relative, with forward slashes)."""
    return [Path(p).relative_to(src).as_posix() for p in paths]


def _bad_plan(out: Path, why: str) -> output.OutputError:
    return output.OutputError(
        f"{checkpoint.plan_path(out)}: {why}; refusing to resume from it "
        "(delete it to list the input folder afresh)"
    )


def absolute(items, src: Path, out: Path) -> list[str] | None:
    """Plan items back to paths under src (None without a plan). A plan is a
    file anyone could have edited: one naming anything but a plain relative
    path inside src (which a move would then take) is refused."""
    if items is None:
        return None
    if not isinstance(items, list) or not items:
        raise _bad_plan(out, "not a list of files")
    paths = []
    for rel in items:
        pure = PurePosixPath(rel) if isinstance(rel, str) else None
        path = src / rel if pure is not None else None
        if (
            pure is None
            or rel in ("", ".")
            or pure.is_absolute()
            or ".." in pure.parts
            or not inside(path, src)
        ):  # (the last: drives, backslashes on Windows)
            raise _bad_plan(out, f"names {rel!r}, which is not a file inside {src}")
        paths.append(str(path))
    return paths


# Merge-mode plans are flat lists of "batch/cluster/relative path" rows
# (cluster -1: outliers), so the same validation applies to every path.
def flatten(parsed, src: Path) -> list[str]:
    return [
        f"{b}/{k}/{Path(p).relative_to(src).as_posix()}"
        for b, (clusters, outliers) in enumerate(parsed)
        for k, members in [*enumerate(clusters), (-1, outliers)]
        for p in members
    ]


def unflatten(flat, src: Path, out: Path):
    """The batches of a merge plan (None without a plan)."""
    if flat is None or flat == []:
        return None
    if not isinstance(flat, list):
        raise _bad_plan(out, "not a list of batch/cluster/file rows")
    try:
        rows = [(int(b), int(k), rel) for b, k, rel in (r.split("/", 2) for r in flat)]
    except (ValueError, TypeError, AttributeError):
        raise _bad_plan(out, "not a list of batch/cluster/file rows") from None
    paths = absolute([rel for _, _, rel in rows], src, out)
    batches: dict[int, tuple[dict[int, list[Path]], list[Path]]] = {}
    for (b, k, _), p in zip(rows, paths, strict=True):
        clusters, outliers = batches.setdefault(b, ({}, []))
        (outliers if k < 0 else clusters.setdefault(k, [])).append(Path(p))
    return [([c[k] for k in sorted(c)], o) for _, (c, o) in sorted(batches.items())]


def moved_away(out_dir: Path) -> dict[str, str]:
    """{source: where it is now} for files an interrupted ``move`` into
    out_dir already took from the input (sources by absolute path)."""
    entries, _ = Journal(out_dir).read()
    return {
        os.path.abspath(e.src): e.dst
        for e in entries.values()
        if e.mode == "move"
        and inside(e.dst, out_dir)
        and os.path.lexists(e.dst)
        and not os.path.lexists(e.src)
    }
