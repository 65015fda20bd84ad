"""Torch threads and DataLoader workers chosen from the cores this process may use.

PyTorch starts one intra-op thread per core and counts neither DataLoader workers nor other jobs.
Threads and workers above the cores make OpenMP threads wait on each other at every parallel
region: on 2 busy cores the demo's training ran 4 times slower than with one thread. So the
main process gets the cores left after the workers (never more than ``OMP_NUM_THREADS`` when it
is set), and each worker one thread (PyTorch's DataLoader sets that in every worker).

On the CPU the forward and backward passes cost far more than decoding an image, so threads come
first there (one worker per 4 cores); on CUDA the GPU computes and every core but one decodes.
The worker count changes which worker reads which shard, so the data order (``config.json``
records the count; pass it to reproduce a run on another machine).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch

CORES_PER_CPU_WORKER = 4
MAX_CUDA_WORKERS = 8


@dataclass(frozen=True)
class CpuPlan:
    """The cores a process may use, its torch intra-op threads, its DataLoader workers."""

    cores: int
    threads: int
    workers: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def usable_cores() -> int:
    """Cores in this process's affinity mask (all of them where there is none), shared evenly
    between the torchrun ranks on this machine."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def auto_workers(cores: int, device: torch.device) -> int:
    """DataLoader workers for ``cores`` cores: most of them on CUDA, a few on the CPU."""
    if device.type == "cuda":
        return min(cores - 1, MAX_CUDA_WORKERS)
    return cores // CORES_PER_CPU_WORKER


def plan_cpu(workers: int | None, device: torch.device) -> CpuPlan:
    """Set torch's intra-op threads to the cores left after ``workers`` (None: ``auto_workers``)."""
    cores = usable_cores()
    workers = auto_workers(cores, device) if workers is None else workers
    threads = max(1, cores - workers)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        threads = max(1, min(threads, int(os.environ["OMP_NUM_THREADS"])))
    torch.set_num_threads(threads)
    return CpuPlan(cores, threads, workers)
