"""The ``candidates=`` option of the threshold forms: how pairs are found.

``"all"`` compares every pair (the brute-force kernels). ``"index"`` finds
candidate pairs with an index first and verifies them exactly: multi-index
hashing for Hamming codes (exact), LSH banding for MinHash signatures
(approximate). ``"auto"`` picks what is exact and fastest.
"""

from __future__ import annotations

CANDIDATES = ("auto", "all", "index")


def candidates(value) -> str:
    """Check a ``candidates=`` argument; returns it."""
    if not isinstance(value, str) or value not in CANDIDATES:
        raise ValueError(f"candidates must be 'auto', 'all' or 'index', got {value!r}")
    return value
