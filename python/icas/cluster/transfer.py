"""Putting files into the output folder without ever losing one.

Every transfer (copy, move, symlink, hardlink) is written to a journal
(JSON lines) before it starts and marked done after, so an interrupted run can
be finished (``resume``) or rolled back (``undo``). A move within one file
system is a single ``os.replace``; across file systems the file is copied to a
temporary name, flushed, renamed into place and only then is the source
removed, so at every instant at least one complete copy exists.

Only destinations inside the output folder are ever written, and a journal is
trusted no further: entries pointing outside it are refused, so a tampered
journal cannot make ``resume`` or ``undo`` touch other files. A full disk or a
read-only output stops the run at once with one clear error (the files not
yet transferred stay where they are); other per-file problems are returned
and the run goes on.
"""

from __future__ import annotations

import errno
import filecmp
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

TRANSFERS = ("copy", "move", "symlink", "hardlink")
JOURNAL_NAME = "journal.jsonl"
# A finished undo keeps its journal under this name: running the undo again
# (e.g. after it was killed as it ended) is then a no-op, not an error.
UNDONE_NAME = "journal.undone.jsonl"


class TransferError(RuntimeError):
    """A file could not be transferred; the message names it."""


# Errors that no other file of the run would escape: stop instead of failing
# every remaining file one by one.
_FATAL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def inside(path, root) -> bool:
    """True when path is root or below it, after normalising ``..``. The path
    itself is not looked up (it may not exist yet); root is compared both as
    given and with its links resolved."""
    return _inside_roots(path, _roots(root))


def _roots(root) -> set[str]:
    return {os.path.normpath(os.path.abspath(root)), os.path.realpath(root)}


def _inside_roots(path, roots) -> bool:
    path = os.path.normpath(os.path.abspath(path))
    for r in roots:
        if path == r or path.startswith(r.rstrip(os.sep) + os.sep):
            return True
    return False


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
    it to disk first: needed only when the source is deleted afterwards.

    Contents, extended attributes, permission bits and access/modification
    times are copied, as shutil.copy2 does, on open descriptors (about half its system calls:
    the write stage of a run is mostly file creation)."""
    tmp = dst.with_name(f".{dst.name}.icas-tmp")
    # (non-blocking: a FIFO put in an image's place must not hang the run)
    fi = os.open(src, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fi)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(src))
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        fo = os.open(tmp, flags, 0o600)
        try:
            try:
                _copy_data(fi, fo, st.st_size)
                _copy_xattrs(fi, fo)
                os.fchmod(fo, stat.S_IMODE(st.st_mode))
                os.utime(fo, ns=(st.st_atime_ns, st.st_mtime_ns))
                if durable:
                    os.fsync(fo)
            finally:
                os.close(fo)
            os.replace(tmp, dst)
        except BaseException:
            # (a full disk leaves a partial copy: never keep it)
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise
    finally:
        os.close(fi)


def _copy_data(fi: int, fo: int, size: int) -> None:
    """All bytes of fi into fo: in the kernel when it can (copy_file_range,
    then sendfile), else through a buffer. A file that grows while it is
    copied is copied to its end."""
    for fast in (getattr(os, "copy_file_range", None), _sendfile):
        if fast is None:
            continue
        try:
            while fast(fi, fo, max(size, 1 << 20)) > 0:
                pass
            return
        except OSError as exc:
            if exc.errno not in _NO_FAST_COPY or os.lseek(fo, 0, os.SEEK_CUR) != 0:
                raise
    while chunk := os.read(fi, 1 << 20):
        os.write(fo, chunk)


def _copy_xattrs(fi: int, fo: int) -> None:
    """Extended attributes, as shutil.copy2 copies them: those the file
    systems do not support or this user may not set are left behind."""
    if not hasattr(os, "listxattr"):  # (no xattrs on this platform)
        return
    try:
        names = os.listxattr(fi)
    except OSError as exc:
        if exc.errno in _NO_XATTR:
            return
        raise
    for name in names:
        try:
            os.setxattr(fo, name, os.getxattr(fi, name))
        except OSError as exc:
            if exc.errno not in _NO_XATTR:
                raise


_NO_XATTR = frozenset({errno.ENOTSUP, errno.ENODATA, errno.EINVAL, errno.EPERM, errno.EACCES})


def _sendfile(fi: int, fo: int, count: int) -> int:
    return os.sendfile(fo, fi, None, count)


# The kernel cannot copy between these two files: fall back to the next way.
_NO_FAST_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF}
)


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
        if self._fh.tell() and not self._ends_with_newline():
            # A torn last line (the process died writing it): end it, or the
            # next record would be glued to it and lost with it.
            self._write_raw("\n")
        return self

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def _write_raw(self, text: str) -> None:
        # Records are ASCII JSON with escapes (json.dumps' default): any file
        # name round-trips, even one that is not valid UTF-8, and a torn line
        # never splits a multi-byte character.
        try:
            self._fh.write(text)
            self._fh.flush()
        except OSError as exc:  # a full disk: no transfer may start unrecorded
            raise TransferError(
                f"{self.path}: cannot write the journal: {exc.strerror or exc}; files not "
                "yet transferred are where they were: make room, then run again with --resume"
            ) from exc

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.close()
            except OSError:
                if exc[0] is None:  # (else the error being raised says it already)
                    raise

    def sync(self) -> None:
        try:
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise TransferError(
                f"{self.path}: cannot sync the journal to disk: "
                f"{exc.strerror or exc}; run again with --resume"
            ) from exc

    def begin(self, *entries: Entry) -> None:
        """Record transfers about to start (one write for all of them)."""
        self._records("begin", entries)

    def done(self, *entries: Entry) -> None:
        """Record finished transfers (one write for all of them)."""
        self._records("done", entries)

    def _records(self, op: str, entries) -> None:
        if entries:
            self._write_raw(
                "".join(
                    json.dumps({"op": op, "src": e.src, "dst": e.dst, "mode": e.mode}) + "\n"
                    for e in entries
                )
            )

    def read(self) -> tuple[dict[str, Entry], set[str]]:
        """(entries by destination, destinations marked done). A torn last
        line (the process died while writing it) is ignored: its transfer
        had not started."""
        entries: dict[str, Entry] = {}
        done: set[str] = set()
        if not self.path.exists():
            return entries, done
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                    e = Entry(str(rec["src"]), str(rec["dst"]), str(rec["mode"]))
                    op = rec["op"]
                except (json.JSONDecodeError, TypeError, KeyError):
                    continue
                if op == "begin":
                    entries[e.dst] = e
                elif op == "done":
                    entries.setdefault(e.dst, e)  # (its begin may be the torn line)
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
    if dst_ok and e.mode == "move" and os.path.lexists(src) and _same_file_content(src, dst):
        # A cross-device move died after the rename, before the unlink. (A
        # different file now at src is someone else's: never delete it.)
        os.unlink(src)
    return dst_ok


def _same_transfer(a: Entry, b: Entry) -> bool:
    return (a.mode, a.dst) == (b.mode, b.dst) and os.path.abspath(a.src) == os.path.abspath(b.src)


def _same_file_content(a: Path, b: Path) -> bool:
    if a.is_symlink() or b.is_symlink():
        return a.is_symlink() and b.is_symlink() and os.readlink(a) == os.readlink(b)
    try:
        return filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


class Transferer:
    """Transfers files into the output folder through a journal.

    Parameters
    ----------
    mode : {"copy", "move", "symlink", "hardlink"}
    journal : Journal
        Open journal; its folder is the output folder unless `root` is given.
    root : path, optional
        Only destinations inside this folder are written (default: the
        journal's folder).
    """

    def __init__(self, mode: str, journal: Journal, root=None):
        if mode not in TRANSFERS:
            raise ValueError(f"transfer must be one of {', '.join(TRANSFERS)}, got {mode!r}")
        self.mode = mode
        self.journal = journal
        self.root = Path(root if root is not None else journal.path.parent)
        self._roots = _roots(self.root)  # (resolved once, not per file)
        entries, done = journal.read()
        self._entries = entries
        self._done = done
        self._pending = {dst: e for dst, e in entries.items() if dst not in done}
        self._written = 0
        self._checked: dict[Path, bool] = {}  # destination folder -> outside?

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
            if self._fatal(exc):
                raise self._stop(exc, dst.parent, f" (while trying to {self.mode} {src})") from exc
            return f"{src}: cannot {self.mode} to {dst}: {exc.strerror or exc}"
        self._written += 1
        return None

    def _stop(self, exc: OSError, folder: Path, detail: str = "") -> TransferError:
        return TransferError(
            f"{folder}: cannot write to the output folder: {exc.strerror or exc}{detail}; "
            f"{self._written} files were transferred, the others are where they were: "
            "make room or fix the folder, then run again with --resume"
        )

    def _fatal(self, exc: OSError) -> bool:
        if exc.errno in _FATAL:
            return True
        # Permission denied writing into the output (not reading a source):
        # no other file would get in either.
        if isinstance(exc, PermissionError):
            names = [n for n in (exc.filename, exc.filename2) if n is not None]
            return any(_inside_roots(n, self._roots) for n in names)
        return False

    def _outside(self, dst: Path) -> bool:
        """A destination that is not inside the output folder, lexically or
        through a linked folder on the way."""
        if not _inside_roots(dst, self._roots):
            return True
        folder = dst.parent
        if folder not in self._checked:
            existing = folder
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            self._checked[folder] = not _inside_roots(existing.resolve(), self._roots)
        return self._checked[folder]

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
            todo, settled = [], []
            for src, dst in items[start : start + self.CHUNK]:
                key = str(dst)
                if self._outside(dst):
                    failed.append(
                        (
                            src,
                            f"{dst}: outside the output folder {self.root}; "
                            "refusing to write there",
                        )
                    )
                    continue
                e = Entry(str(src), key, self.mode)
                if key in self._done:
                    if not _same_transfer(self._entries[key], e):
                        failed.append((src, f"{dst}: already exists; refusing to overwrite it"))
                    continue
                old = self._pending.pop(key, None)
                # Settle an interrupted transfer only if it was this very one.
                if old is not None and _same_transfer(old, e) and _settle(old):
                    settled.append(e)
                    self._finished(e)
                    continue
                if dst.exists() or dst.is_symlink():
                    failed.append((src, f"{dst}: already exists; refusing to overwrite it"))
                    continue
                todo.append((src, dst, e))
            self.journal.done(*settled)
            # Every transfer of the chunk is recorded before the first starts;
            # one killed before its "done" is settled by resume or undo.
            self.journal.begin(*(e for _, _, e in todo))
            if durable and todo:
                self.journal.sync()
            for parent in sorted({dst.parent for _, dst, _ in todo}):
                try:
                    parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise self._stop(exc, parent) from exc
            finished = []
            try:
                for item in todo:
                    src, _, e = item
                    error = self._do(item)
                    if error is not None:
                        failed.append((src, error))
                        continue
                    finished.append(e)
                    self._finished(e)
            finally:
                self.journal.done(*finished)
            if durable and todo:
                self.journal.sync()
        return failed

    def _finished(self, e: Entry) -> None:
        self._done.add(e.dst)
        self._entries[e.dst] = e


def undo(out_dir: Path) -> tuple[int, list[str]]:
    """Reverse every transfer recorded in ``out_dir``'s journal, newest first:
    moved files go back to where they were, copies and links are removed.
    Returns (number undone, problems). Safe to run again after an
    interruption: what was already put back counts as undone, and after a
    finished undo (its journal kept as ``journal.undone.jsonl``) it does
    nothing. Entries whose
    destination is not inside ``out_dir`` are refused (reported), never
    touched."""
    journal = Journal(out_dir)
    if not journal.path.exists():
        if (Path(out_dir) / UNDONE_NAME).exists():
            return 0, []  # undone already
        raise FileNotFoundError(f"{out_dir}: no {JOURNAL_NAME}; nothing to undo")
    entries, done = journal.read()
    undone, problems = 0, []
    for dst_key in reversed(list(entries)):
        e = entries[dst_key]
        src, dst = Path(e.src), Path(e.dst)
        if e.mode not in TRANSFERS or not inside(dst, out_dir) or inside(src, out_dir):
            problems.append(
                f"{dst}: journal entry outside the output folder {out_dir}; not touched"
            )
            continue
        there = os.path.lexists(dst)
        if e.mode == "move" and dst_key in done and not there and os.path.lexists(src):
            undone += 1  # put back by an earlier, interrupted undo
            continue
        complete = dst_key in done or _settle(e)
        if not complete:
            continue
        try:
            if e.mode == "move":
                if os.path.lexists(src):
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
        os.replace(journal.path, journal.path.with_name(UNDONE_NAME))
    return undone, problems
