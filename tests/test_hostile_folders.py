"""Hostile runs and folders: concurrent writers, foreign files in --out, a write killed midway, a
copied folder, a full disk, and files that are not checkpoints. Each case stops with one line
(or passes) and leaves the user's files as they were."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from conftest import EXAMPLE_ROLES, one_line_error

from weaklabel.artifacts import read_manifest
from weaklabel.cli import main
from weaklabel.datasets import partitions, verify_shards
from weaklabel.folders import LOCK
from weaklabel.training import checkpoint as checkpoint_module

SHARDS = ["--size", "32", "--workers", "1", "--max-samples", "100", "-q"]
TRAIN = ["--model", "resnet10t", "--image-size", "32", "--embed-dim", "16", "--batch-size", "8", "--workers", "0",
         "--shuffle-buffer", "20", "--steps", "1", "-q"]
HOLD_LOCK = """
import sys, time
from weaklabel.folders import Outputs, output_folder
with output_folder(sys.argv[1], Outputs("shards", frozenset())):
    print("locked", flush=True)
    time.sleep(120)
"""


def shards_command(labeled: Path, images: Path, out: Path) -> list[str]:
    return ["shards", str(labeled), "--out", str(out), "--images-root", str(images), *SHARDS]


def cli(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "weaklabel.cli", *argv], capture_output=True, text=True,
                          timeout=timeout, check=False)


def check_rows(out: Path, labeled: Path, rows_accounted) -> None:
    """Every labeled row is in the finished shards folder's counts: written, a duplicate or rejected."""
    counts = read_manifest(out, "shards")["counts"]
    parts = (labeled / "parts").glob("part-*.parquet")
    assert counts["rows_in"] == sum(pq.ParquetFile(part).metadata.num_rows for part in parts)
    rows_accounted(counts["rows_in"], counts["written"], counts["duplicates"], counts["rejected_total"])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


# ------------------------------------------------------------------------------------------------
# 1. two runs into one --out
# ------------------------------------------------------------------------------------------------

def test_a_second_run_into_a_folder_being_written_is_one_line_and_a_killed_holder_blocks_nothing(
        example_labeled: Path, example_data: Path, tmp_path: Path, rows_accounted):
    out = tmp_path / "shards"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = cli(shards_command(example_labeled, example_data, out))
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 1 and len(lines) == 1, second.stderr
        assert lines[0] == (f"error: {out} is being written by another weaklabel process (pid {holder.pid}); "
                            "wait for it or choose another --out")
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # a stale lock file stays behind
        holder.wait()
    assert (out / LOCK).exists()
    assert main(shards_command(example_labeled, example_data, out)) == 0
    assert verify_shards(out) == [] and not (out / LOCK).exists()
    check_rows(out, example_labeled, rows_accounted)


def test_two_shards_runs_at_once_never_leave_a_broken_folder(example_labeled: Path, example_data: Path,
                                                             tmp_path: Path, rows_accounted):
    out = tmp_path / "shards"
    command = [sys.executable, "-m", "weaklabel.cli", *shards_command(example_labeled, example_data, out)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=180), run.communicate()[1]) for run in runs]
    assert 0 in [code for code, _ in results]
    for code, err in results:
        lines = err.strip().splitlines()
        assert code == 0 or (code == 1 and len(lines) == 1 and "being written by another weaklabel process" in err), err
    assert verify_shards(out) == []
    check_rows(out, example_labeled, rows_accounted)


# ------------------------------------------------------------------------------------------------
# 2. files the user put in --out
# ------------------------------------------------------------------------------------------------

def test_shards_refuse_foreign_files_and_never_delete_them(example_labeled: Path, example_data: Path,
                                                           tmp_path: Path, capsys):
    out = tmp_path / "shards"
    out.mkdir()
    (out / "my_backup.tar").write_bytes(b"the user's backup")
    (out / "labels.parquet").write_bytes(b"the user's table")
    before = snapshot(out)
    error = one_line_error(shards_command(example_labeled, example_data, out), capsys)
    assert "did not write (labels.parquet, my_backup.tar)" in error and "--overwrite" in error
    assert snapshot(out) == before
    assert main([*shards_command(example_labeled, example_data, out), "--overwrite"]) == 0
    assert (out / "my_backup.tar").read_bytes() == b"the user's backup"  # kept; labels.parquet is one of ours
    one_line_error(shards_command(example_labeled, example_data, out), capsys)  # the backup is still foreign
    assert (out / "my_backup.tar").read_bytes() == b"the user's backup"


@pytest.mark.parametrize("stage", ["vocab", "assign", "train", "eval"])
def test_every_stage_refuses_foreign_files(stage: str, example_data: Path, example_vocab: Path,
                                           example_shards: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    listings = str(example_data / "listings.csv")
    argv = {"vocab": ["vocab", listings, "--text", "title"],
            "assign": ["assign", listings, "--vocab", str(example_vocab)],
            "train": ["train", str(example_shards), *TRAIN],
            "eval": ["eval", "--embeddings", str(tmp_path / "e.parquet"), "--shards", str(example_shards)]}[stage]
    error = one_line_error([*argv, "--out", str(out)], capsys)
    assert f"holds files 'weaklabel {stage}' did not write (notes.txt)" in error
    assert snapshot(out) == {"notes.txt": b"mine"}


FINISHED = "holds the finished output of an earlier 'weaklabel {stage}' run (manifest.json, written "


@pytest.mark.parametrize("stage", ["vocab", "assign", "shards", "eval"])
def test_a_stage_refuses_to_replace_its_finished_output_without_overwrite(stage: str, example_data: Path,
                                                                          example_vocab: Path, example_labeled: Path,
                                                                          example_shards: Path, tmp_path: Path,
                                                                          capsys):
    """Other stages may have been made from it (the demo's train/ and eval/ from its shards/)."""
    out = tmp_path / stage
    made = {"vocab": example_vocab, "assign": example_labeled, "shards": example_shards}
    if stage in made:
        shutil.copytree(made[stage], out)
    else:
        out.mkdir()
        (out / "manifest.json").write_text(json.dumps({"stage": "eval", "created": "2026-12-02T10:31:00+0000"}))
        (out / "metrics.json").write_text("{}")
    listings = str(example_data / "listings.csv")
    argv = {"vocab": ["vocab", listings, "--text", "title", "--out", str(out)],
            "assign": ["assign", listings, "--vocab", str(example_vocab), "--out", str(out)],
            "shards": shards_command(example_labeled, example_data, out),
            "eval": ["eval", "--embeddings", str(tmp_path / "e.parquet"), "--shards", str(example_shards),
                     "--out", str(out)]}[stage]
    before = snapshot(out)
    error = one_line_error(argv, capsys)
    assert error.startswith(f"error: {out} {FINISHED.format(stage=stage)}")
    assert error.endswith("); pass --overwrite to replace it, or choose another --out")
    assert snapshot(out) == before and not (out / LOCK).exists()


def test_shards_with_overwrite_replace_the_finished_shards(example_labeled: Path, example_data: Path,
                                                           tmp_path: Path, capsys):
    out = tmp_path / "shards"
    assert main(shards_command(example_labeled, example_data, out)) == 0
    first = read_manifest(out, "shards")
    one_line_error([*shards_command(example_labeled, example_data, out), "--size", "24"], capsys)
    assert read_manifest(out, "shards") == first
    assert main([*shards_command(example_labeled, example_data, out), "--size", "24", "--overwrite"]) == 0
    assert read_manifest(out, "shards")["config"]["size"] == 24 and verify_shards(out) == []


def test_a_rerun_replaces_only_its_own_files(example_data: Path, example_vocab: Path, tmp_path: Path):
    from weaklabel.labeling import assign_labels

    out = tmp_path / "labeled"
    assign_labels(example_data / "listings.csv", example_vocab, out, progress=False, rows_per_part=200)
    (out / "parts" / "part-99999-0000.parquet").write_bytes(b"a stale part of an earlier run")
    (out / "notes.txt").write_text("mine")
    assign_labels(example_data / "listings.csv", example_vocab, out, progress=False, rows_per_part=400, overwrite=True)
    assert sorted(p.name for p in (out / "parts").glob("*")) == ["part-00000-0000.parquet", "part-00000-0001.parquet"]
    assert (out / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------------------
# 3. a vocab run that dies while writing
# ------------------------------------------------------------------------------------------------

def test_vocab_failing_midway_leaves_no_manifest_and_assign_refuses_it(example_data: Path, example_vocab: Path,
                                                                       tmp_path: Path, monkeypatch, capsys):
    import weaklabel.labeling.vocabulary as vocabulary_module
    from weaklabel.labeling import build_vocabulary

    vocab = tmp_path / "vocab"
    shutil.copytree(example_vocab, vocab)
    written = []
    real_write = vocabulary_module.write_parquet

    def write_then_die(frame, path, schema=None):
        if written:
            raise RuntimeError("killed")  # after the first new table
        written.append(path)
        real_write(frame, path, schema)

    monkeypatch.setattr(vocabulary_module, "write_parquet", write_then_die)
    with pytest.raises(RuntimeError, match="killed"):  # replacing a finished vocabulary
        build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, vocab, progress=False, min_label_support=5,
                         overwrite=True)
    monkeypatch.undo()
    assert written and not (vocab / "manifest.json").exists()
    assert json.loads((vocab / LOCK).read_text())["stage"] == "vocab"
    error = one_line_error(["assign", str(example_data / "listings.csv"), "--vocab", str(vocab),
                            "--out", str(tmp_path / "labeled")], capsys)
    assert f"{vocab} is not a weaklabel artifact: manifest.json is missing" in error
    build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, vocab, progress=False, min_label_support=5)
    assert read_manifest(vocab, "vocab") and not (vocab / LOCK).exists()  # the rerun needs no --overwrite
    assert (vocab / "labels.parquet").read_bytes() == (example_vocab / "labels.parquet").read_bytes()


# ------------------------------------------------------------------------------------------------
# 4. a copied shards folder
# ------------------------------------------------------------------------------------------------

def test_verify_passes_on_a_copied_folder(example_shards: Path, tmp_path: Path, capsys):
    copy = tmp_path / "elsewhere" / "copied-shards"
    shutil.copytree(example_shards, copy)
    assert verify_shards(copy) == []
    assert main(["verify", str(copy), "--workers", "1", "-q"]) == 0


# ------------------------------------------------------------------------------------------------
# 5. a full disk
# ------------------------------------------------------------------------------------------------

def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_writing_a_shard_is_one_line_and_leaves_no_tmp(example_labeled: Path, example_data: Path,
                                                                       tmp_path: Path, monkeypatch, capsys,
                                                                       rows_accounted):
    out = tmp_path / "shards"
    real_write_tar = partitions.write_tar

    def write_part_then_fill(handle, samples):
        handle.write(b"\0" * 4096)
        no_space()

    monkeypatch.setattr(partitions, "write_tar", write_part_then_fill)
    error = one_line_error(shards_command(example_labeled, example_data, out), capsys)
    assert error.startswith(f"error: no space left on device writing {out / 'train-000000.tar.tmp'}: ")
    assert " MB free" in error and not list(out.rglob("*.tmp"))
    monkeypatch.setattr(partitions, "write_tar", real_write_tar)
    assert main(shards_command(example_labeled, example_data, out)) == 0  # the rerun resumes
    assert verify_shards(out) == [] and read_manifest(out)["outputs"]["run"] == "resumed"
    check_rows(out, example_labeled, rows_accounted)


def test_disk_full_while_saving_a_checkpoint_is_one_line_and_leaves_no_tmp(example_shards: Path, tmp_path: Path,
                                                                           monkeypatch, capsys):
    out = tmp_path / "run"
    real_save = torch.save

    def save_part_then_fill(obj, handle):
        handle.write(b"\0" * 4096)
        no_space()

    monkeypatch.setattr(checkpoint_module.torch, "save", save_part_then_fill)
    try:
        error = one_line_error(["train", str(example_shards), "--out", str(out), *TRAIN], capsys)
    finally:
        monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    assert error.startswith(f"error: no space left on device writing {out}") and " MB free" in error
    assert not list(out.rglob("*.tmp")) and not (out / "last.pt").exists()


# ------------------------------------------------------------------------------------------------
# 6. files that are not checkpoints
# ------------------------------------------------------------------------------------------------

WHY = {"foreign dict": "it lacks model, config", "text": "not a file written by torch.save",
       "truncated": "it is truncated", "malicious pickle": "Python objects (posix.system)",
       "malicious torch file": "Python objects (posix.system)"}


class RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def hostile_checkpoint(kind: str, path: Path, marker: Path) -> None:
    if kind == "foreign dict":
        torch.save({"a": 1}, path)
    elif kind == "text":
        path.write_text("not a checkpoint\n")
    elif kind == "truncated":
        checkpoint_module.save_checkpoint(path, {"model": {"w": torch.zeros(4096)}, "config": {}})
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "malicious pickle":
        path.write_bytes(pickle.dumps(RunsCode(marker), protocol=2))  # the protocol torch.load expects
    elif kind == "malicious torch file":
        torch.save({"model": RunsCode(marker), "config": {}}, path)


@pytest.mark.parametrize("command", ["eval", "embed", "export", "train --resume"])
@pytest.mark.parametrize("kind", ["foreign dict", "text", "truncated", "malicious pickle", "malicious torch file"])
def test_a_file_that_is_not_a_checkpoint_is_one_line_and_never_runs_code(kind: str, command: str,
                                                                          example_shards: Path, tmp_path: Path,
                                                                          capsys):
    run = tmp_path / "run"
    run.mkdir()
    path = run / "last.pt"
    marker = tmp_path / "code-ran"
    hostile_checkpoint(kind, path, marker)
    (run / "manifest.json").write_text(json.dumps({"stage": "train"}))  # a run folder of weaklabel train
    argv = {"eval": ["eval", str(path), "--shards", str(example_shards), "--out", str(tmp_path / "eval")],
            "embed": ["embed", str(path), str(example_shards), "--out", str(tmp_path / "e.parquet")],
            "export": ["export", str(path), "--out", str(tmp_path / "model.onnx")],
            "train --resume": ["train", str(example_shards), "--out", str(run), "--resume", *TRAIN]}[command]
    started = time.monotonic()
    error = one_line_error(argv, capsys)
    assert error.startswith(f"error: {path} is not a weaklabel checkpoint: ") and WHY[kind] in error, error
    assert "weights_only" not in error and not marker.exists()
    assert time.monotonic() - started < 60


def test_the_runner_holds_a_stage_folders_lock_before_touching_it(tmp_path: Path):
    from weaklabel.folders import Outputs, folder_lock, output_folder

    folder = tmp_path / "vocab"
    with folder_lock(folder):
        holder = subprocess.run([sys.executable, "-c", (
            "import sys; from weaklabel.folders import folder_lock\n"
            f"try:\n    with folder_lock({str(folder)!r}): pass\n"
            "except ValueError as error:\n    print(error); sys.exit(3)")], check=False, capture_output=True, text=True,
            timeout=60)
        assert holder.returncode == 3 and "being written by another weaklabel process" in holder.stdout
        with output_folder(folder, Outputs("vocab", frozenset({"labels.parquet"}))) as inner:  # reentrant
            (inner.path / "labels.parquet").write_bytes(b"x")
        assert (folder / LOCK).exists()  # the inner end did not release the outer lock
    assert json.loads((folder / LOCK).read_text())["stage"] == "vocab"  # unfinished (no manifest): the record stays
