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
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = 1
LAST = "last.pt"
BEST = "best.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write atomically: a reader (or a resumed run after a kill) never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT} | state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"{path} is not a weaklabel training checkpoint")
    return state


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
