"""The pair stage of a large batch in tiles, saved as it goes: a killed run
resumes inside the batch instead of starting its pairs again.

The upper triangle of the batch's pairs is cut into square tiles of ``t``
items (row blocks ``I`` by column blocks ``J >= I``). A diagonal tile is the
ordinary pairs call on block ``I``; an off-diagonal one is the pairs call on
``I`` followed by ``J`` with ``groups`` = 0 for ``I`` and 1 for ``J``, so only
the pairs between them are compared. Items keep their order inside a tile,
so every pair is computed by the same kernel in the same orientation as in
one call over the batch; the tiles' edges, sorted by ``(i, j)``, are exactly
the one-call result (pairs and scores).

Every ~:data:`SAVE_EVERY` seconds the edges found so far and the number of
tiles done go atomically to ``checkpoints/batch_<i>.partial.npz``, with a
digest of the batch's checkpoint key, files and tile size; a resumed run
with the same digest continues after the last saved tile. Batches whose
pair stage is estimated to take less than :data:`BLOCK_AFTER` seconds on
one thread keep the one-call path (cheap kernels gain nothing from tiles:
comparing all pairs of 100,000 MinHash signatures takes minutes, not hours).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Seconds between two saves of the edges found so far.
SAVE_EVERY = 30.0
#: Estimated one-thread seconds of a batch's pair stage from which it is tiled.
BLOCK_AFTER = 300.0
#: Estimated one-thread seconds of one tile (shorter tiles lose less work on a kill).
TILE_SECONDS = 5.0
#: Rough one-thread seconds per compared pair measured here (2-core x86-64):
#: imagehash 64 bits, minhash 128 slots, ssim/tm at 128x128 px, orb 500 features.
PAIR_SECONDS = {"imagehash": 1e-9, "minhash": 1.5e-8, "ssim": 1.5e-5, "tm": 1e-6, "orb": 1.5e-5}


def pair_seconds(fs) -> float:
    """Estimated one-thread seconds per compared pair of a FeatureSet."""
    base = PAIR_SECONDS[fs.method]
    if fs.method in ("ssim", "tm"):
        return base * max(1, fs.arrays[0][0].size if len(fs) else 1) / (128 * 128)
    if fs.method == "orb":
        per_image = (fs.arrays[1][-1] / max(1, len(fs))) if len(fs) else 0
        return base * (per_image / 500) ** 2
    if fs.method == "imagehash":
        return base * fs.arrays[0].shape[1] / 8
    return base * fs.arrays[0].shape[1] / 128


def tile_size(fs) -> int | None:
    """Items per tile for this batch, or None when one call is better (a
    short pair stage)."""
    n = len(fs)
    cost = pair_seconds(fs)
    if n < 2 or cost * n * (n - 1) / 2 < BLOCK_AFTER:
        return None
    return int(min(n, max(64, math.isqrt(int(TILE_SECONDS / cost)))))


def partial_path(out_dir: Path, batch: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"batch_{batch}.partial.npz"


def digest(key: dict, paths: list[str], tile: int) -> str:
    text = json.dumps({"key": key, "paths": paths, "tile": tile}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tiles(n: int, tile: int) -> list[tuple[int, int]]:
    """(row block, column block) of the upper triangle, row by row."""
    blocks = math.ceil(n / tile)
    return [(r, c) for r in range(blocks) for c in range(r, blocks)]


def _load(path: Path, stamp: str):
    """(tiles done, edges, scores) of a matching partial checkpoint, else None."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            if str(z["digest"]) != stamp:
                return None
            return int(z["done"]), z["edges"].astype(np.int64), z["scores"].astype(np.float32)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # absent or torn: start the batch's pairs afresh


def _save(path: Path, stamp: str, done: int, edges: np.ndarray, scores: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, digest=np.array(stamp), done=np.array(done), edges=edges, scores=scores)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def discard(out_dir: Path, batch: int) -> None:
    """Remove a batch's partial checkpoint (its full checkpoint is written)."""
    partial_path(out_dir, batch).unlink(missing_ok=True)


def blocked_pairs(
    fs,
    tile: int,
    pairs_fn: Callable,
    *,
    path: Path,
    stamp: str,
    resume: bool = False,
    progress: bool = False,
):
    """All pairs of ``fs`` by tiles, saved to ``path`` as they are found.

    Parameters
    ----------
    fs : FeatureSet
        Features of the batch, n items.
    tile : int
        Items per row and column block.
    pairs_fn : callable
        ``pairs_fn(features, groups)`` -> (edges (m, 2) int64, scores (m,)
        float32): the batch's threshold form on a subset.
    path : Path
        The partial checkpoint; ``stamp`` identifies the batch (see :func:`digest`).
    resume : bool
        Continue from a matching partial checkpoint.

    Returns
    -------
    edges : (m, 2) int64 array, scores : (m,) float32 array
        Ordered by ``(i, j)``: those of one call over all of ``fs``.
    """
    n = len(fs)
    todo = tiles(n, tile)
    done, found_e, found_s = 0, [], []
    state = _load(path, stamp) if resume else None
    if state is not None:
        done, e, s = state
        found_e, found_s = [e], [s]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), initial=done, desc="pairs", unit="tile", leave=False)
    last = time.monotonic()
    for k in range(done, len(todo)):
        r, c = todo[k]
        rows = np.arange(r * tile, min(n, (r + 1) * tile), dtype=np.int64)
        if r == c:
            idx, groups = rows, None
        else:
            cols = np.arange(c * tile, min(n, (c + 1) * tile), dtype=np.int64)
            idx = np.concatenate([rows, cols])
            groups = np.repeat(np.array([0, 1], np.int64), [len(rows), len(cols)])
        e, s = pairs_fn(fs.take(idx), groups)
        found_e.append(idx[np.asarray(e, dtype=np.int64)].reshape(-1, 2))
        found_s.append(np.asarray(s, dtype=np.float32))
        if bar is not None:
            bar.update(1)
        if time.monotonic() - last >= SAVE_EVERY and k + 1 < len(todo):
            found_e, found_s = [np.concatenate(found_e)], [np.concatenate(found_s)]
            _save(path, stamp, k + 1, found_e[0], found_s[0])
            last = time.monotonic()
    if bar is not None:
        bar.close()
    edges = np.concatenate(found_e) if found_e else np.empty((0, 2), np.int64)
    scores = np.concatenate(found_s) if found_s else np.empty(0, np.float32)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    return edges[order], scores[order]
