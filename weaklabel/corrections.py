"""The audit's verdicts as every stage reads them: the file names and columns of an audit folder,
and :class:`Corrections`, the labels a second round leaves out of its targets.

An audit folder (``weaklabel audit``, see :mod:`weaklabel.audit`) holds

- ``labels_audit.parquet``: one row per label: ``label_id``, ``name``, the visualness figures and
  ``verdict`` ("visual", "non-visual", or "unjudged" when too few held-out images carry it);
- ``pairs.parquet``: one row per suspect listing-label pair: ``id`` (the listing), ``split``,
  ``label_id``, ``name``, ``kind`` ("contradicted": the text gave the label and the images say
  no; "missed": the text did not give it and the images say yes), ``score`` and ``predicted``.

A second round drops every pair of a non-visual label and every contradicted pair from the
targets; the shards are not rewritten, so round 1's labels stay as they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

LABELS_AUDIT = "labels_audit.parquet"
PAIRS = "pairs.parquet"
NON_VISUAL = "non-visual"
VISUAL = "visual"
UNJUDGED = "unjudged"
CONTRADICTED = "contradicted"
MISSED = "missed"


@dataclass(frozen=True)
class Corrections:
    """Labels left out of every listing's targets (``labels``) and of one listing's (``pairs``: id -> label ids)."""

    labels: frozenset[int] = frozenset()
    pairs: Mapping[str, frozenset[int]] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: str | Path) -> Corrections:
        """The corrections of a finished audit folder; a ValueError naming the folder when it is not one."""
        folder = Path(folder)
        missing = [name for name in (LABELS_AUDIT, PAIRS) if not (folder / name).is_file()]
        if missing:
            raise ValueError(f"{folder} is not an audit folder ({', '.join(missing)} missing); "
                             "give the --out folder of 'weaklabel audit'")
        verdicts = pd.read_parquet(folder / LABELS_AUDIT, columns=["label_id", "verdict"])
        pairs = pd.read_parquet(folder / PAIRS, columns=["id", "label_id", "kind"])
        contradicted = pairs[pairs["kind"] == CONTRADICTED]
        by_listing = contradicted.groupby("id")["label_id"].agg(lambda ids: frozenset(int(i) for i in ids))
        return cls(frozenset(int(i) for i in verdicts.loc[verdicts["verdict"] == NON_VISUAL, "label_id"]),
                   {str(key): value for key, value in by_listing.items()})

    def kept(self, labels: Sequence[int], listing: object) -> list[int]:
        """A listing's label ids without those the audit dropped."""
        dropped = self.labels | self.pairs.get(str(listing), frozenset())
        return [label for label in labels if label not in dropped]

    def __bool__(self) -> bool:
        return bool(self.labels or self.pairs)
