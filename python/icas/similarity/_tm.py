"""Template-matching similarity: ``1 - cv2.matchTemplate(a, b, TM_SQDIFF_NORMED)``.

For two images of one size the normalised squared difference is
``(|a|^2 + |b|^2 - 2 a.b) / (|a| |b|)``, so all pairs of n images need n
squared norms and one Gram matrix. The C++ kernel computes that Gram matrix
as an exact integer GEMM (uint8 products summed in int32/int64), tiled and
parallel over tiles: results are exact up to the final float division and do
not depend on the thread count.

Edge cases are OpenCV's: the normalised value is clamped to at most 1 (very
different images have similarity 0, never below), and a pair where either
image is all zeros has similarity 0, including two black images.
"""

from __future__ import annotations

import numpy as np

from icas import _core, _device, _validate
from icas._validate import shape_str
from icas.chaining import connected_components

__all__ = ["tm_components", "tm_cross", "tm_matrix", "tm_pairs", "tm_similarity"]


def _images(images, name: str) -> np.ndarray:
    """(n, h, w) or (n, h, w, c) uint8 -> C-contiguous (n, h, w, c)."""
    x = _validate.array(images, name=name, dtype=np.uint8, ndim=(3, 4))
    if min(x.shape[1:]) < 1:
        raise ValueError(
            f"{name} must hold images of at least one pixel and one channel, "
            f"got shape {shape_str(x)}"
        )
    return x if x.ndim == 4 else x[..., np.newaxis]


def tm_matrix(images, *, n_threads=None, device=None) -> np.ndarray:
    """Template-matching similarity of every pair of images of one size.

    Parameters
    ----------
    images : (n, h, w) or (n, h, w, c) uint8 array
        Grayscale or colour images, all of one size. A non-contiguous array is
        copied once to C order (``np.ascontiguousarray``); nothing else is.
    n_threads : int, optional
        None: OpenMP default (honours ``OMP_NUM_THREADS``); -1: all cores.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    similarity : (n, n) float32 array
        ``1 - cv2.matchTemplate(images[i], images[j], cv2.TM_SQDIFF_NORMED)``,
        in [0, 1]; symmetric, 1 on the diagonal (0 for an all-black image).
    """
    x = _images(images, "images")
    if _device.on_cuda(device):
        return _device.cuda_module().tm_matrix(x)
    return _core.tm_matrix(x, _validate.threads(n_threads))


def tm_cross(a, b, *, n_threads=None, device=None) -> np.ndarray:
    """Template-matching similarity of each image of ``a`` with each of ``b``.

    Parameters
    ----------
    a : (na, h, w) or (na, h, w, c) uint8 array
    b : (nb, h, w) or (nb, h, w, c) uint8 array
        Images of the same size and channel count as ``a`` (``(h, w)`` and
        ``(h, w, 1)`` count as the same).
    n_threads : int, optional
        None: OpenMP default; -1: all cores.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    similarity : (na, nb) float32 array
        In [0, 1].
    """
    xa = _images(a, "a")
    xb = _images(b, "b")
    if xa.shape[1:] != xb.shape[1:]:
        raise ValueError(
            "a and b must hold images of one size and channel count, got shapes "
            f"{shape_str(a)} and {shape_str(b)}"
        )
    if _device.on_cuda(device):
        return _device.cuda_module().tm_cross(xa, xb)
    return _core.tm_cross(xa, xb, _validate.threads(n_threads))


def tm_pairs(images, threshold, *, groups=None, n_threads=None, device=None):
    """Pairs of images whose template-matching similarity is >= threshold.

    Parameters
    ----------
    images : (n, h, w) or (n, h, w, c) uint8 array
        Images of one size.
    threshold : float in [0, 1]
    groups : (n,) int array, optional
        Pairs whose two images have the same group are skipped (used when
        merging batches); tiles of images that all share one group are not
        computed at all.
    n_threads : int, optional
        None: OpenMP default; -1: all cores.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    edges : (m, 2) int64 array
        Pairs ``i < j``, ordered by ``(i, j)`` whatever the thread count.
    scores : (m,) float32 array
        Their similarities.
    """
    x = _images(images, "images")
    thr = _validate.threshold(threshold)
    g = _validate.groups(groups, x.shape[0])
    if _device.on_cuda(device):
        return _device.cuda_module().tm_pairs(x, thr, g)
    return _core.tm_pairs(x, thr, g, _validate.threads(n_threads))


def tm_components(images, threshold, *, groups=None, n_threads=None, device=None) -> np.ndarray:
    """Clusters: connected components of the pairs with similarity >= threshold.

    Same labels as ``icas.connected_components(tm_pairs(...)[0], n)``, without
    holding the edges: each Gram tile keeps a spanning forest of its pairs,
    and tiles whose images are already in one component are skipped (exact).

    Parameters
    ----------
    images : (n, h, w) or (n, h, w, c) uint8 array
        Images of one size.
    threshold : float in [0, 1]
    groups : (n,) int array, optional
        Pairs whose two images have the same group are skipped.
    n_threads : int, optional
        None: OpenMP default; -1: all cores.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both. On the GPU: the pairs form on the
        device, then union-find on the host.

    Returns
    -------
    labels : (n,) int64 array
        Component of each image, numbered in order of first appearance.
    """
    x = _images(images, "images")
    thr = _validate.threshold(threshold)
    g = _validate.groups(groups, x.shape[0])
    if _device.on_cuda(device):
        return connected_components(_device.cuda_module().tm_pairs(x, thr, g)[0], x.shape[0])
    return _core.tm_components(x, thr, g, _validate.threads(n_threads))


def _image(a, name: str) -> np.ndarray:
    """(h, w) or (h, w, c) uint8 -> C-contiguous (h, w, c)."""
    x = _validate.array(a, name=name, dtype=np.uint8, ndim=(2, 3))
    if min(x.shape) < 1:
        raise ValueError(
            f"{name} must have at least one pixel and one channel, got shape {shape_str(x)}"
        )
    return x if x.ndim == 3 else x[..., np.newaxis]


def tm_similarity(a, b, *, n_threads=None) -> float:
    """Template-matching similarity of two images of any sizes.

    The smaller image slides over the larger one and the best position counts:
    ``1 - cv2.matchTemplate(larger, smaller, cv2.TM_SQDIFF_NORMED).min()``.
    For equal sizes this is the value ``tm_matrix`` gives.

    Parameters
    ----------
    a, b : (h, w) or (h, w, c) uint8 arrays
        Same number of channels (``(h, w)`` and ``(h, w, 1)`` count as the
        same). One must fit inside the other in both dimensions, as OpenCV
        requires; images are never cropped or resized here.
    n_threads : int, optional
        None: OpenMP default; -1: all cores (parallel over positions).

    Returns
    -------
    similarity : float
        In [0, 1].

    Raises
    ------
    ValueError
        When neither image fits inside the other (e.g. (40, 60) and (60, 40)),
        or the channel counts differ.

    Notes
    -----
    Dot products are computed directly (exact integers): the work is
    ``(H - h + 1) (W - w + 1) h w c`` multiply-adds, fast when the sizes are
    close (the usual case after resizing), slower than OpenCV's FFT when a
    large template slides far over a much larger image.
    """
    xa = _image(a, "a")
    xb = _image(b, "b")
    if xa.shape[2] != xb.shape[2]:
        raise ValueError(
            f"a and b must have the same number of channels, got shapes "
            f"{shape_str(a)} and {shape_str(b)}"
        )
    (ha, wa), (hb, wb) = xa.shape[:2], xb.shape[:2]
    if ha >= hb and wa >= wb:
        image, templ = xa, xb
    elif hb >= ha and wb >= wa:
        image, templ = xb, xa
    else:
        raise ValueError(
            f"neither image fits inside the other: a is {ha}x{wa}, b is {hb}x{wb} "
            "(one must be at least as tall and as wide as the other; crop or resize first)"
        )
    return float(_core.tm_similarity(image, templ, _validate.threads(n_threads)))
