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

from icas.similarity._hamming import (
    hamming_components,
    hamming_cross,
    hamming_index_plan,
    hamming_matrix,
    hamming_pairs,
)
from icas.similarity._minhash import (
    minhash_components,
    minhash_cross,
    minhash_lsh_params,
    minhash_lsh_recall,
    minhash_matrix,
    minhash_pairs,
)
from icas.similarity._orb import (
    orb_components,
    orb_cross,
    orb_matrix,
    orb_pairs,
)
from icas.similarity._ssim import (
    ssim_components,
    ssim_cross,
    ssim_matrix,
    ssim_pairs,
)
from icas.similarity._tm import (
    tm_components,
    tm_cross,
    tm_matrix,
    tm_pairs,
    tm_similarity,
)

__all__ = [
    "hamming_components",
    "hamming_cross",
    "hamming_index_plan",
    "hamming_matrix",
    "hamming_pairs",
    "minhash_components",
    "minhash_cross",
    "minhash_lsh_params",
    "minhash_lsh_recall",
    "minhash_matrix",
    "minhash_pairs",
    "orb_components",
    "orb_cross",
    "orb_matrix",
    "orb_pairs",
    "ssim_components",
    "ssim_cross",
    "ssim_matrix",
    "ssim_pairs",
    "tm_components",
    "tm_cross",
    "tm_matrix",
    "tm_pairs",
    "tm_similarity",
]
