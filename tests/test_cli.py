"""icas-cluster in-process: exit codes, messages, output."""

from pathlib import Path

import pytest

from icas.cli import cluster_main
from icas.demo import make_demo


def test_demo_runs(tmp_path, capsys):
    assert cluster_main(["--demo", str(tmp_path / "demo"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "clusters" in out and "skipped" in out and "notes.txt" in out
    assert (tmp_path / "demo" / "images_clustered" / "results").is_dir()
    # Running the demo again replaces its own output.
    assert cluster_main(["--demo", str(tmp_path / "demo"), "-q"]) == 0


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        cluster_main(["x", "--method", "nope"])
    assert e.value.code == 2
    assert cluster_main([]) == 2
    assert "exactly one of" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,message",
    [
        (["{missing}"], "does not exist"),
        (["{empty}"], "no files to cluster"),
        (["{images}", "--batch-size", "0"], "batch_size must be an integer >= 1"),
        (["{images}", "--threshold", "2"], "threshold must be in"),
    ],
)
def test_runtime_errors_one_line_exit_1(tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    images = make_demo(tmp_path / "d")
    args = [
        a.format(missing=tmp_path / "nope", empty=tmp_path / "empty", images=images) for a in args
    ]
    assert cluster_main(args + ["-q"]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_existing_output_needs_overwrite(tmp_path, capsys):
    images = make_demo(tmp_path / "d")
    out = tmp_path / "out"
    assert cluster_main([str(images), "--out", str(out), "-q"]) == 0
    assert cluster_main([str(images), "--out", str(out), "-q"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert cluster_main([str(images), "--out", str(out), "--overwrite", "-q"]) == 0


def test_move_and_undo(tmp_path, capsys):
    images = make_demo(tmp_path / "d")
    names = sorted(p.name for p in images.iterdir())
    out = tmp_path / "out"
    assert cluster_main([str(images), "--out", str(out), "--transfer", "move", "-q"]) == 0
    assert sorted(p.name for p in images.iterdir()) == [".icas-demo", "notes.txt"]
    assert cluster_main(["--undo", str(out)]) == 0
    assert sorted(p.name for p in images.iterdir()) == names
    capsys.readouterr()
    # Again (as after an undo killed as it ended): nothing to do, not an error.
    assert cluster_main(["--undo", str(out)]) == 0
    assert "undone 0 transfers" in capsys.readouterr().out
    assert sorted(p.name for p in images.iterdir()) == names
    # A folder that never had a journal is an error, in one line.
    (tmp_path / "empty").mkdir()
    assert cluster_main(["--undo", str(tmp_path / "empty")]) == 1
    assert "no journal.jsonl; nothing to undo" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    import subprocess
    import sys

    images = make_demo(tmp_path / "d")
    r = subprocess.run(
        [sys.executable, "-m", "icas", str(images), "-q", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "clusters" in r.stdout
    assert Path(tmp_path / "o" / "clusters.csv").is_file()
