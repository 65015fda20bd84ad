"""The ``vocab`` and ``assign`` stages: listings on disk in, artifact folders out."""

from __future__ import annotations

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
    read_listings,
)
from ..parallel import run_partitions
from ..stage import Inputs, OptionTypes, Stage, listings_read, signature_options
from .assign import LabelAssigner
from .report import write_vocab_report
from .vocabulary import Vocabulary, VocabularyBuilder

VOCAB_OUTPUTS = Outputs("vocab", frozenset({"labels.parquet", "terms.parquet", "label_embeddings.npy",
                                            "boilerplate.parquet", "facets.parquet", "rejected.parquet",
                                            "report.html"}))
ASSIGN_OUTPUTS = Outputs("assign", frozenset({"rejected.parquet", LABELED_LABELS}), folders=(LABELED_PARTS,))


def build_vocabulary(source: str | Path | Sequence[str | Path], roles: ColumnRoles, out: str | Path,
                     *, progress: bool = True, overwrite: bool = False, **params: Any) -> Vocabulary:
    """Read listings, fit a :class:`VocabularyBuilder` with ``params``, and write the vocab folder.

    The folder holds ``labels.parquet``, ``terms.parquet``, ``label_embeddings.npy``, ``boilerplate.parquet``,
    ``facets.parquet``,
    ``rejected.parquet``, ``report.html`` and ``manifest.json``, written last: a run killed while
    writing leaves no manifest, which readers refuse. ``overwrite``: write even if ``out`` holds
    files this stage did not write (they are kept).
    """
    out = Path(out)
    timer = Timer()
    files = list_listing_files(source)
    with output_folder(out, VOCAB_OUTPUTS, overwrite=overwrite) as folder:
        with timer("read"):
            listings = read_listings(files, roles, progress=progress)
        builder = VocabularyBuilder(roles, progress=progress, **params).fit(listings)
        timer.seconds.update(builder.timer_.seconds)
        vocabulary = builder.vocabulary_
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
                  progress: bool = True, overwrite: bool = False, **params: Any) -> dict[str, Any]:
    """Label listings with the vocabulary in ``vocab``; write ``parts/part-*.parquet``, a copy of the
    vocabulary's labels as ``labels.feather`` (the folder carries what the shards stage needs) and a manifest.

    Each input file is one partition, labelled by a Dask worker (see :mod:`weaklabel.parallel`)
    into ``parts/part-{file:05d}-{chunk:04d}.parquet``; an id already accepted from an earlier file is
    then removed from later parts and rejected as ``duplicate_id``. ``keep`` names the listing
    columns passed through besides id and image (all by default). Returns the coverage counts.
    The manifest is written last: a run killed midway leaves none, which readers refuse.
    ``overwrite``: write even if ``out`` holds files this stage did not write (they are kept).
    """
    out = Path(out)
    timer = Timer()
    vocabulary = Vocabulary.load(vocab)
    roles = roles or vocabulary.roles
    LabelAssigner(vocabulary, roles, **params).fit()  # validate the parameters before starting workers
    files = list_listing_files(source)
    with output_folder(out, ASSIGN_OUTPUTS, overwrite=overwrite) as folder:
        folder.clear()
        (out / LABELED_PARTS).mkdir()
        convert_table(Path(vocab) / "labels.parquet", out / LABELED_LABELS)  # the folder carries what shards needs
        partitions = [_AssignPartition(i, str(f), str(vocab), str(out), roles.to_dict(), list(keep) if keep else None,
                                       rows_per_part, params) for i, f in enumerate(files)]
        with timer("assign"):
            results = run_partitions(_assign_file, partitions, workers=workers, scheduler=scheduler,
                                     progress=progress, desc="assign")
        with timer("merge"):
            listings = concat_listings([r["ids"] for r in results])
            _drop_cross_file_duplicates(results)
            write_parquet(listings.rejected, out / "rejected.parquet", schema=REJECTED_LISTINGS_SCHEMA)
            coverage = _coverage(labeled_parts(out), vocabulary)
        write_manifest(
            out, "assign",
            config={"vocab": str(Path(vocab).resolve()), "roles": roles.to_dict(),
                    "keep": list(keep) if keep is not None else None, "rows_per_part": rows_per_part, **params},
            inputs=fingerprint_files(files) + [fingerprint_artifact(vocab)],
            counts={**listings.counts, **coverage},
            timings=timer.seconds,
            outputs={"parts": [p.name for p in labeled_parts(out)]},
        )
    return coverage


@dataclass(frozen=True)
class _AssignPartition:
    index: int
    path: str
    vocab: str
    out: str
    roles: dict
    keep: list[str] | None
    rows_per_part: int
    params: dict


def _assign_file(partition: _AssignPartition) -> dict[str, Any]:
    """One partition: label one listing file into its own parts (runs on a worker)."""
    roles = ColumnRoles.from_dict(partition.roles)
    listings = read_listing_file(partition.path, roles)
    assigner = LabelAssigner(Vocabulary.load(partition.vocab), roles, **partition.params).fit()
    passthrough = _passthrough_columns(listings, roles, partition.keep)
    parts = []
    for chunk, start in enumerate(range(0, max(len(listings.frame), 1), partition.rows_per_part)):
        frame = listings.frame.iloc[start : start + partition.rows_per_part]
        path = Path(partition.out) / LABELED_PARTS / f"part-{partition.index:05d}-{chunk:04d}.parquet"
        pq.write_table(_output_table(frame, roles, assigner.transform_arrow(frame), passthrough), path)
        parts.append(str(path))
    slim = Listings(listings.frame[[roles.id]], listings.rejected, listings.counts, listings.files,
                    listings.roles, listings.origin)
    return {"parts": parts, "ids": slim}


def _drop_cross_file_duplicates(results: list[dict[str, Any]]) -> None:
    """Remove from each file's parts the ids an earlier file already holds (the first file wins)."""
    seen: set[str] = set()
    for result in results:
        ids = result["ids"].frame.iloc[:, 0]
        repeated = set(ids[ids.isin(seen)])
        seen.update(ids)
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


def _coverage(parts: list[Path], vocabulary: Vocabulary) -> dict[str, Any]:
    """Coverage statistics read back from the written parts."""
    table = pq.read_table(parts, columns=["labels", "evidence"])
    labels = table.column("labels").combine_chunks()
    per_row = labels.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    counts = np.bincount(labels.flatten().to_numpy(), minlength=len(vocabulary.labels))
    evidence = table.column("evidence").combine_chunks()
    by_embedding = pc.equal(evidence.flatten().field("field"), "embedding")
    fallback_rows = pc.filter(pc.list_parent_indices(evidence), by_embedding)
    tiers = vocabulary.labels["tier"].to_numpy()
    n = len(per_row)
    return {
        "listings_labelled": int((per_row > 0).sum()),
        "listings_unlabelled": int((per_row == 0).sum()),
        "coverage": float((per_row > 0).mean()) if n else 0.0,
        "labels_per_listing_mean": float(per_row.mean()) if n else 0.0,
        "listings_labelled_by_fallback": len(pc.unique(fallback_rows)),
        "label_assignments_by_tier": {t: int(counts[tiers == t].sum()) for t in ("head", "torso", "tail")},
        "labels_never_assigned": int((counts == 0).sum()),
    }


def _overrides_fingerprint(overrides) -> list[dict[str, Any]]:
    return fingerprint_files([overrides]) if isinstance(overrides, (str, Path)) else []


# ---------------------------------------------------------------------------------------------
# The stages as the runner and the CLI see them (weaklabel.stage.Stage)
# ---------------------------------------------------------------------------------------------

WORD_FILE_OPTIONS = ("overrides", "blocklist", "allowlist", "stopwords")


def vocab_options() -> OptionTypes:
    return signature_options(VocabularyBuilder.__init__, exclude={"self", "roles", "progress"})


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
    VocabularyBuilder(None, **vocab_params(options))._validate()


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
            | signature_options(assign_labels, exclude={"source", "vocab", "out", "roles", "progress", "overwrite"}))


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
    counts = manifest["counts"]
    return [listings_read(counts),
            (f"{counts['listings_labelled']} listings labelled ({counts['coverage']:.1%}), "
            f"{counts['listings_unlabelled']} without a label, {counts['labels_per_listing_mean']:.2f} labels each")]


VOCAB = Stage("vocab", "vocab", upstream=(), reads_listings=True, outputs=("labels.parquet",), options=vocab_options,
              check=_check_vocab, run=_run_vocab, summary=vocab_summary,
              execution=("batch_size", "device", "cache_dir"), files=_vocab_files)
ASSIGN = Stage("assign", "labeled", upstream=("vocab",), reads_listings=True,
               outputs=(f"{LABELED_PARTS}/part-*.parquet",), options=assign_options, check=_check_assign,
               run=_run_assign, summary=assign_summary, execution=("batch_size", "device", "workers", "scheduler"))
