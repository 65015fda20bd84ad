"""What the training loop reads: the train split as a webdataset pipeline, with repeat-factor sampling.

The pipeline is the loader's stages (:mod:`weaklabel.datasets.loader`) with two additions::

    shard_source → split_by_node → split_by_worker → tar_samples (image and json members only)
        → repeat_samples      (repeat-factor sampling; raw bytes, only the json is parsed)
        → take_quota          (equal sample counts per rank under DDP, counted after repeats)
        → shuffle_samples → decode → SeededEncoder (augmentation seeded per sample)

**Repeat-factor sampling** (Gupta et al., LVIS 2019): a label ``c`` seen in a fraction ``f(c)``
of the train images gets ``r(c) = max(1, sqrt(t / f(c)))``; an image gets the largest ``r`` of
its labels and appears ``floor(r)`` times plus once more with probability ``r - floor(r)``
(stochastic rounding, decided by a hash of seed, epoch and sample key, so it is the same in
every run and for any number of workers). Repeats happen before the shuffle buffer, which
spreads them out, and before decoding, which is where the time goes.

**Seeded augmentation.** Each sample's random crop, flip and jitter come from a torch generator
seeded by (seed, epoch, key, copy), not from the process's global RNG: the images of a batch
are the same whatever the number of workers, and skipping batches on resume consumes no
randomness that the model's own layers (dropout, drop-path) would use.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import webdataset as wds

from ..corrections import Corrections
from ..datasets.loader import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ShardDataset,
    ShardInfo,
    SharedEpoch,
    TargetEncoder,
    ToNormalizedTensor,
    decode_sample,
    shard_source,
    shuffle_samples,
    take_quota,
    tar_samples,
)

COPY_KEY = "__copy__"
JSON_ONLY = frozenset(("json",))


# ---------------------------------------------------------------------------------------------
# Repeat factors
# ---------------------------------------------------------------------------------------------

def label_frequencies(folder: str | Path, split: str = "train") -> tuple[np.ndarray, int]:
    """``(fraction of the split's images that carry each label, number of images)`` from the jsons."""
    info = ShardInfo.load(folder)
    counts = np.zeros(len(info.label_names), dtype=np.int64)
    images = 0
    for url in info.shard_urls(split):
        for meta in _iter_json(url):
            images += 1
            labels = sorted(set(meta.get("labels") or []))
            if labels:
                counts[labels] += 1
    return counts / max(images, 1), images


def category_repeat_factors(frequencies: Sequence[float] | np.ndarray, threshold: float) -> np.ndarray:
    """``r(c) = max(1, sqrt(t / f(c)))`` per label; a label never seen gets 1."""
    if threshold <= 0:
        raise ValueError(f"repeat threshold must be > 0, not {threshold}")
    freq = np.asarray(frequencies, dtype=np.float64)
    with np.errstate(divide="ignore"):
        factors = np.sqrt(threshold / freq)
    return np.where(freq > 0, np.maximum(1.0, factors), 1.0)


def image_repeat_factor(labels: Iterable[int], factors: np.ndarray) -> float:
    """An image's repeat factor: the largest of its labels' (1 without labels)."""
    labels = list(labels)
    return float(factors[labels].max()) if labels else 1.0


def stochastic_round(value: float, seed: int, epoch: int, key: str) -> int:
    """``floor(value)``, plus 1 with probability ``value - floor(value)``; fixed by (seed, epoch, key)."""
    whole = math.floor(value)
    return whole + (_uniform(seed, epoch, key, "repeat") < value - whole)


@dataclass(frozen=True)
class RepeatFactors:
    """Repeat factors of a split's labels and the expected number of samples per epoch they give."""

    factors: np.ndarray  # per label
    threshold: float
    expected_samples: int  # sum of the images' repeat factors, rounded

    @classmethod
    def from_shards(cls, folder: str | Path, threshold: float, split: str = "train") -> RepeatFactors:
        frequencies, _ = label_frequencies(folder, split)
        factors = category_repeat_factors(frequencies, threshold)
        url_list = ShardInfo.load(folder).shard_urls(split)
        expected = sum(image_repeat_factor(set(meta.get("labels") or []), factors)
                       for url in url_list for meta in _iter_json(url))
        return cls(factors, threshold, round(expected))

    def repeats(self, meta: Mapping[str, Any], key: str, seed: int, epoch: int) -> int:
        return stochastic_round(image_repeat_factor(set(meta.get("labels") or []), self.factors), seed, epoch, key)


def repeat_samples(src: Iterable[dict[str, Any]], factors: RepeatFactors, seed: int,
                   epoch: SharedEpoch) -> Iterator[dict[str, Any]]:
    """Pipeline stage over raw samples: each sample ``repeats`` times, copies tagged ``__copy__``."""
    current = epoch.value
    for sample in src:
        meta = json.loads(sample["json"])
        for copy in range(factors.repeats(meta, sample["__key__"], seed, current)):
            yield sample | {COPY_KEY: copy}


# ---------------------------------------------------------------------------------------------
# Transforms and the train pipeline
# ---------------------------------------------------------------------------------------------

def train_transform(image_size: int, *, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                    crop_scale: float = 0.25, color_jitter: float = 0.2) -> Any:
    """RandomResizedCrop (area fraction ``crop_scale``..1), horizontal flip, ColorJitter, normalize."""
    from torchvision import transforms

    steps: list[Any] = [transforms.RandomResizedCrop(image_size, scale=(crop_scale, 1.0)),
                        transforms.RandomHorizontalFlip()]
    if color_jitter > 0:
        steps.append(transforms.ColorJitter(color_jitter, color_jitter, color_jitter))
    return transforms.Compose([*steps, ToNormalizedTensor(mean, std)])


def eval_transform(image_size: int, *, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                   interpolation: str = "bilinear", crop_pct: float = 1.0) -> Any:
    """Short side to ``image_size / crop_pct`` (timm's eval resize), central ``image_size`` square, normalize."""
    from torchvision import transforms

    resize = transforms.Resize(math.floor(image_size / crop_pct),
                               interpolation=transforms.InterpolationMode(interpolation))
    return transforms.Compose([resize, transforms.CenterCrop(image_size), ToNormalizedTensor(mean, std)])


def image_settings(backbone: torch.nn.Module, image_size: int, *, pretrained: bool) -> dict[str, Any]:
    """The eval transform's arguments (a checkpoint's ``image`` entry): mean and std from timm's data
    config of ``backbone``, and with timm's ``pretrained`` weights also their interpolation and crop
    fraction; a random-init backbone keeps bilinear and the whole short side, where timm's defaults
    (bicubic, 0.875) would change its results for no preprocessing to match."""
    from timm.data import resolve_data_config

    data_config = resolve_data_config(model=backbone)
    settings = {"size": image_size, "mean": list(data_config["mean"]), "std": list(data_config["std"]),
                "interpolation": "bilinear", "crop_pct": 1.0}
    if pretrained:
        settings |= {"interpolation": data_config["interpolation"], "crop_pct": data_config["crop_pct"]}
    return settings


def decode_with_copy(sample: dict[str, Any], draft_size: int | None = None) -> dict[str, Any]:
    """The loader's ``decode_sample``, keeping the repeat copy number."""
    return decode_sample(sample, draft_size=draft_size) | {"copy": sample.get(COPY_KEY, 0)}


@dataclass(frozen=True)
class SeededEncoder:
    """A decoded sample → ``(augment(image), targets)``; the augmentation's randomness is seeded by
    (seed, epoch, key, copy) under a forked RNG, leaving the process's RNG untouched."""

    transform: Any
    targets: TargetEncoder
    seed: int
    epoch: SharedEpoch

    def __call__(self, sample: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.random.fork_rng(devices=[]):
            seed = _sample_seed(self.seed, self.epoch.value, sample["key"], sample["copy"])
            torch.default_generator.manual_seed(seed)
            image = self.transform(sample["image"])
        return image, self.targets(sample["json"])


def train_dataset(folder: str | Path, *, transform: Any, num_labels: int,
                  carry_targets: Mapping[str, Sequence[str]] | None = None,
                  facet_targets: Mapping[str, Sequence[int]] | None = None, corrections: Corrections | None = None,
                  split: str = "train",
                  image_size: int | None = None, shuffle_buffer: int = 1000, seed: int = 0, epoch: int = 0,
                  repeat: RepeatFactors | None = None) -> ShardDataset:
    """The training stream of ``(image, targets)``; see the module docstring for its stages and
    ``weaklabel.datasets.loader.make_dataset`` for the targets."""
    info = ShardInfo.load(folder)
    shared = SharedEpoch(epoch)
    num_samples = info.num_samples[split] if repeat is None else repeat.expected_samples
    stages: list[Any] = [
        partial(shard_source, info.shard_urls(split), seed=seed, epoch=shared, training=True, resample=False),
        wds.split_by_node,
        wds.split_by_worker,
        tar_samples,
    ]
    if repeat is not None:
        stages.append(partial(repeat_samples, factors=repeat, seed=seed, epoch=shared))
    stages.append(partial(take_quota, num_samples=num_samples, training=True, resample=False))
    if shuffle_buffer > 1:
        stages.append(partial(shuffle_samples, bufsize=shuffle_buffer, seed=seed, epoch=shared))
    stages += [
        wds.map(partial(decode_with_copy, draft_size=image_size)),
        wds.map(SeededEncoder(transform, TargetEncoder.create(num_labels, carry_targets, facet_targets, corrections),
                              seed, shared)),
    ]
    return ShardDataset(*stages, epoch=shared, num_samples=num_samples)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _digest(*parts: object) -> int:
    text = "weaklabel:" + ":".join(map(str, parts))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _uniform(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts``, the same in every process."""
    return (_digest(*parts) >> 11) / float(1 << 53)


def _sample_seed(seed: int, epoch: int, key: str, copy: int) -> int:
    return _digest(seed, epoch, key, copy, "augment") & ((1 << 63) - 1)


def _iter_json(path: str) -> Iterator[dict[str, Any]]:
    """The json members of a tar (images are skipped, not read)."""
    for sample in tar_samples([{"url": path}], JSON_ONLY):
        yield json.loads(sample["json"])
