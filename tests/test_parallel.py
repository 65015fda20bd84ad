"""The local Dask cluster: its workers get Dask's settings, this process keeps its own, and a second cluster's
forked workers return large results as the first's do."""

from __future__ import annotations

import os

import dask
import numpy as np
import pytest
from distributed import Client

from weaklabel.parallel import local_cluster, run_partitions


def test_local_cluster_sets_dask_worker_settings_in_the_workers_only(monkeypatch):
    for_workers = {key: str(value) for key, value in dask.config.get("distributed.nanny.pre-spawn-environ").items()}
    for key in for_workers:
        monkeypatch.delenv(key, raising=False)

    def settings() -> dict[str, str | None]:
        return {key: os.environ.get(key) for key in for_workers}

    with local_cluster(1) as cluster, Client(cluster) as client:
        assert list(client.run(settings).values()) == [for_workers]
    assert for_workers and set(settings().values()) == {None}


def _large_result(seed: int) -> np.ndarray:
    return np.full(2_000_000, seed, dtype=np.float64)  # 16 MB: over distributed's 10 MiB offload threshold


@pytest.mark.timeout(180)
def test_local_clusters_started_one_after_another_return_large_results():
    # the first cluster's results start distributed's offload thread here; the second's forked workers need their own
    for _ in range(2):
        results = run_partitions(_large_result, [1, 2], workers=2, progress=False)
        assert [float(r[0]) for r in results] == [1.0, 2.0]
