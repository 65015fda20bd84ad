"""The ``shards`` stage: a ``labeled/`` artifact and its images → WebDataset shards per split.

It follows img2dataset's reader → fetcher → resizer → writer split, in phases that make the
result deterministic (the same shards for any number of workers) and resumable:

0. **read** (driver): the labeled parts are cut into partitions of consecutive rows, written to
   ``_work/input-NNNNN.parquet``; ``_work/state.json`` records a hash of the config and input.
1. **images** (each partition on a Dask worker, :func:`.partitions.process_partition`): a thread pool
   fetches the images ahead (:mod:`.fetch`) while the calling thread hashes the original bytes and
   checks/decodes/resizes/encodes them (:mod:`.images`). The encoded images go back to back into
   ``_work/part-NNNNN.bin`` and one index row per input row (outcome, sha256, byte range, json
   sidecar) into ``_work/part-NNNNN.parquet``, renamed into place last: an index that exists
   belongs to a finished partition.
2. **plan** (driver, reads only the small indexes): in input order the first listing with given
   image bytes wins and later ones become duplicates, *before* splitting, so one image never
   lands in two splits; the winners' near-copies are grouped by their fingerprints (:mod:`.near`),
   and every group gets its split from a hash of its first listing's id, so the copies found never
   straddle splits either (``near_duplicates="drop"`` writes only the first); each split is cut into
   shards by ``max_samples`` and ``max_bytes`` (tar sizes are known exactly in advance).
3. **shards** (shard by shard, :func:`.partitions.write_shard`): samples are copied from the work
   files into ``{split}-NNNNNN.tar.tmp`` (hashed while written), renamed when complete. This is
   disk-bound copying, so without ``scheduler`` it runs in this process rather than paying for a
   second local cluster; with one, on the cluster.
4. **finish** (driver): ``rejected.parquet``, ``duplicates.parquet``, ``labels.parquet``, timm's
   ``_info.json``, a wids index per split, ``gallery.html`` (:mod:`.gallery`, thumbnails read from
   the shards), then ``manifest.json``; ``_work/`` is removed.

The whole run holds the folder's lock and removes only files the stage writes (see
:mod:`weaklabel.folders`): another process writing the same folder, or a folder holding other
files (without ``overwrite``), is refused before anything is written.

A rerun after a kill finds ``state.json`` with the same hash and keeps finished partitions and
shards; with a different hash (options or input changed) it starts over and says so.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..artifacts import (
    LABELED_LABELS,
    Timer,
    convert_table,
    fingerprint_artifact,
    labeled_parts,
    read_manifest,
    sha256_file,
    write_json,
    write_manifest,
    write_parquet,
    write_text,
)
from ..facets import FACETS_FIELD
from ..folders import OutputFolder, Outputs, output_folder
from ..parallel import run_partitions
from . import near, partitions
from .card import CARD, dataset_card
from .fetch import DEFAULT_USER_AGENT, FetchOptions
from .format import (
    DEFAULT_SPLITS,
    parse_splits,
    shard_name,
    split_of,
    tar_bytes,
    timm_info,
    wids_index,
)
from .gallery import GALLERY, write_gallery
from .images import PILLOW_MAX_PIXELS, ImageOptions
from .partitions import WORK, Job, ShardPlan
from .reasons import REASONS

logger = logging.getLogger(__name__)

STATE = "state.json"
OUTPUTS = Outputs("shards", frozenset({"_info.json", "rejected.parquet", "duplicates.parquet", "labels.parquet", CARD,
                                       GALLERY}),
                  patterns=(r"\w+-\d{6}\.tar", r"\w+\.index\.json"), folders=(WORK,), markers=(WORK,))
INPUT_COLUMNS = ("id", "image", "labels", "scores")
SAMPLE_FIELDS = ("id", "labels", "label_names", "scores", "width", "height", FACETS_FIELD)
MIN_PARTITIONS = 16  # small inputs are cut finer so every worker gets work...
MIN_PARTITION_ROWS = 100  # ...but not so fine that per-partition overhead dominates

REJECTED_IMAGES_SCHEMA = pa.schema([("id", pa.string()), ("image", pa.string()), ("reason", pa.string()),
                             ("detail", pa.string())])
DUPLICATES_SCHEMA = pa.schema([("id", pa.string()), ("duplicate_of", pa.string()), ("split", pa.string()),
                               ("kind", pa.string()), ("distance", pa.float64()), ("group", pa.string()),
                               ("written", pa.bool_())])


def write_shards(
    labeled: str | Path,
    out: str | Path,
    *,
    images_root: str | Path = ".",
    size: int = 256,
    resize_mode: str = "keep_ratio",
    resize_only_if_bigger: bool = False,
    image_format: str = "jpg",
    quality: int = 95,
    min_size: int = 0,
    max_pixels: int = PILLOW_MAX_PIXELS,
    timeout: float = 10.0,
    retries: int = 2,
    backoff: float = 0.5,
    max_download_bytes: int = 20_000_000,
    user_agent: str = DEFAULT_USER_AGENT,
    allow_outside_root: bool = False,
    fetch_threads: int = 16,
    keep_unlabelled: bool = False,
    near_duplicates: str = "group",
    near_similarity: float = near.MIN_SIMILARITY,
    splits: str | Mapping[str, float] = DEFAULT_SPLITS,
    carry: Sequence[str] = (),
    max_samples: int = 10_000,
    max_bytes: int = 1_000_000_000,
    partition_rows: int = 1000,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the shards of ``labeled`` to ``out`` (see the module docstring); return the manifest.

    ``overwrite``: write even if ``out`` holds files this stage did not write (they are kept).

    ``near_duplicates``: ``"group"`` writes near-copies (:mod:`.near`) in the split of their group's
    first listing; ``"drop"`` writes only that first one (the others are recorded as duplicates);
    ``"off"`` finds byte-identical copies only. ``near_similarity``: the least similarity (cosine, of
    their perceptual signatures) of two near-copies.

    Image options mean what img2dataset's do (see :mod:`weaklabel.datasets.images`); fetch
    options are described in :mod:`weaklabel.datasets.fetch`; rejection reasons in
    :data:`weaklabel.datasets.reasons.REASONS`.
    """
    image, fetcher, near_options, split_fractions, carry = checked_options(
        {k: v for k, v in locals().items() if k not in ("labeled", "out", "progress", "overwrite")})
    labeled, out = Path(labeled).resolve(), Path(out).resolve()
    upstream = read_manifest(labeled, "assign")
    files = labeled_parts(labeled)
    columns = _input_columns(files[0], carry)
    config = {"labeled": str(labeled), "vocab": upstream["config"]["vocab"], **asdict(image), **asdict(fetcher),
              "keep_unlabelled": keep_unlabelled, "near_duplicates": near_duplicates,
              "near_similarity": near_similarity, "splits": split_fractions, "carry": list(carry),
              "max_samples": max_samples, "max_bytes": max_bytes, "partition_rows": partition_rows}
    job = Job(str(out), fetcher, image, keep_unlabelled, carry, fetch_threads, near_options.mode != "off")
    timer = Timer()
    with output_folder(out, OUTPUTS, overwrite=overwrite) as folder:
        with timer("read"):
            status, n_partitions = _prepare(labeled, files, columns, folder, config)
        with timer("images"):
            resumed = run_partitions(partial(partitions.process_partition, job), range(n_partitions), workers=workers,
                                     scheduler=scheduler, progress=progress, desc="images")
        with timer("plan"):
            frame, planned = _plan(job.work, n_partitions, split_fractions, near_options, max_samples, max_bytes)
        with timer("shards"):
            shards = run_partitions(partial(partitions.write_shard, job), planned, workers=workers if scheduler else 1,
                                    scheduler=scheduler, progress=progress, desc="shards")
        with timer("finish"):
            shards = [_measure_resumed(out, shard) for shard in shards]
            outputs = _write_metadata(out, frame, shards, split_fractions, image_format, carry)
        with timer("gallery"):
            write_gallery(out, outputs["splits"], vocab_report=Path(config["vocab"]) / "report.html")
        outputs.update(run=status, partitions=n_partitions, partitions_resumed=sum(resumed),
                       shards_resumed=sum(shard.pop("resumed") for shard in shards))
        manifest = write_manifest(out, "shards", config=config, inputs=[fingerprint_artifact(labeled)],
                                  counts=_counts(frame), timings=timer.seconds, outputs=outputs)
        shutil.rmtree(job.work)
    return manifest


def checked_options(options: Mapping[str, Any]
                    ) -> tuple[ImageOptions, FetchOptions, NearOptions, dict[str, float], tuple[str, ...]]:
    """``write_shards``' options (the given ones over its defaults) validated: the image, fetch and
    near-duplicate options, the split fractions and the carried columns; a bad one raises ValueError."""
    given = {name: p.default for name, p in inspect.signature(write_shards).parameters.items()
             if p.default is not p.empty} | dict(options)
    image = ImageOptions(given["size"], given["resize_mode"], given["resize_only_if_bigger"], given["image_format"],
                         given["quality"], given["min_size"], given["max_pixels"])
    fetcher = FetchOptions(str(Path(given["images_root"]).resolve()), given["timeout"], given["retries"],
                           given["backoff"], given["max_download_bytes"], given["user_agent"],
                           given["allow_outside_root"])
    _check_counts(**{name: given[name] for name in ("fetch_threads", "max_samples", "max_bytes", "partition_rows")})
    near_options = NearOptions(given["near_duplicates"], given["near_similarity"])
    carry = tuple(given["carry"])
    _check_carry(carry)
    return image, fetcher, near_options, parse_splits(given["splits"]), carry


def _check_counts(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _check_carry(carry: tuple[str, ...]) -> None:
    clashes = [column for column in carry if column in SAMPLE_FIELDS]
    if clashes:
        raise ValueError(f"carry names {clashes}, which the json sidecar already holds: {list(SAMPLE_FIELDS)}")


# ------------------------------------------------------------------------------------------------
# phase 0: read
# ------------------------------------------------------------------------------------------------

def _prepare(labeled: Path, files: Sequence[Path], columns: list[str], folder: OutputFolder,
             config: dict[str, Any]) -> tuple[str, int]:
    """Resume when ``_work`` holds a run with the same config and input; else start over.

    Returns how the run started ("fresh", "resumed", "restarted") and the number of partitions.
    """
    config_hash = hashlib.sha256(
        json.dumps({"config": config, "input": fingerprint_artifact(labeled)}, sort_keys=True).encode()
    ).hexdigest()
    out = folder.path
    state_path = out / WORK / STATE
    state = json.loads(state_path.read_text()) if state_path.is_file() else None
    if state and state["config_hash"] == config_hash:
        return "resumed", state["partitions"]
    if state:
        logger.warning("%s holds an interrupted run with other options or input; starting over", out)
    folder.clear()
    (out / WORK).mkdir()
    convert_table(labeled / LABELED_LABELS, out / "labels.parquet")
    n_partitions = _write_inputs(files, columns, out / WORK, config["partition_rows"])
    write_json(state_path, {"config_hash": config_hash, "partitions": n_partitions})
    return ("restarted" if state else "fresh"), n_partitions


def _write_inputs(files: Sequence[Path], columns: list[str], work: Path, partition_rows: int) -> int:
    """Cut the labeled parts into partitions of consecutive rows (with their global row number)."""
    total = sum(pq.ParquetFile(path).metadata.num_rows for path in files)
    rows = min(partition_rows, max(MIN_PARTITION_ROWS, math.ceil(total / MIN_PARTITIONS)))
    ids: list[pa.Array] = []
    n_partitions = 0
    for table in _chunks(files, columns, rows):
        start = n_partitions * rows
        table = table.append_column("row", pa.array(np.arange(start, start + len(table)), pa.int64()))
        pq.write_table(table, partitions.input_path(work, n_partitions))
        ids.extend(table.column("id").chunks)
        n_partitions += 1
    _check_unique(pa.chunked_array(ids, pa.string()))
    return n_partitions


def _input_columns(path: Path, carry: Sequence[str]) -> list[str]:
    names = pq.ParquetFile(path).schema_arrow.names
    missing = [column for column in (*INPUT_COLUMNS, *carry) if column not in names]
    if missing:
        raise ValueError(f"{path.parent} lacks column(s) {missing} (named by carry: --carry, or carry under [shards] "
                         f"in a pipeline file?); its columns are {names}")
    facets = [FACETS_FIELD] if FACETS_FIELD in names else []  # labels from a vocabulary with facets
    return [*INPUT_COLUMNS, *facets, *carry]


def _chunks(files: Sequence[Path], columns: list[str], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows (the last one shorter) across file boundaries."""
    pending: list[pa.Table] = []
    count = 0
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
            pending.append(pa.Table.from_batches([batch]))
            count += batch.num_rows
            while count >= rows:
                table = pa.concat_tables(pending, promote_options="default")
                yield table.slice(0, rows)
                pending, count = [table.slice(rows)], count - rows
    if count:
        yield pa.concat_tables(pending, promote_options="default")


def _check_unique(ids: pa.ChunkedArray) -> None:
    if len(ids.unique()) != len(ids):
        frame = ids.to_pandas()
        raise ValueError(f"listing ids repeat in the labeled input, e.g. {frame[frame.duplicated()].iloc[0]!r}")


# ------------------------------------------------------------------------------------------------
# phase 2: plan (driver)
# ------------------------------------------------------------------------------------------------

PLAN_COLUMNS = ["row", "id", "image", "status", "detail", "sha256", "key", "sample_bytes", "labels", "passed_through",
                "fingerprint"]


@dataclass(frozen=True)
class NearOptions:
    """How near-duplicate images are handled (``write_shards``' ``near_duplicates`` and ``near_similarity``)."""

    mode: str = "group"
    similarity: float = near.MIN_SIMILARITY

    def __post_init__(self) -> None:
        if self.mode not in near.NEAR_MODES:
            raise ValueError(f"near_duplicates must be one of {near.NEAR_MODES}, got {self.mode!r}")
        if not 0 < self.similarity <= 1:
            raise ValueError(f"near_similarity must be in (0, 1], got {self.similarity}")


def _plan(work: Path, n_partitions: int, splits: Mapping[str, float], near_options: NearOptions, max_samples: int,
          max_bytes: int) -> tuple[pd.DataFrame, list[ShardPlan]]:
    """Every input row with its fate (status, split, duplicate_of, kind), and the shards to write."""
    frame = _assign_splits(_read_indexes(work, n_partitions), splits, near_options)
    written = frame[frame["status"].eq("ok")]
    shards: list[ShardPlan] = []
    for name in splits:
        shards += _shard_plans(written[written["split"].eq(name)], name, max_samples, max_bytes)
    return frame, shards


def _assign_splits(frame: pd.DataFrame, splits: Mapping[str, float], near_options: NearOptions) -> pd.DataFrame:
    """Deduplicate by image bytes in input order, group the winners' near-copies, then split each group
    by its first listing's id. A copy is marked with its ``kind`` (exact or near), the id of the
    listing it copies (``duplicate_of``: the image it repeats, or its most similar group-mate),
    their ``distance`` (1 - similarity; 0 for an exact copy), its ``group`` (the id of the group's
    first listing) and the group's split."""
    _reject_key_collisions(frame)
    ok = frame["status"].eq("ok")
    exact = ok & frame["sha256"].where(ok).duplicated(keep="first")
    winners = frame.index[ok & ~exact]
    first, partner, distance = _near_groups(frame.loc[winners, "fingerprint"], near_options)
    group_ids = frame.loc[winners[first], "id"].to_numpy()
    frame["split"] = pd.Series([split_of(i, splits) for i in group_ids], index=winners, dtype=object)
    frame["group"] = pd.Series(group_ids, index=winners, dtype=object)
    frame["duplicate_of"], frame["kind"], frame["distance"] = None, None, np.nan
    grouped = first != np.arange(len(winners))
    copies = winners[grouped]
    frame.loc[copies, "duplicate_of"] = frame.loc[winners[partner[grouped]], "id"].to_numpy()
    frame.loc[copies, "kind"] = "near"
    frame.loc[copies, "distance"] = distance[grouped]
    if near_options.mode == "drop":
        frame.loc[copies, "status"] = "duplicate"
    by_sha = frame.loc[winners].set_index("sha256")
    frame.loc[exact, "duplicate_of"] = frame.loc[exact, "sha256"].map(by_sha["id"])
    frame.loc[exact, "split"] = frame.loc[exact, "sha256"].map(by_sha["split"])
    frame.loc[exact, "group"] = frame.loc[exact, "sha256"].map(by_sha["group"])
    frame.loc[exact, ["kind", "distance", "status"]] = ["exact", 0.0, "duplicate"]
    return frame


def _near_groups(fingerprints: pd.Series, near_options: NearOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`.near.groups` of the rows of ``fingerprints`` (positions, in input order); every row its
    own group when near-duplicates are off."""
    n = len(fingerprints)
    if near_options.mode == "off" or n < 2:
        return np.arange(n), np.full(n, -1, dtype=np.int64), np.full(n, np.nan)
    return near.groups(n, near.near_pairs(_fingerprints(fingerprints), near_options.similarity))


def _fingerprints(column: pd.Series) -> np.ndarray:
    return np.frombuffer(b"".join(column.tolist()), dtype=np.uint8).reshape(len(column), near.FINGERPRINT_BYTES)


def _reject_key_collisions(frame: pd.DataFrame) -> None:
    """A listing whose key an earlier one already has (ids crafted to collide) is rejected, in place."""
    ok = frame["status"].eq("ok")
    first_id = frame[ok].drop_duplicates("key").set_index("key")["id"]
    collides = ok & frame["key"].where(ok).duplicated(keep="first")
    keys = frame.loc[collides, "key"]
    frame.loc[collides, "status"] = "key_collision"
    frame.loc[collides, "detail"] = "the key " + keys + " is already the key of id " + keys.map(first_id)


def _read_indexes(work: Path, n_partitions: int) -> pd.DataFrame:
    frames = []
    for index in range(n_partitions):
        frame = pq.read_table(partitions.index_path(work, index), columns=PLAN_COLUMNS).to_pandas()
        frames.append(frame.assign(partition=index, position=np.arange(len(frame))))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in [*PLAN_COLUMNS, "partition", "position"]})
    return pd.concat(frames, ignore_index=True)


def _shard_plans(samples: pd.DataFrame, split: str, max_samples: int, max_bytes: int) -> list[ShardPlan]:
    entries = list(zip(samples["partition"].tolist(), samples["position"].tolist()))
    bounds = shard_bounds(samples["sample_bytes"].tolist(), max_samples, max_bytes)
    return [ShardPlan(shard_name(split, n), tuple(entries[start:stop])) for n, (start, stop) in enumerate(bounds)]


def shard_bounds(sample_bytes: Sequence[int], max_samples: int, max_bytes: int) -> list[tuple[int, int]]:
    """Cut samples, in order, into runs of at most ``max_samples`` whose tar is at most ``max_bytes``
    (a single sample bigger than that gets a shard of its own)."""
    bounds, start, size = [], 0, 0
    for i, n in enumerate(sample_bytes):
        if i > start and (i - start == max_samples or tar_bytes(size + n) > max_bytes):
            bounds.append((start, i))
            start, size = i, 0
        size += n
    if len(sample_bytes) > start:
        bounds.append((start, len(sample_bytes)))
    return bounds


# ------------------------------------------------------------------------------------------------
# phase 4: finish (driver)
# ------------------------------------------------------------------------------------------------

def _measure_resumed(out: Path, shard: dict[str, Any]) -> dict[str, Any]:
    """Size and hash of a shard an interrupted run had finished (new ones come measured)."""
    if not shard["resumed"]:
        return shard
    path = out / shard["name"]
    return {**shard, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def _write_metadata(out: Path, frame: pd.DataFrame, shards: list[dict[str, Any]], splits: Mapping[str, float],
                    image_format: str, carry: tuple[str, ...]) -> dict[str, Any]:
    rejected = frame[~frame["status"].isin(["ok", "duplicate"])]
    write_parquet(rejected.rename(columns={"status": "reason"})[REJECTED_IMAGES_SCHEMA.names], out / "rejected.parquet",
                  REJECTED_IMAGES_SCHEMA)
    duplicates = frame[frame["kind"].notna()].assign(written=lambda f: f["status"].eq("ok"))
    write_parquet(duplicates[DUPLICATES_SCHEMA.names], out / "duplicates.parquet", DUPLICATES_SCHEMA)
    by_split = {name: [s for s in shards if s["name"].startswith(f"{name}-")] for name in splits}
    write_json(out / "_info.json", timm_info(out.name, by_split))
    for name, split_shards in by_split.items():
        write_json(out / f"{name}.index.json", wids_index(name, split_shards))
    written = frame[frame["status"].eq("ok")]
    outputs = {"splits": {name: {"samples": sum(s["samples"] for s in split_shards),
                                 "shards": [{k: s[k] for k in ("name", "samples", "bytes", "sha256")}
                                            for s in split_shards],
                                 "label_histogram": _histogram(written.loc[written["split"].eq(name), "labels"])}
                          for name, split_shards in by_split.items()}}
    card = dataset_card(outputs["splits"], num_labels=pq.ParquetFile(out / "labels.parquet").metadata.num_rows,
                        image_format=image_format, carry=carry)
    write_text(out / CARD, card)
    return outputs


def _histogram(labels: pd.Series) -> dict[str, int]:
    """Samples per label id (a sample counts once for each of its labels)."""
    flat = np.concatenate([np.asarray(x, dtype=np.int64) for x in labels]) if len(labels) else np.zeros(0, np.int64)
    counts = np.bincount(flat) if len(flat) else np.zeros(0, np.int64)
    return {str(label): int(n) for label, n in enumerate(counts) if n}


def _counts(frame: pd.DataFrame) -> dict[str, Any]:
    """rows_in == written + duplicates + sum(rejected): every input row is accounted for. Near-copies
    are counted apart too: those written (in their group's split) and those dropped (among duplicates)."""
    status = frame["status"].value_counts()
    rejected = {reason: int(status.get(reason, 0)) for reason in REASONS}
    near_copies = frame[frame["kind"].eq("near")]
    return {"rows_in": len(frame), "written": int(status.get("ok", 0)), "duplicates": int(status.get("duplicate", 0)),
            "near_duplicates": {"groups": int(near_copies["group"].nunique()),
                                "written": int(near_copies["status"].eq("ok").sum()),
                                "dropped": int(near_copies["status"].eq("duplicate").sum())},
            "rejected": rejected, "rejected_total": sum(rejected.values()),
            "passed_through": int(frame.loc[frame["status"].eq("ok"), "passed_through"].sum())}
