"""Streaming reader for the shards folder: WebDataset tar shards → ``(image, targets)`` tuples.

``make_dataset`` assembles a webdataset pipeline of small stages, each usable on its own::

    shard_source          shard urls, shuffled by (seed, epoch) when training
    split_by_node         a disjoint share of the shards per rank (torch.distributed / RANK, WORLD_SIZE)
    split_by_worker       a disjoint share of those per DataLoader worker
    tar_samples           raw samples, grouped by key as webdataset does; only image and json are read
    take_quota            equal sample counts per rank (see below)
    shuffle_samples       a shuffle buffer of raw bytes, seeded by (seed, epoch, rank, worker)
    decode_sample         {"key", "image" (PIL RGB; large JPEGs in draft mode), "json" (dict)}
    SampleEncoder         (transform(image), {"labels": multi-hot, column or facet task: class index, ...}[, json])

**DDP.** Shards are split between ranks, not samples, so every rank reads its own files. A rank's
shards rarely hold exactly its share of samples, and DDP stalls when one rank runs out of batches
before the others; so when training on more than one rank, every rank yields exactly
``num_samples // world_size`` samples, split between its workers by a fixed rule (``worker_quota``).
A rank whose shards hold fewer starts again on a freshly shuffled pass of the shard list; one whose
shards hold more stops early. With the same ``batch_size`` and ``num_workers`` on every rank, all
ranks get the same number of batches. Which samples repeat or drop changes with the epoch; with a
shard count that is a multiple of ``world_size * num_workers`` and equal shards, none do.
``resample=True`` draws shards with replacement instead (WebDataset's ``ResampledShards`` idea)
and always yields ``num_samples`` per epoch in total. Evaluation (``training=False``) reads every
sample exactly once, however unevenly that divides between ranks.

**Epochs.** ``make_dataset(epoch=...)`` sets the first epoch; ``dataset.set_epoch(n)`` changes it
in DataLoader workers too (persistent ones included). The same seed and epoch give the same order
with ``num_workers=0``.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import count, islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, default_collate
from torchvision import transforms

from ..corrections import Corrections
from ..facets import FACET_COLUMN, FACETS_FIELD, facet_members, label_in_facet

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SampleEncoder",
    "ShardDataset",
    "ShardInfo",
    "SharedEpoch",
    "TargetEncoder",
    "ToNormalizedTensor",
    "carries_facets",
    "carry_classes",
    "collate_samples",
    "decode_sample",
    "default_transform",
    "iter_samples",
    "make_dataset",
    "make_loader",
    "shard_source",
    "shuffle_samples",
    "take_quota",
    "tar_samples",
    "worker_quota",
]

IMAGE_KEYS = ("jpg", "jpeg", "webp", "png")
KEPT_EXTENSIONS = frozenset((*IMAGE_KEYS, "json"))
TAR_BLOCK = 512
REGULAR_FILE = (b"0", b"\0")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_IMAGE_SIZE = 224
INFO_FILE = "_info.json"
LABELS_FILE = "labels.parquet"

Sample = dict[str, Any]
Transform = Callable[[Image.Image], Any]


# ---------------------------------------------------------------------------------------------
# The shards folder
# ---------------------------------------------------------------------------------------------

@dataclass
class ShardInfo:
    """What a shards folder holds: label names (index = label id), shard paths and sample counts per
    split, and the vocabulary's facets (``facet_members``: facet name -> label ids; empty without)."""

    folder: Path
    label_names: list[str]
    splits: dict[str, list[str]]
    num_samples: dict[str, int]
    facets: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: str | Path) -> ShardInfo:
        """Read ``_info.json`` and ``labels.parquet``; every listed shard must exist."""
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"shards folder {folder} does not exist")
        info = _read_info(folder)
        splits = {name: _shard_paths(folder, entry) for name, entry in info["splits"].items()}
        missing = [path for paths in splits.values() for path in paths if not Path(path).is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} shard(s) listed in {folder / INFO_FILE} are missing, "
                                    f"first {missing[0]}")
        num_samples = {name: int(entry["num_samples"]) for name, entry in info["splits"].items()}
        label_names, facets = _read_labels(folder)
        return cls(folder, label_names, splits, num_samples, facets)

    def shard_urls(self, split: str) -> list[str]:
        """The split's shard paths in shard order."""
        if split not in self.splits:
            raise ValueError(f"split {split!r} is not in {self.folder}; it has {sorted(self.splits)}")
        if not self.splits[split]:
            raise ValueError(f"split {split!r} in {self.folder} has no shards")
        return list(self.splits[split])


def _read_info(folder: Path) -> dict[str, Any]:
    path = folder / INFO_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a shards folder: {INFO_FILE} is missing")
    info = json.loads(path.read_text())
    if not isinstance(info.get("splits"), dict):
        raise TypeError(f"{path} has no 'splits' mapping")
    return info


def _shard_paths(folder: Path, entry: Mapping[str, Any]) -> list[str]:
    """timm's ``filenames`` is a list of names or one brace pattern, relative to the folder."""
    names = entry.get("filenames", [])
    if isinstance(names, str):
        names = wds.shardlists.expand_urls(names)
    return [str(folder / name) for name in names]


def _read_labels(folder: Path) -> tuple[list[str], dict[str, list[int]]]:
    """The label names by id and the facets (none when ``labels.parquet`` predates them)."""
    path = folder / LABELS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a shards folder: {LABELS_FILE} is missing")
    faceted = FACET_COLUMN in pq.read_schema(path).names
    table = pq.read_table(path, columns=["label_id", "name", *([FACET_COLUMN] if faceted else [])]).to_pydict()
    by_id = dict(zip(table["label_id"], table["name"], strict=True))
    if sorted(by_id) != list(range(len(by_id))):
        raise ValueError(f"{path}: label ids must be 0..{len(by_id) - 1}, each once")
    return [by_id[i] for i in range(len(by_id))], facet_members(pd.DataFrame(table))


# ---------------------------------------------------------------------------------------------
# Pipeline stages
# ---------------------------------------------------------------------------------------------

class SharedEpoch:
    """An epoch number that DataLoader worker processes read at the start of each pass."""

    def __init__(self, epoch: int = 0) -> None:
        self._value = multiprocessing.RawValue("q", epoch)

    @property
    def value(self) -> int:
        return int(self._value.value)

    def set(self, epoch: int) -> None:
        self._value.value = epoch


def _seed(*parts: object) -> str:
    """A random.Random seed from parts; string seeds hash the same in every process."""
    return "weaklabel:" + ":".join(map(str, parts))


def _balanced(training: bool, resample: bool) -> bool:
    """Whether each rank gets a fixed sample quota (see the module docstring)."""
    return resample or (training and wds.utils.pytorch_worker_info()[1] > 1)


def shard_source(urls: Sequence[str], *, seed: int, epoch: SharedEpoch, training: bool,
                 resample: bool) -> Iterator[dict[str, str]]:
    """Shard urls as ``{"url": ...}``: in order for evaluation, shuffled by (seed, epoch) for
    training, endlessly reshuffled passes under a quota, or drawn with replacement per worker."""
    current = epoch.value
    if resample:
        rank, _, worker, _ = wds.utils.pytorch_worker_info()
        rng = random.Random(_seed(seed, current, rank, worker, "shards"))
        while True:
            yield {"url": rng.choice(urls)}
    passes = count() if _balanced(training, resample) else range(1)
    for repeat in passes:
        order = list(urls)
        if training:
            random.Random(_seed(seed, current, repeat)).shuffle(order)
        yield from ({"url": url} for url in order)


def worker_quota(num_samples: int, world_size: int, worker: int, num_workers: int) -> int:
    """One worker's share of its rank's ``num_samples // world_size`` samples."""
    per_rank = num_samples // world_size
    return per_rank // num_workers + (worker < per_rank % num_workers)


def take_quota(src: Iterable[Sample], num_samples: int, training: bool, resample: bool) -> Iterator[Sample]:
    """Cut the stream at this worker's quota when ranks must be balanced, else pass it through."""
    if not _balanced(training, resample):
        yield from src
        return
    _, world_size, worker, num_workers = wds.utils.pytorch_worker_info()
    yield from islice(src, worker_quota(num_samples, world_size, worker, num_workers))


def shuffle_samples(src: Iterable[Sample], bufsize: int, seed: int, epoch: SharedEpoch) -> Iterator[Sample]:
    """A shuffle buffer over raw (undecoded) samples, seeded by (seed, epoch, rank, worker)."""
    rank, _, worker, _ = wds.utils.pytorch_worker_info()
    rng = random.Random(_seed(seed, epoch.value, rank, worker, "samples"))
    return wds.shuffle(bufsize, initial=bufsize, rng=rng)(src)


def tar_samples(src: Iterable[dict[str, str]], extensions: frozenset[str] = KEPT_EXTENSIONS) -> Iterator[Sample]:
    """Samples ``{"__key__", "__url__", ext: bytes}`` from shards ``{"url": ...}``, grouped as
    webdataset's ``tarfile_to_samples`` does (key: the name up to the first dot of its last part).

    Only members with one of ``extensions`` are read, the rest skipped. Headers are parsed here
    (ustar, pax and GNU long names) rather than by ``tarfile``, which costs more per member.
    """
    for shard in src:
        url = shard["url"]
        stream = wds.gopen(url)
        try:
            yield from _group_members(url, _tar_members(url, stream, extensions))
        finally:
            stream.close()


def _split_name(name: str) -> tuple[str, str]:
    """``dir/key.ext.more`` → (``dir/key``, ``ext.more``); no extension gives an empty one."""
    dot = name.find(".", name.rfind("/") + 1)
    return (name, "") if dot < 0 else (name[:dot], name[dot + 1:].lower())


def _group_members(url: str, members: Iterable[tuple[str, str, bytes]]) -> Iterator[Sample]:
    sample: Sample | None = None
    for key, ext, data in members:
        if sample is None or key != sample["__key__"]:
            if sample is not None:
                yield sample
            sample = {"__key__": key, "__url__": url}
        if ext in sample:
            raise ValueError(f"{url}: sample {key!r} has two {ext!r} members")
        sample[ext] = data
    if sample is not None:
        yield sample


def _tar_members(url: str, stream: Any, extensions: frozenset[str]) -> Iterator[tuple[str, str, bytes]]:
    """(key, extension, data) of the regular files in a tar whose extension is wanted."""
    long_name = None
    while (header := stream.read(TAR_BLOCK)).strip(b"\0"):
        if not _valid_header(header):
            raise ValueError(f"{url}: not a tar file or a corrupt header")
        size, kind = _number(header[124:136]), header[156:157]
        if kind == b"x":
            long_name = _pax_path(_read(url, stream, size)) or long_name
            continue
        if kind == b"L":
            long_name = _read(url, stream, size).rstrip(b"\0").decode("utf-8")
            continue
        key, ext = _split_name(long_name or _ustar_name(header))
        long_name = None
        if kind in REGULAR_FILE and ext in extensions:
            yield key, ext, _read(url, stream, size)
        else:
            _skip(url, stream, size)


def _valid_header(header: bytes) -> bool:
    """A full block whose checksum field matches its bytes (the field itself counted as spaces)."""
    try:
        checksum = _number(header[148:156])
    except ValueError:
        return False
    return len(header) == TAR_BLOCK and checksum == sum(header) - sum(header[148:156]) + 8 * 32


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or base-256 when the high bit is set."""
    if field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    return int(field.strip(b" \0") or b"0", 8)


def _ustar_name(header: bytes) -> str:
    name = header[:100].split(b"\0", 1)[0]
    if header[257:263] == b"ustar\0" and header[345] != 0:  # POSIX ustar: a name prefix
        name = header[345:500].split(b"\0", 1)[0] + b"/" + name
    return name.decode("utf-8")


def _pax_path(data: bytes) -> str | None:
    """The ``path`` record of a pax extended header (records are ``"<length> <key>=<value>\\n"``)."""
    position = 0
    while position < len(data):
        space = data.index(b" ", position)
        length = int(data[position:space])
        key, _, value = data[space + 1:position + length - 1].partition(b"=")
        if key == b"path":
            return value.decode("utf-8")
        position += length
    return None


def _read(url: str, stream: Any, size: int) -> bytes:
    """A member's data; its padding to the next block is skipped."""
    data = stream.read(size)
    if len(data) < size or len(stream.read(-size % TAR_BLOCK)) < -size % TAR_BLOCK:
        raise ValueError(f"{url}: truncated tar")
    return data


def _skip(url: str, stream: Any, size: int) -> None:
    """Step over a member's data and padding, seeking where the stream allows."""
    padded = size + -size % TAR_BLOCK
    if getattr(stream, "seekable", lambda: False)():
        stream.seek(padded, 1)
    elif len(stream.read(padded)) < padded:
        raise ValueError(f"{url}: truncated tar")


def decode_sample(sample: Sample, draft_size: int | None = None) -> Sample:
    """``{"key", "image" (PIL RGB), "json" (dict)}`` from a raw sample.

    With ``draft_size``, a JPEG at least twice that size on both sides is decoded at 1/2, 1/4 or
    1/8 scale, its sides staying at or above ``draft_size`` (PIL draft mode), which is much faster.
    """
    key = next((k for k in IMAGE_KEYS if k in sample), None)
    if key is None or "json" not in sample:
        raise ValueError(f"sample {sample.get('__key__')!r} in {sample.get('__url__')} lacks an image or json")
    image = Image.open(io.BytesIO(sample[key]))
    if draft_size:
        image.draft("RGB", (draft_size, draft_size))
    image.load()
    if image.mode != "RGB":
        image = image.convert("RGB")
    return {"key": sample["__key__"], "image": image, "json": json.loads(sample["json"])}


@dataclass(frozen=True)
class TargetEncoder:
    """A sample's json → ``{"labels": float32 multi-hot, column: int64 class index (-1 unknown),
    facet target: int64 class index within the facet (-1: the sample has no label of it)}``."""

    num_labels: int
    classes: Mapping[str, Mapping[str, int]]  # column -> {class name: index}
    facet_classes: Mapping[str, Mapping[int, int]] = field(default_factory=dict)  # target -> {label id: index}
    corrections: Corrections = field(default_factory=Corrections)  # labels an audit left out of the multi-hot

    @classmethod
    def create(cls, num_labels: int, carry_targets: Mapping[str, Sequence[str]] | None = None,
               facet_targets: Mapping[str, Sequence[int]] | None = None,
               corrections: Corrections | None = None) -> TargetEncoder:
        classes = {column: {name: i for i, name in enumerate(names)}
                   for column, names in (carry_targets or {}).items()}
        facet_classes = {target: {label: i for i, label in enumerate(ids)}
                         for target, ids in (facet_targets or {}).items()}
        return cls(num_labels, classes, facet_classes, corrections or Corrections())

    def __call__(self, meta: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        labels = meta.get("labels") or []
        if self.corrections:
            labels = self.corrections.kept(labels, meta.get("id"))
        targets = {"labels": self.multi_hot(labels, meta.get("id"))}
        for column, index in self.classes.items():
            targets[column] = torch.tensor(index.get(_carried_value(meta, column), -1), dtype=torch.int64)
        chosen = meta.get(FACETS_FIELD) or []  # one label id (or -1) per facet
        for target, index in self.facet_classes.items():
            label = label_in_facet(chosen, index)
            targets[target] = torch.tensor(index[label] if label is not None else -1, dtype=torch.int64)
        return targets

    def multi_hot(self, labels: Sequence[int], sample_id: object = None) -> torch.Tensor:
        vector = np.zeros(self.num_labels, dtype=np.float32)
        if labels:
            if min(labels) < 0 or max(labels) >= self.num_labels:
                raise ValueError(f"sample {sample_id!r} has label ids {list(labels)} outside 0..{self.num_labels - 1}")
            vector[labels] = 1.0
        return torch.from_numpy(vector)


def _carried_value(meta: Mapping[str, Any], column: str) -> str | None:
    """A carried column's value as a class name; None when missing, null or empty."""
    value = meta.get(column)
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


@dataclass(frozen=True)
class SampleEncoder:
    """A decoded sample → ``(transform(image), targets)``, plus its json with ``return_meta``."""

    transform: Transform
    targets: TargetEncoder
    return_meta: bool = False

    def __call__(self, sample: Sample) -> tuple[Any, ...]:
        meta = sample["json"]
        encoded = (self.transform(sample["image"]), self.targets(meta))
        return (*encoded, meta) if self.return_meta else encoded


class ToNormalizedTensor:
    """PIL RGB → float32 CHW tensor normalized by mean/std: ``ToTensor`` + ``Normalize`` in one pass."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        self.mean, self.std = tuple(mean), tuple(std)
        self.scale = torch.tensor([1 / (255 * s) for s in std]).view(3, 1, 1)
        self.shift = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)]).view(3, 1, 1)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.mode != "RGB":
            image = image.convert("RGB")
        pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)
        out = torch.empty(pixels.shape, dtype=torch.float32)
        return out.copy_(pixels).mul_(self.scale).add_(self.shift)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


def default_transform(image_size: int) -> Transform:
    """Resize the short side to ``image_size``, center-crop a square, normalize with ImageNet stats."""
    return transforms.Compose([
        transforms.Resize(image_size),
        transforms.CenterCrop(image_size),
        ToNormalizedTensor(),
    ])


# ---------------------------------------------------------------------------------------------
# Datasets and loaders
# ---------------------------------------------------------------------------------------------

class ShardDataset(wds.DataPipeline):
    """A webdataset pipeline whose shuffles follow an epoch number shared with worker processes."""

    def __init__(self, *stages: Any, epoch: SharedEpoch, num_samples: int) -> None:
        super().__init__(*stages)
        self.shared_epoch = epoch
        self.num_samples = num_samples

    @property
    def epoch(self) -> int:
        return self.shared_epoch.value

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` from the next pass on, in this process and in DataLoader workers."""
        self.shared_epoch.set(epoch)


def make_dataset(folder: str | Path, split: str = "train", *, training: bool = True,
                 transform: Transform | None = None, image_size: int | None = None,
                 num_labels: int | None = None, carry_targets: Mapping[str, Sequence[str]] | None = None,
                 facet_targets: Mapping[str, Sequence[int]] | None = None, corrections: Corrections | None = None,
                 shuffle_buffer: int = 1000, seed: int = 0, epoch: int = 0, resample: bool = False,
                 return_meta: bool = False) -> ShardDataset:
    """A streaming dataset of ``(image, targets)`` (``(image, targets, json)`` with ``return_meta``).

    ``transform`` maps a PIL RGB image to a tensor; by default ``default_transform(image_size or 224)``.
    ``image_size`` is the size the transform produces; JPEGs at least twice as large are decoded
    at reduced scale (see ``decode_sample``). ``targets["labels"]`` is a multi-hot over
    ``num_labels`` (default: the vocabulary size); each column of ``carry_targets``
    (``{"articleType": [class names]}``, see ``carry_classes``) adds an int64 class index, -1 for
    a missing or unknown value. Each target of ``facet_targets`` (``{"facet:colour": [label ids of
    the facet]}``) adds an int64 class index: the position in that list of the label the sample's
    json ``facets`` chose, -1 when none. ``corrections`` (an audit's) leave labels out of the multi-hot.
    ``training`` shuffles shards and samples (``shuffle_buffer`` samples, 0 for none) by ``seed`` and
    ``epoch`` and balances ranks; see the module docstring.
    """
    info = ShardInfo.load(folder)
    urls = info.shard_urls(split)
    shared_epoch = SharedEpoch(epoch)
    encode = SampleEncoder(
        transform or default_transform(image_size or DEFAULT_IMAGE_SIZE),
        TargetEncoder.create(len(info.label_names) if num_labels is None else num_labels, carry_targets,
                             facet_targets, corrections),
        return_meta,
    )
    source = partial(shard_source, urls, seed=seed, epoch=shared_epoch, training=training, resample=resample)
    stages: list[Any] = [source]
    if not resample:
        stages += [wds.split_by_node, wds.split_by_worker]
    stages += [
        tar_samples,
        partial(take_quota, num_samples=info.num_samples[split], training=training, resample=resample),
    ]
    if training and shuffle_buffer > 1:
        stages.append(partial(shuffle_samples, bufsize=shuffle_buffer, seed=seed, epoch=shared_epoch))
    draft_size = image_size or (None if transform else DEFAULT_IMAGE_SIZE)
    stages += [wds.map(partial(decode_sample, draft_size=draft_size)), wds.map(encode)]
    return ShardDataset(*stages, epoch=shared_epoch, num_samples=info.num_samples[split])


def collate_samples(batch: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """Stack images and each target; a json element, when present, stays a list of dicts."""
    images = default_collate([sample[0] for sample in batch])
    targets = default_collate([sample[1] for sample in batch])
    if len(batch[0]) == 2:
        return images, targets
    return images, targets, [sample[2] for sample in batch]


def make_loader(dataset: IterableDataset, batch_size: int, num_workers: int = 0, *, drop_last: bool = False,
                pin_memory: bool | None = None, **kwargs: Any) -> DataLoader:
    """A DataLoader over a ``make_dataset`` pipeline.

    Workers persist across epochs (``dataset.set_epoch`` still reaches them); memory is pinned
    when CUDA is available unless ``pin_memory`` says otherwise. Each worker ends its share with a
    partial batch unless ``drop_last``. Other keyword arguments go to ``DataLoader``.
    """
    options: dict[str, Any] = {
        "batch_size": batch_size,
        "num_workers": num_workers,
        "collate_fn": collate_samples,
        "drop_last": drop_last,
        "pin_memory": torch.cuda.is_available() if pin_memory is None else pin_memory,
        "persistent_workers": num_workers > 0,
    }
    return DataLoader(dataset, **(options | kwargs))


def iter_samples(folder: str | Path, split: str) -> Iterator[Sample]:
    """Every sample of a split once, in shard order, in this process: ``{"key", "image", "json"}``."""
    urls = ShardInfo.load(folder).shard_urls(split)
    raw = tar_samples({"url": url} for url in urls)
    return map(decode_sample, raw)


def load_thumbnails(shards: str | Path, splits: Sequence[str], ids: Iterable[str], size: int) -> dict[str, str]:
    """JPEG data URIs (at most ``size`` px) of the samples with these listing ids, read from the splits'
    shards in one pass that stops once all are found (missing ids left out)."""
    from ..reports import jpeg_data_uri

    wanted = set(ids)
    found: dict[str, str] = {}
    info = ShardInfo.load(shards)
    for split in dict.fromkeys(splits):
        for sample in tar_samples({"url": url} for url in info.shard_urls(split)):
            if len(found) == len(wanted):
                return found
            sample_id = str(json.loads(sample["json"]).get("id"))
            if sample_id in wanted and sample_id not in found:
                image = decode_sample(sample)["image"]
                image.thumbnail((size, size))
                found[sample_id] = jpeg_data_uri(image)
    return found


def carries_facets(folder: str | Path, split: str = "train") -> bool:
    """Whether the split's samples carry facets: a json with a ``facets`` field (shards written before
    facets have none)."""
    urls = ShardInfo.load(folder).shard_urls(split)
    samples = tar_samples(({"url": url} for url in urls), frozenset(("json",)))
    return any(FACETS_FIELD in json.loads(sample["json"]) for sample in samples)


def carry_classes(folder: str | Path, column: str, split: str = "train") -> list[str]:
    """The sorted distinct values of a carried json column over a split (missing values left out)."""
    values: set[str] = set()
    urls = ShardInfo.load(folder).shard_urls(split)
    for sample in tar_samples(({"url": url} for url in urls), frozenset(("json",))):
        value = _carried_value(json.loads(sample["json"]), column)
        if value is not None:
            values.add(value)
    return sorted(values)

