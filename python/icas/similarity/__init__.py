"""All-pairs similarity kernels (C++/OpenMP), one family per method.

Each method has the same four forms:

``<method>_matrix(features)``
    all pairs, dense ``(n, n)``: for small n.
``<method>_cross(a, b)``
    ``(na, nb)``: comparing batches or representatives.
``<method>_pairs(features, threshold)``
    only pairs ``i < j`` with similarity >= threshold, as ``edges (m, 2) int64``
    and ``scores (m,) float32``; memory O(n + m).
``<method>_components(features, threshold)``
    the chained clusters directly (connected components of those pairs);
    pairs whose two items are already joined are skipped, which is exact.

The threshold forms take ``groups=`` (pairs inside one group are skipped, used
when merging batches) and every form takes ``n_threads`` (None: OpenMP default,
which honours ``OMP_NUM_THREADS``; -1: all cores).
"""

from __future__ import annotations

from icas.similarity._ssim import ssim_components, ssim_cross, ssim_matrix, ssim_pairs

__all__: list[str] = []
__all__ += ["ssim_components", "ssim_cross", "ssim_matrix", "ssim_pairs"]
