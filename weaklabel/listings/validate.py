"""Validating one file's records: role columns present, fields cleaned, bad rows rejected."""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pandas as pd

from .cleaning import as_str, clean_fields
from .rejects import file_counts, rejected_frame, render_raw
from .results import Decoded, Listings
from .roles import ColumnRoles, ListingsError


def validate(decoded: Decoded, roles: ColumnRoles, path: Path) -> Listings:
    """Clean the role columns and reject missing ids, empty text and duplicate ids."""
    source = str(path)
    ids = as_str(decoded.frame[roles.id]).str.strip()
    cleaned, content, cut = clean_fields(decoded.frame, roles)
    missing, empty, dup = _reject_masks(ids, content)
    keep = ~(missing | empty | dup)
    firsts = first_occurrence(ids, keep.to_numpy(), dup.to_numpy()) if dup.any() else []
    dup_details = [f"id {i!r} first seen at row {r} of {source}" for i, r in zip(ids[dup], firsts)]
    rejected = [
        *decoded.rejected,
        *_rejects(decoded, ids, missing, "missing_id", f"id column {roles.id!r} is empty"),
        *_rejects(decoded, ids, empty, "empty_text", "every text/tags/category field is empty"),
        *_rejects(decoded, ids, dup, "duplicate_id", dup_details),
    ]
    out = _accepted(decoded.frame, keep, ids, cleaned, roles)
    rows = out.index.to_numpy(dtype=np.int64)
    origin = pd.DataFrame({"source": np.full(len(out), source, dtype=object), "row": rows})
    counts = file_counts(decoded.rows_in, len(out), [r[2] for r in rejected], int(cut[keep].sum()))
    return Listings(
        out.reset_index(drop=True), rejected_frame(source, rejected), counts, [path], roles, origin
    )


def check_columns(frame: pd.DataFrame, roles: ColumnRoles, path: Path) -> None:
    """Raise a ListingsError naming each missing role column and a close match."""
    present = [str(c) for c in frame.columns]
    kinds = {f.column: f"{f.role} field" for f in roles.fields}
    kinds.update({roles.id: "id column", **({roles.image: "image column"} if roles.image else {})})
    problems = []
    for column in roles.columns:
        if column not in present:
            problems.append(f"{kinds[column]} {column!r} not found{_missing_column_hint(column, present, roles)}")
        elif present.count(column) > 1:
            problems.append(f"{kinds[column]} {column!r} appears more than once")
    if problems:
        shown = ", ".join(present[:50]) or "(none)"
        if len(present) > 50:
            shown += f", ... ({len(present) - 50} more)"
        raise ListingsError(f"{path}: {'; '.join(problems)}. Columns in the file: {shown}")


def _missing_column_hint(column: str, present: list[str], roles: ColumnRoles) -> str:
    by_lower = {c.lower(): c for c in reversed(present)}
    close = difflib.get_close_matches(column.lower(), list(by_lower), n=1, cutoff=0.5)
    if close:
        return f" (did you mean {by_lower[close[0]]!r}?)"
    if column == roles.image:
        return " (for listings without images: --image '', image = \"\" under [listings] in a pipeline file)"
    return ""


def _reject_masks(ids: pd.Series, content: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Rows with a missing id, with no content, and repeating an id accepted earlier."""
    missing = ids == ""
    empty = ~missing & ~content
    candidates = ~missing & ~empty
    dup = pd.Series(False, index=ids.index)
    dup[candidates] = ids[candidates].duplicated()
    return missing, empty, dup


def first_occurrence(ids: pd.Series, first: np.ndarray, dup: np.ndarray) -> np.ndarray:
    """For each duplicate id (``dup`` mask), the index label of its kept occurrence (``first``)."""
    values = ids.to_numpy()
    lookup = pd.Series(ids.index[first], index=values[first])
    return lookup.loc[values[dup]].to_numpy()


def _accepted(
    frame: pd.DataFrame,
    keep: pd.Series,
    ids: pd.Series,
    cleaned: dict[str, pd.Series],
    roles: ColumnRoles,
) -> pd.DataFrame:
    """The kept rows, with cleaned role columns, still indexed by record number."""
    out = frame.loc[keep.to_numpy()].copy(deep=False)
    out[roles.id] = ids[keep]
    for column, values in cleaned.items():
        out[column] = values[keep]
    if roles.image:
        out[roles.image] = as_str(out[roles.image]).str.strip()
    return out


def _rejects(
    decoded: Decoded, ids: pd.Series, mask: pd.Series, reason: str, details: str | list[str]
) -> list[tuple[int, str | None, str, str, str]]:
    """Rejection records for the rows of ``mask``, with their raw text."""
    rows = decoded.frame.index[mask.to_numpy()]
    if len(rows) == 0:
        return []
    raws = render_raw(decoded.frame.loc[rows], decoded.delimiter)
    rids = [None] * len(rows) if reason == "missing_id" else ids[mask].tolist()
    details = [details] * len(rows) if isinstance(details, str) else details
    return list(zip(rows.tolist(), rids, [reason] * len(rows), details, raws))
