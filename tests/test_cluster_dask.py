"""Batches on a Dask LocalCluster give the in-process result."""

import json
import sys
from pathlib import Path

import pytest

from icas.cli import cluster_main
from icas.cluster import Clusteror
from icas.demo import make_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("demo"))


def _run(folder, out, **kw):
    return Clusteror(folder, out=out, progress=False, report=False, batch_size=15, **kw)()


def test_missing_extra_names_it(demo, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as without the extra
    with pytest.raises(ImportError, match=r"pip install 'icas\[dask\]'"):
        _run(demo, tmp_path / "o", dask_workers=2)
    assert not (tmp_path / "o").exists()
    assert cluster_main([str(demo), "--dask-workers", "2", "-q", "--out", str(tmp_path / "o")]) == 1
    assert "icas[dask]" in capsys.readouterr().err


def test_bad_dask_options(demo, tmp_path, capsys):
    with pytest.raises(ValueError, match="dask_workers must be an integer >= 1"):
        _run(demo, tmp_path / "o", dask_workers=0)
    with pytest.raises(ValueError, match="not both"):
        _run(demo, tmp_path / "o", dask_workers=1, dask_scheduler="tcp://127.0.0.1:1")
    with pytest.raises(SystemExit) as exc:
        cluster_main([str(demo), "--dask-workers", "2", "--dask-scheduler", "tcp://x:1"])
    assert exc.value.code == 2
    capsys.readouterr()
    assert cluster_main([str(demo), "--method", "dl", "--dask-workers", "2"]) == 2
    assert "do not apply to --method dl" in capsys.readouterr().err


def test_local_cluster_gives_the_in_process_result(demo, tmp_path):
    pytest.importorskip("distributed")
    for method in ("imagehash", "orb"):
        here = _run(demo, tmp_path / f"here-{method}", method=method)
        there = _run(demo, tmp_path / f"dask-{method}", method=method, dask_workers=2)
        assert len(set(here.batches.values())) == 5  # several batches, then the merge
        assert there.labels == here.labels
        assert there.batches == here.batches
        assert there.representatives == here.representatives
        assert there.weakest_link == here.weakest_link
        assert there.skipped == here.skipped
        for b in range(5):  # the client saved every batch's checkpoint
            a = json.loads((here.out_dir / "checkpoints" / f"batch_{b}.json").read_text())
            d = json.loads((there.out_dir / "checkpoints" / f"batch_{b}.json").read_text())
            assert a["edges"] == d["edges"] and a["labels"] == d["labels"]
        assert "dask" in there.timings


def test_resume_on_dask_sends_only_unfinished_batches(demo, tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "o"
    ref = _run(demo, out, method="imagehash")
    kept = {b: (out / "checkpoints" / f"batch_{b}.json").stat().st_mtime_ns for b in (0, 1, 3)}
    (out / "checkpoints" / "batch_2.json").unlink()
    (out / "checkpoints" / "batch_4.json").write_text("{torn")
    again = _run(demo, out, method="imagehash", resume=True, dask_workers=1)
    assert again.labels == ref.labels
    # finished batches came from their checkpoints (not rewritten), the others were computed
    for b, mtime in kept.items():
        assert (out / "checkpoints" / f"batch_{b}.json").stat().st_mtime_ns == mtime
    for b in (2, 4):
        assert "labels" in json.loads((out / "checkpoints" / f"batch_{b}.json").read_text())
