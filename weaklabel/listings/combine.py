"""Combining the listings of several files, rejecting ids an earlier file already accepted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .rejects import render_raw, sum_counts
from .results import Listings
from .roles import ListingsError
from .validate import first_occurrence


def concat_listings(parts: Sequence[Listings]) -> Listings:
    """Concatenate listings in order, rejecting ids already accepted by an earlier part.

    The first accepted occurrence of an id wins. Parts must come from
    :func:`read_listing_file` (or this function) with equal roles. For a duplicate
    found here, ``raw`` is the cleaned record as JSON.
    """
    if not parts:
        raise ListingsError("concat_listings() needs at least one Listings")
    roles = parts[0].roles
    if roles is None or any(p.origin is None for p in parts):
        raise ListingsError(
            "concat_listings() needs Listings from read_listing_file() (with roles and origin)"
        )
    if any(p.roles != roles for p in parts):
        raise ListingsError("cannot concatenate listings read with different column roles")
    if len(parts) == 1:
        return parts[0]
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    origin = pd.concat([p.origin for p in parts], ignore_index=True)
    ids = frame[roles.id]
    dup = ids.duplicated().to_numpy()
    found = _cross_duplicates(frame, origin, ids, dup)
    files = [f for p in parts for f in p.files]
    counts = sum_counts([p.counts for p in parts])
    counts["rows_out"] -= int(dup.sum())
    counts["rejected"]["duplicate_id"] += int(dup.sum())
    return Listings(
        frame[~dup].reset_index(drop=True),
        _sorted_rejects([*(p.rejected for p in parts), found], files),
        counts,
        files,
        roles,
        origin[~dup].reset_index(drop=True),
    )


def _cross_duplicates(
    frame: pd.DataFrame, origin: pd.DataFrame, ids: pd.Series, dup: np.ndarray
) -> pd.DataFrame:
    """Rejected rows for ids that an earlier part already accepted."""
    firsts = origin.loc[first_occurrence(ids, ~dup, dup)] if dup.any() else origin.iloc[:0]
    details = [
        f"id {i!r} first seen at row {r} of {s}"
        for i, r, s in zip(ids[dup], firsts["row"], firsts["source"])
    ]
    return pd.DataFrame({
        "source": origin["source"].to_numpy()[dup].astype(object),
        "row": origin["row"].to_numpy()[dup].astype(np.int64),
        "id": ids.to_numpy()[dup].astype(object),
        "reason": np.array(["duplicate_id"] * int(dup.sum()), dtype=object),
        "detail": np.array(details, dtype=object),
        "raw": np.array(render_raw(frame[dup], None), dtype=object),
    })


def _sorted_rejects(frames: list[pd.DataFrame], files: list[Path]) -> pd.DataFrame:
    """Rejected rows in file order, then record order."""
    rejected = pd.concat(frames, ignore_index=True)
    order = {str(f): i for i, f in enumerate(files)}
    rank = rejected["source"].map(order)
    rejected = rejected.assign(_rank=rank).sort_values(["_rank", "row"], kind="stable")
    return rejected.drop(columns="_rank").reset_index(drop=True)
