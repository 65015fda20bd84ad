"""Keeping a query's near-copies out of its gallery.

The shards stage groups near-duplicate images (re-encoded, resized, mirrored, recoloured copies of one
photo) and writes each group into one split, recorded in ``duplicates.parquet`` (``kind`` near,
``written``). Within a split, a query whose copy sits in the gallery is found by any encoder: retrieval
would flatter every model. So each query's group-mates are left out of its search, as the query
itself is, and out of its count of relevant items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..search import Neighbours, exact_search

DUPLICATES = "duplicates.parquet"


def near_duplicate_groups(shards: str | Path) -> dict[str, str]:
    """Each written near-copy's id → the id of its group's first listing (empty for shards written
    without near-duplicate groups, or before they existed)."""
    path = Path(shards) / DUPLICATES
    if not path.is_file() or "group" not in pq.ParquetFile(path).schema_arrow.names:
        return {}
    table = pq.read_table(path, columns=["id", "group", "kind", "written"]).to_pandas()
    near = table[table["kind"].eq("near") & table["written"]]
    return dict(zip(near["id"].astype(str), near["group"].astype(str)))


def group_pairs(query_ids: pd.Series, gallery_ids: pd.Series, groups: dict[str, str]) -> pd.DataFrame:
    """(query row, gallery row) pairs of two different listings in one near-duplicate group, sorted by
    query row. A listing is never its own near-copy, so where the gallery is the query split each
    query's own row stays aside (the search excludes it already)."""
    if not groups:
        return pd.DataFrame({"query": np.zeros(0, np.int64), "item": np.zeros(0, np.int64)})
    query_ids, gallery_ids = query_ids.astype(str).to_numpy(), gallery_ids.astype(str).to_numpy()

    def group_of(ids: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"row": np.arange(len(ids)), "group": [groups.get(i, i) for i in ids]})

    pairs = group_of(query_ids).merge(group_of(gallery_ids), on="group", suffixes=("_query", "_item"))
    query, item = pairs["row_query"].to_numpy(), pairs["row_item"].to_numpy()
    other = query_ids[query] != gallery_ids[item]
    pairs = pd.DataFrame({"query": query[other], "item": item[other]})
    return pairs.sort_values(["query", "item"], ignore_index=True).astype(np.int64)


def search_without_copies(queries: np.ndarray, gallery: np.ndarray, k: int, exclude: np.ndarray | None,
                          copies: pd.DataFrame, device: Any) -> Neighbours:
    """Each query's ``k`` nearest gallery rows (``exact_search``), its near-copies (``copies``, from
    :func:`group_pairs`) left out. Only the queries that have copies search deeper, by as many rows
    as the most copies any of them has, so a large group costs its own queries only."""
    neighbours = exact_search(queries, gallery, k, exclude=exclude, device=device)
    if not len(copies):
        return neighbours
    rows = np.unique(copies["query"].to_numpy())
    deeper = exact_search(queries[rows], gallery, k + int(copies["query"].value_counts().max()),
                          exclude=None if exclude is None else np.asarray(exclude)[rows], device=device)
    deeper = _drop_pairs(deeper, copies.assign(query=np.searchsorted(rows, copies["query"].to_numpy())), k)
    indices, scores = neighbours.indices.copy(), neighbours.scores.copy()
    indices[rows], scores[rows] = deeper.indices, deeper.scores
    return Neighbours(indices, scores)


def _drop_pairs(neighbours: Neighbours, pairs: pd.DataFrame, k: int) -> Neighbours:
    """``neighbours`` without the pairs' gallery items, each query's list cut to ``k``."""
    indices, scores = neighbours.indices.copy(), neighbours.scores.copy()
    for query, items in pairs.groupby("query")["item"]:
        keep = ~np.isin(indices[query], items.to_numpy())
        kept = int(keep.sum())
        indices[query, :kept], scores[query, :kept] = indices[query, keep], scores[query, keep]
        indices[query, kept:], scores[query, kept:] = -1, -np.inf
    return Neighbours(indices[:, :k], scores[:, :k])
