"""Decoded images/s of the weaklabel shard loader beside a plain hand-written WebDataset pipeline.

Shards: ``--n`` synthetic listings (``weaklabel.synthetic``, ``--source-size`` px JPEGs) packed
with ``webdataset.TarWriter`` in the shard format (``benchmarks/synthetic_shards.py``: json with
labels and ``articleType``, cls). Every pipeline makes 224 px training crops on the same shards:

* ``plain``: ``wds.WebDataset(urls).shuffle(1000).decode("pil").to_tuple("jpg", "cls")
  .map_tuple(transform, int)`` with RandomResizedCrop(224) + ToTensor + Normalize;
* ``weaklabel``: ``make_dataset`` (multi-hot labels + an articleType index) with that same transform;
* ``weaklabel+fused``: ``make_dataset`` with RandomResizedCrop(224) + ``ToNormalizedTensor``
  (ToTensor and Normalize in one pass, same values).

Each runs in a DataLoader (batch 64, persistent workers) with 0 and 2 workers, one thread per
process; once workers are started, the best of ``--repeats`` epochs is kept, runs interleaved so that
a noisy machine hurts all alike. Printed: images/s, images/s per worker and the ratio to plain.

    python benchmarks/loader_throughput.py [--n 3000] [--out bench-out/loader] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
import webdataset as wds
from torch.utils.data import DataLoader
from torchvision import transforms

from synthetic_shards import build_shards
from weaklabel.datasets.loader import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ToNormalizedTensor,
    carry_classes,
    make_dataset,
    make_loader,
)

BATCH = 64
CROP = 224


def torchvision_transform() -> Callable:
    return transforms.Compose([transforms.RandomResizedCrop(CROP), transforms.ToTensor(),
                               transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def fused_transform() -> Callable:
    return transforms.Compose([transforms.RandomResizedCrop(CROP), ToNormalizedTensor()])


def plain_loader(folder: Path, workers: int) -> DataLoader:
    urls = sorted(str(p) for p in folder.glob("train-*.tar"))
    dataset = (wds.WebDataset(urls, shardshuffle=False).shuffle(1000).decode("pil")
               .to_tuple("jpg", "cls").map_tuple(torchvision_transform(), int))
    return DataLoader(dataset, batch_size=BATCH, num_workers=workers, persistent_workers=workers > 0)


def weaklabel_loader(folder: Path, workers: int, transform: Callable) -> DataLoader:
    dataset = make_dataset(folder, transform=transform, image_size=CROP,
                           carry_targets={"articleType": carry_classes(folder, "articleType")})
    return make_loader(dataset, BATCH, workers, pin_memory=False)


def epoch_rate(loader: DataLoader) -> float:
    """Images per second over one pass."""
    start, images = time.perf_counter(), 0
    for batch in loader:
        images += len(batch[0])
    return images / (time.perf_counter() - start)


def measure(loaders: dict[str, DataLoader], repeats: int) -> dict[str, float]:
    """Best images/s of each loader over ``repeats`` interleaved epochs, after starting its workers."""
    for loader in loaders.values():
        next(iter(loader))
    best = dict.fromkeys(loaders, 0.0)
    for _ in range(repeats):
        for name, loader in loaders.items():
            best[name] = max(best[name], epoch_rate(loader))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--source-size", type=int, default=288)
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("bench-out/loader"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = build_shards(args.n, args.source_size, args.shard_size, args.out / "shards")
    print(f"{args.n} samples, {args.source_size} px JPEG -> {CROP} px crops, batch {BATCH}, {os.cpu_count()} cores")
    print(f"{'workers':>7}  {'pipeline':<16} {'images/s':>9} {'per worker':>10} {'vs plain':>8}")
    for workers in args.workers:
        loaders = {"plain": plain_loader(folder, workers),
                   "weaklabel": weaklabel_loader(folder, workers, torchvision_transform()),
                   "weaklabel+fused": weaklabel_loader(folder, workers, fused_transform())}
        rates = measure(loaders, args.repeats)
        for name, rate in rates.items():
            print(f"{workers:>7}  {name:<16} {rate:>9.0f} {rate / max(workers, 1):>10.0f} "
                  f"{rate / rates['plain']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
