"""One pipeline run over every kind of bad input: the run finishes (exit 0),
every good image is clustered and every bad one is listed with its reason, in
the manifest and in the printed summary.

Symbolic links are followed for reading (a link to an image is clustered as
that image); a broken link is reported, not silently ignored; ``move`` moves
a link itself (like ``mv``), never the file it points to.
"""

from __future__ import annotations

import builtins
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from icas import io as icas_io
from icas.cli import cluster_main
from icas.cluster import Clusteror
from icas.cluster import batches as _batches
from icas.cluster.output import read_manifest
from icas.cluster.transfer import undo
from icas.io import DEFAULT_MAX_PIXELS, read_image

# The same photo in every format and mode a user may have (group "a"), a
# second photo (group "b") and two images too small to compare with anything.
GROUP_A = [
    "a plain.jpg", "a rgba.png", "a 16bit.png", "a gray.png", "a cmyk.jpg", "a palette.gif",
    "a animated.gif", "a.tiff", "a.webp", "a rotated.jpg", "-a leading dash.jpg",
    "ünïcode 写真 a.jpg",
]  # fmt: skip
GROUP_B = ["b.jpg", "b copy.png", "link to b.jpg"]
TINY = ["tiny 1x1.png", "tiny 5x5.png"]
# Byte-identical files: similarity 1 under every method.
IDENTICAL = ["a plain.jpg", "-a leading dash.jpg", "ünïcode 写真 a.jpg"]

BAD = {
    "zero.jpg": "empty file",
    "text.jpg": "not an image",
    "page.png": "not an image",
    "truncated.jpg": "truncated",
    "truncated.png": "truncated",
    "bomb.png": f"too large: 40000x30000 exceeds the limit of {DEFAULT_MAX_PIXELS} pixels",
    "dangling.jpg": "unreadable: no such file (broken symbolic link)",
    "locked.jpg": "unreadable: permission denied",
    "vanished.jpg": "unreadable: no such file",
}


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (a decompression bomb:
    only the header is ever looked at)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def make_inputs(folder: Path, photos) -> Path:
    """Write every good and bad input of the module docstring into folder."""
    folder.mkdir(parents=True)
    a = cv2.resize(photos[1], (160, 120), interpolation=cv2.INTER_AREA)  # RGB
    b = cv2.resize(photos[3], (160, 120), interpolation=cv2.INTER_AREA)
    pa = Image.fromarray(a)
    pa.save(folder / "a plain.jpg", quality=92)
    for name in IDENTICAL[1:]:
        (folder / name).write_bytes((folder / "a plain.jpg").read_bytes())
    Image.fromarray(np.dstack([a, np.full(a.shape[:2], 200, np.uint8)]), "RGBA").save(
        folder / "a rgba.png"
    )
    assert cv2.imwrite(str(folder / "a 16bit.png"), a[..., ::-1].astype(np.uint16) * 257)
    pa.convert("L").save(folder / "a gray.png")
    pa.convert("CMYK").save(folder / "a cmyk.jpg", quality=92)
    pa.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(folder / "a palette.gif")
    pa.save(
        folder / "a animated.gif",
        save_all=True,
        append_images=[Image.fromarray(b)],
        duration=100,
        loop=0,
    )
    pa.save(folder / "a.tiff")
    pa.save(folder / "a.webp", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned left; a viewer turns it right again
    Image.fromarray(np.ascontiguousarray(np.rot90(a, 1))).save(
        folder / "a rotated.jpg", quality=92, exif=exif
    )
    Image.fromarray(b).save(folder / "b.jpg", quality=92)
    Image.fromarray(b).save(folder / "b copy.png")
    (folder / "link to b.jpg").symlink_to("b.jpg")
    Image.fromarray(a[:1, :1]).save(folder / "tiny 1x1.png")
    Image.fromarray(a[:5, :5]).save(folder / "tiny 5x5.png")

    jpg = (folder / "a plain.jpg").read_bytes()
    png = (folder / "b copy.png").read_bytes()
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("these are my notes, not a photo\n")
    (folder / "page.png").write_text("<!doctype html><html><body>saved page</body></html>\n")
    (folder / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    (folder / "bomb.png").write_bytes(png_declaring(40000, 30000))
    (folder / "dangling.jpg").symlink_to("deleted long ago.jpg")
    (folder / "locked.jpg").write_bytes(jpg)
    os.chmod(folder / "locked.jpg", 0)
    (folder / "vanished.jpg").write_bytes(jpg)
    return folder


@pytest.fixture
def inputs(tmp_path, photos, monkeypatch) -> Path:
    folder = make_inputs(tmp_path / "in put ü", photos)
    # Root reads any file whatever its mode: make the locked file unreadable
    # for root too by failing its open the way the kernel would.
    locked = str(folder / "locked.jpg")
    real_open = builtins.open

    def open_as_user(file, *args, **kwargs):
        if os.fspath(file) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(icas_io, "open", open_as_user, raising=False)
    # "vanished.jpg" is deleted after the folder was listed, before it is read.
    real_order = _batches.order_files

    def order_then_delete(files, order="size"):
        (folder / "vanished.jpg").unlink()
        return real_order(files, order)

    monkeypatch.setattr(_batches, "order_files", order_then_delete)
    yield folder
    os.chmod(folder / "locked.jpg", 0o644)


@pytest.mark.parametrize("method", ["imagehash", "ssim", "tm", "orb", "minhash"])
def test_one_run_over_every_bad_input(inputs, tmp_path, capsys, method):
    out = tmp_path / "out"
    code = cluster_main([str(inputs), "--out", str(out), "--method", method, "-q"])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    rows = read_manifest(out / "clusters.csv")
    by_name = {Path(r["path"]).name: r for r in rows}
    good = GROUP_A + GROUP_B + TINY
    # Every file is in the manifest exactly once; every good one is clustered.
    assert sorted(by_name) == sorted(good + list(BAD)) and len(rows) == len(by_name)
    for name in good:
        r = by_name[name]
        assert r["cluster"] != "skipped", (name, r["skipped_reason"])
        assert (out / r["destination"]).is_file()
    # Every bad one is listed with its reason, in the manifest and the summary.
    for name, reason in BAD.items():
        assert by_name[name]["cluster"] == "skipped"
        assert by_name[name]["skipped_reason"] == reason, name
        assert f"skipped {inputs / name}: {reason}\n" in stdout + "\n"
    assert f"{len(good)} images ->" in stdout and f"{len(BAD)} skipped" in stdout
    # Identical bytes under three names (spaces, unicode, a leading dash) are
    # one cluster whatever the method.
    assert len({by_name[n]["cluster"] for n in IDENTICAL}) == 1
    assert by_name[IDENTICAL[0]]["cluster"] != "outliers"
    # The inputs are untouched by a copy run.
    assert sorted(p.name for p in inputs.iterdir()) == sorted(good + list(BAD)[:-1])


@pytest.mark.parametrize("method", ["imagehash", "minhash"])
def test_every_format_of_one_photo_lands_in_one_cluster(inputs, tmp_path, method):
    """16-bit, alpha, grayscale, CMYK, palette, animated (first frame), TIFF,
    WEBP and EXIF-rotated copies are read as the same picture."""
    r = Clusteror(inputs, method=method, out=tmp_path / "out", progress=False)()
    names = {Path(p).name: lab for p, lab in r.labels.items()}
    partition = {frozenset(n for n, lab in names.items() if lab == k) for k in r.clusters}
    assert partition == {frozenset(GROUP_A), frozenset(GROUP_B)}
    assert sorted(n for n, lab in names.items() if lab < 0) == TINY


def test_orientation_and_modes_are_read_as_displayed(inputs):
    plain = read_image(inputs / "a plain.jpg").astype(int)
    for name in ("a rotated.jpg", "a cmyk.jpg", "a.webp", "a.tiff", "a rgba.png"):
        img = read_image(inputs / name)
        assert img.shape == (120, 160, 3), name
        assert np.abs(img - plain).mean() < 4, name  # JPEG/WEBP re-encoding only
    assert read_image(inputs / "a 16bit.png").shape == (120, 160, 3)
    assert read_image(inputs / "tiny 1x1.png").shape == (1, 1, 3)


def test_file_deleted_after_reading_is_reported_and_the_rest_is_written(
    tmp_path, photos, monkeypatch
):
    """A file that vanishes between reading and writing the output: the run
    completes, the file is listed as skipped with why, nothing else is lost."""
    folder = tmp_path / "in"
    folder.mkdir()
    for k, p in enumerate(photos[:3]):
        img = cv2.resize(p, (96, 96), interpolation=cv2.INTER_AREA)
        for v in range(2):
            Image.fromarray(np.clip(img.astype(int) + 4 * v, 0, 255).astype(np.uint8)).save(
                folder / f"p{k}_{v}.png"
            )
    victim = folder / "p1_0.png"
    real_finish = Clusteror._finish

    def delete_then_finish(self, *args, **kwargs):
        victim.unlink()
        return real_finish(self, *args, **kwargs)

    monkeypatch.setattr(Clusteror, "_finish", delete_then_finish)
    r = Clusteror(folder, transfer="move", out=tmp_path / "out", progress=False)()
    assert [Path(p).name for p, _ in r.skipped] == ["p1_0.png"]
    assert "No such file" in r.skipped[0][1]
    placed = sorted(p.name for p in (r.out_dir / "results").rglob("*.png"))
    assert placed == sorted(f"p{k}_{v}.png" for k in range(3) for v in range(2) if (k, v) != (1, 0))
    assert list(folder.iterdir()) == []
    rows = {Path(x["path"]).name: x for x in read_manifest(r.out_dir / "clusters.csv")}
    assert rows["p1_0.png"]["cluster"] == "skipped"
    n, problems = undo(r.out_dir)
    assert problems == [] and n == 5


def test_symlinks(tmp_path, photos):
    """Followed for reading; copy writes the image's bytes; move moves the link
    itself (the file it points to, here outside the input, stays put) and undo
    puts the very same link back; a link to a folder is never entered."""
    folder, elsewhere = tmp_path / "in", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    img = cv2.resize(photos[0], (96, 96), interpolation=cv2.INTER_AREA)
    Image.fromarray(img).save(elsewhere / "target.png")
    Image.fromarray(img).save(folder / "real.png")
    (folder / "link.png").symlink_to(elsewhere / "target.png")
    (folder / "loop.png").symlink_to("loop.png")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to("..")  # a cycle for a naive recursive walk
    target_bytes = (elsewhere / "target.png").read_bytes()

    listed = _batches.list_files(folder, recursive=True)
    assert [p.relative_to(folder).as_posix() for p in listed] == [
        "link.png",
        "loop.png",
        "real.png",
    ]
    r = Clusteror(folder, out=tmp_path / "copy", progress=False, recursive=True)()
    assert r.labels[str(folder / "link.png")] == r.labels[str(folder / "real.png")] >= 0
    assert [(Path(p).name, why.split(":")[0]) for p, why in r.skipped] == [
        ("loop.png", "unreadable")
    ]
    copied = r.out_dir / r.destinations[str(folder / "link.png")]
    assert not copied.is_symlink() and copied.read_bytes() == target_bytes

    link_text = os.readlink(folder / "link.png")
    m = Clusteror(folder, transfer="move", out=tmp_path / "moved", progress=False)()
    moved = m.out_dir / m.destinations[str(folder / "link.png")]
    assert moved.is_symlink() and os.readlink(moved) == link_text
    assert (elsewhere / "target.png").read_bytes() == target_bytes
    assert not (folder / "link.png").is_symlink()
    n, problems = undo(m.out_dir)
    assert problems == [] and n == 2
    assert os.readlink(folder / "link.png") == link_text
    assert (folder / "real.png").is_file()


def test_ssim_size_below_the_window_is_refused_before_any_output(tmp_path, photos, capsys):
    folder = make_inputs(tmp_path / "in", photos)
    try:
        code = cluster_main(
            [
                str(folder),
                "--method",
                "ssim",
                "--size",
                "4",
                "4",
                "--out",
                str(tmp_path / "out"),
                "-q",
            ]
        )
    finally:
        os.chmod(folder / "locked.jpg", 0o644)
    err = capsys.readouterr().err
    assert code == 1 and "smaller than the 7x7 SSIM window" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_orb_on_images_too_small_for_keypoints(tmp_path, photos):
    """No ORB keypoint fits in an image whose side is at most twice the edge
    threshold (31): such images have no descriptors (similarity 0), as
    OpenCV says for every size it accepts; a 1-pixel side no longer fails."""
    from icas.features import extract

    gray = cv2.cvtColor(photos[0], cv2.COLOR_RGB2GRAY)
    orb = cv2.ORB_create()
    paths = []
    for h, w in ((1, 1), (1, 300), (2, 2), (40, 300), (62, 512), (300, 62), (63, 512)):
        crop = np.ascontiguousarray(gray[:h, :w])
        p = tmp_path / f"{h}x{w}.png"
        Image.fromarray(crop).save(p)
        paths.append(p)
    f = extract(paths, "orb")
    assert f.skipped == []
    counts = np.diff(f.offsets)
    for p, c in zip(paths, counts, strict=True):
        img = read_image(p, color=False)
        if min(img.shape) > 1:
            _, des = orb.detectAndCompute(img, None)
            assert c == (0 if des is None else len(des)), p.name
    assert counts[:-1].sum() == 0 and counts[-1] > 0


def test_a_file_name_that_is_not_utf8(tmp_path, photos):
    """Linux allows any bytes in a name (old archives: Latin-1). Such a file is
    clustered, moved, listed in the manifest under its exact bytes and moved
    back by undo."""
    folder = tmp_path / "in"
    folder.mkdir()
    img = cv2.resize(photos[0], (64, 64), interpolation=cv2.INTER_AREA)
    Image.fromarray(img).save(folder / "plain.png")
    name = os.fsdecode(b"caf\xe9 \xff.png")  # invalid UTF-8: surrogate escapes
    try:
        (folder / name).write_bytes((folder / "plain.png").read_bytes())
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system only takes UTF-8 names")
    out = tmp_path / "out"
    r = Clusteror(folder, transfer="move", out=out, progress=False)()
    assert r.skipped == [] and r.labels[str(folder / name)] == r.labels[str(folder / "plain.png")]
    rows = read_manifest(out / "clusters.csv")
    assert {Path(x["path"]).name for x in rows} == {"plain.png", name}
    assert (out / r.destinations[str(folder / name)]).is_file()
    assert "plain.png" in (out / "report.html").read_text(encoding="utf-8", errors="replace")
    n, problems = undo(out)
    assert (n, problems) == (2, [])
    assert sorted(os.listdir(os.fsencode(folder))) == sorted([b"caf\xe9 \xff.png", b"plain.png"])
