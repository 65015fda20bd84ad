"""``gallery.html`` of a shards folder: per label, a strip of its images, so a user sees what a label looks like.

The labels with the most support come first, at most ``MAX_LABELS`` of them so the page stays small, each with up
to ``PER_LABEL`` thumbnails. The thumbnails are read from the shards in one pass, the train split first, which stops
as soon as every label shown has all the thumbnails it can have: the samples per label are known from the plan, so a
label with fewer images does not make the pass read to the end. Thumbnails are JPEG data URIs, so the page stands
alone, each in the page once: a sample has several labels, and its image shows in each of their strips.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pyarrow.parquet as pq

from ..artifacts import write_text
from ..reports import jpeg_data_uri, render
from ..tiers import label_tiers

if TYPE_CHECKING:
    from .loader import Sample

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


def write_gallery(folder: Path, samples_per_label: Mapping[int, int], vocab_report: Path | None = None) -> None:
    """Write ``folder/gallery.html``; ``samples_per_label``: label id → samples with it in the shards.

    ``vocab_report``: the vocabulary's ``report.html``, linked by its path relative to ``folder`` when it exists.
    """
    labels = shown_labels(folder, samples_per_label)
    thumbnails = read_thumbnails(folder, labels)
    link = quote(os.path.relpath(vocab_report, folder)) if vocab_report and vocab_report.is_file() else None
    total = pq.ParquetFile(folder / LABELS_FILE).metadata.num_rows
    write_text(folder / GALLERY, gallery_html(labels, thumbnails, total=total, vocab_report=link))


def shown_labels(folder: Path, samples_per_label: Mapping[int, int]) -> list[GalleryLabel]:
    """The ``MAX_LABELS`` labels of ``labels.parquet`` with the most support (ties by id), without thumbnails yet."""
    table = pq.read_table(folder / LABELS_FILE, columns=["label_id", "name", "aliases", "support"]).to_pandas()
    tiers = label_tiers(folder)
    top = table.sort_values(["support", "label_id"], ascending=[False, True]).head(MAX_LABELS)
    return [GalleryLabel(int(row.label_id), str(row.name), [str(a) for a in row.aliases], int(row.support),
                         str(tiers[row.label_id]), samples_per_label.get(int(row.label_id), 0))
            for row in top.itertuples()]


def read_thumbnails(folder: Path, labels: list[GalleryLabel]) -> list[str]:
    """The thumbnails (JPEG data URIs) of the images taken, read from the shards in one pass; each label gets
    the indexes of its own."""
    from .loader import ShardInfo, tar_samples  # imports torch (seconds): only once the stage has shards to read

    by_id = {label.label_id: label for label in labels}
    missing = sum(label.missing for label in labels)
    thumbnails: list[str] = []
    if not missing:
        return thumbnails
    splits = ShardInfo.load(folder).splits
    urls = [url for split in sorted(splits, key=lambda name: name != FIRST_SPLIT) for url in splits[split]]
    for sample in tar_samples({"url": url} for url in urls):
        takers = [by_id[i] for i in json.loads(sample["json"]).get("labels", []) if i in by_id and by_id[i].missing]
        if takers:
            thumbnails.append(_thumbnail(sample))
            for label in takers:
                label.thumbnails.append(len(thumbnails) - 1)
            missing -= len(takers)
            if not missing:
                break
    return thumbnails


def _thumbnail(sample: Sample) -> str:
    from .loader import decode_sample

    image = decode_sample(sample, draft_size=THUMBNAIL)["image"]
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
