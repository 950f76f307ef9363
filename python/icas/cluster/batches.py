"""Listing input files, ordering them and cutting them into batches."""

from __future__ import annotations

import re
from pathlib import Path

ORDERS = ("size", "name")


def list_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    """Files in folder, sorted by relative path so the result never depends on
    the directory listing order. Hidden files are ignored.

    Symbolic links: a link to a file is listed and read as the file it points
    to (even outside the folder); a broken link (or a link loop) is listed too,
    so the run reports it as skipped instead of ignoring it silently; links to
    folders are never entered (``recursive`` cannot loop)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    pattern = "**/*" if recursive else "*"
    files = [
        p
        for p in folder.glob(pattern)
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and (p.is_file() or (p.is_symlink() and not p.is_dir()))
    ]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def order_files(files: list[Path], order: str = "size") -> list[Path]:
    """``size``: by file size (similar images tend to have similar sizes, so
    they land in one batch), ties by name; ``name``: by name."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    if order == "name":
        return list(files)

    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except OSError:
            return -1  # vanished or unreadable: reported when it is read

    return sorted(files, key=size)  # stable: ties keep name order


def split(items: list, batch_size: int) -> list[list]:
    return [items[i : i + batch_size] for i in range(0, len(items), batch_size)]


_BATCH = re.compile(r"^batch_(\d+)$")
_CLUSTER = re.compile(r"^cluster_(\d+)$")


def read_batch_folders(folder: Path) -> list[tuple[list[list[Path]], list[Path]]]:
    """Parse a folder of ``batch_<i>/cluster_<k>/`` and ``batch_<i>/outliers/``
    folders (as written by ``option='dontmerge'``) into, per batch in order of
    i, (clusters as lists of files, outliers). Files inside a cluster are in
    name order; the first is the cluster's representative."""
    folder = Path(folder)
    batches = []
    for b in sorted(
        (p for p in folder.iterdir() if p.is_dir() and _BATCH.match(p.name)),
        key=lambda p: int(_BATCH.match(p.name).group(1)),
    ):
        clusters = [
            list_files(c)
            for c in sorted(
                (p for p in b.iterdir() if p.is_dir() and _CLUSTER.match(p.name)),
                key=lambda p: int(_CLUSTER.match(p.name).group(1)),
            )
        ]
        outliers = list_files(b / "outliers") if (b / "outliers").is_dir() else []
        batches.append(([c for c in clusters if c], outliers))
    if not batches:
        raise FileNotFoundError(f"{folder}: no batch_<i> folders to merge")
    return batches
