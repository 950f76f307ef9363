"""Deep-learning clustering (the extra ``icas[dl]``: torch, torchvision, scikit-learn).

An autoencoder (or any ``torch.nn.Module`` with ``embed``) turns each image
into an embedding; embeddings are clustered per batch with a scikit-learn
algorithm over a grid of its parameters, and batches are merged through
representative embeddings. Output, manifest and report are the classic path's.

Importing ``icas.dl`` needs nothing optional; the names below import torch or
scikit-learn on first use and raise an ImportError naming ``icas[dl]``
without them.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DLClusteror": "icas.dl.pipeline",
    "DLClusterResult": "icas.dl.pipeline",
    "EmbeddingClusterer": "icas.dl.clusterer",
    "ImageFolderDataset": "icas.dl.dataset",
    "SmallAutoencoder": "icas.dl.models",
    "LargeAutoencoder": "icas.dl.models",
    "PerceptualLoss": "icas.dl.losses",
    "Trainer": "icas.dl.trainer",
    "load_checkpoint": "icas.dl.trainer",
    "save_checkpoint": "icas.dl.trainer",
    "embed_files": "icas.dl.embed",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'icas.dl' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
