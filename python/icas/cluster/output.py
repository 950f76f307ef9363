"""The output folder: safety checks, layout, manifest."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

from icas.cluster.transfer import JOURNAL_NAME, UNDONE_NAME, Journal

MARKER = ".icas-output"
MANIFEST = "clusters.csv"
MANIFEST_FIELDS = (
    "path",
    "destination",
    "cluster",
    "batch",
    "representative",
    "cluster_size",
    "weakest_link",
    "mean_similarity",
    "skipped_reason",
)
OUR_ENTRIES = ("results", "checkpoints", MANIFEST, "summary.json", "report.html", "thumbnails")


class OutputError(RuntimeError):
    """The output folder cannot be used as asked; the message says why and what to do."""


def default_out(input_dir: Path) -> Path:
    input_dir = Path(input_dir).resolve()
    return input_dir.with_name(input_dir.name + "_clustered")


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def prepare(input_dir: Path, out_dir: Path, *, overwrite: bool, resume: bool) -> Path:
    """Check and create the output folder; returns its resolved path.

    Refuses an output inside the input (the next run would cluster its own
    output) and an existing output unless ``resume`` (continue it) or
    ``overwrite`` (clear what icas wrote there). Overwrite refuses a folder
    icas did not create, and one holding moved originals (undo it first).
    """
    input_dir = Path(input_dir).resolve()
    out_dir = Path(out_dir).resolve()
    if _inside(out_dir, input_dir):
        raise OutputError(
            f"{out_dir}: the output folder must not be inside the input folder {input_dir}"
        )
    if _inside(input_dir, out_dir):
        raise OutputError(
            f"{out_dir}: the output folder must not contain the input folder {input_dir}"
        )
    if out_dir.exists() and any(out_dir.iterdir()):
        if resume:
            if not (out_dir / MARKER).exists():
                raise OutputError(f"{out_dir}: not an icas output folder; cannot resume it")
            _mark(out_dir)
            return out_dir
        if not overwrite:
            raise OutputError(
                f"{out_dir}: output folder exists; pass --overwrite to replace it, "
                "--resume to continue it, or --out to choose another"
            )
        if not (out_dir / MARKER).exists():
            raise OutputError(
                f"{out_dir}: exists and was not written by icas; refusing to overwrite it"
            )
        if _holds_moved_files(out_dir):
            raise OutputError(
                f"{out_dir}: holds files moved there by an earlier run; run `icas-cluster --undo "
                f"{out_dir}` first so no original is deleted"
            )
        clear(out_dir)
    _mark(out_dir)
    return out_dir


def _mark(out_dir: Path) -> None:
    """Create the folder and its marker: the first write, so a read-only or
    full output fails here, before any work, with one clear message."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / MARKER).write_text("written by icas\n", encoding="utf-8")
    except OSError as exc:
        raise OutputError(
            f"{out_dir}: cannot write to the output folder: {exc.strerror or exc}; "
            "choose another with --out"
        ) from exc


def _holds_moved_files(out_dir: Path) -> bool:
    entries, _ = Journal(out_dir).read()
    return any(e.mode == "move" and Path(e.dst).exists() for e in entries.values())


def clear(out_dir: Path) -> None:
    """Remove what an icas run wrote (never anything else)."""
    for name in OUR_ENTRIES + (JOURNAL_NAME, UNDONE_NAME):
        p = out_dir / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    for p in out_dir.glob("batch_*"):
        if p.is_dir():
            shutil.rmtree(p)


def discard(out_dir: Path) -> None:
    """Remove an output folder a run made but could not start (no threshold
    was chosen): what icas wrote, its marker, and the folder if then empty."""
    clear(out_dir)
    (out_dir / MARKER).unlink(missing_ok=True)
    if not any(out_dir.iterdir()):
        out_dir.rmdir()


def unique_name(folder_names: set[str], name: str) -> str:
    """name, or name with _1, _2... before the suffix if it is taken."""
    if name not in folder_names:
        folder_names.add(name)
        return name
    stem, suffix = os.path.splitext(name)
    k = 1
    while f"{stem}_{k}{suffix}" in folder_names:
        k += 1
    new = f"{stem}_{k}{suffix}"
    folder_names.add(new)
    return new


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    # (surrogateescape: a file name that is not valid UTF-8 is written as
    # the bytes it has on disk instead of failing the whole run)
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_manifest(path: Path, rows: list[dict]) -> None:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in MANIFEST_FIELDS})
    write_atomic(path, buf.getvalue())


def read_manifest(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        return list(csv.DictReader(fh))


def write_json(path: Path, data) -> None:
    # ASCII with escapes: any file name (even one that is not valid UTF-8)
    # round-trips through json.loads.
    write_atomic(path, json.dumps(data, indent=1))
