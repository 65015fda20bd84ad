"""Train shards of synthetic listings for the loader and training benchmarks.

``write_shards`` needs a labeled artifact (vocabulary + assignment) as input, so the benchmarks
pack the shard format themselves with ``webdataset.TarWriter``: each sample's labels are its
true type, colour and material, and ``articleType`` (the true type) is carried in its json.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import webdataset as wds

from weaklabel.synthetic import generate_listings


def build_shards(n: int, source_size: int, shard_size: int, folder: Path) -> Path:
    """Pack ``n`` synthetic listings as train shards in ``folder``; reuse them when already there."""
    info_path = folder / "_info.json"
    if info_path.is_file() and json.loads(info_path.read_text())["splits"]["train"]["num_samples"] == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        listings = generate_listings(n, tmp, image_size=source_size, progress=True)
        names = sorted({*listings["true_type"], *listings["true_colour"], *listings["true_material"]})
        ids = {name: i for i, name in enumerate(names)}
        lengths = [_write_shard(folder / f"train-{k:06d}.tar", listings.iloc[start:start + shard_size], ids, tmp,
                                source_size)
                   for k, start in enumerate(range(0, n, shard_size))]
    info = {"name": folder.name, "splits": {"train": {
        "name": "train", "num_samples": n, "shard_lengths": lengths,
        "filenames": [f"train-{k:06d}.tar" for k in range(len(lengths))]}}}
    pd.DataFrame({"label_id": range(len(names)), "name": names, "aliases": [[] for _ in names],
                  "support": 0, "tier": "head"}).to_parquet(folder / "labels.parquet")
    info_path.write_text(json.dumps(info))
    return folder


def _write_shard(path: Path, rows: pd.DataFrame, ids: dict[str, int], root: str, size: int) -> int:
    with wds.TarWriter(str(path)) as tar:
        for row in rows.itertuples():
            names = [row.true_type, row.true_colour, row.true_material]
            labels = [ids[name] for name in names]
            meta = {"id": str(row.id), "labels": labels, "label_names": names, "scores": [1.0, 0.8, 0.6],
                    "width": size, "height": size, "articleType": row.true_type}
            tar.write({"__key__": str(row.id), "jpg": Path(root, row.image).read_bytes(),
                       "json": json.dumps(meta).encode(), "cls": str(labels[0]).encode()})
    return len(rows)
