"""How the pipeline's pair stage finds its pairs (``candidates=``), and the
record of it in summary.json, the checkpoint key and the summary line.

``"all"`` compares every pair. ``"index"`` asks the kernel for an index
first: multi-index hashing for imagehash (exact: the same pairs as comparing
all), LSH banding for minhash (approximate: a pair at the threshold is found
with the probability :func:`~icas.similarity.minhash_lsh_recall` gives for
the bands; pairs found have exact scores), shared descriptors for orb
(approximate: only images sharing a descriptor pair within
:data:`~icas.similarity._orb.INDEX_RADIUS` bits are compared, exactly).
``"auto"`` lets the kernel's cost
model decide and never chooses an approximate search: imagehash uses its
index when the plan predicts it is faster, minhash and orb compare every pair.
Methods outside :data:`~icas.cluster.methods.CANDIDATE_METHODS` always
compare every pair. The merge of batches uses the same search as the
batches (exact for imagehash; for minhash and orb with "index" the merge is
as approximate as the batches).
"""

from __future__ import annotations

from icas.cluster.methods import (
    APPROXIMATE_INDEX,
    CANDIDATE_METHODS,
    FeatureSet,
    split_method,
)
from icas.similarity import _candidates


def check(candidates, method: str) -> str:
    """A ``candidates=`` value for ``method`` (for a verified pair, its first
    method finds the candidates); "index" needs a method that has an index."""
    how = _candidates.candidates(candidates)
    first = split_method(method)[0]
    if how == "index" and first not in CANDIDATE_METHODS:
        raise ValueError(
            f"candidates='index' applies to {', '.join(sorted(CANDIDATE_METHODS))} "
            f"(or a verified pair starting with one), not {method!r}: "
            "use 'auto' or 'all'"
        )
    return how


def used(fs, threshold: float, candidates: str) -> str:
    """The search a :func:`~icas.cluster.methods.pairs` call makes: "index"
    or "all" (for a verified pair: that of its first method)."""
    if not isinstance(fs, FeatureSet):  # verified pair: the first method searches
        fs, threshold = fs.first, fs.candidate_threshold
    if fs.method not in CANDIDATE_METHODS or candidates == "all" or len(fs) < 2:
        return "all"
    if candidates == "index":
        return "index"
    if fs.method == "imagehash":
        from icas.similarity import hamming_index_plan

        plan = hamming_index_plan(len(fs), int(fs.arrays[0].shape[1]) * 8, threshold)
        return "index" if plan["use_index"] else "all"
    return "all"  # minhash, orb: auto never takes the approximate search


# From this many signatures, minhash comparing every pair takes minutes here
# (about 5e9 pairs in 270 s at 100,000): "auto" stays exact, but says so.
MINHASH_ADVICE = 30_000


def advice(fs, candidates: str) -> str | None:
    """A warning for a large minhash batch that compares every pair because
    "auto" never picks the approximate search; None otherwise."""
    if not isinstance(fs, FeatureSet) or fs.method != "minhash" or candidates != "auto":
        return None
    n = len(fs)
    if n < MINHASH_ADVICE:
        return None
    return (
        f"minhash compares all {n * (n - 1) // 2:,} pairs of this batch of {n:,} images "
        "(exact); --candidates index (LSH banding, approximate, its expected recall is "
        "reported) is far faster at this size"
    )


def describe(
    method: str,
    candidates: str,
    threshold,
    searches,
    *,
    num_perm: int | None,
    candidate_threshold: float | None = None,
) -> dict:
    """The record of a run's candidate search: requested value, searches
    used (sorted), whether the result is exact, and for a minhash LSH search
    its bands and expected recall at the threshold."""
    first = split_method(method)[0]
    kinds = sorted(set(searches))
    out: dict = {
        "requested": candidates,
        "used": kinds,
        "exact": not (first in APPROXIMATE_INDEX and "index" in kinds),
    }
    if first == "minhash" and "index" in kinds:
        from icas.similarity import minhash_lsh_params, minhash_lsh_recall

        t = candidate_threshold if candidate_threshold is not None else threshold
        bands = minhash_lsh_params(t, int(num_perm or 128))
        out["bands"] = list(bands)
        out["recall_at_threshold"] = round(minhash_lsh_recall(t, bands), 6)
    return out


def key_entry(method: str, candidates: str) -> dict:
    """What the checkpoint key records of the search: only an approximate
    search changes the pairs (minhash or orb "index"), so only it is recorded;
    an exact search (any imagehash choice) reuses checkpoints of any other."""
    if split_method(method)[0] in APPROXIMATE_INDEX and candidates == "index":
        return {"candidates": "index"}
    return {}


def summary_text(record: dict | None) -> str:
    """A few words for the summary line (empty when every pair was compared
    as asked)."""
    if not record or record.get("used") in ([], ["all"]):
        return ""
    text = "candidates " + "+".join(record["used"])
    if "bands" in record:
        b, r = record["bands"]
        text += (
            f" (LSH {b} bands of {r}, expected recall {record['recall_at_threshold']:.3f} "
            "at the threshold)"
        )
    elif record.get("exact", True):
        text += " (exact)"
    else:
        text += " (shared descriptors, approximate)"
    return text
