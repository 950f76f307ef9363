"""Per-image features, computed once per image and compared by the kernels.

:func:`extract` reads a list of images in parallel and returns a
:class:`Features` holding one method's features in the canonical form the
similarity kernels take (``icas.similarity``), the paths that succeeded (in
input order) and the files that were skipped, with a one-line reason each.

========== ============================================ =====================================
method     feature                                      ``Features.data``
========== ============================================ =====================================
ssim       grayscale image, one common size             ``(n, h, w)`` uint8
tm         BGR colour image, one common size            ``(n, h, w, 3)`` uint8
imagehash  pHash, ``imagehash.phash`` bit for bit       ``(n, ceil(hash_size**2 / 8))`` uint8
minhash    MinHash of the strongest Harris corners      ``(n, num_perm)`` uint64
orb        ORB descriptors of each image                ``(total, 32)`` uint8 + ``offsets``
========== ============================================ =====================================
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from icas import _core, _validate
from icas._minhash_sig import SCHEMES, hash_values, signatures
from icas._phash import check_params as _check_phash_params
from icas._phash import phash_bits
from icas.io import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    _check_max_pixels,
    _check_resize,
    _read_pil,
    list_images,
    read_image,
)

__all__ = ["DEFAULT_SIZE", "METHODS", "Features", "extract"]

METHODS = ("ssim", "tm", "imagehash", "minhash", "orb")

#: Common size ``(w, h)`` of ``ssim`` and ``tm`` features when neither `size`
#: nor `scale` is given. These methods compare images pixel by pixel, so all
#: images need one size; a fixed one (not, say, the first image's) keeps
#: features of different batches and runs comparable, which the merge of
#: batches needs. 128 x 128 keeps the structure SSIM looks at while the cost
#: of all pairs (n**2 x pixels) stays small.
DEFAULT_SIZE = (128, 128)

_DEFAULTS: dict[str, dict[str, Any]] = {
    "ssim": {},
    "tm": {},
    "imagehash": {"hash_size": 8, "highfreq_factor": 4},
    "minhash": {"num_perm": 128, "seed": 1, "n_corners": 100, "grid": 16, "scheme": "affine32"},
    "orb": {"nfeatures": 500},
}

# Harris parameters of the spec (blockSize, ksize, k).
_HARRIS = (2, 3, 0.04)

log = logging.getLogger(__name__)

# cv2.ORB_create's default edgeThreshold (the border without keypoints).
_ORB_EDGE = 31


@dataclass(frozen=True, eq=False)
class Features:
    """One method's features for a list of images.

    Attributes
    ----------
    method : str
        One of :data:`METHODS`.
    data : numpy.ndarray
        The features of the images in `paths`, row ``i`` for ``paths[i]``
        (see the table in the module docstring). For ``orb``, the descriptors
        of all images stacked: image ``i`` owns rows
        ``offsets[i]:offsets[i + 1]`` (possibly none).
    offsets : numpy.ndarray or None
        ``(n + 1,)`` int64 for ``orb``; None for the other methods.
    paths : list
        The images that were read, in input order (as given).
    skipped : list of (path, str)
        Images that could not be read, in input order, with the reason.
    params : dict
        The parameters the features were made with (`size`, `scale` and the
        method's own); features are only comparable with equal params.
    """

    method: str
    data: np.ndarray
    offsets: np.ndarray | None
    paths: list
    skipped: list = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, indices) -> Features:
        """The features of ``paths[indices]`` only (e.g. cluster representatives).

        Parameters
        ----------
        indices : array-like of int
            Positions in `paths`, any order, repeats allowed.

        Returns
        -------
        Features
            With ``skipped`` empty.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"indices out of range for {len(self)} images")
        idx = idx % max(len(self), 1)
        paths = [self.paths[i] for i in idx.tolist()]
        if self.offsets is None:
            return Features(self.method, self.data[idx], None, paths, [], dict(self.params))
        counts = np.diff(self.offsets)[idx]
        offsets = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        rows = [np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx.tolist()]
        rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        return Features(self.method, self.data[rows], offsets, paths, [], dict(self.params))


def extract(
    paths,
    method: str,
    *,
    size=None,
    scale=None,
    n_threads: int | None = None,
    progress: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    **method_params,
) -> Features:
    """Read images and compute one method's features, in parallel.

    Parameters
    ----------
    paths : sequence of str or os.PathLike, or a folder
        The images (a folder is listed with :func:`icas.io.list_images`).
    method : {"ssim", "tm", "imagehash", "minhash", "orb"}
    size : (int, int) or int, optional
        Resize every image to ``(w, h)`` first. ``ssim`` and ``tm`` default
        to :data:`DEFAULT_SIZE`; the other methods use the image as it is.
    scale : (float, float) or float, optional
        Resize every image by ``(fx, fy)`` instead. ``ssim`` and ``tm`` then
        need every image to come out at the same size (ValueError otherwise).
    n_threads : int, optional
        Worker threads (decoding, resizing, OpenCV and BLAS release the GIL).
        None: ``OMP_NUM_THREADS`` if set, else all cores; -1: all cores.
        Each worker's BLAS is limited to one thread while this runs when
        threadpoolctl is installed.
    progress : bool, default False
        Show a tqdm progress bar on stderr.
    max_pixels : int or None
        Images declaring more pixels are skipped (see :func:`icas.io.read_image`).
    **method_params
        ``imagehash``: ``hash_size=8``, ``highfreq_factor=4`` (imagehash's own
        default; the original tool used 64 and 16, a 4096-bit hash so sensitive
        to detail that a 5% crop or a 4 px shift looks like an unrelated image).
        ``minhash``: ``num_perm=128``, ``seed=1``, ``n_corners=100``, ``grid=16``,
        ``scheme="affine32"`` (datasketch's default since 2.0; ``"legacy"``
        for datasketch < 2.0 sketches).
        ``orb``: ``nfeatures=500``.

    Returns
    -------
    Features
        Outputs follow the input order whatever the number of threads.

    Notes
    -----
    ``ssim`` / ``tm``: :func:`icas.io.read_image` grayscale / BGR at the size.

    ``imagehash``: the image is decoded by Pillow and oriented by its EXIF
    tag (``ImageOps.exif_transpose``; imagehash itself ignores the tag, but a
    rotated copy of a photo should hash like the photo); 16-bit images are
    scaled to 8 bits first (Pillow's ``convert("L")`` would clip them to
    white); with `size`/`scale` it is resized with ``LANCZOS``. The hash is
    then ``imagehash.phash(image, hash_size, highfreq_factor)`` bit for bit,
    packed with ``np.packbits(hash.flatten())`` (row-major, first bit the
    most significant).

    ``minhash``: Harris response (``cv2.cornerHarris``, blockSize 2, ksize 3,
    k 0.04) of the float32 grayscale image; the `n_corners` pixels of
    largest positive response (ties in raster order; flat images may have
    fewer, or none: an empty set, whose signature is all ``2**32 - 1``); each
    becomes the bytes of its cell on a ``grid x grid`` lattice (default 16),
    or with ``grid=None`` ``f"{row / h:.3f},{col / w:.3f}"`` (coordinates
    normalised by the image height and width, so images of different sizes
    compare); the signature is that of ``datasketch.MinHash(num_perm,
    seed=seed, scheme=scheme)`` updated with those bytes, as uint64.

    ``orb``: ``cv2.ORB_create(nfeatures).detectAndCompute`` on the grayscale
    image; an image without keypoints has no rows (not an error).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    params = _method_params(method, method_params)
    if isinstance(paths, (str, os.PathLike)):
        paths = list_images(paths) if os.path.isdir(paths) else [paths]
    elif not isinstance(paths, Sequence):
        paths = list(paths)
    if method in ("ssim", "tm") and size is None and scale is None:
        size = DEFAULT_SIZE
    # Checked once here (read_image would raise the same error per image).
    size, scale = _check_resize(size, scale)
    max_pixels = _check_max_pixels(max_pixels)
    workers = _workers(n_threads)
    read = {"size": size, "scale": scale, "max_pixels": max_pixels}
    task = _TASKS[method](read, params)

    with _blas_single_thread() if method == "imagehash" else nullcontext():
        results, skipped = _run(task, paths, workers, progress, f"{method} features")

    ok = [i for i, r in enumerate(results) if r is not None]
    good_paths = [paths[i] for i in ok]
    values = [results[i] for i in ok]
    record = {"size": size, "scale": scale, **params}
    data, offsets = _ASSEMBLE[method](values, read, params)
    return Features(method, data, offsets, good_paths, skipped, record)


# ---------------------------------------------------------------------------
# per-method work (runs in worker threads) and assembly (in the caller)


def _method_params(method: str, given: dict) -> dict:
    defaults = _DEFAULTS[method]
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) or "none"
        raise TypeError(
            f"unexpected parameter(s) {', '.join(unknown)} for method {method!r} "
            f"(accepted: {accepted})"
        )
    params = {**defaults, **given}
    if method == "imagehash":
        params["hash_size"], params["highfreq_factor"] = _check_phash_params(
            params["hash_size"], params["highfreq_factor"]
        )
    elif method == "minhash":
        for name in ("num_perm", "n_corners"):
            params[name] = _positive_int(params[name], name)
        if params["grid"] is not None:
            params["grid"] = _positive_int(params["grid"], "grid")
        params["seed"] = _positive_int(params["seed"], "seed", low=0)
        if params["scheme"] not in SCHEMES:
            raise ValueError(
                f"scheme must be one of {', '.join(SCHEMES)}; got {params['scheme']!r}"
            )
    elif method == "orb":
        params["nfeatures"] = _positive_int(params["nfeatures"], "nfeatures")
    return params


def _positive_int(v, name: str, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < low:
        raise ValueError(f"{name} must be >= {low}, got {v}")
    return int(v)


def _pixels_task(color: bool):
    def make(read, params):
        def task(path):
            return read_image(path, color=color, **read)

        return task

    return make


def _imagehash_task(read, params):
    hs, hf = params["hash_size"], params["highfreq_factor"]

    def task(path):
        bits = phash_bits(_read_pil(path, **read), hs, hf)
        return np.packbits(bits.reshape(-1))

    return task


def _minhash_task(read, params):
    k, grid = params["n_corners"], params["grid"]

    def task(path):
        return hash_values(corner_values(read_image(path, color=False, **read), k, grid=grid))

    return task


def corner_values(
    gray: np.ndarray, n_corners: int = 100, *, grid: int | None = None
) -> list[bytes]:
    """The MinHash set of one grayscale image: its strongest Harris corners.

    Parameters
    ----------
    gray : numpy.ndarray
        ``(h, w)`` uint8.
    n_corners : int
    grid : int or None
        Quantise the normalised coordinates to a ``grid x grid`` lattice of
        cells: a corner becomes ``f"{row * grid // h},{col * grid // w}"``, so
        a shift or crop of a few pixels keeps most of the set (the pipeline
        uses 16: on near-duplicates of real photos it separated the groups
        best, ARI 0.84 against 0.49 for exact coordinates). None keeps the
        coordinates to three decimals.

    Returns
    -------
    list of bytes
        ``f"{row / h:.3f},{col / w:.3f}"`` (or the grid cell) of the (up to) `n_corners` pixels
        of largest positive Harris response, strongest first, ties in raster
        order (the first `n_corners` of a stable sort of all pixels by
        decreasing response).
    """
    h, w = gray.shape
    if gray.dtype == np.uint8 and native_harris_agrees():
        # icas's own response, equal to OpenCV's bit for bit (checked once
        # per process), and the selection, in one call without the GIL.
        strongest = _core.harris_strongest(np.ascontiguousarray(gray), n_corners)
    else:
        block, ksize, k = _HARRIS
        pixels, response = _harris_buffers(h, w)
        np.copyto(pixels, gray)  # (uint8 -> float32 is exact)
        response = cv2.cornerHarris(pixels, block, ksize, k, dst=response)
        # The first n_corners of a stable sort of the positive responses by
        # decreasing value, in one C++ pass (numpy took 3 passes and 0.5 ms).
        strongest = _core.strongest_positive(response, n_corners)
    rows, cols = np.divmod(strongest, w)
    if grid:
        cells = (
            f"{r * grid // h},{c * grid // w}".encode()
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
        )
        return list(dict.fromkeys(cells))  # a set, in order of strength
    return [
        f"{r / h:.3f},{c / w:.3f}".encode()
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
    ]


@functools.lru_cache(maxsize=1)
def native_harris_agrees() -> bool:
    """Whether icas's Harris response (``_core.harris_response``, 2.5x faster
    with the selection) equals the installed OpenCV's cornerHarris bit for
    bit. It reproduces the roundings of OpenCV 4/5 on an AVX CPU; another
    build or CPU may round the last formula otherwise, so it is compared
    once per process, on images of every remainder of the flattened size
    modulo 8 and on a smooth one, and used only if equal everywhere."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:61, 0:67]
    probes = [rng.integers(0, 256, (h, w), dtype=np.uint8) for h, w in _HARRIS_PROBES]
    probes.append(((np.sin(yy / 5.0) * np.cos(xx / 7.0) + 1) * 127.5).astype(np.uint8))
    block, ksize, k = _HARRIS
    for g in probes:
        want = cv2.cornerHarris(g.astype(np.float32), block, ksize, k)
        if not np.array_equal(_core.harris_response(g).view(np.uint32), want.view(np.uint32)):
            log.debug("icas's Harris response differs from this OpenCV's: using cv2.cornerHarris")
            return False
    return True


# (h, w): flattened sizes of every remainder mod 8 (small and larger), one
# row, one column.
_HARRIS_PROBES = [
    (1, 1), (1, 2), (3, 1), (2, 2), (1, 5), (2, 3), (1, 7), (16, 16),
    (13, 19), (11, 12), (9, 11), (7, 10), (5, 13),
]  # fmt: skip

_HARRIS_SCRATCH = threading.local()


def _harris_buffers(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """This thread's float32 input and output images for cornerHarris, kept
    from image to image: allocating them per image (fresh pages each time)
    cost more than the Harris response itself (0.76 vs 0.32 ms per 256 px
    image with the selection, measured on one thread)."""
    bufs = getattr(_HARRIS_SCRATCH, "bufs", None)
    if bufs is None or bufs[0].shape != (h, w):
        bufs = _HARRIS_SCRATCH.bufs = (
            np.empty((h, w), dtype=np.float32),
            np.empty((h, w), dtype=np.float32),
        )
    return bufs


def _orb_task(read, params):
    local = threading.local()
    nfeatures = params["nfeatures"]

    def task(path):
        gray = read_image(path, color=False, **read)
        if min(gray.shape) <= 2 * _ORB_EDGE:
            # ORB keeps no keypoint within its edge threshold of the border,
            # so such an image has none; OpenCV would even raise on a side of
            # 1 pixel (its pyramid cannot shrink it) instead of saying so.
            return np.zeros((0, 32), dtype=np.uint8)
        orb = getattr(local, "orb", None)
        if orb is None:  # one detector per thread
            orb = local.orb = cv2.ORB_create(nfeatures=nfeatures)
        _, des = orb.detectAndCompute(gray, None)
        if des is None:
            return np.zeros((0, 32), dtype=np.uint8)
        return des

    return task


_TASKS = {
    "ssim": _pixels_task(False),
    "tm": _pixels_task(True),
    "imagehash": _imagehash_task,
    "minhash": _minhash_task,
    "orb": _orb_task,
}


def _assemble_pixels(values, read, params):
    if not values:
        shape = (0, read["size"][1], read["size"][0]) if read["size"] else (0, 0, 0)
        return np.zeros(shape, dtype=np.uint8), None
    shapes = {v.shape for v in values}
    if len(shapes) > 1:
        listed = ", ".join(f"{s[1]}x{s[0]}" for s in sorted(shapes)[:5])
        raise ValueError(
            f"images came out at different sizes ({listed}...) but this method compares "
            "images pixel by pixel: pass size=(w, h) instead of scale"
        )
    return np.stack(values), None


def _assemble_pixels_color(values, read, params):
    data, _ = _assemble_pixels(values, read, params)
    if data.ndim == 3:  # empty
        data = data.reshape(*data.shape, 3)
    return data, None


def _assemble_imagehash(values, read, params):
    n_bytes = (params["hash_size"] ** 2 + 7) // 8
    if not values:
        return np.zeros((0, n_bytes), dtype=np.uint8), None
    return np.stack(values), None


def _assemble_minhash(values, read, params):
    counts = np.array([v.size for v in values], dtype=np.int64)
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    hashes = np.concatenate(values) if values else np.zeros(0, dtype=np.uint32)
    sig = signatures(
        hashes, offsets, num_perm=params["num_perm"], seed=params["seed"], scheme=params["scheme"]
    )
    return sig, None


def _assemble_orb(values, read, params):
    counts = np.array([v.shape[0] for v in values], dtype=np.int64)
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if values:
        data = np.ascontiguousarray(np.concatenate(values, axis=0), dtype=np.uint8)
    else:
        data = np.zeros((0, 32), dtype=np.uint8)
    return data, offsets


_ASSEMBLE = {
    "ssim": _assemble_pixels,
    "tm": _assemble_pixels_color,
    "imagehash": _assemble_imagehash,
    "minhash": _assemble_minhash,
    "orb": _assemble_orb,
}


# ---------------------------------------------------------------------------
# running


def _workers(n_threads) -> int:
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        cores = max(1, os.cpu_count() or 1)
    k = _validate.threads(n_threads)
    if k == 0:
        env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
        k = int(env) if env.isdigit() and int(env) > 0 else cores
    elif k == -1:
        k = cores
    # At most 4 per core, as the kernels: more only costs memory (a thread
    # count in the thousands could not even be started).
    return min(k, 4 * cores)


def _blas_single_thread():
    """One BLAS thread per worker (the workers are the parallelism; nested
    BLAS threads on busy cores make the pHash products several times slower)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _run(task, paths, workers: int, progress: bool, desc: str):
    """task(path) for every path; (results with None where skipped, skipped)."""
    from tqdm import tqdm

    n = len(paths)
    results: list = [None] * n
    reasons: list = [None] * n

    def one(i: int):
        try:
            results[i] = task(paths[i])
        except ImageReadError as exc:
            reasons[i] = exc.reason
        except (cv2.error, MemoryError) as exc:  # a valid file the feature step failed on
            text = str(exc).strip().splitlines()
            reasons[i] = f"failed: {text[-1] if text else type(exc).__name__}"

    bar = tqdm(total=n, disable=not progress, file=sys.stderr, desc=desc, unit="img")
    try:
        if workers <= 1 or n <= 1:
            for i in range(n):
                one(i)
                bar.update(1)
        else:
            # A bounded window of pending tasks: memory stays flat for long
            # lists and an interrupt does not wait for thousands of queued tasks.
            window = 4 * workers
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="icas-features") as ex:
                pending = set()
                try:
                    for i in range(n):
                        pending.add(ex.submit(one, i))
                        if len(pending) >= window:
                            done, pending = wait(pending, return_when=FIRST_COMPLETED)
                            for f in done:
                                f.result()
                            bar.update(len(done))
                    for f in pending:
                        f.result()
                        bar.update(1)
                except BaseException:
                    for f in pending:
                        f.cancel()
                    raise
    finally:
        bar.close()
    skipped = [(paths[i], reasons[i]) for i in range(n) if reasons[i] is not None]
    return results, skipped
