"""Vocab + assign at scale: 1M, 4M and 10M generated text-only listings on this machine.

The listings come from the demo's generator (``weaklabel.synthetic.text.listing_row``: title,
description, tags, category path, attributes; no image), 250,000 to a Parquet file, generated once
into ``--data`` and reused: size N reads the first N / 250,000 files. Each size runs
``weaklabel vocab`` then ``weaklabel assign`` as commands, with their defaults (a local Dask
cluster of one worker per core, each file a partition) and a cold embedding cache, and prints the
wall time, listings per second and peak memory of each: the proportional set size (PSS) of the
command and its worker processes together, sampled every 0.5 s, so pages that forked workers
share count once. Targets: 10M listings end to end <= 20 minutes, peak memory <= 6 GiB and
growing less than linearly with the listings.

    python benchmarks/scale.py [--sizes 1000000 4000000 10000000] [--data bench-out/scale/listings]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import Pool
from pathlib import Path

import pandas as pd
import psutil

ROWS_PER_FILE = 250_000
GIB = 2**30
TRUTH = ["image", "true_type", "true_colour", "true_material"]
ROLES = ["--image", "", "--text", "title", "--text", "description:0.3", "--tags", "tags:0.5",
         "--category", "category_path:0.5"]
TARGET_SECONDS = 20 * 60
TARGET_PEAK = 6 * GIB


def write_file(args: tuple[Path, int]) -> None:
    from weaklabel.synthetic.text import listing_row

    folder, index = args
    path = folder / f"part-{index:05d}.parquet"
    if path.exists():
        return
    start = index * ROWS_PER_FILE
    frame = pd.DataFrame([listing_row(0, i) for i in range(start, start + ROWS_PER_FILE)]).drop(columns=TRUTH)
    frame.to_parquet(path.with_suffix(".tmp"), index=False)
    path.with_suffix(".tmp").rename(path)


def generate(folder: Path, n_files: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    missing = [(folder, i) for i in range(n_files) if not (folder / f"part-{i:05d}.parquet").exists()]
    if missing:
        print(f"generating {len(missing)} files of {ROWS_PER_FILE:,} listings in {folder} ...", flush=True)
        with Pool(len(os.sched_getaffinity(0))) as pool:
            pool.map(write_file, missing)
    return [folder / f"part-{i:05d}.parquet" for i in range(n_files)]


def tree_pss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def run(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak PSS of ``command`` and its children; stops the benchmark if it fails."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process = psutil.Process(child.pid)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_pss(process))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if child.returncode:
        sys.exit(f"{' '.join(command[:3])} failed:\n{output[-3000:]}")
    return seconds, peak


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000, 10_000_000])
    parser.add_argument("--data", type=Path, default=Path("bench-out/scale/listings"))
    parser.add_argument("--out", type=Path, default=Path("bench-out/scale/runs"))
    args = parser.parse_args()
    if any(n % ROWS_PER_FILE for n in args.sizes):
        sys.exit(f"--sizes must be multiples of {ROWS_PER_FILE:,}")
    files = generate(args.data, max(args.sizes) // ROWS_PER_FILE)
    weaklabel = str(Path(sys.executable).with_name("weaklabel"))
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} before the runs", flush=True)
    rows = []
    for n in args.sizes:
        inputs = [str(f) for f in files[: n // ROWS_PER_FILE]]
        vocab, labeled = args.out / f"vocab-{n}", args.out / f"labeled-{n}"
        with tempfile.TemporaryDirectory() as cache:
            vocab_s, vocab_peak = run([weaklabel, "vocab", *inputs, "--out", str(vocab), "--overwrite", "-q",
                                       "--cache-dir", cache, *ROLES])
        assign_s, assign_peak = run([weaklabel, "assign", *inputs, "--vocab", str(vocab), "--out", str(labeled),
                                     "--overwrite", "-q"])
        total = vocab_s + assign_s
        rows.append({"listings": n, "vocab_s": vocab_s, "assign_s": assign_s, "total_s": total,
                     "listings_per_s": n / total, "vocab_peak_gib": vocab_peak / GIB,
                     "assign_peak_gib": assign_peak / GIB, "peak_gib": max(vocab_peak, assign_peak) / GIB})
        r = rows[-1]
        print(f"{n:>11,} listings: vocab {vocab_s:6.0f} s (peak {r['vocab_peak_gib']:.2f} GiB), assign "
              f"{assign_s:6.0f} s (peak {r['assign_peak_gib']:.2f} GiB), total {total:6.0f} s, "
              f"{r['listings_per_s']:,.0f} listings/s; load average {os.getloadavg()[0]:.2f}", flush=True)
        shutil.rmtree(labeled / "parts", ignore_errors=True)  # gigabytes of parts nobody reads again
    largest, smallest = rows[-1], rows[0]
    print(f"{largest['listings']:,} listings end to end: {largest['total_s'] / 60:.1f} min (target <= 20): "
          f"{verdict(largest['total_s'] <= TARGET_SECONDS)}")
    print(f"peak memory {largest['peak_gib']:.2f} GiB (target <= 6): "
          f"{verdict(largest['peak_gib'] * GIB <= TARGET_PEAK)}")
    if len(rows) > 1:
        growth = largest["peak_gib"] / smallest["peak_gib"]
        size = largest["listings"] / smallest["listings"]
        print(f"peak grows {growth:.2f}x for {size:.0f}x the listings (target: less than linear): "
              f"{verdict(growth < size)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
