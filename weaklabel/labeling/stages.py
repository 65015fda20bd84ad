"""The ``vocab`` and ``assign`` stages: listings on disk in, artifact folders out."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..artifacts import (
    LABELED_LABELS,
    LABELED_PARTS,
    Timer,
    convert_table,
    fingerprint_artifact,
    fingerprint_files,
    labeled_parts,
    read_manifest,
    write_manifest,
    write_parquet,
)
from ..facets import FACETS_FIELD
from ..folders import Outputs, output_folder
from ..listings import (
    REJECTED_LISTINGS_SCHEMA,
    ColumnRoles,
    Listings,
    concat_listings,
    list_listing_files,
    read_listing_file,
)
from ..parallel import run_partitions
from ..stage import Inputs, OptionTypes, Stage, listings_read, plural, signature_options
from .appending import STAGING, EarlierRun
from .assign import LabelAssigner
from .counting import count_terms, read_sample, repeated_per_file
from .report import write_vocab_report
from .vocabulary import Vocabulary, VocabularyBuilder

VOCAB_OUTPUTS = Outputs("vocab", frozenset({"labels.parquet", "terms.parquet", "label_embeddings.npy",
                                            "boilerplate.parquet", "facets.parquet", "rejected.parquet",
                                            "report.html"}))
ASSIGN_OUTPUTS = Outputs("assign", frozenset({"rejected.parquet", LABELED_LABELS}), folders=(LABELED_PARTS,))


def build_vocabulary(source: str | Path | Sequence[str | Path], roles: ColumnRoles, out: str | Path,
                     *, workers: int | None = None, scheduler: str | None = None, progress: bool = True,
                     overwrite: bool = False, **params: Any) -> Vocabulary:
    """Count the terms of the listings in ``source``, fit a :class:`VocabularyBuilder` with
    ``params`` on the counts, and write the vocab folder.

    Each listing file is one partition (see :mod:`weaklabel.labeling.counting`): memory holds one
    file's listings per worker, a sample of ``max(boilerplate_sample, facet_sample)`` listings and
    the ids, never every listing. The folder holds ``labels.parquet``, ``terms.parquet``,
    ``label_embeddings.npy``, ``boilerplate.parquet``, ``facets.parquet``, ``rejected.parquet``,
    ``report.html`` and ``manifest.json``, written last: a run killed while writing leaves no
    manifest, which readers refuse. ``overwrite``: write even if ``out`` holds files this stage did
    not write (they are kept).
    """
    out = Path(out)
    timer = Timer()
    files = list_listing_files(source)
    builder = VocabularyBuilder(roles, progress=progress, **params)
    builder._validate()  # a bad setting stops the run before any file is read
    parallel = {"workers": workers, "scheduler": scheduler, "progress": progress}
    with output_folder(out, VOCAB_OUTPUTS, overwrite=overwrite) as folder:
        with timer("read"):
            sampled = read_sample(files, roles, max(builder.boilerplate_sample, builder.facet_sample), **parallel)
        with timer("boilerplate"):
            boilerplate = builder.find_boilerplate(sampled.sample)
            sample, _ = boilerplate.strip_frame(sampled.sample)
        with timer("count_terms"):
            counts, stripped = count_terms(sampled, builder.analyzer(), boilerplate, **parallel)
        builder.fit_counts(counts, boilerplate=boilerplate, stripped=stripped, sample=sample)
        timer.seconds.update(builder.timer_.seconds)
        vocabulary = builder.vocabulary_
        listings = sampled.ids
        with timer("write"):
            folder.clear()
            vocabulary.save(out)
            write_parquet(listings.rejected, out / "rejected.parquet", schema=REJECTED_LISTINGS_SCHEMA)
            write_vocab_report(vocabulary, out / "report.html", listings.counts)
        config = {k: v for k, v in builder.get_params().items() if k not in ("roles", "progress", "overrides")}
        overrides = params.get("overrides")
        config["overrides"] = str(overrides) if isinstance(overrides, (str, Path)) else overrides
        write_manifest(
            out, "vocab",
            config={"builder": config, "vocabulary": vocabulary.config()},
            inputs=fingerprint_files(files) + _overrides_fingerprint(overrides),
            counts={**listings.counts, **{k: v for k, v in vocabulary.stats.items() if k != "support_before"}},
            timings=timer.seconds,
            outputs={"labels": len(vocabulary.labels), "tiers": vocabulary.labels["tier"].value_counts().to_dict()},
        )
    return vocabulary


def assign_labels(source: str | Path | Sequence[str | Path], vocab: str | Path, out: str | Path,
                  *, roles: ColumnRoles | None = None, keep: Sequence[str] | None = None,
                  rows_per_part: int = 250_000, workers: int | None = None, scheduler: str | None = None,
                  append: bool = False, progress: bool = True, overwrite: bool = False,
                  **params: Any) -> dict[str, Any]:
    """Label listings with the vocabulary in ``vocab``; write ``parts/part-*.parquet``, a copy of the
    vocabulary's labels as ``labels.feather`` (the folder carries what the shards stage needs) and a manifest.

    Each input file is one partition, labelled by a Dask worker (see :mod:`weaklabel.parallel`)
    into ``parts/part-{file:05d}-{chunk:04d}.parquet``; an id already accepted from an earlier file is
    then removed from later parts and rejected as ``duplicate_id``. ``keep`` names the listing
    columns passed through besides id and image (all by default). Returns the coverage counts.
    The manifest is written last: a run killed midway leaves none, which readers refuse.
    ``append``: add to the finished folder ``out`` only the listings whose id it does not hold (see
    :mod:`weaklabel.labeling.appending`). ``overwrite``: write even if ``out`` holds files this
    stage did not write (they are kept).
    """
    out = Path(out)
    timer = Timer()
    vocabulary = Vocabulary.load(vocab)
    roles = roles or vocabulary.roles
    LabelAssigner(vocabulary, roles, **params).fit()  # validate the parameters before starting workers
    files = list_listing_files(source)
    config = {"vocab": str(Path(vocab).resolve()), "roles": roles.to_dict(),
              "keep": list(keep) if keep is not None else None, "rows_per_part": rows_per_part, **params}
    fingerprints = fingerprint_files(files)
    outputs = dataclasses.replace(ASSIGN_OUTPUTS, refuse_finished=False) if append else ASSIGN_OUTPUTS
    with output_folder(out, outputs, overwrite=overwrite) as folder:
        earlier = EarlierRun.read(out, config, vocab) if append else None
        if earlier:
            fingerprints = earlier.new_files(fingerprints)
            if not fingerprints:
                return {k: v for k, v in earlier.manifest["counts"].items() if k in COVERAGE_KEYS}
            files = [Path(f["path"]) for f in fingerprints]
            parts_dir = out / STAGING
            shutil.rmtree(parts_dir, ignore_errors=True)  # a failed append's leftovers
        else:
            folder.clear()
            parts_dir = out / LABELED_PARTS
            convert_table(Path(vocab) / "labels.parquet", out / LABELED_LABELS)  # the folder carries what shards needs
        parts_dir.mkdir()
        first, known = (earlier.next_index, tuple(str(p) for p in earlier.parts)) if earlier else (0, ())
        partitions = [_AssignPartition(first + i, str(f), str(vocab), str(parts_dir), roles.to_dict(),
                                       list(keep) if keep else None, rows_per_part, params, known)
                      for i, f in enumerate(files)]
        with timer("assign"):
            results = run_partitions(_assign_file, partitions, workers=workers, scheduler=scheduler,
                                     progress=progress, desc="assign")
        with timer("merge"):
            listings = concat_listings([r["ids"] for r in results])
            _drop_cross_file_duplicates(results)
            counts, rejected = listings.counts, listings.rejected
            if earlier:
                counts = earlier.counts_with(counts | {"already_labelled": sum(r["known"] for r in results)})
                rejected = earlier.rejected_with(out, rejected)
                folder.remove_manifest()
                for part in sorted(parts_dir.glob("part-*.parquet")):
                    part.rename(out / LABELED_PARTS / part.name)
                parts_dir.rmdir()
            write_parquet(rejected, out / "rejected.parquet", schema=REJECTED_LISTINGS_SCHEMA)
            coverage = _coverage(labeled_parts(out), vocabulary)
        appended = {"files": len(files), "listings": listings.counts["rows_out"],
                    "already_labelled": sum(r["known"] for r in results)} if earlier else None
        write_manifest(
            out, "assign", config=config,
            inputs=(earlier.file_inputs() if earlier else []) + fingerprints + [fingerprint_artifact(vocab)],
            counts={**counts, **coverage},
            timings=timer.seconds,
            outputs={"parts": [p.name for p in labeled_parts(out)], **({"appended": appended} if appended else {})},
        )
    return coverage


@dataclass(frozen=True)
class _AssignPartition:
    index: int
    path: str
    vocab: str
    parts: str
    roles: dict
    keep: list[str] | None
    rows_per_part: int
    params: dict
    known: tuple[str, ...] = ()  # parts of an earlier run: their ids are labelled already


def _assign_file(partition: _AssignPartition) -> dict[str, Any]:
    """One partition: label one listing file into its own parts (runs on a worker)."""
    roles = ColumnRoles.from_dict(partition.roles)
    listings, known = _without_known(read_listing_file(partition.path, roles), partition.known)
    assigner = LabelAssigner(Vocabulary.load(partition.vocab), roles, **partition.params).fit()
    passthrough = _passthrough_columns(listings, roles, partition.keep)
    parts = []
    for chunk, start in enumerate(range(0, max(len(listings.frame), 1), partition.rows_per_part)):
        frame = listings.frame.iloc[start : start + partition.rows_per_part]
        path = Path(partition.parts) / f"part-{partition.index:05d}-{chunk:04d}.parquet"
        pq.write_table(_output_table(frame, roles, assigner.transform_arrow(frame), passthrough), path)
        parts.append(str(path))
    slim = Listings(listings.frame[[roles.id]], listings.rejected, listings.counts, listings.files,
                    listings.roles, listings.origin)
    return {"parts": parts, "ids": slim, "known": known}


def _without_known(listings: Listings, known_parts: Sequence[str]) -> tuple[Listings, int]:
    """``listings`` without those whose id the ``known_parts`` hold, and how many those were (they
    are neither read nor rejected in this run's counts)."""
    if not known_parts:
        return listings, 0
    known = pq.read_table(list(known_parts), columns=["id"]).column("id")
    ids = pa.array(listings.frame[listings.roles.id].tolist(), pa.string())
    is_known = pc.is_in(ids, value_set=known.combine_chunks()).to_numpy(zero_copy_only=False)
    n = int(is_known.sum())
    counts = {**listings.counts, "rows_in": listings.counts["rows_in"] - n, "rows_out": listings.counts["rows_out"] - n}
    keep = ~is_known
    return dataclasses.replace(listings, frame=listings.frame[keep].reset_index(drop=True), counts=counts,
                               origin=listings.origin[keep].reset_index(drop=True)), n


def _drop_cross_file_duplicates(results: list[dict[str, Any]]) -> None:
    """Remove from each file's parts the ids an earlier file already holds (the first file wins)."""
    for result, repeated in zip(results, repeated_per_file([r["ids"] for r in results])):
        if repeated:
            for part in result["parts"]:
                table = pq.read_table(part)
                keep = pc.invert(pc.is_in(table.column("id"), pa.array(sorted(repeated), pa.string())))
                pq.write_table(table.filter(keep), part)


def read_labeled(folder: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """All weak labels of an ``assign`` folder as one DataFrame (its ``parts/``)."""
    return pd.read_parquet(labeled_parts(folder), columns=list(columns) if columns else None)


def _passthrough_columns(listings: Listings, roles: ColumnRoles, keep: Sequence[str] | None) -> list[str]:
    leading = {roles.id, roles.image}
    columns = [c for c in listings.frame.columns if c not in leading]
    if keep is None:
        return columns
    unknown = [c for c in keep if c not in listings.frame.columns]
    if unknown:
        raise ValueError(f"--keep names column(s) {unknown} that the listings lack; "
                         f"columns are {list(listings.frame.columns)}")
    return [c for c in keep if c not in leading]


def _output_table(frame, roles: ColumnRoles, labels: pa.Table, passthrough: list[str]) -> pa.Table:
    image = frame[roles.image] if roles.image else [""] * len(frame)
    columns = {"id": pa.array(frame[roles.id].tolist(), pa.string()), "image": pa.array(list(image), pa.string())}
    columns.update({name: labels.column(name) for name in labels.column_names})
    table = pa.table(columns)
    extra = pa.Table.from_pandas(frame[passthrough], preserve_index=False)
    for name in extra.column_names:
        column = extra.column(name)
        if pa.types.is_large_string(column.type):  # pandas' pyarrow strings: one string type in every part
            column = column.cast(pa.string())
        clashes = name in columns or name == FACETS_FIELD  # "facets" means facet labels downstream
        table = table.append_column(f"listing_{name}" if clashes else name, column)
    return table


COVERAGE_KEYS = ("listings_labelled", "listings_unlabelled", "coverage", "labels_per_listing_mean",
                 "listings_labelled_by_fallback", "label_assignments_by_tier", "labels_never_assigned")


def _coverage(parts: list[Path], vocabulary: Vocabulary) -> dict[str, Any]:
    """Coverage statistics read back from the written parts, one part at a time."""
    rows = labelled = assigned = by_fallback = 0
    per_label = np.zeros(len(vocabulary.labels), np.int64)
    for part in parts:
        table = pq.read_table(part, columns=["labels", "evidence"])
        labels = table.column("labels").combine_chunks()
        per_row = labels.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
        per_label += np.bincount(labels.flatten().to_numpy(), minlength=len(per_label))
        evidence = table.column("evidence").combine_chunks()
        by_embedding = pc.equal(evidence.flatten().field("field"), "embedding")
        by_fallback += len(pc.unique(pc.filter(pc.list_parent_indices(evidence), by_embedding)))
        rows += len(per_row)
        labelled += int((per_row > 0).sum())
        assigned += int(per_row.sum())
    tiers = vocabulary.labels["tier"].to_numpy()
    return {
        "listings_labelled": labelled,
        "listings_unlabelled": rows - labelled,
        "coverage": labelled / rows if rows else 0.0,
        "labels_per_listing_mean": assigned / rows if rows else 0.0,
        "listings_labelled_by_fallback": by_fallback,
        "label_assignments_by_tier": {t: int(per_label[tiers == t].sum()) for t in ("head", "torso", "tail")},
        "labels_never_assigned": int((per_label == 0).sum()),
    }


def _overrides_fingerprint(overrides) -> list[dict[str, Any]]:
    return fingerprint_files([overrides]) if isinstance(overrides, (str, Path)) else []


# ---------------------------------------------------------------------------------------------
# The stages as the runner and the CLI see them (weaklabel.stage.Stage)
# ---------------------------------------------------------------------------------------------

WORD_FILE_OPTIONS = ("overrides", "blocklist", "allowlist", "stopwords")


def vocab_options() -> OptionTypes:
    return (signature_options(VocabularyBuilder.__init__, exclude={"self", "roles", "progress"})
            | signature_options(build_vocabulary, exclude={"source", "roles", "out", "progress", "overwrite"}))


def vocab_params(options: dict[str, Any]) -> dict[str, Any]:
    """:class:`VocabularyBuilder` keywords from a ``[vocab]`` section: word lists may be files (one
    word per line, ``#`` comments), ``stopwords = "none"`` is no stopwords, pairs are tuples."""
    params = dict(options)
    for key in ("blocklist", "allowlist"):
        if isinstance(params.get(key), str):
            params[key] = read_words(params[key])
    stopwords = params.get("stopwords")
    if stopwords == "none":
        params["stopwords"] = None
    elif isinstance(stopwords, str) and Path(stopwords).is_file():
        params["stopwords"] = read_words(stopwords)
    for key in ("ngram_range", "tier_mass"):
        if key in params:
            params[key] = tuple(params[key])
    return params


def read_words(path: str | Path) -> list[str]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _check_vocab(options: dict[str, Any]) -> None:
    params = {k: v for k, v in vocab_params(options).items() if k not in ("workers", "scheduler")}
    VocabularyBuilder(None, **params)._validate()


def _vocab_files(options: dict[str, Any]) -> list[str]:
    return [options[key] for key in WORD_FILE_OPTIONS
            if isinstance(options.get(key), str) and Path(options[key]).is_file()]


def _run_vocab(inputs: Inputs, out: Path, options: dict[str, Any], *, progress: bool, resume: bool = False,
               overwrite: bool = False) -> dict[str, Any]:
    build_vocabulary(list(inputs.listings), inputs.roles, out, progress=progress, overwrite=overwrite,
                     **vocab_params(options))
    return read_manifest(out, "vocab")


def vocab_summary(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """What a vocab run found, for a person: the listings read, labels and tiers, other languages, boilerplate."""
    counts, tiers = manifest["counts"], manifest["outputs"].get("tiers", {})
    lines = [listings_read(counts),
             (f"{manifest['outputs']['labels']} labels (head {tiers.get('head', 0)}, torso {tiers.get('torso', 0)}, "
             f"tail {tiers.get('tail', 0)}) from {counts['candidates']} candidate terms over {counts['listings']} "
             "listings")]
    if counts.get("facets"):
        lines.append(f"{counts['facets']} facets of alternative labels (see facets.parquet and report.html)")
    lines += [f"{language} detected ({', '.join(words[:5])}, ...): its stopwords are boundaries too"
              for language, words in counts.get("languages_detected", {}).items()]
    lines += [f"boilerplate in {column}: {found['patterns']} repeated sentences or templates, {found['words']:,} "
              f"words of {found['listings']:,} listings take no terms"
              for column, found in counts.get("boilerplate", {}).items() if found["patterns"]]
    return lines


def assign_options() -> OptionTypes:
    return (signature_options(LabelAssigner.__init__, exclude={"self", "vocabulary", "roles"})
            | signature_options(assign_labels, exclude={"source", "vocab", "out", "roles", "progress", "overwrite",
                                                        "append"}))


ASSIGN_CALL_KEYS = ("keep", "rows_per_part", "workers", "scheduler")


def _check_assign(options: dict[str, Any]) -> None:
    params = {k: v for k, v in options.items() if k not in ASSIGN_CALL_KEYS}
    LabelAssigner(None, **params)._validate()
    if options.get("rows_per_part", 1) < 1:
        raise ValueError(f"rows_per_part must be >= 1, got {options['rows_per_part']}")


def _run_assign(inputs: Inputs, out: Path, options: dict[str, Any], *, progress: bool, resume: bool = False,
                overwrite: bool = False) -> dict[str, Any]:
    assign_labels(list(inputs.listings), inputs.folders["vocab"], out, roles=inputs.roles, progress=progress,
                  overwrite=overwrite, **options)
    return read_manifest(out, "assign")


def assign_summary(folder: Path, manifest: dict[str, Any]) -> list[str]:
    counts, appended = manifest["counts"], manifest["outputs"].get("appended")
    added = [(f"appended {appended['listings']} listings from {plural(appended['files'], 'new or changed file')} "
              f"({appended['already_labelled']} of their listings were labelled already)")] if appended else []
    return [*added, listings_read(counts),
            (f"{counts['listings_labelled']} listings labelled ({counts['coverage']:.1%}), "
            f"{counts['listings_unlabelled']} without a label, {counts['labels_per_listing_mean']:.2f} labels each")]


VOCAB = Stage("vocab", "vocab", upstream=(), reads_listings=True, outputs=("labels.parquet",), options=vocab_options,
              check=_check_vocab, run=_run_vocab, summary=vocab_summary,
              execution=("batch_size", "device", "cache_dir", "workers", "scheduler"), files=_vocab_files)
ASSIGN = Stage("assign", "labeled", upstream=("vocab",), reads_listings=True,
               outputs=(f"{LABELED_PARTS}/part-*.parquet",), options=assign_options, check=_check_assign,
               run=_run_assign, summary=assign_summary, execution=("batch_size", "device", "workers", "scheduler"))
