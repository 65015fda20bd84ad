"""The local Dask cluster: its workers get Dask's settings, this process keeps its own."""

from __future__ import annotations

import os

import dask
from distributed import Client

from weaklabel.parallel import local_cluster


def test_local_cluster_leaves_this_process_environment_as_it_was(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    before = dict(os.environ)
    for_workers = {key: str(value) for key, value in dask.config.get("distributed.nanny.pre-spawn-environ").items()}
    assert for_workers["OMP_NUM_THREADS"] == "1"
    with local_cluster(1) as cluster, Client(cluster) as client:
        in_worker = client.run(lambda: {key: os.environ.get(key) for key in for_workers})
    assert dict(os.environ) == before
    assert list(in_worker.values()) == [for_workers]
