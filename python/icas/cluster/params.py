"""Validation of a :class:`icas.cluster.Clusteror`'s parameters, before any
file is read or the output folder is made."""

from __future__ import annotations

import numbers
from pathlib import Path

from icas import _validate
from icas.cluster import guards, search
from icas.cluster.methods import check_method, default_threshold, split_method, threshold_range
from icas.cluster.threshold import THRESHOLD_CHOICES
from icas.io import _check_resize
from icas.similarity._ssim import WIN_SIZE as SSIM_WINDOW

OPTIONS = ("full", "dontmerge", "merge")


def check(c):
    """Validate the parameters of the Clusteror ``c``.

    Returns
    -------
    threshold : float or str
        A number, or 'auto'/'pick' (chosen later from a sample).
    rule : str
        Where the threshold came from: given, default, auto or pick.
    candidate : float or None
        The loose threshold of a verified pair's first method.
    max_size : int or None
        The checked size cap of a cluster.
    """
    candidate = _candidate(c)
    if c.option not in OPTIONS:
        raise ValueError(f"option must be one of {', '.join(OPTIONS)}, got {c.option!r}")
    bs = c.batch_size
    if isinstance(bs, bool) or not isinstance(bs, numbers.Integral) or bs < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {bs!r}")
    if c.size is not None and c.scale is not None:
        raise ValueError("give size or scale, not both")
    _validate.threads(c.num_of_threads)
    if c.method == "ssim" and c.size is not None:
        # Checked before the output folder is made, not after reading.
        (w, h), _ = _check_resize(c.size, None)
        if min(w, h) < SSIM_WINDOW:
            win = f"{SSIM_WINDOW}x{SSIM_WINDOW}"
            raise ValueError(
                f"size {w}x{h} is smaller than the {win} SSIM window: pass a size of at least {win}"
            )
    guards.check_linkage(c.linkage)
    search.check(c.candidates, c.method)
    if c.dask_scheduler is not None or c.dask_workers is not None:
        from icas.cluster import distributed

        distributed.check(c.dask_scheduler, c.dask_workers)
    max_size = guards.check_max_size(c.max_cluster_size)
    if c.threshold_plot is not None:
        from icas.cluster.picker import _matplotlib

        _matplotlib()
        if not Path(c.threshold_plot).parent.is_dir():
            raise FileNotFoundError(
                f"{c.threshold_plot}: the folder for the threshold plot does not exist"
            )
    return (*_threshold(c.threshold, c.method), candidate, max_size)


def _candidate(c):
    """The method, and the candidate threshold of a verified pair (None for
    a single method, which must not be given one)."""
    check_method(c.method)
    first, second = split_method(c.method)
    if second is not None:
        from icas.cluster.verified import check_candidate_threshold

        return check_candidate_threshold(first, c.candidate_threshold, c.method_params)
    if c.candidate_threshold is not None:
        raise ValueError(
            "candidate_threshold applies to verified methods only "
            "(two methods joined by '+', e.g. imagehash+orb)"
        )
    return None


def _threshold(threshold, method: str):
    """(threshold, rule) of the threshold parameter."""
    if threshold is None:
        return default_threshold(method), "default"
    if isinstance(threshold, str) and threshold in THRESHOLD_CHOICES:
        if threshold == "pick":
            from icas.cluster.picker import check_screen

            check_screen()  # fail before any work, never open a window that cannot show
        return threshold, threshold
    if isinstance(threshold, str):
        raise ValueError(f"threshold must be a number, 'auto' or 'pick', got {threshold!r}")
    lo, hi = threshold_range(method)
    return _validate.threshold(threshold, low=lo, high=hi), "given"
