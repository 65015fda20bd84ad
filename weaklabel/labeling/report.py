"""``report.html`` of a vocabulary: what clustering did to the long tail, the labels, the boilerplate
found, the dropped terms."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from .vocabulary import Vocabulary

TOP_LABELS = 50
DROPPED_EXAMPLES = 15
BOILERPLATE_ROWS = 100


def support_plot_png(before: list[int], after: list[int]) -> bytes:
    """Rank-frequency plot (log-log) of term support before clustering and label support after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for values, name in ((before, f"candidate terms ({len(before)})"), (after, f"labels ({len(after)})")):
        if len(values):
            ranked = np.sort(np.asarray(values))[::-1]
            ax.loglog(np.arange(1, len(ranked) + 1), ranked, label=name)
    ax.set_xlabel("rank")
    ax.set_ylabel("support (listings)")
    ax.set_title("Support before vs after clustering")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def write_vocab_report(vocabulary: Vocabulary, path: str | Path) -> None:
    stats = vocabulary.stats
    labels = vocabulary.labels
    png = base64.b64encode(support_plot_png(stats.get("support_before", []), labels["support"].tolist())).decode()
    tiers = labels["tier"].value_counts().reindex(["head", "torso", "tail"], fill_value=0)
    rows = "".join(
        f"<tr><td>{r.label_id}</td><td>{_e(r.name)}</td><td>{r.support}</td><td>{r.tier}</td>"
        f"<td>{_e(', '.join(r.aliases[:20]))}{' …' if len(r.aliases) > 20 else ''}</td></tr>"
        for r in labels.head(TOP_LABELS).itertuples()
    )
    dropped = vocabulary.terms[vocabulary.terms["label_id"].isna()].drop_duplicates("term")
    reason_rows = "".join(
        f"<tr><td>{_e(reason)}</td><td>{count}</td><td>{_e(', '.join(_examples(dropped, reason)))}</td></tr>"
        for reason, count in sorted(stats.get("dropped_terms", {}).items(), key=lambda kv: -kv[1])
    )
    boilerplate = vocabulary.boilerplate.to_frame()
    removed = stats.get("boilerplate", {})
    boilerplate_summary = "; ".join(
        f"{_e(column)}: {found['patterns']} patterns, {found['words']:,} words removed from {found['listings']:,} listings"
        for column, found in removed.items()) or "none searched (boilerplate off, or no free-text field)"
    boilerplate_rows = "".join(
        f"<tr><td>{_e(r.field)}</td><td>{_e(r.kind)}</td><td>{_e(r.pattern)}</td><td>{r.listings}</td>"
        f"<td>{_e(r.group)}</td><td>{_e(r.example)}</td></tr>"
        for r in boilerplate.sort_values("listings", ascending=False).head(BOILERPLATE_ROWS).itertuples()
    )
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>weaklabel vocabulary</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}}th{{background:#f4f4f4}}</style></head><body>
<h1>Label vocabulary</h1>
<p>{stats.get('listings', 0)} listings, {stats.get('distinct_terms', 0)} distinct terms,
{stats.get('candidates', 0)} candidates, <b>{len(labels)} labels</b>
(head {tiers['head']}, torso {tiers['torso']}, tail {tiers['tail']}) made of {stats.get('labelled_terms', 0)} terms.</p>
<h2>Support before vs after clustering</h2>
<p>Each curve ranks terms (before) and labels (after) by the listings they cover: clustering folds the
long tail of variants, typos and rare synonyms into fewer, better-supported labels.</p>
<img alt="support before and after clustering" src="data:image/png;base64,{png}">
<h2>Top {min(TOP_LABELS, len(labels))} labels</h2>
<table><tr><th>id</th><th>name</th><th>support</th><th>tier</th><th>aliases</th></tr>{rows}</table>
<h2>Boilerplate</h2>
<p>Sentences and sentence templates that many listings repeat produce no terms ("*" is a template's
slot, whose words stay content). {boilerplate_summary}.</p>
<table><tr><th>field</th><th>kind</th><th>pattern</th><th>listings</th><th>group</th><th>example</th></tr>{boilerplate_rows}</table>
<h2>Dropped terms by reason</h2>
<table><tr><th>reason</th><th>terms</th><th>examples (most frequent first)</th></tr>{reason_rows}</table>
</body></html>"""
    Path(path).write_text(body, encoding="utf-8")


def _examples(dropped, reason: str) -> list[str]:
    matches = dropped[dropped["how"].isin([reason, f"dropped:{reason}"])]
    return matches["term"].head(DROPPED_EXAMPLES).tolist()


def _e(text) -> str:
    return html.escape(str(text))
