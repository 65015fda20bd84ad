"""The shards folder's dataset card, ``README.md``: what it holds and how standard tools load it.

Its YAML header maps each split to its tar files, so Hugging Face ``datasets.load_dataset(folder)``
reads the shards as WebDataset splits instead of guessing from every file it finds (it would take
the ``*.index.json`` files for data).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import __version__

CARD = "README.md"


def dataset_card(splits: Mapping[str, Mapping[str, Any]], *, num_labels: int, image_format: str,
                 carry: tuple[str, ...] = ()) -> str:
    """The card for a shards folder whose manifest ``outputs["splits"]`` is ``splits``."""
    data_files = "".join(f'  - split: {name}\n    path: "{name}-*.tar"\n' for name in splits)
    rows = "".join(f"| {name} | {split['samples']:,} | {len(split['shards'])} |\n" for name, split in splits.items())
    carried = "".join(f", `{column}`" for column in carry)
    return f"""---
configs:
- config_name: default
  data_files:
{data_files}tags:
- webdataset
- weaklabel
---
# Weakly labelled image shards

Written by weaklabel {__version__} (`weaklabel shards`): WebDataset tar shards, one sample per
listing, labelled from the listing text with a vocabulary of {num_labels:,} labels (`labels.parquet`).

| split | samples | shards |
|---|---|---|
{rows}
Each sample holds `KEY.{image_format}` (the image), `KEY.json` (`id`, `labels`, `label_names`, `scores`,
`width`, `height`{carried}) and `KEY.cls` (the top label id; absent for a listing without labels).
`manifest.json` records how the folder was made; `rejected.parquet` and `duplicates.parquet` account
for every listing that is not a sample. `duplicates.parquet` also lists the near-copies of an image
(`kind` near: re-encoded, resized, mirrored or recoloured photos) with their group (the id of its
first listing), in whose split they all are, and the group-mate each is most similar to (`duplicate_of`);
`written` says whether each is a sample.

Load it with `webdataset.WebDataset("{next(iter(splits), "train")}-000000.tar")`,
`datasets.load_dataset("path/to/this/folder")`, `timm.data.create_dataset("wds/shards", root=..., split=...)`
or `wids.ShardListDataset("{next(iter(splits), "train")}.index.json")` (`pip install wids`).
"""
