"""Threshold choice: the auto rule, the numbers behind the plot, the picker."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from icas.cli import cluster_main
from icas.cluster import Clusteror
from icas.cluster.methods import FeatureSet
from icas.cluster.threshold import SampleSimilarities, auto_threshold, sample_similarities
from icas.demo import make_demo

matplotlib = pytest.importorskip("matplotlib", reason="the plot needs icas[plot]")


def gapped_codes(seed: int = 0):
    """64-bit codes: 12 groups of 4 near-identical codes (each differs from
    the group's code in at most one bit) and 60 random singletons. Returns (codes,
    group id or -1)."""
    rng = np.random.default_rng(seed)
    bits, groups = [], []
    for g in range(12):
        base = rng.integers(0, 2, 64)
        for _ in range(4):
            b = base.copy()
            b[rng.choice(64, size=int(rng.integers(0, 2)), replace=False)] ^= 1
            bits.append(b)
            groups.append(g)
    for _ in range(60):
        bits.append(rng.integers(0, 2, 64))
        groups.append(-1)
    order = rng.permutation(len(bits))
    codes = np.packbits(np.array(bits, dtype=np.uint8)[order], axis=1)
    return codes, np.array(groups)[order]


def direct_similarity(codes: np.ndarray) -> np.ndarray:
    """1 - Hamming distance / bits, straight from the unpacked bits."""
    b = np.unpackbits(codes, axis=1).astype(np.int64)
    d = (b[:, None, :] != b[None, :, :]).sum(-1)
    return 1.0 - d / b.shape[1]


@pytest.mark.parametrize("seed", range(4))
def test_auto_splits_a_clear_gap(seed):
    codes, groups = gapped_codes(seed)
    s = direct_similarity(codes)
    np.fill_diagonal(s, -np.inf)
    best = s.max(axis=1)
    low, high = best[groups < 0].max(), best[groups >= 0].min()
    assert high - low > 0.2  # the data has the gap
    t = auto_threshold(FeatureSet("imagehash", (codes,)), "imagehash")
    assert low < t < high
    # At that threshold the groups are exactly the clusters.
    _, comp = connected_components(s >= t, directed=False)
    for g in range(12):
        assert len(set(comp[groups == g])) == 1
    assert len(set(comp[groups >= 0])) == 12
    assert all((comp == comp[i]).sum() == 1 for i in np.flatnonzero(groups < 0))


def test_auto_keeps_the_default_without_structure():
    codes = np.zeros((3, 8), np.uint8)
    assert auto_threshold(FeatureSet("imagehash", (codes,)), "imagehash") == 0.8
    same = np.zeros((10, 8), np.uint8)  # all best matches equal: nothing to split
    assert auto_threshold(FeatureSet("imagehash", (same,)), "imagehash") == 0.8


def test_auto_on_the_demo_recovers_unambiguous_groups(tmp_path):
    images = make_demo(tmp_path / "d")
    for p in images.iterdir():  # keep re-encoded, brightened and blurred copies
        if p.name.startswith("digit") or p.stem.endswith(("_3", "_4")):
            p.unlink()
    r = Clusteror(images, threshold="auto", out=tmp_path / "o", progress=False)()
    assert r.threshold_rule == "auto"
    truth = {Path(p).stem.rsplit("_", 1)[0] for p in r.labels if "_" in Path(p).stem}
    found = {frozenset(Path(p).stem.rsplit("_", 1)[0] for p in c) for c in r.clusters.values()}
    assert found == {frozenset([t]) for t in truth}
    assert len(r.clusters) == len(truth)
    summary = (r.out_dir / "summary.json").read_text()
    assert '"threshold_rule": "auto"' in summary and f"{r.threshold}" in summary


def direct_counts(s: np.ndarray, t: float, n_total: int):
    n = len(s)
    off = s.copy()
    np.fill_diagonal(off, -np.inf)
    iu = np.triu_indices(n, 1)
    pairs = int((s[iu] >= t).sum())
    linked = (off >= t).any(axis=1)
    _, comp = connected_components(off >= t, directed=False)
    clusters = len({c for c in comp[linked]})
    return pairs, int(linked.sum()), clusters, round(int(linked.sum()) * n_total / n)


@pytest.mark.parametrize("seed", range(3))
def test_sample_numbers_match_direct_counts(seed):
    rng = np.random.default_rng(seed)
    codes, _ = gapped_codes(seed)
    s = direct_similarity(codes)
    stats = SampleSimilarities.from_matrix(s, "imagehash", n_total=1000)
    levels = np.unique(s[np.triu_indices(len(s), 1)])
    for t in [*levels, *rng.uniform(0.3, 1.0, 20), 0.0, 1.0]:
        want = direct_counts(s, t, 1000)
        got = (
            stats.pairs_at_least(t),
            stats.images_clustered(t),
            stats.clusters(t),
            stats.estimate(t),
        )
        assert got == want, t


# -- the plot and the picker ---------------------------------------------------


@pytest.fixture
def stats():
    codes, _ = gapped_codes(1)
    return sample_similarities(FeatureSet("imagehash", (codes,)), "imagehash", 5000)


def agg_figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def mouse(picker, name: str, x: float, y: float, button=None):
    """Send a mouse event at data coordinates (x, y) of the curve's axes."""
    from matplotlib.backend_bases import MouseEvent

    canvas = picker.fig.canvas
    canvas.draw()  # layout: data -> pixel transforms are final
    px, py = picker.ax.transData.transform((x, y))
    event = MouseEvent(name, canvas, px, py, button=button)
    canvas.callbacks.process(name, event)
    return event


def test_hover_shows_threshold_and_counts(stats):
    from icas.cluster.picker import ThresholdPicker

    picker = ThresholdPicker(agg_figure(), stats)
    s = direct_similarity(gapped_codes(1)[0])
    for y in (0.95, 0.8, 0.62):
        event = mouse(picker, "motion_notify_event", 3.0, y)
        t = event.ydata
        assert t == pytest.approx(y, abs=0.01)
        pairs, clustered, clusters, estimate = direct_counts(s, t, 5000)
        text = picker.text
        assert f"threshold {t:.3f}" in text
        assert f"{pairs:,} pairs >= it" in text
        assert f"~{estimate:,} of 5,000 images clustered" in text
        assert f"({clustered} of {len(s)} sampled, {clusters} clusters)" in text
        assert picker.note.get_visible() and picker.line.get_ydata()[0] == t
    assert picker.picked is None
    # Leaving the axes hides the note.
    from matplotlib.backend_bases import MouseEvent

    picker.fig.canvas.callbacks.process(
        "motion_notify_event", MouseEvent("motion_notify_event", picker.fig.canvas, 1, 1)
    )
    assert not picker.note.get_visible() and picker.text == ""


def test_click_picks_the_threshold(stats):
    from icas.cluster.picker import ThresholdPicker

    got = []
    picker = ThresholdPicker(agg_figure(), stats, on_pick=got.append)
    mouse(picker, "button_press_event", 10.0, 0.7, button=3)  # right click: nothing
    assert picker.picked is None and got == []
    event = mouse(picker, "button_press_event", 10.0, 0.7, button=1)
    assert picker.picked == pytest.approx(event.ydata) and got == [picker.picked]
    assert picker.picked == pytest.approx(0.7, abs=0.01)


def test_threshold_plot_png_without_screen(tmp_path):
    images = make_demo(tmp_path / "d")
    plot = tmp_path / "plot.png"
    env = {
        k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")
    }
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "icas",
            str(images),
            "-q",
            "--out",
            str(tmp_path / "o"),
            "--threshold",
            "auto",
            "--threshold-plot",
            str(plot),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    import cv2

    img = cv2.imread(str(plot))
    assert img is not None and img.shape[1] >= 800
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20  # drawn, not blank


@pytest.mark.parametrize("display", [None, "dead"])
def test_pick_without_screen_says_so_and_exits_1(tmp_path, display):
    images = make_demo(tmp_path / "d")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    if display == "dead":  # set, but no X server behind it
        n = _free_display()
        if n is None:
            pytest.skip("no free X display number")
        env["DISPLAY"] = f":{n}"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "icas",
            str(images),
            "-q",
            "--out",
            str(tmp_path / "o"),
            "--threshold",
            "pick",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a screen" in lines[0]
    assert "number or 'auto'" in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_pick_in_process_with_a_simulated_click(tmp_path, monkeypatch, capsys):
    """The whole --threshold pick path with Agg standing in for a screen:
    show() is replaced by a click at similarity 0.75 on the curve."""
    import matplotlib.pyplot as plt

    from icas.cluster import picker as picker_mod

    monkeypatch.setattr(picker_mod, "check_screen", lambda: None)
    clicks = []

    def fake_show(block=True):
        fig = plt.gcf()
        assert fig.get_label() == picker_mod.TITLE
        ax = fig.axes[0]
        fig.canvas.draw()
        px, py = ax.transData.transform((5.0, 0.75))
        from matplotlib.backend_bases import MouseEvent

        event = MouseEvent("button_press_event", fig.canvas, px, py, button=1)
        fig.canvas.callbacks.process("button_press_event", event)
        clicks.append(event.ydata)

    monkeypatch.setattr(plt, "show", fake_show)
    images = make_demo(tmp_path / "d")
    assert (
        cluster_main([str(images), "-q", "--out", str(tmp_path / "o"), "--threshold", "pick"]) == 0
    )
    out = capsys.readouterr()
    assert f"picked threshold {clicks[0]:g}" in out.out
    assert f"picked threshold {clicks[0]:.4f}" in out.err


def test_closing_the_picker_without_a_click_leaves_no_output(tmp_path, monkeypatch, capsys):
    import matplotlib.pyplot as plt

    from icas.cluster import picker as picker_mod

    monkeypatch.setattr(picker_mod, "check_screen", lambda: None)
    monkeypatch.setattr(plt, "show", lambda block=True: None)
    images = make_demo(tmp_path / "d")
    assert (
        cluster_main([str(images), "-q", "--out", str(tmp_path / "o"), "--threshold", "pick"]) == 1
    )
    assert "no threshold picked" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_check_screen_without_display(monkeypatch):
    from icas.cluster.picker import NoScreenError, check_screen

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        with pytest.raises(NoScreenError, match="needs a screen"):
            check_screen()


def _free_display() -> int | None:
    for n in range(80, 100):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    return None


@pytest.mark.gui
@pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or any(__import__("shutil").which(t) is None for t in ("Xvfb", "xdotool")),
    reason="needs Xvfb and xdotool (CI installs them)",
)
def test_pick_in_a_real_window(tmp_path):
    """icas-cluster --threshold pick under Xvfb: the window opens, hovering
    shows the note, a click picks the threshold and the run finishes with it."""
    import time

    pytest.importorskip("tkinter", reason="matplotlib's Tk backend needs tkinter")
    from PIL import ImageGrab

    n = _free_display()
    if n is None:
        pytest.skip("no free X display number")
    images = make_demo(tmp_path / "d")
    xvfb = subprocess.Popen(
        ["Xvfb", f":{n}", "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {**os.environ, "DISPLAY": f":{n}"}
    env.pop("MPLBACKEND", None)
    run = None
    try:
        time.sleep(1.0)
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "icas",
                str(images),
                "-q",
                "--out",
                str(tmp_path / "o"),
                "--threshold",
                "pick",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        wid = ""
        for _ in range(120):
            found = subprocess.run(
                ["xdotool", "search", "--name", "^icas: pick a threshold$"],
                env=env,
                capture_output=True,
                text=True,
            )
            wid = found.stdout.split()[0] if found.stdout.split() else ""
            if wid or run.poll() is not None:
                break
            time.sleep(0.5)
        if not wid:
            run.kill()
            pytest.fail(f"no picker window; stderr: {run.communicate()[1]}")
        time.sleep(1.0)

        def yellow() -> int:  # pixels of the hover note's background
            img = np.asarray(ImageGrab.grab(xdisplay=f":{n}").convert("RGB")).astype(int)
            return int((np.abs(img - (255, 255, 227)).sum(-1) <= 6).sum())

        before = yellow()
        subprocess.run(["xdotool", "mousemove", "--window", wid, "300", "200"], env=env, check=True)
        time.sleep(1.5)
        assert yellow() > before + 500  # the note appeared
        subprocess.run(["xdotool", "click", "1"], env=env, check=True)
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    finally:
        if run is not None and run.poll() is None:
            run.kill()
            run.communicate()
        xvfb.terminate()
        xvfb.wait(timeout=10)
    picked = float(err.split("picked threshold ")[1].split()[0])
    assert 0.0 <= picked <= 1.0
    # The run used the picked threshold: the same as giving it as a number.
    again = Clusteror(
        images,
        threshold=float(out.split("picked threshold ")[1].split(")")[0]),
        out=tmp_path / "again",
        progress=False,
    )()
    assert f"{len(again.clusters)} clusters" in out


def test_threshold_argument_errors(tmp_path):
    images = make_demo(tmp_path / "d")
    with pytest.raises(ValueError, match="threshold must be a number, 'auto' or 'pick'"):
        Clusteror(images, threshold="best", progress=False)()
    with pytest.raises(FileNotFoundError, match="folder for the threshold plot does not exist"):
        Clusteror(images, threshold_plot=tmp_path / "nope" / "p.png", progress=False)()
    assert not (images.parent / "images_clustered").exists()  # failed before any output


@pytest.mark.parametrize("tty", [True, False])
def test_no_threshold_asks_a_person_at_a_screen_only(tmp_path, monkeypatch, capsys, tty):
    """Without --threshold, the picker opens when a person can answer (terminal
    and screen); a script or a pipe gets the method's default, never a window."""
    import matplotlib.pyplot as plt

    from icas.cluster import picker as picker_mod

    monkeypatch.setattr(picker_mod, "check_screen", lambda: None)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: tty, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty, raising=False)
    shown = []
    monkeypatch.setattr(plt, "show", lambda block=True: shown.append(1))  # closed, no click
    images = make_demo(tmp_path / "d")
    code = cluster_main([str(images), "-q", "--out", str(tmp_path / "o")])
    out = capsys.readouterr()
    if tty:
        assert code == 1 and shown == [1] and "no threshold picked" in out.err
    else:
        assert code == 0 and shown == [] and "default threshold" in out.out


def test_no_threshold_without_a_screen_takes_the_default(tmp_path, monkeypatch, capsys):
    from icas.cluster import picker as picker_mod

    def no_screen():
        raise picker_mod.NoScreenError("no screen")

    monkeypatch.setattr(picker_mod, "check_screen", no_screen)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    images = make_demo(tmp_path / "d")
    assert cluster_main([str(images), "-q", "--out", str(tmp_path / "o")]) == 0
    assert "default threshold" in capsys.readouterr().out
