"""Shard-writing throughput: ``weaklabel shards`` against img2dataset on the same files and settings.

Two image sets, each written by both tools with size 256, ``keep_ratio``, JPEG quality 95,
WebDataset output, 500 samples per shard, 2 worker processes and 16 fetch threads each:

(a) the first ``--fashion-n`` images of the fashion dump (60x80 JPEG originals, so both tools
    upscale them), read in place from ``--fashion-dir``; skipped when the folder is absent;
(b) ``--photos-n`` synthetic 448x448 JPEG photos (``generate_listings``), which both tools shrink.

img2dataset reads ``file://`` URLs of the same files, with its EXIF extraction off (weaklabel
does not extract EXIF) and its sha256 on (weaklabel hashes every image for deduplication). Both
area-average when shrinking; img2dataset upscales with Lanczos, weaklabel with bicubic.
weaklabel's input is made by the real ``vocab`` and ``assign`` stages; ``keep_unlabelled`` makes
it process every image, as img2dataset does. Each timing covers the call that does the work,
worker start-up included (img2dataset's process pool; weaklabel's 2-worker local Dask cluster,
started inside the timed region by ``weaklabel.parallel.local_cluster``, as the stage starts it),
interpreter start-up and imports excluded. For (b) the script also times the single-core
decode+resize+encode rate (``process_image`` in one thread over bytes already in memory) and reports
how close the stage comes to that rate times the worker count; and weaklabel is also run as one
process (``workers=1``, no Dask) to show what the cluster costs.

img2dataset is not a dependency of weaklabel: its pins (pandas, webdataset) clash with ours, so
install it in a separate environment and name its interpreter::

    python -m venv /tmp/i2d-venv && /tmp/i2d-venv/bin/pip install img2dataset
    python benchmarks/shards_throughput.py --img2dataset-python /tmp/i2d-venv/bin/python

Without it (the default interpreter lacking img2dataset) only weaklabel's figures are printed.
"""

from __future__ import annotations

# Only the standard library at the top: where Dask spawns its workers (not Linux, see
# weaklabel.parallel.local_cluster) it re-imports this module in every worker.
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE, QUALITY, PER_SHARD, THREADS = 256, 95, 500, 16

IMG2DATASET_RUN = """
import json, sys, time
from img2dataset import download
args = json.loads(sys.argv[1])
start = time.perf_counter()
download(url_list=args["urls"], input_format="parquet", url_col="url", output_format="webdataset",
         output_folder=args["out"], processes_count=args["workers"], thread_count=args["threads"],
         image_size=args["size"], resize_mode="keep_ratio", encode_format="jpg", encode_quality=args["quality"],
         number_sample_per_shard=args["per_shard"], distributor="multiprocessing", timeout=10, retries=0,
         extract_exif=False, compute_hash="sha256", disallowed_header_directives=[])
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fashion-dir", type=Path, default=Path("/work/shared/data/fashion"),
                        help="fashion dump with listings.csv and images/ (default: /work/shared/data/fashion)")
    parser.add_argument("--fashion-n", type=int, default=5000, help="fashion images to use (default: 5000)")
    parser.add_argument("--photos-n", type=int, default=2000, help="synthetic photos (default: 2000)")
    parser.add_argument("--photo-size", type=int, default=448, help="side of the synthetic photos (default: 448)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for both tools (default: 2)")
    parser.add_argument("--img2dataset-python", default=sys.executable,
                        help="interpreter that can import img2dataset (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shards-bench-") as tmp:
        tmp = Path(tmp)
        if (args.fashion_dir / "listings.csv").is_file():
            labeled = fashion_labeled(args.fashion_dir, args.fashion_n, tmp / "fashion")
            compare(f"(a) fashion, first {args.fashion_n} images, 60x80", labeled, args.fashion_dir,
                    tmp / "fashion", args)
        else:
            print(f"(a) skipped: {args.fashion_dir}/listings.csv is absent")
        labeled = photos_labeled(args.photos_n, args.photo_size, tmp / "photos")
        ours = compare(f"(b) synthetic photos, {args.photos_n} images, {args.photo_size}x{args.photo_size}",
                       labeled, tmp / "photos", tmp / "photos", args)
        single = single_core_rate(labeled, tmp / "photos")
        ideal = single * args.workers
        print(f"    single-core decode+resize+encode: {single:,.0f} images/s; x{args.workers} = {ideal:,.0f} "
              f"images/s; the stage reaches {ours / ideal:.0%} of that")


def fashion_labeled(fashion: Path, n: int, work: Path) -> Path:
    import pandas as pd

    from weaklabel.listings import ColumnRoles, Field

    work.mkdir(parents=True)
    pd.read_csv(fashion / "listings.csv", dtype=str, nrows=n).to_csv(work / "listings.csv", index=False)
    return label(work, ColumnRoles(fields=(Field("title", "text"),), id="id", image="image"))


def photos_labeled(n: int, size: int, work: Path) -> Path:
    from weaklabel.listings import ColumnRoles, Field
    from weaklabel.synthetic import generate_listings

    generate_listings(n, work, seed=0, image_size=size, progress=False)
    return label(work, ColumnRoles(fields=(Field("title", "text"), Field("tags", "tags", 0.5)), id="id", image="image"))


def label(work: Path, roles) -> Path:
    from weaklabel.labeling import assign_labels, build_vocabulary

    build_vocabulary(work / "listings.csv", roles, work / "vocab", progress=False, cache_dir=work / "cache")
    assign_labels(work / "listings.csv", work / "vocab", work / "labeled", roles=roles, progress=False)
    return work / "labeled"


def compare(title: str, labeled: Path, images_root: Path, work: Path, args: argparse.Namespace) -> float:
    """Run both tools on the same images; print both rates and return weaklabel's images/s."""
    print(title)
    images, seconds, phases = weaklabel_run(labeled, images_root, work / "weaklabel", args.workers)
    ours = images / seconds
    print(f"    weaklabel:   {images:6d} images in {seconds:6.2f} s = {ours:6,.0f} images/s  ({phases})")
    theirs = img2dataset_run(labeled, images_root, work / "img2dataset", args)
    if theirs:
        rate = theirs[0] / theirs[1]
        print(f"    img2dataset: {theirs[0]:6d} images in {theirs[1]:6.2f} s = {rate:6,.0f} images/s")
        print(f"    weaklabel / img2dataset: {ours / rate:.2f}x")
    images, seconds, phases = weaklabel_run(labeled, images_root, work / "weaklabel-1", 1)
    print(f"    weaklabel, 1 process: {images / seconds:,.0f} images/s ({phases})")
    return ours


def weaklabel_run(labeled: Path, images_root: Path, out: Path, workers: int, **options) -> tuple[int, float, str]:
    """(images processed, seconds, phase timings) of the stage: on a fresh local Dask cluster of
    ``workers`` processes, set up as ``weaklabel.parallel`` does; in this process for 1. ``options``
    go to ``write_shards`` too."""
    from contextlib import nullcontext

    from weaklabel.datasets import write_shards
    from weaklabel.parallel import local_cluster

    start = time.perf_counter()
    cluster = nullcontext() if workers == 1 else local_cluster(workers)
    with cluster:
        started = time.perf_counter() - start
        manifest = write_shards(labeled, out, images_root=images_root, size=SIZE, resize_mode="keep_ratio",
                                image_format="jpg", quality=QUALITY, keep_unlabelled=True, max_samples=PER_SHARD,
                                fetch_threads=THREADS, workers=workers, progress=False,
                                scheduler=cluster.scheduler_address if workers > 1 else None, **options)
    seconds = time.perf_counter() - start
    phases = ", ".join(f"{k} {v:.1f}" for k, v in {"cluster start": started, **manifest["timings_s"]}.items())
    return manifest["counts"]["written"] + manifest["counts"]["duplicates"], seconds, phases


def img2dataset_run(labeled: Path, images_root: Path, out: Path, args: argparse.Namespace) -> tuple[int, float] | None:
    """(images written, seconds) of img2dataset on the same files, or None when it is not installed."""
    probe = subprocess.run([args.img2dataset_python, "-c", "import img2dataset"], capture_output=True, check=False)
    if probe.returncode:
        print(f"    img2dataset: skipped, {args.img2dataset_python} cannot import it (see the module docstring)")
        return None
    import pandas as pd

    out.mkdir(parents=True)
    part_files = sorted((labeled / "parts").glob("part-*.parquet"))
    images = pd.concat(pd.read_parquet(p, columns=["image"]) for p in part_files)
    urls = [(images_root / path).resolve().as_uri() for path in images["image"]]
    pd.DataFrame({"url": urls}).to_parquet(out / "urls.parquet", index=False)
    spec = {"urls": str(out / "urls.parquet"), "out": str(out / "shards"), "workers": args.workers,
            "threads": THREADS, "size": SIZE, "quality": QUALITY, "per_shard": PER_SHARD}
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}  # no update check over a network we do not have
    run = subprocess.run([args.img2dataset_python, "-c", IMG2DATASET_RUN, json.dumps(spec)],
                         capture_output=True, text=True, check=True, env=env)
    seconds = json.loads(run.stdout.strip().splitlines()[-1])["seconds"]
    stats = [json.loads(p.read_text()) for p in (out / "shards").glob("*_stats.json")]
    return sum(s["successes"] for s in stats), seconds


def single_core_rate(labeled: Path, images_root: Path) -> float:
    """Images/s of decode+resize+encode alone, in one thread, on bytes already in memory."""
    import pandas as pd

    from weaklabel.datasets.images import ImageOptions, process_image

    part_files = sorted((labeled / "parts").glob("part-*.parquet"))
    paths = pd.concat(pd.read_parquet(p, columns=["image"]) for p in part_files)["image"]
    blobs = [(images_root / path).read_bytes() for path in paths]
    options = ImageOptions(size=SIZE, resize_mode="keep_ratio", image_format="jpg", quality=QUALITY)
    start = time.perf_counter()
    for data in blobs:
        process_image(data, options)
    return len(blobs) / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
