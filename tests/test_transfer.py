import json
import os
from pathlib import Path

import pytest

from icas.cluster import output
from icas.cluster.transfer import Journal, Transferer, TransferError, undo


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
        j._write({"op": "begin", "src": str(src[1]), "dst": str(out / src[1].name), "mode": "move"})
        # crash after the third move happened but before "done" was written
        j._write({"op": "begin", "src": str(src[2]), "dst": str(out / src[2].name), "mode": "move"})
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
