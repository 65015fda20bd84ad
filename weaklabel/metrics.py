"""Ranking metrics shared by the training loop (validation mAP) and the evaluator, and the
multi-hot label matrix they and facet discovery read.

``average_precision`` equals sklearn's ``average_precision_score`` per column, ties included,
computed in bounded memory (column chunks; counts against the positives' scores for micro AP).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import sparse

CHUNK_ELEMENTS = 1 << 22


def average_precision(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AP of each column (NaN where a column has no positive); equals sklearn's, ties included."""
    targets, scores = np.asarray(targets, dtype=bool), np.asarray(scores)
    if targets.ndim == 1:
        return average_precision(targets[:, None], scores[:, None])
    n, columns = targets.shape
    out = np.full(columns, np.nan)
    chunk = max(1, CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, columns, chunk):
        part = slice(start, start + chunk)
        hits, ranked = targets[:, part].T.copy(), scores[:, part].T.copy()  # one row per column
        positives = [row[hit] for row, hit in zip(ranked, hits, strict=True)]
        ranked.sort(axis=1)
        for j, (row, positive_scores) in enumerate(zip(ranked, positives, strict=True)):
            out[start + j] = _mean_precision(positive_scores, lambda v, row=row: n - np.searchsorted(row, v, "left"))
    return out


def micro_average_precision(targets: np.ndarray, scores: np.ndarray) -> float:
    """The AP of all (sample, label) pairs pooled, as sklearn computes it, without sorting them all."""
    targets, scores = np.asarray(targets, dtype=bool), np.asarray(scores)
    return _mean_precision(scores[targets], lambda values: count_at_least(values, scores))


def _mean_precision(positive_scores: np.ndarray, at_least: Callable[[np.ndarray], np.ndarray]) -> float:
    """AP = the mean over the positives of TP / N among the entries scoring at least as high (the
    precision at the end of a positive's group of tied scores); ``at_least(v)`` counts all entries >= v."""
    if not len(positive_scores):
        return float("nan")
    values = np.sort(positive_scores)
    true_positives = len(values) - np.searchsorted(values, values, side="left")
    return float(np.mean(true_positives / at_least(values)))


def count_at_least(grid: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """For each value of ``grid``: how many entries of ``scores`` are >= it, compared in the scores'
    precision (as ``scores >= value`` does). Sorted row chunks keep memory bounded."""
    scores = np.asarray(scores)
    grid = np.asarray(grid).astype(scores.dtype if scores.dtype.kind == "f" else np.float64)
    rows = max(1, CHUNK_ELEMENTS // max(int(np.prod(scores.shape[1:])), 1))
    counts = np.zeros(len(grid), dtype=np.int64)
    for start in range(0, len(scores), rows):
        part = np.sort(scores[start:start + rows], axis=None)
        counts += part.size - np.searchsorted(part, grid, side="left")
    return counts


def multi_hot(labels: Sequence[Sequence[int]], num_labels: int) -> sparse.csr_matrix:
    """Rows of label ids as a sparse boolean matrix ``[rows, num_labels]``."""
    lengths = np.fromiter((len(row) for row in labels), dtype=np.int64, count=len(labels))
    flat = np.fromiter((int(x) for row in labels for x in row), dtype=np.int64, count=int(lengths.sum()))
    if len(flat) and (flat.min() < 0 or flat.max() >= num_labels):
        raise ValueError(f"label ids must be in 0..{num_labels - 1}, found {flat.min()}..{flat.max()}")
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    data = np.ones(len(flat), dtype=np.int32)
    matrix = sparse.csr_matrix((data, flat, indptr), shape=(len(labels), num_labels))
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix
