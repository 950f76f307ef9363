import json
import os
from pathlib import Path

import pytest

from icas.cluster import output
from icas.cluster.transfer import Entry, Journal, Transferer, TransferError, undo


def _files(folder: Path, n: int = 5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"img {i}.bin"
        p.write_bytes(os.urandom(100 + i))
        out.append(p)
    return out


def _snapshot(paths):
    return {p.name: p.read_bytes() for p in paths}


@pytest.mark.parametrize("mode", ["copy", "move", "symlink", "hardlink"])
def test_transfer_modes_and_undo(tmp_path, mode):
    src = _files(tmp_path / "in")
    before = _snapshot(src)
    out = tmp_path / "out"
    with Journal(out) as j:
        t = Transferer(mode, j)
        for p in src:
            t.transfer(p, out / "results" / p.name)
    for p in src:
        dst = out / "results" / p.name
        assert dst.read_bytes() == before[p.name]
        assert p.exists() == (mode != "move")
        if mode == "symlink":
            assert dst.is_symlink()
    n, problems = undo(out)
    assert n == len(src) and problems == []
    assert _snapshot(src) == before
    assert not any((out / "results").iterdir())


def test_never_overwrites(tmp_path):
    (src,) = _files(tmp_path / "in", 1)
    dst = tmp_path / "out" / "x.bin"
    dst.parent.mkdir(parents=True)
    dst.write_bytes(b"precious")
    with Journal(tmp_path / "out") as j, pytest.raises(TransferError, match="already exists"):
        Transferer("copy", j).transfer(src, dst)
    assert dst.read_bytes() == b"precious"


def test_resume_finishes_interrupted_move(tmp_path):
    src = _files(tmp_path / "in")
    before = _snapshot(src)
    out = tmp_path / "out"
    with Journal(out) as j:
        t = Transferer("move", j)
        t.transfer(src[0], out / src[0].name)
        # crash after "begin" of the second move, before it happened
        j.begin(Entry(str(src[1]), str(out / src[1].name), "move"))
        # crash after the third move happened but before "done" was written
        j.begin(Entry(str(src[2]), str(out / src[2].name), "move"))
        os.replace(src[2], out / src[2].name)
    with open(out / "journal.jsonl", "a") as fh:
        fh.write('{"op": "done", "src": "torn')  # a torn last line
    with Journal(out) as j:
        t = Transferer("move", j)
        for p in src:
            t.transfer(p, out / p.name)
    assert {p.name: (out / p.name).read_bytes() for p in src} == before
    assert not any(p.exists() for p in src)
    undo(out)
    assert _snapshot(src) == before


def test_bad_mode():
    with pytest.raises(ValueError, match="transfer must be one of"):
        Transferer("teleport", None)


def test_prepare_refuses(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    with pytest.raises(output.OutputError, match="must not be inside the input"):
        output.prepare(src, src / "out", overwrite=False, resume=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(output.OutputError, match="exists"):
        output.prepare(src, foreign, overwrite=False, resume=False)
    with pytest.raises(output.OutputError, match="not written by icas"):
        output.prepare(src, foreign, overwrite=True, resume=False)
    assert (foreign / "keep.txt").read_text() == "mine"


def test_overwrite_refuses_moved_originals(tmp_path):
    src = _files(tmp_path / "in", 2)
    out = output.prepare(tmp_path / "in", tmp_path / "out", overwrite=False, resume=False)
    with Journal(out) as j:
        t = Transferer("move", j)
        for p in src:
            t.transfer(p, out / "results" / p.name)
    with pytest.raises(output.OutputError, match="--undo"):
        output.prepare(tmp_path / "in", out, overwrite=True, resume=False)
    assert len(list((out / "results").iterdir())) == 2


def test_unique_name():
    taken: set[str] = set()
    assert [output.unique_name(taken, n) for n in ["a.jpg", "a.jpg", "a.jpg", "b"]] == [
        "a.jpg",
        "a_1.jpg",
        "a_2.jpg",
        "b",
    ]


def test_journal_is_json_lines(tmp_path):
    (src,) = _files(tmp_path / "in", 1)
    with Journal(tmp_path / "out") as j:
        Transferer("copy", j).transfer(src, tmp_path / "out" / "a")
    journal = (tmp_path / "out" / "journal.jsonl").read_text()
    recs = [json.loads(line) for line in journal.splitlines()]
    assert [r["op"] for r in recs] == ["begin", "done"]


@pytest.mark.parametrize("kernel_copy", ["copy_file_range", "sendfile", "buffer"])
def test_copy_keeps_what_shutil_copy2_keeps(tmp_path, monkeypatch, kernel_copy):
    """The copy matches shutil.copy2 (the reference) in contents, extended
    attributes, permission bits and times, whichever way the bytes are moved: the kernel's
    copy_file_range, sendfile, or a buffer when neither works here."""
    import errno
    import shutil

    from icas.cluster import transfer

    def refuse(*_):
        raise OSError(errno.EXDEV, "cross-device")

    if kernel_copy != "copy_file_range":
        monkeypatch.setattr(transfer.os, "copy_file_range", refuse, raising=False)
    if kernel_copy == "buffer":
        monkeypatch.setattr(transfer, "_sendfile", refuse)
    src = tmp_path / "in" / "big.jpg"
    src.parent.mkdir()
    src.write_bytes(os.urandom(3 * (1 << 20) + 17))  # more than one kernel call
    empty = tmp_path / "in" / "empty.jpg"
    empty.write_bytes(b"")
    times = (1_600_000_000_123_456_789, 1_500_000_000_987_654_321)
    for p in (src, empty):
        os.chmod(p, 0o640)
        os.utime(p, ns=times)
    try:
        os.setxattr(src, "user.icas.label", b"cat")
    except OSError:  # a file system without user attributes: nothing to keep
        pass
    ref = tmp_path / "ref"
    ref.mkdir()
    out = tmp_path / "out"
    with Journal(out) as j:
        t = Transferer("copy", j)
        for p in (src, empty):
            t.transfer(p, out / p.name)
            shutil.copy2(p, ref / p.name)
    for p in (src, empty):
        got, want = (out / p.name).stat(), (ref / p.name).stat()
        assert (out / p.name).read_bytes() == p.read_bytes()
        assert got.st_mode == want.st_mode
        assert sorted(os.listxattr(out / p.name)) == sorted(os.listxattr(ref / p.name))
        for name in os.listxattr(ref / p.name):
            assert os.getxattr(out / p.name, name) == os.getxattr(ref / p.name, name)
        assert got.st_mtime_ns == want.st_mtime_ns == times[1]
        assert got.st_atime_ns == times[0]  # (reading the source may touch its own)
    assert sorted(q.name for q in out.iterdir()) == ["big.jpg", "empty.jpg", "journal.jsonl"]


def test_a_chunk_is_journalled_before_its_first_transfer(tmp_path, monkeypatch):
    """A run killed in the middle of a chunk: every transfer of the chunk was
    recorded as begun, the finished ones are settled by the next run."""
    from icas.cluster import transfer

    src = _files(tmp_path / "in", 6)
    out = tmp_path / "out"
    real, calls = transfer._copy_atomic, []

    def dies_on_the_fourth(a, b, **kw):
        calls.append(a)
        if len(calls) == 4:
            raise KeyboardInterrupt  # killed
        real(a, b, **kw)

    monkeypatch.setattr(transfer, "_copy_atomic", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt), Journal(out) as j:
        Transferer("copy", j).transfer_many([(p, out / p.name) for p in src])
    entries, done = Journal(out).read()
    assert len(entries) == 6 and len(done) == 3  # the three finished are marked done
    monkeypatch.setattr(transfer, "_copy_atomic", real)
    with Journal(out) as j:
        assert Transferer("copy", j).transfer_many([(p, out / p.name) for p in src]) == []
    assert {p.name: (out / p.name).read_bytes() for p in src} == _snapshot(src)
    assert undo(out)[0] == 6 and sorted(q.name for q in out.iterdir()) == ["journal.undone.jsonl"]


def test_a_fifo_in_place_of_a_file_is_refused_without_hanging(tmp_path):
    """Listed as an image, then replaced by a named pipe before the copy:
    reported as that file's failure (shutil.copy2 refuses it too)."""
    src = _files(tmp_path / "in", 2)
    src[1].unlink()
    os.mkfifo(src[1])
    out = tmp_path / "out"
    with Journal(out) as j:
        failed = Transferer("copy", j).transfer_many([(p, out / p.name) for p in src])
    assert [(p, "not a regular file" in why) for p, why in failed] == [(src[1], True)]
    assert (out / src[0].name).is_file() and not (out / src[1].name).exists()
    assert not [p for p in out.iterdir() if "icas-tmp" in p.name]
