"""Mean structural similarity (SSIM) of grayscale images, all pairs in C++.

The value of a pair equals ``skimage.metrics.structural_similarity(a, b,
data_range=255)`` with scikit-image's defaults (7x7 uniform window, K1 = 0.01,
K2 = 0.03, sample covariance, the SSIM map averaged over the windows that lie
fully inside the image) to about 1e-6. Window statistics are exact integers
(per image once; per pair only the cross term), the SSIM formula is evaluated
in float32 and averaged in float64. Identical images give exactly 1.0.
The statistics of a call's images are kept while it runs: about 12 h w bytes
per image.

SSIM lies in [-1, 1]: structurally inverted images score below 0. The values
are returned as they are (never clipped), and thresholds may be anywhere in
[-1, 1].
"""

from __future__ import annotations

import numpy as np

from icas import _core, _device, _validate
from icas._validate import shape_str
from icas.chaining import connected_components

__all__ = ["ssim_components", "ssim_cross", "ssim_matrix", "ssim_pairs"]

WIN_SIZE = 7


def _images(a, name: str) -> np.ndarray:
    if isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.ndim == 4:
        raise ValueError(
            f"{name} must be grayscale images (n, h, w), got shape {shape_str(a)}; convert "
            "colour images first, e.g. cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)"
        )
    a = _validate.array(a, name=name, dtype=np.uint8, ndim=3)
    if a.shape[0] and (a.shape[1] < WIN_SIZE or a.shape[2] < WIN_SIZE):
        raise ValueError(
            f"win_size {WIN_SIZE} exceeds image extent: SSIM needs images of at least "
            f"{WIN_SIZE}x{WIN_SIZE} pixels, got {name} of shape {shape_str(a)}"
        )
    return a


def ssim_matrix(images, *, n_threads=None, device=None) -> np.ndarray:
    """Mean SSIM of every pair of images.

    Parameters
    ----------
    images : (n, h, w) uint8 array
        Grayscale images of one size, ``h >= 7`` and ``w >= 7``. A
        non-contiguous array is copied to C order once (the only conversion).
    n_threads : int or None, optional
        OpenMP threads: None uses the OpenMP default (honours
        ``OMP_NUM_THREADS``), -1 every core.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    similarity : (n, n) float32 array
        Symmetric, 1 on the diagonal; values in [-1, 1], not clipped.
    """
    images = _images(images, "images")
    if _device.on_cuda(device):
        return _device.cuda_module().ssim_matrix(images)
    return _core.ssim_matrix(images, _validate.threads(n_threads))


def ssim_cross(a, b, *, n_threads=None, device=None) -> np.ndarray:
    """Mean SSIM of every image of ``a`` against every image of ``b``.

    Parameters
    ----------
    a : (na, h, w) uint8 array
        Grayscale images, ``h >= 7`` and ``w >= 7``.
    b : (nb, h, w) uint8 array
        Grayscale images of the same size as ``a``.
    n_threads : int or None, optional
        OpenMP threads: None uses the OpenMP default, -1 every core.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    similarity : (na, nb) float32 array
        ``similarity[i, j]`` is the SSIM of ``a[i]`` and ``b[j]``, in [-1, 1].
    """
    a = _images(a, "a")
    b = _images(b, "b")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"a and b must hold images of one size, got shapes {shape_str(a)} and {shape_str(b)}"
        )
    if _device.on_cuda(device):
        return _device.cuda_module().ssim_cross(a, b)
    return _core.ssim_cross(a, b, _validate.threads(n_threads))


def ssim_pairs(images, threshold, *, groups=None, n_threads=None, device=None):
    """Pairs of images whose mean SSIM is at least ``threshold``.

    Parameters
    ----------
    images : (n, h, w) uint8 array
        Grayscale images of one size, ``h >= 7`` and ``w >= 7``.
    threshold : float
        Keep pairs whose SSIM (the float32 value :func:`ssim_matrix` reports)
        is >= threshold; in [-1, 1], since SSIM can be negative.
    groups : (n,) integer array, optional
        Pairs whose two images have the same group id are skipped.
    n_threads : int or None, optional
        OpenMP threads: None uses the OpenMP default, -1 every core.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    edges : (m, 2) int64 array
        Pairs ``(i, j)`` with ``i < j``, ordered by ``(i, j)`` whatever the
        thread count.
    scores : (m,) float32 array
        SSIM of each pair.
    """
    images = _images(images, "images")
    threshold = _validate.threshold(threshold, low=-1.0, high=1.0)
    groups = _validate.groups(groups, images.shape[0])
    if _device.on_cuda(device):
        return _device.cuda_module().ssim_pairs(images, threshold, groups)
    return _core.ssim_pairs(images, threshold, groups, _validate.threads(n_threads))


def ssim_components(images, threshold, *, groups=None, n_threads=None, device=None) -> np.ndarray:
    """Clusters of images chained by SSIM >= ``threshold``.

    The connected components of the graph of :func:`ssim_pairs`; a pair whose
    two images are already in one component is not computed (exact).

    Parameters
    ----------
    images : (n, h, w) uint8 array
        Grayscale images of one size, ``h >= 7`` and ``w >= 7``.
    threshold : float
        Two images are similar when their SSIM is >= threshold, in [-1, 1].
    groups : (n,) integer array, optional
        Pairs whose two images have the same group id are skipped.
    n_threads : int or None, optional
        OpenMP threads: None uses the OpenMP default, -1 every core.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both. On the GPU: the pairs form on the
        device, then union-find on the host.

    Returns
    -------
    labels : (n,) int64 array
        Component of each image, numbered 0, 1, ... in order of first
        appearance (``icas.connected_components`` of the pairs form).
    """
    images = _images(images, "images")
    threshold = _validate.threshold(threshold, low=-1.0, high=1.0)
    groups = _validate.groups(groups, images.shape[0])
    if _device.on_cuda(device):
        return connected_components(
            _device.cuda_module().ssim_pairs(images, threshold, groups)[0], images.shape[0]
        )
    return _core.ssim_components(images, threshold, groups, _validate.threads(n_threads))
