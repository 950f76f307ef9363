"""Putting files into the output folder without ever losing one.

Every transfer (copy, move, symlink, hardlink) is written to a journal
(JSON lines) before it starts and marked done after, so an interrupted run can
be finished (``resume``) or rolled back (``undo``). A move within one file
system is a single ``os.replace``; across file systems the file is copied to a
temporary name, flushed, renamed into place and only then is the source
removed, so at every instant at least one complete copy exists.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

TRANSFERS = ("copy", "move", "symlink", "hardlink")
JOURNAL_NAME = "journal.jsonl"


class TransferError(RuntimeError):
    """A file could not be transferred; the message names it."""


@dataclass(frozen=True)
class Entry:
    src: str
    dst: str
    mode: str


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _copy_atomic(src: Path, dst: Path, *, durable: bool = False) -> None:
    """Copy to a temporary name beside dst, then rename into place, so a
    file under its final name is always complete. ``durable`` also flushes
    it to disk first: needed only when the source is deleted afterwards."""
    tmp = dst.with_name(f".{dst.name}.icas-tmp")
    shutil.copy2(src, tmp)
    if durable:
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    os.replace(tmp, dst)


def _move(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)  # same file system: atomic
        return
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: other file system
            raise
    _copy_atomic(src, dst, durable=True)
    _fsync_dir(dst.parent)
    os.unlink(src)


def _link(src: Path, dst: Path, mode: str) -> None:
    if mode == "symlink":
        os.symlink(os.path.abspath(src), dst)
    else:
        os.link(src, dst)


class Journal:
    """Append-only record of transfers in ``<out>/journal.jsonl``.

    Every record is flushed to the operating system at once, so it survives
    the death of the process; :meth:`sync` also forces it to disk (against a
    power loss), which moves do before touching a file.
    """

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / JOURNAL_NAME
        self._fh = None

    def __enter__(self) -> Journal:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _write(self, record: dict) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def sync(self) -> None:
        os.fsync(self._fh.fileno())

    def begin(self, e: Entry) -> None:
        self._write({"op": "begin", "src": e.src, "dst": e.dst, "mode": e.mode})

    def done(self, e: Entry) -> None:
        self._write({"op": "done", "src": e.src, "dst": e.dst, "mode": e.mode})

    def read(self) -> tuple[dict[str, Entry], set[str]]:
        """(entries by destination, destinations marked done). A torn last
        line (the process died while writing it) is ignored: its transfer
        had not started."""
        entries: dict[str, Entry] = {}
        done: set[str] = set()
        if not self.path.exists():
            return entries, done
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                e = Entry(rec["src"], rec["dst"], rec["mode"])
                if rec["op"] == "begin":
                    entries[e.dst] = e
                elif rec["op"] == "done":
                    done.add(e.dst)
        return entries, done


def _settle(e: Entry) -> bool:
    """Bring an interrupted transfer to a consistent state. Returns True if it
    is complete, False if it must be (re)done. Never deletes the only copy:
    copies land under a temporary name and are renamed into place, so an
    existing destination is always complete."""
    src, dst = Path(e.src), Path(e.dst)
    tmp = dst.with_name(f".{dst.name}.icas-tmp")
    if tmp.exists():
        tmp.unlink()  # a partial copy; the source is still there
    dst_ok = dst.exists() or dst.is_symlink()
    if dst_ok and e.mode == "move" and src.exists():
        # A cross-device move died after the rename, before the unlink.
        os.unlink(src)
    return dst_ok


class Transferer:
    """Transfers files into the output folder through a journal."""

    def __init__(self, mode: str, journal: Journal):
        if mode not in TRANSFERS:
            raise ValueError(f"transfer must be one of {', '.join(TRANSFERS)}, got {mode!r}")
        self.mode = mode
        self.journal = journal
        entries, done = journal.read()
        self._done = done
        self._pending = {dst: e for dst, e in entries.items() if dst not in done}

    CHUNK = 128  # moves journalled (and synced) together before they happen

    def _do(self, item) -> str | None:
        src, dst, _ = item
        try:
            if self.mode == "copy":
                _copy_atomic(src, dst)
            elif self.mode == "move":
                _move(src, dst)
            else:
                _link(src, dst, self.mode)
        except OSError as exc:
            return f"{src}: cannot {self.mode} to {dst}: {exc.strerror or exc}"
        return None

    def transfer(self, src: Path, dst: Path) -> None:
        """Transfer one file; raises TransferError if it cannot be done."""
        failed = self.transfer_many([(Path(src), Path(dst))])
        if failed:
            raise TransferError(failed[0][1])

    def transfer_many(self, items: list[tuple[Path, Path]]) -> list[tuple[Path, str]]:
        """Transfer (src, dst) pairs; returns (src, one-line reason) for those
        that could not be done. Finished transfers of an earlier, interrupted
        run are recognised and settled, never repeated."""
        failed: list[tuple[Path, str]] = []
        durable = self.mode == "move"
        for start in range(0, len(items), self.CHUNK):
            todo = []
            for src, dst in items[start : start + self.CHUNK]:
                key = str(dst)
                if key in self._done:
                    continue
                e = Entry(str(src), key, self.mode)
                if key in self._pending and _settle(self._pending.pop(key)):
                    self.journal.done(e)
                    self._done.add(key)
                    continue
                if dst.exists() or dst.is_symlink():
                    failed.append((src, f"{dst}: already exists; refusing to overwrite it"))
                    continue
                self.journal.begin(e)
                todo.append((src, dst, e))
            if durable and todo:
                self.journal.sync()
            for parent in {dst.parent for _, dst, _ in todo}:
                parent.mkdir(parents=True, exist_ok=True)
            for item in todo:
                src, _, e = item
                error = self._do(item)
                if error is not None:
                    failed.append((src, error))
                    continue
                self.journal.done(e)
                self._done.add(e.dst)
            if durable and todo:
                self.journal.sync()
        return failed


def undo(out_dir: Path) -> tuple[int, list[str]]:
    """Reverse every transfer recorded in ``out_dir``'s journal, newest first:
    moved files go back to where they were, copies and links are removed.
    Returns (number undone, problems)."""
    journal = Journal(out_dir)
    if not journal.path.exists():
        raise FileNotFoundError(f"{out_dir}: no {JOURNAL_NAME}; nothing to undo")
    entries, done = journal.read()
    undone, problems = 0, []
    for dst_key in reversed(list(entries)):
        e = entries[dst_key]
        src, dst = Path(e.src), Path(e.dst)
        complete = dst_key in done or _settle(e)
        if not complete:
            continue
        try:
            if e.mode == "move":
                if src.exists():
                    problems.append(f"{src}: exists again; left {dst} in place")
                    continue
                src.parent.mkdir(parents=True, exist_ok=True)
                _move(dst, src)
            elif dst.exists() or dst.is_symlink():
                dst.unlink()
            undone += 1
        except OSError as exc:
            problems.append(f"{dst}: {exc.strerror or exc}")
    if not problems:
        journal.path.unlink()
    return undone, problems
