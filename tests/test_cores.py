"""Torch threads and DataLoader workers chosen from the cores (weaklabel.training.cores)."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from weaklabel.training.cores import plan_cpu, usable_cores

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def give_cores(monkeypatch, cores: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)


@pytest.mark.parametrize(("cores", "device", "threads", "workers"), [
    (1, CPU, 1, 0), (2, CPU, 2, 0), (4, CPU, 3, 1), (16, CPU, 12, 4),
    (1, CUDA, 1, 0), (2, CUDA, 1, 1), (16, CUDA, 8, 8),
])
def test_auto_threads_and_workers_fill_the_cores_without_exceeding_them(monkeypatch, cores, device, threads,
                                                                          workers):
    give_cores(monkeypatch, cores)
    plan = plan_cpu(None, device)
    assert (plan.cores, plan.threads, plan.workers) == (cores, threads, workers)
    assert torch.get_num_threads() == threads


def test_explicit_workers_are_kept_and_torch_gets_the_cores_left(monkeypatch):
    give_cores(monkeypatch, 8)
    assert (plan_cpu(3, CPU).threads, plan_cpu(3, CPU).workers) == (5, 3)
    assert (plan_cpu(12, CPU).threads, plan_cpu(12, CPU).workers) == (1, 12)


def test_omp_num_threads_caps_the_threads_and_torchrun_ranks_share_the_cores(monkeypatch):
    give_cores(monkeypatch, 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert plan_cpu(0, CPU).threads == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert usable_cores() == 2 and plan_cpu(None, CPU).threads == 2


class WorkerThreads(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> int:
        return torch.get_num_threads()


def test_auto_workers_raise_no_warning_and_run_on_one_thread_each():
    workers = max(plan_cpu(None, CUDA).workers, 1)  # CUDA's rule: every core but one, without a GPU too
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        threads = [int(t) for t in DataLoader(WorkerThreads(), num_workers=workers, batch_size=None)]
    assert threads == [1, 1]
