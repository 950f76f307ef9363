"""Export of painted images: mask files, indexed PNG, COCO RLE (checked with a
decoder written from the COCO description) and labelme polygons."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from icas.segment.canvas import ColorTable
from icas.segment.export import (
    FORMATS,
    coco_document,
    existing_outputs,
    labelme_document,
    mask_name,
    output_stems,
    rle_encode,
    save_outputs,
)

RED, GREEN, BLUE = (0, 0, 204), (0, 180, 0), (255, 0, 0)  # BGR


@pytest.fixture
def painted():
    """A 30x40 paint array: a red rectangle, a green ring (with a hole), one
    blue pixel and a blue one-pixel line; returns (paint, colors)."""
    colors = ColorTable([RED, GREEN, BLUE])
    paint = np.zeros((30, 40), np.int32)
    paint[2:10, 3:15] = 1
    ring = np.zeros((30, 40), np.uint8)
    cv2.circle(ring, (28, 18), 7, 1, 3)
    paint[ring.astype(bool)] = 2
    paint[25, 2] = 3
    paint[27, 10:20] = 3
    return paint, colors


def rle_decode(rle: dict) -> np.ndarray:
    """COCO uncompressed RLE -> bool mask. From the format's description:
    ``size`` is [height, width]; ``counts`` alternate runs of 0 and 1 over
    the pixels in column-major (Fortran) order, starting with zeros."""
    h, w = rle["size"]
    flat = np.zeros(h * w, bool)
    pos, value = 0, False
    for run in rle["counts"]:
        flat[pos : pos + run] = value
        pos += run
        value = not value
    assert pos == h * w, "runs must cover the image exactly"
    return flat.reshape((w, h)).T


def test_mask_names_and_stems(tmp_path):
    assert mask_name("jet1", (0, 0, 204)) == "jet1_mask_(R:204,G:0,B:0).png"
    assert mask_name("a b", (1, 2, 3)) == "a b_mask_(R:3,G:2,B:1).png"
    paths = [tmp_path / n for n in ("a.jpg", "a.png", "b.png", "c.d.png")]
    assert output_stems(paths) == ["a.jpg", "a.png", "b", "c.d"]


def test_masks_are_exact(tmp_path, painted):
    paint, colors = painted
    files = save_outputs(tmp_path, "img", paint, colors)
    names = sorted(f.name for f in files)
    assert names == sorted(mask_name("img", c) for c in (RED, GREEN, BLUE))
    for cid, color in enumerate((RED, GREEN, BLUE), start=1):
        m = cv2.imread(str(tmp_path / mask_name("img", color)), cv2.IMREAD_UNCHANGED)
        assert m.dtype == np.uint8 and m.shape == paint.shape
        np.testing.assert_array_equal(m, np.where(paint == cid, 255, 0))
    assert not list(tmp_path.glob(".icas-*"))  # no temporary file left behind


def test_never_overwrite_without_permission(tmp_path, painted):
    paint, colors = painted
    save_outputs(tmp_path, "img", paint, colors)
    other = tmp_path / "img2_mask_(R:1,G:2,B:3).png"  # another image's mask
    other.write_bytes(b"x")
    notes = tmp_path / "img_mask_notes.txt"
    notes.write_bytes(b"mine")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    only_red = np.where(paint == 1, 1, 0)
    with pytest.raises(FileExistsError, match=r"img_mask_.* exists .*--overwrite"):
        save_outputs(tmp_path, "img", only_red, colors)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # With permission the image's outputs are replaced as a whole: stale masks go.
    save_outputs(tmp_path, "img", only_red, colors, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [mask_name("img", RED), other.name, notes.name]
    )
    assert other.read_bytes() == b"x" and notes.read_bytes() == b"mine"
    assert existing_outputs(tmp_path, "img") == [tmp_path / mask_name("img", RED)]
    assert existing_outputs(tmp_path / "missing", "img") == []


def test_indexed_png(tmp_path, painted):
    paint, colors = painted
    (path,) = save_outputs(tmp_path, "img", paint, colors, formats=["indexed"])
    assert path.name == "img_indexed.png"
    with Image.open(path) as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im), paint)
        pal = np.asarray(im.getpalette()[:12]).reshape(4, 3)
    np.testing.assert_array_equal(pal, [(0, 0, 0), (204, 0, 0), (0, 180, 0), (0, 0, 255)])
    many = ColorTable([(i, 0, 0) for i in range(256)])
    with pytest.raises(ValueError, match="at most 255 colours"):
        save_outputs(tmp_path, "x", paint, many, formats=["indexed"])


def test_rle_edge_cases():
    for mask in (
        np.zeros((3, 4), bool),
        np.ones((3, 4), bool),
        np.eye(4, dtype=bool),
        np.random.default_rng(0).random((17, 23)) > 0.5,
    ):
        rle = rle_encode(mask)
        assert rle["size"] == list(mask.shape) and sum(rle["counts"]) == mask.size
        np.testing.assert_array_equal(rle_decode(rle), mask)
    assert rle_encode(np.ones((2, 2), bool))["counts"] == [0, 4]
    # Column-major: the first column is read first.
    m = np.zeros((2, 3), bool)
    m[:, 0] = True
    assert rle_encode(m)["counts"] == [0, 2, 4]


def test_coco(tmp_path, painted):
    paint, colors = painted
    image = tmp_path / "photos" / "img.png"
    (path,) = save_outputs(
        tmp_path / "out", "img", paint, colors, formats=["coco"], image_path=image
    )
    assert path.name == "img_coco.json"
    doc = json.loads(path.read_text())
    assert doc == coco_document(paint, colors, file_name="img.png")
    assert doc["images"] == [{"id": 1, "file_name": "img.png", "width": 40, "height": 30}]
    cats = {c["id"]: c for c in doc["categories"]}
    assert cats[1]["name"] == "R:204,G:0,B:0" and cats[3]["color"] == [0, 0, 255]
    assert len(doc["annotations"]) == 3
    for ann in doc["annotations"]:
        mask = rle_decode(ann["segmentation"])
        np.testing.assert_array_equal(mask, paint == ann["category_id"])
        ys, xs = np.nonzero(mask)
        assert ann["area"] == mask.sum() and ann["image_id"] == 1 and ann["iscrowd"] == 0
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def rasterise(shapes, shape) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    for s in shapes:
        pts = np.rint(np.asarray(s["points"])).astype(np.int32)
        if s["shape_type"] == "polygon":
            cv2.fillPoly(out, [pts], 1)
            cv2.polylines(out, [pts], True, 1)
        elif s["shape_type"] == "line":
            cv2.line(out, tuple(pts[0]), tuple(pts[1]), 1)
        else:
            out[pts[0][1], pts[0][0]] = 1
    return out.astype(bool)


def test_labelme(tmp_path, painted):
    paint, colors = painted
    image = tmp_path / "photos" / "img.png"
    (path,) = save_outputs(
        tmp_path / "out", "img", paint, colors, formats=["labelme"], image_path=image
    )
    assert path.name == "img.json"
    doc = json.loads(path.read_text())
    assert doc["imageData"] is None and doc["imagePath"] == "../photos/img.png"
    assert (doc["imageHeight"], doc["imageWidth"]) == (30, 40)
    by_label = {}
    for s in doc["shapes"]:
        by_label.setdefault(s["label"], []).append(s)
        assert s["group_id"] in (1, 2, 3)
    assert set(by_label) == {"R:204,G:0,B:0", "R:0,G:180,B:0", "R:0,G:0,B:255"}
    kinds = sorted(s["shape_type"] for s in by_label["R:0,G:0,B:255"])
    assert kinds == ["line", "point"]
    for cid, color in ((1, RED), (3, BLUE)):  # shapes without holes come back exactly
        label = f"R:{color[2]},G:{color[1]},B:{color[0]}"
        np.testing.assert_array_equal(rasterise(by_label[label], paint.shape), paint == cid)
    # The ring's hole is not kept: its polygon covers ring and hole.
    ring = rasterise(by_label["R:0,G:180,B:0"], paint.shape)
    assert (ring >= (paint == 2)).all() and ring[18, 28]
    assert labelme_document(paint, colors, image_path="x.png")["shapes"] == doc["shapes"]


def test_all_formats_and_bad_arguments(tmp_path, painted):
    paint, colors = painted
    files = save_outputs(tmp_path, "img", paint, colors, formats=list(FORMATS) + ["masks"])
    assert len(files) == 3 + 3
    with pytest.raises(ValueError, match="unknown export format 'png'"):
        save_outputs(tmp_path, "img", paint, colors, formats=["png"])
    with pytest.raises(ValueError, match="colour id 9"):
        save_outputs(tmp_path, "img", np.full((2, 2), 9), colors, overwrite=True)
    with pytest.raises(ValueError, match=r"\(h, w\) integer"):
        save_outputs(tmp_path, "img", paint.astype(float), colors, overwrite=True)
