import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_cc

import icas


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel in order of first appearance."""
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(np.argsort(first))
    return order[np.unique(labels, return_inverse=True)[1]]


@pytest.mark.parametrize("n,m,seed", [(1, 0, 0), (10, 5, 1), (200, 150, 2), (5000, 4000, 3)])
def test_matches_scipy(n, m, seed):
    rng = np.random.default_rng(seed)
    edges = rng.integers(0, n, size=(m, 2)).astype(np.int64)
    graph = coo_matrix((np.ones(m), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, ref = scipy_cc(graph, directed=False)
    got = icas.connected_components(edges, n)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, _canonical(ref))


def test_labels_do_not_depend_on_edge_order():
    rng = np.random.default_rng(4)
    edges = rng.integers(0, 300, size=(250, 2))
    a = icas.connected_components(edges, 300)
    b = icas.connected_components(edges[rng.permutation(250)][:, ::-1], 300)
    np.testing.assert_array_equal(a, b)
    assert a[0] == 0


def test_chain_joins_ends():
    # X~A, A~B, B~Y puts X and Y together; Z alone.
    labels = icas.connected_components(np.array([[0, 1], [1, 2], [2, 3]]), 5)
    assert labels.tolist() == [0, 0, 0, 0, 1]


def test_empty_inputs():
    assert icas.connected_components(np.empty((0, 2), np.int64), 0).shape == (0,)
    assert icas.connected_components(np.empty((0, 2), np.int64), 3).tolist() == [0, 1, 2]


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"edges must have shape \(m, 2\), got \(3, 3\)"):
        icas.connected_components(np.zeros((3, 3), np.int64), 4)
    with pytest.raises(ValueError, match=r"outside \[0, n_items=4\)"):
        icas.connected_components(np.array([[0, 4]]), 4)
    with pytest.raises(ValueError, match="outside"):
        icas.connected_components(np.array([[-1, 0]]), 4)
    with pytest.raises(TypeError, match="edges must be integers"):
        icas.connected_components(np.zeros((2, 2), np.float32), 4)
    with pytest.raises(ValueError, match="n_items must be >= 0"):
        icas.connected_components(np.empty((0, 2), np.int64), -1)


def test_build_info_keys():
    info = icas.build_info()
    for key in ("version", "openmp", "cuda", "simd"):
        assert key in info
    assert info["simd"] in ("avx512", "avx2", "baseline")
    assert info["version"] == icas.__version__
    assert icas.cuda_available() is False or info["cuda"] is True
