"""Frozen-embedding probes: how well a carried column can be read off the embeddings.

- kNN: each query's ``KNN_K`` nearest gallery items (the retrieval search's, self excluded) vote
  for their value with their similarity as weight; the value with the largest sum wins (the
  smallest value code on ties). Neighbours without a value do not vote; a query with no voter
  counts as wrong.
- Linear: standardized embeddings → scikit-learn ``LogisticRegression`` (lbfgs), trained on the
  gallery split when there is one, else 5-fold cross-validated predictions over the split
  (folds shuffled with seed 0).

Accuracies are over the queries that carry a value.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

KNN_K = 20
FOLDS = 5
MAX_ITER = 500


def knn_predict(indices: np.ndarray, similarities: np.ndarray, gallery_codes: np.ndarray, k: int = KNN_K) -> np.ndarray:
    """Similarity-weighted vote of the first ``k`` neighbours of each query; -1 where nobody votes."""
    indices, weights = np.asarray(indices)[:, :k], np.asarray(similarities, dtype=np.float64)[:, :k]
    codes = np.where(indices >= 0, np.asarray(gallery_codes)[np.maximum(indices, 0)], -1)
    weights = np.where(codes >= 0, weights, 0.0)
    same = codes[:, :, None] == codes[:, None, :]
    votes = np.where(codes >= 0, (same * weights[:, None, :]).sum(axis=2), -np.inf)
    best = votes.max(axis=1, initial=-np.inf)
    winners = np.where((votes == best[:, None]) & (codes >= 0), codes, np.iinfo(np.int64).max)
    predicted = winners.min(axis=1, initial=np.iinfo(np.int64).max)
    return np.where(np.isfinite(best), predicted, -1)


def knn_accuracy(indices: np.ndarray, similarities: np.ndarray, query_codes: np.ndarray,
                 gallery_codes: np.ndarray, k: int = KNN_K) -> float | None:
    known = np.asarray(query_codes) >= 0
    if not known.any():
        return None
    predicted = knn_predict(np.asarray(indices)[known], np.asarray(similarities)[known], gallery_codes, k)
    return float(np.mean(predicted == np.asarray(query_codes)[known]))


def linear_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Logistic regression on standardized features; a single training class is predicted as is."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes = np.unique(train_y)
    if len(classes) == 1:
        return np.full(len(test_x), classes[0])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=MAX_ITER))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
        model.fit(train_x, train_y)
    return model.predict(test_x)


def linear_accuracy(query_x: np.ndarray, query_codes: np.ndarray, gallery: tuple[np.ndarray, np.ndarray] | None = None,
                    *, folds: int = FOLDS, seed: int = 0) -> float | None:
    """Accuracy of the linear probe on the queries: trained on ``gallery`` (x, codes), or cross-validated."""
    known = np.asarray(query_codes) >= 0
    x, y = np.asarray(query_x)[known], np.asarray(query_codes)[known]
    if gallery is not None:
        train_known = gallery[1] >= 0
        if not len(y) or not train_known.any():
            return None
        return float(np.mean(linear_predict(gallery[0][train_known], gallery[1][train_known], x) == y))
    if len(y) < 2:
        return None
    from sklearn.model_selection import KFold

    predicted = np.empty_like(y)
    for train, test in KFold(min(folds, len(y)), shuffle=True, random_state=seed).split(x):
        predicted[test] = linear_predict(x[train], y[train], x[test])
    return float(np.mean(predicted == y))


def probe_report(indices: np.ndarray, similarities: np.ndarray, query_x: np.ndarray, query_codes: np.ndarray,
                 gallery_codes: np.ndarray, gallery_x: np.ndarray | None) -> dict[str, Any]:
    """``{"knn_accuracy", "linear_accuracy", "queries"}`` for one column."""
    gallery = None if gallery_x is None else (gallery_x, gallery_codes)
    return {"knn_accuracy": knn_accuracy(indices, similarities, query_codes, gallery_codes),
            "linear_accuracy": linear_accuracy(query_x, query_codes, gallery),
            "queries": int((np.asarray(query_codes) >= 0).sum())}
