"""CPU vs CUDA parity of every kernel form. Needs a CUDA device: skipped
without one (none was available where these tests were written; they have
only been collected, never run, see the README's GPU section).

Exact equality for hamming, minhash, tm and orb (integer arithmetic and the
shared per-pair formulas of pair_math.hpp); SSIM sums its window terms in a
different order on the device, so values agree to about 1e-6 and the pair
sets are compared away from the threshold.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import icas
from icas import connected_components

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not icas.cuda_available(), reason="needs a CUDA device"),
]

_spec = importlib.util.spec_from_file_location(
    "icas_tests_kernel_inputs", Path(__file__).with_name("_kernel_inputs.py")
)
kernel_inputs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kernel_inputs)
METHODS, call, inputs, take = (
    kernel_inputs.METHODS,
    kernel_inputs.call,
    kernel_inputs.inputs,
    kernel_inputs.take,
)

SSIM_TOL = 1e-5


def assert_dense_equal(method, gpu, cpu):
    assert gpu.dtype == cpu.dtype and gpu.shape == cpu.shape
    if method == "ssim":
        np.testing.assert_allclose(gpu, cpu, atol=SSIM_TOL, rtol=0)
    else:
        np.testing.assert_array_equal(gpu, cpu)


def assert_pairs_equal(method, gpu, cpu, threshold):
    (eg, sg), (ec, sc) = gpu, cpu
    assert eg.dtype == np.int64 and sg.dtype == np.float32
    if method != "ssim":
        np.testing.assert_array_equal(eg, ec)
        np.testing.assert_array_equal(sg, sc)
        return

    # Pairs within the tolerance of the threshold may fall either side.
    def far(e, s):
        return {tuple(p) for p, v in zip(e, s, strict=True) if abs(v - threshold) > SSIM_TOL}

    assert far(eg, sg) == far(ec, sc)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [0, 1, 2, 37])
def test_matrix_cross_pairs_components(photos, method, n):
    args, t = inputs(method, photos, n, np.random.default_rng(n))
    for form in ("matrix", "cross"):
        assert_dense_equal(
            method,
            call(method, form, args, t, device="cuda"),
            call(method, form, args, t, device="cpu"),
        )
    gpu = call(method, "pairs", args, t, device="cuda")
    assert_pairs_equal(method, gpu, call(method, "pairs", args, t, device="cpu"), t)
    labels = call(method, "components", args, t, device="cuda")
    np.testing.assert_array_equal(labels, connected_components(gpu[0], n))
    if method != "ssim":
        np.testing.assert_array_equal(labels, call(method, "components", args, t, device="cpu"))


@pytest.mark.parametrize("method", METHODS)
def test_groups_and_cross_of_two_sets(photos, method):
    args, t = inputs(method, photos, 30, np.random.default_rng(5))
    groups = np.arange(30, dtype=np.int64) // 4
    fn = getattr(icas.similarity, f"{method}_pairs")
    gpu = fn(*args, t, groups=groups, device="cuda")
    assert_pairs_equal(method, gpu, fn(*args, t, groups=groups, device="cpu"), t)
    assert not np.any(groups[gpu[0][:, 0]] == groups[gpu[0][:, 1]])
    a, b = take(method, args, np.arange(0, 11)), take(method, args, np.arange(11, 30))
    cross = getattr(icas.similarity, f"{method}_cross")
    assert_dense_equal(method, cross(*a, *b, device="cuda"), cross(*a, *b, device="cpu"))


@pytest.mark.parametrize("method", METHODS)
def test_many_tiles_and_a_full_pair_buffer(photos, method, monkeypatch):
    """Tiles of 16 items (several per row, partial ones at the edge), and a
    threshold that keeps every pair: more pairs than the first buffer holds."""
    args, t = inputs(method, photos, 100, np.random.default_rng(7))
    cpu_matrix = call(method, "matrix", args, t, device="cpu")
    low = -1.0 if method == "ssim" else 0.0
    cpu_pairs = call(method, "pairs", args, low, device="cpu")
    monkeypatch.setenv("ICAS_CUDA_TILE", "16")
    assert_dense_equal(method, call(method, "matrix", args, t, device="cuda"), cpu_matrix)
    # One tile of all 100 items: 4950 pairs, past the first buffer of 4096.
    monkeypatch.setenv("ICAS_CUDA_TILE", "128")
    gpu_pairs = call(method, "pairs", args, low, device="cuda")
    assert len(gpu_pairs[1]) == 100 * 99 // 2
    assert_pairs_equal(method, gpu_pairs, cpu_pairs, low)


def test_hamming_odd_code_lengths(photos):
    rng = np.random.default_rng(9)
    for n_bytes in (1, 3, 8, 13, 64):
        codes = rng.integers(0, 256, (25, n_bytes), dtype=np.uint8)
        m = icas.similarity.hamming_matrix(codes, device="cuda")
        np.testing.assert_array_equal(m, icas.similarity.hamming_matrix(codes, device="cpu"))


def test_tm_colour_and_long_rows():
    """Rows longer than one uint32 run (flush to uint64) and colour images."""
    rng = np.random.default_rng(11)
    x = rng.integers(200, 256, (6, 150, 150, 3), dtype=np.uint8)  # 67,500 values per row
    x[1] = x[0]
    x[2] = 0
    gpu = icas.similarity.tm_matrix(x, device="cuda")
    np.testing.assert_array_equal(gpu, icas.similarity.tm_matrix(x, device="cpu"))
    assert gpu[0, 1] == 1.0 and gpu[2, 2] == 0.0


def test_minhash_uint64():
    rng = np.random.default_rng(12)
    sigs = rng.integers(0, 4, (20, 128), dtype=np.uint64)
    sim = icas.similarity
    np.testing.assert_array_equal(
        sim.minhash_matrix(sigs, device="cuda"), sim.minhash_matrix(sigs, device="cpu")
    )
    assert_pairs_equal(
        "minhash",
        sim.minhash_pairs(sigs, 0.3, device="cuda"),
        sim.minhash_pairs(sigs, 0.3, device="cpu", candidates="all"),
        0.3,
    )
