"""The optional dependencies of the deep-learning path, imported on first use.

torch, torchvision and scikit-learn come with the extra ``icas[dl]``; without
them every entry point raises one ImportError that says what to install.
"""

from __future__ import annotations

EXTRA_HINT = 'pip install "icas[dl]"  (torch==2.14.1, torchvision==0.29.1, scikit-learn)'


def _missing(what: str, exc: ImportError) -> ImportError:
    err = ImportError(
        f"the deep-learning clustering needs {what}, which is not installed: {EXTRA_HINT}"
    )
    err.__cause__ = exc
    return err


def require_torch():
    """Return the ``torch`` module, or raise ImportError naming ``icas[dl]``."""
    try:
        import torch
    except ImportError as exc:
        raise _missing("torch", exc) from exc
    return torch


def require_sklearn():
    """Return the ``sklearn`` module, or raise ImportError naming ``icas[dl]``."""
    try:
        import sklearn
    except ImportError as exc:
        raise _missing("scikit-learn", exc) from exc
    return sklearn
