"""Exact top-k inner-product search by blocked matrix products (torch, CPU or CUDA; numpy in and out).

The one neighbour search of the toolkit: term clustering and retrieval evaluation both use it.

Neighbours are ranked by score, descending, then by gallery index, ascending: the order is fully
determined even when scores tie (duplicate images give duplicate embeddings), so the same inputs
always give the same neighbours and the same metrics.

The gallery is cut into blocks; each block's scores against a block of queries go into one
preallocated buffer (reusing it spares the page faults a fresh allocation costs). Each query's
best ``k`` of the block are found among the ``k`` chunks of ``CHUNK`` columns with the largest
maxima (selecting over all columns costs about half as much as the matrix product; this costs a
fifth), then merged into the running best ``k``. Memory stays at ``block_bytes`` plus the queries,
one gallery block and the running results.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_BLOCK_BYTES = 256 << 20
QUERY_BLOCK = 512
CHUNK = 32  # columns whose maximum stands for them in the first selection step
EMPTY = torch.iinfo(torch.int64).max  # an empty slot's index while searching: after every real index


@dataclass(frozen=True)
class Neighbours:
    """``indices[q, r]``: the gallery row at rank ``r`` of query ``q`` (-1 past the gallery's end);
    ``scores[q, r]``: its inner product (-inf past the end)."""

    indices: np.ndarray  # int64 [queries, k]
    scores: np.ndarray  # float32 [queries, k]


def exact_search(queries: np.ndarray, gallery: np.ndarray, k: int, *, exclude: np.ndarray | None = None,
                 device: str | torch.device = "cpu", block_bytes: int = DEFAULT_BLOCK_BYTES,
                 query_block: int = QUERY_BLOCK) -> Neighbours:
    """The ``k`` gallery rows with the largest inner product with each query.

    ``exclude[q]`` is a gallery row never returned for query ``q`` (-1: none): the query itself
    when the gallery is the query set. Vectors are used as they are; normalize them first for
    cosine similarity. Fewer than ``k`` eligible rows leave -1 indices at the end.
    """
    queries, gallery = _matrix(queries, "queries"), _matrix(gallery, "gallery")
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(f"queries have dimension {queries.shape[1]}, the gallery {gallery.shape[1]}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    n_queries, n_gallery = len(queries), len(gallery)
    if exclude is not None and np.shape(exclude) != (n_queries,):
        raise ValueError(f"exclude must hold one gallery row per query ({n_queries}), got shape {np.shape(exclude)}")
    device = torch.device(device)
    query_block = max(1, min(query_block, n_queries))
    gallery_block = max(CHUNK, block_bytes // (4 * query_block) // CHUNK * CHUNK)
    q = _tensor(queries).to(device)
    skip = None if exclude is None else torch.as_tensor(np.asarray(exclude, dtype=np.int64), device=device)
    best_scores = torch.full((n_queries, k), -torch.inf, device=device)
    best_indices = torch.full((n_queries, k), EMPTY, dtype=torch.int64, device=device)
    buffer = torch.empty(query_block * gallery_block, device=device)
    for start in range(0, n_gallery, gallery_block):
        block = _tensor(gallery[start:start + gallery_block]).to(device)
        for q_start in range(0, n_queries, query_block):
            rows = slice(q_start, q_start + query_block)
            scores = buffer[:min(query_block, n_queries - q_start) * len(block)].view(-1, len(block))
            torch.mm(q[rows], block.T, out=scores)
            if skip is not None:
                _mask_excluded(scores, skip[rows], start)
            top_scores, top_positions = _block_top(scores, k)
            best_scores[rows], best_indices[rows] = _top(torch.cat([best_scores[rows], top_scores], dim=1), k,
                                                         torch.cat([best_indices[rows], top_positions + start], dim=1))
    best_scores, best_indices = _ranked(best_scores, best_indices)
    best_indices[torch.isneginf(best_scores) | (best_indices == EMPTY)] = -1
    return Neighbours(best_indices.cpu().numpy(), best_scores.cpu().numpy())


def _matrix(values: np.ndarray, name: str) -> np.ndarray:
    values = np.ascontiguousarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {values.shape}")
    return values


def _tensor(values: np.ndarray) -> torch.Tensor:
    """A tensor sharing the array's memory; arrays read from Parquet are read-only, and are only read here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(values)


def _mask_excluded(scores: torch.Tensor, exclude: torch.Tensor, start: int) -> None:
    local = exclude - start
    hit = (local >= 0) & (local < scores.shape[1])
    rows = torch.nonzero(hit).squeeze(1)
    scores[rows, local[rows]] = -torch.inf


def _block_top(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``_top`` of a block of scores, by way of its chunks' maxima when the block is wide.

    The best ``k`` values of a row lie in the ``k`` chunks with the largest maxima (any other chunk
    has ``k`` maxima above all its values), unless maxima tie at that cut-off; so only those
    chunks are ranked. Rows with tied maxima at the cut-off are ranked whole.
    """
    width = scores.shape[1]
    body = width - width % CHUNK
    if body < 4 * CHUNK * (k + 1):
        return _top(scores, k)
    chunks = scores[:, :body].unflatten(1, (body // CHUNK, CHUNK))
    maxima, best_chunks = torch.topk(chunks.amax(dim=2), k + 1, dim=1, sorted=True)
    picked = best_chunks[:, :k, None]
    candidates = chunks.gather(1, picked.expand(-1, -1, CHUNK)).flatten(1)
    positions = (picked * CHUNK + torch.arange(CHUNK, device=scores.device)).flatten(1)
    values, chosen = _top(candidates, k, positions)
    tied = torch.nonzero(maxima[:, k - 1] == maxima[:, k]).squeeze(1)
    if len(tied):
        values[tied], chosen[tied] = _top(scores[tied, :body], k)
    if body < width:  # the last columns, fewer than a chunk
        rest_values, rest_chosen = _top(scores[:, body:], k)
        values, chosen = _top(torch.cat([values, rest_values], dim=1), k,
                              torch.cat([chosen, rest_chosen + body], dim=1))
    return values, chosen


def _top(scores: torch.Tensor, k: int, indices: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's best ``k`` (fewer when the row is shorter) by score descending, then index
    ascending, as a set: equal scores come in no particular order. ``indices`` name the columns
    (default: their positions).

    ``topk`` picks arbitrarily among values tied at its cut-off; taking ``k + 1`` values shows the
    rows where that happens (the last two are equal), and those are ranked exactly instead.
    """
    take = min(k + 1, scores.shape[1])
    values, chosen = torch.topk(scores, take, dim=1, sorted=True)
    if indices is not None:
        chosen = indices.gather(1, chosen)
    if take <= k:
        return values, chosen
    tied = torch.nonzero((values[:, k - 1] == values[:, k]) & torch.isfinite(values[:, k])).squeeze(1)
    values, chosen = values[:, :k], chosen[:, :k]
    if len(tied):
        exact_values, exact_chosen = _ranked(scores[tied], None if indices is None else indices[tied])
        values[tied], chosen[tied] = exact_values[:, :k], exact_chosen[:, :k]
    return values, chosen


def _ranked(scores: torch.Tensor, indices: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ordered by score descending, then index ascending (default: column positions)."""
    if indices is None:
        return torch.sort(scores, dim=1, descending=True, stable=True)
    by_index = torch.argsort(indices, dim=1, stable=True)
    scores, indices = scores.gather(1, by_index), indices.gather(1, by_index)
    by_score = torch.argsort(scores, dim=1, descending=True, stable=True)
    return scores.gather(1, by_score), indices.gather(1, by_score)
