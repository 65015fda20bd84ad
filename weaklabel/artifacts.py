"""The artifact folder every stage writes: ``manifest.json`` plus open-format files.

A manifest records what made the folder: the toolkit version, the stage, the resolved config,
fingerprints of the inputs, counts (rows in, out, rejected by reason), timings and the seed.
``weaklabel run`` compares a stored manifest with a new run's inputs and config to skip work.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from . import __version__
from .textfile import read_text

MANIFEST = "manifest.json"
LABELED_PARTS = "parts"  # the labeled folder's data, apart from its manifest and rejections
LABELED_LABELS = "labels.feather"  # its copy of the vocabulary's labels: not Parquet, so that every
                                   # *.parquet under the folder is a part or the rejections


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_files(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Path, size and content hash of each input file."""
    return [{"path": str(p), "bytes": Path(p).stat().st_size, "sha256": sha256_file(p)} for p in paths]


def fingerprint_artifact(folder: str | Path) -> dict[str, Any]:
    """An upstream artifact is identified by its manifest's hash (its inputs, config and outputs)."""
    path = Path(folder) / MANIFEST
    return {"path": str(folder), "manifest_sha256": sha256_file(path)}


def write_manifest(
    folder: str | Path,
    stage: str,
    *,
    config: dict[str, Any],
    inputs: list[dict[str, Any]],
    counts: dict[str, Any],
    timings: dict[str, float],
    seed: int | None = None,
    outputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    manifest = {
        "stage": stage,
        "weaklabel_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "config": config,
        "inputs": inputs,
        "counts": counts,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "seed": seed,
        "outputs": outputs or {},
    }
    write_json(Path(folder) / MANIFEST, manifest)
    return manifest


class ManifestError(ValueError):
    """A manifest that cannot be read, worded for the user."""


def read_manifest(folder: str | Path, stage: str | None = None) -> dict[str, Any]:
    """The manifest of an artifact folder; raise a :class:`ManifestError` naming it when it is unreadable
    (binary, cut short, edited) and a ValueError when it is another stage's."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a weaklabel artifact: {MANIFEST} is missing")
    remake = (f"make {folder} again ('weaklabel {stage}', or 'weaklabel run --force {stage}')" if stage
              else f"make {folder} again by rerunning the stage that wrote it")
    try:
        manifest = json.loads(read_text(path, f"a weaklabel manifest (JSON): {remake}"))
    except json.JSONDecodeError as error:
        raise ManifestError(f"{path} is not valid JSON ({error}): it was cut short or edited; {remake}") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path} holds a JSON {type(manifest).__name__}, not a weaklabel manifest; {remake}")
    if stage and manifest.get("stage") != stage:
        raise ValueError(f"{folder} holds a '{manifest.get('stage')}' artifact, expected '{stage}'")
    return manifest


def labeled_parts(folder: str | Path) -> list[Path]:
    """The Parquet parts of an ``assign`` folder, in order (``pd.read_parquet(folder / "parts")`` reads them all)."""
    parts = sorted((Path(folder) / LABELED_PARTS).glob("part-*.parquet"))
    if not parts:
        raise FileNotFoundError(f"{folder} holds no {LABELED_PARTS}/part-*.parquet: is it a folder written by "
                                "'weaklabel assign' (0.3 or later)?")
    return parts


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically: readers never see a half-written file."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def convert_table(source: str | Path, target: str | Path) -> None:
    """Copy a table between Parquet and Feather (Arrow IPC) files, by their suffixes, atomically."""
    import pyarrow.parquet as pq
    from pyarrow import feather

    source, target = Path(source), Path(target)
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist")
    table = feather.read_table(source) if source.suffix == ".feather" else pq.read_table(source)
    tmp = target.with_name(target.name + ".tmp")
    if target.suffix == ".feather":
        feather.write_feather(table, tmp)
    else:
        pq.write_table(table, tmp)
    os.replace(tmp, target)


def write_parquet(frame: pd.DataFrame, path: str | Path, schema=None) -> None:
    """Write Parquet atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), tmp)
    os.replace(tmp, path)


def embedding_column(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """Rows of a float32 matrix as an Arrow fixed-size list column."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def write_embeddings(path: str | Path, ids: Sequence[str], vectors: np.ndarray,
                     extra: dict[str, Sequence] | None = None) -> None:
    """The embeddings file: Parquet with ``id`` (string) and ``embedding`` (fixed-size list<float32>),
    plus any ``extra`` columns."""
    import pyarrow.parquet as pq

    columns = {"id": pa.array([str(i) for i in ids], pa.string()), "embedding": embedding_column(vectors)}
    columns.update({name: pa.array(list(values)) for name, values in (extra or {}).items()})
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.table(columns), tmp)
    os.replace(tmp, path)


def read_embeddings(path: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """``(other columns, matrix)`` of an embeddings file; row i of the matrix is row i of the frame."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    column = table.column("embedding").combine_chunks()
    matrix = column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1).astype(np.float32, copy=False)
    return table.drop(["embedding"]).to_pandas(), matrix


class Timer:
    """Named wall-clock sections: ``with timer("embed"): ...``; ``timer.seconds`` holds the totals."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
