"""Training images/s of ``weaklabel train`` beside a minimal hand-written timm + WebDataset loop.

Shards: ``--n`` synthetic listings (``weaklabel.synthetic``, ``--source-size`` px JPEGs) packed
with ``webdataset.TarWriter`` in the shard format (``benchmarks/synthetic_shards.py``).
For each model and image size, both loops train with the same settings: batch size, image size,
AdamW, sigmoid BCE over the labels, RandomResizedCrop(scale 0.25..1) + flip + ColorJitter(0.2),
DataLoader workers, shuffle buffer 1000, and on CUDA bf16 autocast and channels_last:

* ``plain``: ``timm.create_model(name, num_classes=L)`` and ``wds.WebDataset(urls).shuffle(1000)
  .decode("pil").to_tuple("jpg", "json").map_tuple(transform, multi_hot)`` in a DataLoader, a
  forward/backward/step loop;
* ``weaklabel``: ``weaklabel.training.train`` (embedding head, task heads, masking, logging,
  EMA off, no validation split), its images/s read from ``metrics.jsonl``.

Each measurement runs in a fresh forked process. The first ``--warmup`` steps of each are not
timed. Printed per model and size: images/s of both, the ratio (target >= 0.95), and the share of
step time spent waiting for data. On the CPU, ``weaklabel train`` raises glibc's malloc thresholds
(``weaklabel.training.allocator``), so the plain loop runs a second time with the same settings
and a second ratio compares the loops alone. Then the peak
memory (RSS of the main process; RSS and PSS summed with its workers) of a ``weaklabel train`` run at batch 64 and
64 px on the CPU. efficientformer_l3 has attention biases fixed to a 224 px input and is skipped
at other sizes.

    python benchmarks/training_throughput.py                 # CPU: 64 px (batch 64) and 224 px (batch 16)
    python benchmarks/training_throughput.py --quick         # tiny settings: checks the script works
    python benchmarks/training_throughput.py --device cuda --bf16 --sizes 224 --batch 224:128 --steps 60
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

import pandas as pd
import torch
import webdataset as wds
from torch.utils.data import DataLoader
from torchvision import transforms

from synthetic_shards import build_shards
from weaklabel.datasets.loader import IMAGENET_MEAN, IMAGENET_STD

MODELS = ("efficientnet_b0", "efficientformer_l3", "vit_small_patch16_224")
FIXED_224 = {"efficientformer_l3"}


# ------------------------------------------------------------------------------------------------
# the hand-written reference loop
# ------------------------------------------------------------------------------------------------

class MultiHot:
    def __init__(self, num_labels: int) -> None:
        self.num_labels = num_labels

    def __call__(self, meta: dict) -> torch.Tensor:
        target = torch.zeros(self.num_labels)
        target[meta["labels"]] = 1.0
        return target


def plain_loop(shards: Path, model_name: str, size: int, batch: int, steps: int, warmup: int, workers: int,
               device: torch.device, bf16: bool) -> dict:
    import timm

    info = json.loads((shards / "_info.json").read_text())["splits"]["train"]
    urls = [str(shards / name) for name in info["filenames"]]
    num_labels = len(pd.read_parquet(shards / "labels.parquet"))
    transform = transforms.Compose([
        transforms.RandomResizedCrop(size, scale=(0.25, 1.0)), transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(0.2, 0.2, 0.2), transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    dataset = (wds.WebDataset(urls, shardshuffle=100, empty_check=False)
               .shuffle(1000).decode("pil").to_tuple("jpg", "json").map_tuple(transform, MultiHot(num_labels)))
    kwargs = {"img_size": size} if "vit" in model_name else {}
    model = timm.create_model(model_name, pretrained=False, num_classes=num_labels, **kwargs)
    cuda = device.type == "cuda"
    model.to(device, memory_format=torch.channels_last if cuda else torch.contiguous_format).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, **({"fused": True} if cuda else {}))
    criterion = torch.nn.BCEWithLogitsLoss(reduction="sum")
    step, images, wait, start = 0, 0, 0.0, None
    while step < steps:
        loader = DataLoader(dataset, batch_size=batch, num_workers=workers, drop_last=True,
                            pin_memory=cuda, persistent_workers=False)
        waited = time.perf_counter()
        for x, y in loader:
            if start is not None:
                wait += time.perf_counter() - waited
            x = x.to(device, non_blocking=True, memory_format=torch.channels_last if cuda else torch.contiguous_format)
            y = y.to(device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and bf16):
                logits = model(x)
            loss = criterion(logits.float(), y) / x.shape[0]
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if start is not None:
                images += x.shape[0]
            if step == warmup:
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
            if step >= steps:
                break
            waited = time.perf_counter()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return {"images_per_s": images / elapsed, "data_wait_share": wait / elapsed}


# ------------------------------------------------------------------------------------------------
# weaklabel train
# ------------------------------------------------------------------------------------------------

def weaklabel_loop(shards: Path, model_name: str, size: int, batch: int, steps: int, warmup: int, workers: int,
                   device: torch.device, bf16: bool) -> dict:
    from weaklabel.training import train

    with tempfile.TemporaryDirectory() as tmp:
        train(shards, Path(tmp) / "run", model=model_name, image_size=size, batch_size=batch, steps=steps,
              workers=workers, device=str(device), precision="bf16" if (bf16 and device.type == "cuda") else "fp32",
              log_every=warmup, checkpoint_every=10**9, warmup_steps=0, progress=False, crop_scale=0.25,
              color_jitter=0.2, shuffle_buffer=1000)
        lines = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    timed = [line for line in lines if line["kind"] == "train" and line["step"] > warmup]
    seconds = sum(line["window_s"] for line in timed)
    images = sum(line["images_per_s"] * line["window_s"] for line in timed)
    wait = sum(line["data_wait_s"] for line in timed)
    return {"images_per_s": images / seconds, "data_wait_share": wait / seconds}


def in_child(loop: Callable[..., dict], settings: tuple, keep_freed: bool = False) -> dict:
    """Run one measurement in a fresh forked process, so that no run inherits another's allocator
    state or malloc settings (``weaklabel train`` raises glibc's thresholds on the CPU)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        return pool.submit(_measure, loop, settings, keep_freed).result()


def _measure(loop: Callable[..., dict], settings: tuple, keep_freed: bool) -> dict:
    if keep_freed:
        from weaklabel.training.allocator import keep_freed_memory

        keep_freed_memory()
    return loop(*settings)


def peak_memory(shards: Path, model_name: str, size: int, batch: int, steps: int, workers: int) -> dict[str, float]:
    """Peak memory (MiB) of ``weaklabel train`` on the CPU: the main process's RSS, and RSS and PSS
    summed over it and its DataLoader workers (forked workers share pages, which RSS counts in
    each process and PSS splits between them)."""
    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "weaklabel.cli", "train", str(shards), "--out", str(Path(tmp) / "run"),
                   "--model", model_name, "--image-size", str(size), "--batch-size", str(batch), "--steps",
                   str(steps), "--workers", str(workers), "--device", "cpu", "-q"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        peak = {"main_rss": 0.0, "tree_rss": 0.0, "tree_pss": 0.0}
        root = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                rss = [p.memory_info().rss for p in tree]
                pss = [getattr(p.memory_full_info(), "pss", 0) for p in tree]
            except psutil.Error:
                continue
            peak = {"main_rss": max(peak["main_rss"], rss[0] / 2**20),
                    "tree_rss": max(peak["tree_rss"], sum(rss) / 2**20),
                    "tree_pss": max(peak["tree_pss"], sum(pss) / 2**20)}
            time.sleep(0.2)
        if process.returncode:
            raise RuntimeError(f"memory run failed ({process.returncode})")
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="timm models (default: %(default)s)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 224], help="image sizes (default: 64 224)")
    parser.add_argument("--batch", default="64:64,224:16",
                        help="batch size per image size, SIZE:BATCH,... (default: 64:64,224:16)")
    parser.add_argument("--steps", type=int, default=12, help="steps per measurement, warmup included (default: 12)")
    parser.add_argument("--warmup", type=int, default=4, help="untimed first steps (default: 4)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default: 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on CUDA in both loops (default: off)")
    parser.add_argument("--n", type=int, default=2000, help="synthetic listings in the shards (default: 2000)")
    parser.add_argument("--source-size", type=int, default=256, help="stored image side (default: 256)")
    parser.add_argument("--out", default="bench-out/training", help="shards cache folder (default: %(default)s)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS run")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings to check the script: resnet10t, 32 px, batch 8, 6 steps, 300 listings")
    args = parser.parse_args()
    if args.quick:
        args.models, args.sizes, args.batch, args.steps, args.warmup = ["resnet10t"], [32], "32:8", 6, 2
        args.n, args.source_size, args.workers, args.out = 300, 64, 1, "bench-out/training-quick"
    batches = {int(k): int(v) for k, v in (item.split(":") for item in args.batch.split(","))}
    device = torch.device(args.device)
    shards = build_shards(args.n, args.source_size, 250, Path(args.out) / "shards")
    print(f"device {device}, bf16 {args.bf16 and device.type == 'cuda'}, workers {args.workers}, "
          f"torch threads {torch.get_num_threads()}, {args.steps} steps of which {args.warmup} untimed")
    cpu = device.type == "cpu"
    print(f"{'model':24} {'size':>4} {'batch':>5} {'plain img/s':>11} {'weaklabel img/s':>15} {'ratio':>6} "
          f"{'wait plain':>10} {'wait weaklabel':>14}" + (f" {'plain+malloc img/s':>16} {'ratio':>6}" if cpu else ""))
    for model_name in args.models:
        for size in args.sizes:
            batch = batches.get(size, 16)
            if model_name in FIXED_224 and size != 224:
                print(f"{model_name:24} {size:>4} {batch:>5}   n/a: attention biases are fixed to 224 px")
                continue
            settings = (shards, model_name, size, batch, args.steps, args.warmup, args.workers, device, args.bf16)
            plain = in_child(plain_loop, settings)
            ours = in_child(weaklabel_loop, settings)
            line = (f"{model_name:24} {size:>4} {batch:>5} {plain['images_per_s']:>11.1f} "
                    f"{ours['images_per_s']:>15.1f} {ours['images_per_s'] / plain['images_per_s']:>6.2f} "
                    f"{plain['data_wait_share']:>10.1%} {ours['data_wait_share']:>14.1%}")
            if cpu:
                tuned = in_child(plain_loop, settings, keep_freed=True)
                line += f" {tuned['images_per_s']:>16.1f} {ours['images_per_s'] / tuned['images_per_s']:>6.2f}"
            print(line, flush=True)
    if not args.no_memory:
        model_name = args.models[0]
        size, batch = (32, 8) if args.quick else (64, 64)
        peak = peak_memory(shards, model_name, size, batch, args.steps, args.workers)
        print(f"peak memory of weaklabel train ({model_name}, {size} px, batch {batch}, {args.workers} workers, "
              f"CPU): main process RSS {peak['main_rss']:.0f} MiB; with workers RSS {peak['tree_rss']:.0f} MiB, "
              f"PSS {peak['tree_pss']:.0f} MiB")


if __name__ == "__main__":
    main()
