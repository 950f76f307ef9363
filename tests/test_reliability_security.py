"""Security: files written by a run (journal, file-list plan) or handed to it
(a merge folder) cannot make icas write, move or delete anything outside the
output folder; nothing from the inputs is executed; no network at run time;
model weights are loaded with ``weights_only=True``."""

from __future__ import annotations

import ast
import json
import os
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

import icas
from icas.cli import cluster_main
from icas.cluster import Clusteror, transfer
from icas.cluster.output import OutputError, read_manifest
from icas.cluster.transfer import Entry, Journal, Transferer, undo


def _images(folder: Path, photos, n: int = 6) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        img = cv2.resize(photos[k % 3], (48, 48), interpolation=cv2.INTER_AREA)
        img = np.clip(img.astype(int) + 3 * k, 0, 255).astype(np.uint8)
        assert cv2.imwrite(str(folder / f"img{k}.png"), img[..., ::-1])
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file outside every input and output folder that must stay put."""
    p = tmp_path / "elsewhere" / "precious.png"
    p.parent.mkdir()
    p.write_bytes(b"not icas's to touch")
    return p


def _interrupted_move(inp: Path, out: Path, monkeypatch, after: int = 2) -> None:
    calls = {"n": 0}
    real = transfer._move

    def dying_move(src, dst):
        calls["n"] += 1
        if calls["n"] > after:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(transfer, "_move", dying_move)
    assert cluster_main([str(inp), "--transfer", "move", "--out", str(out), "-q"]) == 130
    monkeypatch.setattr(transfer, "_move", real)


@pytest.mark.parametrize("entry", ["../elsewhere/precious.png", "/abs", "a/../../x", ""])
def test_a_tampered_plan_is_refused(tmp_path, photos, monkeypatch, capsys, victim, entry):
    inp, out = tmp_path / "in", tmp_path / "out"
    _images(inp, photos)
    _interrupted_move(inp, out, monkeypatch)
    plan = out / "checkpoints" / "plan.json"
    data = json.loads(plan.read_text())
    data["items"].append(entry if entry != "/abs" else str(victim))
    plan.write_text(json.dumps(data))
    code = cluster_main([str(inp), "--transfer", "move", "--out", str(out), "-q", "--resume"])
    err = capsys.readouterr().err
    assert code == 1 and "refusing to resume from it" in err and "plan.json" in err
    assert victim.read_bytes() == b"not icas's to touch"
    # Nothing was lost meanwhile: undo brings the moved files back.
    assert cluster_main(["--undo", str(out)]) == 0
    assert sorted(p.name for p in inp.iterdir()) == [f"img{k}.png" for k in range(6)]


def test_a_tampered_journal_cannot_make_undo_touch_other_files(tmp_path, photos, victim):
    inp, out = tmp_path / "in", tmp_path / "out"
    files = _images(inp, photos, 3)
    with Journal(out) as j:
        t = Transferer("move", j)
        for name in files:
            t.transfer(inp / name, out / "results" / name)
        # Entries no run of icas writes: a destination outside the output
        # (undo would move the victim "back" to src), and a source inside it.
        j.done(Entry(str(tmp_path / "stolen.png"), str(victim), "move"))
        j.done(Entry(str(out / "results" / "img0.png"), str(out / "x.png"), "move"))
        j.done(Entry(str(victim), str(out / "y.png"), "rm"))
    n, problems = undo(out)
    assert n == 3 and len(problems) == 3
    assert all("outside the output folder" in p for p in problems)
    assert victim.read_bytes() == b"not icas's to touch"
    assert not (tmp_path / "stolen.png").exists()
    assert {p.name: p.read_bytes() for p in inp.iterdir()} == files


def test_a_tampered_journal_cannot_make_resume_delete_a_source(tmp_path, photos, victim):
    """A pending move whose source is not the file being moved now is never
    'settled' (which deletes the source of a finished cross-device move)."""
    inp, out = tmp_path / "in", tmp_path / "out"
    files = _images(inp, photos, 2)
    dst = out / "results" / "img0.png"
    dst.parent.mkdir(parents=True)
    dst.write_bytes(victim.read_bytes())  # same content as the victim
    with Journal(out) as j:
        j.begin(Entry(str(victim), str(dst), "move"))
    with Journal(out) as j:
        failed = Transferer("move", j).transfer_many([(inp / "img0.png", dst)])
    assert [why for _, why in failed] == [f"{dst}: already exists; refusing to overwrite it"]
    assert victim.exists() and (inp / "img0.png").read_bytes() == files["img0.png"]


@pytest.mark.parametrize("escape", ["dotdot", "absolute", "linked folder"])
def test_destinations_cannot_escape_the_output_folder(tmp_path, photos, escape):
    inp, out = tmp_path / "in", tmp_path / "out"
    files = _images(inp, photos, 1)
    src = inp / "img0.png"
    outside = tmp_path / "outside"
    outside.mkdir()
    out.mkdir()
    if escape == "dotdot":
        dst = out / "results" / ".." / ".." / "outside" / "img0.png"
    elif escape == "absolute":
        dst = outside / "img0.png"
    else:
        (out / "results").symlink_to(outside, target_is_directory=True)
        dst = out / "results" / "img0.png"
    with Journal(out) as j:
        failed = Transferer("move", j).transfer_many([(src, dst)])
    assert len(failed) == 1 and "outside the output folder" in failed[0][1]
    assert list(outside.iterdir()) == []
    assert {p.name: p.read_bytes() for p in inp.iterdir()} == files


def test_merge_folder_with_links_and_a_tampered_plan(tmp_path, photos, victim, monkeypatch):
    """A merge folder is input: a link in it is moved as a link (the file it
    points to, outside, stays), and every destination is inside the output."""
    inp = tmp_path / "in"
    _images(inp, photos)
    part = Clusteror(
        inp, option="dontmerge", batch_size=3, out=tmp_path / "batches", progress=False
    )()
    cluster_dir = (
        next(part.out_dir.glob("batch_*/outliers"))
        if not list(part.out_dir.glob("batch_*/cluster_*"))
        else next(part.out_dir.glob("batch_*/cluster_*"))
    )
    (cluster_dir / "link.png").symlink_to(victim)
    merged = Clusteror(
        part.out_dir, option="merge", transfer="move", out=tmp_path / "merged", progress=False
    )()
    assert victim.read_bytes() == b"not icas's to touch"
    for dest in merged.destinations.values():
        assert ".." not in Path(dest).parts and not Path(dest).is_absolute()
    moved_link = merged.out_dir / merged.destinations[str(cluster_dir / "link.png")]
    assert moved_link.is_symlink() and os.readlink(moved_link) == str(victim)
    # A plan naming a file outside the merge folder is refused on resume.
    plan = merged.out_dir / "checkpoints" / "plan.json"
    data = json.loads(plan.read_text())
    data["items"].append("0/0/../../elsewhere/precious.png")
    plan.write_text(json.dumps(data))
    with pytest.raises(OutputError, match="refusing to resume"):
        Clusteror(
            part.out_dir,
            option="merge",
            transfer="move",
            out=tmp_path / "merged",
            resume=True,
            progress=False,
        )()
    assert undo(merged.out_dir) == (len(merged.destinations), [])


def test_file_names_are_not_markup_in_the_report(tmp_path, photos):
    inp = tmp_path / "in"
    _images(inp, photos, 2)
    evil = "<img src=x onerror=alert(1)>.png"
    (inp / evil).write_bytes((inp / "img0.png").read_bytes())
    (inp / "<b onmouseover=alert(2)>x.jpg").write_text("not an image")  # a skipped file
    r = Clusteror(inp, out=tmp_path / "out", progress=False)()
    page = (r.out_dir / "report.html").read_text(encoding="utf-8")
    assert "<img src=x" not in page and "<b onmouseover" not in page
    assert "&lt;b onmouseover=alert(2)&gt;x.jpg" in page
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in page
    rows = {Path(x["path"]).name for x in read_manifest(r.out_dir / "clusters.csv")}
    assert evil in rows


def test_no_network_at_run_time(tmp_path, photos, monkeypatch):
    """A whole run (features, clustering, output, report) with every socket
    connection refused."""

    def refuse(*args, **kwargs):
        raise AssertionError("icas opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    inp = tmp_path / "in"
    _images(inp, photos)
    for method in ("imagehash", "orb"):
        assert (
            cluster_main([str(inp), "--out", str(tmp_path / method), "--method", method, "-q"]) == 0
        )


# ---------------------------------------------------------------------------
# the package's own source


def _sources() -> list[Path]:
    root = Path(icas.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 20
    return files


def _calls(tree: ast.AST):
    """(call, owner, name): owner is "" for a bare name (``eval(...)``), the
    module or variable for ``np.load(...)``, "." for ``expr.method(...)``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name):
                yield node, "", f.id
            elif isinstance(f, ast.Attribute):
                yield node, f.value.id if isinstance(f.value, ast.Name) else ".", f.attr


def _kw(node: ast.Call, name: str):
    for k in node.keywords:
        if k.arg == name:
            return k.value
    return None


FORBIDDEN_IMPORTS = {
    "pickle",
    "cPickle",
    "marshal",
    "shelve",
    "dill",
    "subprocess",
    "socket",
    "urllib",
    "http",
    "requests",
    "ftplib",
    "smtplib",
}


def scan(text: str, name: str) -> list[str]:
    """What in this source could run code from a file or reach the network."""
    problems = []
    tree = ast.parse(text, filename=name)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            problems += [
                f"{name}:{node.lineno}: imports {n}"
                for n in names
                if n.split(".")[0] in FORBIDDEN_IMPORTS
            ]
    for node, owner, fn in _calls(tree):
        where = f"{name}:{node.lineno}"
        if owner == "" and fn in ("eval", "exec", "compile", "__import__"):
            problems.append(f"{where}: calls {fn}")
        if (owner == "os" and fn in ("system", "popen")) or fn.startswith("spawn"):
            problems.append(f"{where}: runs a program ({owner}.{fn})")
        if fn == "load" and owner in ("np", "numpy"):
            v = _kw(node, "allow_pickle")
            if v is not None and not (isinstance(v, ast.Constant) and v.value is False):
                problems.append(f"{where}: np.load with allow_pickle")
        if fn == "load" and owner == "torch":
            v = _kw(node, "weights_only")
            if not (isinstance(v, ast.Constant) and v.value is True):
                problems.append(f"{where}: torch.load without weights_only=True")
        if fn in ("load_state_dict_from_url", "download_url_to_file", "urlretrieve"):
            problems.append(f"{where}: downloads ({fn})")
        w = _kw(node, "weights")
        if _kw(node, "pretrained") is not None or (
            fn[:3] in ("vgg", "res", "vit", "eff", "mob", "den", "inc", "con", "reg")
            and w is not None
            and not (isinstance(w, ast.Constant) and w.value is None)
        ):
            problems.append(f"{where}: {fn} may download pretrained weights")
    return problems


def test_nothing_is_executed_and_nothing_is_downloaded():
    """No eval/exec, no pickle or subprocess, no network module anywhere in
    the package; np.load never with allow_pickle; every torch.load with
    weights_only=True (so a model file cannot run code); no download helper,
    no torchvision model asked for pretrained weights."""
    root = Path(icas.__file__).parent
    problems = []
    for path in _sources():
        problems += scan(path.read_text(encoding="utf-8"), str(path.relative_to(root)))
    assert problems == []


def test_the_source_scan_finds_what_it_forbids():
    sample = (
        "import pickle\n"
        "import torch, numpy as np\n"
        "from urllib.request import urlopen\n"
        "torch.load('m.pth')\n"
        "torch.load('m.pth', weights_only=False)\n"
        "torch.load('m.pth', weights_only=True)\n"
        "np.load('x.npy', allow_pickle=True)\n"
        "np.load('x.npz')\n"
        "eval('1')\n"
        "os.system('ls')\n"
        "torchvision.models.vgg19(weights='DEFAULT')\n"
        "torchvision.models.vgg19(weights=None)\n"
        "model.to('cpu').eval()\n"
    )
    found = [p.split(": ", 1)[1] for p in scan(sample, "s.py")]
    assert found == [
        "imports pickle",
        "imports urllib.request",
        "torch.load without weights_only=True",
        "torch.load without weights_only=True",
        "np.load with allow_pickle",
        "calls eval",
        "runs a program (os.system)",
        "vgg19 may download pretrained weights",
    ]
