"""HTML report for 10,000 images: icas (thumbnails in parallel, lazy-loaded
page) next to the straightforward version (Pillow thumbnails one by one, the
same page). Per "pair" here means per image."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from icas.cluster import ClusterResult
from icas.cluster.report import write_report

N_IMAGES = 10_000
CLUSTER = 4  # images per cluster; every fifth image is an outlier


def _layout(n: int) -> tuple[dict[str, int], dict[str, str]]:
    labels, dest = {}, {}
    for i in range(n):
        src = f"/data/img_{i:05d}.jpg"
        if i % 5 == 4:
            labels[src], folder = -1, "results/outliers"
        else:
            k = (i - i // 5) // CLUSTER
            labels[src], folder = k, f"results/cluster_{k}"
        dest[src] = f"{folder}/img_{i:05d}.jpg"
    return labels, dest


@pytest.fixture(scope="module")
def placed(tmp_path_factory) -> tuple[Path, dict[str, int], dict[str, str]]:
    """An output folder holding 10,000 small JPEGs where a run put them."""
    out = tmp_path_factory.mktemp("report") / "out"
    labels, dest = _layout(N_IMAGES)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for i, rel in enumerate(dest.values()):
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        img = cv2.resize(np.roll(base, i, axis=1), (160, 120), interpolation=cv2.INTER_NEAREST)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
        buf.tofile(p)
    return out, labels, dest


def _result(out: Path, labels, dest) -> ClusterResult:
    clusters = {lab for lab in labels.values() if lab >= 0}
    return ClusterResult(
        out,
        "imagehash",
        0.8,
        labels,
        dict.fromkeys(labels, 0),
        set(),
        {k: 0.85 for k in clusters},
        [],
        dest,
        {"total": 1.0},
        {k: 0.9 for k in clusters},
    )


def _reference(out: Path, labels, dest) -> Path:
    """Thumbnails with Pillow one after another, then the same kind of page."""
    from PIL import Image

    thumbs = out / "thumbnails"
    thumbs.mkdir(exist_ok=True)
    groups: dict[int, list[str]] = {}
    for k, (src, rel) in enumerate(dest.items()):
        with Image.open(out / rel) as im:
            im.thumbnail((128, 128))
            im.convert("RGB").save(thumbs / f"{k}.jpg", quality=80)
        groups.setdefault(labels[src], []).append(f"thumbnails/{k}.jpg")
    parts = ["<!DOCTYPE html><html><body>"]
    for lab, items in sorted(groups.items()):
        parts.append(f"<details id='cluster-{lab}'><div>")
        parts.extend(f'<img loading="lazy" src="{html.escape(t)}">' for t in items)
        parts.append("</div></details>")
    page = out / "report.html"
    page.write_text("\n".join(parts), encoding="utf-8")
    return page


def _clean(out: Path) -> None:
    shutil.rmtree(out / "thumbnails", ignore_errors=True)
    (out / "report.html").unlink(missing_ok=True)


def _check(page: Path, out: Path, labels) -> None:
    text = page.read_text(encoding="utf-8")
    thumbs = re.findall(r'src="(thumbnails/[^"]+)"', text)
    assert len(thumbs) == len(set(thumbs)) == N_IMAGES  # every image listed once
    assert all((out / t).is_file() for t in thumbs[:: N_IMAGES // 50])
    for lab in {lab for lab in labels.values() if lab >= 0}:
        assert f"id='cluster-{lab}'" in text


def test_report_icas(benchmark, placed):
    out, labels, dest = placed
    benchmark.group = "report 10,000 thumbnails"
    benchmark.extra_info.update(role="icas", pairs=N_IMAGES)
    page = benchmark.pedantic(
        lambda: write_report(_result(out, labels, dest)),
        setup=lambda: _clean(out),
        rounds=1,
        iterations=1,
    )
    _check(page, out, labels)
    text = page.read_text(encoding="utf-8")
    assert f"<td id='n-images'>{N_IMAGES}</td>" in text
    assert text.count("<figure") == N_IMAGES


def test_report_reference(benchmark, placed):
    out, labels, dest = placed
    benchmark.group = "report 10,000 thumbnails"
    benchmark.extra_info.update(role="reference", pairs=N_IMAGES)
    page = benchmark.pedantic(
        _reference, args=(out, labels, dest), setup=lambda: _clean(out), rounds=1, iterations=1
    )
    _check(page, out, labels)
