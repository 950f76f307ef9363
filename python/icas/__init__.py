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
    """True when the CUDA kernels were built and a device answers."""
    return False


def build_info() -> dict:
    """What this build contains and what this CPU uses.

    Keys: ``version``, ``openmp`` (bool), ``openmp_max_threads``, ``simd``
    (instruction set the kernels dispatch to here: ``avx512``, ``avx2`` or
    ``baseline``), ``vpopcntdq``, ``compiler``, ``cuda`` (bool).
    """
    info = {"version": __version__}
    info.update(_core.build_info())
    info["cuda"] = cuda_available()
    return info
