"""Checkpoints: plain dicts that ``torch.load(path, weights_only=True)`` reads.

A checkpoint holds only tensors, dicts, lists, str, int, float, bool and None::

    {"format": 1, "model": state_dict, "ema": state_dict | None, "optimizer": state_dict,
     "scheduler": {"base_lr", "min_lr", "warmup_steps", "total_steps"}, "step": int, "epoch": int,
     "batch_in_epoch": int, "best": {"metric", "value", "step"} | None, "rng": {...},
     "config": {...}, "tasks": [{"name", "kind", "classes", "weight"}], "label_names": [...],
     "image": {"size", "mean", "std", "interpolation", "crop_pct"}, "metrics": {...}}

``step`` counts optimizer steps; ``epoch`` is the epoch in progress and ``batch_in_epoch`` the
loader batches of it already consumed, which is where a resumed run picks up.
"""

from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = 1
LAST = "last.pt"
BEST = "best.pt"


# what load_encoder and a resumed run read, beyond "format"
REQUIRED = {"model": dict, "config": dict, "tasks": list, "label_names": list, "image": dict, "step": int}


class NotACheckpoint(ValueError):
    """The file is not a checkpoint ``weaklabel train`` wrote."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write atomically: a reader (or a resumed run after a kill) never sees half a file, and a
    failed write (a full disk) leaves no temporary file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        # a Python file, not a path: torch's own writer turns a full disk into a RuntimeError
        with open(tmp, "wb") as handle:
            torch.save({"format": FORMAT} | state, handle)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:
            error.filename = str(path)  # a full disk is reported with the file it was writing
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint's dict, read with ``weights_only=True``: a file holding other Python objects is
    refused unread (unpickling them could run code); any unreadable or foreign file raises
    :class:`NotACheckpoint` saying why."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # e.g. about a foreign pickle protocol: the error below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - whatever torch fails on, the file is no checkpoint
        raise NotACheckpoint(f"{path} is not a weaklabel checkpoint: {_load_problem(error)}") from None
    problem = _shape_problem(state)
    if problem:
        raise NotACheckpoint(f"{path} is not a weaklabel checkpoint: {problem}")
    return state


def _shape_problem(state: Any) -> str | None:
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a dict"
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        return f"it lacks {', '.join(missing)}"
    wrong = [key for key, kind in REQUIRED.items() if not isinstance(state[key], kind)]
    return f"its {', '.join(wrong)} have the wrong type" if wrong else None


def _load_problem(error: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, without torch's advice to load it unsafely."""
    if isinstance(error, PermissionError):
        return "it cannot be read (permission denied)"
    refused = re.search(r"GLOBAL ([\w.]+)", str(error))
    if refused:
        return (f"it holds Python objects ({refused.group(1)}) besides tensors and plain data; they were not "
                "loaded, as loading them could run code")
    return "it is truncated, or not a file written by torch.save"


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) RNG states as plain types and tensors."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def run_checkpoint(run_folder: Path, which: str) -> Path:
    """``best.pt`` or ``last.pt`` (``which``: "best" or "last") of a run folder; a clear error when it is not there."""
    path = Path(run_folder) / f"{which}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (best.pt needs a val split in [shards] splits); "
                                "set checkpoint = \"last\"")
    return path
