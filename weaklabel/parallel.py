"""Running a function over partitions: inline, on a local Dask cluster, or on an existing one.

Stages that are embarrassingly parallel over listings (term counting, assignment, shard writing)
describe their work as a list of picklable partitions and a function of one partition. Each
partition writes its own output files under deterministic names, so a rerun can skip finished
partitions and a crashed one is rerun alone; or it returns a small result that the driver adds
up as results arrive (:func:`iter_partitions`).

- ``scheduler="tcp://host:8786"``: an existing cluster (``dask scheduler`` / ``dask worker``);
  every worker must see the same paths (a shared filesystem or object store).
- otherwise ``workers`` processes on a ``distributed.LocalCluster`` (default: the number of
  cores), nothing to set up;
- ``workers=1`` or a single partition: inline in this process (no Dask start-up cost, easy to debug).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
CONNECT_TIMEOUT_S = 5  # an existing scheduler answers in well under a second; a wrong address should not hang


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _fresh_offload_thread() -> None:
    """Give a forked process its own thread for distributed's offloaded (de)serialization.

    distributed serializes a message over 10 MiB on a module-level one-thread executor. Once this
    process has used it, a forked worker inherits the executor with that thread recorded but not
    running, so the worker's first large result waits forever (a sample of listings did).
    """
    utils = sys.modules.get("distributed.utils")
    if utils is not None:
        utils._offload_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="Dask-Offload")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_offload_thread)


def local_cluster(workers: int) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` single-threaded processes, started.

    On Linux the worker processes are forked, so they start with this process's imports done:
    spawned ones spend about a second each re-importing pyarrow and Pillow before their first
    partition, which on a small machine is a large share of a stage's time. Elsewhere (macOS does
    not allow fork once some system libraries are loaded) they are spawned, Dask's default.
    """
    import dask
    from distributed import LocalCluster

    method = "fork" if sys.platform.startswith("linux") else "spawn"
    # Dask writes its "pre-spawn" worker settings (OMP_NUM_THREADS=1, MALLOC_TRIM_THRESHOLD_) into
    # this process's environment, at start and at every worker restart; left there, a torch imported
    # later runs single-threaded and training takes them for the user's allocator settings. Given as
    # the workers' own environment instead, they are set in the workers only.
    worker_environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}),
                      **dask.config.get("distributed.nanny.environ", {})}
    settings = {"distributed.worker.multiprocessing-method": method,
                "distributed.nanny.pre-spawn-environ": {}, "distributed.nanny.environ": worker_environ}
    with dask.config.set(settings):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                            silence_logs=logging.ERROR)


def _connect(scheduler: str) -> Any:
    """A client of the Dask scheduler at ``scheduler``; a ValueError naming it when it does not answer soon."""
    from distributed import Client

    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot reach the Dask scheduler at {scheduler!r} ({error}): start one there "
                         f"('dask scheduler', then 'dask worker {scheduler}'), fix the address, or leave out "
                         "--scheduler (scheduler in a pipeline file) to run on this machine") from None


def run_partitions(
    func: Callable[[T], Any],
    partitions: Sequence[T],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    desc: str = "partitions",
) -> list[Any]:
    """``[func(p) for p in partitions]``, run in parallel as configured; results keep the partitions' order."""
    return list(iter_partitions(func, partitions, workers=workers, scheduler=scheduler, progress=progress, desc=desc))


def iter_partitions(
    func: Callable[[T], Any],
    partitions: Sequence[T],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    desc: str = "partitions",
) -> Iterator[Any]:
    """``func(p)`` for each partition, run as :func:`run_partitions` does, yielded in the partitions'
    order as soon as it and those before it are done. A result is fetched from its worker only then
    and not kept here, so a caller that adds the results up holds its total and no list of them."""
    workers = workers or default_workers()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    bar = tqdm(total=len(partitions), desc=desc, unit="part", disable=not progress)
    if scheduler is None and (workers == 1 or len(partitions) <= 1):
        with bar:  # closed before an error, which then starts a line of its own
            for partition in partitions:
                result = func(partition)
                bar.update()
                yield result
            return
    from distributed import Client, as_completed

    cluster = local_cluster(min(workers, len(partitions))) if scheduler is None else None
    try:
        with _connect(scheduler) if scheduler else Client(cluster) as client:
            futures = client.map(func, list(partitions), pure=False)
            position = {future.key: i for i, future in enumerate(futures)}
            done: dict[int, Any] = {}
            following = 0
            for future in as_completed(futures):
                bar.update()
                done[position[future.key]] = future
                while following in done:
                    ready = done.pop(following)
                    following += 1
                    result = ready.result()
                    ready.release()
                    yield result
    finally:
        bar.close()
        if cluster is not None:
            cluster.close()
