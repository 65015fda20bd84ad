"""``report.html`` of an audit: per label, its figures and, side by side, its most typical images,
its most contradicted ones (the text gave the label, the images deny it) and its most missed ones
(the images give it, the text did not), so a person sees at a glance what a label looks like."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..artifacts import write_text
from ..corrections import CONTRADICTED, MISSED, NON_VISUAL, VISUAL
from ..datasets.loader import load_thumbnails
from ..reports import render
from .predict import Predictions
from .scores import AuditParams

MAX_LABELS = 200  # the most frequent labels; the parquet files hold them all
PER_STRIP = 6
THUMBNAIL = 80
VERDICT_ORDER = {NON_VISUAL: 0, VISUAL: 1}  # flagged labels first, then the judged, then the unjudged


def write_report(path: Path, verdicts: pd.DataFrame, pairs: pd.DataFrame, predictions: Predictions,
                 votes: np.ndarray, given: sparse.csr_matrix, shards: Path, params: AuditParams) -> None:
    shown = verdicts.assign(order=verdicts["verdict"].map(VERDICT_ORDER).fillna(2))
    shown = shown.sort_values(["order", "images", "label_id"], ascending=[True, False, True]).head(MAX_LABELS)
    strips = {int(label): _strips(int(label), pairs, predictions, votes, given) for label in shown["label_id"]}
    ids = {i for label in strips.values() for strip in label.values() for i in strip}
    thumbnails = load_thumbnails(shards, list(dict.fromkeys(predictions.splits)), ids, THUMBNAIL)
    rows = [_row(row, strips[int(row.label_id)], thumbnails) for row in shown.itertuples()]
    counts = verdicts["verdict"].value_counts().to_dict()
    write_text(path, render("audit_report.html", rows=rows, total=len(verdicts), counts=counts, params=params,
                            images=len(predictions.ids), held_out=int(predictions.held_out.sum()),
                            contradicted=int((pairs["kind"] == CONTRADICTED).sum()),
                            missed=int((pairs["kind"] == MISSED).sum()), per_strip=PER_STRIP))


def _strips(label: int, pairs: pd.DataFrame, predictions: Predictions, votes: np.ndarray,
            given: sparse.csr_matrix) -> dict[str, list[str]]:
    """The ids shown for a label: typical (carriers the neighbours agree with most), contradicted, missed."""
    own = pairs[pairs["label_id"] == label]
    suspects = {kind: own.loc[own["kind"] == kind, "id"].head(PER_STRIP).tolist() for kind in (CONTRADICTED, MISSED)}
    carriers = given[:, label].nonzero()[0]
    doubted = set(own.loc[own["kind"] == CONTRADICTED, "id"])
    ranked = carriers[np.lexsort((carriers, -votes[carriers, label]))]
    typical = [predictions.ids[i] for i in ranked if predictions.ids[i] not in doubted][:PER_STRIP]
    return {"typical": typical, **suspects}


def _row(row: Any, strips: dict[str, list[str]], thumbnails: dict[str, str]) -> dict[str, Any]:
    aliases = ", ".join(row.aliases[:5]) + (" …" if len(row.aliases) > 5 else "")
    return {"id": row.label_id, "name": row.name, "aliases": aliases, "verdict": row.verdict,
            "images": row.images, "held_out": row.held_out, "visualness": _number(row.visualness),
            "ap_gain": _number(row.ap_gain), "agreement_gain": _number(row.agreement_gain),
            "contradicted": getattr(row, CONTRADICTED), "missed": getattr(row, MISSED),
            "search": " ".join([row.name, *row.aliases]).lower(),
            "strips": {kind: [{"id": i, "src": thumbnails.get(i)} for i in ids] for kind, ids in strips.items()}}


def _number(value: float) -> str:
    return "—" if value is None or np.isnan(value) else f"{value:.2f}"
