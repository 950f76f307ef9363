"""Connected components (union-find in C++) next to scipy's csgraph."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_cc

import icas

N = 200_000
M = 400_000


@pytest.fixture(scope="module")
def graph():
    rng = np.random.default_rng(0)
    edges = rng.integers(0, N, size=(M, 2)).astype(np.int64)
    return edges


def _scipy(edges):
    g = coo_matrix((np.ones(len(edges), np.int8), (edges[:, 0], edges[:, 1])), shape=(N, N))
    return scipy_cc(g, directed=False)[1]


def test_components_scipy(benchmark, graph):
    benchmark.group = "connected components 200k nodes 400k edges"
    benchmark.extra_info.update(role="reference", pairs=M)
    labels = benchmark(_scipy, graph)
    assert labels.max() + 1 == len(np.unique(icas.connected_components(graph, N)))


def test_components_icas(benchmark, graph):
    benchmark.group = "connected components 200k nodes 400k edges"
    benchmark.extra_info.update(role="icas", pairs=M)
    labels = benchmark(icas.connected_components, graph, N)
    ref = _scipy(graph)
    # Same partition: a bijection between the two labelings.
    pairs = np.unique(np.stack([labels, ref], axis=1), axis=0)
    assert len(pairs) == labels.max() + 1 == ref.max() + 1
