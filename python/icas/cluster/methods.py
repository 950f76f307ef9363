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
# Methods whose kernels can find their pairs with an index (``candidates=``,
# see :mod:`icas.cluster.search`); the others always compare every pair.
CANDIDATE_METHODS = {"imagehash", "minhash", "orb"}
# Of those, the ones whose index is approximate (LSH bands; ORB's shared
# descriptors): "auto" never picks it, and its results are marked inexact.
APPROXIMATE_INDEX = {"minhash", "orb"}
# Loose thresholds of a method used as the candidate stage of a verified pair
# ("imagehash+orb"): about the 95th percentile of the similarities of
# unrelated real photos (scikit-image's photos at 256 px), so 19 of 20
# unrelated pairs never reach the expensive method, while 97 % of 8 % crops and
# 6 px shifts of those photos stay candidates for imagehash. For imagehash it
# depends on the hash length: two unrelated hashes of b bits agree on
# 0.5 +- 0.5 / sqrt(b) of them, and the default is 1.6 of those deviations
# above 0.5 (0.6 for the default 64 bits, 0.55 for 256).
CANDIDATE_THRESHOLDS = {"imagehash": 0.6, "minhash": 0.15, "orb": 0.6, "ssim": 0.4, "tm": 0.9}


def default_candidate_threshold(method: str, params: dict | None = None) -> float:
    """The loose threshold of ``method`` as the first of a verified pair."""
    if method == "imagehash":
        bits = int((params or {}).get("hash_size") or 8) ** 2
        return round(0.5 + 1.6 * 0.5 / bits**0.5, 4)
    return CANDIDATE_THRESHOLDS[method]


def split_method(method: str) -> tuple[str, str | None]:
    """``"imagehash+orb"`` -> ("imagehash", "orb"); ``"orb"`` -> ("orb", None)."""
    if not isinstance(method, str):
        raise ValueError(f"method must be a string, got {type(method).__name__}")
    first, plus, second = method.partition("+")
    return (first, second) if plus else (first, None)


def check_method(method: str) -> str:
    """A method name, or two joined by '+' (candidates by the first, confirmed
    by the second)."""
    first, second = split_method(method)
    for m in (first, second) if second is not None else (first,):
        if m not in METHODS:
            raise ValueError(
                f"method must be one of {', '.join(METHODS)} or two of them "
                f"joined by '+' (e.g. imagehash+orb), got {method!r}"
            )
    if second == first:
        raise ValueError(f"a verified method needs two different methods, got {method!r}")
    return method


def deciding_method(method: str) -> str:
    """The method whose similarity the threshold applies to (the second of a pair)."""
    first, second = split_method(method)
    return second or first


def threshold_range(method: str) -> tuple[float, float]:
    return THRESHOLD_RANGES.get(deciding_method(method), (0.0, 1.0))


def default_threshold(method: str) -> float:
    return DEFAULT_THRESHOLDS[deciding_method(method)]


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


def pairs(fs, threshold: float, *, groups=None, n_threads=None, candidates="auto", device=None):
    """(edges (m, 2) int64, scores (m,) float32) of pairs >= threshold.

    ``candidates`` ("auto", "all", "index") goes to the kernels of
    :data:`CANDIDATE_METHODS` (for a verified pair: to its first method);
    the other methods compare every pair whatever it says.

    For the features of a verified pair (:class:`~icas.cluster.verified.PairedFeatures`)
    these are the candidates the second method confirmed, with its scores
    (computed on the CPU). ``device``: where the kernel runs ("auto", "cpu",
    "cuda"; None reads ICAS_DEVICE)."""
    if not isinstance(fs, FeatureSet):
        from icas.cluster.verified import verified_pairs

        ev = verified_pairs(
            fs, threshold, groups=groups, n_threads=n_threads, candidates=candidates
        )
        return ev.confirmed(threshold)
    fn = getattr(sim, KERNELS[fs.method] + "_pairs")
    if len(fs) < 2:
        return np.empty((0, 2), np.int64), np.empty(0, np.float32)
    extra = {}
    if fs.method in CANDIDATE_METHODS:
        # (orb's kernel has no cost model: "auto" is its exact search)
        extra["candidates"] = "all" if fs.method == "orb" and candidates == "auto" else candidates
    return fn(*fs.arrays, threshold, groups=groups, n_threads=n_threads, device=device, **extra)


def similarity_matrix(fs, *, n_threads=None, device=None) -> np.ndarray:
    """(n, n) float64 similarities of every pair (small n only: a sample, one
    cluster). imagehash distances become ``1 - d / bits``; the diagonal is the
    top of the method's range. For a verified pair, see
    :func:`icas.cluster.verified.verified_matrix` (CPU). ``device`` as in
    :func:`pairs`."""
    if not isinstance(fs, FeatureSet):
        from icas.cluster.verified import verified_matrix

        return verified_matrix(fs, n_threads=n_threads)
    n = len(fs)
    if n == 0:
        return np.empty((0, 0), np.float64)
    kernel = getattr(sim, KERNELS[fs.method] + "_matrix")
    m = np.array(kernel(*fs.arrays, n_threads=n_threads, device=device), dtype=np.float64)
    if fs.method == "imagehash":  # the hamming kernel returns distances
        m = 1.0 - m / (fs.arrays[0].shape[1] * 8)
    m = np.maximum(m, m.T)  # a link in either direction counts
    np.fill_diagonal(m, threshold_range(fs.method)[1])
    return m


def pair_similarities(fs: FeatureSet, edges: np.ndarray, *, n_threads=None) -> np.ndarray:
    """(m,) float64 similarities of the given pairs only, one cross kernel call
    per distinct first item, spread over worker threads (the kernels release
    the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    from icas.features import _workers

    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    out = np.empty(len(edges), np.float64)
    if not len(edges):
        return out
    order = np.argsort(edges[:, 0], kind="stable")
    firsts, starts = np.unique(edges[order, 0], return_index=True)
    bounds = np.append(starts, len(order))
    cross = getattr(sim, KERNELS[fs.method] + "_cross")
    bits = fs.arrays[0].shape[1] * 8 if fs.method == "imagehash" else None

    def row(k: int) -> None:
        rows = order[bounds[k] : bounds[k + 1]]
        a = fs.take([firsts[k]])
        b = fs.take(edges[rows, 1])
        s = np.asarray(cross(*a.arrays, *b.arrays, n_threads=1), dtype=np.float64)[0]
        out[rows] = 1.0 - s / bits if bits else s

    workers = _workers(n_threads)
    if workers <= 1 or len(firsts) < 4:
        for k in range(len(firsts)):
            row(k)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="icas-verify") as ex:
            list(ex.map(row, range(len(firsts))))
    return out


@dataclass
class Extracted:
    """Features of the images that could be read, and the files that could not."""

    features: FeatureSet
    paths: list[str]
    skipped: list[tuple[str, str]]


def extract(
    paths: list[str],
    method: str,
    *,
    size=None,
    scale=None,
    n_threads=None,
    progress=False,
    candidate_threshold=None,
    **params,
) -> Extracted:
    """Read images and compute the method's features (in parallel). A verified
    pair ("imagehash+orb") reads each image for both methods; the method
    parameters go to the method that takes them."""
    first, second = split_method(method)
    if second is not None:
        from icas.cluster.verified import extract_pair

        return extract_pair(
            paths,
            first,
            second,
            size=size,
            scale=scale,
            n_threads=n_threads,
            progress=progress,
            candidate_threshold=candidate_threshold,
            **params,
        )
    from icas import features

    res = features.extract(
        paths, method, size=size, scale=scale, n_threads=n_threads, progress=progress, **params
    )
    arrays = (res.data, res.offsets) if method == "orb" else (res.data,)
    return Extracted(
        FeatureSet(method, arrays),
        [str(p) for p in res.paths],
        [(str(p), str(r)) for p, r in res.skipped],
    )
