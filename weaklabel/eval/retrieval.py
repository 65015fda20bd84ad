"""Retrieval metrics over exact nearest neighbours, and the relevance definitions they use.

A query's gallery item is relevant when they share at least one weak label (``LabelRelevance``)
or carry the same value in a column (``ValueRelevance``). Metrics per query, for the ranked list
of the query's nearest neighbours (``retrieved`` = the ``K`` best, ``K`` = ``MAX_K`` or the gallery size):

- ``recall@k`` (hit rate): 1 when a relevant item is among the first ``k``, else 0.
- ``precision@10``: relevant items among the first 10, divided by 10.
- ``map@k``: AP@k = sum over relevant items at rank i <= k of precision@i, divided by
  min(k, relevant items in the gallery).
- ``mrr``: 1 / rank of the first relevant item among the retrieved, 0 when none is retrieved.

Averages are over queries with at least one relevant item in the gallery; the others are counted
(``queries_without_relevant``), never averaged as zeros.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ..metrics import multi_hot
from ..tiers import TIERS

MAX_K = 100
RECALL_KS = (1, 5, 10)
PRECISION_K = 10
MAP_KS = (10, 100)
METRICS = (*(f"recall@{k}" for k in RECALL_KS), f"precision@{PRECISION_K}", *(f"map@{k}" for k in MAP_KS), "mrr")
PAIR_CHUNK = 1 << 20  # query-neighbour pairs judged at once


class Relevance(Protocol):
    """Which gallery items are relevant to which query."""

    def pairs(self, queries: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean array: is gallery row ``items[...]`` relevant to query ``queries[...]`` (-1 items: False)."""

    def counts(self, exclude: np.ndarray | None = None) -> np.ndarray:
        """Relevant gallery items per query, not counting the row ``exclude[q]``."""


class LabelRelevance:
    """Relevant: the query and the item share at least one label id."""

    def __init__(self, query_labels: Sequence[Sequence[int]], gallery_labels: Sequence[Sequence[int]],
                 num_labels: int) -> None:
        self.queries = multi_hot(query_labels, num_labels)
        self.gallery = multi_hot(gallery_labels, num_labels)
        self._gallery_t = self.gallery.T.tocsr()

    def pairs(self, queries: np.ndarray, items: np.ndarray) -> np.ndarray:
        queries, items = np.broadcast_arrays(np.asarray(queries), np.asarray(items))
        flat_q, flat_i = queries.ravel(), items.ravel()
        out = np.zeros(flat_q.shape, dtype=bool)
        for start in range(0, len(flat_q), PAIR_CHUNK):
            q, i = flat_q[start:start + PAIR_CHUNK], flat_i[start:start + PAIR_CHUNK]
            valid = np.flatnonzero(i >= 0)
            shared = self.queries[q[valid]].multiply(self.gallery[i[valid]])
            out[start + valid] = shared.getnnz(axis=1) > 0
        return out.reshape(queries.shape)

    def counts(self, exclude: np.ndarray | None = None, block: int = 1024) -> np.ndarray:
        n = self.queries.shape[0]
        counts = np.zeros(n, dtype=np.int64)
        for start in range(0, n, block):
            counts[start:start + block] = (self.queries[start:start + block] @ self._gallery_t).getnnz(axis=1)
        return counts - _self_relevant(self, exclude, n)


class ValueRelevance:
    """Relevant: the query and the item carry the same value (a missing value matches nothing)."""

    def __init__(self, query_values: Sequence[Any], gallery_values: Sequence[Any]) -> None:
        self.query_codes, self.gallery_codes, self.values = encode_values(query_values, gallery_values)

    def pairs(self, queries: np.ndarray, items: np.ndarray) -> np.ndarray:
        queries, items = np.broadcast_arrays(np.asarray(queries), np.asarray(items))
        q = self.query_codes[queries]
        g = np.where(items >= 0, self.gallery_codes[np.maximum(items, 0)], -2)
        return (q >= 0) & (q == g)

    def counts(self, exclude: np.ndarray | None = None) -> np.ndarray:
        known = self.gallery_codes[self.gallery_codes >= 0]
        per_value = np.bincount(known, minlength=len(self.values))
        counts = np.where(self.query_codes >= 0, per_value[np.maximum(self.query_codes, 0)], 0)
        return counts - _self_relevant(self, exclude, len(self.query_codes))


def _self_relevant(relevance: Relevance, exclude: np.ndarray | None, n: int) -> np.ndarray:
    if exclude is None:
        return np.zeros(n, dtype=np.int64)
    return relevance.pairs(np.arange(n), np.asarray(exclude, dtype=np.int64)).astype(np.int64)


def encode_values(*columns: Sequence[Any]) -> tuple[np.ndarray, ...]:
    """Shared integer codes for the values of several columns (-1: missing) and the sorted values."""
    as_text = [[missing_to_none(v) for v in column] for column in columns]
    values = sorted({v for column in as_text for v in column if v is not None})
    index = {v: i for i, v in enumerate(values)}
    codes = tuple(np.array([index[v] if v is not None else -1 for v in column], dtype=np.int64)
                  for column in as_text)
    return (*codes, values)


def missing_to_none(value: Any) -> str | None:
    """A column value as text; None for null, NaN and the empty string."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
        return None
    return str(value)


def judge(relevance: Relevance, indices: np.ndarray) -> np.ndarray:
    """``relevant[q, r]``: whether the item at rank ``r`` of query ``q`` is relevant."""
    return relevance.pairs(np.arange(len(indices))[:, None], indices)


def per_query(relevant: np.ndarray, n_relevant: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric per query from the judged ranked lists ``relevant [queries, K]``."""
    relevant = np.asarray(relevant, dtype=bool)
    hits = np.cumsum(relevant, axis=1)
    ranks = np.arange(1, relevant.shape[1] + 1)
    precision_at = hits / ranks
    out: dict[str, np.ndarray] = {}
    for k in RECALL_KS:
        out[f"recall@{k}"] = (hits[:, :k][:, -1] > 0).astype(float) if relevant.shape[1] else np.zeros(len(hits))
    out[f"precision@{PRECISION_K}"] = relevant[:, :PRECISION_K].sum(axis=1) / PRECISION_K
    for k in MAP_KS:
        gained = (precision_at[:, :k] * relevant[:, :k]).sum(axis=1)
        out[f"map@{k}"] = gained / np.maximum(np.minimum(k, n_relevant), 1)
    first = np.argmax(relevant, axis=1)
    found = relevant.any(axis=1)
    out["mrr"] = np.where(found, 1.0 / (first + 1), 0.0)
    return out


def summarize(values: Mapping[str, np.ndarray], n_relevant: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """Averages over the queries in ``mask`` that have a relevant item; the others counted."""
    mask = np.ones(len(n_relevant), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    used = mask & (n_relevant > 0)
    summary: dict[str, Any] = {name: (float(values[name][used].mean()) if used.any() else None) for name in METRICS}
    summary["queries"] = int(used.sum())
    summary["queries_without_relevant"] = int((mask & (n_relevant == 0)).sum())
    return summary


def retrieval_report(relevance: Relevance, indices: np.ndarray, n_relevant: np.ndarray,
                     query_tiers: np.ndarray) -> dict[str, Any]:
    """``{"overall": summary, "tiers": {tier: summary}}`` for one relevance definition
    (``n_relevant``: ``relevance.counts(exclude)``)."""
    return report_from_values(per_query(judge(relevance, indices), n_relevant), n_relevant, query_tiers)


def report_from_values(values: Mapping[str, np.ndarray], n_relevant: np.ndarray, query_tiers: np.ndarray) -> dict:
    """:func:`retrieval_report` from metrics already computed per query."""
    tiers = np.asarray(query_tiers, dtype=object)
    return {"overall": summarize(values, n_relevant),
            "tiers": {tier: summarize(values, n_relevant, tiers == tier) for tier in TIERS}}
