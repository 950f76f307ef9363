"""ORB similarity: OpenCV's cross-checked Hamming matching plus the ratio rule.

The similarity of two images is the share of their cross-checked matches whose
distance is below 0.75 x the largest match distance, where the matches are
exactly those of ``cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match``
(mutual first nearest neighbours, ties to the lower index: OpenCV's cross check
since late 2018, checked against the installed cv2 5.x). Those matches do not
depend on which image is the query, so the similarity is symmetric. (Older
OpenCV kept only the train-to-query half of the check, which is not symmetric.)

Rules at the edges:

* an image without descriptors (or a pair without a match) has similarity 0;
* when every match has distance 0 (e.g. an image against itself) the raw rule
  would give 0 (no distance is below 0.75 x 0); icas gives 1. This is the one
  deliberate deviation from the reference rule.

Descriptors of all images come as one ``(total, 32) uint8`` array plus
``offsets (n + 1,) int64``: image ``i`` owns rows ``offsets[i]:offsets[i + 1]``.
"""

from __future__ import annotations

import numpy as np

from icas import _core, _device
from icas import _validate as v
from icas.chaining import connected_components

__all__ = ["orb_components", "orb_cross", "orb_matrix", "orb_pairs"]

ORB_BYTES = 32

# candidates="index": descriptors within this Hamming distance (of 256 bits)
# count as shared, and one shared pair makes two images candidates. On the
# pipeline benchmark's folder this kept 99.9 % of the exact pairs at 0.93
# while comparing about a quarter of them (radius 8: 92 %).
INDEX_RADIUS = 16
INDEX_MIN_SHARED = 1


def _how(candidates) -> dict:
    if candidates not in ("all", "index"):
        raise ValueError(f"candidates must be 'all' or 'index', got {candidates!r}")
    return {"index": candidates == "index", "radius": INDEX_RADIUS, "min_shared": INDEX_MIN_SHARED}


def _images(descriptors, offsets, dname: str, oname: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated C-contiguous (descriptors, offsets)."""
    descriptors = v.array(descriptors, name=dname, dtype=np.uint8, ndim=2)
    if descriptors.shape[1] != ORB_BYTES:
        raise ValueError(
            f"{dname} must have shape (total, {ORB_BYTES}) (ORB descriptors), "
            f"got {v.shape_str(descriptors)}"
        )
    offsets = v.array(offsets, name=oname, dtype=np.int64, ndim=1)
    if offsets.shape[0] < 1:
        raise ValueError(
            f"{oname} must have shape (n + 1,) with n >= 0, got {v.shape_str(offsets)}"
        )
    if offsets[0] != 0:
        raise ValueError(f"{oname}[0] must be 0, got {int(offsets[0])}")
    steps = np.diff(offsets)
    if steps.size and steps.min() < 0:
        k = int(np.argmax(steps < 0))
        raise ValueError(f"{oname} must be non-decreasing, but {oname}[{k + 1}] < {oname}[{k}]")
    if offsets[-1] != descriptors.shape[0]:
        raise ValueError(
            f"{oname}[-1] must equal the number of rows of {dname} "
            f"{v.shape_str(descriptors)}, got {int(offsets[-1])}"
        )
    return descriptors, offsets


def orb_matrix(descriptors, offsets, *, n_threads=None, device=None) -> np.ndarray:
    """ORB similarity of every pair of images.

    Parameters
    ----------
    descriptors : (total, 32) uint8 array
        ORB descriptors of all images, stacked (e.g. from ``cv2.ORB_create()``).
    offsets : (n + 1,) int64 array
        Image ``i`` owns rows ``offsets[i]:offsets[i + 1]``; ``offsets[0] == 0``,
        non-decreasing, ``offsets[-1] == total``. An image may have no rows.
    n_threads : int, optional
        None: OpenMP default (honours ``OMP_NUM_THREADS``); -1: all cores.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    (n, n) float64 array
        Symmetric; ``[i, j]`` equals the reference rule applied to
        ``BFMatcher(NORM_HAMMING, crossCheck=True).match(desc_i, desc_j)``
        exactly. The diagonal is 1 for an image with descriptors (all its
        matches are perfect) and 0 without.

    Notes
    -----
    Non-contiguous inputs are copied once (``np.ascontiguousarray``); nothing
    else is. Meant for small n: use :func:`orb_pairs` or
    :func:`orb_components` beyond a few thousand images.
    """
    descriptors, offsets = _images(descriptors, offsets, "descriptors", "offsets")
    if _device.on_cuda(device):
        return _device.cuda_module().orb_matrix(descriptors, offsets)
    return _core.orb_matrix(descriptors, offsets, v.threads(n_threads))


def orb_cross(desc_a, off_a, desc_b, off_b, *, n_threads=None, device=None) -> np.ndarray:
    """ORB similarity of every image of A with every image of B.

    Parameters
    ----------
    desc_a, desc_b : (total_a, 32), (total_b, 32) uint8 arrays
        Stacked ORB descriptors of the images of A and of B.
    off_a, off_b : (na + 1,), (nb + 1,) int64 arrays
        Row offsets of the images of A and of B (see :func:`orb_matrix`).
    n_threads : int, optional
        None: OpenMP default; -1: all cores.
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    (na, nb) float64 array
        ``[i, j]`` is the similarity of image ``i`` of A (as query) and image
        ``j`` of B (as train); the order does not change the value.
    """
    desc_a, off_a = _images(desc_a, off_a, "desc_a", "off_a")
    desc_b, off_b = _images(desc_b, off_b, "desc_b", "off_b")
    if _device.on_cuda(device):
        return _device.cuda_module().orb_cross(desc_a, off_a, desc_b, off_b)
    return _core.orb_cross(desc_a, off_a, desc_b, off_b, v.threads(n_threads))


def orb_pairs(
    descriptors, offsets, threshold, *, groups=None, n_threads=None, candidates="all", device=None
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of images whose ORB similarity is at least ``threshold``.

    Parameters
    ----------
    descriptors : (total, 32) uint8 array
        Stacked ORB descriptors (see :func:`orb_matrix`).
    offsets : (n + 1,) int64 array
        Row offsets of the images.
    threshold : float in [0, 1]
        Keep pairs with similarity >= threshold.
    groups : (n,) integer array, optional
        Pairs whose two images have the same group are skipped (batch merge).
    n_threads : int, optional
        None: OpenMP default; -1: all cores.
    candidates : {"all", "index"}, default "all"
        "all" compares every pair (exact). "index" compares only images
        sharing a pair of descriptors within Hamming distance
        ``INDEX_RADIUS`` (multi-index hashing over all descriptors), with the
        exact similarity: approximate, a pair whose images share no such
        descriptor is missed (recall 99.9 % on the pipeline benchmark).
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both.

    Returns
    -------
    edges : (m, 2) int64 array
        Pairs ``(i, j)`` with ``i < j`` (``i`` is the query), ordered by
        ``(i, j)`` whatever the thread count.
    scores : (m,) float32 array
        Their similarities.
    """
    descriptors, offsets = _images(descriptors, offsets, "descriptors", "offsets")
    n = offsets.shape[0] - 1
    how = _how(candidates)
    if _device.on_cuda(device):
        return _device.cuda_module().orb_pairs(
            descriptors, offsets, v.threshold(threshold), v.groups(groups, n)
        )
    return _core.orb_pairs(
        descriptors,
        offsets,
        v.threshold(threshold),
        v.groups(groups, n),
        v.threads(n_threads),
        **how,
    )


def orb_components(
    descriptors, offsets, threshold, *, groups=None, n_threads=None, candidates="all", device=None
) -> np.ndarray:
    """Clusters of images chained by ORB similarity >= ``threshold``.

    Parameters
    ----------
    descriptors : (total, 32) uint8 array
        Stacked ORB descriptors (see :func:`orb_matrix`).
    offsets : (n + 1,) int64 array
        Row offsets of the images.
    threshold : float in [0, 1]
        Two images are linked when their similarity is >= threshold.
    groups : (n,) integer array, optional
        Pairs whose two images have the same group are never compared.
    n_threads : int, optional
        None: OpenMP default; -1: all cores.
    candidates : {"all", "index"}, default "all"
        "all" compares every pair (exact). "index" compares only images
        sharing a pair of descriptors within Hamming distance
        ``INDEX_RADIUS`` (multi-index hashing over all descriptors), with the
        exact similarity: approximate, a pair whose images share no such
        descriptor is missed (recall 99.9 % on the pipeline benchmark).
    device : {"auto", "cpu", "cuda"}, optional
        Where to compute: None reads ``ICAS_DEVICE`` (default "auto": the GPU
        when the CUDA kernels are built and a device answers, else the CPU);
        "cuda" without them raises ``CudaUnavailableError``. The result is the
        same on both. On the GPU: the pairs form on the
        device, then union-find on the host.

    Returns
    -------
    labels : (n,) int64 array
        Connected components numbered in order of first appearance: the same
        labels as ``icas.connected_components(*orb_pairs(...)[:1], n)``. Pairs
        whose images are already joined are skipped (exact).
    """
    descriptors, offsets = _images(descriptors, offsets, "descriptors", "offsets")
    n = offsets.shape[0] - 1
    how = _how(candidates)
    if _device.on_cuda(device):
        edges = _device.cuda_module().orb_pairs(
            descriptors, offsets, v.threshold(threshold), v.groups(groups, n)
        )[0]
        return connected_components(edges, n)
    return _core.orb_components(
        descriptors,
        offsets,
        v.threshold(threshold),
        v.groups(groups, n),
        v.threads(n_threads),
        **how,
    )
