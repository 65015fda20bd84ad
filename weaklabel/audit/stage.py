"""``audit``: the audit stage (``weaklabel audit``): ask a trained encoder's view of the images which
labels can be seen and which listing-label pairs are wrong.

Writes to its folder ``labels_audit.parquet`` and ``pairs.parquet`` (see :mod:`weaklabel.corrections`),
``overrides.toml`` (a *suggestion*: delete the non-visual labels; never applied by weaklabel),
``report.html`` (per label: its figures, its most typical images, its contradicted and its missed
ones side by side) and ``manifest.json``. How the figures are made: :mod:`.scores`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..artifacts import Timer, fingerprint_artifact, fingerprint_files, read_manifest, write_manifest, write_text
from ..corrections import CONTRADICTED, LABELS_AUDIT, MISSED, NON_VISUAL, PAIRS, UNJUDGED, VISUAL
from ..datasets.format import parse_splits
from ..datasets.loader import ShardInfo
from ..folders import Outputs, output_folder
from ..stage import Inputs, OptionTypes, Stage, plural, shown_path, signature_options
from ..training.checkpoint import run_checkpoint
from .predict import TRAIN_SPLIT, predict
from .report import write_report
from .scores import AuditParams, given_matrix, label_probabilities, label_visualness, neighbour_votes, suspect_pairs

SUGGESTED_OVERRIDES = "overrides.toml"
REPORT = "report.html"
OUTPUTS = Outputs("audit", frozenset({LABELS_AUDIT, PAIRS, SUGGESTED_OVERRIDES, REPORT}))


def audit(checkpoint: str | Path, shards: str | Path, out: str | Path, *, vocab: str | Path | None = None,
          neighbours: int = 20, min_visualness: float = 0.1, min_held_out: int = 5, batch_size: int = 64,
          device: str = "auto", workers: int | None = None, progress: bool = False,
          overwrite: bool = False) -> dict[str, Any]:
    """Audit the weak labels of ``shards`` with the encoder of ``checkpoint``; write ``out``; return its manifest.

    ``vocab``: the vocabulary folder, for the labels' aliases in the report (its labels must be the
    shards'); the shards' own copy of the labels is used without it. See :mod:`.scores` for
    ``neighbours``, ``min_visualness`` and ``min_held_out``.
    """
    params = AuditParams(neighbours, min_visualness, min_held_out)
    checkpoint, shards = Path(checkpoint), Path(shards)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    info = ShardInfo.load(shards)
    if not any(count for split, count in info.num_samples.items() if split != TRAIN_SPLIT):
        raise ValueError(f"{shards} has no split besides train: the audit judges labels on images the encoder "
                         "did not learn from; write the shards with a val or test split")
    labels = _label_table(info, vocab)
    with output_folder(out, OUTPUTS, overwrite=overwrite) as folder:
        folder.clear()
        timer = Timer()
        with timer("predict"):
            predictions, config = predict(checkpoint, shards, batch_size=batch_size, device=device, workers=workers,
                                          progress=progress)
        _check_vocabulary(config["label_names"], info.label_names, checkpoint, shards)
        with timer("visualness"):
            given = given_matrix(predictions, len(info.label_names))
            votes = neighbour_votes(predictions.embeddings, given, params.neighbours)
            verdicts = labels.merge(label_visualness(predictions, given, votes, params), on="label_id")
        with timer("suspects"):
            judged = verdicts.loc[verdicts["verdict"] != NON_VISUAL, "label_id"].to_numpy()
            pairs = suspect_pairs(predictions, given, label_probabilities(predictions, votes), judged)
            pairs.insert(3, "name", verdicts["name"].to_numpy()[pairs["label_id"].to_numpy()])
            kinds = pairs.groupby(["label_id", "kind"]).size().unstack(fill_value=0)
            for kind in (CONTRADICTED, MISSED):
                counted = kinds[kind] if kind in kinds else pd.Series(dtype=np.int64)
                verdicts[kind] = verdicts["label_id"].map(counted).fillna(0).astype(np.int64)
        out = folder.path
        with timer("write"):
            verdicts.drop(columns=["aliases"]).to_parquet(out / LABELS_AUDIT, index=False)
            pairs.to_parquet(out / PAIRS, index=False)
            write_text(out / SUGGESTED_OVERRIDES, suggested_overrides(verdicts, params, checkpoint))
            write_report(out / REPORT, verdicts, pairs, predictions, votes, given, shards, params)
        counts = _counts(predictions, verdicts, pairs)
        return write_manifest(out, "audit", config={"checkpoint": str(checkpoint), "shards": str(shards),
                                                    "vocab": None if vocab is None else str(vocab), **asdict(params)},
                              inputs=[*fingerprint_files([checkpoint]), fingerprint_artifact(shards)],
                              counts=counts, timings=timer.seconds)


def _label_table(info: ShardInfo, vocab: str | Path | None) -> pd.DataFrame:
    """label_id, name, aliases: the vocabulary's when given (checked against the shards'), else the shards' names."""
    names = pd.DataFrame({"label_id": np.arange(len(info.label_names), dtype=np.int32), "name": info.label_names})
    if vocab is None:
        return names.assign(aliases=[[] for _ in range(len(names))])
    path = Path(vocab) / "labels.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; give the vocabulary folder the shards were built with")
    table = pd.read_parquet(path, columns=["label_id", "name", "aliases"]).sort_values("label_id")
    _check_vocabulary(table["name"].tolist(), info.label_names, Path(vocab), info.folder)
    return names.assign(aliases=[list(a) for a in table["aliases"]])


def _check_vocabulary(theirs: list[str], shard_names: list[str], source: Path, shards: Path) -> None:
    if list(theirs) != list(shard_names):
        raise ValueError(f"{source} has {len(theirs)} labels and {shards} has {len(shard_names)}, or their names "
                         "differ: audit with the checkpoint and vocabulary the shards were built from")


def suggested_overrides(verdicts: pd.DataFrame, params: AuditParams, checkpoint: Path) -> str:
    """An overrides file deleting the non-visual labels, worst first, each with its figures."""
    flagged = verdicts[verdicts["verdict"] == NON_VISUAL].sort_values(["visualness", "label_id"])
    lines = [f"# Suggested by 'weaklabel audit' from {checkpoint.as_posix()}. NOT applied: review it, then",
             "# give it to 'weaklabel vocab --overrides' (or [vocab] overrides) to rebuild without these labels.",
             (f"# Non-visual: visualness below {params.min_visualness} over at least {params.min_held_out} "
              "held-out images (see labels_audit.parquet)."), ""]
    if flagged.empty:
        return "\n".join([*lines, "delete = []", ""])
    entries = [f"    {json.dumps(row.name, ensure_ascii=False)},  # visualness {row.visualness:.2f}, "
               f"{plural(int(row.held_out), 'held-out image')}" for row in flagged.itertuples()]
    return "\n".join([*lines, "delete = [", *entries, "]", ""])


def _counts(predictions: Any, verdicts: pd.DataFrame, pairs: pd.DataFrame) -> dict[str, Any]:
    verdict_counts = verdicts["verdict"].value_counts()
    kind_counts = pairs["kind"].value_counts()
    return {"images": len(predictions.ids), "held_out": int(predictions.held_out.sum()), "labels": len(verdicts),
            **{verdict: int(verdict_counts.get(verdict, 0)) for verdict in (VISUAL, NON_VISUAL, UNJUDGED)},
            **{kind: int(kind_counts.get(kind, 0)) for kind in (CONTRADICTED, MISSED)},
            "listings_with_contradicted": int(pairs.loc[pairs["kind"] == CONTRADICTED, "id"].nunique())}


# ---------------------------------------------------------------------------------------------
# The stage as the runner and the CLI see it (weaklabel.stage.Stage)
# ---------------------------------------------------------------------------------------------

ROUND2_KEYS: OptionTypes = {"apply": (False, bool), "warm_start": (False, bool)}  # read by the round2 stage


def audit_options() -> OptionTypes:
    return (signature_options(audit, exclude={"checkpoint", "shards", "out", "vocab"})
            | {"checkpoint": ("last", str)} | ROUND2_KEYS)


def _check(options: Mapping[str, Any]) -> None:
    AuditParams(options["neighbours"], options["min_visualness"], options["min_held_out"])
    if options["checkpoint"] not in ("best", "last"):
        raise ValueError(f"checkpoint must be \"best\" or \"last\", not {options['checkpoint']!r}")


def audit_not_asked(sections: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The audit judges labels on the images the encoder did not learn from: it needs a split besides train."""
    if set(parse_splits(sections["shards"]["splits"])) <= {"train"}:
        return "[shards] splits has no split besides train to judge the labels on"
    return None


def _run(inputs: Inputs, out: Path, options: dict[str, Any], *, progress: bool, resume: bool = False,
         overwrite: bool = False) -> dict[str, Any]:
    params = {key: value for key, value in options.items() if key not in {"checkpoint", *ROUND2_KEYS}}
    audit(run_checkpoint(inputs.folders["train"], options["checkpoint"]), inputs.folders["shards"], out,
          vocab=inputs.folders["vocab"], progress=progress, overwrite=overwrite, **params)
    return read_manifest(out, "audit")


def audit_summary(folder: Path, manifest: Mapping[str, Any]) -> list[str]:
    """The verdicts, the suspect pairs and the suggested overrides."""
    c = manifest["counts"]
    return [(f"{plural(c['labels'], 'label')} judged on {plural(c['held_out'], 'held-out image')}: "
             f"{c[VISUAL]} visual, {c[NON_VISUAL]} non-visual, {c[UNJUDGED]} unjudged (too few held-out images)"),
            (f"{plural(c[CONTRADICTED] + c[MISSED], 'suspect pair')} over {plural(c['images'], 'image')}: "
             f"{c[CONTRADICTED]} contradicted, {c[MISSED]} missed; suggested overrides (not applied): "
             f"{shown_path(folder / SUGGESTED_OVERRIDES)}")]


AUDIT = Stage("audit", "audit", upstream=("vocab", "shards", "train"), reads_listings=False,
              outputs=(LABELS_AUDIT, PAIRS, REPORT), options=audit_options, check=_check, run=_run,
              summary=audit_summary, execution=("batch_size", "device", "workers", *ROUND2_KEYS),
              not_asked=audit_not_asked)
