"""Facets as every stage reads them: groups of labels that are alternatives to each other.

The vocabulary discovers facets (:mod:`weaklabel.labeling.facets`) and writes each label's facet
name in the ``facet`` column of ``labels.parquet`` (null for a label in no facet). Every folder
downstream carries a copy of that table, so the facets, their order and their classes are read
from it alone: facets are ordered by their most frequent label (lowest label id first), and a
facet's classes are its labels in label-id order.

A listing's facet labels (``labeled/`` parts and the shards' json sidecars) are one integer per
facet in that order: the label id chosen for the facet, or -1 when the listing has none.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

import pandas as pd

FACET_COLUMN = "facet"  # labels.parquet: the label's facet name, null when in none
FACETS_FIELD = "facets"  # labeled parts and json sidecars: one label id per facet, -1 when absent
NO_LABEL = -1


def facet_members(labels: pd.DataFrame) -> dict[str, list[int]]:
    """Facet name -> its label ids (ascending), facets ordered by their lowest label id."""
    if FACET_COLUMN not in labels:
        return {}
    faceted = labels[labels[FACET_COLUMN].notna()].sort_values("label_id")
    members: dict[str, list[int]] = {}
    for label_id, facet in zip(faceted["label_id"].tolist(), faceted[FACET_COLUMN].tolist()):
        members.setdefault(str(facet), []).append(int(label_id))
    return members


def label_in_facet(chosen: Sequence[int] | None, ids: Container[int]) -> int | None:
    """The label a listing's ``facets`` list chose among a facet's label ``ids``, or None (a label is in one facet
    at most, so the facet's id in the list is the one at the facet's position)."""
    return next((label for label in chosen if label in ids), None) if chosen is not None else None
