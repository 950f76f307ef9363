"""The classic pipeline end to end on generated folders with known groups."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from icas.cluster import Clusteror
from icas.cluster.output import read_manifest
from icas.demo import make_demo


def truth(path: str) -> str:
    """Ground-truth group from the demo file name: 'coffee_3.jpg' -> 'coffee'."""
    stem = Path(path).stem
    return re.sub(r"_\d+$", "", stem)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("demo"))


def unambiguous(folder: Path) -> Path:
    """The demo without its crops, shifts and drawn digits: every pair inside a
    group is then similar (re-encoded, brightened, blurred copies), so
    chaining cannot depend on which image represents a cluster."""
    images = make_demo(folder)
    for p in images.iterdir():
        if p.name.startswith("digit") or p.stem.endswith(("_3", "_4")):
            p.unlink()
    return images


@pytest.fixture(scope="module")
def easy(tmp_path_factory) -> Path:
    return unambiguous(tmp_path_factory.mktemp("easy"))


def _ari(result) -> float:
    paths = sorted(result.labels)
    labels = [result.labels[p] if result.labels[p] >= 0 else -1 - i for i, p in enumerate(paths)]
    return adjusted_rand_score([truth(p) for p in paths], labels)


def _partition(result) -> set[frozenset[str]]:
    return {frozenset(Path(p).name for p in members) for members in result.clusters.values()}


@pytest.mark.parametrize("method", ["imagehash", "ssim", "tm", "orb", "minhash"])
def test_methods_find_the_groups(demo, tmp_path, method):
    result = Clusteror(
        demo,
        method=method,
        out=tmp_path / "out",
        progress=False,
        size=(128, 128) if method in ("ssim", "tm") else None,
    )()
    # The non-image is skipped and reported, never clustered.
    assert [Path(p).name for p, _ in result.skipped] == ["notes.txt"]
    assert (
        _ari(result)
        > {"imagehash": 0.9, "ssim": 0.6, "tm": 0.8, "orb": 0.8, "minhash": 0.7}[method]
    )
    # Clusters never mix groups at the default threshold for the precise methods.
    if method == "imagehash":
        for members in result.clusters.values():
            assert len({truth(p) for p in members}) == 1
    rows = read_manifest(result.out_dir / "clusters.csv")
    visible = {str(p) for p in demo.iterdir() if not p.name.startswith(".")}
    assert {r["path"] for r in rows} == visible
    for r in rows:
        if r["cluster"] not in ("skipped", "outliers"):
            assert (result.out_dir / r["destination"]).is_file()
            assert r["destination"].startswith(f"results/cluster_{r['cluster']}/")


def test_batches_and_merge_equal_single_batch(easy, tmp_path):
    one = Clusteror(easy, batch_size=1000, out=tmp_path / "one", progress=False)()
    many = Clusteror(easy, batch_size=7, out=tmp_path / "many", progress=False)()
    assert len(set(many.batches.values())) > 3
    assert _partition(one) == _partition(many)
    assert sorted(Path(p).name for p in one.outliers) == sorted(Path(p).name for p in many.outliers)
    # Same final layout.
    assert sorted(os.listdir(one.out_dir / "results")) == sorted(
        os.listdir(many.out_dir / "results")
    )


def test_dontmerge_then_merge_equals_full(easy, tmp_path):
    full = Clusteror(easy, batch_size=10, out=tmp_path / "full", progress=False)()
    part = Clusteror(
        easy, batch_size=10, option="dontmerge", out=tmp_path / "part", progress=False
    )()
    assert (part.out_dir / "batch_0").is_dir() and not (part.out_dir / "results").exists()
    merged = Clusteror(part.out_dir, option="merge", out=tmp_path / "merged", progress=False)()
    merged_sets = {frozenset(Path(p).name for p in c) for c in merged.clusters.values()}
    assert merged_sets == _partition(full)


def test_outliers_join_clusters_of_other_batches(tmp_path):
    # Name order puts one copy of the photo in a batch of its own: only the
    # outlier merge can bring it back to its group.
    demo = unambiguous(tmp_path / "d")
    for p in demo.iterdir():
        if not p.name.startswith(("coffee", "rocket", ".")):
            p.unlink()
    # batches by name: [coffee_0 1 2] [coffee_5 rocket_0 1] [rocket_2 5]
    r = Clusteror(demo, batch_size=3, order="name", out=tmp_path / "out", progress=False)()
    assert r.batches[str(demo / "coffee_5.jpg")] == 1
    assert _partition(r) == {
        frozenset(f"coffee_{k}.jpg" for k in (0, 1, 2, 5)),
        frozenset(f"rocket_{k}.jpg" for k in (0, 1, 2, 5)),
    }


def test_deterministic_across_threads_and_hash_seeds(demo, tmp_path):
    a = Clusteror(
        demo, method="orb", num_of_threads=1, batch_size=9, out=tmp_path / "a", progress=False
    )()
    b = Clusteror(
        demo, method="orb", num_of_threads=2, batch_size=9, out=tmp_path / "b", progress=False
    )()
    assert a.labels == {p: b.labels[p] for p in a.labels}
    code = (
        "import sys; from icas.cluster import Clusteror; "
        "r = Clusteror(sys.argv[1], method='orb', batch_size=9, out=sys.argv[2], "
        "progress=False)(); "
        "print(sorted((p, l) for p, l in r.labels.items()))"
    )
    outs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(
            subprocess.run(
                [sys.executable, "-c", code, str(demo), str(tmp_path / f"h{seed}")],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    assert len(outs) == 1


def test_refuses_existing_output_and_resumes(demo, tmp_path):
    out = tmp_path / "out"
    first = Clusteror(demo, out=out, progress=False)()
    with pytest.raises(Exception, match="--overwrite"):
        Clusteror(demo, out=out, progress=False)()
    again = Clusteror(demo, out=out, resume=True, progress=False)()
    assert again.labels == first.labels
    over = Clusteror(demo, out=out, overwrite=True, progress=False)()
    assert over.labels == first.labels


def test_move_interrupted_then_resumed_loses_nothing(tmp_path, monkeypatch):
    demo = make_demo(tmp_path / "d")
    before = {
        p.name: p.read_bytes()
        for p in demo.iterdir()
        if p.suffix != ".txt" and not p.name.startswith(".")
    }
    from icas.cluster import transfer

    calls = {"n": 0}
    real = transfer._move

    def dying_move(src, dst):
        calls["n"] += 1
        if calls["n"] == 17:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(transfer, "_move", dying_move)
    with pytest.raises(KeyboardInterrupt):
        Clusteror(demo, transfer="move", out=tmp_path / "out", progress=False)()
    monkeypatch.setattr(transfer, "_move", real)
    r = Clusteror(demo, transfer="move", out=tmp_path / "out", resume=True, progress=False)()
    placed = {p.name: p.read_bytes() for p in (r.out_dir / "results").rglob("*") if p.is_file()}
    assert placed == before
    assert sorted(p.name for p in demo.iterdir()) == [".icas-demo", "notes.txt"]
    n, problems = transfer.undo(r.out_dir)
    assert problems == [] and n == len(before)
    assert {p.name: p.read_bytes() for p in demo.iterdir() if p.name in before} == before


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"method": "sift"}, "method must be one of"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"threshold": 1.5}, r"threshold must be in \[0.0, 1.0\]"),
        ({"option": "later"}, "option must be one of"),
        ({"size": (8, 8), "scale": (0.5, 0.5)}, "size or scale"),
    ],
)
def test_bad_parameters(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Clusteror(tmp_path, progress=False, **kwargs)()


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no files to cluster"):
        Clusteror(tmp_path / "empty", progress=False)()


def test_weakest_link_reported(demo, tmp_path):
    r = Clusteror(demo, out=tmp_path / "out", progress=False)()
    assert set(r.weakest_link) == set(r.clusters)
    assert all(r.threshold <= w <= 1.0 for w in r.weakest_link.values())
    rows = read_manifest(r.out_dir / "clusters.csv")
    weak = {float(x["weakest_link"]) for x in rows if x["cluster"] not in ("outliers", "skipped")}
    assert weak == {np.float64(round(w, 6)) for w in r.weakest_link.values()}


def test_bad_files_are_skipped_with_reasons(tmp_path):
    images = unambiguous(tmp_path / "d")
    good = sorted(p.name for p in images.iterdir() if p.suffix == ".jpg")
    (images / "zero.jpg").write_bytes(b"")
    (images / "text.jpg").write_text("hello")
    (images / "page.png").write_text("<html></html>")
    data = (images / "coffee_0.jpg").read_bytes()
    (images / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (images / "unicode é 名前.jpg").write_bytes(data)
    (images / "-leading dash.jpg").write_bytes(data)
    r = Clusteror(images, out=tmp_path / "out", progress=False)()
    reasons = {Path(p).name: why for p, why in r.skipped}
    assert set(reasons) == {"zero.jpg", "text.jpg", "page.png", "truncated.jpg", "notes.txt"}
    assert reasons["zero.jpg"] == "empty file" and reasons["truncated.jpg"] == "truncated"
    assert sorted(Path(p).name for p in r.labels) == sorted(
        good + ["unicode é 名前.jpg", "-leading dash.jpg"]
    )
    # The unicode and dash copies of coffee_0 join the coffee cluster.
    coffee = r.labels[str(images / "coffee_0.jpg")]
    assert r.labels[str(images / "unicode é 名前.jpg")] == coffee >= 0
    rows = read_manifest(r.out_dir / "clusters.csv")
    assert {x["path"]: x["skipped_reason"] for x in rows if x["cluster"] == "skipped"} == {
        str(images / n): why for n, why in reasons.items()
    }
