"""HTML report of a clustering run: a summary, one section per cluster with
thumbnails, the outliers and the skipped files. Opens from the file system
with no server; thumbnails are small JPEGs made in parallel and loaded lazily,
and large clusters are collapsed, so 10,000 images stay fast."""

from __future__ import annotations

import html
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from icas.cluster.output import write_atomic

OPEN_LIMIT = 40  # clusters shown expanded; the rest are collapsed


def _thumbnail(src: Path, dst: Path, size: int) -> bool:
    try:
        data = np.fromfile(src, dtype=np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except OSError:
        img = None
    if img is None:
        return False
    h, w = img.shape[:2]
    f = size / max(h, w)
    if f < 1:
        img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))),
                         interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if ok:
        buf.tofile(dst)
    return bool(ok)


def make_thumbnails(out_dir: Path, destinations: dict[str, str], *, size: int = 128,
                    n_threads: int | None = None) -> dict[str, str]:
    """Thumbnails of every placed file, named after their index; returns
    {source path: thumbnail path relative to out_dir} for the ones made."""
    folder = out_dir / "thumbnails"
    folder.mkdir(exist_ok=True)
    items = list(destinations.items())
    jobs = [(out_dir / rel, folder / f"{k}.jpg") for k, (_, rel) in enumerate(items)]
    workers = n_threads if n_threads and n_threads > 0 else (os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        made = list(pool.map(lambda job: _thumbnail(job[0], job[1], size), jobs))
    return {src: f"thumbnails/{k}.jpg" for k, ((src, _), ok) in enumerate(zip(items, made)) if ok}


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{margin-top:0} table.summary td{padding:2px 12px 2px 0}
details{border:1px solid #ddd;border-radius:6px;margin:8px 0;padding:4px 10px}
summary{cursor:pointer;font-weight:600;padding:4px 0}
summary .meta{font-weight:400;color:#666;margin-left:1em}
.grid{display:flex;flex-wrap:wrap;gap:6px;padding:6px 0}
.grid figure{margin:0;width:132px;text-align:center;font-size:11px;overflow:hidden}
.grid img{max-width:128px;max-height:128px;display:block;margin:auto;background:#eee}
.grid figcaption{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.weak{color:#b35c00} .skipped td{padding:2px 10px 2px 0}
"""


def _figure(src: str, dest: str, thumbs: dict[str, str]) -> str:
    name = html.escape(Path(dest).name)
    title = html.escape(f"{src}\n-> {dest}")
    thumb = thumbs.get(src)
    img = (f'<img loading="lazy" src="{html.escape(thumb)}" alt="{name}">' if thumb
           else '<div class="noimg">no preview</div>')
    return f'<figure title="{title}">{img}<figcaption>{name}</figcaption></figure>'


def write_report(result, *, thumb_size: int = 128, n_threads: int | None = None) -> Path:
    """Write ``report.html`` (and ``thumbnails/``) into the run's output folder."""
    out_dir = Path(result.out_dir)
    thumbs = make_thumbnails(out_dir, result.destinations, size=thumb_size, n_threads=n_threads)
    clusters = result.clusters
    outliers = result.outliers
    t = result.timings
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>icas report: {html.escape(out_dir.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>icas clustering report</h1><table class='summary'>",
        f"<tr><td>method</td><td>{html.escape(result.method)}</td></tr>",
        (f"<tr><td>threshold</td><td id='threshold'>{result.threshold:g}</td></tr>"
         if result.threshold is not None else ""),
        f"<tr><td>images clustered</td><td id='n-images'>{len(result.labels)}</td></tr>",
        f"<tr><td>clusters</td><td id='n-clusters'>{len(clusters)}</td></tr>",
        f"<tr><td>outliers</td><td id='n-outliers'>{len(outliers)}</td></tr>",
        f"<tr><td>skipped files</td><td id='n-skipped'>{len(result.skipped)}</td></tr>",
        "<tr><td>time</td><td>" + html.escape(", ".join(f"{k} {v:.2f} s" for k, v in t.items()))
        + "</td></tr></table>",
    ]
    # Biggest clusters first: a run-away chained cluster is what to check first.
    order = sorted(clusters, key=lambda k: (-len(clusters[k]), k))
    for rank, k in enumerate(order):
        members = clusters[k]
        weak = result.weakest_link.get(k)
        near = weak is not None and weak - result.threshold < 0.02
        meta = f"{len(members)} images"
        if weak is not None:
            meta += f", weakest link <span class='{'weak' if near else ''}'>{weak:.3f}</span>"
        parts.append(f"<details id='cluster-{k}' class='cluster'{' open' if rank < OPEN_LIMIT else ''}>"
                     f"<summary>cluster {k}<span class='meta'>{meta}</span></summary><div class='grid'>")
        parts.extend(_figure(p, result.destinations[p], thumbs) for p in members)
        parts.append("</div></details>")
    parts.append(f"<details id='outliers'{' open' if len(outliers) <= 200 else ''}>"
                 f"<summary>outliers<span class='meta'>{len(outliers)} images</span></summary>"
                 "<div class='grid'>")
    parts.extend(_figure(p, result.destinations[p], thumbs) for p in outliers)
    parts.append("</div></details>")
    if result.skipped:
        parts.append("<details id='skipped' open><summary>skipped files</summary>"
                     "<table class='skipped'>")
        parts.extend(f"<tr><td>{html.escape(p)}</td><td>{html.escape(r)}</td></tr>"
                     for p, r in result.skipped)
        parts.append("</table></details>")
    parts.append("</body></html>")
    path = out_dir / "report.html"
    write_atomic(path, "\n".join(parts))
    return path
