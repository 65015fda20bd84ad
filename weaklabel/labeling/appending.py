"""``assign --append``: label only the listings a finished ``assign`` folder does not hold yet
(a folder without a finished run is labelled whole).

A file the folder's manifest lists with the same size and hash is skipped whole; every other file
is read, and its listings whose id the folder's parts already hold are skipped (counted as
``already_labelled``). The new listings are labelled into new parts, numbered after the existing
ones, in a staging folder; then the manifest is removed, the new parts are renamed into ``parts/``,
``rejected.parquet`` gains the new rejects and the manifest is written again, with the counts of
every run added up. A run that fails before the manifest is removed leaves the folder as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..artifacts import LABELED_PARTS, MANIFEST, fingerprint_artifact, labeled_parts, read_manifest
from ..listings.rejects import sum_counts

STAGING = f"{LABELED_PARTS}.tmp"
HOW_IT_RAN = ("rows_per_part", "batch_size", "device")  # settings that change no label
_PART_FILE = re.compile(r"part-(\d+)-\d+\.parquet")


class AppendError(ValueError):
    """The folder cannot take an append: the message says why and what to run instead."""


@dataclass(frozen=True)
class EarlierRun:
    """What a finished ``assign`` folder holds, read before appending to it."""

    manifest: dict[str, Any]
    parts: list[Path]

    @classmethod
    def read(cls, out: Path, config: dict[str, Any], vocab: str | Path) -> EarlierRun | None:
        """The finished run in ``out``, None when there is none (everything is then labelled); an
        :class:`AppendError` when it was made with other settings or another vocabulary."""
        if not (out / MANIFEST).is_file():
            return None
        manifest = read_manifest(out, "assign")
        changed = sorted(k for k in config.keys() | manifest["config"].keys()
                         if k not in HOW_IT_RAN and config.get(k) != manifest["config"].get(k))
        if changed:
            raise AppendError(f"--append: {out} was labelled with other settings ({', '.join(changed)}): give the "
                              "same ones, or relabel everything with --overwrite instead of --append")
        hashes = {i.get("manifest_sha256") for i in manifest["inputs"]}
        if fingerprint_artifact(vocab)["manifest_sha256"] not in hashes:
            raise AppendError(f"--append: the vocabulary {vocab} changed since {out} was labelled, and one folder "
                              "must not mix two vocabularies: relabel everything with --overwrite instead")
        return cls(manifest, labeled_parts(out))

    def new_files(self, fingerprints: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The input files not read by an earlier run in the same state (same path, size and hash)."""
        known = {(i["path"], i.get("bytes"), i.get("sha256")) for i in self.manifest["inputs"] if "sha256" in i}
        return [f for f in fingerprints if (f["path"], f["bytes"], f["sha256"]) not in known]

    def file_inputs(self) -> list[dict[str, Any]]:
        return [i for i in self.manifest["inputs"] if "sha256" in i]

    @property
    def next_index(self) -> int:
        """The file number the first new part takes: after every existing part."""
        numbers = [int(m.group(1)) for p in self.parts if (m := _PART_FILE.fullmatch(p.name))]
        return max(numbers, default=-1) + 1

    def counts_with(self, new: dict[str, Any]) -> dict[str, Any]:
        """The listing counts of every run so far, this one's ``new`` added."""
        old = self.manifest["counts"]
        total = sum_counts([old, new])
        return total | {"already_labelled": old.get("already_labelled", 0) + new["already_labelled"]}

    @staticmethod
    def rejected_with(out: Path, new: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([pd.read_parquet(out / "rejected.parquet"), new], ignore_index=True)
