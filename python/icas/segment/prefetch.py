"""Background pre-segmentation of the images around the one being painted.

Segmenting a photo takes from a fraction of a second to tens of seconds, so
the painter asks for the neighbours of the current image (``thread_range``
on each side) to be read and segmented in worker threads while the person
paints; moving to the next image then finds its labels ready. A failure in
a worker is reported at once through ``on_error`` and again, as a
:class:`SegmentError`, to whoever asks for that image: it is never swallowed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Loaded:
    """An image ready to paint: its ``path``, BGR ``image`` ((h, w, 3) uint8)
    and ``labels`` ((h, w) int32), or ``labels=None`` when the method is
    interactive (GrabCut, prompted SAM) and the labels come from a window."""

    path: Path
    image: np.ndarray
    labels: np.ndarray | None


class SegmentError(Exception):
    """An image that could not be read or segmented: ``path`` and a one-line ``reason``."""

    def __init__(self, path, reason: str):
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = Path(path)
        self.reason = reason


def _reason(exc: BaseException) -> str:
    """One line saying why ``exc`` happened."""
    reason = getattr(exc, "reason", None)  # icas.io.ImageReadError carries a bare reason
    if isinstance(reason, str) and reason:
        return reason
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Prefetcher:
    """Loads images (``job(path) -> Loaded``) ahead of time in worker threads.

    Parameters
    ----------
    paths : sequence of path
        The images, in painting order.
    job : callable
        ``job(path) -> Loaded``; raises on a bad image (any exception: it
        becomes a :class:`SegmentError` with a one-line reason).
    thread_range : int, default 2
        How many images before and after the current one to prepare; 0
        prepares nothing ahead (each image is loaded when asked for).
    workers : int, default 2
        Worker threads.
    on_error : callable, optional
        ``on_error(path, reason)``, called from the worker thread as soon as an
        image fails.

    Notes
    -----
    Results are kept only for images within ``thread_range`` of the current
    one, so memory stays bounded on large folders. Arrays handed out are
    read-only (the painter copies what it edits), so a cached result is never
    changed by painting.
    """

    def __init__(
        self,
        paths: Sequence,
        job: Callable[[Path], Loaded],
        *,
        thread_range: int = 2,
        workers: int = 2,
        on_error: Callable[[Path, str], None] | None = None,
    ):
        if isinstance(thread_range, bool) or not isinstance(thread_range, int) or thread_range < 0:
            raise ValueError(f"thread_range must be an integer >= 0, got {thread_range!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.paths = [Path(p) for p in paths]
        self.job = job
        self.thread_range = thread_range
        self.on_error = on_error
        #: path -> one-line reason, for every image that failed so far.
        self.errors: dict[str, str] = {}
        self._futures: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="icas-prefetch")
        self._closed = False

    def __len__(self) -> int:
        return len(self.paths)

    def _run(self, i: int) -> Loaded:
        path = self.paths[i]
        try:
            loaded = self.job(path)
        except Exception as exc:  # any failure of one image is reported, not raised here
            reason = _reason(exc)
            with self._lock:
                self.errors[str(path)] = reason
            if self.on_error is not None:
                self.on_error(path, reason)
            raise SegmentError(path, reason) from exc
        for a in (loaded.image, loaded.labels):
            if a is not None:
                a.setflags(write=False)
        return loaded

    def _submit(self, i: int) -> Future:
        with self._lock:
            fut = self._futures.get(i)
            if fut is None or fut.cancelled():
                if self._closed:
                    raise RuntimeError("the prefetcher is closed")
                fut = self._futures[i] = self._pool.submit(self._run, i)
            return fut

    def around(self, i: int) -> None:
        """Make ``i`` the current image: start its neighbours, drop the others."""
        lo, hi = i - self.thread_range, i + self.thread_range
        with self._lock:
            for j in [j for j in self._futures if not lo <= j <= hi]:
                self._futures.pop(j).cancel()  # cancels only what has not started
        # Nearest first: the next image matters most, then the previous one.
        for d in range(1, self.thread_range + 1):
            for j in (i + d, i - d):
                if 0 <= j < len(self.paths):
                    self._submit(j)

    def ready(self, i: int) -> bool:
        """Whether image ``i`` is loaded (or has failed) already."""
        with self._lock:
            fut = self._futures.get(i)
        return fut is not None and fut.done()

    def get(self, i: int, timeout: float | None = None) -> Loaded:
        """Image ``i``, waiting for its worker (or starting one) if needed.

        Raises
        ------
        SegmentError
            When the image could not be read or segmented.
        IndexError
            For an index outside the folder.
        TimeoutError
            When ``timeout`` seconds pass first.
        """
        if not 0 <= i < len(self.paths):
            raise IndexError(f"image index {i} outside 0..{len(self.paths) - 1}")
        while True:
            fut = self._submit(i)
            try:
                return fut.result(timeout)
            except CancelledError:  # dropped by around() just now: ask again
                continue

    def close(self) -> None:
        """Cancel what has not started and let running workers finish in the background."""
        with self._lock:
            self._closed = True
            for fut in self._futures.values():
                fut.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
