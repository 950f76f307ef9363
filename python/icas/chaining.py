"""Chaining similar pairs into clusters (connected components, union-find in C++)."""

from __future__ import annotations

import numbers

import numpy as np

from icas import _core
from icas._validate import c_array, shape_str


def connected_components(edges, n_items: int) -> np.ndarray:
    """Connected components of an undirected graph.

    Parameters
    ----------
    edges : (m, 2) int64 array
        Pairs of item indices in ``[0, n_items)``.
    n_items : int
        Number of items (nodes), including isolated ones.

    Returns
    -------
    labels : (n_items,) int64 array
        Component of each item, numbered 0, 1, ... in order of first appearance
        (item 0 always has label 0), so the result does not depend on edge order.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, numbers.Integral):
        raise TypeError(f"n_items must be an int, got {type(n_items).__name__}")
    if n_items < 0:
        raise ValueError(f"n_items must be >= 0, got {n_items}")
    edges = np.asarray(edges)
    if edges.size == 0:
        edges = np.empty((0, 2), dtype=np.int64)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise ValueError(f"edges must have shape (m, 2), got {shape_str(edges)}")
    if not np.issubdtype(edges.dtype, np.integer):
        raise TypeError(f"edges must be integers, got {edges.dtype}")
    edges = c_array(edges, np.int64)
    return _core.connected_components(edges, int(n_items))
