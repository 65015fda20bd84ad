"""The ``weaklabel`` command: one subcommand per pipeline stage, each a thin shell over the API."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import importlib
import os
import shutil
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from . import __version__

EXPECTED_ERRORS = (ValueError, FileNotFoundError)  # about the input: the message says it all
EPILOG = "The README describes every file a command writes, and every option."


def _add_roles(parser: argparse.ArgumentParser, *, required_text: bool) -> None:
    group = parser.add_argument_group("columns of the listings")
    group.add_argument("--id", default=None, metavar="COL", help="column with the listing id (default: %(default)s)")
    group.add_argument("--image", default=None, metavar="COL",
                       help="column with the image path or URL (default: %(default)s); '' for none")
    group.add_argument("--text", action="append", default=[], metavar="COL[:W]",
                       help="free-text column whose 1-3-grams are terms, with an optional weight 0<W<=1 "
                            "(repeatable: --text title --text description:0.3)"
                            + ("" if required_text else "; default: the columns the vocabulary was built from"))
    group.add_argument("--tags", action="append", default=[], metavar="COL[:W]",
                       help="tag column: a list, a JSON list or a delimited string; each tag is one term (repeatable)")
    group.add_argument("--category", action="append", default=[], metavar="COL[:W]",
                       help="category path column like 'Home > Kitchen > Mugs'; each level is one term (repeatable)")
    group.add_argument("--tag-separator", default=None, metavar="SEP",
                       help="separator of delimited tags (default: %(default)s)")
    group.add_argument("--category-separator", default=None, metavar="SEP",
                       help="separator of category levels (default: %(default)s)")
    group.add_argument("--max-field-chars", type=int, default=None, metavar="N",
                       help="longer field values are truncated and counted (default: %(default)s)")


def _add_dask(parser: argparse.ArgumentParser, partition: str = "each input file") -> None:
    group = parser.add_argument_group(f"partitions on Dask ({partition} is one partition)")
    group.add_argument("--workers", type=int, default=argparse.SUPPRESS, metavar="N",
                       help="worker processes of the local Dask cluster; 1 runs inline (default: the number of cores)")
    group.add_argument("--scheduler", default=argparse.SUPPRESS, metavar="tcp://HOST:PORT",
                       help="run on an existing Dask cluster instead (its workers must see the same paths)")


def _add_overwrite(parser: argparse.ArgumentParser,
                   also: str = "replace the finished output of an earlier run in --out, and ") -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help=f"{also}write into --out even if it holds files this command did not write: files with "
                             "the names it writes are replaced, the others are kept (default: refuse)")


def _signature_defaults(func: Callable) -> dict[str, Any]:
    """The keyword arguments of ``func`` that have a default, with it."""
    import inspect

    return {name: p.default for name, p in inspect.signature(func).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _stage_defaults(stage: str) -> dict[str, Any]:
    from .stage import get

    return {key: default for key, (default, _) in get(stage).options().items()}


def _vocab_defaults() -> dict[str, Any]:
    defaults = _stage_defaults("vocab")
    return defaults | {"ngram_min": defaults["ngram_range"][0], "ngram_max": defaults["ngram_range"][1]}


def _function_defaults(module: str, name: str) -> Callable[[], dict[str, Any]]:
    return lambda: _signature_defaults(getattr(importlib.import_module(module), name))


def _api_help(defaults: Callable[[], Mapping[str, Any]]) -> type[argparse.HelpFormatter]:
    """A help formatter that shows the API's own default wherever an option's help says
    ``%(default)s``: the command line repeats no default. The API is imported (seconds: torch) only
    when the help is printed."""
    @functools.cache
    def lookup() -> dict[str, Any]:
        from .listings import ColumnRoles

        return _signature_defaults(ColumnRoles) | dict(defaults())

    class ApiDefaults(argparse.HelpFormatter):
        def _expand_help(self, action: argparse.Action) -> str:
            if action.default in (argparse.SUPPRESS, None) and "%(default)" in (action.help or ""):
                action = copy.copy(action)
                action.default = _shown(lookup()[action.dest])
            return super()._expand_help(action)

    return ApiDefaults


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _roles(args: argparse.Namespace, fallback=None):
    """Column roles from the options; unset options fall back to a vocabulary's recorded roles."""
    from .listings import ColumnRoles, Field

    fields = tuple(
        Field.parse(spec, role)
        for role, specs in (("text", args.text), ("tags", args.tags), ("category", args.category))
        for spec in specs
    )
    base = _signature_defaults(ColumnRoles) | (fallback.to_dict() if fallback is not None else {})
    given = {key: getattr(args, key) for key in ("id", "image", "tag_separator", "category_separator",
                                                  "max_field_chars") if getattr(args, key) is not None}
    merged = base | given | {"fields": [dataclasses.asdict(f) for f in fields] or base.get("fields", [])}
    merged["image"] = merged["image"] or None  # --image '' is no image column
    if not merged["fields"]:
        raise SystemExit("error: name at least one listing field with --text, --tags or --category")
    return ColumnRoles.from_dict(merged)


def _cmd_vocab(args: argparse.Namespace) -> None:
    from .labeling.stages import build_vocabulary, vocab_options, vocab_params

    options = _given(args, vocab_options())
    if "ngram_min" in args or "ngram_max" in args:
        low, high = vocab_options()["ngram_range"][0]
        options["ngram_range"] = (getattr(args, "ngram_min", low), getattr(args, "ngram_max", high))
    build_vocabulary(args.listings, _roles(args), args.out, progress=not args.quiet, overwrite=args.overwrite,
                     **vocab_params(options))
    _print_summary("vocab", args.out)
    print(f"wrote {args.out}/labels.parquet, terms.parquet, label_embeddings.npy, boilerplate.parquet, facets.parquet, "
          "rejected.parquet, report.html, manifest.json")


def _cmd_assign(args: argparse.Namespace) -> None:
    from .labeling.stages import assign_labels, assign_options
    from .labeling.vocabulary import Vocabulary

    roles = _roles(args, fallback=Vocabulary.load(args.vocab).roles)
    assign_labels(args.listings, args.vocab, args.out, roles=roles, progress=not args.quiet, overwrite=args.overwrite,
                  append=getattr(args, "append", False), **_given(args, assign_options()))
    _print_summary("assign", args.out)
    print(f"wrote {args.out}/parts/part-*.parquet, labels.feather, rejected.parquet and manifest.json")


def _given(args: argparse.Namespace, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options the command line gave (the others keep the API's defaults: one source for each)."""
    return {key: value for key, value in vars(args).items() if key in options}


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
    from .datasets.stage import shards_options

    write_shards(args.labeled, args.out, progress=not args.quiet, overwrite=args.overwrite,
                 **_given(args, shards_options()))
    _print_summary("shards", args.out)
    print(f"wrote {args.out}/{{split}}-NNNNNN.tar, _info.json, {{split}}.index.json, README.md, gallery.html, "
          "rejected.parquet, "
          "duplicates.parquet, labels.parquet, manifest.json")


def _cmd_verify_shards(args: argparse.Namespace) -> None:
    from .datasets import verify_shards

    problems = verify_shards(args.shards, workers=getattr(args, "workers", None),
                             scheduler=getattr(args, "scheduler", None), progress=not args.quiet)
    for problem in problems:
        print(problem)
    if problems:
        raise SystemExit(f"{len(problems)} problem(s) in {args.shards}")
    print(f"{args.shards}: every shard matches its manifest and every sample decodes")


def _vocab_parser(sub) -> None:
    p = sub.add_parser("vocab", help="build a label vocabulary from listing text",
                       formatter_class=_api_help(_vocab_defaults),
                       description="Extract candidate terms from listing text, embed and cluster them into a "
                                   "label vocabulary. Writes labels.parquet, terms.parquet, label_embeddings.npy, "
                                   "boilerplate.parquet, "
                                   "rejected.parquet, report.html and manifest.json to --out.", epilog=EPILOG)
    p.add_argument("listings", nargs="+", help="listing files, directories or globs (csv, tsv, jsonl, parquet, .gz)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _add_overwrite(p)
    _add_roles(p, required_text=True)
    t = p.add_argument_group("candidate terms")
    t.add_argument("--ngram-min", type=int, metavar="N", default=argparse.SUPPRESS,
                   help="shortest n-gram taken from free text (default: %(default)s)")
    t.add_argument("--ngram-max", type=int, metavar="N", default=argparse.SUPPRESS,
                   help="longest n-gram taken from free text (default: %(default)s)")
    t.add_argument("--stopwords", default=argparse.SUPPRESS, metavar="LIST|FILE",
                   help="named lists joined by '+': 'english', 'marketplace' (seller filler: new, sale, free "
                        "shipping...), 'detected' (the stopwords of any other language the listings are written "
                        "in); or 'none', or a file with one word per line (default: %(default)s)")
    t.add_argument("--min-support", type=int, metavar="N", default=argparse.SUPPRESS,
                   help="listings a term must occur in (default: %(default)s)")
    t.add_argument("--max-df", type=float, metavar="X", default=argparse.SUPPRESS,
                   help="drop terms in more than this fraction of listings as generic (default: %(default)s)")
    t.add_argument("--min-npmi", type=float, metavar="X", default=argparse.SUPPRESS,
                   help="drop n-grams whose words co-occur no more than chance (normalized PMI; default: %(default)s)")
    t.add_argument("--no-boilerplate", action="store_false", dest="boilerplate", default=argparse.SUPPRESS,
                   help="take terms from every sentence, even those many listings repeat (README: 'Boilerplate')")
    t.add_argument("--group", dest="boilerplate_group", default=argparse.SUPPRESS, metavar="COLUMN",
                   help="a column (seller, shop) within which repeated sentences are also boilerplate")
    t.add_argument("--boilerplate-sample", type=int, metavar="N", default=argparse.SUPPRESS,
                   help="listings (a seeded sample) searched for boilerplate, which is then stripped from all "
                        "(default: %(default)s)")
    t.add_argument("--head-prior", type=float, metavar="N", default=argparse.SUPPRESS,
                   help="listings' worth of the corpus-wide phrase-end rate each label's informativeness starts "
                        "from; informativeness ranks a listing's labels (README: 'Scores'; default: %(default)s)")
    t.add_argument("--blocklist", default=argparse.SUPPRESS, metavar="FILE",
                   help="file of terms never to use, one per line")
    t.add_argument("--allowlist", default=argparse.SUPPRESS, metavar="FILE",
                   help="file of terms always kept as candidates, one per line")
    e = p.add_argument_group("embeddings")
    e.add_argument("--model", default=argparse.SUPPRESS, metavar="NAME|DIR",
                   help="sentence-transformers model: a local directory or a hub name (default: the packaged "
                        "all-MiniLM-L6-v2, no download)")
    e.add_argument("--batch-size", type=int, metavar="N", default=argparse.SUPPRESS,
                   help="texts per embedding batch (default: %(default)s)")
    e.add_argument("--device", default=argparse.SUPPRESS, metavar="DEVICE",
                   help="torch device for embeddings (default: cuda if present, else cpu)")
    e.add_argument("--cache-dir", default=argparse.SUPPRESS, metavar="DIR",
                   help="embedding cache folder (default: $WEAKLABEL_CACHE/embeddings or "
                        "~/.cache/weaklabel/embeddings)")
    c = p.add_argument_group("clustering (see README: 'How clustering works')")
    c.add_argument("--no-cluster", action="store_false", dest="cluster", default=argparse.SUPPRESS,
                   help="no clustering: every frequent term is its own label")
    c.add_argument("--min-label-support", type=int, metavar="N", default=argparse.SUPPRESS,
                   help="support a term group needs to be a label on its own (default: %(default)s)")
    c.add_argument("--merge-threshold", type=float, metavar="X", default=argparse.SUPPRESS,
                   help="cosine similarity at which frequent groups merge as synonyms (default: %(default)s)")
    c.add_argument("--attach-threshold", type=float, metavar="X", default=argparse.SUPPRESS,
                   help="cosine similarity at which a rare term joins its nearest label (default: %(default)s)")
    c.add_argument("--rare-merge-threshold", type=float, metavar="X", default=argparse.SUPPRESS,
                   help="cosine similarity linking rare terms into a new label (default: %(default)s)")
    c.add_argument("--overrides", default=argparse.SUPPRESS, metavar="FILE",
                   help="TOML file of edits: rename, merge, delete, add labels; name, seed, split facets")
    f = p.add_argument_group("facets: sets of alternative labels (see README: 'Facets')")
    f.add_argument("--no-facets", action="store_false", dest="facets", default=argparse.SUPPRESS,
                   help="find no facets: every label stays in the multi-label group")
    f.add_argument("--facet-min-support", type=int, metavar="N", default=argparse.SUPPRESS,
                   help="listings a label needs to be in a facet (default: %(default)s)")
    f.add_argument("--facet-max-collision", type=float, metavar="X", default=argparse.SUPPRESS,
                   help="the most a facet's listings may name two of its labels (default: %(default)s)")
    f.add_argument("--facet-min-similarity", type=float, metavar="X", default=argparse.SUPPRESS,
                   help="similarity at which a subtree of labels becomes a facet candidate (default: %(default)s)")
    f.add_argument("--facet-merge-similarity", type=float, metavar="X", default=argparse.SUPPRESS,
                   help="mean similarity at which two candidates of one role merge (default: %(default)s)")
    f.add_argument("--facet-min-coverage", type=float, metavar="X", default=argparse.SUPPRESS,
                   help="share of the listings a found facet must cover (default: %(default)s)")
    f.add_argument("--facet-sample", type=int, metavar="N", default=argparse.SUPPRESS,
                   help="listings (a seeded sample) labelled to find the facets (default: %(default)s)")
    _add_dask(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_vocab)


def _assign_parser(sub) -> None:
    p = sub.add_parser("assign", help="assign weak labels to listings with a vocabulary",
                       formatter_class=_api_help(lambda: _stage_defaults("assign")),
                       description="Match listing text against a vocabulary and write the weak labels, scores and "
                                   "evidence of every listing as Parquet parts in --out.", epilog=EPILOG)
    p.add_argument("listings", nargs="+", help="listing files, directories or globs (csv, tsv, jsonl, parquet, .gz)")
    p.add_argument("--vocab", required=True, help="vocabulary folder written by 'weaklabel vocab'")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _add_overwrite(p)
    _add_roles(p, required_text=False)
    p.add_argument("--top-k", type=int, metavar="N", default=argparse.SUPPRESS,
                   help="at most this many labels per listing, the most informative first (default: %(default)s)")
    p.add_argument("--min-score", type=float, metavar="X", default=argparse.SUPPRESS,
                   help="drop labels scoring below this (default: %(default)s)")
    p.add_argument("--fallback", type=float, dest="fallback_threshold", default=argparse.SUPPRESS, metavar="SIM",
                   help="label listings that matched nothing with the labels nearest their text embedding, "
                        "at cosine similarity >= SIM (default: %(default)s)")
    p.add_argument("--keep", action="append", default=argparse.SUPPRESS, metavar="COL",
                   help="listing column to pass through (repeatable; default: all)")
    p.add_argument("--rows-per-part", type=int, metavar="N", default=argparse.SUPPRESS,
                   help="listings per output part (default: %(default)s)")
    p.add_argument("--append", action="store_true", default=argparse.SUPPRESS,
                   help="add to the finished run in --out only the listings whose id it does not hold: files it "
                        "read unchanged are skipped, new parts are added (same vocabulary and settings; a folder "
                        "without a finished run is labelled whole)")
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

    p = sub.add_parser("shards", help="write WebDataset shards of images and weak labels",
                       formatter_class=_api_help(lambda: _stage_defaults("shards")),
                       description="Fetch, check and resize the image of every labelled listing and write "
                                   "WebDataset tar shards per split, with timm's _info.json, a wids index per split, "
                                   "a dataset card (README.md), rejected.parquet, duplicates.parquet and "
                                   "manifest.json. Rerunning the same command after an interruption resumes it. "
                                   "'weaklabel verify DIR' re-reads a shards folder and exits non-zero on any "
                                   "problem.",
                       epilog="Rejection reasons in rejected.parquet: "
                              + "; ".join(f"{reason}: {why}" for reason, why in REASONS.items()) + ". " + EPILOG)
    p.add_argument("labeled", metavar="LABELED", help="labeled folder written by 'weaklabel assign'")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder")
    _add_overwrite(p)
    src = p.add_argument_group("image sources")
    src.add_argument("--images-root", default=argparse.SUPPRESS, metavar="DIR",
                     help="folder that relative image paths start from; absolute paths and file URLs must "
                          "lie inside it too, http(s) URLs are fetched (default: the current directory)")
    src.add_argument("--allow-outside-root", action="store_true", default=argparse.SUPPRESS,
                     help="read local images outside --images-root too (through '..', absolute paths, file "
                          "URLs or symlinks); without it they are rejected as outside_root (default: off)")
    src.add_argument("--timeout", type=float, metavar="X", default=argparse.SUPPRESS,
                     help="seconds to wait for a server at each step of a download, and 3 times that for a whole "
                          "download (default: %(default)s)")
    src.add_argument("--retries", type=int, metavar="N", default=argparse.SUPPRESS,
                     help="extra attempts after a timeout, connection error, 408/429 or 5xx answer "
                          "(default: %(default)s)")
    src.add_argument("--retry-backoff", type=float, dest="backoff", metavar="X", default=argparse.SUPPRESS,
                     help="seconds before the first retry, doubled for each next one (default: %(default)s)")
    src.add_argument("--max-download-bytes", type=int, metavar="N", default=argparse.SUPPRESS,
                     help="refuse sources bigger than this, local files included (default: %(default)s)")
    src.add_argument("--user-agent", default=argparse.SUPPRESS, metavar="TEXT",
                     help="User-Agent header of downloads (default: 'weaklabel/VERSION (image fetcher for "
                          "training shards)')")
    src.add_argument("--fetch-threads", type=int, metavar="N", default=argparse.SUPPRESS,
                     help="most downloads in flight in each worker process; local files use few of them, "
                          "decoding and resizing run one image at a time per worker (default: %(default)s)")
    img = p.add_argument_group("images")
    img.add_argument("--size", type=int, metavar="N", default=argparse.SUPPRESS,
                     help="target side in pixels (default: %(default)s)")
    img.add_argument("--resize-mode", choices=("keep_ratio", "center_crop", "border", "none"),
                     default=argparse.SUPPRESS,
                     help="keep_ratio: shorter side to --size; center_crop: that, then the central square; "
                          "border: longer side to --size, padded white to a square; none: no resize "
                          "(as img2dataset; default: %(default)s)")
    img.add_argument("--resize-only-if-bigger", action="store_true", default=argparse.SUPPRESS,
                     help="leave images whose relevant side is at most --size as they are (default: off)")
    img.add_argument("--format", choices=("jpg", "webp", "png"), dest="image_format", default=argparse.SUPPRESS,
                     help="output image format; sources already in it and at the right size are stored "
                          "unchanged (default: %(default)s)")
    img.add_argument("--quality", type=int, metavar="N", default=argparse.SUPPRESS,
                     help="jpg/webp quality 1-100; png ignores it (default: %(default)s)")
    img.add_argument("--min-size", type=int, metavar="N", default=argparse.SUPPRESS,
                     help="reject images whose shorter side is below this (default: 0, none)")
    img.add_argument("--max-pixels", type=int, metavar="N", default=argparse.SUPPRESS,
                     help="reject images with more pixels, before decoding them, or whose resize would give "
                          "more (default: 89478485, Pillow's decompression-bomb limit)")
    out = p.add_argument_group("samples and shards")
    out.add_argument("--split", dest="splits", default=argparse.SUPPRESS, metavar="NAME=FRACTION,...",
                     help="split names and fractions summing to 1; a listing's split follows a hash of its id "
                          "(default: %(default)s)")
    out.add_argument("--carry", action="append", default=argparse.SUPPRESS, metavar="COL",
                     help="labeled column copied into each sample's json (repeatable; default: %(default)s)")
    out.add_argument("--keep-unlabelled", action="store_true", default=argparse.SUPPRESS,
                     help="write listings without labels too (empty labels, no cls) instead of rejecting them "
                          "(default: off)")
    out.add_argument("--near-duplicates", choices=("group", "drop", "off"), default=argparse.SUPPRESS,
                     help="near-copies of an image (re-encoded, resized, mirrored, recoloured; not cropped): "
                          "group writes them in the split of their group's first listing, drop writes only that "
                          "one, off finds byte-identical copies only; duplicates.parquet records every copy "
                          "(default: %(default)s)")
    out.add_argument("--near-similarity", type=float, metavar="X", default=argparse.SUPPRESS,
                     help="the least cosine similarity of the perceptual signatures (low DCT frequencies) of two "
                          "near-copies; lower finds more copies and more false ones (default: %(default)s)")
    out.add_argument("--max-samples", type=int, metavar="N", default=argparse.SUPPRESS,
                     help="samples per shard at most (default: %(default)s)")
    out.add_argument("--max-bytes", type=int, metavar="N", default=argparse.SUPPRESS,
                     help="bytes per shard at most, unless one sample is bigger (default: %(default)s)")
    run = p.add_argument_group("execution")
    run.add_argument("--workers", type=int, metavar="N", default=argparse.SUPPRESS,
                     help="worker processes on a local Dask cluster; 1 runs in this process (default: the cores)")
    run.add_argument("--scheduler", default=argparse.SUPPRESS, metavar="tcp://HOST:PORT",
                     help="run the partitions on this existing Dask cluster instead (default: %(default)s)")
    run.add_argument("--partition-rows", type=int, metavar="N", default=argparse.SUPPRESS,
                     help="listings per partition, the unit of work and of resuming; inputs under 16 times "
                          "that are cut into up to 16 partitions of at least 100 listings (default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_shards)


def _cmd_train(args: argparse.Namespace) -> None:
    from .training import train
    from .training.models import FACET_PREFIX
    from .training.stage import train_options

    options = {key: value for key, value in _given(args, train_options()).items() if value is not None}
    if options.get("balance") == "none":
        options["balance"] = None
    if args.quiet:
        options["progress"] = False
    for name in ("stop_after_steps", "relabel"):  # not pipeline settings ([train] of round 2 gets the audit itself)
        if name in args:
            options[name] = getattr(args, name)
    result = train(args.shards, args.out, resume=args.resume, overwrite=args.overwrite, **options)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    if result.get("stopped"):
        print(f"stopped after step {result['step']} as asked; continue with --resume")
        return
    shown = {k: v for k, v in result.items() if isinstance(v, float) and FACET_PREFIX not in k}
    facets = [v for k, v in result.items() if k.startswith(f"val_top1_{FACET_PREFIX}") and v is not None]
    print(f"trained {result['step']} steps ({result['epoch']} full epochs, {result['images_seen']} images)"
          + "".join(f", {k} {v:.4f}" for k, v in shown.items() if k.startswith(("val_map", "val_top1", "val_loss")))
          + (f", mean val_top1 of {len(facets)} facet heads {sum(facets) / len(facets):.4f}" if facets else ""))
    best = ", best.pt" if (Path(args.out) / "best.pt").is_file() else " (no best.pt: the shards have no val split)"
    print(f"wrote {args.out}/last.pt{best}, metrics.jsonl, config.json, manifest.json")


def _cmd_embed(args: argparse.Namespace) -> None:
    from .training import embed

    result = embed(args.checkpoint, args.source, args.out, ema=False if args.no_ema else None,
                   progress=not args.quiet, **_given(args, _signature_defaults(embed)))
    print(f"wrote {result['rows']} embeddings of dimension {result['dim']} to {args.out}"
          + (f"; {len(result['failed'])} unreadable images left out" if result["failed"] else ""))
    for path in result["failed"][:20]:
        print(f"unreadable: {path}", file=sys.stderr)
    if len(result["failed"]) > 20:
        print(f"... and {len(result['failed']) - 20} more", file=sys.stderr)


def _cmd_export(args: argparse.Namespace) -> None:
    from .training import export_encoder

    options = _signature_defaults(export_encoder) | _given(args, _signature_defaults(export_encoder))
    result = export_encoder(args.checkpoint, args.out, ema=False if args.no_ema else None,
                            **{k: options[k] for k in ("format", "opset", "tolerance")})
    print(f"wrote {args.out} ({options['format']}); max abs diff to PyTorch {result['max_abs_diff']:.2e} "
          f"(tolerance {options['tolerance']:g}); input/output description in {args.out}.json")


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train an image encoder on shards",
                       formatter_class=_api_help(lambda: _stage_defaults("train")),
                       description="Train a timm backbone with an embedding head and task heads on a shards folder: "
                                   "the multi-label task over the vocabulary, plus softmax tasks over carried "
                                   "columns and the vocabulary's facets. Writes last.pt, best.pt (best validation "
                                   "score of a trained task), metrics.jsonl, config.json and manifest.json to "
                                   "--out. Under 'torchrun --nproc_per_node N -m weaklabel.cli train ...' it trains "
                                   "with DDP.", epilog=EPILOG)
    p.add_argument("shards", help="shards folder written by 'weaklabel shards'")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder")
    _add_overwrite(p, also="start a new run even if --out holds one, and ")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.pt up to the requested --steps/--epochs (a new "
                        "run when there is none); options left out are the run's, and only --steps, --epochs, "
                        "--workers, --device, --precision, --compile, --eval-every, --log-every and "
                        "--checkpoint-every may differ from them (default: off)")
    m = p.add_argument_group("model")
    m.add_argument("--model", default=argparse.SUPPRESS, metavar="NAME", help="timm model name (default: %(default)s)")
    m.add_argument("--pretrained", action="store_true", default=argparse.SUPPRESS,
                   help="start from timm's pretrained weights, downloading them if needed (default: off, random init)")
    m.add_argument("--weights", default=argparse.SUPPRESS, metavar="FILE",
                   help="local weights to start from: a backbone state dict or a weaklabel checkpoint; missing "
                        "and unexpected keys are reported (default: %(default)s)")
    m.add_argument("--embed-dim", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="embedding dimension (default: %(default)s)")
    m.add_argument("--drop-path", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="stochastic depth rate, where the model has it (default: %(default)s)")
    m.add_argument("--image-size", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="training and evaluation image side in pixels (default: %(default)s)")
    t = p.add_argument_group("tasks and losses")
    t.add_argument("--task", "--tasks", action="append", dest="tasks", default=argparse.SUPPRESS,
                   metavar="TASK",
                   help="an extra task: COLUMN:softmax[:WEIGHT], a softmax task over a carried column, or "
                        "facets[:WEIGHT], one softmax task per facet of the vocabulary (named facet:NAME); WEIGHT is "
                        "the loss weight (repeatable; default: only the multi-label task over the vocabulary)")
    t.add_argument("--labels-weight", default=argparse.SUPPRESS, type=float, metavar="W",
                   help="loss weight of the vocabulary task (default: %(default)s)")
    t.add_argument("--relabel", default=argparse.SUPPRESS, metavar="AUDIT_DIR",
                   help="a second round: leave the labels that 'weaklabel audit' wrote to AUDIT_DIR as non-visual, "
                        "and its contradicted listing-label pairs, out of the vocabulary task's targets; the shards "
                        "are not changed (default: every label of the shards)")
    t.add_argument("--loss", default=argparse.SUPPRESS, choices=("bce", "asl", "softmax"),
                   help="loss of the vocabulary task: sigmoid BCE, asymmetric loss, or softmax cross-entropy over "
                        "the normalized multi-hot (default: %(default)s)")
    t.add_argument("--asl-gamma-neg", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="ASL focusing on negatives (default: %(default)s)")
    t.add_argument("--asl-gamma-pos", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="ASL focusing on positives (default: %(default)s)")
    t.add_argument("--asl-clip", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="ASL probability margin for negatives (default: %(default)s)")
    t.add_argument("--label-smoothing", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="label smoothing of every task (default: %(default)s)")
    d = p.add_argument_group("data")
    d.add_argument("--balance", default=argparse.SUPPRESS, choices=("none", "repeat-factor"),
                   help="repeat-factor sampling of images with rare labels (default: %(default)s)")
    d.add_argument("--repeat-threshold", default=argparse.SUPPRESS, type=float, metavar="T",
                   help="labels in fewer than this fraction of train images are repeated, "
                        "r = max(1, sqrt(T / frequency)) (default: %(default)s)")
    d.add_argument("--shuffle-buffer", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="samples in the shuffle buffer (default: %(default)s)")
    d.add_argument("--crop-scale", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="smallest area fraction of the random resized crop (default: %(default)s)")
    d.add_argument("--color-jitter", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="brightness/contrast/saturation jitter; 0 for none (default: %(default)s)")
    d.add_argument("--workers", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="DataLoader worker processes per rank; torch gets the cores left (default: from the cores)")
    o = p.add_argument_group("optimization")
    o.add_argument("--epochs", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="passes over the train split (default: %(default)s)")
    o.add_argument("--steps", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="total optimizer steps; overrides --epochs (default: %(default)s)")
    o.add_argument("--batch-size", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="images per batch and rank (default: %(default)s)")
    o.add_argument("--accum-steps", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="batches accumulated per optimizer step (default: %(default)s)")
    o.add_argument("--lr", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="peak AdamW learning rate (default: %(default)s)")
    o.add_argument("--min-lr", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="learning rate the cosine ends at (default: %(default)s)")
    o.add_argument("--weight-decay", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="AdamW weight decay, not applied to norms, biases and position embeddings "
                        "(default: %(default)s)")
    o.add_argument("--warmup-steps", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="linear warmup steps before the cosine decay (default: 5%% of the total steps)")
    o.add_argument("--grad-clip", default=argparse.SUPPRESS, type=float, metavar="X",
                   help="gradient norm clip; 0 for none (default: %(default)s)")
    o.add_argument("--ema", default=argparse.SUPPRESS, type=float, metavar="DECAY",
                   help="keep an exponential moving average of the weights with this decay, e.g. 0.9998; it is "
                        "what gets evaluated, embedded and exported (default: %(default)s)")
    r = p.add_argument_group("runtime")
    r.add_argument("--device", default=argparse.SUPPRESS, metavar="DEVICE",
                   help="cpu, cuda or cuda:N (default: auto, cuda if present)")
    r.add_argument("--precision", default=argparse.SUPPRESS, choices=("auto", "bf16", "fp32"),
                   help="autocast precision: auto is bf16 on CUDA, fp32 on CPU (default: %(default)s)")
    r.add_argument("--compile", action="store_true", default=argparse.SUPPRESS,
                   help="torch.compile the model (default: off)")
    r.add_argument("--seed", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="seed of initialization, data order and augmentation (default: %(default)s)")
    r.add_argument("--deterministic", action="store_true", default=argparse.SUPPRESS,
                   help="deterministic kernels (torch.use_deterministic_algorithms; slower on CUDA) (default: off)")
    r.add_argument("--eval-every", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="validate every N steps instead of at each epoch end (default: each epoch end)")
    r.add_argument("--log-every", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="steps between metrics.jsonl lines (default: %(default)s)")
    r.add_argument("--checkpoint-every", default=argparse.SUPPRESS, type=int, metavar="N",
                   help="steps between last.pt saves; it is also saved at each epoch end (default: %(default)s)")
    r.add_argument("--stop-after-steps", type=int, help=argparse.SUPPRESS)  # tests: stop as if killed
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _embed_parser(sub) -> None:
    p = sub.add_parser("embed", help="precompute embeddings of shards or an image folder",
                       formatter_class=_api_help(_function_defaults("weaklabel.training", "embed")),
                       description="Embed images with a trained encoder into a Parquet file with 'id' and "
                                   "'embedding' (L2-normalized float32). From a shards folder the id is the listing "
                                   "id and the labels and carried columns come along; from an image folder the id "
                                   "is the image's relative path.", epilog=EPILOG)
    p.add_argument("checkpoint", help="last.pt or best.pt of a training run")
    p.add_argument("source", help="shards folder (with _info.json) or a folder of images (searched recursively)")
    p.add_argument("--out", required=True, metavar="FILE", help="output Parquet file")
    p.add_argument("--split", default=argparse.SUPPRESS, metavar="NAME",
                   help="split of a shards folder to embed (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=argparse.SUPPRESS, metavar="N",
                   help="images per batch (default: %(default)s)")
    p.add_argument("--device", default=argparse.SUPPRESS, metavar="DEVICE",
                   help="cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--workers", type=int, default=argparse.SUPPRESS, metavar="N",
                   help="DataLoader worker processes; torch gets the cores left (default: from the cores)")
    p.add_argument("--no-ema", action="store_true",
                   help="use the trained weights even when EMA weights exist (default: off)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_embed)


def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="export the encoder as ONNX or TorchScript",
                       formatter_class=_api_help(_function_defaults("weaklabel.training", "export_encoder")),
                       description="Write the encoder alone (backbone + embedding head → normalized embedding, "
                                   "dynamic batch axis) and check the file's output against PyTorch's; fails when "
                                   "they differ by more than --tolerance. A FILE.json describes input and output.",
                       epilog=EPILOG)
    p.add_argument("checkpoint", help="last.pt or best.pt of a training run")
    p.add_argument("--format", choices=("onnx", "torchscript"), default=argparse.SUPPRESS,
                   help="output format (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="FILE", help="output file")
    p.add_argument("--opset", type=int, default=argparse.SUPPRESS, metavar="N",
                   help="ONNX opset version (default: %(default)s)")
    p.add_argument("--tolerance", type=float, default=argparse.SUPPRESS, metavar="X",
                   help="largest allowed absolute difference to PyTorch's output (default: %(default)s)")
    p.add_argument("--no-ema", action="store_true",
                   help="export the trained weights even when EMA weights exist (default: off)")
    p.set_defaults(func=_cmd_export)


def _cmd_eval(args: argparse.Namespace) -> None:
    from .eval import evaluate, format_table

    metrics = evaluate(args.checkpoints, args.shards, args.out, progress=not args.quiet, overwrite=args.overwrite,
                       **_given(args, _stage_defaults("eval")))
    print(format_table(metrics))
    print(f"wrote {args.out}/metrics.json, queries.parquet, report.html, manifest.json and embeddings/")


def _eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate encoders: retrieval, classification, long tail, efficiency",
                       formatter_class=_api_help(lambda: _stage_defaults("eval")),
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
    p.add_argument("--split", default=argparse.SUPPRESS, metavar="NAME",
                   help="split whose items are the queries (and the gallery, each query excluded) "
                        "(default: %(default)s)")
    p.add_argument("--gallery-split", default=argparse.SUPPRESS, metavar="NAME",
                   help="search this split instead of the query split, e.g. --split test --gallery-split train "
                        "(default: %(default)s)")
    p.add_argument("--embeddings", action="append", default=argparse.SUPPRESS, metavar="FILE",
                   help="also evaluate a precomputed embeddings Parquet ('weaklabel embed' format, from any model) "
                        "as the query split, searched among itself; retrieval and probes only (repeatable)")
    p.add_argument("--relevance", action="append", default=argparse.SUPPRESS, metavar="NAME",
                   help="what makes a gallery item relevant to a query: 'labels' (sharing at least one weak "
                        "label) or a carried column (an equal value), which is also probed (repeatable; "
                        "default: labels)")
    p.add_argument("--device", default=argparse.SUPPRESS, metavar="DEVICE",
                   help="cpu, cuda or cuda:N, for embedding, search and efficiency (default: auto, cuda if present)")
    p.add_argument("--batch-size", type=int, default=argparse.SUPPRESS, metavar="N",
                   help="images per batch when embedding (default: %(default)s)")
    p.add_argument("--workers", type=int, default=argparse.SUPPRESS, metavar="N",
                   help="DataLoader worker processes; torch gets the cores left (default: from the cores)")
    p.add_argument("--no-efficiency", action="store_false", dest="efficiency", default=argparse.SUPPRESS,
                   help="skip the parameters/GMACs/latency/throughput/memory measurements (default: measured)")
    p.add_argument("--exclude-near-duplicates", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                   help="leave each query's near-copies (its group in the shards' duplicates.parquet) out of its "
                        "gallery and its relevant items, as the query itself is; the summary says how many "
                        "(default: on)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=_cmd_eval)


def _cmd_audit(args: argparse.Namespace) -> None:
    from .audit import audit

    options = {key: value for key, value in vars(args).items()
               if key in ("neighbours", "min_visualness", "min_held_out", "batch_size", "device", "workers")}
    audit(args.checkpoint, args.shards, args.out, vocab=args.vocab, progress=not args.quiet, overwrite=args.overwrite,
          **options)
    _print_summary("audit", args.out)
    print(f"wrote {args.out}/labels_audit.parquet, pairs.parquet, overrides.toml (a suggestion), report.html "
          "and manifest.json")


def _audit_parser(sub) -> None:
    p = sub.add_parser("audit", help="ask the images which labels are visual and which listing labels are wrong",
                       formatter_class=_api_help(_function_defaults("weaklabel.audit", "audit")),
                       usage="weaklabel audit CHECKPOINT --shards DIR --out DIR [--vocab DIR] [options]",
                       description="Audit the weak labels with a trained encoder. Visualness per label, on the "
                                   "held-out splits (images the encoder did not learn from): the multi-label head's "
                                   "AP gain over chance and the neighbour agreement gain; labels below "
                                   "--min-visualness are flagged non-visual. Suspect listing-label pairs of the other "
                                   "labels, from each image's nearest neighbours (itself left out) and the head, and "
                                   "cleanlab's confident learning: "
                                   "labels the text gave that the images contradict, and labels the images give that "
                                   "the text missed. Writes labels_audit.parquet, pairs.parquet, a suggested "
                                   "overrides.toml (never applied: review it, then pass it to 'weaklabel vocab "
                                   "--overrides'), report.html (per label: typical, contradicted and missed images) "
                                   "and manifest.json. 'weaklabel train --relabel DIR' trains a second round without "
                                   "the flagged labels and contradicted pairs.",
                       epilog=EPILOG)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="best.pt or last.pt of a run trained on these shards")
    p.add_argument("--shards", required=True, metavar="DIR", help="shards folder written by 'weaklabel shards'")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--vocab", metavar="DIR", default=None,
                   help="vocabulary folder the shards were built from: its aliases show in the report (default: the "
                        "label names in the shards)")
    _add_overwrite(p)
    p.add_argument("--neighbours", type=int, default=argparse.SUPPRESS, metavar="K",
                   help="nearest images that vote for an image's labels and measure agreement (default: %(default)s)")
    p.add_argument("--min-visualness", type=float, default=argparse.SUPPRESS, metavar="X",
                   help="a label judged below this visualness (0 chance .. 1 perfect) is non-visual "
                        "(default: %(default)s)")
    p.add_argument("--min-held-out", type=int, default=argparse.SUPPRESS, metavar="N",
                   help="held-out images a label needs to be judged; fewer leave it unjudged (default: %(default)s)")
    p.add_argument("--device", default=argparse.SUPPRESS, metavar="DEVICE",
                   help="cpu, cuda or cuda:N; auto: cuda if present (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=argparse.SUPPRESS, metavar="N",
                   help="images per batch (default: %(default)s)")
    p.add_argument("--workers", type=int, default=argparse.SUPPRESS, metavar="N",
                   help="DataLoader worker processes; torch gets the cores left (default: from the cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_audit)


def _verify_parser(sub) -> None:
    p = sub.add_parser("verify", help="re-read a shards folder and report every problem",
                       description="Re-read a shards folder written by 'weaklabel shards': every tar, index "
                                   "and manifest entry must agree and every sample must decode. Prints each "
                                   "problem and exits non-zero when there is any.", epilog=EPILOG)
    p.add_argument("shards", metavar="DIR", help="shards folder written by 'weaklabel shards'")
    _add_dask(p, partition="each shard")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_verify_shards)


PARSERS: list[Callable] = [_demo_parser, _run_parser, _example_data_parser, _vocab_parser, _assign_parser,
                           _shards_parser, _verify_parser, _train_parser, _embed_parser, _export_parser,
                           _eval_parser, _audit_parser]


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
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
