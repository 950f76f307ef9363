"""Finding and reading images, skipping the ones that cannot be read.

Every image goes through :func:`read_image`, which returns 8-bit BGR or
grayscale pixels or raises :class:`ImageReadError` with a one-line reason.
It never returns ``None`` and never crashes on a bad file: empty files, files
that are not images, truncated or corrupt files, unreadable paths and images
whose declared size exceeds a pixel limit (decompression bombs) are all
reported the same way, so a pipeline can skip them and list them.

Decoding is OpenCV's (``cv2.imdecode`` on the file's bytes, which works for
any path, unicode included), with Pillow as the fallback for formats OpenCV
cannot decode. Pillow also reads the header first (dimensions, format, EXIF
orientation) without decoding the pixels, so the pixel limit is checked before
any memory is spent.
"""

from __future__ import annotations

import os
import stat
import threading
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "list_images",
    "read_image",
]

#: File extensions :func:`list_images` treats as images (compared lower-case).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".tif", ".tiff",
        ".webp", ".pbm", ".pgm", ".ppm", ".pnm", ".pxm", ".ras", ".sr", ".jp2", ".j2k",
        ".avif",
    }
)  # fmt: skip

#: Default limit on the declared number of pixels (16384 x 16384). Larger
#: images are refused before decoding, as decompression bombs.
DEFAULT_MAX_PIXELS: int = 1 << 28

# EXIF orientation tag.
_ORIENTATION = 0x0112

# Pillow's own decompression-bomb check runs inside Image.open; ours replaces
# it (configurable, and its message can name the size), so header reads switch
# Pillow's off for their duration. That is a module global of Pillow, hence the
# lock: header reads are short (tens of microseconds) and only header reads
# happen under it.
_HEADER_LOCK = threading.Lock()


class ImageReadError(Exception):
    """An image that could not be read.

    Attributes
    ----------
    path : str or os.PathLike
        The file.
    reason : str
        One line: ``"empty file"``, ``"not an image"``, ``"truncated"``,
        ``"unreadable: permission denied"``, ``"too large: 40000x30000 exceeds
        the limit of 268435456 pixels"``, ``"corrupt: ..."``...
    """

    def __init__(self, path, reason: str):
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self):  # keep (path, reason) through pickling (process pools)
        return (type(self), (self.path, self.reason))


# ---------------------------------------------------------------------------
# listing


def list_images(
    folder,
    *,
    recursive: bool = False,
    extensions=IMAGE_EXTENSIONS,
    include_hidden: bool = False,
) -> list[Path]:
    """Image files of a folder, in a deterministic order.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to list.
    recursive : bool, default False
        Also list sub-folders (symbolic links to folders are not followed, so
        a link cycle cannot loop).
    extensions : iterable of str, default :data:`IMAGE_EXTENSIONS`
        File name endings to keep, with the dot; compared case-insensitively.
    include_hidden : bool, default False
        Keep names starting with ``.`` (hidden files and folders, e.g. macOS
        ``._photo.jpg`` resource forks, which are not images).

    Returns
    -------
    list of pathlib.Path
        Sorted by their path relative to `folder`, component by component
        (code-point order: the same on every system and file system).
        Only files are listed (a folder named ``x.jpg`` is not).

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        When `folder` does not exist or is not a folder.
    """
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"folder not found: {os.fspath(root)}")
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {os.fspath(root)}")
    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}

    def keep(name: str) -> bool:
        if not include_hidden and name.startswith("."):
            return False
        return os.path.splitext(name)[1].lower() in exts

    found: list[tuple[tuple[str, ...], Path]] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root):
            if not include_hidden:
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(root).parts
            for name in filenames:
                p = Path(dirpath, name)
                if keep(name) and p.is_file():
                    found.append(((*rel, name), p))
    else:
        with os.scandir(root) as it:
            for entry in it:
                if keep(entry.name) and entry.is_file():
                    found.append(((entry.name,), Path(entry.path)))
    found.sort(key=lambda t: t[0])
    return [p for _, p in found]


# ---------------------------------------------------------------------------
# reading


def read_image(
    path,
    *,
    color: bool = True,
    size=None,
    scale=None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    reduced: bool = True,
) -> np.ndarray:
    """Read an image as 8-bit BGR or grayscale pixels, optionally resized.

    Parameters
    ----------
    path : str or os.PathLike
        The image file (any name: unicode and spaces are fine).
    color : bool, default True
        True: BGR ``(h, w, 3)``; False: grayscale ``(h, w)``.
    size : (int, int) or int, optional
        Target size ``(w, h)`` (an int means square). Exclusive with `scale`.
    scale : (float, float) or float, optional
        Resize factors ``(fx, fy)``: the target is ``(round(w*fx), round(h*fy))``
        (at least 1 pixel) of the image as displayed (after EXIF orientation).
    max_pixels : int or None, default :data:`DEFAULT_MAX_PIXELS`
        Refuse images whose header declares more pixels than this, before
        decoding. None: no limit of ours (OpenCV's own, 2**30, remains).
    reduced : bool, default True
        For JPEG, when the target is at most 1/2, 1/4 or 1/8 of the image in
        both dimensions, let the decoder produce that reduced resolution
        directly (``cv2.IMREAD_REDUCED_*``, 2-3x faster) before the exact
        resize. Only JPEG decodes faster that way; other formats always
        decode in full.

    Returns
    -------
    numpy.ndarray
        uint8, C-contiguous: ``(h, w, 3)`` BGR if `color` else ``(h, w)``.
        16-bit, alpha, grayscale and palette images are converted (16 bits
        are scaled to 8, alpha is dropped). The EXIF orientation is applied,
        so the pixels are the image as a viewer shows it. Shrinking uses
        ``INTER_AREA``, enlarging ``INTER_LINEAR``.

    Raises
    ------
    ImageReadError
        With a one-line reason, for any file that cannot be read as an image.
    ValueError, TypeError
        For bad `size`, `scale` or `max_pixels` arguments.
    """
    size, scale = _check_resize(size, scale)
    max_pixels = _check_max_pixels(max_pixels)
    data = _read_bytes(path)
    header = _read_header(path, data, max_pixels)
    factor, target = 1, None
    if header is None:  # Pillow does not know it; OpenCV may (or it is not an image)
        img = _cv2_decode(data, color, 1)
        if img is None:
            raise ImageReadError(path, "not an image")
        if max_pixels is not None and img.shape[0] * img.shape[1] > max_pixels:
            raise ImageReadError(path, _too_large(img.shape[1], img.shape[0], max_pixels))
    else:
        if reduced and header.format in _REDUCIBLE:
            target = _target_size(header.display_size, size, scale)
            if target is not None:
                factor = _reduction(header.display_size, target)
        img = _cv2_decode(data, color, factor)
        if img is None and factor > 1:  # a reduced decode refused: try in full
            factor = 1
            img = _cv2_decode(data, color, 1)
        if img is None:
            img = _pil_to_array(_pil_load(path, header), color)
        elif header.format not in _SELF_ORIENTING:
            img = _orient(img, header.orientation)
    if factor == 1:  # (after a reduced decode the target came from the full size)
        target = _target_size((img.shape[1], img.shape[0]), size, scale)
    if target is not None:
        img = _resize(img, target)
    return np.ascontiguousarray(img)


def _read_pil(path, *, size=None, scale=None, max_pixels=DEFAULT_MAX_PIXELS) -> Image.Image:
    """The image as Pillow decodes it, oriented and optionally resized.

    Same checks and reasons as :func:`read_image` (pixel limit, truncation,
    unreadable files). Used where a feature must equal a Pillow-based
    reference bit for bit (imagehash): the result is
    ``ImageOps.exif_transpose(Image.open(path))``, with 16-bit and float
    modes scaled to 8-bit ``L`` (Pillow's own conversion clips them to white)
    and, when asked, ``.resize(target, Image.Resampling.LANCZOS)``. Other
    modes are left as they are.
    """
    size, scale = _check_resize(size, scale)
    max_pixels = _check_max_pixels(max_pixels)
    data = _read_bytes(path)
    header = _read_header(path, data, max_pixels)
    if header is None:
        raise ImageReadError(path, "not an image")
    im = _pil_load(path, header)
    if im.mode in _WIDE_MODES:
        im = Image.fromarray(_to_uint8(np.asarray(im)), "L")
    target = _target_size(im.size, size, scale)
    if target is not None:
        im = im.resize(target, Image.Resampling.LANCZOS)
    return im


# Formats OpenCV decodes faster at a reduced resolution (libjpeg's DCT
# scaling); for the others IMREAD_REDUCED_* decodes in full and then
# subsamples, which only adds a lossy step.
_REDUCIBLE = frozenset({"JPEG", "MPO"})

# Formats whose OpenCV decoder applies the EXIF orientation itself, even with
# IMREAD_IGNORE_ORIENTATION (TIFF: libtiff's RGBA interface does).
_SELF_ORIENTING = frozenset({"TIFF"})

# Pillow modes wider than 8 bits per channel.
_WIDE_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})

_COLOR_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
_GRAY_FLAGS = {
    1: cv2.IMREAD_GRAYSCALE,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


class _Header:
    """What Pillow's header read tells before any pixel is decoded."""

    __slots__ = ("format", "size", "orientation", "display_size", "image")

    def __init__(self, fmt: str, size: tuple[int, int], orientation: int, image: Image.Image):
        self.format = fmt
        self.size = size
        self.orientation = orientation
        self.image = image  # opened, not decoded
        w, h = size
        self.display_size = (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _check_pair(value, name: str, kind):
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        value = (value, value)
    try:
        a, b = value
    except (TypeError, ValueError):
        form = "(w, h)" if name == "size" else "(fx, fy)"
        raise TypeError(f"{name} must be {form} or a single number, got {value!r}") from None
    out = []
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must hold numbers, got {value!r}")
        if kind is int:
            if v != int(v):
                raise TypeError(f"{name} must hold whole numbers of pixels, got {value!r}")
            v = int(v)
        else:
            v = float(v)
        if not (v > 0 and np.isfinite(v)):
            raise ValueError(f"{name} must be positive, got {value!r}")
        out.append(v)
    return tuple(out)


def _check_resize(size, scale):
    if size is not None and scale is not None:
        raise ValueError("give size=(w, h) or scale=(fx, fy), not both")
    if size is not None:
        size = _check_pair(size, "size", int)
    if scale is not None:
        scale = _check_pair(scale, "scale", float)
    return size, scale


def _check_max_pixels(max_pixels):
    if max_pixels is None:
        return None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)):
        raise TypeError(f"max_pixels must be an int or None, got {type(max_pixels).__name__}")
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1 or None, got {max_pixels}")
    return int(max_pixels)


def _target_size(display_size, size, scale):
    """(w, h) to resize to, or None to keep the image as it is."""
    w, h = display_size
    if size is not None:
        target = size
    elif scale is not None:
        target = (max(1, round(w * scale[0])), max(1, round(h * scale[1])))
    else:
        return None
    return None if target == (w, h) else target


def _reduction(display_size, target) -> int:
    w, h = display_size
    tw, th = target
    for f in (8, 4, 2):
        if tw * f <= w and th * f <= h:
            return f
    return 1


def _read_bytes(path) -> bytes:
    try:
        # Not a regular file (a FIFO would block the read forever, a device
        # never end): refuse before opening.
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(st.st_mode):
            raise ImageReadError(path, "unreadable: not a regular file")
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        # (deleted since it was listed, or a link whose target is gone)
        why = " (broken symbolic link)" if os.path.islink(path) else ""
        raise ImageReadError(path, "unreadable: no such file" + why) from None
    except PermissionError:
        raise ImageReadError(path, "unreadable: permission denied") from None
    except IsADirectoryError:
        raise ImageReadError(path, "unreadable: is a directory") from None
    except OSError as exc:
        raise ImageReadError(path, f"unreadable: {exc.strerror or exc}") from None
    if not data:
        raise ImageReadError(path, "empty file")
    return data


def _too_large(w: int, h: int, limit: int) -> str:
    return f"too large: {w}x{h} exceeds the limit of {limit} pixels"


def _open_pillow(data: bytes) -> Image.Image:
    """Image.open without Pillow's decompression-bomb check (ours replaces it)."""
    with _HEADER_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _read_header(path, data: bytes, max_pixels):
    """Format, size and orientation from the header; None when Pillow cannot
    identify the file (OpenCV may still decode it). Raises for refused files."""
    try:
        im = _open_pillow(data)
    except UnidentifiedImageError:
        return None
    except Exception as exc:  # a header Pillow recognised but could not parse
        if _is_truncated(_sniff(data), data):
            raise ImageReadError(path, "truncated") from None
        raise ImageReadError(path, _decode_reason(exc)) from None
    w, h = im.size
    if w < 1 or h < 1:
        raise ImageReadError(path, f"corrupt: declared size {w}x{h}")
    if max_pixels is not None and w * h > max_pixels:
        raise ImageReadError(path, _too_large(w, h, max_pixels))
    fmt = im.format or ""
    if _is_truncated(fmt, data):
        raise ImageReadError(path, "truncated")
    return _Header(fmt, (w, h), _orientation_of(im, data), im)


def _orientation_of(im: Image.Image, data: bytes) -> int:
    try:
        if im.format == "TIFF":
            return 1  # the TIFF decoders orient by themselves (see _SELF_ORIENTING)
        if im.format == "PNG" and "exif" not in im.info:
            # An eXIf chunk after the pixel data: Pillow would decode the
            # whole image to find it; find the chunk in the bytes instead.
            i = data.rfind(b"eXIf")
            if i < 4:
                return 1
            n = int.from_bytes(data[i - 4 : i], "big")
            exif = Image.Exif()
            exif.load(data[i + 4 : i + 4 + n])
        else:
            exif = im.getexif()
        value = exif.get(_ORIENTATION, 1)
    except Exception:  # a malformed EXIF block does not make the image unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _is_truncated(fmt: str, data: bytes) -> bool:
    """Formats whose end is checkable. OpenCV 4.x decodes a truncated JPEG
    partially (grey bottom, a warning only), so check before decoding."""
    if fmt in ("JPEG", "MPO"):
        # The last start-of-scan must be followed by an end-of-image marker.
        # Entropy-coded data cannot contain either marker (0xFF is stuffed),
        # and an EXIF thumbnail's markers come before the main image's scan.
        return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")
    if fmt == "PNG":
        return data.rfind(b"IEND") < 0
    if fmt == "WEBP" and data[:4] == b"RIFF" and len(data) >= 8:
        return len(data) < int.from_bytes(data[4:8], "little") + 8
    return False


def _sniff(data: bytes) -> str:
    """The format of the formats _is_truncated checks, from magic bytes."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return ""


def _decode_reason(exc: BaseException) -> str:
    text = str(exc).strip()
    msg = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, EOFError) or "truncated" in msg.lower():
        return "truncated"
    if isinstance(exc, MemoryError):
        return "too large: out of memory while decoding"
    return f"corrupt: {msg}"


def _cv2_decode(data: bytes, color: bool, factor: int):
    # The orientation is ignored here and applied by _orient from Pillow's
    # reading of the EXIF, so it is the same whatever the decode path (full,
    # reduced, Pillow) and the OpenCV version.
    flags = (_COLOR_FLAGS if color else _GRAY_FLAGS)[factor] | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        return None
    if img is None or img.size == 0:
        return None
    if img.dtype != np.uint8:  # (IMREAD_COLOR/GRAYSCALE already give 8 bits)
        img = _to_uint8(img)
    return img


def _pil_load(path, header: _Header) -> Image.Image:
    """Decode with Pillow and orient as ImageOps.exif_transpose does."""
    try:
        im = header.image
        im.load()
        # Pillow's own orientation semantics (its TIFF plugin orients on load,
        # the others do not), so this equals exif_transpose(Image.open(path)).
        ImageOps.exif_transpose(im, in_place=True)
    except Exception as exc:
        reason = _decode_reason(exc)
        if "not available" in reason:  # "decoder xyz not available"
            reason = f"unsupported format: {header.format or 'unknown'}"
        raise ImageReadError(path, reason) from None
    return im


def _pil_to_array(im: Image.Image, color: bool) -> np.ndarray:
    if im.mode in _WIDE_MODES:
        arr = _to_uint8(np.asarray(im))
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR) if color else arr
    if color:
        return cv2.cvtColor(np.asarray(im.convert("RGB")), cv2.COLOR_RGB2BGR)
    return np.array(im.convert("L"))


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """16-bit integers scaled to 8 bits as OpenCV does (>> 8); wider integers
    by their maximum; floats taken as 0..1 when they fit, else clipped."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "f":
        a = np.nan_to_num(arr.astype(np.float64))
        if a.size and a.max() <= 1.0:
            a = a * 255.0
        return np.clip(a, 0, 255).round().astype(np.uint8)
    a = arr.astype(np.int64)
    top = int(a.max()) if a.size else 0
    if top > 0xFFFF:
        a = a * 255 // top
    elif top > 255:
        a = a >> 8
    return np.clip(a, 0, 255).astype(np.uint8)


def _orient(img: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) as ImageOps.exif_transpose does."""
    if orientation == 2:
        return cv2.flip(img, 1)
    if orientation == 3:
        return cv2.rotate(img, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(img, 0)
    if orientation == 5:
        return cv2.transpose(img)
    if orientation == 6:
        return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(img), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return img


def _resize(img: np.ndarray, target) -> np.ndarray:
    h, w = img.shape[:2]
    tw, th = target
    interp = cv2.INTER_AREA if tw <= w and th <= h else cv2.INTER_LINEAR
    return cv2.resize(img, (tw, th), interpolation=interp)
