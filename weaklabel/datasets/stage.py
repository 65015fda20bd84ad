"""The shards stage as the runner and the CLI see it (:class:`weaklabel.stage.Stage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..stage import Inputs, OptionTypes, Stage, by_reason, plural, signature_options
from .writer import checked_options, write_shards


def shards_options() -> OptionTypes:
    return signature_options(write_shards, exclude={"labeled", "out"})


def _check(options: dict[str, Any]) -> None:
    checked_options(options)


def _run(inputs: Inputs, out: Path, options: dict[str, Any], *, progress: bool, resume: bool = False,
         overwrite: bool = False) -> dict[str, Any]:
    return write_shards(inputs.folders["assign"], out, progress=progress, overwrite=overwrite, **options)


def shards_line(manifest: dict[str, Any]) -> str:
    """Every listing read, accounted for: written (per split, in how many shards), duplicate images, rejected by
    reason (rows_in = written + duplicates + rejected); then the near-copies, written or dropped."""
    counts, splits = manifest["counts"], manifest["outputs"]["splits"]
    shards = sum(len(split["shards"]) for split in splits.values())
    per_split = ", ".join(f"{name} {split['samples']}" for name, split in splits.items())
    line = (f"{plural(counts['rows_in'], 'listing')} read: {counts['written']} written ({per_split}) in "
            f"{plural(shards, 'shard')}, {plural(counts['duplicates'], 'duplicate image')}, "
            f"{counts['rejected_total']} rejected{by_reason(counts['rejected'])}")
    near = counts.get("near_duplicates") or {}
    if near.get("groups"):
        kept = (f"{near['written']} written in their group's split" if near["written"]
                else f"{near['dropped']} dropped, among the duplicates")
        line += (f"; {plural(near['written'] + near['dropped'], 'near-duplicate image')} in "
                 f"{plural(near['groups'], 'group')} ({kept})")
    return line


def shards_summary(folder: Path, manifest: dict[str, Any]) -> list[str]:
    outputs = manifest["outputs"]
    lines = []
    if outputs.get("run") == "resumed":
        lines.append(f"resumed an interrupted run: kept {outputs['partitions_resumed']} of {outputs['partitions']} "
                     f"partitions and {outputs['shards_resumed']} shards")
    elif outputs.get("run") == "restarted":
        lines.append("options or input changed since the interrupted run: started over")
    return [*lines, shards_line(manifest)]


SHARDS = Stage("shards", "shards", upstream=("assign",), reads_listings=False, outputs=("_info.json",),
               options=shards_options, check=_check, run=_run,
               summary=shards_summary, execution=("fetch_threads", "workers", "scheduler"))
