"""Where the similarity kernels run: ``device="auto" | "cpu" | "cuda"``.

``None`` reads the environment variable ``ICAS_DEVICE`` (default "auto").
"auto" uses the CUDA kernels (``icas._cuda``) when that module imports and a
device answers, else the CPU, and logs the choice at debug level. An explicit
"cuda" without that support raises :class:`CudaUnavailableError`, whose
message says how to rebuild. The probe runs once per process.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os

__all__ = ["DEVICES", "CudaUnavailableError", "cuda_available", "cuda_module", "resolve"]

log = logging.getLogger("icas.device")

DEVICES = ("auto", "cpu", "cuda")
ENV = "ICAS_DEVICE"
REBUILD = (
    "rebuild icas with the CUDA kernels on a machine with the CUDA toolkit (nvcc): "
    "pip install . -Ccmake.define.ICAS_ENABLE_CUDA=ON (or ICAS_ENABLE_CUDA=1 pip install .)"
)


class CudaUnavailableError(RuntimeError):
    """device="cuda" was asked for, but the CUDA kernels cannot run here."""


@functools.lru_cache(maxsize=1)
def _probe():
    """(module or None, reason): the CUDA module if it imports and a device answers."""
    try:
        _cuda = importlib.import_module("icas._cuda")
    except ModuleNotFoundError as exc:
        if exc.name != "icas._cuda":
            raise
        return None, "this build has no CUDA kernels (icas._cuda was not compiled)"
    except ImportError as exc:  # built, but e.g. a CUDA library is missing
        return None, f"icas._cuda does not import ({exc})"
    try:
        count = _cuda.device_count()
    except RuntimeError as exc:  # pragma: no cover - device_count never throws
        return None, f"the CUDA runtime failed: {exc}"
    if count < 1:
        return None, f"no CUDA device answers ({_cuda.describe()})"
    return _cuda, ""


def cuda_available() -> bool:
    """True when the CUDA kernels were built and a device answers."""
    return _probe()[0] is not None


def cuda_reason() -> str:
    """Why the CUDA kernels cannot run ("" when they can)."""
    return _probe()[1]


def check(device) -> str:
    """A valid device name, ``None`` read from ``ICAS_DEVICE`` (default "auto")."""
    if device is None:
        device = os.environ.get(ENV, "").strip().lower() or "auto"
        where = f"environment variable {ENV}"
    else:
        where = "device"
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"{where} must be one of {', '.join(DEVICES)}, got {device!r}")
    return device


def resolve(device=None) -> str:
    """ "cpu" or "cuda": where a kernel called with ``device`` runs.

    Raises
    ------
    ValueError
        For a name other than auto, cpu, cuda.
    CudaUnavailableError
        For "cuda" when the CUDA module is missing or no device answers.
    """
    device = check(device)
    if device == "cpu":
        return "cpu"
    module, reason = _probe()
    if module is not None:
        return "cuda"
    if device == "cuda":
        raise CudaUnavailableError(f"device='cuda' is not available: {reason}; {REBUILD}")
    log.debug("device auto: using the CPU, %s", reason)
    return "cpu"


def cuda_module():
    """The ``icas._cuda`` module (call after :func:`resolve` returned "cuda")."""
    module, reason = _probe()
    if module is None:  # pragma: no cover - resolve() raised before
        raise CudaUnavailableError(f"{reason}; {REBUILD}")
    return module


def cuda_built() -> bool:
    """True when this build contains the CUDA kernels (whether or not a device answers)."""
    return importlib.util.find_spec("icas._cuda") is not None


def on_cuda(device) -> bool:
    """True when a kernel called with ``device`` runs on the GPU (see :func:`resolve`)."""
    return resolve(device) == "cuda"
