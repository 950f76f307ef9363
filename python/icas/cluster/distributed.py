"""Batches on a Dask cluster (extra ``icas[dask]``).

With ``dask_scheduler="tcp://host:8786"`` (an existing cluster) or
``dask_workers=N`` (a :class:`distributed.LocalCluster` of N worker
processes on loopback, no dashboard), :class:`~icas.cluster.Clusteror`
sends every batch that no checkpoint holds to the workers: each reads its
images, computes their features, pairs and clusters (the same code as in
process, so the result is identical) and returns the clusters, the merge
nodes' features and the checkpoint record. The client saves the
checkpoints, merges the batches and writes the output.

Workers read the images from the paths the client lists: on a cluster of
several machines the input folder must be visible at the same path on every
worker (a shared file system). The client reads some images too (a sample
for ``threshold="auto"``, the members of clusters that span batches for
their mean similarity) and writes the output. A worker that sees the output
folder also saves the partial checkpoint of a long batch there (see
:mod:`icas.cluster.blocks`); others skip it.
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager


def _require():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "running batches on Dask needs the dask extra: pip install 'icas[dask]'"
        ) from exc
    return distributed


def check(scheduler, workers) -> None:
    """Validate the Dask options (before any work); raises ImportError
    without the extra."""
    if scheduler is not None and workers is not None:
        raise ValueError("give dask_scheduler or dask_workers, not both")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"dask_workers must be an integer >= 1, got {workers!r}")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler):
        raise ValueError(
            f"dask_scheduler must be an address such as tcp://host:8786, got {scheduler!r}"
        )
    if scheduler is not None or workers is not None:
        _require()


@contextmanager
def client(scheduler: str | None = None, workers: int | None = None):
    """A Dask client: connected to ``scheduler``, or to a LocalCluster of
    ``workers`` processes (one thread each, loopback, no dashboard), closed
    on exit."""
    dist = _require()
    if scheduler is not None:
        c = dist.Client(scheduler)
        try:
            yield c
        finally:
            c.close()
        return
    with (
        dist.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        dist.Client(cluster) as c,
    ):
        yield c


def _batch_on_worker(clusteror, index, files, threshold, key, cached, out_dir):
    worker = copy.copy(clusteror)
    worker.progress = False  # no progress bars in worker logs
    return worker._compute_batch(index, files, threshold, key, cached, out_dir)


def run_batches(clusteror, jobs, threshold: float, out_dir, c, *, progress: bool = False):
    """Compute batches on the cluster; yields (index, key, outcome) as they
    finish (outcome as returned by ``Clusteror._compute_batch``).

    ``jobs`` is a list of (index, files, key, cached checkpoint record or None)."""
    dist = _require()
    if not jobs:
        return
    remote = c.scatter(clusteror, broadcast=True)
    futures = {}
    for index, files, key, cached in jobs:
        f = c.submit(
            _batch_on_worker,
            remote,
            index,
            files,
            threshold,
            key,
            cached,
            out_dir,
            key=f"icas-batch-{index}-{time.time_ns()}",
            pure=False,
        )
        futures[f] = (index, key)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(futures), desc="batches (dask)", unit="batch")
    try:
        for f in dist.as_completed(futures):
            index, key = futures[f]
            yield index, key, f.result()
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        for f in futures:
            f.cancel()


def batches(clusteror, chunks, threshold: float, out_dir, timings: dict):
    """All batches of a run: those a checkpoint holds from it (here), the
    others on Dask. Returns the batches and the skipped files in batch order,
    as the in-process loop does; ``timings`` gets the stage times summed over
    workers and ``dask``, the wall time of the batches."""
    t = time.perf_counter()
    done, jobs = {}, []
    for index, chunk in enumerate(chunks):
        key, cached, batch = clusteror._cached_batch(index, chunk, threshold, out_dir, timings)
        if batch is not None:
            done[index] = batch
        else:
            jobs.append((index, chunk, key, cached))
    with client(clusteror.dask_scheduler, clusteror.dask_workers) as c:
        for index, key, (batch, sk, record, times, found) in run_batches(
            clusteror, jobs, threshold, out_dir, c, progress=clusteror.progress
        ):
            clusteror._save_batch(index, key, record, out_dir)
            clusteror._searches += found
            for k, v in times.items():
                timings[k] = timings.get(k, 0.0) + v
            done[index] = (batch, sk)
    timings["dask"] = time.perf_counter() - t
    results = [done[i][0] for i in range(len(chunks))]
    return results, [s for i in range(len(chunks)) for s in done[i][1]]
