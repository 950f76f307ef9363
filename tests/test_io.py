"""icas.io: listing folders and reading images, good and bad."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from icas import io as icas_io
from icas.io import DEFAULT_MAX_PIXELS, ImageReadError, list_images, read_image

# ---------------------------------------------------------------------------
# helpers


def encode(img_rgb: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img_rgb).save(buf, fmt, **kw)
    return buf.getvalue()


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def exif_with(orientation: int) -> Image.Exif:
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex


def orient_numpy(img: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation applied with numpy (independent of icas' cv2 code)."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](img))


def png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (the data is tiny and wrong:
    only the header matters for the pixel limit, checked before decoding)."""
    sig = b"\x89PNG\r\n\x1a\n"

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return sig + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def photo(photos) -> np.ndarray:
    """A non-square RGB crop (orientation bugs show on non-square images)."""
    return np.ascontiguousarray(photos[0][:240, :176])


# ---------------------------------------------------------------------------
# list_images


def test_list_images_sorted_filtered(tmp_path, photo):
    jpg = encode(photo, "JPEG")
    names = ["b.jpg", "a.PNG", "C.Jpeg", "z.tif", "é.webp", "a b.jpg", "notes.txt", ".hidden.jpg"]
    for name in names:
        write(tmp_path / name, jpg)
    (tmp_path / "folder.jpg").mkdir()
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub / "inner.jpg", jpg)
    (tmp_path / ".cache").mkdir()
    write(tmp_path / ".cache" / "x.jpg", jpg)

    names = [p.name for p in list_images(tmp_path)]
    assert names == sorted(["b.jpg", "a.PNG", "C.Jpeg", "z.tif", "é.webp", "a b.jpg"])
    assert names == ["C.Jpeg", "a b.jpg", "a.PNG", "b.jpg", "z.tif", "é.webp"]

    rec = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)]
    assert rec == ["C.Jpeg", "a b.jpg", "a.PNG", "b.jpg", "sub/inner.jpg", "z.tif", "é.webp"]

    everything = list_images(tmp_path, recursive=True, include_hidden=True)
    hidden = [p.relative_to(tmp_path).as_posix() for p in everything]
    assert ".hidden.jpg" in hidden and ".cache/x.jpg" in hidden

    only = [p.name for p in list_images(tmp_path, extensions=["JPG", ".tif"])]
    assert only == ["a b.jpg", "b.jpg", "z.tif"]
    # same answer again: deterministic
    assert [p.name for p in list_images(tmp_path)] == names


def test_list_images_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder not found"):
        list_images(tmp_path / "missing")
    f = write(tmp_path / "f.jpg", b"x")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        list_images(f)
    assert list_images(tmp_path / ".." / tmp_path.name, extensions=[".png"]) == []


# ---------------------------------------------------------------------------
# reading good files


def test_read_jpeg_matches_opencv(tmp_path, photo):
    p = write(tmp_path / "photo.jpg", encode(photo, "JPEG", quality=92))
    bgr = read_image(p)
    assert bgr.dtype == np.uint8 and bgr.shape == (240, 176, 3) and bgr.flags.c_contiguous
    ref = cv2.imread(str(p), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(bgr, ref)
    gray = read_image(p, color=False)
    assert gray.shape == (240, 176)
    np.testing.assert_array_equal(gray, cv2.imread(str(p), cv2.IMREAD_GRAYSCALE))


def test_read_png_exact_and_unicode_names(tmp_path, photo):
    p = write(tmp_path / "ünïcode 写真 with space.png", encode(photo, "PNG"))
    np.testing.assert_array_equal(read_image(p), photo[..., ::-1])
    np.testing.assert_array_equal(read_image(str(p)), photo[..., ::-1])
    gray = read_image(p, color=False)  # as OpenCV's decoder makes gray (libpng's weights)
    opencv_gray = cv2.imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(gray, opencv_gray)
    assert np.abs(gray.astype(int) - cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)).max() <= 1


def test_read_converted_modes(tmp_path, photo):
    # grayscale file -> BGR with three equal channels, or gray as is
    g = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    p = tmp_path / "gray.png"
    Image.fromarray(g).save(p)
    np.testing.assert_array_equal(read_image(p, color=False), g)
    np.testing.assert_array_equal(read_image(p), np.stack([g] * 3, axis=-1))
    # RGBA -> alpha dropped
    alpha = np.linspace(0, 255, photo.shape[1], dtype=np.uint8)[None, :].repeat(240, 0)
    rgba = np.dstack([photo, alpha])
    p = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(p)
    np.testing.assert_array_equal(read_image(p), photo[..., ::-1])
    # 16-bit -> the top 8 bits
    g16 = (g.astype(np.uint16) << 8) | np.uint16(0xA5)
    p = tmp_path / "gray16.png"
    assert cv2.imwrite(str(p), g16)
    out = read_image(p, color=False)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, g)
    rgb16 = (photo.astype(np.uint16) << 8) | np.uint16(0x7F)
    p = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(p), rgb16[..., ::-1])
    np.testing.assert_array_equal(read_image(p), photo[..., ::-1])
    # palette GIF -> the palette's colours
    pal = Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    p = tmp_path / "palette.gif"
    pal.save(p)
    with Image.open(p) as im:
        expect = np.asarray(im.convert("RGB"))[..., ::-1]
    np.testing.assert_array_equal(read_image(p), expect)
    # BMP and TIFF
    for ext in ("bmp", "tiff"):
        p = tmp_path / f"photo.{ext}"
        Image.fromarray(photo).save(p)
        np.testing.assert_array_equal(read_image(p), photo[..., ::-1])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_all_paths(tmp_path, photo, orientation):
    expect_rgb = orient_numpy(photo, orientation)
    # lossless formats: exact, whatever decoder reads them
    for fmt, ext in (("PNG", "png"), ("WEBP", "webp"), ("TIFF", "tif")):
        kw = {"lossless": True} if fmt == "WEBP" else {}
        p = write(tmp_path / f"o.{ext}", encode(photo, fmt, exif=exif_with(orientation), **kw))
        np.testing.assert_array_equal(read_image(p), expect_rgb[..., ::-1], err_msg=fmt)
        with Image.open(p) as im:
            pil = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        np.testing.assert_array_equal(pil, expect_rgb, err_msg=fmt)
    # JPEG: the decoded pixels, oriented
    p = write(tmp_path / "o.jpg", encode(photo, "JPEG", quality=95, exif=exif_with(orientation)))
    raw = cv2.imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    np.testing.assert_array_equal(read_image(p), orient_numpy(raw, orientation))
    # ... and what OpenCV's own imread does (it honours the tag for JPEG)
    np.testing.assert_array_equal(read_image(p), cv2.imread(str(p), cv2.IMREAD_COLOR))
    # the reduced-resolution path orients too
    h, w = expect_rgb.shape[:2]
    small = read_image(p, size=(w // 4, h // 4))
    full_then_resize = cv2.resize(read_image(p), (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    assert small.shape == full_then_resize.shape
    assert np.abs(small.astype(int) - full_then_resize).mean() < 3
    small_gray = read_image(p, color=False, size=(w // 2, h // 2))
    assert small_gray.shape == (h // 2, w // 2)


@pytest.mark.parametrize("orientation", [1, 3, 6, 7])
def test_pillow_fallback_orients(tmp_path, photo, orientation, monkeypatch):
    """When OpenCV cannot decode a file, Pillow does, with the same result."""
    p = write(tmp_path / "o.png", encode(photo, "PNG", exif=exif_with(orientation)))
    expect = read_image(p)
    monkeypatch.setattr(icas_io, "_cv2_decode", lambda *a, **k: None)
    np.testing.assert_array_equal(read_image(p), expect)
    gray = read_image(p, color=False)  # Pillow's convert("L"): rounding may differ by 1
    assert np.abs(gray.astype(int) - cv2.cvtColor(expect, cv2.COLOR_BGR2GRAY)).max() <= 1
    g16 = tmp_path / "g16.png"
    Image.fromarray((np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)).save(g16)
    expect16 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(read_image(g16, color=False), expect16)


def test_png_exif_after_pixels(tmp_path, photo):
    """An eXIf chunk after IDAT (allowed by the PNG spec) still orients."""
    plain = encode(photo, "PNG")
    payload = exif_with(6).tobytes()
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + payload) & 0xFFFFFFFF)
    iend = plain.rfind(b"IEND") - 4
    p = write(tmp_path / "late.png", plain[:iend] + chunk + plain[iend:])
    np.testing.assert_array_equal(read_image(p), orient_numpy(photo, 6)[..., ::-1])


def test_resize_size_and_scale(tmp_path, photo):
    p = write(tmp_path / "p.png", encode(photo, "PNG"))
    assert read_image(p, size=(64, 32)).shape == (32, 64, 3)
    assert read_image(p, size=50, color=False).shape == (50, 50)
    assert read_image(p, scale=(0.5, 0.25)).shape == (60, 88, 3)
    assert read_image(p, scale=2).shape == (480, 352, 3)
    assert read_image(p, scale=(1e-6, 1e-6)).shape == (1, 1, 3)  # at least one pixel
    np.testing.assert_array_equal(read_image(p, size=(176, 240)), photo[..., ::-1])
    shrunk = read_image(p, size=(88, 120))
    bgr = photo[..., ::-1]
    np.testing.assert_array_equal(shrunk, cv2.resize(bgr, (88, 120), interpolation=cv2.INTER_AREA))
    grown = read_image(p, size=(300, 300))
    linear = cv2.resize(bgr, (300, 300), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(grown, linear)


def test_reduced_decode_choice(tmp_path, photos, monkeypatch):
    big = cv2.resize(photos[1], (800, 600))  # coffee, 800x600
    p = write(tmp_path / "big.jpg", encode(big, "JPEG", quality=90))
    assert icas_io._reduction((800, 600), (400, 300)) == 2
    assert icas_io._reduction((800, 600), (100, 75)) == 8
    assert icas_io._reduction((800, 600), (200, 76)) == 4
    assert icas_io._reduction((800, 600), (401, 10)) == 1
    seen = []
    real = icas_io._cv2_decode

    def spy(data, color, factor):
        seen.append(factor)
        return real(data, color, factor)

    monkeypatch.setattr(icas_io, "_cv2_decode", spy)
    for size, factor in (((100, 75), 8), ((200, 150), 4), ((300, 200), 2), ((500, 300), 1)):
        seen.clear()
        fast = read_image(p, size=size)
        assert seen == [factor]
        slow = read_image(p, size=size, reduced=False)
        assert fast.shape == slow.shape == (size[1], size[0], 3)
        assert np.abs(fast.astype(int) - slow).mean() < 2.5
    seen.clear()
    assert read_image(p, scale=0.25).shape == (150, 200, 3)
    assert seen == [4]
    # PNG never decodes reduced (OpenCV would decode in full then subsample)
    q = write(tmp_path / "big.png", encode(big, "PNG"))
    seen.clear()
    read_image(q, size=(100, 75))
    assert seen == [1]


# ---------------------------------------------------------------------------
# bad files


def test_bad_files_reasons(tmp_path, photo):
    jpg = encode(photo, "JPEG", quality=90)
    prog = encode(photo, "JPEG", quality=90, progressive=True)
    png = encode(photo, "PNG")
    webp = encode(photo, "WEBP")
    gif = encode(photo, "GIF")
    cases = {
        "zero.jpg": (b"", "empty file"),
        "text.jpg": (b"this is not an image\n" * 10, "not an image"),
        "random.png": (np.random.default_rng(0).bytes(4096), "not an image"),
        "half.jpg": (jpg[: len(jpg) // 2], "truncated"),
        "no_eoi.jpg": (jpg[:-2], "truncated"),
        "half_progressive.jpg": (prog[: len(prog) * 2 // 3], "truncated"),
        "header_only.jpg": (jpg[:300], "truncated"),
        "half.png": (png[: len(png) // 2], "truncated"),
        "no_iend.png": (png[:-12], "truncated"),
        "half.webp": (webp[: len(webp) // 2], "truncated"),
        "half.gif": (gif[: len(gif) // 2], "truncated"),
    }
    for name, (data, reason) in cases.items():
        p = write(tmp_path / name, data)
        with pytest.raises(ImageReadError) as info:
            read_image(p)
        assert info.value.reason == reason, name
        assert info.value.path == p
        assert str(info.value) == f"{p}: {reason}"
        with pytest.raises(ImageReadError):
            read_image(p, color=False, size=(8, 8))


def test_jpeg_tail_and_thumbnail(tmp_path, photo):
    jpg = encode(photo, "JPEG", quality=90)
    # data after the end-of-image marker (some cameras append trailers): fine
    p = write(tmp_path / "tail.jpg", jpg + b"\x00" * 100 + b"TRAILER")
    assert read_image(p).shape == (240, 176, 3)
    # an embedded thumbnail (its own SOS .. EOI) before the main image: a
    # truncated main image is still truncated, a whole one still reads
    thumb = encode(photo[::8, ::8], "JPEG")
    app1 = b"Exif\x00\x00" + thumb
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    with_thumb = jpg[:2] + segment + jpg[2:]
    p = write(tmp_path / "thumb.jpg", with_thumb)
    plain = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(read_image(p), plain)
    p = write(tmp_path / "thumb_cut.jpg", with_thumb[: len(with_thumb) - 2000])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(p)


def test_too_large(tmp_path, photo):
    p = write(tmp_path / "bomb.png", png_with_size(40000, 30000))
    with pytest.raises(ImageReadError) as info:
        read_image(p)
    limit = DEFAULT_MAX_PIXELS
    assert info.value.reason == f"too large: 40000x30000 exceeds the limit of {limit} pixels"
    q = write(tmp_path / "small.png", encode(photo, "PNG"))
    with pytest.raises(ImageReadError, match=r"too large: 176x240 exceeds the limit of 1000 "):
        read_image(q, max_pixels=1000)
    assert read_image(q, max_pixels=176 * 240).shape == (240, 176, 3)
    assert read_image(q, max_pixels=None).shape == (240, 176, 3)
    # Pillow's own limit stays in force for everyone else
    assert Image.MAX_IMAGE_PIXELS is not None


def test_unreadable_paths(tmp_path, photo):
    with pytest.raises(ImageReadError, match="unreadable: no such file"):
        read_image(tmp_path / "missing.jpg")
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with pytest.raises(ImageReadError, match="unreadable: no such file"):
        read_image(tmp_path / "dangling.jpg")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.jpg")  # reading it would block forever
        with pytest.raises(ImageReadError, match="unreadable: not a regular file"):
            read_image(tmp_path / "pipe.jpg")
    d = tmp_path / "dir.jpg"
    d.mkdir()
    with pytest.raises(ImageReadError, match="unreadable: is a directory"):
        read_image(d)
    p = write(tmp_path / "locked.png", encode(photo, "PNG"))
    os.chmod(p, 0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running as a user who can read any file (root)")
        with pytest.raises(ImageReadError) as info:
            read_image(p)
        assert info.value.reason == "unreadable: permission denied"
    finally:
        os.chmod(p, 0o644)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermissionError(13, "Permission denied"), "unreadable: permission denied"),
        (OSError(5, "Input/output error"), "unreadable: Input/output error"),
    ],
)
def test_unreadable_simulated(tmp_path, monkeypatch, error, reason):
    """The same reasons without needing a non-root user or a failing disk."""
    p = write(tmp_path / "x.jpg", b"\xff\xd8\xff")

    def failing_open(*args, **kwargs):
        raise error

    monkeypatch.setattr(icas_io, "open", failing_open, raising=False)
    with pytest.raises(ImageReadError) as info:
        read_image(p)
    assert info.value.reason == reason


def test_error_pickles():
    err = ImageReadError("a/b.jpg", "truncated")
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.reason, str(back)) == ("a/b.jpg", "truncated", "a/b.jpg: truncated")


def test_argument_errors(tmp_path, photo):
    p = write(tmp_path / "p.png", encode(photo, "PNG"))
    with pytest.raises(ValueError, match="not both"):
        read_image(p, size=(10, 10), scale=0.5)
    with pytest.raises(ValueError, match="size must be positive"):
        read_image(p, size=(0, 10))
    with pytest.raises(ValueError, match="scale must be positive"):
        read_image(p, scale=(-1, 1))
    with pytest.raises(TypeError, match=r"size must be \(w, h\)"):
        read_image(p, size=(1, 2, 3))
    with pytest.raises(TypeError, match="whole numbers"):
        read_image(p, size=(10.5, 10))
    with pytest.raises(ValueError, match="max_pixels must be >= 1"):
        read_image(p, max_pixels=0)
    with pytest.raises(TypeError, match="max_pixels must be an int"):
        read_image(p, max_pixels=1.5)


@settings(max_examples=30, deadline=None)
@given(
    w=st.integers(1, 200),
    h=st.integers(1, 200),
    color=st.booleans(),
    fmt=st.sampled_from(["png", "jpg"]),
)
def test_any_size_any_target(tmp_path_factory, photos, w, h, color, fmt):
    d = tmp_path_factory.mktemp("hyp")
    src = photos[2]
    p = d / f"x.{fmt}"
    Image.fromarray(src).save(p)
    out = read_image(p, size=(w, h), color=color)
    assert out.shape == ((h, w, 3) if color else (h, w))
    assert out.dtype == np.uint8 and out.flags.c_contiguous
