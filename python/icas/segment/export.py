"""Writing what was painted: masks per colour, an indexed PNG, COCO and labelme JSON.

Every format is written from the same two things: ``paint`` (an ``(h, w)``
array of colour ids, 0 unpainted) and the session's :class:`ColorTable`.

``masks``
    One PNG per colour painted, ``<stem>_mask_(R:<r>,G:<g>,B:<b>).png``:
    single channel, 255 where painted in that colour, 0 elsewhere.
``indexed``
    ``<stem>_indexed.png``: one palette PNG, pixel value = colour id (0 =
    unpainted, black), the palette holding the colours.
``coco``
    ``<stem>_coco.json``: COCO instance format for this image, one
    annotation per colour painted, its mask as uncompressed RLE (column-major
    run lengths starting with a run of zeros), categories = colour ids.
``labelme``
    ``<stem>.json``: labelme format, one polygon per connected part of each
    colour (outer outline: holes are not kept), label ``R:<r>,G:<g>,B:<b>``,
    no embedded image data (``imageData`` null, ``imagePath`` relative).

Existing outputs of an image are never replaced unless ``overwrite=True``;
then stale masks of colours no longer painted are removed with them, so the
folder always matches the painting. Files are written under a temporary name
and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from icas.segment.canvas import ColorTable

#: Export formats, in the order they are written.
FORMATS = ("masks", "indexed", "coco", "labelme")


def mask_name(stem: str, bgr) -> str:
    """File name of the mask of colour ``bgr`` (BGR order; the name says RGB)."""
    b, g, r = (int(v) for v in bgr)
    return f"{stem}_mask_(R:{r},G:{g},B:{b}).png"


def color_label(bgr) -> str:
    """``"R:<r>,G:<g>,B:<b>"``: the class name of a colour in COCO and labelme files."""
    b, g, r = (int(v) for v in bgr)
    return f"R:{r},G:{g},B:{b}"


def output_stems(paths: Sequence) -> list[str]:
    """Output stem of each image: its file stem, or its full name where two
    images share a stem (``a.jpg`` and ``a.png``), so outputs never collide."""
    stems = [Path(p).stem for p in paths]
    seen: dict[str, int] = {}
    for s in stems:
        seen[s] = seen.get(s, 0) + 1
    return [Path(p).name if seen[s] > 1 else s for p, s in zip(paths, stems, strict=True)]


def check_formats(formats) -> tuple[str, ...]:
    """Normalise a format list (no duplicates, known names) or raise ValueError."""
    if isinstance(formats, str):
        formats = [formats]
    out = []
    for f in formats:
        if f not in FORMATS:
            raise ValueError(f"unknown export format {f!r}; expected one of {', '.join(FORMATS)}")
        if f not in out:
            out.append(f)
    if not out:
        raise ValueError("give at least one export format")
    return tuple(out)


def _mask_pattern(stem: str) -> re.Pattern:
    return re.compile(re.escape(stem) + r"_mask_\(R:\d{1,3},G:\d{1,3},B:\d{1,3}\)\.png")


def existing_outputs(out_dir, stem: str, formats=FORMATS) -> list[Path]:
    """Files in ``out_dir`` that saving ``stem`` in ``formats`` would replace or
    make stale (every mask of the stem when ``masks`` is among the formats)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = []
    if "masks" in formats:
        pattern = _mask_pattern(stem)
        found += sorted(p for p in out_dir.iterdir() if pattern.fullmatch(p.name))
    for fmt, name in (
        ("indexed", f"{stem}_indexed.png"),
        ("coco", f"{stem}_coco.json"),
        ("labelme", f"{stem}.json"),
    ):
        if fmt in formats and (out_dir / name).exists():
            found.append(out_dir / name)
    return found


def save_outputs(
    out_dir,
    stem: str,
    paint: np.ndarray,
    colors: ColorTable,
    *,
    formats=("masks",),
    overwrite: bool = False,
    image_path=None,
) -> list[Path]:
    """Write the outputs of one painted image.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Output folder (created when missing).
    stem : str
        Output name stem, usually the image's file stem.
    paint : ndarray of shape (h, w), integer
        Colour id per pixel, 0 unpainted.
    colors : ColorTable
        The ids' colours.
    formats : sequence of str, default ("masks",)
        Any of :data:`FORMATS`.
    overwrite : bool, default False
        Replace existing outputs of ``stem`` (and remove its stale masks).
    image_path : str or os.PathLike, optional
        The image, named in the COCO and labelme files.

    Returns
    -------
    list of pathlib.Path
        The files written (no mask when nothing is painted).

    Raises
    ------
    FileExistsError
        When outputs of ``stem`` exist and ``overwrite`` is False (nothing is written).
    ValueError
        For an unknown format, a bad ``paint`` array, or more than 255 colours
        in an indexed PNG.
    """
    formats = check_formats(formats)
    paint = np.asarray(paint)
    if paint.ndim != 2 or not np.issubdtype(paint.dtype, np.integer):
        raise ValueError(f"paint must be an (h, w) integer array, got {paint.shape} {paint.dtype}")
    ids = [int(c) for c in np.unique(paint) if c != 0]
    if ids and ids[-1] > len(colors):
        raise ValueError(f"paint holds colour id {ids[-1]} but there are only {len(colors)}")
    if "indexed" in formats and len(colors) > 255:
        raise ValueError(
            f"an indexed PNG holds at most 255 colours; this session has {len(colors)}"
        )
    out_dir = Path(out_dir)
    existing = existing_outputs(out_dir, stem, formats)
    if existing and not overwrite:
        raise FileExistsError(
            f"{existing[0]} exists (outputs of {stem!r} were saved before); "
            "use --overwrite (overwrite=True) to replace them"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[Path, bytes] = {}
    if "masks" in formats:
        for cid in ids:
            png = _png((paint == cid).astype(np.uint8) * 255)
            files[out_dir / mask_name(stem, colors.bgr(cid))] = png
    if "indexed" in formats:
        files[out_dir / f"{stem}_indexed.png"] = indexed_png(paint, colors)
    name = Path(image_path).name if image_path is not None else stem
    if "coco" in formats:
        doc = coco_document(paint, colors, file_name=name)
        files[out_dir / f"{stem}_coco.json"] = json.dumps(doc).encode()
    if "labelme" in formats:
        rel = name if image_path is None else os.path.relpath(Path(image_path), out_dir)
        doc = labelme_document(paint, colors, image_path=rel)
        files[out_dir / f"{stem}.json"] = json.dumps(doc, indent=1).encode()
    for path, data in files.items():
        _write_atomic(path, data)
    for old in existing:
        if old not in files:  # a colour no longer painted: its mask would be stale
            old.unlink(missing_ok=True)
    return list(files)


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 array
        raise ValueError(f"cannot encode an array of shape {image.shape} as PNG")
    return buf.tobytes()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".icas-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def indexed_png(paint: np.ndarray, colors: ColorTable) -> bytes:
    """An 8-bit palette PNG of ``paint`` (value = colour id, palette = colours)."""
    from io import BytesIO

    from PIL import Image

    im = Image.fromarray(paint.astype(np.uint8))
    lut = colors.lut()[:, ::-1]  # BGR -> RGB
    im.putpalette(lut.ravel().tolist())  # converts the "L" image to "P"
    buf = BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def rle_encode(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE of a boolean mask.

    Returns
    -------
    dict
        ``{"size": [h, w], "counts": [...]}``: run lengths over the pixels in
        column-major order, alternating 0-runs and 1-runs, starting with a
        (possibly empty) run of zeros.
    """
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    flat = mask.ravel(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(h), int(w)], "counts": [int(c) for c in counts]}


def coco_document(paint: np.ndarray, colors: ColorTable, *, file_name: str) -> dict:
    """COCO instance JSON (as a dict) for one image: every colour of the table
    is a category (id = colour id), every colour painted an annotation."""
    h, w = paint.shape
    categories = [
        {
            "id": cid,
            "name": color_label(bgr),
            "supercategory": "paint",
            "color": [int(bgr[2]), int(bgr[1]), int(bgr[0])],
        }
        for cid, bgr in enumerate(colors, start=1)
    ]
    annotations = []
    for cid in (int(c) for c in np.unique(paint) if c != 0):
        mask = paint == cid
        ys, xs = np.nonzero(mask)
        x0, y0 = int(xs.min()), int(ys.min())
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": 1,
                "category_id": cid,
                "segmentation": rle_encode(mask),
                "area": int(mask.sum()),
                "bbox": [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1],
                "iscrowd": 0,
            }
        )
    return {
        "info": {"description": "painted with icas-segment", "version": "1.0"},
        "licenses": [],
        "images": [{"id": 1, "file_name": file_name, "width": int(w), "height": int(h)}],
        "categories": categories,
        "annotations": annotations,
    }


def labelme_document(paint: np.ndarray, colors: ColorTable, *, image_path: str) -> dict:
    """labelme JSON (as a dict) for one image: one shape per connected part of
    each colour: a polygon (outer outline), or a line / point for parts one
    pixel thin or small. ``group_id`` is the colour id."""
    h, w = paint.shape
    shapes = []
    for cid in (int(c) for c in np.unique(paint) if c != 0):
        mask = (paint == cid).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            pts = c.reshape(-1, 2)
            kind = "polygon" if len(pts) >= 3 else ("line" if len(pts) == 2 else "point")
            shapes.append(
                {
                    "label": color_label(colors.bgr(cid)),
                    "points": [[float(x), float(y)] for x, y in pts],
                    "group_id": cid,
                    "description": "",
                    "shape_type": kind,
                    "flags": {},
                    "mask": None,
                }
            )
    return {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": str(image_path).replace(os.sep, "/"),
        "imageData": None,
        "imageHeight": int(h),
        "imageWidth": int(w),
    }
