"""Reading and checking the images every segmentation entry point takes.

The canonical image is ``(h, w, 3)`` uint8 BGR (OpenCV's order), C-contiguous.
A path is read with OpenCV into that form; an array is checked, never
converted silently: a grayscale or BGRA array gets an error that says which
``cv2.cvtColor`` call makes it valid.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(s) for s in a.shape) + ("," if a.ndim == 1 else "") + ")"


def read_bgr(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``(h, w, 3)`` uint8 BGR.

    Grayscale files become three equal channels, an alpha channel is dropped.
    Non-ASCII paths work (the bytes are read by Python, decoded by OpenCV).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is not an image OpenCV can decode.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image file does not exist: {str(p)!r}")
    data = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise ValueError(f"cannot read {str(p)!r} as an image (empty or not an image file)")
    return np.ascontiguousarray(img)


def as_bgr(image, *, name: str = "image") -> np.ndarray:
    """Check (or read) an image and return it as C-contiguous ``(h, w, 3)`` uint8 BGR.

    Parameters
    ----------
    image : ndarray of shape (h, w, 3) and dtype uint8, str or os.PathLike
        A BGR image, or the path of an image file.
    name : str
        The argument's name, used in error messages.

    Returns
    -------
    ndarray of shape (h, w, 3), uint8
        The image itself when it is already C-contiguous, otherwise a contiguous copy.

    Raises
    ------
    TypeError
        When ``image`` is neither an array nor a path, or its dtype is not uint8.
    ValueError
        When the array is empty or does not have three channels.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_bgr(image)
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"{name} must be a (h, w, 3) uint8 BGR array or a path, got {type(image).__name__}"
        )
    if image.dtype != np.uint8:
        raise TypeError(
            f"{name} must have dtype uint8, got {image.dtype}; scale it to 0..255 and use "
            f"image.astype(np.uint8)"
        )
    if image.size == 0:
        raise ValueError(f"{name} is empty: shape {_shape(image)}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        raise ValueError(
            f"{name} must be (h, w, 3) BGR, got grayscale shape {_shape(image)}; convert it "
            f"with cv2.cvtColor({name}, cv2.COLOR_GRAY2BGR)"
        )
    if image.ndim == 3 and image.shape[2] == 4:
        raise ValueError(
            f"{name} must be (h, w, 3) BGR, got 4 channels, shape {_shape(image)}; drop the "
            f"alpha channel with cv2.cvtColor({name}, cv2.COLOR_BGRA2BGR)"
        )
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must have shape (h, w, 3), got {_shape(image)}")
    return np.ascontiguousarray(image)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber a label image so segments are ``1..n`` in raster order of first
    appearance and 0 (edges) stays 0; returns int32."""
    flat = labels.ravel()
    uniq, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    # Number segments by where they first appear so the result does not depend on
    # the arbitrary ids a method produced.
    order = np.argsort(first, kind="stable")
    new_ids = np.empty(len(uniq), dtype=np.int32)
    has_zero = uniq.size and uniq[0] == 0
    nonzero = order[uniq[order] != 0] if has_zero else order
    new_ids[nonzero] = np.arange(1, len(nonzero) + 1, dtype=np.int32)
    if has_zero:
        new_ids[0] = 0
    return new_ids[inverse].reshape(labels.shape)
