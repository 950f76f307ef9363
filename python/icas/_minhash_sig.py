"""MinHash signatures equal to datasketch's, computed for many sets at once.

``datasketch.MinHash(num_perm, seed)`` updated with a set of byte strings
holds, per permutation ``i``, the minimum over the set of ``perm_i(h(x))``
where ``h`` is the first 4 bytes of SHA-1 (little-endian). Two schemes:

``"affine32"`` (datasketch >= 2.0 default)
    ``h`` is first mixed by the 32-bit MurmurHash3 finaliser, then
    ``perm_i(h) = a_i h + b_i mod 2**32`` with ``a_i`` odd.
``"legacy"`` (datasketch < 2.0, and ``scheme="legacy"`` since)
    ``perm_i(h) = ((a_i h + b_i) mod 2**64 mod (2**61 - 1)) & (2**32 - 1)``
    (numpy's uint64 arithmetic wraps, and datasketch relies on it).

``a`` and ``b`` come from ``np.random.RandomState(seed)`` in datasketch's
order. An empty set keeps the sentinel ``2**32 - 1`` in every slot, as
datasketch does. Here every value is hashed once, the permutations are
applied to all values of all sets as one array operation, and the per-set
minimum is a segmented ``np.minimum.reduceat``. The signatures are returned
as uint64 (both schemes' values fit in 32 bits; equality of slots, hence
the Jaccard estimate, is unchanged).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

__all__ = ["SCHEMES", "hash_values", "permutations", "signatures"]

SCHEMES = ("affine32", "legacy")

_MERSENNE = np.uint64((1 << 61) - 1)
_MAX32 = (1 << 32) - 1

# Sets per block of the permutation step: the block's (values, num_perm)
# intermediate stays a few tens of MB.
_BLOCK_VALUES = 1 << 16


def hash_values(values) -> np.ndarray:
    """datasketch's ``sha1_hash32`` of each byte string, as a uint32 array."""
    digests = b"".join(hashlib.sha1(v).digest()[:4] for v in values)
    return np.frombuffer(digests, dtype="<u4").astype(np.uint32)


@functools.lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(a, b)`` parameters datasketch draws for ``MinHash(num_perm, seed)``."""
    gen = np.random.RandomState(seed)
    if scheme == "legacy":
        ab = np.array(
            [
                (
                    gen.randint(1, _MERSENNE, dtype=np.uint64),
                    gen.randint(0, _MERSENNE, dtype=np.uint64),
                )
                for _ in range(num_perm)
            ],
            dtype=np.uint64,
        ).T
        a, b = ab[0].copy(), ab[1].copy()
    elif scheme == "affine32":
        a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    else:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _permute(hv: np.ndarray, a: np.ndarray, b: np.ndarray, scheme: str) -> np.ndarray:
    """(m,) hashes -> (num_perm, m) permuted values (uint32 or uint64).

    Permutation-major, so the per-set minimum reduces along contiguous rows.
    """
    if scheme == "legacy":
        phv = np.multiply.outer(a, hv.astype(np.uint64))
        phv += b[:, None]
        # x mod (2**61 - 1) for any uint64 x, without a division:
        # x = hi 2**61 + lo = hi + lo (mod p), and hi + lo < 2 p.
        low = phv & _MERSENNE
        phv >>= np.uint64(61)
        phv += low
        phv -= _MERSENNE * (phv >= _MERSENNE)
        phv &= np.uint64(_MAX32)
        return phv
    phv = np.multiply.outer(a, _fmix32(hv.astype(np.uint32)))
    phv += b[:, None]
    return phv


def signatures(
    hashes: np.ndarray,
    offsets: np.ndarray,
    *,
    num_perm: int = 128,
    seed: int = 1,
    scheme: str = "affine32",
) -> np.ndarray:
    """MinHash signatures of many sets given their hashed values.

    Parameters
    ----------
    hashes : numpy.ndarray
        ``(m,)`` uint32: :func:`hash_values` of all sets' values, set after set.
    offsets : numpy.ndarray
        ``(n + 1,)`` int64: set ``j`` is ``hashes[offsets[j]:offsets[j + 1]]``.
    num_perm, seed, scheme
        As ``datasketch.MinHash(num_perm=..., seed=..., scheme=...)``.

    Returns
    -------
    numpy.ndarray
        ``(n, num_perm)`` uint64, row ``j`` equal to the ``hashvalues`` of a
        datasketch MinHash updated with set ``j``'s values.
    """
    a, b = permutations(int(num_perm), int(seed), scheme)
    offsets = np.asarray(offsets, dtype=np.int64)
    n = offsets.size - 1
    out = np.full((n, num_perm), _MAX32, dtype=np.uint64)
    lengths = np.diff(offsets)
    j = 0
    while j < n:
        # A block of whole sets holding about _BLOCK_VALUES values.
        stop = int(np.searchsorted(offsets, offsets[j] + _BLOCK_VALUES, side="right")) - 1
        stop = min(max(stop, j + 1), n)
        lo, hi = int(offsets[j]), int(offsets[stop])
        nonempty = np.flatnonzero(lengths[j:stop] > 0)
        if hi > lo and nonempty.size:
            phv = _permute(hashes[lo:hi], a, b, scheme)
            # reduceat over the starts of the non-empty sets only: an empty set
            # would otherwise yield the first value of the next one.
            starts = offsets[j:stop][nonempty] - lo
            out[j + nonempty] = np.minimum.reduceat(phv, starts, axis=1).T
        j = stop
    return out
