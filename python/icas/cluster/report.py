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

from icas.cluster.output import write_atomic

OPEN_LIMIT = 40  # clusters shown expanded; the rest are collapsed


def _thumbnail(src: Path, dst: Path, size: int) -> bool:
    """Write a JPEG of at most size x size pixels; False if src cannot be read.

    Read like the clustering reads images (EXIF orientation applied, 16-bit
    scaled); a large JPEG is decoded at 1/2, 1/4 or 1/8 of its resolution
    directly, which is most of the saving on camera photos."""
    from icas.io import DEFAULT_MAX_PIXELS, ImageReadError, _read_bytes, _read_header, read_image

    try:
        header = _read_header(src, _read_bytes(src), DEFAULT_MAX_PIXELS)
        target = None
        if header is not None:
            w, h = header.display_size
            f = size / max(w, h)
            if f < 1:
                target = (max(1, round(w * f)), max(1, round(h * f)))
        img = read_image(src, size=target)
    except (ImageReadError, OSError, cv2.error):
        return False
    h, w = img.shape[:2]
    f = size / max(h, w)
    if f < 1:  # a format Pillow does not know: its size was unknown before decoding
        img = cv2.resize(
            img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if ok:
        buf.tofile(dst)
    return bool(ok)


def make_thumbnails(
    out_dir: Path, destinations: dict[str, str], *, size: int = 128, n_threads: int | None = None
) -> dict[str, str]:
    """Thumbnails of every placed file, named after their index; returns
    {source path: thumbnail path relative to out_dir} for the ones made."""
    folder = out_dir / "thumbnails"
    folder.mkdir(exist_ok=True)
    items = list(destinations.items())
    jobs = [(out_dir / rel, folder / f"{k}.jpg") for k, (_, rel) in enumerate(items)]
    workers = n_threads if n_threads and n_threads > 0 else (os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        made = list(pool.map(lambda job: _thumbnail(job[0], job[1], size), jobs))
    pairs = enumerate(zip(items, made, strict=True))
    return {src: f"thumbnails/{k}.jpg" for k, ((src, _), ok) in pairs if ok}


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
.weak{color:#b35c00;font-weight:600} .skipped td{padding:2px 10px 2px 0}
.legend{color:#555;font-size:13px;max-width:60em}
"""


def _figure(src: str, dest: str, thumbs: dict[str, str]) -> str:
    name = html.escape(Path(dest).name)
    title = html.escape(f"{src}\n-> {dest}")
    thumb = thumbs.get(src)
    img = (
        f'<img loading="lazy" src="{html.escape(thumb)}" alt="{name}">'
        if thumb
        else '<div class="noimg">no preview</div>'
    )
    return f'<figure title="{title}">{img}<figcaption>{name}</figcaption></figure>'


def search_text(record) -> str:
    from icas.cluster.search import summary_text

    return summary_text(record)


def write_report(result, *, thumb_size: int = 128, n_threads: int | None = None) -> Path:
    """Write ``report.html`` (and ``thumbnails/``) into the run's output folder."""
    out_dir = Path(result.out_dir)
    thumbs = make_thumbnails(out_dir, result.destinations, size=thumb_size, n_threads=n_threads)
    clusters = result.clusters
    outliers = result.outliers
    t = result.timings
    means = getattr(result, "mean_similarity", {}) or {}
    rule = getattr(result, "threshold_rule", "given")
    candidate = getattr(result, "candidate_threshold", None)
    max_size = getattr(result, "max_cluster_size", None)
    guard = (
        getattr(result, "linkage", "single")
        + " linkage"
        + (f", at most {max_size} images per cluster" if max_size else "")
    )
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>icas report: {html.escape(out_dir.name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>icas clustering report</h1><table class='summary'>",
        f"<tr><td>method</td><td id='method'>{html.escape(result.method)}</td></tr>",
        *(
            [
                f"<tr><td>threshold</td><td id='threshold'>{result.threshold:g} "
                f"({html.escape(rule)})</td></tr>"
            ]
            if result.threshold is not None
            else []
        ),
        *(
            [
                "<tr><td>candidate threshold</td>"
                f"<td id='candidate-threshold'>{candidate:g}</td></tr>"
            ]
            if candidate is not None
            else []
        ),
        *(
            [f"<tr><td>clustering</td><td id='guard'>{html.escape(guard)}</td></tr>"]
            if result.threshold is not None
            else []
        ),
        *(
            [f"<tr><td>candidate search</td><td id='candidates'>{html.escape(found)}</td></tr>"]
            if (found := search_text(getattr(result, "candidates", None)))
            else []
        ),
        f"<tr><td>images clustered</td><td id='n-images'>{len(result.labels)}</td></tr>",
        f"<tr><td>clusters</td><td id='n-clusters'>{len(clusters)}</td></tr>",
        f"<tr><td>outliers</td><td id='n-outliers'>{len(outliers)}</td></tr>",
        f"<tr><td>skipped files</td><td id='n-skipped'>{len(result.skipped)}</td></tr>",
        "<tr><td>time</td><td>"
        + html.escape(", ".join(f"{k} {v:.2f} s" for k, v in t.items()))
        + "</td></tr></table>",
    ]
    parts.append(
        "<p class='legend'>Clusters, biggest first. <b>weakest link</b>: the lowest "
        "similarity on the cluster's maximum spanning tree (the chain breaks there "
        "first); <b>mean similarity</b>: over all pairs of its images. "
        "<span class='weak'>Orange</span>: a weakest link within 0.02 of the threshold "
        "or a mean below it, a sign of chaining worth a look (to split such clusters, "
        "run again with <code>--linkage complete</code> or <code>average</code>, or "
        "<code>--max-cluster-size N</code>).</p>"
    )
    # Biggest clusters first: a run-away chained cluster is what to check first.
    order = sorted(clusters, key=lambda k: (-len(clusters[k]), k))
    for rank, k in enumerate(order):
        members = clusters[k]
        name = f"batch {k[0]} cluster {k[1]}" if isinstance(k, tuple) else f"cluster {k}"
        ident = f"{k[0]}-{k[1]}" if isinstance(k, tuple) else f"{k}"
        weak = result.weakest_link.get(k)
        near = weak is not None and weak - result.threshold < 0.02
        meta = f"<span class='size'>{len(members)} images</span>"
        if weak is not None:
            meta += f", weakest link <span class='link{' weak' if near else ''}'>{weak:.3f}</span>"
        mean = means.get(k)
        if mean is not None:
            low = mean < result.threshold
            meta += (
                f", mean similarity <span class='mean{' weak' if low else ''}'>{mean:.3f}</span>"
            )
        is_open = " open" if rank < OPEN_LIMIT else ""
        parts.append(
            f"<details id='cluster-{ident}' class='cluster'{is_open}><summary>{name}"
            f"<span class='meta'>{meta}</span></summary><div class='grid'>"
        )
        parts.extend(_figure(p, result.destinations[p], thumbs) for p in members)
        parts.append("</div></details>")
    parts.append(
        f"<details id='outliers'{' open' if len(outliers) <= 200 else ''}>"
        f"<summary>outliers<span class='meta'>{len(outliers)} images</span></summary>"
        "<div class='grid'>"
    )
    parts.extend(_figure(p, result.destinations[p], thumbs) for p in outliers)
    parts.append("</div></details>")
    if result.skipped:
        parts.append(
            "<details id='skipped' open><summary>skipped files</summary><table class='skipped'>"
        )
        parts.extend(
            f"<tr><td>{html.escape(p)}</td><td>{html.escape(r)}</td></tr>"
            for p, r in result.skipped
        )
        parts.append("</table></details>")
    parts.append("</body></html>")
    path = out_dir / "report.html"
    write_atomic(path, "\n".join(parts))
    return path
