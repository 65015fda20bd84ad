"""``gallery.html`` of a shards folder: per label, a strip of its images, so a user sees what a label looks like.

The labels with the most support come first, at most ``MAX_LABELS`` of them so the page stays small, each with up
to ``PER_LABEL`` thumbnails. The thumbnails are read from the shards in one pass, the train split first, which stops
as soon as every label shown has all the thumbnails it can have: the samples per label are known from the plan, so a
label with fewer images does not make the pass read to the end (``tarfile`` reads them: the loader would bring
torch, seconds to import for a stage that otherwise does without). Thumbnails are JPEG data URIs, so the page stands
alone, each in the page once: a sample has several labels, and its image shows in each of their strips.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow.parquet as pq
from PIL import Image

from ..artifacts import write_text
from ..reports import jpeg_data_uri, render
from ..tiers import tiers_by_support
from .format import IMAGE_EXTENSIONS, shard_samples

GALLERY = "gallery.html"
MAX_LABELS = 200
PER_LABEL = 8
THUMBNAIL = 80
ALIASES_SHOWN = 5
FIRST_SPLIT = "train"
LABELS_FILE = "labels.parquet"


@dataclass
class GalleryLabel:
    label_id: int
    name: str
    aliases: list[str]
    support: int
    tier: str
    samples: int  # samples with this label in the shards: the most thumbnails it can get
    thumbnails: list[int] = field(default_factory=list)  # indexes into the page's list of distinct thumbnails

    @property
    def missing(self) -> int:
        return min(PER_LABEL, self.samples) - len(self.thumbnails)


def write_gallery(folder: Path, splits: Mapping[str, Mapping[str, Any]], vocab_report: Path | None = None) -> None:
    """Write ``folder/gallery.html``; ``splits``: the manifest's ``outputs.splits`` (per split its ``shards``
    and ``label_histogram``).

    ``vocab_report``: the vocabulary's ``report.html``, linked by its path relative to ``folder`` when it exists.
    """
    labels = shown_labels(folder, samples_per_label(splits))
    thumbnails = read_thumbnails(labels, [folder / name for name in shard_names(splits)])
    link = quote(os.path.relpath(vocab_report, folder)) if vocab_report and vocab_report.is_file() else None
    total = pq.ParquetFile(folder / LABELS_FILE).metadata.num_rows
    write_text(folder / GALLERY, gallery_html(labels, thumbnails, total=total, vocab_report=link))


def samples_per_label(splits: Mapping[str, Mapping[str, Any]]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for split in splits.values():
        for label, n in split["label_histogram"].items():
            counts[int(label)] = counts.get(int(label), 0) + n
    return counts


def shard_names(splits: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The shards in the order the gallery reads them: the train split's first, then the others'."""
    return [shard["name"] for split in sorted(splits, key=lambda name: name != FIRST_SPLIT)
            for shard in splits[split]["shards"]]


def shown_labels(folder: Path, samples_per_label: Mapping[int, int]) -> list[GalleryLabel]:
    """The ``MAX_LABELS`` labels of ``labels.parquet`` with the most support (ties by id), without thumbnails yet.

    A labels table without aliases or support (a hand-made one) shows none, and ranks by the samples."""
    table = pq.read_table(folder / LABELS_FILE).to_pandas()
    if "aliases" not in table:
        table["aliases"] = [[] for _ in range(len(table))]
    if "support" not in table:
        table["support"] = [samples_per_label.get(int(label), 0) for label in table["label_id"]]
    if "tier" not in table:
        table["tier"] = tiers_by_support(table["support"].to_numpy())
    top = table.sort_values(["support", "label_id"], ascending=[False, True]).head(MAX_LABELS)
    return [GalleryLabel(int(row.label_id), str(row.name), [str(a) for a in row.aliases], int(row.support),
                         str(row.tier), samples_per_label.get(int(row.label_id), 0))
            for row in top.itertuples()]


def read_thumbnails(labels: list[GalleryLabel], shards: list[Path]) -> list[str]:
    """The thumbnails (JPEG data URIs) of the images taken, read from ``shards`` in one pass; each label gets
    the indexes of its own."""
    by_id = {label.label_id: label for label in labels}
    missing = sum(label.missing for label in labels)
    thumbnails: list[str] = []
    if not missing:
        return thumbnails
    samples = (members for path in shards for _, members in shard_samples(path))
    for members in samples:
        takers = [by_id[i] for i in json.loads(members["json"])["labels"] if i in by_id and by_id[i].missing]
        if takers:
            thumbnails.append(_thumbnail(members))
            for label in takers:
                label.thumbnails.append(len(thumbnails) - 1)
            missing -= len(takers)
            if not missing:
                break
    return thumbnails


def _thumbnail(members: Mapping[str, bytes]) -> str:
    image = Image.open(io.BytesIO(next(members[ext] for ext in IMAGE_EXTENSIONS if ext in members)))
    image.draft("RGB", (THUMBNAIL, THUMBNAIL))  # a JPEG decodes at the smallest scale still as big: much faster
    image = image.convert("RGB")
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    return jpeg_data_uri(image, quality=75)


def gallery_html(labels: list[GalleryLabel], thumbnails: list[str], total: int, vocab_report: str | None = None) -> str:
    """The standalone page: one row per label (name, aliases, support, tier, thumbnails) and a search box;
    ``thumbnails``: the data URIs the labels' indexes point into; ``total``: the labels in the vocabulary."""
    return render("gallery.html", labels=[_row(label) for label in labels], thumbnails=thumbnails, total=total,
                  per_label=PER_LABEL, first_split=FIRST_SPLIT, vocab_report=vocab_report)


def _row(label: GalleryLabel) -> dict[str, Any]:
    aliases = ", ".join(label.aliases[:ALIASES_SHOWN]) + (" …" if len(label.aliases) > ALIASES_SHOWN else "")
    return {"id": label.label_id, "name": label.name, "aliases": aliases, "support": label.support,
            "tier": label.tier, "samples": label.samples, "thumbnails": label.thumbnails,
            "search": " ".join([label.name, *label.aliases]).lower()}
