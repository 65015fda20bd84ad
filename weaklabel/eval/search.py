"""Exact top-k inner-product search by blocked matrix products (torch, CPU or CUDA; numpy in and out).

Neighbours are ranked by score, descending, then by gallery index, ascending: the order is fully
determined even when scores tie (duplicate images give duplicate embeddings), so the same inputs
always give the same neighbours and the same metrics.

The gallery is cut into blocks; each block's scores against a block of queries go into one
preallocated buffer (reusing it spares the page faults a fresh allocation costs), ``topk`` keeps
each query's best ``k`` of the block, and those merge into the running best ``k``. Memory stays
at ``block_bytes`` plus the queries, one gallery block and the running results.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_BLOCK_BYTES = 256 << 20
QUERY_BLOCK = 512


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
    gallery_block = max(1, min(n_gallery, block_bytes // (4 * query_block)))
    q = _tensor(queries).to(device)
    skip = None if exclude is None else torch.as_tensor(np.asarray(exclude, dtype=np.int64), device=device)
    best_scores = torch.full((n_queries, k), -torch.inf, device=device)
    best_indices = torch.full((n_queries, k), -1, dtype=torch.int64, device=device)
    buffer = torch.empty(query_block * gallery_block, device=device)
    for start in range(0, n_gallery, gallery_block):
        block = _tensor(gallery[start:start + gallery_block]).to(device)
        for q_start in range(0, n_queries, query_block):
            rows = slice(q_start, q_start + query_block)
            scores = buffer[:min(query_block, n_queries - q_start) * len(block)].view(-1, len(block))
            torch.mm(q[rows], block.T, out=scores)
            if skip is not None:
                _mask_excluded(scores, skip[rows], start)
            top_scores, top_indices = _block_topk(scores, k, best_scores[rows, -1])
            merged = _merge(best_scores[rows], best_indices[rows], top_scores, top_indices + start, k)
            best_scores[rows], best_indices[rows] = merged
    best_indices[torch.isneginf(best_scores)] = -1
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


def _block_topk(scores: torch.Tensor, k: int, threshold: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's best ``k`` (fewer in a small block), the lowest indices winning ties.

    ``topk`` picks arbitrarily among values tied at its cut-off; rows where that could matter (more
    than ``k`` values at or above the cut-off, which is itself at or above the running ``threshold``)
    are redone with a stable sort.
    """
    k = min(k, scores.shape[1])
    values, indices = torch.topk(scores, k, dim=1, sorted=False)
    cutoff = values.min(dim=1).values
    candidates = torch.nonzero((cutoff >= threshold) & torch.isfinite(cutoff)).squeeze(1)
    if len(candidates):
        crowded = (scores[candidates] >= cutoff[candidates, None]).sum(dim=1) > k
        redo = candidates[crowded]
        if len(redo):
            sorted_values, order = torch.sort(scores[redo], dim=1, descending=True, stable=True)
            values[redo], indices[redo] = sorted_values[:, :k], order[:, :k]
    return values, indices


def _merge(scores_a: torch.Tensor, indices_a: torch.Tensor, scores_b: torch.Tensor, indices_b: torch.Tensor,
           k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The best ``k`` of two candidate sets per row, by score descending then index ascending."""
    scores = torch.cat([scores_a, scores_b], dim=1)
    indices = torch.cat([indices_a, indices_b], dim=1)
    # empty slots (index -1) must sort after real candidates that share their -inf score
    by_index = torch.argsort(torch.where(indices < 0, torch.iinfo(torch.int64).max, indices), dim=1, stable=True)
    scores, indices = scores.gather(1, by_index), indices.gather(1, by_index)
    by_score = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k]
    return scores.gather(1, by_score), indices.gather(1, by_score)
