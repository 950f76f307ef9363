"""Embeddings of images, computed once and cached on disk.

An embedding run is keyed by the model (its class, config and every weight),
the input size and channels, and the files (path, size, modification time).
The cache holds ``<key>.npy`` (float32 ``(n, d)``) and ``<key>.json`` (the
files that were embedded, the ones skipped and why, and the key's parts), so
clustering the same folder again with other parameters neither re-reads nor
re-embeds the images.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from icas.dl._deps import require_torch
from icas.dl.dataset import ImageFolderDataset, batches
from icas.dl.models import check_embedder
from icas.dl.trainer import resolve_device

torch = require_torch()

log = logging.getLogger("icas")

CACHE_VERSION = 1


@dataclass
class Embeddings:
    """Embeddings of the files that could be read.

    ``vectors`` is float32 ``(len(paths), d)``, row ``i`` for ``paths[i]``;
    ``skipped`` lists (file, reason) for the others; ``from_cache`` says
    whether they were read from the cache.
    """

    vectors: np.ndarray
    paths: list[str]
    skipped: list[tuple[str, str]]
    from_cache: bool = False


def embed(
    model, dataset, *, batch_size: int = 128, device: str = "auto", progress: bool = False
) -> np.ndarray:
    """``model.embed`` of every item of ``dataset``, in order.

    Returns
    -------
    numpy.ndarray
        float32 ``(len(dataset), d)`` (embeddings of other shapes are flattened).
    """
    from tqdm import tqdm

    check_embedder(model)
    dev = resolve_device(device)
    model = model.to(dev).eval()
    out = []
    bar = tqdm(total=len(dataset), desc="embedding", unit="img", leave=False, disable=not progress)
    with torch.inference_mode():
        for _, x in batches(dataset, batch_size):
            out.append(model.embed(x.to(dev)).flatten(1).float().cpu().numpy())
            bar.update(len(x))
    bar.close()
    if not out:
        return np.zeros((0, 0), np.float32)
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def model_fingerprint(model) -> str:
    """Hex digest of a model's class, config and weights (buffers included)."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    config = model.config() if hasattr(model, "config") else {}
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        t = t.detach().cpu().contiguous()
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _stat(path: str) -> list:
    try:
        st = os.stat(path)
        return [path, st.st_size, st.st_mtime_ns]
    except OSError:
        return [path, -1, -1]


class EmbeddingCache:
    """A folder of cached embedding runs (see the module docstring)."""

    def __init__(self, folder):
        self.folder = Path(os.fspath(folder))

    @staticmethod
    def key(model_fp: str, files: list[list], params: dict) -> str:
        blob = json.dumps([CACHE_VERSION, model_fp, params, files], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def load(self, model_fp: str, files: list[str], params: dict) -> Embeddings | None:
        stats = [_stat(p) for p in files]
        key = self.key(model_fp, stats, params)
        meta_path, npy_path = self.folder / f"{key}.json", self.folder / f"{key}.npy"
        if not meta_path.is_file() or not npy_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            vectors = np.load(npy_path, allow_pickle=False)
        except (OSError, ValueError):
            return None  # torn or foreign: recompute
        if (
            meta.get("model") != model_fp
            or meta.get("files") != stats
            or meta.get("params") != params
            or len(vectors) != len(meta.get("paths", ()))
        ):
            return None
        return Embeddings(
            vectors.astype(np.float32, copy=False),
            list(meta["paths"]),
            [tuple(s) for s in meta["skipped"]],
            from_cache=True,
        )

    def save(self, model_fp: str, files: list[str], params: dict, emb: Embeddings) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        stats = [_stat(p) for p in files]
        key = self.key(model_fp, stats, params)
        npy_path = self.folder / f"{key}.npy"
        tmp = self.folder / f".{key}.npy.tmp"
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(emb.vectors, dtype=np.float32))
        os.replace(tmp, npy_path)
        from icas.cluster.output import write_json

        # The json is written last: its presence marks a complete entry.
        write_json(
            self.folder / f"{key}.json",
            {
                "version": CACHE_VERSION,
                "model": model_fp,
                "params": params,
                "files": stats,
                "paths": emb.paths,
                "skipped": [list(s) for s in emb.skipped],
            },
        )
        return npy_path


def embed_files(
    model,
    files: list[str],
    *,
    image_size: int,
    channels: int = 3,
    cache_dir=None,
    dataset: ImageFolderDataset | None = None,
    batch_size: int = 128,
    device: str = "auto",
    n_threads: int | None = None,
    progress: bool = False,
) -> Embeddings:
    """Embeddings of ``files`` through ``model``, from the cache when it matches.

    Parameters
    ----------
    files : list of str
        The images, in the order wanted.
    image_size, channels
        Input of the model (see :class:`icas.dl.dataset.ImageFolderDataset`).
    cache_dir : path, optional
        Cache folder; None: no cache.
    dataset : ImageFolderDataset, optional
        Already decoded images of exactly ``files`` (e.g. the training set),
        used instead of reading the files again.
    """
    check_embedder(model)
    params = {"image_size": image_size, "channels": channels}
    cache = EmbeddingCache(cache_dir) if cache_dir is not None else None
    fp = model_fingerprint(model) if cache is not None else ""
    if cache is not None:
        hit = cache.load(fp, files, params)
        if hit is not None:
            log.info("embeddings of %d images from the cache %s", len(hit.paths), cache.folder)
            return hit
    if dataset is None:
        dataset = ImageFolderDataset(
            files, image_size, channels=channels, n_threads=n_threads, progress=progress
        )
    vectors = embed(model, dataset, batch_size=batch_size, device=device, progress=progress)
    emb = Embeddings(vectors, list(dataset.paths), list(dataset.skipped))
    if cache is not None:
        cache.save(fp, files, params, emb)
    return emb
