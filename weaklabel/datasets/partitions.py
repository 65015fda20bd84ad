"""The work of the shards stage that runs on Dask workers: partitions of images, then shards.

Kept apart from :mod:`.writer` (the driver: planning, metadata, manifest) so that a worker imports
only what it needs (pyarrow and Pillow, no pandas): on a small machine every worker process pays
its imports before it starts its first partition. See :mod:`.writer` for how the phases fit together.

Work files of partition ``i`` under ``out/_work``: ``input-i.parquet`` (its labeled rows, written
by the driver), ``part-i.bin`` (encoded images back to back) and ``part-i.parquet`` (one index row
per input row, :data:`INDEX_SCHEMA`), renamed into place last: an index that exists belongs to a
finished partition.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import chain, groupby, islice
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from ..facets import FACETS_FIELD
from .fetch import FetchOptions, fetch
from .format import member_bytes, sample_key, sample_members, top_label, write_tar
from .images import EncodedImage, ImageOptions, process_image
from .reasons import Rejected

T = TypeVar("T")
R = TypeVar("R")

WORK = "_work"
WRITE_BUFFER = 1 << 20  # few large writes instead of three small ones per sample
FETCH_CHUNK = 8  # rows fetched by one pool call
INDEX_SCHEMA = pa.schema([
    ("row", pa.int64()), ("id", pa.string()), ("image", pa.string()), ("status", pa.string()),
    ("detail", pa.string()), ("sha256", pa.string()), ("key", pa.string()), ("ext", pa.string()),
    ("offset", pa.int64()), ("length", pa.int64()), ("sample_bytes", pa.int64()), ("meta", pa.binary()),
    ("cls", pa.string()), ("labels", pa.list_(pa.int32())), ("passed_through", pa.bool_()),
    ("fingerprint", pa.binary()),
])


@dataclass(frozen=True)
class Job:
    """What writing a partition or a shard needs; plain data, pickled to the workers."""

    out: str
    fetch: FetchOptions
    image: ImageOptions
    keep_unlabelled: bool
    carry: tuple[str, ...]
    threads: int
    fingerprint: bool  # compute each image's near-duplicate fingerprint

    @property
    def work(self) -> Path:
        return Path(self.out) / WORK


@dataclass(frozen=True)
class ShardPlan:
    """The entries of one shard to write, in input order."""

    name: str
    entries: tuple[tuple[int, int], ...]  # (partition, position in its index), in input order


@dataclass(frozen=True)
class _Outcome:
    reason: str | None = None
    detail: str = ""
    sha256: str | None = None
    image: EncodedImage | None = None


def input_path(work: Path, index: int) -> Path:
    return work / f"input-{index:05d}.parquet"


def index_path(work: Path, index: int) -> Path:
    return work / f"part-{index:05d}.parquet"


def blob_path(work: Path, index: int) -> Path:
    return work / f"part-{index:05d}.bin"


# ------------------------------------------------------------------------------------------------
# phase 1: a partition of images
# ------------------------------------------------------------------------------------------------

def process_partition(job: Job, index: int) -> int:
    """Fetch, check and encode one partition's images into its work files; 1 if it was done already.

    The thread pool only fetches (ahead of need, in chunks of rows); hashing and pixel work happen
    in this thread, one image at a time, so a worker keeps one core busy without its threads
    fighting over the GIL: cores are used by running one worker process each."""
    done = index_path(job.work, index)
    if done.exists():
        return 1
    rows = pq.read_table(input_path(job.work, index)).to_pylist()
    names = _label_names(Path(job.out))
    blob = blob_path(job.work, index)
    records, offset = [], 0
    chunks = [rows[start:start + FETCH_CHUNK] for start in range(0, len(rows), FETCH_CHUNK)]
    with open(f"{blob}.tmp", "wb", buffering=WRITE_BUFFER) as handle, ThreadPoolExecutor(job.threads) as pool:
        fetched_rows = chain.from_iterable(_ordered(pool, partial(_fetch_rows, job), chunks, most=job.threads))
        for row, fetched in zip(rows, fetched_rows):
            outcome = _encode_row(job, fetched)
            records.append(_record(row, outcome, names, job.carry, offset))
            if outcome.image is not None:
                handle.write(outcome.image.data)
                offset += len(outcome.image.data)
    pq.write_table(pa.Table.from_pylist(records, INDEX_SCHEMA), f"{done}.tmp")
    os.replace(f"{blob}.tmp", blob)
    os.replace(f"{done}.tmp", done)
    return 0


def _label_names(out: Path) -> dict[int, str]:
    labels = pq.read_table(out / "labels.parquet", columns=["label_id", "name"]).to_pydict()
    return dict(zip(labels["label_id"], labels["name"]))


def _ordered(pool: ThreadPoolExecutor, func: Callable[[T], R], items: Iterable[T], most: int) -> Iterator[R]:
    """``map(func, items)`` on the pool, in order, keeping just enough calls in flight.

    The window starts at one call and grows by one each time a result is not ready when asked
    for, up to ``most``: slow sources (URLs) get many concurrent fetches, while fast local files
    stay at one or two and spare the consumer the GIL hand-offs of a busy pool."""
    source, pending, window = iter(items), deque(), 1
    while True:
        pending.extend(pool.submit(func, item) for item in islice(source, max(0, window - len(pending))))
        if not pending:
            return
        if not pending[0].done():
            window = min(most, window + 1)
        yield pending.popleft().result()


def _fetch_rows(job: Job, rows: list[dict[str, Any]]) -> list[bytes | Rejected]:
    """A chunk of rows per pool call: one thread hand-off per chunk instead of per image, which
    matters for small local files, while ``threads`` requests still run at once for URLs."""
    return [_fetch_row(job, row) for row in rows]


def _fetch_row(job: Job, row: dict[str, Any]) -> bytes | Rejected:
    """The original bytes of a listing's image, or why there are none."""
    if not row["labels"] and not job.keep_unlabelled:
        return Rejected("no_labels")
    try:
        return fetch(row["image"] or "", job.fetch)
    except Rejected as rejected:
        return rejected
    except Exception as error:  # noqa: BLE001 - one row's unforeseen failure is its rejection, not the run's end
        return Rejected("fetch_error", f"{type(error).__name__}: {error}")


def _encode_row(job: Job, fetched: bytes | Rejected) -> _Outcome:
    if isinstance(fetched, Rejected):
        return _Outcome(fetched.reason, fetched.detail)
    try:
        image = process_image(fetched, job.image, fingerprint=job.fingerprint)
    except Rejected as rejected:
        return _Outcome(rejected.reason, rejected.detail)
    except Exception as error:  # noqa: BLE001 - as in _fetch_row (a MemoryError included)
        rejected = Rejected("decode_error", f"{type(error).__name__}: {error}")
        return _Outcome(rejected.reason, rejected.detail)
    return _Outcome(sha256=hashlib.sha256(fetched).hexdigest(), image=image)


def _record(row: dict[str, Any], outcome: _Outcome, names: Mapping[int, str], carry: Sequence[str],
            offset: int) -> dict[str, Any]:
    """The index row of one listing; for a written one, its json sidecar and byte range too."""
    record = {"row": row["row"], "id": row["id"], "image": row["image"], "status": outcome.reason or "ok",
              "detail": outcome.detail}
    image = outcome.image
    if image is None:
        return record
    labels, scores = list(row["labels"] or []), [round(float(s), 6) for s in row["scores"] or []]
    meta = {"id": row["id"], "labels": labels, "label_names": _names_of(labels, names), "scores": scores,
            "width": image.width, "height": image.height, **{c: _json_value(row[c]) for c in carry}}
    if row.get(FACETS_FIELD) is not None:
        meta[FACETS_FIELD] = [int(label) for label in row[FACETS_FIELD]]
    meta_bytes = json.dumps(meta, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    key = sample_key(row["id"])
    cls = str(top_label(labels, scores)) if labels else None
    members = sample_members(key, image.ext, image.data, meta_bytes, cls)
    return {**record, "sha256": outcome.sha256, "key": key, "ext": image.ext, "offset": offset,
            "length": len(image.data), "sample_bytes": sum(member_bytes(n, len(d)) for n, d in members),
            "meta": meta_bytes, "cls": cls, "labels": labels, "passed_through": image.passed_through,
            "fingerprint": image.fingerprint}


def _names_of(labels: Sequence[int], names: Mapping[int, str]) -> list[str]:
    unknown = [label for label in labels if label not in names]
    if unknown:
        raise ValueError(f"label ids {unknown} are not in the vocabulary's labels.parquet")
    return [names[label] for label in labels]


def _json_value(value: Any) -> Any:
    """NaN and infinities are not JSON; they become null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


# ------------------------------------------------------------------------------------------------
# phase 3: a shard
# ------------------------------------------------------------------------------------------------

def write_shard(job: Job, plan: ShardPlan) -> dict[str, Any]:
    """Assemble one shard from the work files, hashed while written; a shard a resumed run
    finished is kept as it is (``resumed``: the driver measures it)."""
    path = Path(job.out) / plan.name
    if path.exists():
        return {"name": plan.name, "samples": len(plan.entries), "resumed": 1}
    tmp = path.with_name(f"{plan.name}.tmp")
    try:
        with open(tmp, "wb", buffering=WRITE_BUFFER) as handle:
            stats = write_tar(handle, _samples(job.work, plan.entries))
    except OSError as error:
        error.filename = error.filename or str(tmp)  # a failed write names no file; the error message should
        raise
    os.replace(tmp, path)
    return {"name": plan.name, "samples": stats.samples, "bytes": stats.bytes, "sha256": stats.sha256, "resumed": 0}


def _samples(work: Path, entries: Iterable[tuple[int, int]]) -> Iterator[list[tuple[str, bytes]]]:
    """The tar members of each entry; entries come in input order, so each work file is opened once."""
    for partition, group in groupby(entries, key=itemgetter(0)):
        index = pq.read_table(index_path(work, partition),
                              columns=["key", "ext", "offset", "length", "meta", "cls"]).to_pydict()
        with open(blob_path(work, partition), "rb") as blob:
            for _, position in group:
                blob.seek(index["offset"][position])
                data = blob.read(index["length"][position])
                yield sample_members(index["key"][position], index["ext"][position], data,
                                     index["meta"][position], index["cls"][position])
