"""The ``vocab`` and ``assign`` stages: listings on disk in, artifact folders out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ..artifacts import Timer, fingerprint_artifact, fingerprint_files, write_manifest, write_parquet
from ..listings import ColumnRoles, Listings, list_listing_files, read_listings
from .assign import LabelAssigner
from .report import write_vocab_report
from .vocabulary import Vocabulary, VocabularyBuilder


def build_vocabulary(source: str | Path | Sequence[str | Path], roles: ColumnRoles, out: str | Path,
                     *, progress: bool = True, **params: Any) -> Vocabulary:
    """Read listings, fit a :class:`VocabularyBuilder` with ``params``, and write the vocab folder.

    The folder holds ``labels.parquet``, ``terms.parquet``, ``label_embeddings.npy``,
    ``rejected.parquet``, ``report.html`` and ``manifest.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    files = list_listing_files(source)
    with timer("read"):
        listings = read_listings(files, roles, progress=progress)
    builder = VocabularyBuilder(roles, progress=progress, **params).fit(listings)
    timer.seconds.update(builder.timer_.seconds)
    vocabulary = builder.vocabulary_
    with timer("write"):
        vocabulary.save(out)
        write_parquet(listings.rejected, out / "rejected.parquet")
        write_vocab_report(vocabulary, out / "report.html")
    config = {k: v for k, v in builder.get_params().items() if k not in ("roles", "progress", "overrides")}
    config["overrides"] = str(params["overrides"]) if isinstance(params.get("overrides"), (str, Path)) else params.get("overrides")
    write_manifest(
        out, "vocab",
        config={"builder": config, "vocabulary": vocabulary.config()},
        inputs=fingerprint_files(files) + _overrides_fingerprint(params.get("overrides")),
        counts={**listings.counts, **{k: v for k, v in vocabulary.stats.items() if k != "support_before"}},
        timings=timer.seconds,
        outputs={"labels": len(vocabulary.labels), "tiers": vocabulary.labels["tier"].value_counts().to_dict()},
    )
    return vocabulary


def assign_labels(source: str | Path | Sequence[str | Path], vocab: str | Path, out: str | Path,
                  *, roles: ColumnRoles | None = None, keep: Sequence[str] | None = None,
                  rows_per_part: int = 250_000, progress: bool = True, **params: Any) -> dict[str, Any]:
    """Label listings with the vocabulary in ``vocab``; write ``part-*.parquet`` and a manifest.

    ``keep`` names the listing columns passed through besides id and image (all by default).
    Returns the manifest's counts.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("part-*.parquet"):
        stale.unlink()
    timer = Timer()
    vocabulary = Vocabulary.load(vocab)
    roles = roles or vocabulary.roles
    files = list_listing_files(source)
    with timer("read"):
        listings = read_listings(files, roles, progress=progress)
    assigner = LabelAssigner(vocabulary, roles, **params)
    passthrough = _passthrough_columns(listings, roles, keep)
    counts = np.zeros(len(vocabulary.labels), np.int64)
    n_parts = max(1, -(-len(listings.frame) // rows_per_part))
    n_labels_per_row = []
    with timer("assign"):
        for part in tqdm(range(n_parts), desc="assign", unit="part", disable=not progress):
            frame = listings.frame.iloc[part * rows_per_part : (part + 1) * rows_per_part]
            labels = assigner.transform_arrow(frame)
            table = _output_table(frame, roles, labels, passthrough)
            pq.write_table(table, out / f"part-{part:05d}.parquet")
            flat = labels.column("labels").combine_chunks().flatten().to_numpy()
            counts += np.bincount(flat, minlength=len(counts))
            n_labels_per_row.append(labels.column("labels").combine_chunks().value_lengths().to_numpy(zero_copy_only=False))
    with timer("write"):
        write_parquet(listings.rejected, out / "rejected.parquet")
    per_row = np.concatenate(n_labels_per_row) if n_labels_per_row else np.zeros(0)
    coverage = _coverage(per_row, counts, vocabulary, assigner.n_fallback_)
    write_manifest(
        out, "assign",
        config={"vocab": str(Path(vocab).resolve()), "roles": roles.to_dict(),
                "keep": list(keep) if keep is not None else None, **params},
        inputs=fingerprint_files(files) + [fingerprint_artifact(vocab)],
        counts={**listings.counts, **coverage},
        timings=timer.seconds,
        outputs={"parts": n_parts},
    )
    return coverage


def labeled_parts(folder: str | Path) -> list[Path]:
    """The Parquet parts of an ``assign`` folder, in order."""
    parts = sorted(Path(folder).glob("part-*.parquet"))
    if not parts:
        raise FileNotFoundError(f"{folder} holds no part-*.parquet: is it a folder written by 'weaklabel assign'?")
    return parts


def read_labeled(folder: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """All weak labels of an ``assign`` folder as one DataFrame (the folder also holds JSON and rejections)."""
    return pd.read_parquet(labeled_parts(folder), columns=list(columns) if columns else None)


def _passthrough_columns(listings: Listings, roles: ColumnRoles, keep: Sequence[str] | None) -> list[str]:
    leading = {roles.id, roles.image}
    columns = [c for c in listings.frame.columns if c not in leading]
    if keep is None:
        return columns
    unknown = [c for c in keep if c not in listings.frame.columns]
    if unknown:
        raise ValueError(f"--keep names column(s) {unknown} that the listings lack; columns are {list(listings.frame.columns)}")
    return [c for c in keep if c not in leading]


def _output_table(frame, roles: ColumnRoles, labels: pa.Table, passthrough: list[str]) -> pa.Table:
    image = frame[roles.image] if roles.image else [""] * len(frame)
    columns = {"id": pa.array(frame[roles.id].tolist(), pa.string()), "image": pa.array(list(image), pa.string())}
    columns.update({name: labels.column(name) for name in labels.column_names})
    table = pa.table(columns)
    extra = pa.Table.from_pandas(frame[passthrough], preserve_index=False)
    for name in extra.column_names:
        table = table.append_column(name if name not in columns else f"listing_{name}", extra.column(name))
    return table


def _coverage(per_row: np.ndarray, label_counts: np.ndarray, vocabulary: Vocabulary, n_fallback: int) -> dict[str, Any]:
    n = len(per_row)
    tiers = vocabulary.labels["tier"].to_numpy()
    return {
        "listings_labelled": int((per_row > 0).sum()),
        "listings_unlabelled": int((per_row == 0).sum()),
        "coverage": float((per_row > 0).mean()) if n else 0.0,
        "labels_per_listing_mean": float(per_row.mean()) if n else 0.0,
        "listings_labelled_by_fallback": int(n_fallback),
        "label_assignments_by_tier": {t: int(label_counts[tiers == t].sum()) for t in ("head", "torso", "tail")},
        "labels_never_assigned": int((label_counts == 0).sum()),
    }


def _overrides_fingerprint(overrides) -> list[dict[str, Any]]:
    return fingerprint_files([overrides]) if isinstance(overrides, (str, Path)) else []
