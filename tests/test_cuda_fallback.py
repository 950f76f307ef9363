"""Device selection and the CPU fallback: runs on every machine.

Without a GPU (or without the CUDA module), ``device="auto"`` must give the
CPU's results and an explicit ``"cuda"`` must fail with the rebuild hint. With
the CUDA module built but no device (CI compiles it), the same holds and the
module's own calls raise a catchable RuntimeError.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest

import icas
from icas import _device
from icas.similarity import hamming_components, hamming_pairs, tm_matrix

# Shared with test_cuda_parity.py; loaded by path (the tests are not a package).
_spec = importlib.util.spec_from_file_location(
    "icas_tests_kernel_inputs", Path(__file__).with_name("_kernel_inputs.py")
)
kernel_inputs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kernel_inputs)
METHODS, call, inputs = kernel_inputs.METHODS, kernel_inputs.call, kernel_inputs.inputs

FORMS = ("matrix", "cross", "pairs", "components")


@pytest.fixture
def no_cuda(monkeypatch):
    """Pretends the CUDA kernels cannot run, whatever this machine has."""
    monkeypatch.setattr(_device, "_probe", lambda: (None, "no CUDA device answers (test)"))


def same(a, b):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y)
        return
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def test_explicit_cpu_never_probes(monkeypatch):
    def fail():
        raise AssertionError("device='cpu' must not probe CUDA")

    monkeypatch.setattr(_device, "_probe", fail)
    assert _device.resolve("cpu") == "cpu"


@pytest.mark.parametrize("bad", ["gpu", "CUDA:0", "", 1, True])
def test_unknown_device_names_the_argument(bad):
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda"):
        _device.resolve(bad)


def test_unknown_device_in_kernel_call():
    codes = np.zeros((3, 8), np.uint8)
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, got 'gpu'"):
        hamming_pairs(codes, 0.5, device="gpu")


def test_environment_variable(monkeypatch, no_cuda):
    monkeypatch.setenv("ICAS_DEVICE", "cuda")
    with pytest.raises(_device.CudaUnavailableError):
        _device.resolve(None)
    assert _device.resolve("cpu") == "cpu"  # an explicit argument wins
    monkeypatch.setenv("ICAS_DEVICE", " CPU ")
    assert _device.resolve(None) == "cpu"
    monkeypatch.setenv("ICAS_DEVICE", "tpu")
    with pytest.raises(ValueError, match="environment variable ICAS_DEVICE must be one of"):
        _device.resolve(None)
    monkeypatch.delenv("ICAS_DEVICE")
    assert _device.resolve(None) == "cpu"


def test_auto_falls_back_and_logs(no_cuda, caplog):
    with caplog.at_level(logging.DEBUG, logger="icas.device"):
        assert _device.resolve("auto") == "cpu"
    assert "using the CPU" in caplog.text and "no CUDA device answers" in caplog.text


def test_explicit_cuda_says_how_to_rebuild(no_cuda):
    with pytest.raises(_device.CudaUnavailableError, match="ICAS_ENABLE_CUDA=ON") as err:
        tm_matrix(np.zeros((2, 8, 8), np.uint8), device="cuda")
    assert "no CUDA device answers" in str(err.value)
    assert isinstance(err.value, RuntimeError)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("form", FORMS)
def test_every_form_falls_back_to_the_cpu(no_cuda, photos, method, form):
    args, t = inputs(method, photos, 9, np.random.default_rng(1))
    expected = call(method, form, args, t)
    same(call(method, form, args, t, device="auto"), expected)
    same(call(method, form, args, t, device="cpu"), expected)
    with pytest.raises(_device.CudaUnavailableError, match="rebuild icas"):
        call(method, form, args, t, device="cuda")


def test_this_machine_auto_matches_cpu(photos):
    """Whatever this machine has, auto and cpu agree (bit for bit on the CPU,
    and the CUDA kernels are exact for hamming)."""
    args, t = inputs("hamming", photos, 40, np.random.default_rng(2))
    same(hamming_pairs(*args, t, device="auto"), hamming_pairs(*args, t, device="cpu"))


class _FakeCuda:
    """Stands in for icas._cuda: records calls, answers with the CPU kernels."""

    def __init__(self):
        self.calls = []

    def hamming_pairs(self, codes, threshold, groups):
        self.calls.append(("hamming_pairs", codes.shape, threshold, groups))
        return hamming_pairs(codes, threshold, groups=groups, device="cpu", candidates="all")


def test_auto_dispatches_to_cuda_when_a_device_answers(monkeypatch, photos):
    fake = _FakeCuda()
    monkeypatch.setattr(_device, "_probe", lambda: (fake, ""))
    assert _device.resolve("auto") == "cuda" and icas.cuda_available()
    (codes,), t = inputs("hamming", photos, 30, np.random.default_rng(3))
    groups = np.arange(30) % 4
    labels = hamming_components(codes, t, groups=groups)
    # The components come from the device's pairs, chained on the host.
    assert [c[0] for c in fake.calls] == ["hamming_pairs"]
    assert fake.calls[0][1] == codes.shape and fake.calls[0][2] == t
    np.testing.assert_array_equal(fake.calls[0][3], groups)
    expected = hamming_components(codes, t, groups=groups, device="cpu")
    np.testing.assert_array_equal(labels, expected)


def test_build_info_reports_cuda():
    info = icas.build_info()
    assert info["cuda"] is icas.cuda_available()
    assert info["cuda_built"] is (importlib.util.find_spec("icas._cuda") is not None)
    assert isinstance(info["cuda_detail"], str) and info["cuda_detail"]
    if not info["cuda_built"]:
        assert info["cuda"] is False and "not compiled" in info["cuda_detail"]


needs_module_without_device = pytest.mark.skipif(
    importlib.util.find_spec("icas._cuda") is None or icas.cuda_available(),
    reason="needs the CUDA module built, on a machine without a CUDA device",
)


@needs_module_without_device
def test_built_module_without_device_fails_cleanly():
    from icas import _cuda

    assert _cuda.device_count() == 0
    assert "no device" in _cuda.describe()
    assert "90" in _cuda.architectures().split(",")  # Hopper is always compiled in
    # The kernels raise a catchable error instead of crashing the interpreter.
    with pytest.raises(RuntimeError, match="CUDA error"):
        _cuda.hamming_matrix(np.zeros((3, 8), np.uint8))
    # Empty inputs never touch the device.
    assert _cuda.tm_matrix(np.zeros((0, 4, 4, 1), np.uint8)).shape == (0, 0)
    with pytest.raises(_device.CudaUnavailableError, match="no CUDA device answers"):
        _device.resolve("cuda")


def test_cli_device_flag(no_cuda, tmp_path, capsys):
    from icas.cli import cluster_main

    demo = tmp_path / "demo"
    assert cluster_main(["--demo", str(demo), "-q", "--device", "auto"]) == 0
    capsys.readouterr()
    # An explicit cuda fails before any image is read, on one line.
    assert cluster_main([str(demo), "-q", "--device", "cuda", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "ICAS_ENABLE_CUDA=ON" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit) as exit_:
        cluster_main([str(demo), "--device", "gpu"])
    assert exit_.value.code == 2


def test_clusteror_reads_the_environment(no_cuda, monkeypatch, tmp_path):
    from icas.cluster import Clusteror

    monkeypatch.setenv("ICAS_DEVICE", "cuda")
    with pytest.raises(_device.CudaUnavailableError, match="rebuild icas"):
        Clusteror(tmp_path, device=None)
    monkeypatch.setenv("ICAS_DEVICE", "auto")
    assert Clusteror(tmp_path).device == "auto"
    with pytest.raises(ValueError, match="device must be one of"):
        Clusteror(tmp_path, device="gpu")
