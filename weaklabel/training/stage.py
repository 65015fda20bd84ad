"""The train stage as the runner and the CLI see it (:class:`weaklabel.stage.Stage`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..artifacts import read_manifest
from ..stage import Inputs, OptionTypes, Stage, dataclass_options
from .checkpoint import LAST
from .loop import METRICS, TrainConfig, train
from .models import read_weights

CURVE_POINTS = 6


def train_options() -> OptionTypes:
    return dataclass_options(TrainConfig, exclude={"stop_after_steps", "relabel"})


def _check(options: dict[str, Any]) -> None:
    TrainConfig(**options)
    if options.get("weights"):
        try:
            read_weights(options["weights"])
        except ValueError as error:
            raise ValueError(f"weights: {error}") from None


def _files(options: dict[str, Any]) -> list[str]:
    return [options["weights"]] if options.get("weights") else []


def _run(inputs: Inputs, out: Path, options: dict[str, Any], *, progress: bool, resume: bool = False,
         overwrite: bool = False) -> dict[str, Any]:
    """Continue an interrupted run (``resume``) from its ``last.pt``; else start the run over."""
    resume = resume and (out / LAST).is_file()
    train(inputs.folders["shards"], out, resume=resume, overwrite=overwrite or not resume, progress=progress,
          **options)
    return read_manifest(out, "train")


def train_summary(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """The backbone, the steps, the training loss at a few evenly spaced logged steps, the last val mAP."""
    config, result = manifest["config"], manifest["outputs"].get("metrics", {})
    path = folder / METRICS
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    logged = [row for row in rows if row.get("kind") == "train"]
    shown = min(CURVE_POINTS, len(logged))
    picked = [logged[round(i * (len(logged) - 1) / max(shown - 1, 1))] for i in range(shown)]
    curve = ", ".join(f"{row['step']}: {row['loss']:.3g}" for row in picked)
    return [f"{config['model']} at {config['image_size']} px, {result.get('step', 0)} steps"
            + (f"; loss by step {curve}" if curve else "")
            + (f"; val mAP {result['val_map']:.3f}" if isinstance(result.get("val_map"), float) else "")]


TRAIN = Stage("train", "train", upstream=("shards",), reads_listings=False, outputs=(LAST,), options=train_options,
              check=_check, run=_run, summary=train_summary, files=_files)
