"""Every kernel at the Python boundary, fuzzed and under threads.

* Valid inputs in any memory layout (Fortran order, strided, reversed,
  misaligned, read-only views), any size from empty up: the answer equals an
  independent reference (numpy, OpenCV, scikit-image, scipy).
* Arbitrary inputs (any dtype, dimension count, shape, argument type) to the
  public functions and to the C++ module directly: ValueError or TypeError,
  never a crash, or an answer equal to the one for a clean copy of the input.
* Declared sizes beyond any memory: a Python exception (MemoryError when the
  request really is that big), never a crash.
* Several Python threads calling the kernels at once get the results of a
  single thread.

.ci/sanitize runs this file against an AddressSanitizer + UBSan build, where
an out-of-bounds access or undefined behaviour aborts the run.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components
from skimage.metrics import structural_similarity

from icas import _core, connected_components
from icas import similarity as sim

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------
# memory layouts: the same values, laid out differently

LAYOUTS = ("c", "fortran", "strided", "reversed", "misaligned", "readonly")


def relayout(a: np.ndarray, kind: str) -> np.ndarray:
    """An array equal to a whose memory layout is `kind`."""
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided" and a.ndim:
        big = np.zeros((2 * a.shape[0], *a.shape[1:]), dtype=a.dtype)
        big[::2] = a
        return big[::2]
    if kind == "reversed" and a.ndim:
        return np.ascontiguousarray(a[::-1])[::-1]
    if kind == "misaligned" and a.dtype.itemsize > 1 and not a.dtype.hasobject:
        buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
        out = buf[1:].view(a.dtype).reshape(a.shape)
        out[...] = a
        return out
    if kind == "readonly":
        out = a.copy()
        out.flags.writeable = False
        return out
    return a.copy()


# ---------------------------------------------------------------------------
# references (independent of icas)


def ref_hamming(a, b) -> np.ndarray:
    x = np.bitwise_xor(a[:, None, :], b[None, :, :])
    return np.unpackbits(x, axis=-1).sum(-1).astype(np.int32).reshape(len(a), len(b))


def ref_minhash(a, b) -> np.ndarray:
    eq = a[:, None, :] == b[None, :, :]
    return (eq.sum(-1) / a.shape[1]).reshape(len(a), len(b))


def ref_tm(a, b) -> np.ndarray:
    """1 - cv2.matchTemplate(x, y, TM_SQDIFF_NORMED) per pair (0 when either is black)."""
    out = np.zeros((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            if not x.any() or not y.any():
                continue
            r = cv2.matchTemplate(x.astype(np.float32), y.astype(np.float32),
                                  cv2.TM_SQDIFF_NORMED)  # fmt: skip
            out[i, j] = 1.0 - min(float(r.min()), 1.0)
    return out


def ref_ssim(a, b) -> np.ndarray:
    return np.array([[structural_similarity(x, y, data_range=255) for y in b] for x in a]
                    ).reshape(len(a), len(b))  # fmt: skip


_BF = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)


def ref_orb(da: list, db: list) -> np.ndarray:
    out = np.zeros((len(da), len(db)))
    for i, x in enumerate(da):
        for j, y in enumerate(db):
            if len(x) == 0 or len(y) == 0:
                continue
            d = [m.distance for m in _BF.match(x, y)]
            if d:
                top = max(d)
                out[i, j] = 1.0 if top == 0 else sum(v < 0.75 * top for v in d) / len(d)
    return out


def ref_pairs(similarity: np.ndarray, threshold: float, groups=None) -> np.ndarray:
    keep = np.triu(similarity.astype(np.float64) >= threshold, 1)  # (not in float32)
    if groups is not None:
        keep &= groups[:, None] != groups[None, :]
    i, j = np.nonzero(keep)
    return np.stack([i, j], axis=1).astype(np.int64).reshape(-1, 2)


def ref_components(edges: np.ndarray, n: int) -> np.ndarray:
    """Components numbered by first appearance."""
    if n == 0:
        return np.zeros(0, np.int64)
    e = np.asarray(edges, np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, comp = scipy_components(graph, directed=False)
    first: dict[int, int] = {}
    return np.array([first.setdefault(int(c), len(first)) for c in comp], dtype=np.int64)


# ---------------------------------------------------------------------------
# valid inputs, any layout: equal to the references

threads_st = st.sampled_from([None, 1, 2, 3, -1])
layout_st = st.sampled_from(LAYOUTS)


def _groups(data, n):
    if not n or not data.draw(st.booleans()):
        return None
    return np.array(data.draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)))


def check_family(data, features, reference, matrix, cross, pairs, components, to_sim,
                 low=0.0):  # fmt: skip
    """features: a list of per-item arrays to lay out and pass positionally."""
    kind = data.draw(layout_st)
    n_threads = data.draw(threads_st)
    args = [relayout(f, kind) for f in features]
    want = reference()
    got = matrix(*args, n_threads=n_threads)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    n = want.shape[0]
    similarity = to_sim(got)
    if cross is not None:
        np.testing.assert_allclose(cross(*args, *args, n_threads=n_threads), got, atol=1e-6)
    thr = data.draw(st.floats(low, 1.0))
    groups = _groups(data, n)
    edges, scores = pairs(*args, thr, groups=groups, n_threads=n_threads)
    np.testing.assert_array_equal(edges.reshape(-1, 2), ref_pairs(similarity, thr, groups))
    assert edges.dtype == np.int64 and scores.dtype == np.float32 and len(scores) == len(edges)
    labels = components(*args, thr, groups=groups, n_threads=n_threads)
    np.testing.assert_array_equal(labels, ref_components(edges, n))


@FUZZ
@given(data=st.data(), n=st.integers(0, 9), n_bytes=st.integers(1, 40), seed=st.integers(0, 99))
def test_hamming_any_layout(data, n, n_bytes, seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (n, n_bytes), dtype=np.uint8)
    if n > 2:
        codes[1] = codes[0]  # a duplicate: similarity exactly 1
        codes[2, 0] ^= 1 if n_bytes else 0
    check_family(data, [codes], lambda: ref_hamming(codes, codes), sim.hamming_matrix,
                 sim.hamming_cross, sim.hamming_pairs, sim.hamming_components,
                 lambda d: 1.0 - d / (8.0 * n_bytes))  # fmt: skip


@FUZZ
@given(data=st.data(), n=st.integers(0, 9), k=st.integers(1, 40), seed=st.integers(0, 99),
       dtype=st.sampled_from([np.uint32, np.uint64]))  # fmt: skip
def test_minhash_any_layout(data, n, k, seed, dtype):
    rng = np.random.default_rng(seed)
    sigs = rng.integers(0, 4, (n, k)).astype(dtype)  # few values: many equal slots
    check_family(
        data,
        [sigs],
        lambda: ref_minhash(sigs, sigs),
        sim.minhash_matrix,
        sim.minhash_cross,
        sim.minhash_pairs,
        sim.minhash_components,
        lambda s: s,
    )


@FUZZ
@given(data=st.data(), n=st.integers(0, 5), h=st.integers(1, 9), w=st.integers(1, 9),
       c=st.sampled_from([None, 1, 3, 4]), seed=st.integers(0, 99))  # fmt: skip
def test_tm_any_layout(data, n, h, w, c, seed):
    rng = np.random.default_rng(seed)
    shape = (n, h, w) if c is None else (n, h, w, c)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    if n > 1:
        images[-1] = 0  # a black image: similarity 0 to everything
    full = images if c is not None else images[..., None]
    check_family(
        data,
        [images],
        lambda: ref_tm(full, full),
        sim.tm_matrix,
        sim.tm_cross,
        sim.tm_pairs,
        sim.tm_components,
        lambda s: s,
    )


@FUZZ
@given(data=st.data(), n=st.integers(0, 4), h=st.integers(7, 14), w=st.integers(7, 14),
       seed=st.integers(0, 99))  # fmt: skip
def test_ssim_any_layout(data, n, h, w, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    if n > 1:
        images[1] = np.clip(images[0].astype(int) + 3, 0, 255)  # a near-duplicate
    check_family(
        data,
        [images],
        lambda: ref_ssim(images, images),
        sim.ssim_matrix,
        sim.ssim_cross,
        sim.ssim_pairs,
        sim.ssim_components,
        lambda s: s,
        low=-1.0,
    )


@FUZZ
@given(data=st.data(), counts=st.lists(st.integers(0, 8), max_size=6), bits=st.integers(1, 6),
       seed=st.integers(0, 99))  # fmt: skip
def test_orb_any_layout(data, counts, bits, seed):
    rng = np.random.default_rng(seed)
    # Descriptors that differ in few bits: many equal distances (ties).
    descs = [np.packbits(rng.random((c, 256)) < bits / 256, axis=1) for c in counts]
    stacked = np.concatenate(descs) if descs else np.zeros((0, 32), np.uint8)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in descs])]).astype(np.int64)

    def cross(d, o, d2, o2, *, n_threads):
        return sim.orb_cross(d, o, d2, o2, n_threads=n_threads)

    check_family(
        data,
        [stacked, offsets],
        lambda: ref_orb(descs, descs),
        sim.orb_matrix,
        cross,
        sim.orb_pairs,
        sim.orb_components,
        lambda s: s,
    )


@FUZZ
@given(data=st.data(), n=st.integers(0, 30), seed=st.integers(0, 99), layout=layout_st)
def test_connected_components_any_layout(data, n, seed, layout):
    rng = np.random.default_rng(seed)
    m = data.draw(st.integers(0, 40)) if n else 0
    edges = rng.integers(0, max(n, 1), (m, 2)).astype(np.int64)
    got = connected_components(relayout(edges, layout), n)
    np.testing.assert_array_equal(got, ref_components(edges, n))
    got = _core.connected_components(np.ascontiguousarray(edges), n)
    np.testing.assert_array_equal(got, ref_components(edges, n))


# ---------------------------------------------------------------------------
# arbitrary inputs: ValueError / TypeError, or the answer for a clean copy

DTYPES = [np.uint8, np.int8, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.float32,
          np.float64, np.bool_, np.complex64, ">u8", ">i8", "<U1", object]  # fmt: skip


@st.composite
def any_array(draw, max_dims: int = 5):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    ndim = draw(st.integers(0, max_dims))
    # 7 and 32 are the sizes some kernels need (SSIM window, ORB descriptor)
    sides = st.sampled_from([0, 1, 2, 3, 7, 8, 32])
    shape = tuple(draw(st.lists(sides, min_size=ndim, max_size=ndim)))
    if int(np.prod(shape)) > 4096:
        shape = shape[:1] + (1,) * (ndim - 1)
    seed = draw(st.integers(0, 2**16))
    raw = np.random.default_rng(seed).integers(0, 256, int(np.prod(shape)) * 16, dtype=np.uint8)
    if dtype.kind in "OU":
        a = np.array(raw[: int(np.prod(shape))].tolist(), dtype=dtype).reshape(shape)
    else:
        a = raw[: int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape).copy()
    return relayout(a, draw(layout_st))


any_value = st.one_of(
    any_array(),
    st.none(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.lists(st.integers(0, 3), max_size=4),
    st.booleans(),
)
any_threshold = st.one_of(st.floats(-2, 2), st.floats(allow_nan=True), st.none(), st.text(),
                          st.integers(-3, 3), st.booleans())  # fmt: skip
any_threads = st.one_of(st.integers(-3, 10**6), st.sampled_from([2**31, 2**63, 1.5, True, "2"]),
                        st.none())  # fmt: skip

PUBLIC = {
    "hamming_matrix": 1, "hamming_cross": 2, "hamming_pairs": 1, "hamming_components": 1,
    "minhash_matrix": 1, "minhash_cross": 2, "minhash_pairs": 1, "minhash_components": 1,
    "tm_matrix": 1, "tm_cross": 2, "tm_pairs": 1, "tm_components": 1, "tm_similarity": 2,
    "ssim_matrix": 1, "ssim_cross": 2, "ssim_pairs": 1, "ssim_components": 1,
    "orb_matrix": 2, "orb_cross": 4, "orb_pairs": 2, "orb_components": 2,
}  # fmt: skip
THRESHOLD_FORMS = ("_pairs", "_components")


def _clean(x):
    return np.array(x, copy=True, order="C") if isinstance(x, np.ndarray) else x


def _equal(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    return a == b or (a != a and b != b)


def _call_or_error(fn, args, kwargs):
    try:
        return fn(*args, **kwargs), None
    except (ValueError, TypeError) as exc:
        assert str(exc), f"{fn.__name__}: an error without a message"
        return None, exc


@pytest.mark.parametrize("name", sorted(PUBLIC))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_public_functions_on_arbitrary_input(name, data):
    fn = getattr(sim, name)
    args = [data.draw(st.one_of(any_array(), any_value)) for _ in range(PUBLIC[name])]
    if name.endswith(THRESHOLD_FORMS):
        args.append(data.draw(any_threshold))
    kwargs = {"n_threads": data.draw(any_threads)}
    if name.endswith(THRESHOLD_FORMS) and data.draw(st.booleans()):
        kwargs["groups"] = data.draw(st.one_of(any_array(max_dims=2), any_value))
    got, err = _call_or_error(fn, args, kwargs)
    if err is None:  # accepted: must be the answer for clean copies of the inputs
        again, err2 = _call_or_error(fn, [_clean(a) for a in args],
                                     {k: _clean(v) for k, v in kwargs.items()})  # fmt: skip
        assert err2 is None and _equal(got, again)


CORE = {
    "hamming_matrix": ("a", "t"), "hamming_cross": ("a", "a", "t"),
    "hamming_pairs": ("a", "thr", "g", "t"), "hamming_components": ("a", "thr", "g", "t"),
    "minhash_matrix": ("a", "t"), "minhash_cross": ("a", "a", "t"),
    "minhash_pairs": ("a", "thr", "g", "t"), "minhash_components": ("a", "thr", "g", "t"),
    "tm_matrix": ("a", "t"), "tm_cross": ("a", "a", "t"), "tm_similarity": ("a", "a", "t"),
    "tm_pairs": ("a", "thr", "g", "t"), "tm_components": ("a", "thr", "g", "t"),
    "ssim_matrix": ("a", "t"), "ssim_cross": ("a", "a", "t"),
    "ssim_pairs": ("a", "thr", "g", "t"), "ssim_components": ("a", "thr", "g", "t"),
    "orb_matrix": ("a", "a", "t"), "orb_cross": ("a", "a", "a", "a", "t"),
    "orb_pairs": ("a", "a", "thr", "g", "t"), "orb_components": ("a", "a", "thr", "g", "t"),
    "orb_matches": ("a", "a"), "connected_components": ("a", "n"),
}  # fmt: skip


@st.composite
def core_array(draw):
    """Mostly arrays the C++ side accepts by type (C-contiguous, the kernel's
    dtypes), with arbitrary shapes and values: the C++ re-checks decide."""
    dtype = np.dtype(draw(st.sampled_from([np.uint8, np.int64, np.uint64, np.uint32, np.int32])))
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.sampled_from([0, 1, 2, 3, 7, 8, 32]), min_size=ndim,
                                max_size=ndim)))  # fmt: skip
    if int(np.prod(shape)) > 4096:
        shape = shape[:1] + (1,) * (ndim - 1)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype == np.int64 and draw(st.booleans()):  # offsets / edges / groups: small ints
        return rng.integers(-2, 10, shape).astype(np.int64)
    return rng.integers(0, 256, shape).astype(dtype)


@pytest.mark.parametrize("name", sorted(CORE))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_cpp_module_rechecks_arbitrary_input(name, data):
    """The C++ functions called directly, with no Python validation in front:
    shapes and values are re-checked there (an unchecked one would read out
    of bounds, which the sanitizer build turns into an abort)."""
    fn = getattr(_core, name)
    draws = {
        "a": core_array(),
        "thr": st.floats(-1.0, 1.0),
        "g": st.one_of(st.none(), core_array()),
        "t": st.sampled_from([0, 1, 2, -1]),
        "n": st.integers(0, 40),
    }
    args = [data.draw(draws[k]) for k in CORE[name]]
    _call_or_error(fn, args, {})


# ---------------------------------------------------------------------------
# declared sizes beyond any memory


HUGE = 2**48  # bytes: more than any machine's memory and address space allows


def _huge_cases():
    u8 = np.zeros((1, 1), np.uint8)
    return [
        ("hamming_matrix", lambda: sim.hamming_matrix(np.broadcast_to(u8, (2**24, 1)))),
        ("hamming_pairs", lambda: sim.hamming_pairs(np.broadcast_to(u8, (2**48, 1)), 0.5)),
        ("hamming_cross", lambda: sim.hamming_cross(np.broadcast_to(u8, (2**23, 1)),
                                                    np.broadcast_to(u8, (2**23, 1)))),
        ("tm_matrix", lambda: sim.tm_matrix(np.broadcast_to(np.zeros((1, 1, 1), np.uint8),
                                                            (2**16, 2**16, 2**16)))),
        ("ssim_matrix", lambda: sim.ssim_matrix(np.broadcast_to(np.zeros((1, 7, 7), np.uint8),
                                                                (2**43, 7, 7)))),
        ("orb_matrix", lambda: sim.orb_matrix(np.zeros((0, 32), np.uint8),
                                              np.zeros(2**23 + 1, np.int64))),
        ("connected_components", lambda: connected_components(np.zeros((0, 2), np.int64),
                                                              2**46)),
        ("connected_components edges", lambda: connected_components(
            np.broadcast_to(np.zeros((1, 2), np.int64), (2**45, 2)), 2)),
        ("n_threads", lambda: sim.hamming_matrix(np.zeros((300, 8), np.uint8), n_threads=10**6)),
    ]  # fmt: skip


@pytest.mark.parametrize("name,call", _huge_cases(), ids=[c[0] for c in _huge_cases()])
def test_sizes_beyond_memory_raise_python_errors(name, call):
    """A request for more memory than exists is refused with an exception
    (numpy's MemoryError names the size); a thread count beyond reason is
    capped (results never depend on it)."""
    try:
        out = call()
    except (ValueError, TypeError, MemoryError) as exc:
        assert str(exc)
        return
    assert name == "n_threads"
    np.testing.assert_array_equal(out, sim.hamming_matrix(np.zeros((300, 8), np.uint8)))


# ---------------------------------------------------------------------------
# threads


def _workload(rng):
    codes = rng.integers(0, 256, (120, 16), dtype=np.uint8)
    codes[60:] = codes[:60] ^ (rng.random((60, 16)) < 0.02).astype(np.uint8)
    sigs = rng.integers(0, 3, (90, 64)).astype(np.uint64)
    images = rng.integers(0, 256, (24, 20, 20), dtype=np.uint8)
    images[12:] = np.clip(images[:12].astype(int) + rng.integers(-4, 5, images[12:].shape),
                          0, 255)  # fmt: skip
    colour = rng.integers(0, 256, (24, 12, 12, 3), dtype=np.uint8)
    descs = [np.packbits(rng.random((int(c), 256)) < 0.03, axis=1) for c in rng.integers(0, 30, 16)]
    stacked = np.concatenate(descs)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in descs])]).astype(np.int64)
    edges = rng.integers(0, 500, (800, 2)).astype(np.int64)
    return [
        lambda t: sim.hamming_matrix(codes, n_threads=t),
        lambda t: sim.hamming_pairs(codes, 0.9, n_threads=t),
        lambda t: sim.hamming_components(codes, 0.9, n_threads=t),
        lambda t: sim.minhash_matrix(sigs, n_threads=t),
        lambda t: sim.minhash_pairs(sigs, 0.4, n_threads=t),
        lambda t: sim.ssim_matrix(images, n_threads=t),
        lambda t: sim.ssim_components(images, 0.5, n_threads=t),
        lambda t: sim.tm_matrix(colour, n_threads=t),
        lambda t: sim.tm_pairs(colour, 0.8, n_threads=t),
        lambda t: sim.tm_similarity(colour[0], colour[1, 2:9, 3:11], n_threads=t),
        lambda t: sim.orb_matrix(stacked, offsets, n_threads=t),
        lambda t: sim.orb_components(stacked, offsets, 0.3, n_threads=t),
        lambda t: connected_components(edges, 500),
    ]


def test_kernels_called_from_many_python_threads_agree():
    """Eight Python threads, each running every kernel (with 1, 2 or the
    default number of OpenMP threads), all started together: every result
    equals the single-threaded one."""
    work = _workload(np.random.default_rng(11))
    expected = [f(1) for f in work]
    start = threading.Barrier(8)

    def worker(k: int):
        start.wait()
        out = []
        for rep in range(3):
            for i, f in enumerate(work):
                out.append((i, f([None, 1, 2][(k + rep + i) % 3])))
        return out

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(worker, range(8)))
    for out in results:
        for i, got in out:
            assert _equal(got, expected[i]), f"kernel {i} differs under threads"
