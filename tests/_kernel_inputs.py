"""Inputs for every kernel family, shared by the CPU/CUDA device tests.

``CASES[method]`` builds ``(args, threshold)`` from a seeded generator and
real photos: ``args`` are the positional feature arrays of the method's
kernels, with near-duplicates so the threshold forms find pairs.
"""

from __future__ import annotations

import cv2
import numpy as np

from icas import similarity as sim

METHODS = ("hamming", "minhash", "tm", "ssim", "orb")


def _gray(photos, n, size=32):
    out = []
    for k in range(n):
        img = photos[k % len(photos)]
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
        g = cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA)
        out.append(np.roll(g, k // len(photos), axis=1))  # shifted copies: near-duplicates
    return np.stack(out) if out else np.empty((0, size, size), np.uint8)


def inputs(method: str, photos, n: int, rng: np.random.Generator):
    """(args, threshold) for n items of ``method``."""
    if method == "hamming":
        base = rng.integers(0, 256, (max(1, n // 3), 8), dtype=np.uint8)
        codes = base[np.arange(n) % len(base)].copy()
        flips = rng.integers(0, 64, n)
        codes[np.arange(n), flips // 8] ^= (1 << (flips % 8)).astype(np.uint8)
        return (codes,), 0.9
    if method == "minhash":
        base = rng.integers(0, 2**32, (max(1, n // 3), 64), dtype=np.uint32)
        sigs = base[np.arange(n) % len(base)].copy()
        mask = rng.random(sigs.shape) < 0.3
        sigs[mask] = rng.integers(0, 2**32, int(mask.sum()), dtype=np.uint32)
        return (sigs,), 0.5
    if method == "tm":
        return (_gray(photos, n),), 0.9
    if method == "ssim":
        return (_gray(photos, n),), 0.5
    if method == "orb":
        orb = cv2.ORB_create(nfeatures=60)
        descs = []
        for g in _gray(photos, n, size=128):
            _, d = orb.detectAndCompute(g, None)
            descs.append(d if d is not None else np.empty((0, 32), np.uint8))
        offsets = np.concatenate([[0], np.cumsum([len(d) for d in descs])]).astype(np.int64)
        desc = np.concatenate(descs) if descs else np.empty((0, 32), np.uint8)
        return (np.ascontiguousarray(desc), offsets), 0.5
    raise ValueError(method)


def call(method: str, form: str, args, threshold, **kw):
    """Calls ``<method>_<form>``; the cross form compares the set with itself."""
    fn = getattr(sim, f"{method}_{form}")
    if form == "matrix":
        return fn(*args, **kw)
    if form == "cross":
        return fn(*args, *args, **kw)
    return fn(*args, threshold, **kw)


def take(method: str, args, idx):
    """The features of items ``idx`` (for ORB: descriptors and new offsets)."""
    if method != "orb":
        return (np.ascontiguousarray(args[0][idx]),)
    desc, off = args
    parts = [desc[off[i] : off[i + 1]] for i in idx]
    new_off = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return (np.ascontiguousarray(np.concatenate(parts)), new_off)
