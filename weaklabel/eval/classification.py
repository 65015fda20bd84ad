"""Classification metrics of the task heads: multi-label AP and F1, softmax top-k, per tier.

Multi-label (the vocabulary task), over ``targets [samples, labels]`` and probabilities ``scores``:

- AP of a label: sklearn's ``average_precision_score`` (the sum over distinct score thresholds of
  the recall gained times the precision there); ``map_macro`` is its mean over the labels with a
  positive among the samples, ``map_micro`` the AP of all (sample, label) pairs pooled. Both are
  computed in bounded memory (column chunks; counts against the positives' scores for micro).
- ``f1_micro`` = 2TP / (2TP + FP + FN) over all pairs; ``f1_macro`` the mean of per-label F1 over
  the labels with a positive. ``@fixed``: predicted when the probability is >= ``threshold_fixed``
  (0.5). ``@tuned``: 2-fold cross-fitting, so no F1 is measured on the samples its threshold was
  chosen on: samples are split by row parity, the threshold of ``THRESHOLD_GRID`` that maximizes
  micro-F1 on one half (the smallest on ties) predicts the other half. ``threshold_tuned`` is the
  threshold tuned on all samples: the one to deploy.

Softmax tasks: ``top1``/``top5``: the true class is among the ``k`` best scores, ordered by score
then class index; samples whose value is missing or not a class of the head are counted apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..metrics import average_precision, count_at_least, micro_average_precision
from ..tiers import TIERS, value_tiers

FIXED_THRESHOLD = 0.5
THRESHOLD_GRID = np.unique(np.round(np.concatenate([np.geomspace(1e-4, 1e-2, 21), np.linspace(0.01, 0.99, 99)]), 6))


def f1_scores(targets: np.ndarray, predicted: np.ndarray) -> tuple[float | None, float | None]:
    """(micro F1, macro F1 over the labels with a positive); None when no label has a positive."""
    targets, predicted = np.asarray(targets, dtype=bool), np.asarray(predicted, dtype=bool)
    tp = (targets & predicted).sum(axis=0)
    wrong = (targets ^ predicted).sum(axis=0)  # false positives + false negatives
    positive = targets.any(axis=0)
    if not positive.any():
        return None, None
    micro = 2 * tp.sum() / (2 * tp.sum() + wrong.sum())
    macro = np.mean(2 * tp[positive] / (2 * tp[positive] + wrong[positive]))
    return float(micro), float(macro)


def tune_threshold(targets: np.ndarray, scores: np.ndarray, grid: np.ndarray = THRESHOLD_GRID) -> float:
    """The threshold of ``grid`` with the best micro-F1 (predicted: score >= threshold); smallest on ties."""
    targets, scores = np.asarray(targets, dtype=bool), np.asarray(scores)
    predicted = count_at_least(grid, scores)
    true_positives = count_at_least(grid, scores[targets])
    f1 = 2 * true_positives / np.maximum(predicted + targets.sum(), 1)
    return float(grid[int(np.argmax(f1))])


def multilabel_metrics(targets: np.ndarray, scores: np.ndarray, label_tiers: Sequence[str] | np.ndarray, *,
                       label_names: Sequence[str] | None = None,
                       threshold: float = FIXED_THRESHOLD) -> dict[str, Any]:
    """The multi-label metrics overall, per label tier, and an AP table (see the module docstring)."""
    targets, scores = np.asarray(targets, dtype=bool), np.asarray(scores)
    tiers = np.asarray(label_tiers, dtype=object)
    ap = average_precision(targets, scores)
    halves = (slice(0, None, 2), slice(1, None, 2))  # row parity: views, not copies
    tuned_predictions = np.zeros_like(targets)
    for held_out, tuning in (halves, halves[::-1]):
        tunable = len(targets[tuning]) > 0
        cut = tune_threshold(targets[tuning], scores[tuning]) if tunable else FIXED_THRESHOLD
        tuned_predictions[held_out] = scores[held_out] >= cut
    fixed_predictions = scores >= threshold

    def block(columns: np.ndarray) -> dict[str, Any]:
        positive = columns & targets.any(axis=0)
        micro_ap = micro_average_precision(targets[:, positive], scores[:, positive]) if positive.any() else None
        fixed = f1_scores(targets[:, columns], fixed_predictions[:, columns])
        tuned = f1_scores(targets[:, columns], tuned_predictions[:, columns])
        return {"map_macro": _mean(ap[positive]), "map_micro": micro_ap,
                "f1_micro@fixed": fixed[0], "f1_macro@fixed": fixed[1],
                "f1_micro@tuned": tuned[0], "f1_macro@tuned": tuned[1],
                "labels_with_positives": int(positive.sum())}

    everything = np.ones(targets.shape[1], dtype=bool)
    names = list(label_names) if label_names is not None else [str(i) for i in range(targets.shape[1])]
    positives = targets.sum(axis=0)
    return {
        "samples": len(targets), **block(everything),
        "threshold_fixed": threshold, "threshold_tuned": tune_threshold(targets, scores) if len(targets) else None,
        "tiers": {tier: block(tiers == tier) for tier in TIERS},
        "per_label": [{"label_id": i, "name": names[i], "tier": tiers[i], "positives": int(positives[i]),
                       "ap": None if np.isnan(ap[i]) else float(ap[i])} for i in range(targets.shape[1])],
    }


def top_k_hits(scores: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Whether each row's true class is among its ``k`` best (score descending, then class index)."""
    scores = np.asarray(scores)
    rows = np.arange(len(truth))
    own = scores[rows, truth][:, None]
    classes = np.arange(scores.shape[1])[None, :]
    rank = (scores > own).sum(axis=1) + ((scores == own) & (classes < truth[:, None])).sum(axis=1)
    return rank < k


def softmax_metrics(scores: np.ndarray, values: Sequence[Any], classes: Sequence[str]) -> dict[str, Any]:
    """top-1 and top-5 over the samples whose value is one of ``classes``, overall and per class tier."""
    index = {name: i for i, name in enumerate(classes)}
    truth = np.array([index.get(v, -1) if v is not None else -1 for v in values], dtype=np.int64)
    known = truth >= 0
    scores, truth = np.asarray(scores)[known], truth[known]
    top1, top5 = top_k_hits(scores, truth, 1), top_k_hits(scores, truth, 5)
    class_tier = value_tiers([classes[t] for t in truth])
    tiers = np.array([class_tier[classes[t]] for t in truth], dtype=object)

    def block(mask: np.ndarray) -> dict[str, Any]:
        return {"top1": _mean(top1[mask]), "top5": _mean(top5[mask]), "samples": int(mask.sum())}

    return {**block(np.ones(len(truth), dtype=bool)), "samples_unknown": int((~known).sum()),
            "classes": len(classes), "tiers": {tier: block(tiers == tier) for tier in TIERS}}


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None
