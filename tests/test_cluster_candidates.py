"""The pipeline's candidate search (``candidates=`` / ``--candidates``)."""

import json
from pathlib import Path

import numpy as np
import pytest

from icas.cli import cluster_main
from icas.cluster import Clusteror
from icas.cluster import checkpoint as ckpt
from icas.cluster.methods import CANDIDATE_METHODS, FeatureSet, pairs
from icas.demo import make_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("demo"))


def _run(folder, out, **kw):
    return Clusteror(folder, out=out, progress=False, report=False, **kw)()


def _edges(out_dir: Path) -> set[tuple[str, str]]:
    """Linked pairs (as file names) saved in every batch checkpoint."""
    found = set()
    for p in sorted((out_dir / "checkpoints").glob("batch_*.json")):
        data = json.loads(p.read_text())
        names = [Path(x).name for x in data["paths"]]
        found |= {(names[i], names[j]) for i, j in data["edges"]}
    return found


@pytest.mark.parametrize("batch_size", [1000, 17])
def test_imagehash_index_gives_the_labels_of_all_pairs(demo, tmp_path, batch_size):
    # A loose threshold so there are many pairs (and merges across batches).
    kw = {"method": "imagehash", "threshold": 0.7, "batch_size": batch_size}
    every = _run(demo, tmp_path / "all", candidates="all", **kw)
    index = _run(demo, tmp_path / "index", candidates="index", **kw)
    assert every.labels == index.labels
    assert _edges(every.out_dir) == _edges(index.out_dir)
    assert every.candidates == {"requested": "all", "used": ["all"], "exact": True}
    assert index.candidates == {"requested": "index", "used": ["index"], "exact": True}


def test_minhash_index_finds_a_subset_of_the_pairs(demo, tmp_path):
    datasketch = pytest.importorskip("datasketch")
    kw = {"method": "minhash", "threshold": 0.3}
    every = _run(demo, tmp_path / "all", candidates="all", **kw)
    index = _run(demo, tmp_path / "index", candidates="index", **kw)
    e_all, e_index = _edges(every.out_dir), _edges(index.out_dir)
    assert e_index <= e_all and e_index
    # Fewer links can only split clusters: each index cluster lies in one cluster of all.
    for members in index.clusters.values():
        assert len({every.labels[p] for p in members}) == 1
    rec = json.loads((index.out_dir / "summary.json").read_text())["candidates"]
    lsh = datasketch.MinHashLSH(threshold=0.3, num_perm=128)
    assert rec["bands"] == [lsh.b, lsh.r] and rec["exact"] is False
    assert rec["recall_at_threshold"] == pytest.approx(1 - (1 - 0.3**lsh.r) ** lsh.b, abs=1e-6)
    # The approximate search is part of the checkpoint key, the exact ones are not.
    key = json.loads(ckpt.path_for(index.out_dir, 0).read_text())["key"]
    assert key["candidates"] == "index"
    assert "candidates" not in json.loads(ckpt.path_for(every.out_dir, 0).read_text())["key"]


def test_orb_index_finds_a_subset_of_the_pairs_with_exact_scores(demo, tmp_path):
    kw = {"method": "orb", "threshold": 0.5}
    every = _run(demo, tmp_path / "all", **kw)  # auto: every pair, exact
    index = _run(demo, tmp_path / "index", candidates="index", **kw)
    assert every.candidates == {"requested": "auto", "used": ["all"], "exact": True}
    assert index.candidates == {"requested": "index", "used": ["index"], "exact": False}
    e_all, e_index = _edges(every.out_dir), _edges(index.out_dir)
    assert e_index <= e_all and e_index
    for members in index.clusters.values():
        assert len({every.labels[p] for p in members}) == 1
    key = json.loads(ckpt.path_for(index.out_dir, 0).read_text())["key"]
    assert key["candidates"] == "index"


def test_auto_records_what_the_kernel_chose(demo, tmp_path):
    res = _run(demo, tmp_path / "out", method="minhash")
    # auto never takes the approximate search
    assert res.candidates == {"requested": "auto", "used": ["all"], "exact": True}


def test_pairs_passes_candidates_only_to_methods_with_an_index():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(300, 8), dtype=np.uint8)
    codes[1::2] = codes[::2]  # planted duplicates
    fs = FeatureSet("imagehash", (codes,))
    for how in ("all", "index"):
        e, s = pairs(fs, 0.9, candidates=how)
        assert {tuple(x) for x in e} >= {(i, i + 1) for i in range(0, 300, 2)}
    ref = pairs(fs, 0.9, candidates="all")
    got = pairs(fs, 0.9, candidates="index")
    np.testing.assert_array_equal(ref[0], got[0])
    np.testing.assert_array_equal(ref[1], got[1])
    assert CANDIDATE_METHODS >= {"imagehash", "minhash"}


def test_index_for_a_method_without_one_is_refused(demo, tmp_path, capsys):
    with pytest.raises(ValueError, match="candidates='index' applies to imagehash, minhash, orb"):
        _run(demo, tmp_path / "o", method="ssim", candidates="index")
    with pytest.raises(ValueError, match="candidates must be 'auto', 'all' or 'index'"):
        _run(demo, tmp_path / "o", candidates="some")
    assert not (tmp_path / "o").exists()
    code = cluster_main(
        [str(demo), "--method", "tm", "--candidates", "index", "-q", "--out", str(tmp_path / "o")]
    )
    assert code == 1
    assert "candidates='index' applies to" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cluster_main([str(demo), "--candidates", "fast"])
    assert exc.value.code == 2


def test_cli_summary_names_the_search(demo, tmp_path, capsys):
    code = cluster_main(
        [
            str(demo),
            "--method",
            "minhash",
            "--candidates",
            "index",
            "-q",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "candidates index (LSH 32 bands of 4, expected recall" in out
    code = cluster_main([str(demo), "--candidates", "index", "-q", "--out", str(tmp_path / "p")])
    assert code == 0
    assert "candidates index (exact)" in capsys.readouterr().out


def test_a_large_minhash_batch_on_auto_suggests_the_index(monkeypatch, tmp_path, demo, caplog):
    from icas.cluster import search

    monkeypatch.setattr(search, "MINHASH_ADVICE", 10)
    with caplog.at_level("WARNING", logger="icas"):
        _run(demo, tmp_path / "a", method="minhash")
    assert any("--candidates index" in r.message for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="icas"):
        _run(demo, tmp_path / "b", method="minhash", candidates="all")
        _run(demo, tmp_path / "c", method="imagehash")
    assert not any("--candidates index" in r.message for r in caplog.records)
