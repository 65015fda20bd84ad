"""``report.html`` of a vocabulary: what clustering did to the long tail, the labels, the boilerplate
found, the dropped terms. The page is ``templates/vocab_report.html``; this module gathers its data."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..reports import figure_data_uri, render
from ..stage import listings_read
from ..tiers import TIERS
from .vocabulary import Vocabulary

TOP_LABELS = 50
ALIASES_SHOWN = 20
DROPPED_EXAMPLES = 15
BOILERPLATE_ROWS = 100
COUNTS = ("listings", "distinct_terms", "candidates", "labelled_terms")
FACET_LABELS_SHOWN = 15


def support_plot(before: list[int], after: list[int]) -> str:
    """Rank-frequency plot (log-log) of term support before clustering and label support after, as a data URI."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.subplots()
    for values, name in ((before, f"candidate terms ({len(before)})"), (after, f"labels ({len(after)})")):
        if len(values):
            ranked = np.sort(np.asarray(values))[::-1]
            ax.loglog(np.arange(1, len(ranked) + 1), ranked, label=name)
    ax.set_xlabel("rank")
    ax.set_ylabel("support (listings)")
    ax.set_title("Support before vs after clustering")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    return figure_data_uri(fig)


def write_vocab_report(vocabulary: Vocabulary, path: str | Path, listing_counts: Mapping[str, Any]) -> None:
    """Write the vocabulary's standalone ``report.html``; ``listing_counts`` are the counts of the listings read
    (rows_in, rows_out, rejected by reason), stated as the console summary states them."""
    stats, labels = vocabulary.stats, vocabulary.labels
    page = render(
        "vocab_report.html",
        listings_read=listings_read(listing_counts),
        counts={key: stats.get(key, 0) for key in COUNTS},
        label_count=len(labels),
        tiers=labels["tier"].value_counts().reindex(TIERS, fill_value=0).to_dict(),
        support_plot=support_plot(stats.get("support_before", []), labels["support"].tolist()),
        top_labels=[_label_row(label) for label in labels.head(TOP_LABELS).itertuples()],
        facets=_facet_rows(vocabulary.facets, labels),
        boilerplate_removed=stats.get("boilerplate", {}),
        boilerplate=_boilerplate_rows(vocabulary.boilerplate.to_frame()),
        dropped=_dropped_rows(vocabulary.terms, stats.get("dropped_terms", {})),
    )
    Path(path).write_text(page, encoding="utf-8")


def _label_row(label: Any) -> list[Any]:
    aliases = ", ".join(label.aliases[:ALIASES_SHOWN]) + (" …" if len(label.aliases) > ALIASES_SHOWN else "")
    return [label.label_id, label.name, label.support, label.tier, aliases]


def _facet_rows(facets: pd.DataFrame, labels: pd.DataFrame) -> list[list[Any]]:
    """Per facet: id, name, how it came, coverage, collision, and its labels with their support."""
    rows = []
    for facet in facets.itertuples():
        members = labels.iloc[list(facet.labels)]
        shown = ", ".join(f"{name} ({support:,})" for name, support in
                          zip(members["name"].head(FACET_LABELS_SHOWN), members["support"].head(FACET_LABELS_SHOWN)))
        more = f" … ({len(members)} labels)" if len(members) > FACET_LABELS_SHOWN else ""
        rows.append([facet.facet_id, facet.name, "seeded" if facet.seeded else "found", f"{facet.coverage:.1%}",
                     f"{facet.collision:.1%}", shown + more])
    return rows


def _boilerplate_rows(boilerplate: pd.DataFrame) -> list[list[Any]]:
    biggest = boilerplate.sort_values("listings", ascending=False).head(BOILERPLATE_ROWS)
    return biggest[["field", "kind", "pattern", "listings", "group", "example"]].to_numpy().tolist()


def _dropped_rows(terms: pd.DataFrame, dropped_counts: dict[str, int]) -> list[list[Any]]:
    """Reason, number of terms and the most frequent examples, most common reason first."""
    dropped = terms[terms["label_id"].isna()].drop_duplicates("term")
    rows = []
    for reason, count in sorted(dropped_counts.items(), key=lambda kv: -kv[1]):
        matches = dropped[dropped["how"].isin([reason, f"dropped:{reason}"])]
        rows.append([reason, count, ", ".join(matches["term"].head(DROPPED_EXAMPLES))])
    return rows
