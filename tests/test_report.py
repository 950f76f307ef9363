"""The HTML report: content, thumbnails, and rendering in a real browser."""

import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from icas.cluster import Clusteror
from icas.demo import make_demo


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    demo = make_demo(tmp_path_factory.mktemp("demo"))
    return Clusteror(demo, out=tmp_path_factory.mktemp("r") / "out", progress=False)()


def test_report_lists_every_cluster_and_file(run):
    text = (run.out_dir / "report.html").read_text(encoding="utf-8")
    for k, members in run.clusters.items():
        assert f"id='cluster-{k}'" in text
        for p in members:
            assert html.escape(Path(run.destinations[p]).name) in text
    assert f"<td id='n-clusters'>{len(run.clusters)}</td>" in text
    assert f"<td id='n-outliers'>{len(run.outliers)}</td>" in text
    assert "notes.txt" in text  # skipped files with their reason
    thumbs = re.findall(r'src="(thumbnails/[^"]+)"', text)
    assert len(thumbs) == len(run.labels)
    for t in thumbs:
        img = cv2.imread(str(run.out_dir / t))
        assert img is not None and max(img.shape[:2]) <= 128


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (CI installs it)")
def test_report_renders_in_chromium(run, tmp_path):
    url = (run.out_dir / "report.html").as_uri()
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tempfile.mkdtemp()}",
        "--window-size=1200,1600",
    ]
    dom = subprocess.run(
        [_chromium(), *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
    for k in run.clusters:
        assert f'id="cluster-{k}"' in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [_chromium(), *flags, f"--screenshot={shot}", url], capture_output=True, timeout=120
    )
    img = cv2.imread(str(shot))
    assert img is not None
    # Thumbnails of photos rendered: many distinct colours, not a blank page.
    colours = np.unique(img.reshape(-1, 3) // 8, axis=0)
    assert len(colours) > 500


def test_dontmerge_report_has_one_section_per_batch_cluster(tmp_path):
    demo = make_demo(tmp_path / "demo")
    r = Clusteror(demo, batch_size=20, option="dontmerge", out=tmp_path / "o", progress=False)()
    folders = sorted(
        p.relative_to(r.out_dir).as_posix() for p in r.out_dir.glob("batch_*/cluster_*")
    )
    assert sorted(f"batch_{b}/cluster_{k}" for b, k in r.clusters) == folders
    text = (r.out_dir / "report.html").read_text(encoding="utf-8")
    assert f"<td id='n-clusters'>{len(folders)}</td>" in text
    for (b, k), members in r.clusters.items():
        assert f"id='cluster-{b}-{k}'" in text
        assert (
            f"batch {b} cluster {k}<span class='meta'><span class='size'>{len(members)} images"
            in text
        )
        assert (b, k) in r.mean_similarity and (b, k) in r.weakest_link


def test_thumbnails_follow_exif_orientation_and_keep_aspect(tmp_path):
    from PIL import Image

    from icas.cluster.report import _thumbnail

    img = np.zeros((300, 800, 3), np.uint8)
    img[:, :400] = (0, 0, 255)  # left half red (BGR)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: portrait, red on top
    Image.fromarray(img[..., ::-1]).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    assert _thumbnail(tmp_path / "rot.jpg", tmp_path / "t.jpg", 128)
    t = cv2.imread(str(tmp_path / "t.jpg"))
    assert t.shape[:2] == (128, 48)
    assert t[10, 24, 2] > 200 and t[-10, 24, 2] < 50
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    assert not _thumbnail(tmp_path / "bad.jpg", tmp_path / "b.jpg", 128)
