"""``icas-segment`` in-process (``main(argv)``): usage errors, runtime errors in
one line, the no-screen error (before any window call), the preview."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from icas.segment.cli import _flag, _given_params, _params_for, _parser, main


@pytest.fixture(autouse=True)
def no_screen(monkeypatch):
    """In-process tests never reach a screen: a window call would abort pytest."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(2):
        img = np.full((80, 100, 3), 60 * i, np.uint8)
        img[20:60, 30:70] = (30, 200, 90)
        cv2.imwrite(str(d / f"im{i}.png"), img)
    return d


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("icas-segment: error:")]
    assert len(lines) == 1 and "Traceback" not in err
    return lines[0]


def test_flag_names_follow_the_api_names():
    assert _flag("region_size") == "--region-size"
    assert _flag("sigmaColor") == "--sigma-color"
    assert _flag("templateWindowSize") == "--template-window-size"
    assert _flag("hColor") == "--h-color" and _flag("h") == "--h" and _flag("k") == "--k"
    args = _parser().parse_args(["f", "--sigma-color", "50", "--h", "3", "--algorithm", "slico"])
    given = _given_params(args)
    assert given == {"sigmaColor": 50, "h": 3, "algorithm": "slico"}
    params = _params_for("edge", {"sigmaColor": 50, "h": 3})
    assert params["sigmaColor"] == 50.0 and params["h"] == 3.0 and params["edge_th"] == 60.0
    assert _params_for("superpixel", {"algorithm": "slico"})["algorithm"] == "slico"
    assert _params_for("grabcut", {"seed": 4}) == {"seed": 4}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give a FOLDER to paint, or --preview IMAGE"),
        (["{folder}", "--preview", "x.png"], "not both"),
        (["{folder}", "--k", "3"], "--k is not a parameter of --method superpixel"),
        (["{folder}", "--region-size", "-3"], "superpixel: parameter 'region_size' must be"),
        (["{folder}", "--method", "kmeans", "--k", "many"], "parameter 'k' must be"),
        (["{folder}", "--method", "sam"], "--method sam needs --checkpoint"),
        (["{folder}", "--alpha", "2"], "--alpha must be in [0, 1]"),
        (["{folder}", "--methods", "kmeans"], "go with --preview"),
        (["{folder}", "--thread-range", "-1"], "--thread-range"),
        (["{folder}", "--out", "{folder}/."], "--out must not be FOLDER itself"),
        (["{folder}", "--checkpoint", "w.pth"], "go with --method sam"),
        (["{folder}", "--sam-cache-dir", "c"], "go with --method sam"),
    ],
)
def test_usage_errors_exit_2(argv, message, folder, capsys):
    code, out, err = run([a.format(folder=folder) for a in argv], capsys)
    assert code == 2 and out == ""
    assert message in one_error_line(err)


def test_argparse_errors_exit_2(capsys):
    assert main(["--no-such-flag"]) == 2
    assert main(["x", "--method", "nope"]) == 2
    assert main(["--help"]) == 0
    assert "--method" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{tmp}/missing"], "folder not found"),
        (["{tmp}/empty"], "no images in"),
        (["{folder}", "--templates", "{tmp}/nowhere"], "template folder not found"),
        # Checked before the screen (there is none here) and before torch.
        (["{folder}", "--method", "sam", "--checkpoint", "{tmp}/w.pth"], "checkpoint not found"),
        (
            ["{folder}", "--method", "sam", "--checkpoint", "{tmp}", "--model-type", "vit_b"],
            "SAM checkpoint not found",
        ),
    ],
)
def test_runtime_errors_exit_1_with_one_line(argv, message, folder, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run([a.format(folder=folder, tmp=tmp_path) for a in argv], capsys)
    assert code == 1 and message in one_error_line(err)


def test_no_screen_is_one_line_and_no_window(folder, capsys):
    code, out, err = run([folder, "--method", "kmeans", "--k", "2"], capsys)
    assert code == 1 and out == ""
    line = one_error_line(err)
    assert "no screen: DISPLAY is not set" in line and "xvfb-run" in line
    assert not (folder.parent / "imgs_segmented").exists()


def free_display() -> str:
    n = 4242
    while os.path.exists(f"/tmp/.X11-unix/X{n}") or os.path.exists(f"/tmp/.X{n}-lock"):
        n += 1
    return f":{n}"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="X11 displays only")
def test_unreachable_display_fails_cleanly_instead_of_aborting(folder):
    # In a child process: if the check missed, Qt would abort it (not this test run).
    env = {**os.environ, "DISPLAY": free_display()}
    proc = subprocess.run(
        [sys.executable, "-m", "icas.segment", str(folder), "--method", "kmeans"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "cannot connect to the X display" in proc.stderr and "Traceback" not in proc.stderr


def test_module_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "icas.segment", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "--preview" in proc.stdout


def test_preview_writes_a_png(folder, tmp_path, capsys):
    out = tmp_path / "prev.png"
    argv = [
        "--preview",
        folder / "im1.png",
        "--out",
        out,
        "--methods",
        "kmeans",
        "graph",
        "--k",
        "3",
        "--tile-width",
        "50",
    ]
    code, stdout, err = run(argv, capsys)
    assert code == 0 and stdout.strip() == str(out)
    assert "no screen" in err  # the window is skipped, the PNG written
    pic = cv2.imread(str(out))
    assert pic.shape[1] == 2 * 50 and pic.shape[0] > 40
    code, _, err = run(argv + ["--no-window"], capsys)
    assert code == 1 and "exists; use --overwrite" in one_error_line(err)
    code, _, err = run(argv + ["--no-window", "--overwrite"], capsys)
    assert code == 0 and err == ""
    code, _, err = run(
        ["--preview", folder / "im1.png", "--out", out, "--methods", "kmeans", "--ruler", "3"],
        capsys,
    )
    assert code == 2 and "--ruler is not a parameter of any method shown" in err


def test_preview_of_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    code, _, err = run(["--preview", bad, "--out", tmp_path / "p.png"], capsys)
    assert code == 1 and "bad.png" in one_error_line(err)


def test_sam_without_the_extra_is_one_line_before_the_screen(folder, tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name.split(".")[0] in ("torch", "segment_anything"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    weights = tmp_path / "sam_vit_b.pth"
    weights.write_bytes(b"weights")
    code, out, err = run([folder, "--method", "sam", "--checkpoint", weights], capsys)
    assert code == 1 and out == ""
    assert 'pip install "icas[sam]"' in one_error_line(err)
