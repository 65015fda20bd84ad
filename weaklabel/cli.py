"""The ``weaklabel`` command: one subcommand per pipeline stage, each a thin shell over the API."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from . import __version__

EXPECTED_ERRORS = (ValueError, FileNotFoundError)  # about the input: the message says it all
EPILOG = "The README describes every file a command writes, and every option."


def _add_roles(parser: argparse.ArgumentParser, *, required_text: bool) -> None:
    group = parser.add_argument_group("columns of the listings")
    group.add_argument("--id", default=None, metavar="COL", help="column with the listing id (default: id)")
    group.add_argument("--image", default=None, metavar="COL",
                       help="column with the image path or URL (default: image); '' for none")
    group.add_argument("--text", action="append", default=[], metavar="COL[:W]",
                       help="free-text column whose 1-3-grams are terms, with an optional weight 0<W<=1 "
                            "(repeatable: --text title --text description:0.3)"
                            + ("" if required_text else "; default: the columns the vocabulary was built from"))
    group.add_argument("--tags", action="append", default=[], metavar="COL[:W]",
                       help="tag column: a list, a JSON list or a delimited string; each tag is one term (repeatable)")
    group.add_argument("--category", action="append", default=[], metavar="COL[:W]",
                       help="category path column like 'Home > Kitchen > Mugs'; each level is one term (repeatable)")
    group.add_argument("--tag-separator", default=None, metavar="SEP", help="separator of delimited tags (default: ',')")
    group.add_argument("--category-separator", default=None, metavar="SEP",
                       help="separator of category levels (default: '>')")
    group.add_argument("--max-field-chars", type=int, default=None, metavar="N",
                       help="longer field values are truncated and counted (default: 20000)")


def _add_dask(parser: argparse.ArgumentParser, partition: str = "each input file") -> None:
    group = parser.add_argument_group(f"partitions on Dask ({partition} is one partition)")
    group.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes of the local Dask cluster; 1 runs inline (default: the number of cores)")
    group.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="run on an existing Dask cluster instead (its workers must see the same paths)")


def _add_overwrite(parser: argparse.ArgumentParser, also: str = "") -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help=f"{also}write into --out even if it holds files this command did not write: files with "
                             "the names it writes are replaced, the others are kept (default: refuse)")


def _roles(args: argparse.Namespace, fallback=None):
    """Column roles from the options; unset options fall back to a vocabulary's recorded roles."""
    from .listings import ColumnRoles, Field

    fields = tuple(
        Field.parse(spec, role)
        for role, specs in (("text", args.text), ("tags", args.tags), ("category", args.category))
        for spec in specs
    )
    base = fallback.to_dict() if fallback is not None else {}
    merged = {
        "fields": [dataclasses.asdict(f) for f in fields] or base.get("fields", []),
        "id": args.id if args.id is not None else base.get("id", "id"),
        "image": (args.image or None) if args.image is not None else base.get("image", "image"),
        "tag_separator": args.tag_separator or base.get("tag_separator", ","),
        "category_separator": args.category_separator or base.get("category_separator", ">"),
        "max_field_chars": args.max_field_chars or base.get("max_field_chars", 20_000),
    }
    if not merged["fields"]:
        raise SystemExit("error: name at least one listing field with --text, --tags or --category")
    return ColumnRoles.from_dict(merged)


def _cmd_vocab(args: argparse.Namespace) -> None:
    from .labeling.stages import build_vocabulary, vocab_params

    options = {
        "ngram_range": (args.ngram_min, args.ngram_max), "stopwords": args.stopwords, "min_support": args.min_support,
        "max_df": args.max_df, "min_npmi": args.min_npmi, "blocklist": args.blocklist or (),
        "allowlist": args.allowlist or (), "model": args.model, "batch_size": args.batch_size, "device": args.device,
        "cache_dir": args.cache_dir, "cluster": not args.no_cluster, "min_label_support": args.min_label_support,
        "merge_threshold": args.merge_threshold, "attach_threshold": args.attach_threshold,
        "rare_merge_threshold": args.rare_merge_threshold, "head_prior": args.head_prior,
        "boilerplate": not args.no_boilerplate, "boilerplate_group": args.group, "overrides": args.overrides,
    }
    build_vocabulary(args.listings, _roles(args), args.out, progress=not args.quiet, overwrite=args.overwrite,
                     **vocab_params(options))
    _print_summary("vocab", args.out)
    print(f"wrote {args.out}/labels.parquet, terms.parquet, label_embeddings.npy, boilerplate.parquet, rejected.parquet, "
          "report.html, manifest.json")


def _cmd_assign(args: argparse.Namespace) -> None:
    from .labeling.stages import assign_labels
    from .labeling.vocabulary import Vocabulary

    recorded = Vocabulary.load(args.vocab).roles
    roles = _roles(args, fallback=recorded)
    assign_labels(
        args.listings, args.vocab, args.out, roles=roles, keep=args.keep, rows_per_part=args.rows_per_part,
        workers=args.workers, scheduler=args.scheduler, progress=not args.quiet, overwrite=args.overwrite,
        top_k=args.top_k, min_score=args.min_score, fallback_threshold=args.fallback,
    )
    _print_summary("assign", args.out)
    print(f"wrote {args.out}/parts/part-*.parquet, labels.parquet, rejected.parquet and manifest.json")


def _print_summary(stage: str, out: str) -> None:
    """The stage's own summary of the folder it wrote (the lines 'weaklabel run' prints for it)."""
    from .artifacts import read_manifest
    from .stage import get

    for line in get(stage).summary(Path(out), read_manifest(out)):
        print(line)


def _cmd_example_data(args: argparse.Namespace) -> None:
    from .synthetic import generate_listings

    frame = generate_listings(args.n, args.out, seed=args.seed, image_size=args.image_size,
                              images=not args.no_images, progress=not args.quiet)
    print(f"wrote {len(frame)} listings to {Path(args.out) / 'listings.csv'}"
          + ("" if args.no_images else f" and their images to {Path(args.out) / 'images'}"))


def _cmd_shards(args: argparse.Namespace) -> None:
    from .datasets import write_shards
    from .datasets.fetch import DEFAULT_USER_AGENT

    write_shards(
        args.labeled, args.out, images_root=args.images_root, size=args.size, resize_mode=args.resize_mode,
        resize_only_if_bigger=args.resize_only_if_bigger, image_format=args.format, quality=args.quality,
        min_size=args.min_size, max_pixels=args.max_pixels, timeout=args.timeout, retries=args.retries,
        backoff=args.retry_backoff, max_download_bytes=args.max_download_bytes,
        user_agent=args.user_agent or DEFAULT_USER_AGENT, allow_outside_root=args.allow_outside_root,
        fetch_threads=args.fetch_threads, keep_unlabelled=args.keep_unlabelled, splits=args.split, carry=args.carry,
        max_samples=args.max_samples, max_bytes=args.max_bytes, partition_rows=args.partition_rows,
        workers=args.workers, scheduler=args.scheduler, progress=not args.quiet, overwrite=args.overwrite,
    )
    _print_summary("shards", args.out)
    print(f"wrote {args.out}/{{split}}-NNNNNN.tar, _info.json, {{split}}.index.json, README.md, rejected.parquet, "
          "duplicates.parquet, labels.parquet, manifest.json")


def _cmd_verify_shards(args: argparse.Namespace) -> None:
    from .datasets import verify_shards

    problems = verify_shards(args.shards, workers=args.workers, scheduler=args.scheduler, progress=not args.quiet)
    for problem in problems:
        print(problem)
    if problems:
        raise SystemExit(f"{len(problems)} problem(s) in {args.shards}")
    print(f"{args.shards}: every shard matches its manifest and every sample decodes")


def _vocab_parser(sub) -> None:
    p = sub.add_parser("vocab", help="build a label vocabulary from listing text",
                       description="Extract candidate terms from listing text, embed and cluster them into a "
                                   "label vocabulary. Writes labels.parquet, terms.parquet, label_embeddings.npy, "
                                   "boilerplate.parquet, "
                                   "rejected.parquet, report.html and manifest.json to --out.", epilog=EPILOG)
    p.add_argument("listings", nargs="+", help="listing files, directories or globs (csv, tsv, jsonl, parquet, .gz)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _add_overwrite(p)
    _add_roles(p, required_text=True)
    t = p.add_argument_group("candidate terms")
    t.add_argument("--ngram-min", type=int, metavar="N", default=1, help="shortest n-gram taken from free text (default: 1)")
    t.add_argument("--ngram-max", type=int, metavar="N", default=3, help="longest n-gram taken from free text (default: 3)")
    t.add_argument("--stopwords", default="english+marketplace+detected", metavar="LIST|FILE",
                   help="named lists joined by '+': 'english', 'marketplace' (seller filler: new, sale, free "
                        "shipping...), 'detected' (the stopwords of any other language the listings are written "
                        "in); or 'none', or a file with one word per line (default: english+marketplace+detected)")
    t.add_argument("--min-support", type=int, metavar="N", default=3, help="listings a term must occur in (default: 3)")
    t.add_argument("--max-df", type=float, metavar="X", default=0.5,
                   help="drop terms in more than this fraction of listings as generic (default: 0.5)")
    t.add_argument("--min-npmi", type=float, metavar="X", default=0.0,
                   help="drop n-grams whose words co-occur no more than chance (normalized PMI; default: 0.0)")
    t.add_argument("--no-boilerplate", action="store_true",
                   help="take terms from every sentence, even those many listings repeat (README: 'Boilerplate')")
    t.add_argument("--group", metavar="COLUMN",
                   help="a column (seller, shop) within which repeated sentences are also boilerplate")
    t.add_argument("--head-prior", type=float, metavar="N", default=20.0,
                   help="listings' worth of the corpus-wide phrase-end rate each label's informativeness starts "
                        "from; informativeness ranks a listing's labels (README: 'Scores'; default: 20)")
    t.add_argument("--blocklist", metavar="FILE", help="file of terms never to use, one per line")
    t.add_argument("--allowlist", metavar="FILE", help="file of terms always kept as candidates, one per line")
    e = p.add_argument_group("embeddings")
    e.add_argument("--model", default=None, metavar="NAME|DIR",
                   help="sentence-transformers model: a local directory or a hub name (default: the packaged "
                        "all-MiniLM-L6-v2, no download)")
    e.add_argument("--batch-size", type=int, metavar="N", default=256, help="texts per embedding batch (default: 256)")
    e.add_argument("--device", default=None, metavar="DEVICE", help="torch device for embeddings (default: cuda if present, else cpu)")
    e.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="embedding cache folder (default: $WEAKLABEL_CACHE/embeddings or ~/.cache/weaklabel/embeddings)")
    c = p.add_argument_group("clustering (see README: 'How clustering works')")
    c.add_argument("--no-cluster", action="store_true", help="no clustering: every frequent term is its own label")
    c.add_argument("--min-label-support", type=int, metavar="N", default=10,
                   help="support a term group needs to be a label on its own (default: 10)")
    c.add_argument("--merge-threshold", type=float, metavar="X", default=0.90,
                   help="cosine similarity at which frequent groups merge as synonyms (default: 0.90)")
    c.add_argument("--attach-threshold", type=float, metavar="X", default=0.80,
                   help="cosine similarity at which a rare term joins its nearest label (default: 0.80)")
    c.add_argument("--rare-merge-threshold", type=float, metavar="X", default=0.85,
                   help="cosine similarity linking rare terms into a new label (default: 0.85)")
    c.add_argument("--overrides", metavar="FILE", help="TOML file of edits: rename, merge, delete, add labels")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_vocab)


def _assign_parser(sub) -> None:
    p = sub.add_parser("assign", help="assign weak labels to listings with a vocabulary",
                       description="Match listing text against a vocabulary and write the weak labels, scores and "
                                   "evidence of every listing as Parquet parts in --out.", epilog=EPILOG)
    p.add_argument("listings", nargs="+", help="listing files, directories or globs (csv, tsv, jsonl, parquet, .gz)")
    p.add_argument("--vocab", required=True, help="vocabulary folder written by 'weaklabel vocab'")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _add_overwrite(p)
    _add_roles(p, required_text=False)
    p.add_argument("--top-k", type=int, metavar="N", default=20, help="at most this many labels per listing, the most informative first (default: 20)")
    p.add_argument("--min-score", type=float, metavar="X", default=0.3, help="drop labels scoring below this (default: 0.3)")
    p.add_argument("--fallback", type=float, default=None, metavar="SIM",
                   help="label listings that matched nothing with the labels nearest their text embedding, "
                        "at cosine similarity >= SIM (default: off)")
    p.add_argument("--keep", action="append", default=None, metavar="COL",
                   help="listing column to pass through (repeatable; default: all)")
    p.add_argument("--rows-per-part", type=int, metavar="N", default=250_000, help="listings per output part (default: 250000)")
    _add_dask(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_assign)


def _example_data_parser(sub) -> None:
    p = sub.add_parser("example-data", help="generate example listings and images",
                       description="Generate a deterministic marketplace-like listing dump (listings.csv) with one "
                                   "drawn image per listing whose content follows its true type and colour.")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--n", type=int, metavar="N", default=2000, help="number of listings (default: 2000)")
    p.add_argument("--seed", type=int, metavar="N", default=0, help="random seed (default: 0)")
    p.add_argument("--image-size", type=int, metavar="N", default=64, help="image side in pixels (default: 64)")
    p.add_argument("--no-images", action="store_true", help="write listings.csv only")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_example_data)


def _cmd_run(args: argparse.Namespace) -> None:
    from .pipeline import StageFailed, load_pipeline, run_pipeline, summarize

    pipeline = load_pipeline(args.pipeline)
    try:
        run_pipeline(pipeline, force=args.force, start=args.start, until=args.until, progress=not args.quiet)
    except StageFailed as error:
        _exit_stage_failed(error)
    print()
    for line in summarize(pipeline, until=args.until):
        print(line)


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo
    from .pipeline import StageFailed

    try:
        run_demo(args.out, progress=not args.quiet)
    except StageFailed as error:
        _exit_stage_failed(error)


def _exit_stage_failed(error: Exception) -> NoReturn:
    """Name the failed stage; an error that is not about the input (a bug) also gets its traceback."""
    if not isinstance(error.__cause__, EXPECTED_ERRORS):
        traceback.print_exception(error.__cause__, file=sys.stderr)
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(1)


def _run_parser(sub) -> None:
    from .pipeline import STAGES  # plain data, no heavy imports

    stages = ", ".join(STAGES)
    p = sub.add_parser("run", help="run the whole pipeline described by a TOML file",
                       description=f"Run the stages {stages} in order, as the pipeline file describes them; a "
                                   "stage whose manifest records the same settings and inputs is skipped. Stage "
                                   "folders go under the file's 'out'. A failing stage is named and the finished "
                                   "artifacts are kept.",
                       epilog="Every key of the pipeline file, with its default: the README's 'Running the whole "
                              "pipeline' section; examples/pipeline.toml is the demo's. " + EPILOG)
    p.add_argument("pipeline", metavar="PIPELINE.toml", help="pipeline file; its paths are relative to it")
    p.add_argument("--force", action="append", default=[], metavar="STAGE",
                   help="rerun this stage even when it is up to date (and so every stage after it) (repeatable)")
    p.add_argument("--from", dest="start", metavar="STAGE",
                   help="rerun this stage and run the ones after it; earlier stages are left as they are")
    p.add_argument("--until", metavar="STAGE", help="stop after this stage")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_run)


def _demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on generated example data (CPU, a few minutes)",
                       description="Generate 2,000 example listings with 64 px images in DIR/data, write the demo's "
                                   "pipeline file to DIR/pipeline.toml and run it: vocabulary, labels, shards, a "
                                   "small encoder trained on the CPU, retrieval evaluation. Prints a summary and the "
                                   "paths of the reports. Run again, up-to-date stages are skipped.", epilog=EPILOG)
    p.add_argument("--out", default="demo", metavar="DIR", help="output folder (default: demo)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)


def _shards_parser(sub) -> None:
    from .datasets.reasons import REASONS  # plain data, no imports

    p = sub.add_parser("shards", help="write WebDataset shards of images and weak labels; or verify them",
                       usage="weaklabel shards LABELED --out DIR [options]\n"
                             "       weaklabel shards verify DIR [--workers N] [--scheduler tcp://HOST:PORT] [-q]",
                       description="Fetch, check and resize the image of every labelled listing and write "
                                   "WebDataset tar shards per split, with timm's _info.json, a wids index per split, "
                                   "rejected.parquet, duplicates.parquet and manifest.json. Rerunning the same "
                                   "command after an interruption resumes it. 'weaklabel shards verify DIR' re-reads "
                                   "a shards folder and exits non-zero on any problem ('verify' right after "
                                   "'shards'; its options: 'weaklabel shards verify --help'; a labeled folder "
                                   "named verify is ./verify).",
                       epilog="Rejection reasons in rejected.parquet: "
                              + "; ".join(f"{reason}: {why}" for reason, why in REASONS.items()) + ". " + EPILOG)
    p.add_argument("labeled", metavar="LABELED", help="labeled folder written by 'weaklabel assign'")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder")
    _add_overwrite(p)
    src = p.add_argument_group("image sources")
    src.add_argument("--images-root", default=".", metavar="DIR",
                     help="folder that relative image paths start from; absolute paths and file URLs must "
                          "lie inside it too, http(s) URLs are fetched (default: the current directory)")
    src.add_argument("--allow-outside-root", action="store_true",
                     help="read local images outside --images-root too (through '..', absolute paths, file "
                          "URLs or symlinks); without it they are rejected as outside_root (default: off)")
    src.add_argument("--timeout", type=float, metavar="X", default=10.0,
                     help="seconds to wait for a server at each step of a download, and 3 times that for a whole "
                          "download (default: 10)")
    src.add_argument("--retries", type=int, metavar="N", default=2,
                     help="extra attempts after a timeout, connection error, 408/429 or 5xx answer (default: 2)")
    src.add_argument("--retry-backoff", type=float, metavar="X", default=0.5,
                     help="seconds before the first retry, doubled for each next one (default: 0.5)")
    src.add_argument("--max-download-bytes", type=int, metavar="N", default=20_000_000,
                     help="refuse sources bigger than this, local files included (default: 20000000)")
    src.add_argument("--user-agent", default=None, metavar="TEXT",
                     help="User-Agent header of downloads (default: 'weaklabel/VERSION (image fetcher for "
                          "training shards)')")
    src.add_argument("--fetch-threads", type=int, metavar="N", default=16,
                     help="most downloads in flight in each worker process; local files use few of them, "
                          "decoding and resizing run one image at a time per worker (default: 16)")
    img = p.add_argument_group("images")
    img.add_argument("--size", type=int, metavar="N", default=256, help="target side in pixels (default: 256)")
    img.add_argument("--resize-mode", choices=("keep_ratio", "center_crop", "border", "none"), default="keep_ratio",
                     help="keep_ratio: shorter side to --size; center_crop: that, then the central square; "
                          "border: longer side to --size, padded white to a square; none: no resize "
                          "(as img2dataset; default: keep_ratio)")
    img.add_argument("--resize-only-if-bigger", action="store_true",
                     help="leave images whose relevant side is at most --size as they are (default: off)")
    img.add_argument("--format", choices=("jpg", "webp", "png"), default="jpg",
                     help="output image format; sources already in it and at the right size are stored "
                          "unchanged (default: jpg)")
    img.add_argument("--quality", type=int, metavar="N", default=95, help="jpg/webp quality 1-100; png ignores it (default: 95)")
    img.add_argument("--min-size", type=int, metavar="N", default=0,
                     help="reject images whose shorter side is below this (default: 0, none)")
    img.add_argument("--max-pixels", type=int, metavar="N", default=89_478_485,
                     help="reject images with more pixels, before decoding them, or whose resize would give "
                          "more (default: 89478485, Pillow's decompression-bomb limit)")
    out = p.add_argument_group("samples and shards")
    out.add_argument("--split", default="train=0.9,val=0.05,test=0.05", metavar="NAME=FRACTION,...",
                     help="split names and fractions summing to 1; a listing's split follows a hash of its id "
                          "(default: train=0.9,val=0.05,test=0.05)")
    out.add_argument("--carry", action="append", default=[], metavar="COL",
                     help="labeled column copied into each sample's json (repeatable; default: none)")
    out.add_argument("--keep-unlabelled", action="store_true",
                     help="write listings without labels too (empty labels, no cls) instead of rejecting them "
                          "(default: off)")
    out.add_argument("--max-samples", type=int, metavar="N", default=10_000, help="samples per shard at most (default: 10000)")
    out.add_argument("--max-bytes", type=int, metavar="N", default=1_000_000_000,
                     help="bytes per shard at most, unless one sample is bigger (default: 1000000000)")
    run = p.add_argument_group("execution")
    run.add_argument("--workers", type=int, metavar="N", default=None,
                     help="worker processes on a local Dask cluster; 1 runs in this process (default: the cores)")
    run.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                     help="run the partitions on this existing Dask cluster instead (default: none)")
    run.add_argument("--partition-rows", type=int, metavar="N", default=1000,
                     help="listings per partition, the unit of work and of resuming; inputs under 16 times "
                          "that are cut into up to 16 partitions of at least 100 listings (default: 1000)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_shards)


def _cmd_train(args: argparse.Namespace) -> None:
    from .training import train

    names = ("model", "pretrained", "weights", "embed_dim", "drop_path", "image_size", "labels_weight", "loss",
             "asl_gamma_neg", "asl_gamma_pos", "asl_clip", "label_smoothing", "repeat_threshold", "shuffle_buffer",
             "crop_scale", "color_jitter", "workers", "epochs", "steps", "batch_size", "accum_steps", "lr", "min_lr",
             "weight_decay", "warmup_steps", "grad_clip", "ema", "device", "precision", "compile", "seed",
             "deterministic", "eval_every", "log_every", "checkpoint_every", "stop_after_steps")
    options = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.task is not None:
        options["tasks"] = args.task
    if args.balance is not None:
        options["balance"] = None if args.balance == "none" else args.balance
    if args.quiet:
        options["progress"] = False
    result = train(args.shards, args.out, resume=args.resume, overwrite=args.overwrite, **options)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    if result.get("stopped"):
        print(f"stopped after step {result['step']} as asked; continue with --resume")
        return
    shown = {k: v for k, v in result.items() if isinstance(v, float)}
    print(f"trained {result['step']} steps ({result['epoch']} full epochs, {result['images_seen']} images)"
          + "".join(f", {k} {v:.4f}" for k, v in shown.items() if k.startswith(("val_map", "val_top1", "val_loss"))))
    best = ", best.pt" if (Path(args.out) / "best.pt").is_file() else " (no best.pt: the shards have no val split)"
    print(f"wrote {args.out}/last.pt{best}, metrics.jsonl, config.json, manifest.json")


def _cmd_embed(args: argparse.Namespace) -> None:
    from .training import embed

    result = embed(args.checkpoint, args.source, args.out, split=args.split, batch_size=args.batch_size,
                   device=args.device, workers=args.workers, ema=False if args.no_ema else None,
                   progress=not args.quiet)
    print(f"wrote {result['rows']} embeddings of dimension {result['dim']} to {args.out}"
          + (f"; {len(result['failed'])} unreadable images left out" if result["failed"] else ""))
    for path in result["failed"][:20]:
        print(f"unreadable: {path}", file=sys.stderr)
    if len(result["failed"]) > 20:
        print(f"... and {len(result['failed']) - 20} more", file=sys.stderr)


def _cmd_export(args: argparse.Namespace) -> None:
    from .training import export_encoder

    result = export_encoder(args.checkpoint, args.out, format=args.format, opset=args.opset,
                            tolerance=args.tolerance, ema=False if args.no_ema else None)
    print(f"wrote {args.out} ({args.format}); max abs diff to PyTorch {result['max_abs_diff']:.2e} "
          f"(tolerance {args.tolerance:g}); input/output description in {args.out}.json")


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train an image encoder on shards",
                       description="Train a timm backbone with an embedding head and task heads on a shards folder: "
                                   "the multi-label task over the vocabulary, plus softmax tasks over carried "
                                   "columns. Writes last.pt, best.pt (best validation mAP), metrics.jsonl, "
                                   "config.json and manifest.json to --out. Under 'torchrun --nproc_per_node N -m "
                                   "weaklabel.cli train ...' it trains with DDP.", epilog=EPILOG)
    p.add_argument("shards", help="shards folder written by 'weaklabel shards'")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder")
    _add_overwrite(p, also="start a new run even if --out holds one, and ")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.pt up to the requested --steps/--epochs (a new "
                        "run when there is none); options left out are the run's, and only --steps, --epochs, "
                        "--workers, --device, --precision, --compile, --eval-every, --log-every and "
                        "--checkpoint-every may differ from them (default: off)")
    m = p.add_argument_group("model")
    m.add_argument("--model", metavar="NAME", help="timm model name (default: efficientnet_b0)")
    m.add_argument("--pretrained", action="store_true", default=None,
                   help="start from timm's pretrained weights, downloading them if needed (default: off, random init)")
    m.add_argument("--weights", metavar="FILE",
                   help="local weights to start from: a backbone state dict or a weaklabel checkpoint; missing "
                        "and unexpected keys are reported (default: none)")
    m.add_argument("--embed-dim", type=int, metavar="N", help="embedding dimension (default: 256)")
    m.add_argument("--drop-path", type=float, metavar="X", help="stochastic depth rate, where the model has it (default: 0)")
    m.add_argument("--image-size", type=int, metavar="N", help="training and evaluation image side in pixels (default: 224)")
    t = p.add_argument_group("tasks and losses")
    t.add_argument("--task", action="append", metavar="COLUMN:softmax[:WEIGHT]",
                   help="extra softmax task over a carried column, with an optional loss weight (repeatable; "
                        "default: only the multi-label task over the vocabulary)")
    t.add_argument("--labels-weight", type=float, metavar="W", help="loss weight of the vocabulary task (default: 1.0)")
    t.add_argument("--loss", choices=("bce", "asl", "softmax"),
                   help="loss of the vocabulary task: sigmoid BCE, asymmetric loss, or softmax cross-entropy over "
                        "the normalized multi-hot (default: bce)")
    t.add_argument("--asl-gamma-neg", type=float, metavar="X", help="ASL focusing on negatives (default: 4)")
    t.add_argument("--asl-gamma-pos", type=float, metavar="X", help="ASL focusing on positives (default: 0)")
    t.add_argument("--asl-clip", type=float, metavar="X", help="ASL probability margin for negatives (default: 0.05)")
    t.add_argument("--label-smoothing", type=float, metavar="X", help="label smoothing of every task (default: 0)")
    d = p.add_argument_group("data")
    d.add_argument("--balance", choices=("none", "repeat-factor"),
                   help="repeat-factor sampling of images with rare labels (default: none)")
    d.add_argument("--repeat-threshold", type=float, metavar="T",
                   help="labels in fewer than this fraction of train images are repeated, "
                        "r = max(1, sqrt(T / frequency)) (default: 0.001)")
    d.add_argument("--shuffle-buffer", type=int, metavar="N", help="samples in the shuffle buffer (default: 1000)")
    d.add_argument("--crop-scale", type=float, metavar="X",
                   help="smallest area fraction of the random resized crop (default: 0.25)")
    d.add_argument("--color-jitter", type=float, metavar="X",
                   help="brightness/contrast/saturation jitter; 0 for none (default: 0.2)")
    d.add_argument("--workers", type=int, metavar="N", help="DataLoader worker processes per rank (default: 4)")
    o = p.add_argument_group("optimization")
    o.add_argument("--epochs", type=int, metavar="N", help="passes over the train split (default: 10)")
    o.add_argument("--steps", type=int, metavar="N", help="total optimizer steps; overrides --epochs (default: none)")
    o.add_argument("--batch-size", type=int, metavar="N", help="images per batch and rank (default: 64)")
    o.add_argument("--accum-steps", type=int, metavar="N", help="batches accumulated per optimizer step (default: 1)")
    o.add_argument("--lr", type=float, metavar="X", help="peak AdamW learning rate (default: 0.001)")
    o.add_argument("--min-lr", type=float, metavar="X", help="learning rate the cosine ends at (default: 0)")
    o.add_argument("--weight-decay", type=float, metavar="X",
                   help="AdamW weight decay, not applied to norms, biases and position embeddings (default: 0.05)")
    o.add_argument("--warmup-steps", type=int, metavar="N",
                   help="linear warmup steps before the cosine decay (default: 5%% of the total steps)")
    o.add_argument("--grad-clip", type=float, metavar="X", help="gradient norm clip; 0 for none (default: 1.0)")
    o.add_argument("--ema", type=float, metavar="DECAY",
                   help="keep an exponential moving average of the weights with this decay, e.g. 0.9998; it is "
                        "what gets evaluated, embedded and exported (default: off)")
    r = p.add_argument_group("runtime")
    r.add_argument("--device", metavar="DEVICE", help="cpu, cuda or cuda:N (default: auto, cuda if present)")
    r.add_argument("--precision", choices=("auto", "bf16", "fp32"),
                   help="autocast precision: auto is bf16 on CUDA, fp32 on CPU (default: auto)")
    r.add_argument("--compile", action="store_true", default=None, help="torch.compile the model (default: off)")
    r.add_argument("--seed", type=int, metavar="N", help="seed of initialization, data order and augmentation (default: 0)")
    r.add_argument("--deterministic", action="store_true", default=None,
                   help="deterministic kernels (torch.use_deterministic_algorithms; slower on CUDA) (default: off)")
    r.add_argument("--eval-every", type=int, metavar="N",
                   help="validate every N steps instead of at each epoch end (default: each epoch end)")
    r.add_argument("--log-every", type=int, metavar="N", help="steps between metrics.jsonl lines (default: 10)")
    r.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="steps between last.pt saves; it is also saved at each epoch end (default: 500)")
    r.add_argument("--stop-after-steps", type=int, help=argparse.SUPPRESS)  # tests: stop as if killed
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _embed_parser(sub) -> None:
    p = sub.add_parser("embed", help="precompute embeddings of shards or an image folder",
                       description="Embed images with a trained encoder into a Parquet file with 'id' and "
                                   "'embedding' (L2-normalized float32). From a shards folder the id is the listing "
                                   "id and the labels and carried columns come along; from an image folder the id "
                                   "is the image's relative path.", epilog=EPILOG)
    p.add_argument("checkpoint", help="last.pt or best.pt of a training run")
    p.add_argument("source", help="shards folder (with _info.json) or a folder of images (searched recursively)")
    p.add_argument("--out", required=True, metavar="FILE", help="output Parquet file")
    p.add_argument("--split", default="val", metavar="NAME", help="split of a shards folder to embed (default: val)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per batch (default: 64)")
    p.add_argument("--device", default="auto", metavar="DEVICE", help="cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="DataLoader worker processes (default: 0)")
    p.add_argument("--no-ema", action="store_true", help="use the trained weights even when EMA weights exist (default: off)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_embed)


def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="export the encoder as ONNX or TorchScript",
                       description="Write the encoder alone (backbone + embedding head → normalized embedding, "
                                   "dynamic batch axis) and check the file's output against PyTorch's; fails when "
                                   "they differ by more than --tolerance. A FILE.json describes input and output.",
                       epilog=EPILOG)
    p.add_argument("checkpoint", help="last.pt or best.pt of a training run")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="output format (default: onnx)")
    p.add_argument("--out", required=True, metavar="FILE", help="output file")
    p.add_argument("--opset", type=int, default=17, metavar="N", help="ONNX opset version (default: 17)")
    p.add_argument("--tolerance", type=float, default=1e-3, metavar="X",
                   help="largest allowed absolute difference to PyTorch's output (default: 0.001)")
    p.add_argument("--no-ema", action="store_true", help="export the trained weights even when EMA weights exist (default: off)")
    p.set_defaults(func=_cmd_export)


def _cmd_eval(args: argparse.Namespace) -> None:
    from .eval import evaluate, format_table

    metrics = evaluate(args.checkpoints, args.shards, args.out, split=args.split, gallery_split=args.gallery_split,
                       embeddings=args.embeddings, relevance=args.relevance or ["labels"], device=args.device,
                       batch_size=args.batch_size, workers=args.workers, efficiency=not args.no_efficiency,
                       progress=not args.quiet, overwrite=args.overwrite)
    print(format_table(metrics))
    print(f"wrote {args.out}/metrics.json, queries.parquet, report.html, manifest.json and embeddings/")


def _eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate encoders: retrieval, classification, long tail, efficiency",
                       usage="weaklabel eval [CHECKPOINT ...] --shards DIR --out DIR [options]",
                       description="Evaluate trained checkpoints (and/or precomputed embeddings files) on a shards "
                                   "split: every item of the split searches a gallery for its nearest neighbours "
                                   "(Recall@1/5/10, Precision@10, mAP@10, mAP@100, MRR), the task heads are scored "
                                   "(multi-label mAP and F1, softmax top-1/top-5), every metric also per head/torso/"
                                   "tail tier, carried columns are probed (kNN and logistic regression) and the "
                                   "encoder's cost is measured (parameters, GMACs, latency, throughput, memory, "
                                   "size). Writes metrics.json, queries.parquet (every query's metrics), "
                                   "report.html, manifest.json and the embeddings (embeddings/, reused by later "
                                   "runs) to --out and prints a table.",
                       epilog="Metric definitions and the metrics.json schema: the README's 'Evaluating encoders' "
                              "section. " + EPILOG)
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                   help="last.pt or best.pt of a training run (several: compared side by side); a model is named "
                        "after its run folder")
    p.add_argument("--shards", required=True, metavar="DIR", help="shards folder written by 'weaklabel shards'")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _add_overwrite(p)
    p.add_argument("--split", default="val", metavar="NAME",
                   help="split whose items are the queries (and the gallery, each query excluded) (default: val)")
    p.add_argument("--gallery-split", default=None, metavar="NAME",
                   help="search this split instead of the query split, e.g. --split test --gallery-split train "
                        "(default: none)")
    p.add_argument("--embeddings", action="append", default=[], metavar="FILE",
                   help="also evaluate a precomputed embeddings Parquet ('weaklabel embed' format, from any model) "
                        "as the query split, searched among itself; retrieval and probes only (repeatable)")
    p.add_argument("--relevance", action="append", default=None, metavar="NAME",
                   help="what makes a gallery item relevant to a query: 'labels' (sharing at least one weak "
                        "label) or a carried column (an equal value), which is also probed (repeatable; "
                        "default: labels)")
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="cpu, cuda or cuda:N, for embedding, search and efficiency (default: auto, cuda if present)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per batch when embedding (default: 64)")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="DataLoader worker processes (default: 0)")
    p.add_argument("--no-efficiency", action="store_true",
                   help="skip the parameters/GMACs/latency/throughput/memory measurements (default: measured)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=_cmd_eval)


PARSERS: list[Callable] = [_demo_parser, _run_parser, _example_data_parser, _vocab_parser, _assign_parser,
                           _shards_parser, _train_parser, _embed_parser, _export_parser, _eval_parser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weaklabel",
        description="Weak image labels from product listing text: build a label vocabulary, assign labels, "
                    "write WebDataset shards, train and evaluate compact image encoders.",
    )
    parser.add_argument("--version", action="version", version=f"weaklabel {__version__}")
    sub = parser.add_subparsers(title="stages", dest="command", metavar="COMMAND")
    for add in PARSERS:
        add(sub)
    return parser


def _shards_verify_parser() -> argparse.ArgumentParser:
    """'weaklabel shards verify' has its own options; main() routes to it before the stage parsers."""
    p = argparse.ArgumentParser(prog="weaklabel shards verify",
                                description="Re-read a shards folder written by 'weaklabel shards': every tar, index "
                                            "and manifest entry must agree and every sample must decode. Prints each "
                                            "problem and exits non-zero when there is any.", epilog=EPILOG)
    p.add_argument("shards", metavar="DIR", help="shards folder written by 'weaklabel shards'")
    _add_dask(p, partition="each shard")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_verify_shards)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verify = argv[:2] == ["shards", "verify"]
    parser = _shards_verify_parser() if verify else build_parser()
    args = parser.parse_args(argv[2:] if verify else argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with _removed_if_left_empty(getattr(args, "out", None)):
            args.func(args)
    except EXPECTED_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: the files already written are kept ('weaklabel shards' and 'weaklabel run' "
              "resume when run again, 'weaklabel train' with --resume)", file=sys.stderr)
        return 130
    return 0


@contextmanager
def _removed_if_left_empty(out: str | None) -> Iterator[None]:
    """The folders this command created on the way to its output folder (``--out a/b/c`` may create
    all three) are removed again if it fails before writing any file to them."""
    target = Path(os.path.abspath(out)) if out is not None else None
    created = _first_missing(target) if target is not None else None
    try:
        yield
    except BaseException:
        if created is not None:
            _remove_empty(target, created)
        raise


def _first_missing(path: Path) -> Path | None:
    """The outermost folder on the way to the absolute ``path`` that does not exist yet (None: it exists)."""
    return next((p for p in [*reversed(path.parents), path] if not os.path.lexists(p)), None)


def _remove_empty(out: Path, top: Path) -> None:
    """Remove ``out`` if it holds no file, then the folders above it up to ``top`` while they are empty."""
    try:
        if out.is_dir() and not any(p.is_file() for p in out.rglob("*")):
            shutil.rmtree(out)
        for folder in (p for p in out.parents if p == top or top in p.parents):
            folder.rmdir()  # refuses a folder that is not empty: another command may be writing there
    except OSError:
        pass  # best effort: the command's own error is the one to report

if __name__ == "__main__":
    sys.exit(main())
