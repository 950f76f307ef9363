"""The similarity methods of the classic pipeline: which features each one
uses and which kernels compare them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from icas import similarity as sim

METHODS = ("imagehash", "ssim", "tm", "orb", "minhash")
KERNELS = {"imagehash": "hamming", "ssim": "ssim", "tm": "tm", "orb": "orb", "minhash": "minhash"}
# Thresholds that separate near-duplicates from different photos on the demo
# data and on real-photo tests; a starting point, not a law.
DEFAULT_THRESHOLDS = {"imagehash": 0.8, "ssim": 0.8, "tm": 0.92, "orb": 0.93, "minhash": 0.35}
THRESHOLD_RANGES = {"ssim": (-1.0, 1.0)}


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def threshold_range(method: str) -> tuple[float, float]:
    return THRESHOLD_RANGES.get(method, (0.0, 1.0))


@dataclass
class FeatureSet:
    """Features of n images in a kernel's canonical form: one array, or for
    ORB the descriptors (total, 32) and offsets (n + 1,)."""

    method: str
    arrays: tuple

    def __len__(self) -> int:
        if self.method == "orb":
            return len(self.arrays[1]) - 1
        return len(self.arrays[0])

    def take(self, idx) -> FeatureSet:
        idx = np.asarray(idx, dtype=np.int64)
        if self.method != "orb":
            return FeatureSet(self.method, (np.ascontiguousarray(self.arrays[0][idx]),))
        desc, off = self.arrays
        parts = [desc[off[i] : off[i + 1]] for i in idx]
        counts = np.array([len(p) for p in parts], dtype=np.int64)
        new_off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        new_desc = np.concatenate(parts) if parts else desc[:0]
        return FeatureSet("orb", (np.ascontiguousarray(new_desc), new_off))

    @staticmethod
    def concat(sets: list[FeatureSet]) -> FeatureSet:
        method = sets[0].method
        if method != "orb":
            return FeatureSet(method, (np.concatenate([s.arrays[0] for s in sets]),))
        descs, offs, base = [], [np.zeros(1, np.int64)], 0
        for s in sets:
            d, o = s.arrays
            descs.append(d)
            offs.append(o[1:] + base)
            base += len(d)
        return FeatureSet("orb", (np.concatenate(descs), np.concatenate(offs)))


def pairs(fs: FeatureSet, threshold: float, *, groups=None, n_threads=None):
    """(edges (m, 2) int64, scores (m,) float32) of pairs >= threshold."""
    fn = getattr(sim, KERNELS[fs.method] + "_pairs")
    if len(fs) < 2:
        return np.empty((0, 2), np.int64), np.empty(0, np.float32)
    return fn(*fs.arrays, threshold, groups=groups, n_threads=n_threads)


@dataclass
class Extracted:
    """Features of the images that could be read, and the files that could not."""

    features: FeatureSet
    paths: list[str]
    skipped: list[tuple[str, str]]


def extract(paths: list[str], method: str, *, size=None, scale=None, n_threads=None,
            progress=False, **params) -> Extracted:
    """Read images and compute the method's features (in parallel)."""
    from icas import features

    res = features.extract(paths, method, size=size, scale=scale, n_threads=n_threads,
                           progress=progress, **params)
    arrays = (res.data, res.offsets) if method == "orb" else (res.data,)
    return Extracted(FeatureSet(method, arrays), [str(p) for p in res.paths],
                     [(str(p), str(r)) for p, r in res.skipped])
