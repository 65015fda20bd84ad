"""The two questions the audit asks the images, as numbers.

**Visualness of a label**, on the held-out images only (the encoder never learned their labels,
so a label it memorized without seeing it scores at chance there):

- *AP gain*: the multi-label head's average precision for the label over the held-out images,
  as a share of the way from chance (its base rate) to perfect: ``(AP - base) / (1 - base)``;
- *agreement gain*: how often the nearest neighbours (in embedding space, among all images) of a
  held-out image that carries the label carry it too, the same way from chance (its rate among
  all images) to always.

The visualness is their mean; a label with at least ``min_held_out`` held-out images and a
visualness below ``min_visualness`` is non-visual, one with fewer images is unjudged.

**Suspect listing-label pairs**, of every label not judged non-visual: an image's probability of
a label is the mean of two predictions, the share of its ``k`` nearest neighbours (itself left
out) that carry the label, and the multi-label head's. cleanlab's confident learning, one class at
a time (``find_multilabel_issues_per_class``), then marks the pairs whose given label disagrees
with that probability beyond the label's own estimated noise: a given label the images deny is
*contradicted* (score ``1 - p``), a label the images give that the text did not is *missed*
(score ``p``). The neighbour vote never counts the image's own label; the head learned the train
split's labels, so on a train image it is an in-sample prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from ..corrections import CONTRADICTED, MISSED, NON_VISUAL, UNJUDGED, VISUAL
from ..metrics import average_precision, multi_hot
from ..search import exact_search
from .predict import Predictions


@dataclass(frozen=True)
class AuditParams:
    """The audit's settings (one set of defaults for every catalogue)."""

    neighbours: int = 20  # k of the neighbour votes and of the agreement
    min_visualness: float = 0.1  # below it (with enough held-out images) a label is non-visual
    min_held_out: int = 5  # held-out images a label needs for a verdict

    def __post_init__(self) -> None:
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, not {self.neighbours}")
        if not 0 <= self.min_visualness <= 1:
            raise ValueError(f"min_visualness must be in [0, 1], not {self.min_visualness}")
        if self.min_held_out < 1:
            raise ValueError(f"min_held_out must be >= 1, not {self.min_held_out}")


def neighbour_votes(embeddings: np.ndarray, given: sparse.csr_matrix, k: int) -> np.ndarray:
    """``[n, labels]``: the share of each image's ``k`` nearest other images that carry each label."""
    n = len(embeddings)
    k = max(1, min(k, n - 1))
    found = exact_search(embeddings, embeddings, k, exclude=np.arange(n)).indices
    rows, columns = np.repeat(np.arange(n), k), found.ravel()
    valid = columns >= 0
    weights = sparse.csr_matrix((np.full(int(valid.sum()), 1.0 / k, dtype=np.float32), (rows[valid], columns[valid])),
                                shape=(n, n))
    return np.asarray((weights @ given.astype(np.float32)).todense(), dtype=np.float32)


def label_visualness(predictions: Predictions, given: sparse.csr_matrix, votes: np.ndarray,
                     params: AuditParams) -> pd.DataFrame:
    """One row per label: images, held_out, base_rate, ap, ap_gain, agreement, agreement_gain, visualness, verdict."""
    held = predictions.held_out
    held_given = given[held]
    positives = np.asarray(held_given.sum(axis=0)).ravel()
    base = positives / max(int(held.sum()), 1)
    ap = average_precision(held_given.toarray(), predictions.probabilities[held]) if held.any() else \
        np.full(given.shape[1], np.nan)
    rate = np.asarray(given.sum(axis=0)).ravel() / max(given.shape[0], 1)
    agreement = np.asarray(held_given.multiply(votes[held]).sum(axis=0)).ravel() / np.maximum(positives, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ap_gain = np.where(positives > 0, (ap - base) / np.maximum(1 - base, 1e-9), np.nan)
        agreement_gain = np.where(positives > 0, (agreement - rate) / np.maximum(1 - rate, 1e-9), np.nan)
    visualness = (ap_gain + agreement_gain) / 2
    judged = positives >= params.min_held_out
    verdict = np.where(~judged, UNJUDGED, np.where(visualness < params.min_visualness, NON_VISUAL, VISUAL))
    return pd.DataFrame({
        "label_id": np.arange(given.shape[1], dtype=np.int32),
        "images": np.asarray(given.sum(axis=0)).ravel().astype(np.int64),
        "held_out": positives.astype(np.int64),
        "base_rate": base, "ap": ap, "ap_gain": ap_gain,
        "agreement": np.where(positives > 0, agreement, np.nan), "agreement_gain": agreement_gain,
        "visualness": visualness, "verdict": verdict,
    })


def label_probabilities(predictions: Predictions, votes: np.ndarray) -> np.ndarray:
    """``[n, labels]``: the mean of the neighbour votes and the head's probabilities."""
    return (votes + predictions.probabilities) / 2


def suspect_pairs(predictions: Predictions, given: sparse.csr_matrix, probabilities: np.ndarray,
                  judged: np.ndarray) -> pd.DataFrame:
    """The suspect pairs of the ``judged`` label ids: id, split, label_id, kind, score, predicted."""
    from cleanlab.multilabel_classification.filter import find_multilabel_issues_per_class

    columns = np.asarray(judged, dtype=np.int64)
    empty = pd.DataFrame({"id": pd.Series(dtype=str), "split": pd.Series(dtype=str),
                          "label_id": pd.Series(dtype=np.int32), "kind": pd.Series(dtype=str),
                          "score": pd.Series(dtype=np.float32), "predicted": pd.Series(dtype=np.float32)})
    if len(columns) < 2 or given.shape[0] < 2:
        return empty  # cleanlab needs two classes
    sub = given[:, columns].tocsr()
    probabilities = np.clip(probabilities[:, columns], 0.0, 1.0)
    labels = [list(sub.indices[sub.indptr[i]:sub.indptr[i + 1]]) for i in range(sub.shape[0])]
    issues = np.asarray(find_multilabel_issues_per_class(labels=labels, pred_probs=probabilities), dtype=bool)
    rows, cols = np.nonzero(issues)
    if not len(rows):
        return empty
    was_given = np.asarray(sub[rows, cols]).ravel() > 0
    predicted = probabilities[rows, cols]
    pairs = pd.DataFrame({
        "id": np.asarray(predictions.ids, dtype=object)[rows], "split": predictions.splits[rows],
        "label_id": columns[cols].astype(np.int32), "kind": np.where(was_given, CONTRADICTED, MISSED),
        "score": np.where(was_given, 1 - predicted, predicted).astype(np.float32),
        "predicted": predicted.astype(np.float32),
    })
    return pairs.sort_values(["kind", "score", "label_id", "id"], ascending=[True, False, True, True],
                             ignore_index=True)


def given_matrix(predictions: Predictions, num_labels: int) -> sparse.csr_matrix:
    """The weak labels of the shards as a sparse ``[n, labels]`` 0/1 matrix."""
    return multi_hot(predictions.labels, num_labels)
