"""DLClusteror end to end: quality on real handwritten digits, checkpoints and
the embedding cache, batches and merge, noise to outliers, the classic
output's layout and safety, the CLI, and the message without the extra."""

import builtins
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from icas.cli import cluster_main  # noqa: E402
from icas.cluster.output import read_manifest  # noqa: E402
from icas.dl import DLClusteror  # noqa: E402


def write_digits(
    folder: Path, *, classes: int = 6, per_class: int = 30, size: int = 32, seed: int = 0
) -> Path:
    """Real handwritten digits (scikit-learn's 8 x 8 set, shipped offline)
    upscaled to ``size`` px, ``folder/d<k>_<i>.png`` for k < classes."""
    from sklearn.datasets import load_digits

    d = load_digits()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(classes):
        idx = rng.choice(np.flatnonzero(d.target == k), per_class, replace=False)
        for i, j in enumerate(idx):
            u8 = (d.images[j] * (255 / 16)).round().astype(np.uint8)
            big = cv2.resize(u8, (size, size), interpolation=cv2.INTER_LINEAR)
            cv2.imwrite(str(folder / f"d{k}_{i:03d}.png"), big)
    return folder


def truth(path) -> int:
    """The digit of a file written by :func:`write_digits`."""
    name = Path(path).name
    return int(name[1 : name.index("_")])


def ari_of(result) -> float:
    """ARI of a clustering result against the digits; each outlier its own group."""
    from sklearn.metrics import adjusted_rand_score

    paths = sorted(result.labels)
    labels = [result.labels[p] if result.labels[p] >= 0 else -1 - i for i, p in enumerate(paths)]
    return adjusted_rand_score([truth(p) for p in paths], labels)


GRID = list(range(2, 13))
# ARI floors for the fixed seeds below, set under what was measured: one batch
# 0.66-0.83 and batches of 50 merged 0.47-0.79 over data seeds 0-2 with 4-6
# epochs (raw-pixel k-means with the true k: 0.67). Chance is 0.
FLOOR_ONE_BATCH = 0.5
FLOOR_BATCHES = 0.35


def partition(result) -> set[frozenset[str]]:
    return {frozenset(Path(p).name for p in m) for m in result.clusters.values()}


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """180 real handwritten digits (6 classes) at 32 px."""
    return write_digits(tmp_path_factory.mktemp("digits") / "img", seed=1)


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """One training run (6 epochs on CPU); later runs load its checkpoint."""
    out = tmp_path_factory.mktemp("run") / "out"
    result = DLClusteror(
        digits,
        image_size=32,
        epochs=6,
        train_batch_size=16,
        out=out,
        n_clusters=GRID,
        progress=False,
    )()
    return result


def test_end_to_end_finds_the_digits(trained, digits):
    r = trained
    assert r.trained and r.algorithm == "kmeans" and r.threshold is None
    assert ari_of(r) > FLOOR_ONE_BATCH
    assert 5 <= len(r.clusters) <= 10  # six digits
    out = r.out_dir
    # The classic layout, manifest and report.
    rows = read_manifest(out / "clusters.csv")
    assert {x["path"] for x in rows} == {str(p) for p in digits.iterdir()}
    for x in rows:
        folder = (
            f"results/cluster_{x['cluster']}/"
            if x["cluster"] != "outliers"
            else "results/outliers/"
        )
        assert x["destination"].startswith(folder)
        assert (out / x["destination"]).read_bytes() == Path(x["path"]).read_bytes()
        assert x["weakest_link"] == ""  # no similarity graph in the deep-learning path
    reps = [x for x in rows if x["representative"] == "1"]
    assert sorted(int(x["cluster"]) for x in reps) == sorted(r.clusters)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f"<td id='n-clusters'>{len(r.clusters)}</td>" in html and "id='threshold'" not in html
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["method"] == "dl" and summary["algorithm"] == "kmeans"
    assert summary["trained"] is True and summary["threshold"] is None
    sel = summary["selection"][0]
    assert sel["best_params"]["n_clusters"] == len(r.clusters)
    assert len(sel["candidates"]) == len(GRID)
    assert (out / "dl" / "model.pt").is_file()
    assert r.timings["train"] > 0


def test_checkpoint_means_no_training_and_embeddings_are_cached(trained, digits, tmp_path):
    ckpt = trained.out_dir / "dl" / "model.pt"
    again = DLClusteror(
        digits, checkpoint=ckpt, out=tmp_path / "a", n_clusters=GRID, progress=False, report=False
    )()
    assert not again.trained and "train" not in again.timings
    assert again.model_path == str(ckpt)
    assert partition(again) == partition(trained)  # the same model gives the same clusters
    assert not again.embeddings_from_cache
    # Re-clustering with other parameters: no re-embedding.
    other = DLClusteror(
        digits,
        checkpoint=ckpt,
        out=tmp_path / "a",
        overwrite=True,
        algorithm="hierarchy",
        n_clusters=[6],
        progress=False,
        report=False,
    )()
    assert other.embeddings_from_cache and len(other.clusters) == 6
    assert ari_of(other) > FLOOR_ONE_BATCH
    # A changed file invalidates the cache.
    victim = sorted(digits.iterdir())[0]
    st = victim.stat()
    try:
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # "edited"
        changed = DLClusteror(
            digits,
            checkpoint=ckpt,
            out=tmp_path / "a",
            overwrite=True,
            n_clusters=[6],
            progress=False,
            report=False,
        )()
        assert not changed.embeddings_from_cache
    finally:
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_rerun_reuses_the_model_it_trained(trained, digits):
    # --overwrite keeps <out>/dl: same files and training settings -> no training.
    r = DLClusteror(
        digits,
        image_size=32,
        epochs=6,
        train_batch_size=16,
        out=trained.out_dir,
        overwrite=True,
        n_clusters=[6],
        progress=False,
        report=False,
    )()
    assert not r.trained and "train" not in r.timings and r.embeddings_from_cache


def test_batches_and_merge(trained, digits, tmp_path):
    ckpt = trained.out_dir / "dl" / "model.pt"
    r = DLClusteror(
        digits,
        checkpoint=ckpt,
        batch_size=50,
        out=tmp_path / "b",
        n_clusters=GRID,
        progress=False,
        report=False,
    )()
    assert sorted(set(r.batches.values())) == [0, 1, 2, 3]
    assert [s["stage"] for s in r.selection] == [0, 1, 2, 3, "merge"]
    assert ari_of(r) > FLOOR_BATCHES
    spans = [len({r.batches[p] for p in m}) for m in r.clusters.values()]
    assert max(spans) >= 2  # clusters were merged across batches
    # dontmerge writes batch folders; merging them gives the full run's clusters.
    parts = DLClusteror(
        digits,
        checkpoint=ckpt,
        batch_size=50,
        out=tmp_path / "parts",
        option="dontmerge",
        n_clusters=GRID,
        progress=False,
        report=False,
    )()
    assert (tmp_path / "parts" / "batch_3").is_dir()
    assert all(d.startswith(f"batch_{parts.batches[p]}/") for p, d in parts.destinations.items())
    merged = DLClusteror(
        tmp_path / "parts",
        checkpoint=ckpt,
        option="merge",
        out=tmp_path / "merged",
        n_clusters=GRID,
        progress=False,
        report=False,
    )()
    assert partition(merged) == partition(r)


class MeanColour(torch.nn.Module):
    """A ready-made embedder: the mean colour of the image."""

    def embed(self, x):
        return x.mean(dim=(2, 3))


def colour_folder(folder: Path) -> dict[str, np.ndarray]:
    """Three colour groups of 8 images and 3 images of unrelated colours;
    returns {file name: its mean colour / 255}, what MeanColour embeds."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    colours = {}
    for g, base in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        for i in range(8):
            colours[f"g{g}_{i}.png"] = np.clip(np.array(base) + rng.integers(-6, 7, 3), 0, 255)
    for i, c in enumerate([(255, 255, 255), (0, 0, 0), (128, 128, 0)]):
        colours[f"odd_{i}.png"] = np.array(c)
    for name, c in colours.items():
        cv2.imwrite(str(folder / name), np.full((16, 16, 3), c, np.uint8))
    return {name: c / 255.0 for name, c in colours.items()}


@pytest.mark.parametrize(
    "algorithm,params", [("DBSCAN", {"min_samples": [3]}), ("HDBSCAN", {"min_cluster_size": [4]})]
)
def test_noise_goes_to_outliers(tmp_path, algorithm, params):
    from sklearn.cluster import DBSCAN, HDBSCAN

    colours = colour_folder(tmp_path / "img")
    r = DLClusteror(
        tmp_path / "img",
        algorithm=algorithm,
        model=MeanColour(),
        epochs=0,
        image_size=16,
        reduce="none",
        out=tmp_path / "out",
        progress=False,
        report=False,
        **params,
    )()
    # scikit-learn's own labels on the same embeddings, with the chosen parameters.
    names = sorted(colours)
    X = np.stack([colours[n] for n in names])
    best = r.selection[0]["best_params"]
    ref = (
        DBSCAN(eps=best["eps"], min_samples=3)
        if algorithm == "DBSCAN"
        else HDBSCAN(min_cluster_size=4, copy=True)
    ).fit_predict(X)
    noise = {n for n, lab in zip(names, ref, strict=True) if lab < 0}
    assert "odd_0.png" in noise and not any(n.startswith("g") for n in noise)
    if algorithm == "DBSCAN":
        assert noise == {"odd_0.png", "odd_1.png", "odd_2.png"}
    assert {Path(p).name for p in r.outliers} == noise
    assert len(r.clusters) == 3
    assert {p.name for p in (r.out_dir / "results" / "outliers").iterdir()} == noise
    rows = read_manifest(r.out_dir / "clusters.csv")
    assert {Path(x["path"]).name for x in rows if x["cluster"] == "outliers"} == noise


def test_outliers_can_join_clusters_of_other_batches(tmp_path):
    folder = tmp_path / "img"
    colour_folder(folder)
    for p in folder.glob("odd_*"):
        p.unlink()
    # Batches of 8 in name order: each colour is one batch, and a copy of a red
    # image, last in name order, is a batch of its own: an outlier there. In
    # the merge it joins the red cluster; the three colours stay apart.
    img = cv2.imread(str(folder / "g0_0.png"))
    cv2.imwrite(str(folder / "g2_copy.png"), img)
    for algorithm, grid in (
        ("DBSCAN", {"eps": [0.05], "min_samples": [2]}),
        ("kmeans", {"n_clusters": [2]}),
    ):
        r = DLClusteror(
            folder,
            algorithm=algorithm,
            model=MeanColour(),
            epochs=0,
            image_size=16,
            reduce="none",
            order="name",
            batch_size=8,
            out=tmp_path / algorithm,
            progress=False,
            report=False,
            **grid,
        )()
        assert r.batches[str(folder / "g2_copy.png")] == 3
        assert r.labels[str(folder / "g2_copy.png")] == r.labels[str(folder / "g0_0.png")] >= 0
        if algorithm == "DBSCAN":
            assert len(r.clusters) == 3 and not r.outliers


def test_bad_files_are_skipped_and_output_is_safe(tmp_path):
    folder = tmp_path / "img"
    colour_folder(folder)
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("hello")
    kw = dict(
        model=MeanColour(),
        epochs=0,
        image_size=16,
        out=tmp_path / "out",
        progress=False,
        report=False,
    )
    r = DLClusteror(folder, **kw)()
    assert {Path(p).name: why for p, why in r.skipped} == {
        "empty.png": "empty file",
        "notes.txt": "not an image",
    }
    rows = read_manifest(r.out_dir / "clusters.csv")
    assert {Path(x["path"]).name for x in rows if x["cluster"] == "skipped"} == {
        "empty.png",
        "notes.txt",
    }
    with pytest.raises(Exception, match="--overwrite"):
        DLClusteror(folder, **kw)()
    with pytest.raises(Exception, match="must not be inside the input"):
        DLClusteror(folder, **{**kw, "out": folder / "out"})()


def test_move_and_undo(tmp_path):
    from icas.cluster.transfer import undo

    folder = tmp_path / "img"
    colour_folder(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    r = DLClusteror(
        folder,
        model=MeanColour(),
        epochs=0,
        image_size=16,
        transfer="move",
        out=tmp_path / "out",
        progress=False,
        report=False,
    )()
    assert list(folder.iterdir()) == []
    placed = {p.name: p.read_bytes() for p in (r.out_dir / "results").rglob("*") if p.is_file()}
    assert placed == before
    n, problems = undo(r.out_dir)
    assert problems == [] and n == len(before)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"algorithm": "spectral"}, "algorithm must be one of"),
        ({"loss": "huber"}, "loss must be one of"),
        ({"transfer": "teleport"}, "transfer must be one of"),
        ({"image_size": 48}, "power of two"),
        ({"epochs": 0}, "needs a model or a checkpoint"),
        ({"eps": [0.3]}, "eps does not apply to kmeans"),
        ({"checkpoint": "/nonexistent/model.pt"}, "does not exist"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"reduce": "pca"}, "reduce must be one of"),
    ],
)
def test_bad_parameters_fail_before_any_work(tmp_path, kwargs, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        DLClusteror(tmp_path, out=tmp_path.parent / "never", progress=False, **kwargs)()
    assert not (tmp_path.parent / "never").exists()


def test_cli(trained, digits, tmp_path, capsys):
    ckpt = trained.out_dir / "dl" / "model.pt"
    code = cluster_main(
        [
            str(digits),
            "--method",
            "dl",
            "--checkpoint",
            str(ckpt),
            "--algorithm",
            "gaussian",
            "--n-clusters",
            "5",
            "6",
            "7",
            "--out",
            str(tmp_path / "o"),
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "algorithm gaussian" in out and "loaded from" in out
    rows = read_manifest(tmp_path / "o" / "clusters.csv")
    assert len(rows) == 180


@pytest.mark.parametrize(
    "args,message",
    [
        (["x", "--algorithm", "kmeans"], "--algorithm applies only to --method dl"),
        (["x", "--epochs", "3"], "--epochs applies only to --method dl"),
        (
            ["x", "--method", "dl", "--threshold", "0.5"],
            "--threshold does not apply to --method dl",
        ),
        (["x", "--method", "dl", "--size", "8", "8"], "--size does not apply"),
    ],
)
def test_cli_usage_errors(capsys, args, message):
    assert cluster_main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--checkpoint", "{tmp}/none.pt"], "none.pt: checkpoint file does not exist"),
        (["--device", "cuda"], "no CUDA device"),
    ],
)
def test_cli_runtime_errors_one_line(tmp_path, capsys, extra, message):
    if "cuda" in extra and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    folder = tmp_path / "img"
    colour_folder(folder)
    args = [str(folder), "--method", "dl", "-q"] + [a.format(tmp=tmp_path) for a in extra]
    assert cluster_main(args) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_extra_names_it(monkeypatch, tmp_path, capsys):
    """Without torch (simulated), importing the deep-learning path fails with
    one message naming icas[dl]; the CLI prints it as one line."""
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m.startswith("icas.dl.")]:
        if mod != "icas.dl.cli":
            monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ImportError, match=r'pip install "icas\[dl\]"') as e:
        from icas.dl import DLClusteror  # noqa: F401
    assert "torch" in str(e.value)
    folder = tmp_path / "img"
    colour_folder(folder)
    assert cluster_main([str(folder), "--method", "dl", "-q"]) == 1
    err = capsys.readouterr().err
    assert "icas[dl]" in err and len(err.strip().splitlines()) == 1


def test_resume_finishes_an_interrupted_move(tmp_path, monkeypatch):
    from icas.cluster import transfer

    folder = tmp_path / "img"
    colour_folder(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    kw = dict(
        model=MeanColour(),
        epochs=0,
        image_size=16,
        transfer="move",
        out=tmp_path / "out",
        progress=False,
        report=False,
    )
    calls = {"n": 0}
    real = transfer._move

    def dying_move(src, dst):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(transfer, "_move", dying_move)
    with pytest.raises(KeyboardInterrupt):
        DLClusteror(folder, **kw)()
    monkeypatch.setattr(transfer, "_move", real)
    r = DLClusteror(folder, resume=True, **kw)()
    placed = {p.name: p.read_bytes() for p in (r.out_dir / "results").rglob("*") if p.is_file()}
    assert placed == before and list(folder.iterdir()) == []


def test_progress_bar_per_epoch_with_the_loss(tmp_path, capsys):
    folder = tmp_path / "img"
    colour_folder(folder)
    DLClusteror(
        folder,
        image_size=16,
        epochs=2,
        out=tmp_path / "out",
        n_clusters=[3],
        report=False,
        progress=True,
    )()
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "loss=" in err


def test_input_size_and_channels_follow_the_checkpoint(tmp_path):
    from icas.dl.models import SmallAutoencoder
    from icas.dl.trainer import save_checkpoint

    folder = tmp_path / "img"
    colour_folder(folder)
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        tmp_path / "gray16.pt", SmallAutoencoder(16, channels=1, embedding_dim=4)
    )
    r = DLClusteror(
        folder, checkpoint=ckpt, n_clusters=[3], out=tmp_path / "o", progress=False, report=False
    )()
    assert len(r.labels) == 27
    summary = json.loads((r.out_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["image_size"] == 16
    for kwargs, message in (
        ({"channels": 3}, "takes 1 channels"),
        ({"image_size": 32}, "takes 16 px inputs"),
    ):
        with pytest.raises(ValueError, match=message):
            DLClusteror(folder, checkpoint=ckpt, out=tmp_path / "x", progress=False, **kwargs)()
    assert not (tmp_path / "x").exists()  # checked before the output folder is made
