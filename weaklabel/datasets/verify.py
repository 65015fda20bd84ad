"""``weaklabel verify``: re-read a shards folder and report everything that disagrees.

Checks, against ``manifest.json``: every shard's byte size and sha256; that it is a tar whose
samples are complete (one image in the configured format, a json sidecar, ``cls`` exactly when
there are labels) and whose count matches; that every image decodes to the size its json states;
that the json fields have the documented types, names match ``labels.parquet``, the key is the
id's safe key and ``cls`` is the top label; that keys are unique across the folder; that
``_info.json``, the wids indexes and the counts agree; and that no unlisted shard lies around.
Problems are collected, never raised, so one run reports them all.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from ..artifacts import read_manifest, sha256_file
from ..parallel import run_partitions
from .format import IMAGE_EXTENSIONS, sample_key, shard_samples, timm_info, top_label, wids_index


def verify_shards(folder: str | Path, *, workers: int | None = 1, scheduler: str | None = None,
                  progress: bool = False) -> list[str]:
    """Every problem found in the shards folder ``folder``; an empty list means it is sound."""
    folder = Path(folder)
    manifest = read_manifest(folder, "shards")
    splits = manifest["outputs"]["splits"]
    config = manifest["config"]
    names = _label_names(folder)
    shards = [shard for split in splits.values() for shard in split["shards"]]
    check = partial(_check_shard, str(folder), names, config["image_format"], tuple(config["carry"]))
    results = run_partitions(check, shards, workers=workers, scheduler=scheduler, progress=progress, desc="verify")
    problems = [problem for shard_problems, _ in results for problem in shard_problems]
    keys = Counter(key for _, shard_keys in results for key in shard_keys)
    problems += [f"key {key!r} occurs {n} times" for key, n in keys.items() if n > 1]
    return _check_metadata(folder, manifest) + problems


def _label_names(folder: Path) -> dict[int, str]:
    labels = pq.read_table(folder / "labels.parquet", columns=["label_id", "name"]).to_pydict()
    return dict(zip(labels["label_id"], labels["name"]))


def _check_metadata(folder: Path, manifest: Mapping[str, Any]) -> list[str]:
    splits = manifest["outputs"]["splits"]
    counts = manifest["counts"]
    problems = []
    by_split = {name: split["shards"] for name, split in splits.items()}
    listed = {shard["name"] for shards in by_split.values() for shard in shards}
    problems += [f"{path.name}: not listed in the manifest" for path in sorted(folder.glob("*.tar"))
                 if path.name not in listed]
    info = _read_json(folder / "_info.json")
    # its name is the folder's name when written: a copied or renamed folder is still sound
    name = info.get("name") if isinstance(info, dict) else None
    if info != timm_info(name, by_split):
        problems.append("_info.json disagrees with the manifest")
    for name, shards in by_split.items():
        if _read_json(folder / f"{name}.index.json") != wids_index(name, shards):
            problems.append(f"{name}.index.json disagrees with the manifest")
    if counts["rows_in"] != counts["written"] + counts["duplicates"] + counts["rejected_total"]:
        problems.append(f"counts do not add up: {counts}")
    if counts["written"] != sum(split["samples"] for split in splits.values()):
        problems.append("counts.written differs from the samples of the splits")
    for name, expected in (("rejected", counts["rejected_total"]), ("duplicates", counts["duplicates"])):
        path = folder / f"{name}.parquet"
        if not path.is_file() or _unwritten_rows(path) != expected:
            problems.append(f"{name}.parquet does not hold {expected} rows of listings left unwritten")
    return problems


def _unwritten_rows(path: Path) -> int:
    """Rows of a rejected or duplicates table whose listing was not written (duplicates.parquet also
    records the near-copies that were written, in their group's split)."""
    table = pq.read_table(path)
    if "written" not in table.column_names:
        return table.num_rows
    return table.num_rows - int(pc.sum(table.column("written")).as_py() or 0)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _check_shard(folder: str, names: Mapping[int, str], ext: str, carry: Sequence[str],
                 shard: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Problems of one shard, and the keys it holds."""
    path = Path(folder) / shard["name"]
    if not path.is_file():
        return [f"{shard['name']}: missing"], []
    problems = []
    if path.stat().st_size != shard["bytes"]:
        problems.append(f"{shard['name']}: {path.stat().st_size} bytes, the manifest says {shard['bytes']}")
    if sha256_file(path) != shard["sha256"]:
        problems.append(f"{shard['name']}: sha256 differs from the manifest")
    keys: list[str] = []
    try:
        for key, members in shard_samples(path):
            keys.append(key)
            problems += [f"{shard['name']}: {key}: {p}" for p in _check_sample(key, members, names, ext, carry)]
    except (tarfile.TarError, OSError, EOFError) as error:
        problems.append(f"{shard['name']}: unreadable tar after {len(keys)} samples ({type(error).__name__}: {error})")
    if len(keys) != shard["samples"]:
        problems.append(f"{shard['name']}: {len(keys)} samples, the manifest says {shard['samples']}")
    if len(set(keys)) != len(keys):
        problems.append(f"{shard['name']}: a key appears in more than one run of members")
    return problems, keys


def _check_sample(key: str, members: dict[str, bytes], names: Mapping[int, str], ext: str,
                  carry: Sequence[str]) -> list[str]:
    extras = set(members) - {ext, "json", "cls"}
    if extras & set(IMAGE_EXTENSIONS):
        return [f"image stored as {sorted(extras)}, the configured format is {ext}"]
    if extras:
        return [f"unexpected members {sorted(extras)}"]
    if ext not in members or "json" not in members:
        return [f"incomplete sample, members {sorted(members)}"]
    try:
        meta = json.loads(members["json"])
    except ValueError as error:
        return [f"json does not parse ({error})"]
    problems = _check_meta(meta, names, carry)
    if problems:
        return problems
    if key != sample_key(meta["id"]):
        problems.append(f"key is not the safe key of id {meta['id']!r}")
    problems += _check_cls(members.get("cls"), meta)
    problems += _check_image(members[ext], meta)
    return problems


def _check_meta(meta: Any, names: Mapping[int, str], carry: Sequence[str]) -> list[str]:
    if not isinstance(meta, dict):
        return ["json is not an object"]
    missing = [f for f in ("id", "labels", "label_names", "scores", "width", "height", *carry) if f not in meta]
    if missing:
        return [f"json lacks {missing}"]
    labels, scores = meta["labels"], meta["scores"]
    if not isinstance(meta["id"], str):
        return ["json id is not a string"]
    if not (isinstance(labels, list) and all(isinstance(x, int) for x in labels)):
        return ["json labels is not a list of ints"]
    if not (isinstance(scores, list) and len(scores) == len(labels)
            and all(isinstance(x, (int, float)) for x in scores)):
        return ["json scores is not a list of numbers, one per label"]
    if meta["label_names"] != [names.get(label) for label in labels]:
        return [f"json label_names {meta['label_names']} do not match labels.parquet for {labels}"]
    if not all(isinstance(meta[f], int) and meta[f] > 0 for f in ("width", "height")):
        return ["json width/height are not positive ints"]
    return []


def _check_cls(cls: bytes | None, meta: Mapping[str, Any]) -> list[str]:
    if not meta["labels"]:
        return [] if cls is None else ["cls present on a sample without labels"]
    expected = str(top_label(meta["labels"], meta["scores"]))
    return [] if cls == expected.encode("ascii") else [f"cls is {cls!r}, the top label is {expected}"]


def _check_image(data: bytes, meta: Mapping[str, Any]) -> list[str]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size = image.size
    except Exception as error:  # noqa: BLE001 - any decoder failure is the finding itself
        return [f"image does not decode ({type(error).__name__}: {error})"]
    if size != (meta["width"], meta["height"]):
        return [f"image is {size[0]}x{size[1]}, the json says {meta['width']}x{meta['height']}"]
    return []
