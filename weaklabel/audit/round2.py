"""``round2``: the pipeline's second round (``[audit] apply = true``): train again on the audited
labels, evaluate as round 1 was, and say round 1 against round 2.

The shards are not rewritten: the train stage runs with ``relabel`` = the audit folder, which
leaves the non-visual labels and the contradicted pairs out of its targets (everything stays
recorded in the audit folder). Round 2 has round 1's ``[train]`` settings and starts from random
weights, so the two rounds differ only in their labels; ``[audit] warm_start = true`` starts it
from round 1's ``last.pt`` instead. It writes ``round2/train/`` (a run folder), ``round2/eval/``
(an eval folder) and its own ``manifest.json``, whose outputs hold both rounds' retrieval figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..artifacts import fingerprint_artifact, read_manifest, write_manifest
from ..eval.stage import EVAL
from ..stage import Inputs, Stage
from ..training.checkpoint import LAST, run_checkpoint
from ..training.stage import TRAIN
from .stage import audit_not_asked

TRAIN_FOLDER, EVAL_FOLDER = "train", "eval"


def _run(inputs: Inputs, out: Path, options: dict[str, Any], *, progress: bool, resume: bool = False,
         overwrite: bool = False) -> dict[str, Any]:
    shards, audit = inputs.folders["shards"], inputs.folders["audit"]
    train_options = dict(options["train"]) | {"relabel": str(audit)}
    if options["audit"]["warm_start"]:
        train_options["weights"] = str(run_checkpoint(inputs.folders["train"], "last"))
    TRAIN.run(Inputs(folders={"shards": shards}), out / TRAIN_FOLDER, train_options, progress=progress,
              resume=resume)
    EVAL.run(Inputs(folders={"train": out / TRAIN_FOLDER, "shards": shards}), out / EVAL_FOLDER,
             dict(options["eval"]), progress=progress, overwrite=True)
    rounds = {"round1": retrieval_figures(inputs.folders["eval"]), "round2": retrieval_figures(out / EVAL_FOLDER)}
    counts = read_manifest(audit, "audit")["counts"]
    return write_manifest(out, "round2", config={"warm_start": options["audit"]["warm_start"]},
                          inputs=[fingerprint_artifact(audit)],
                          counts={"labels_left_out": counts["non-visual"], "pairs_left_out": counts["contradicted"]},
                          timings={}, outputs=rounds)


def retrieval_figures(eval_folder: Path) -> dict[str, dict[str, float | None]]:
    """Per relevance of an eval folder's (only) model: Recall@1, mAP@10 and the tail tier's Recall@1."""
    metrics = json.loads((eval_folder / "metrics.json").read_text())
    model = next(iter(metrics["models"].values()))
    return {relevance: {"recall@1": scores["overall"]["recall@1"], "map@10": scores["overall"]["map@10"],
                        "tail_recall@1": scores.get("tiers", {}).get("tail", {}).get("recall@1")}
            for relevance, scores in model.get("retrieval", {}).items()}


def round2_summary(folder: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Round 1 against round 2, per relevance."""
    counts, rounds = manifest["counts"], manifest["outputs"]
    start = ", from round 1's weights" if manifest["config"]["warm_start"] else ""
    lines = [(f"trained without {counts['labels_left_out']} non-visual labels and {counts['pairs_left_out']} "
             f"contradicted pairs (shards unchanged){start}")]
    for relevance, second in rounds["round2"].items():
        first = rounds["round1"].get(relevance, {})
        lines.append(f"relevance '{relevance}', round 1 -> round 2: " + ", ".join(
            f"{name} {_three(first.get(key))} -> {_three(second.get(key))}"
            for key, name in (("recall@1", "R@1"), ("map@10", "mAP@10"), ("tail_recall@1", "tail R@1"))))
    return lines


def _three(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _not_asked(sections: Mapping[str, Mapping[str, Any]]) -> str | None:
    if not sections["audit"]["apply"]:
        return "[audit] apply = false"
    return audit_not_asked(sections)


ROUND2 = Stage("round2", "round2", upstream=("shards", "train", "eval", "audit"), reads_listings=False,
               outputs=(f"{TRAIN_FOLDER}/{LAST}", f"{EVAL_FOLDER}/metrics.json"), options=dict, check=lambda o: None,
               run=_run, summary=round2_summary, reads=("train", "eval", "audit"), not_asked=_not_asked)
