"""icas: image clustering and segmentation for labelling datasets.

The similarity kernels and the chaining live in C++ (``icas._core``); this
package wraps them with validation and builds the pipelines on top.
"""

from __future__ import annotations

__version__ = "0.1.0"

try:
    from icas import _core
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "icas._core is missing: the C++ extension was not built. Install icas with "
        "`pip install .` (it compiles the extension) instead of importing the source tree."
    ) from exc

from icas.chaining import connected_components

__all__ = ["__version__", "build_info", "connected_components", "cuda_available"]


def cuda_available() -> bool:
    """True when the CUDA kernels were built and a device answers.

    The kernels (``icas._cuda``) are optional: build them with
    ``pip install . -Ccmake.define.ICAS_ENABLE_CUDA=ON``. Every kernel takes
    ``device="auto" | "cpu" | "cuda"``; "auto" uses them when this is True.
    """
    from icas import _device

    return _device.cuda_available()


def build_info() -> dict:
    """What this build contains and what this CPU uses.

    Keys: ``version``, ``openmp`` (bool), ``openmp_max_threads``, ``simd``
    (instruction set the kernels dispatch to here: ``avx512``, ``avx2`` or
    ``baseline``), ``vpopcntdq``, ``compiler``, ``cuda`` (bool: kernels
    built and a device answers), ``cuda_built`` (bool: the CUDA module is in
    this build), ``cuda_detail`` (runtime, device or why none is used).
    """
    from icas import _device

    info = {"version": __version__}
    info.update(_core.build_info())
    info["cuda"] = cuda_available()
    info["cuda_built"] = _device.cuda_built()
    if info["cuda_built"]:
        from icas import _cuda

        info["cuda_detail"] = f"{_cuda.describe()}; architectures {_cuda.architectures()}"
    else:
        info["cuda_detail"] = _device.cuda_reason()
    return info
