"""Every console summary accounts for every row it read: in = kept (or written) + duplicates + rejected, by reason,
with the numbers of the stage's manifest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from weaklabel.cli import main

READ = re.compile(r"^(\d+) listings? read: (\d+) (?:kept|written)(?: \(([^)]*)\) in \d+ shards?)?"
                  r"(?:, (\d+) duplicate images?)?, (\d+) rejected(?: \(([^)]*)\))?$")


@pytest.fixture(scope="module")
def listings_301(example_data, tmp_path_factory) -> Path:
    """301 rows: 299 listings, a repeated id, a row with too many fields; one image shared, one missing."""
    frame = pd.read_csv(example_data / "listings.csv", dtype=str).head(299)
    frame.loc[10, "image"] = frame.loc[11, "image"]
    frame.loc[12, "image"] = "images/missing.jpg"
    frame = pd.concat([frame, frame.iloc[[5]]], ignore_index=True)
    path = tmp_path_factory.mktemp("counts") / "listings.csv"
    broken = ",".join(["999999"] + ["x"] * (len(frame.columns) + 3))
    path.write_text(frame.to_csv(index=False, lineterminator="\n") + broken + "\n", encoding="utf-8")
    return path


def run(capsys, *argv: str) -> str:
    assert main([*argv, "-q"]) == 0
    return capsys.readouterr().out


def read_line(out: str) -> dict:
    """The numbers of a summary's 'N listings read: ...' line."""
    line = next(line for line in out.splitlines() if " read: " in line)
    match = READ.match(line)
    assert match, line
    rows_in, kept, splits, duplicates, rejected, reasons = match.groups()
    by_reason = dict(pair.rsplit(" ", 1) for pair in reasons.split(", ")) if reasons else {}
    per_split = dict(pair.rsplit(" ", 1) for pair in splits.split(", ")) if splits else {}
    return {"in": int(rows_in), "kept": int(kept), "duplicates": int(duplicates or 0), "rejected": int(rejected),
            "by_reason": {k: int(v) for k, v in by_reason.items()},
            "per_split": {k: int(v) for k, v in per_split.items()}}


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())["counts"]


def test_every_summary_adds_up_to_the_rows_read(listings_301, example_data, tmp_path, capsys):
    roles = ["--text", "title", "--tags", "tags:0.5", "--category", "category_path:0.5"]
    vocab, labeled, shards = tmp_path / "vocab", tmp_path / "labeled", tmp_path / "shards"
    outs = {"vocab": run(capsys, "vocab", str(listings_301), *roles, "--out", str(vocab), "--min-label-support", "5"),
            "assign": run(capsys, "assign", str(listings_301), "--vocab", str(vocab), "--out", str(labeled),
                          "--workers", "1")}
    for stage, folder in (("vocab", vocab), ("assign", labeled)):
        said, counts = read_line(outs[stage]), manifest(folder)
        assert said == {"in": 301, "kept": 299, "duplicates": 0, "rejected": 2, "per_split": {},
                        "by_reason": {"malformed_line": 1, "duplicate_id": 1}}, stage
        assert (said["in"], said["kept"]) == (counts["rows_in"], counts["rows_out"])
        assert said["by_reason"] == {k: n for k, n in counts["rejected"].items() if n}
    assert "over 299 listings" in outs["vocab"]
    assert "299 listings labelled (100.0%), 0 without a label" in outs["assign"]

    out = run(capsys, "shards", str(labeled), "--out", str(shards), "--images-root", str(example_data),
              "--size", "32", "--workers", "1")
    said, counts = read_line(out), manifest(shards)
    assert said["in"] == said["kept"] + said["duplicates"] + said["rejected"] == 299
    assert (said["duplicates"], said["by_reason"]) == (1, {"not_found": 1})
    assert sum(said["per_split"].values()) == said["kept"]
    assert (said["in"], said["kept"], said["duplicates"], said["rejected"]) == (
        counts["rows_in"], counts["written"], counts["duplicates"], counts["rejected_total"])
    assert said["by_reason"] == {k: n for k, n in counts["rejected"].items() if n}
