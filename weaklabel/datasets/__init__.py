"""The datasets stage: images + weak labels → WebDataset shards (``weaklabel shards``), and checks.

``write_shards`` builds the artifact (:mod:`.writer`), ``verify_shards`` re-reads it
(:mod:`.verify`); the sample format lives in :mod:`.format`, rejection reasons in :mod:`.reasons`.

The names below are imported on first use: Dask workers import this package to run
:mod:`.partitions`, and a worker should not pay for the driver's imports (pandas) before its first partition.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {"REASONS": ".reasons", "sample_key": ".format", "verify_shards": ".verify", "write_shards": ".writer"}

__all__ = ["REASONS", "sample_key", "verify_shards", "write_shards"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
