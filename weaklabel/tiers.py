"""Head / torso / tail: the long-tail tiers of labels, column values and queries.

One rule for every stage (the vocabulary writes each label's tier, the evaluator reports per
tier): sorted by support, a label is head while the labels before it hold less than half of all
support, torso below 80%, tail after that. Label tiers come from the shards' ``labels.parquet`` (a
copy of the vocabulary's); a column value's tier follows its frequency among the gallery items. A
query with several labels belongs to the tier of its rarest one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

TIERS = ("head", "torso", "tail")
TIER_MASS = (0.5, 0.8)
_RANK = {tier: rank for rank, tier in enumerate(TIERS)}


def assign_tiers(support: np.ndarray, tier_mass: tuple[float, float] = TIER_MASS) -> list[str]:
    """Head, torso, tail by cumulative share of support (support sorted descending).

    A label is head while the share of support held by the labels before it is below
    ``tier_mass[0]``, torso while below ``tier_mass[1]``, then tail.
    """
    total = max(float(support.sum()), 1.0)
    before = (np.cumsum(support) - support) / total
    return np.where(before < tier_mass[0], "head", np.where(before < tier_mass[1], "torso", "tail")).tolist()


def label_tiers(shards: str | Path) -> np.ndarray:
    """The tier of each label id of a shards folder.

    Read from ``labels.parquet``'s ``tier`` column; without it, computed from its ``support``
    column, or else from the label histogram of the train split in ``manifest.json``.
    """
    shards = Path(shards)
    table = pq.read_table(shards / "labels.parquet")
    ids = np.asarray(table.column("label_id").to_pylist(), dtype=np.int64)
    order = np.argsort(ids)
    if "tier" in table.column_names:
        return np.asarray(table.column("tier").to_pylist(), dtype=object)[order]
    if "support" in table.column_names:
        support = np.asarray(table.column("support").to_pylist(), dtype=np.int64)[order]
    else:
        support = _train_histogram(shards, len(ids))
    return tiers_by_support(support)


def _train_histogram(shards: Path, num_labels: int) -> np.ndarray:
    manifest = json.loads((shards / "manifest.json").read_text())
    histogram = manifest["outputs"]["splits"]["train"]["label_histogram"]
    support = np.zeros(num_labels, dtype=np.int64)
    for label, count in histogram.items():
        support[int(label)] = int(count)
    return support


def tiers_by_support(support: Sequence[int] | np.ndarray) -> np.ndarray:
    """Tier of each entry of an unsorted support array (the vocabulary's rule; ties keep their order)."""
    support = np.asarray(support, dtype=np.int64)
    order = np.argsort(-support, kind="stable")
    tiers = np.empty(len(support), dtype=object)
    tiers[order] = assign_tiers(support[order], TIER_MASS)
    return tiers


def value_tiers(values: Sequence[Any]) -> dict[Any, str]:
    """Tier of each distinct non-missing value by its frequency in ``values`` (ties by value)."""
    counts = sorted(Counter(v for v in values if v is not None).items(), key=lambda kv: (-kv[1], str(kv[0])))
    tiers = assign_tiers(np.array([n for _, n in counts], dtype=np.int64), TIER_MASS) if counts else []
    return {value: tier for (value, _), tier in zip(counts, tiers, strict=True)}


def rarest_tier(label_lists: Sequence[Sequence[int]], tiers: np.ndarray) -> np.ndarray:
    """Per row: the rarest tier among its labels (tail before torso before head); None without labels."""
    out = np.full(len(label_lists), None, dtype=object)
    for row, labels in enumerate(label_lists):
        if len(labels):
            out[row] = TIERS[max(_RANK[tiers[int(label)]] for label in labels)]
    return out
