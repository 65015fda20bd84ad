"""``report.html`` of an evaluation and the compact table printed on the terminal.

The report holds a side-by-side table of the models (best value per row in bold when there are
several), Recall@k per model, AP per tier, the retrieval metrics per tier, the facet heads' top-1
and retrieval per facet, the AP of every label, and a grid of query images with their top
neighbours, framed green when relevant and red when not (images are read from the shards by id).
Plots are PNGs embedded as base64; the file stands alone.
The page is ``templates/eval_report.html``; this module gathers its data.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from ..datasets.gallery import GALLERY
from ..datasets.loader import load_thumbnails
from ..reports import figure_data_uri, format_metric, render
from ..tiers import TIERS
from .efficiency import load_note
from .retrieval import METRICS, RECALL_KS

THUMBNAIL = 96
HIGHER, LOWER = "higher", "lower"
SHORT = {"recall@1": "R@1", "recall@5": "R@5", "recall@10": "R@10", "precision@10": "P@10", "map@10": "mAP@10",
         "map@100": "mAP@100", "mrr": "MRR"}
MULTILABEL_ROWS = ("map_macro", "map_micro", "f1_micro@fixed", "f1_macro@fixed", "f1_micro@tuned", "f1_macro@tuned")
SOFTMAX_ROWS = ("top1", "top5")
FACET_ROWS = (("top1_accuracy", None), ("recall@1", "overall"))  # (metric, its retrieval block or None)
EFFICIENCY_ROWS = (("params", "parameters (M)", 1e-6, LOWER), ("gmacs", "GMACs", 1, LOWER),
                   ("latency_ms", "latency, batch 1 (ms)", 1, LOWER),
                   ("throughput", "throughput, batch 64 (img/s)", 1, HIGHER),
                   ("peak_memory_mb", "peak memory (MB)", 1, LOWER), ("weights_mb", "weights (MB)", 1, LOWER),
                   ("checkpoint_mb", "checkpoint file (MB)", 1, LOWER))

Row = tuple[str, list[Any], str]  # label, one value per model, which direction is better


# ---------------------------------------------------------------------------------------------
# Terminal
# ---------------------------------------------------------------------------------------------

def format_table(metrics: Mapping[str, Any]) -> str:
    """The retrieval metrics per model and relevance, then classification, probes and efficiency,
    and a line per model whose timings were taken on a loaded machine."""
    retrieval = [["model", "relevance", *SHORT.values(), "queries"]]
    for name, model in metrics["models"].items():
        for relevance, result in model["retrieval"].items():
            overall = result["overall"]
            retrieval.append([name, relevance, *(format_metric(overall[m]) for m in METRICS), str(overall["queries"])])
    lines = _aligned(retrieval)
    rows = [row for row in summary_rows(metrics) if not row[0].startswith("retrieval")]
    if rows:
        side_by_side = [["", *metrics["models"]]]
        side_by_side += [[label, *(format_metric(v) for v in values)] for label, values, _ in rows]
        lines += ["", *_aligned(side_by_side)]
    lines += [f"{name}: {note}, so its latency and throughput are unsteady" for name, note in load_notes(metrics)]
    return "\n".join(lines)


def _aligned(table: Sequence[Sequence[str]]) -> list[str]:
    """The rows as lines, each column as wide as its widest cell: the first left-aligned, the others right."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return [" ".join([row[0].ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:]))]).rstrip()
            for row in table]


def load_notes(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(model, "machine loaded (load average X on N cores)") for each model timed on a loaded machine."""
    notes = [(name, load_note(model["efficiency"])) for name, model in metrics["models"].items()]
    return [(name, note) for name, note in notes if note]


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
        multilabel = any("map_macro" in m["classification"].get(task, {}) for m in models)
        kinds = MULTILABEL_ROWS if multilabel else SOFTMAX_ROWS
        for metric in kinds:
            rows.append((f"{task}: {metric}", [m["classification"].get(task, {}).get(metric) for m in models], HIGHER))
    for facet in _union(m.get("facets", {}) for m in models):
        for metric, block in FACET_ROWS:
            rows.append((f"facet {facet}: {metric}", [_facet_metric(m, facet, metric, block) for m in models], HIGHER))
    for column in _union(m["probes"] for m in models):
        for metric in ("knn_accuracy", "linear_accuracy"):
            rows.append((f"probe {column}: {metric}",
                         [m["probes"].get(column, {}).get(metric) for m in models], HIGHER))
    for key, label, scale, better in EFFICIENCY_ROWS:
        values = [m["efficiency"].get(key) for m in models]
        if any(v is not None for v in values):
            rows.append((label, [None if v is None else v * scale for v in values], better))
    return rows


def _facet_metric(model: Mapping[str, Any], facet: str, metric: str, block: str | None) -> Any:
    """A facet head's figure: its own (``block`` None) or one of its retrieval's ``block`` summary."""
    scores = model.get("facets", {}).get(facet)
    if scores is None:
        return None
    return scores[metric] if block is None else scores["retrieval"][block][metric]


def _union(mappings: Iterable[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for mapping in mappings for key in mapping))


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------

def _plot(draw: Callable[[Any], None], panels: int, height: float = 3.4) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(5.0, 4.6 * panels), height), dpi=100)
    draw(fig.subplots(1, panels, squeeze=False)[0])
    return figure_data_uri(fig)


def recall_plot(metrics: Mapping[str, Any]) -> str:
    """Recall@k (k = 1, 5, 10) per model, one panel per relevance definition, as a data URI."""
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

    return _plot(draw, len(metrics["relevance"]))


def tier_plot(metrics: Mapping[str, Any]) -> str:
    """mAP@100 per tier for each relevance definition, and the labels head's macro mAP per tier, as a data URI."""
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

    return _plot(draw, len(panels))


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------

def grid_rows(examples: Sequence[Mapping[str, Any]], thumbnails: Mapping[str, str]) -> list[list[dict[str, Any]]]:
    """Per example, its query's cell then its neighbours': id, thumbnail (None when missing), caption and frame."""
    def cell(image_id: str, caption: str, frame: str) -> dict[str, Any]:
        return {"id": image_id, "thumbnail": thumbnails.get(image_id), "caption": caption, "frame": frame}

    return [[cell(e["query"], f"query {e['query']}", "query"),
             *(cell(n["id"], f"{n['score']:.3f}", "rel" if n["relevant"] else "irr") for n in e["neighbours"])]
            for e in examples]


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

def side_by_side(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The summary rows with each value marked best or not (best only when there are several models)."""
    several = len(metrics["models"]) > 1
    table = []
    for label, values, better in summary_rows(metrics):
        present = [v for v in values if v is not None]
        best = (max(present) if better == HIGHER else min(present)) if several and present else None
        table.append({"label": label, "cells": [{"value": v, "best": v is not None and v == best} for v in values]})
    return table


def _tier_rows(metrics: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for name, model in metrics["models"].items():
        for relevance, result in model["retrieval"].items():
            for tier in ("overall", *TIERS):
                summary = result["overall"] if tier == "overall" else result["tiers"][tier]
                rows.append([name, relevance, tier, *(summary[m] for m in METRICS), summary["queries"],
                             summary["queries_without_relevant"]])
    return rows


def _facet_rows(metrics: Mapping[str, Any]) -> list[list[Any]]:
    """Per model and facet head: classes, items with the facet, top-1/top-5, then the retrieval among them."""
    rows = []
    for name, model in metrics["models"].items():
        for facet, scores in model.get("facets", {}).items():
            overall = scores["retrieval"]["overall"]
            rows.append([name, facet, scores["classes"], scores["n"], scores["top1_accuracy"], scores["top5_accuracy"],
                         *(overall[m] for m in METRICS), overall["queries"]])
    return rows


def _per_label(metrics: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each labels-head model's per-label AP entries (same labels, same order in every model)."""
    return {name: m["classification"]["labels"]["per_label"] for name, m in metrics["models"].items()
            if "labels" in m["classification"]}


def report_html(metrics: Mapping[str, Any], examples: Mapping[str, Sequence[Mapping[str, Any]]],
                thumbnails: Mapping[str, str], label_gallery: str | None = None) -> str:
    """The standalone page, given the thumbnails (data URIs by id) of the examples' images and the link
    to the shards' label gallery (None: no link)."""
    per_label = _per_label(metrics)
    labels = next(iter(per_label.values()), [])
    return render(
        "eval_report.html",
        split=metrics["split"],
        queries=next(iter(metrics["models"].values()))["queries"],  # every model embeds the same split
        shards=str(metrics["shards"]),
        gallery=metrics["gallery_split"] or f"{metrics['split']} (the query itself excluded)",
        relevance=metrics["relevance"],
        version=metrics["weaklabel_version"],
        models=list(metrics["models"]),
        side_by_side=side_by_side(metrics),
        load_notes=load_notes(metrics),
        recall_plot=recall_plot(metrics),
        tier_plot=tier_plot(metrics),
        metric_names=[SHORT[m] for m in METRICS],
        tier_rows=_tier_rows(metrics),
        facet_rows=_facet_rows(metrics),
        ap_columns=[f"AP {name}" for name in per_label],
        label_rows=[[e["label_id"], e["name"], e["tier"], e["positives"], *(t[i]["ap"] for t in per_label.values())]
                    for i, e in enumerate(labels)],
        neighbours_shown=max((len(e["neighbours"]) for grid in examples.values() for e in grid), default=0),
        grids={name: grid_rows(grid, thumbnails) for name, grid in examples.items()},
        label_gallery=label_gallery,
        near_duplicates=_near_duplicates(metrics),
    )


def _near_duplicates(metrics: Mapping[str, Any]) -> Mapping[str, int] | None:
    """What the search left out as near-copies of queries (None when it left nothing out)."""
    if not metrics.get("exclude_near_duplicates"):
        return None
    return next(iter(metrics["models"].values())).get("near_duplicates_left_out")


def write_report(path: str | Path, metrics: Mapping[str, Any], examples: Mapping[str, Sequence[Mapping[str, Any]]],
                 shards: str | Path) -> None:
    """Write the standalone HTML report, its thumbnails read from ``shards``."""
    ids = {i for grid in examples.values() for e in grid for i in (e["query"], *(n["id"] for n in e["neighbours"]))}
    splits = [metrics["split"]] + ([metrics["gallery_split"]] if metrics["gallery_split"] else [])
    page = report_html(metrics, examples, load_thumbnails(shards, splits, ids, THUMBNAIL), _gallery_link(path, shards))
    Path(path).write_text(page, encoding="utf-8")


def _gallery_link(report: str | Path, shards: str | Path) -> str | None:
    """The shards' ``gallery.html`` relative to the report's folder, when the shards have one."""
    gallery = Path(shards).resolve() / GALLERY
    return quote(os.path.relpath(gallery, Path(report).resolve().parent)) if gallery.is_file() else None
