"""Verified methods: candidates from a cheap method, confirmed by an expensive one.

``method="imagehash+orb"`` compares every pair of a batch with the first
method (fast all-pairs kernels) at a loose *candidate threshold*, then
computes the second method only on those candidate pairs; a pair links two
images when the second method's similarity is >= the threshold. ORB survives
crops and shifts that change a perceptual hash a lot but rarely push it below
the loose threshold, so ``imagehash+orb`` finds them at a fraction of ORB's
all-pairs cost. Any two different methods may be joined; the threshold (and
``auto``/``pick``) applies to the second one, and the similarity of a pair
that is not a candidate counts as the bottom of the second method's range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from icas import _validate
from icas.cluster.methods import (
    Extracted,
    FeatureSet,
    default_candidate_threshold,
    pair_similarities,
    pairs,
    similarity_matrix,
    threshold_range,
)


@dataclass
class PairedFeatures:
    """Features of the same n images for both methods of a verified pair."""

    first: FeatureSet
    second: FeatureSet
    candidate_threshold: float

    @property
    def method(self) -> str:
        return f"{self.first.method}+{self.second.method}"

    def __len__(self) -> int:
        return len(self.first)

    def take(self, idx) -> PairedFeatures:
        return PairedFeatures(self.first.take(idx), self.second.take(idx), self.candidate_threshold)

    @staticmethod
    def concat(sets: list[PairedFeatures]) -> PairedFeatures:
        return PairedFeatures(
            FeatureSet.concat([s.first for s in sets]),
            FeatureSet.concat([s.second for s in sets]),
            sets[0].candidate_threshold,
        )


@dataclass
class Evidence:
    """Every candidate pair with both scores.

    candidates (m, 2) int64, first (m,) float32 (the candidate method's
    similarity, >= the candidate threshold), second (m,) float32 (the
    confirming method's similarity)."""

    candidates: np.ndarray
    first: np.ndarray
    second: np.ndarray

    def confirmed(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(edges, scores) of the candidates whose second score is >= threshold."""
        keep = self._second64 >= threshold
        return self.candidates[keep], self.second[keep]

    def __post_init__(self):
        # The decision is taken on the float64 value; the float32 copy is what
        # is stored and reported.
        self._second64 = np.asarray(self.second, dtype=np.float64)
        self.second = self._second64.astype(np.float32)

    def to_json(self) -> dict:
        return {
            "candidates": self.candidates.tolist(),
            "first": [float(x) for x in self.first],
            "second": [float(x) for x in self._second64],
        }

    @staticmethod
    def from_json(data: dict) -> Evidence:
        return Evidence(
            np.asarray(data["candidates"], dtype=np.int64).reshape(-1, 2),
            np.asarray(data["first"], dtype=np.float32),
            np.asarray(data["second"], dtype=np.float64),
        )


def check_candidate_threshold(first: str, value, params: dict | None = None) -> float:
    """The candidate threshold of the first method (None: its documented
    default, see :func:`~icas.cluster.methods.default_candidate_threshold`)."""
    if value is None:
        return default_candidate_threshold(first, params)
    lo, hi = threshold_range(first)
    return _validate.threshold(value, name="candidate_threshold", low=lo, high=hi)


def verified_pairs(
    pf: PairedFeatures,
    threshold: float | None = None,
    *,
    groups=None,
    n_threads=None,
    candidates="auto",
) -> Evidence:
    """Candidates (first method >= candidate threshold) with both scores.

    ``threshold`` is not used to filter here: call :meth:`Evidence.confirmed`.
    ``candidates`` is how the first method finds its pairs (see
    :func:`~icas.cluster.methods.pairs`).
    """
    cand, s1 = pairs(
        pf.first, pf.candidate_threshold, groups=groups, n_threads=n_threads, candidates=candidates
    )
    s2 = pair_similarities(pf.second, cand, n_threads=n_threads)
    return Evidence(cand, s1, s2)


def verified_matrix(pf: PairedFeatures, *, n_threads=None) -> np.ndarray:
    """(n, n) similarities as the verified method sees them: the second
    method's similarity for candidate pairs, the bottom of its range for the
    others (they can never link)."""
    n = len(pf)
    low, high = threshold_range(pf.second.method)
    out = np.full((n, n), low, dtype=np.float64)
    if n == 0:
        return out
    first = similarity_matrix(pf.first, n_threads=n_threads)
    i, j = np.nonzero(np.triu(first >= pf.candidate_threshold, k=1))
    edges = np.stack([i, j], axis=1).astype(np.int64)
    s = pair_similarities(pf.second, edges, n_threads=n_threads)
    out[i, j] = s
    out[j, i] = s
    np.fill_diagonal(out, high)
    return out


def split_params(first: str, second: str, params: dict) -> tuple[dict, dict]:
    """Method parameters for each method of a pair (each goes to the method
    that accepts it); an unknown one is a TypeError naming both methods."""
    from icas.features import _DEFAULTS

    a = {k: v for k, v in params.items() if k in _DEFAULTS[first]}
    b = {k: v for k, v in params.items() if k in _DEFAULTS[second]}
    unknown = sorted(set(params) - set(a) - set(b))
    if unknown:
        accepted = ", ".join([*_DEFAULTS[first], *_DEFAULTS[second]]) or "none"
        raise TypeError(
            f"unexpected parameter(s) {', '.join(unknown)} for method "
            f"{first}+{second} (accepted: {accepted})"
        )
    return a, b


def extract_pair(
    paths: list[str],
    first: str,
    second: str,
    *,
    size=None,
    scale=None,
    n_threads=None,
    progress=False,
    candidate_threshold=None,
    **params,
) -> Extracted:
    """Features of both methods for the images both could read."""
    from icas.cluster.methods import extract

    pa, pb = split_params(first, second, params)
    loose = check_candidate_threshold(first, candidate_threshold, pa)
    a = extract(paths, first, size=size, scale=scale, n_threads=n_threads, progress=progress, **pa)
    b = extract(
        a.paths, second, size=size, scale=scale, n_threads=n_threads, progress=progress, **pb
    )
    skipped = a.skipped + b.skipped
    if len(b.paths) != len(a.paths):  # read by the first reader, not by the second
        ok = set(b.paths)
        keep = [i for i, p in enumerate(a.paths) if p in ok]
        fa = a.features.take(keep)
    else:
        fa = a.features
    return Extracted(PairedFeatures(fa, b.features, loose), list(b.paths), skipped)
