"""Exact nearest neighbours by inner product, in blocks of queries.

One search serves every stage that needs neighbours (term clustering, retrieval evaluation).
For L2-normalized vectors the inner product is the cosine similarity. Each block of queries is
scored against the whole base with one matrix product and its best ``k`` are kept with
``torch.topk``, so memory stays at ``block x len(base)`` scores; ``torch.topk`` is some 15x
faster than ``numpy.argpartition`` at this, which dominated the clustering of 200,000 terms.
"""

from __future__ import annotations

import numpy as np
import torch


def top_k(queries: np.ndarray, base: np.ndarray, k: int, *, block: int = 1024,
          device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Indices (int64) and scores (float32) of each query's ``k`` best base rows, best first.

    Equal scores are ordered by base index. ``k`` is capped at ``len(base)``.
    """
    k = min(k, len(base))
    index = np.empty((len(queries), k), np.int64)
    score = np.empty((len(queries), k), np.float32)
    if k == 0 or len(queries) == 0:
        return index, score
    base_t = torch.as_tensor(np.ascontiguousarray(base, np.float32), device=device)
    for start in range(0, len(queries), block):
        chunk = torch.as_tensor(np.ascontiguousarray(queries[start:start + block], np.float32), device=device)
        values, positions = torch.topk(chunk @ base_t.T, k, dim=1)
        values, positions = values.cpu().numpy(), positions.cpu().numpy()
        order = np.lexsort((positions, -values), axis=1)
        index[start:start + block] = np.take_along_axis(positions, order, axis=1)
        score[start:start + block] = np.take_along_axis(values, order, axis=1)
    return index, score
