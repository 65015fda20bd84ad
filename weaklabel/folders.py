"""Output folders: one writer at a time, and no file a stage did not write is deleted.

Every stage that writes a folder (vocab, assign, shards, train, eval, audit) runs inside
:func:`output_folder`, which

- **locks** the folder: a POSIX lock on ``.weaklabel.lock``, held for the whole run. The operating
  system drops it when the process dies, so a killed run never blocks the next one, and forked
  Dask workers do not inherit it. A second process gets one line naming the holder's pid. The
  lock is per process and reentrant (:func:`folder_lock`): ``weaklabel run`` holds it from before
  it touches a stage's folder until the stage has finished, and the stage's own
  ``output_folder`` inside that reuses it. (It does not keep apart two threads of one process.)
- **refuses a finished artifact** of the stage unless ``overwrite``: a folder with the stage's
  manifest holds the result of an earlier run, which another stage or a person may be reading, so
  a new run replaces it only when asked. An unfinished run (no manifest: ``shards``' work folder,
  the lock file naming the stage) is resumed or replaced without a flag, and so is a stage that
  ``weaklabel run`` reruns: the runner removes the manifest of a stale stage before running it.
  ``train`` keeps its own rule (``--resume`` continues a run, ``--overwrite`` starts over).
- **refuses foreign files** unless ``overwrite``: a stage owns only the names it writes
  (:class:`Outputs`), and only in a folder it wrote before (its manifest, its work folder, the lock
  file of an unfinished run of it, or ``weaklabel run``'s pending record say so). Any other file
  is the user's. :meth:`OutputFolder.clear` removes the stage's own files and nothing else, so
  files the stage did not write are never deleted; ``overwrite`` only lets it write beside them
  (replacing a file that has one of its names).
- **reports a full disk** in one line naming the path and the free space, after removing the
  stage's temporary files.

A folder is unfinished from :meth:`OutputFolder.clear` (or :meth:`OutputFolder.remove_manifest`),
which removes the manifest first, until the stage writes its new manifest last: a reader sees the
old artifact or the new one, or no manifest at all (and refuses the folder), never a mix. An
unfinished folder keeps its lock file, which names the stage, so that a rerun knows the files.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import MANIFEST

LOCK = ".weaklabel.lock"
PIPELINE_PENDING = ".pipeline-pending.json"  # written by ``weaklabel run`` into the folder of the stage it runs
BOOKKEEPING = (LOCK, PIPELINE_PENDING)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class OutputError(ValueError):
    """The output folder cannot be written: the message says why and what to do."""


@dataclass(frozen=True)
class Outputs:
    """What a stage writes into its folder: fixed names, name patterns (regular expressions) and
    subfolders it alone writes; ``markers`` are entries whose presence says the stage wrote the
    folder (a work folder). A temporary ``NAME.tmp`` belongs to the stage when ``NAME`` does.
    ``refuse_finished``: a finished artifact of the stage is replaced only with ``overwrite`` (off
    for a stage that decides itself, as ``train`` does with ``resume``)."""

    stage: str
    names: frozenset[str]
    patterns: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()
    refuse_finished: bool = True

    def owns(self, name: str) -> bool:
        name = name.removesuffix(".tmp")
        return (name == MANIFEST or name in self.names or name in self.folders
                or any(re.fullmatch(pattern, name) for pattern in self.patterns))


@dataclass(frozen=True)
class OutputFolder:
    """A locked output folder; ``ours``: it holds an earlier (maybe unfinished) run of the stage."""

    path: Path
    outputs: Outputs
    ours: bool

    def remove_manifest(self) -> None:
        """From here until the stage writes its manifest, readers refuse the folder."""
        (self.path / MANIFEST).unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove what an earlier run of the stage wrote (the manifest first), and nothing else."""
        self.remove_manifest()
        if not self.ours:
            return
        for entry in sorted(self.path.iterdir()):
            if entry.name in BOOKKEEPING or not self.outputs.owns(entry.name):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


@contextmanager
def output_folder(path: str | Path, outputs: Outputs, *, overwrite: bool = False) -> Iterator[OutputFolder]:
    """Lock ``path`` (created if missing) for a run of ``outputs.stage``, refuse a finished artifact
    of it and foreign files unless ``overwrite``, and turn a full disk into one line (see the module
    docstring)."""
    with folder_lock(path) as (folder, handle):
        ours = _is_ours(folder, outputs, _read_record(handle).get("stage"))
        if not overwrite:
            if outputs.refuse_finished:
                _refuse_finished(folder, outputs)
            _refuse_foreign(folder, outputs, ours)
        _write_record(handle, outputs.stage)
        with _disk_full_reported(folder, outputs):
            yield OutputFolder(folder, outputs, ours)


_HELD: dict[Path, int] = {}  # folder -> this process's locked descriptor of its lock file


@contextmanager
def folder_lock(path: str | Path) -> Iterator[tuple[Path, int]]:
    """``(folder, lock descriptor)``: ``path`` (created if missing) locked by this process until the
    outermost ``with`` of it ends; an inner one reuses the lock."""
    folder = _make_folder(Path(path))
    key = folder.resolve()
    if key in _HELD:
        yield folder, _HELD[key]
        return
    handle = _HELD[key] = _lock(folder)
    try:
        yield folder, handle
    finally:
        del _HELD[key]
        _release(folder, handle)


def _make_folder(folder: Path) -> Path:
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file, not a folder; choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except PermissionError as error:
        raise OutputError(f"cannot create {folder}: permission denied; choose another --out") from error
    return folder


# ------------------------------------------------------------------------------------------------
# the lock
# ------------------------------------------------------------------------------------------------

def _lock(folder: Path) -> int:
    """An open descriptor of ``folder/.weaklabel.lock``, locked by this process."""
    path = folder / LOCK
    while True:
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError as error:
            raise OutputError(f"cannot write to {folder}: permission denied; choose another --out") from error
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_record(handle).get("pid", "unknown")
            os.close(handle)
            if error.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            raise OutputError(f"{folder} is being written by another weaklabel process (pid {holder}); "
                              "wait for it or choose another --out") from None
        if _still_there(handle, path):
            return handle
        os.close(handle)  # the holder removed the file while we opened it: lock the new one


def _still_there(handle: int, path: Path) -> bool:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(handle)
    return (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)


def _read_record(handle: int) -> dict[str, Any]:
    try:
        record = json.loads(os.pread(handle, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _write_record(handle: int, stage: str) -> None:
    os.ftruncate(handle, 0)
    os.pwrite(handle, json.dumps({"pid": os.getpid(), "stage": stage}).encode(), 0)


def _release(folder: Path, handle: int) -> None:
    """Remove the lock file (while still holding it) when the folder is finished or empty; an
    unfinished folder keeps it, as the record of which stage wrote its files. A refused run leaves
    the record of an earlier one as it was (a lock file no stage claimed is removed)."""
    try:
        stage = _read_record(handle).get("stage")
        done = stage is None or _manifest_stage(folder) == stage or not any(e.name != LOCK for e in folder.iterdir())
        if done:
            (folder / LOCK).unlink(missing_ok=True)
    except OSError:
        pass  # the folder was removed meanwhile: nothing to tidy, and the run's own outcome is what to report
    finally:
        os.close(handle)  # closing the descriptor releases the lock


# ------------------------------------------------------------------------------------------------
# foreign files
# ------------------------------------------------------------------------------------------------

def _is_ours(folder: Path, outputs: Outputs, locked_by: str | None) -> bool:
    markers = (*outputs.markers, PIPELINE_PENDING)
    return (outputs.stage in (locked_by, _manifest_stage(folder))
            or any((folder / marker).exists() for marker in markers))


def _manifest_stage(folder: Path) -> str | None:
    return _manifest(folder).get("stage")


def _manifest(folder: Path) -> dict[str, Any]:
    """The folder's manifest; empty when there is none or it is not a JSON object."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _refuse_finished(folder: Path, outputs: Outputs) -> None:
    manifest = _manifest(folder)
    if manifest.get("stage") != outputs.stage:
        return
    written = str(manifest.get("created", "at an unknown time")).replace("T", " ")
    raise OutputError(f"{folder} holds the finished output of an earlier 'weaklabel {outputs.stage}' run "
                      f"({MANIFEST}, written {written}); pass --overwrite to replace it, or choose another --out")


def _refuse_foreign(folder: Path, outputs: Outputs, ours: bool) -> None:
    foreign = [entry.name for entry in sorted(folder.iterdir())
               if entry.name not in BOOKKEEPING and not (ours and outputs.owns(entry.name))]
    if not foreign:
        return
    other = _manifest_stage(folder)
    what = (f"a 'weaklabel {other}' artifact" if other and other != outputs.stage
            else f"files 'weaklabel {outputs.stage}' did not write ({_some(foreign)})")
    raise OutputError(f"{folder} holds {what}; choose an empty or new --out, or pass --overwrite to write "
                      "beside them (they are kept)")


def _some(names: list[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


# ------------------------------------------------------------------------------------------------
# a full disk
# ------------------------------------------------------------------------------------------------

@contextmanager
def _disk_full_reported(folder: Path, outputs: Outputs) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        if error.errno not in DISK_FULL:
            raise
        _remove_temporary(folder, outputs)
        free = shutil.disk_usage(folder).free // 1_000_000
        raise OutputError(f"no space left on device writing {error.filename or folder}: {free} MB free; "
                          "free some space and run the command again") from error


def _remove_temporary(folder: Path, outputs: Outputs) -> None:
    """Remove the stage's half-written ``*.tmp`` files, in the folder and its own subfolders."""
    for path in folder.rglob("*.tmp"):
        top = path.relative_to(folder).parts[0]
        if outputs.owns(top) and path.is_file():
            path.unlink()
