"""The local Dask cluster: its workers get Dask's settings, this process keeps its own."""

from __future__ import annotations

import os

import dask
from distributed import Client

from weaklabel.parallel import local_cluster


def test_local_cluster_sets_dask_worker_settings_in_the_workers_only(monkeypatch):
    for_workers = {key: str(value) for key, value in dask.config.get("distributed.nanny.pre-spawn-environ").items()}
    for key in for_workers:
        monkeypatch.delenv(key, raising=False)

    def settings() -> dict[str, str | None]:
        return {key: os.environ.get(key) for key in for_workers}

    with local_cluster(1) as cluster, Client(cluster) as client:
        assert list(client.run(settings).values()) == [for_workers]
    assert for_workers and set(settings().values()) == {None}
