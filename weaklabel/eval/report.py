"""``report.html`` of an evaluation and the compact table printed on the terminal.

The report holds a side-by-side table of the models (best value per row in bold when there are
several), Recall@k per model, AP per tier, the retrieval metrics per tier, the AP of every label,
and a grid of query images with their top neighbours, framed green when relevant and red when not
(images are read from the shards by id). Plots are PNGs embedded as base64; the file stands alone.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.loader import ShardInfo, decode_sample, tar_samples
from ..tiers import TIERS
from .retrieval import METRICS, RECALL_KS

THUMBNAIL = 96
HIGHER, LOWER = "higher", "lower"
SHORT = {"recall@1": "R@1", "recall@5": "R@5", "recall@10": "R@10", "precision@10": "P@10", "map@10": "mAP@10",
         "map@100": "mAP@100", "mrr": "MRR"}
MULTILABEL_ROWS = ("map_macro", "map_micro", "f1_micro@fixed", "f1_macro@fixed", "f1_micro@tuned", "f1_macro@tuned")
SOFTMAX_ROWS = ("top1", "top5")
EFFICIENCY_ROWS = (("params", "parameters (M)", 1e-6, LOWER), ("gmacs", "GMACs", 1, LOWER),
                   ("latency_ms", "latency, batch 1 (ms)", 1, LOWER), ("throughput", "throughput, batch 64 (img/s)", 1, HIGHER),
                   ("peak_memory_mb", "peak memory (MB)", 1, LOWER), ("weights_mb", "weights (MB)", 1, LOWER),
                   ("checkpoint_mb", "checkpoint file (MB)", 1, LOWER))

Row = tuple[str, list[Any], str]  # label, one value per model, which direction is better


# ---------------------------------------------------------------------------------------------
# Terminal
# ---------------------------------------------------------------------------------------------

def format_table(metrics: Mapping[str, Any]) -> str:
    """The retrieval metrics per model and relevance, then classification, probes and efficiency."""
    lines = [_columns(["model", "relevance", *SHORT.values(), "queries"])]
    for name, model in metrics["models"].items():
        for relevance, result in model["retrieval"].items():
            overall = result["overall"]
            lines.append(_columns([name, relevance, *(_fmt(overall[m]) for m in METRICS), str(overall["queries"])]))
    rows = [row for row in summary_rows(metrics) if not row[0].startswith("retrieval")]
    if rows:
        names = list(metrics["models"])
        lines += ["", _columns(["", *names], first=34)]
        lines += [_columns([label, *(_fmt(v) for v in values)], first=34) for label, values, _ in rows]
    return "\n".join(lines)


def _columns(cells: Sequence[str], first: int = 14) -> str:
    head, *rest = cells
    return f"{head[:first]:<{first}} " + " ".join(f"{c[:14]:>{max(9, len(c[:14]))}}" for c in rest)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


# ---------------------------------------------------------------------------------------------
# The side-by-side rows
# ---------------------------------------------------------------------------------------------

def summary_rows(metrics: Mapping[str, Any]) -> list[Row]:
    """One row per metric, one value per model (None where a model lacks it)."""
    models = list(metrics["models"].values())
    rows: list[Row] = []
    for relevance in metrics["relevance"]:
        for metric in METRICS:
            rows.append((f"retrieval {relevance}: {metric}",
                         [m["retrieval"][relevance]["overall"][metric] for m in models], HIGHER))
    for task in _union(m["classification"] for m in models):
        kinds = MULTILABEL_ROWS if any("map_macro" in m["classification"].get(task, {}) for m in models) else SOFTMAX_ROWS
        for metric in kinds:
            rows.append((f"{task}: {metric}", [m["classification"].get(task, {}).get(metric) for m in models], HIGHER))
    for column in _union(m["probes"] for m in models):
        for metric in ("knn_accuracy", "linear_accuracy"):
            rows.append((f"probe {column}: {metric}", [m["probes"].get(column, {}).get(metric) for m in models], HIGHER))
    for key, label, scale, better in EFFICIENCY_ROWS:
        values = [m["efficiency"].get(key) for m in models]
        if any(v is not None for v in values):
            rows.append((label, [None if v is None else v * scale for v in values], better))
    return rows


def _union(mappings: Iterable[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for mapping in mappings for key in mapping))


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------

def _png(draw: Callable[[Any], None], panels: int, height: float = 3.4) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(max(5.0, 4.6 * panels), height), dpi=100, squeeze=False)
    draw(axes[0])
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def recall_plot(metrics: Mapping[str, Any]) -> str:
    """Recall@k (k = 1, 5, 10) per model, one panel per relevance definition."""
    def draw(axes: Any) -> None:
        for ax, relevance in zip(axes, metrics["relevance"], strict=True):
            for name, model in metrics["models"].items():
                overall = model["retrieval"][relevance]["overall"]
                values = [overall[f"recall@{k}"] for k in RECALL_KS]
                ax.plot(RECALL_KS, [np.nan if v is None else v for v in values], marker="o", label=name)
            ax.set(title=f"Recall@k, relevance: {relevance}", xlabel="k", ylabel="recall (hit rate)", xticks=RECALL_KS,
                   ylim=(0, 1.02))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)

    return _png(draw, len(metrics["relevance"]))


def tier_plot(metrics: Mapping[str, Any]) -> str:
    """mAP@100 per tier for each relevance definition, and the labels head's macro mAP per tier."""
    panels = [(f"retrieval mAP@100, {r}", lambda m, t, r=r: m["retrieval"][r]["tiers"][t]["map@100"])
              for r in metrics["relevance"]]
    if any("labels" in m["classification"] for m in metrics["models"].values()):
        panels.append(("classification mAP (macro), labels",
                       lambda m, t: m["classification"].get("labels", {}).get("tiers", {}).get(t, {}).get("map_macro")))
    names = list(metrics["models"])
    width = 0.8 / max(len(names), 1)

    def draw(axes: Any) -> None:
        for ax, (title, value) in zip(axes, panels, strict=True):
            for i, name in enumerate(names):
                heights = [value(metrics["models"][name], tier) for tier in TIERS]
                x = np.arange(len(TIERS)) + i * width
                ax.bar(x, [np.nan if h is None else h for h in heights], width, label=name)
                for position, height in zip(x, heights, strict=True):
                    if height is None:
                        ax.text(position, 0.02, "none", rotation=90, ha="center", va="bottom", fontsize=8, color="#777")
            ax.set(title=title, xticks=np.arange(len(TIERS)) + width * (len(names) - 1) / 2, xticklabels=TIERS,
                   xlim=(-width, len(TIERS) - 1 + width * len(names)), ylim=(0, 1.02), ylabel="AP")
            ax.grid(axis="y", alpha=0.3)
            ax.legend(fontsize=8)

    return _png(draw, len(panels))


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------

def load_thumbnails(shards: str | Path, splits: Sequence[str], ids: Iterable[str], size: int = THUMBNAIL) -> dict[str, str]:
    """JPEG data URIs of the samples with these ids, read from the splits' shards (missing ids left out)."""
    wanted = set(ids)
    found: dict[str, str] = {}
    info = ShardInfo.load(shards)
    for split in dict.fromkeys(splits):
        for sample in tar_samples({"url": url} for url in info.shard_urls(split)):
            if len(found) == len(wanted):
                return found
            sample_id = str(json.loads(sample["json"]).get("id"))
            if sample_id in wanted and sample_id not in found:
                image = decode_sample(sample)["image"]
                image.thumbnail((size, size))
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=85)
                found[sample_id] = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    return found


def _image_cell(image_id: str, thumbnails: Mapping[str, str], caption: str, css: str) -> str:
    source = thumbnails.get(image_id)
    picture = (f'<img src="{source}" alt="{_e(image_id)}">' if source
               else f'<div class="missing">{_e(image_id)}<br>(not in the shards)</div>')
    return f'<td class="{css}">{picture}<div class="cap">{_e(caption)}</div></td>'


def grid_html(examples: Sequence[Mapping[str, Any]], thumbnails: Mapping[str, str]) -> str:
    rows = []
    for example in examples:
        cells = [_image_cell(example["query"], thumbnails, f"query {example['query']}", "query")]
        cells += [_image_cell(n["id"], thumbnails, f"{n['score']:.3f}", "rel" if n["relevant"] else "irr")
                  for n in example["neighbours"]]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="grid">{"".join(rows)}</table>' if rows else "<p>No query has a relevant item.</p>"


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

def _side_by_side(metrics: Mapping[str, Any]) -> str:
    names = list(metrics["models"])
    body = []
    for label, values, better in summary_rows(metrics):
        present = [v for v in values if v is not None]
        best = (max(present) if better == HIGHER else min(present)) if len(names) > 1 and present else None
        cells = "".join(f"<td><b>{_fmt(v)}</b></td>" if v is not None and v == best else f"<td>{_fmt(v)}</td>"
                        for v in values)
        body.append(f"<tr><th>{_e(label)}</th>{cells}</tr>")
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(body)}</table>"


def _tier_table(metrics: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{SHORT[m]}</th>" for m in METRICS)
    rows = []
    for name, model in metrics["models"].items():
        for relevance, result in model["retrieval"].items():
            for tier in ("overall", *TIERS):
                summary = result["overall"] if tier == "overall" else result["tiers"][tier]
                cells = "".join(f"<td>{_fmt(summary[m])}</td>" for m in METRICS)
                rows.append(f"<tr><td>{_e(name)}</td><td>{_e(relevance)}</td><td>{tier}</td>{cells}"
                            f"<td>{summary['queries']}</td><td>{summary['queries_without_relevant']}</td></tr>")
    return (f"<table><tr><th>model</th><th>relevance</th><th>tier</th>{head}<th>queries</th>"
            f"<th>without relevant</th></tr>{''.join(rows)}</table>")


def _label_table(metrics: Mapping[str, Any]) -> str:
    tables = {name: m["classification"]["labels"]["per_label"] for name, m in metrics["models"].items()
              if "labels" in m["classification"]}
    if not tables:
        return "<p>No model with a labels head (precomputed embeddings have none).</p>"
    first = next(iter(tables.values()))
    head = "".join(f"<th>AP {_e(n)}</th>" for n in tables)
    rows = "".join(
        f"<tr><td>{entry['label_id']}</td><td>{_e(entry['name'])}</td><td>{entry['tier']}</td>"
        f"<td>{entry['positives']}</td>" + "".join(f"<td>{_fmt(t[i]['ap'])}</td>" for t in tables.values()) + "</tr>"
        for i, entry in enumerate(first))
    return (f"<details><summary>{len(first)} labels (AP is empty for a label without a positive in the split)"
            f"</summary><table><tr><th>id</th><th>label</th><th>tier</th><th>positives</th>{head}</tr>{rows}"
            f"</table></details>")


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1300px}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}
.grid td{border:none;padding:4px;text-align:center}.grid img,.missing{width:96px;height:96px;display:block}
.grid .query img{outline:3px solid #555}.grid .rel img{outline:4px solid #2a2}.grid .irr img{outline:4px solid #d22}
.missing{background:#eee;font-size:10px;overflow:hidden}.cap{font-size:11px}"""


def write_report(path: str | Path, metrics: Mapping[str, Any], examples: Mapping[str, Sequence[Mapping[str, Any]]],
                 shards: str | Path) -> None:
    """Write the standalone HTML report."""
    ids = {i for grid in examples.values() for e in grid for i in (e["query"], *(n["id"] for n in e["neighbours"]))}
    splits = [metrics["split"]] + ([metrics["gallery_split"]] if metrics["gallery_split"] else [])
    thumbnails = load_thumbnails(shards, splits, ids)
    first_relevance = metrics["relevance"][0]
    grids = "".join(f"<h3>{_e(name)}</h3>{grid_html(grid, thumbnails)}" for name, grid in examples.items())
    gallery = metrics["gallery_split"] or f"{metrics['split']} (the query itself excluded)"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>weaklabel evaluation</title>
<style>{STYLE}</style></head><body>
<h1>Encoder evaluation</h1>
<p>Queries: the <b>{_e(metrics['split'])}</b> split of {_e(str(metrics['shards']))}; gallery: {_e(gallery)};
relevance: {_e(', '.join(metrics['relevance']))}; weaklabel {_e(metrics['weaklabel_version'])}. Averages are over the
queries with at least one relevant gallery item. Definitions: the README's "Evaluating encoders" section.</p>
<h2>Models side by side</h2>{_side_by_side(metrics)}
<h2>Recall@k</h2><img src="data:image/png;base64,{recall_plot(metrics)}" alt="Recall@k per model">
<h2>Long tail: AP per tier</h2><img src="data:image/png;base64,{tier_plot(metrics)}" alt="AP per tier">
{_tier_table(metrics)}
<h2>AP per label</h2>{_label_table(metrics)}
<h2>Nearest neighbours</h2><p>Each row: a query (dark frame) and its top {max((len(e['neighbours']) for g in
examples.values() for e in g), default=0)} neighbours with their similarity, framed green when relevant and red when
not (relevance: {_e(first_relevance)}).</p>{grids}
</body></html>"""
    Path(path).write_text(page, encoding="utf-8")


def _e(text: object) -> str:
    return html.escape(str(text))
