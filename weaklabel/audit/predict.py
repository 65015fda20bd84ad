"""What a trained encoder says about every image of a shards folder: its embedding and its
multi-label head's probabilities, beside the listing's id, split and weak labels."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..datasets.loader import ShardInfo, make_dataset, make_loader
from ..training.cores import plan_cpu
from ..training.embed import image_transform, inference_device, load_encoder
from ..training.models import LABELS_TASK, Encoder

TRAIN_SPLIT = "train"  # the split a checkpoint learned from; every other split is held out


@dataclass(frozen=True)
class Predictions:
    """One row per image, in split then shard order."""

    ids: list[str]
    splits: np.ndarray  # str [n]
    labels: list[list[int]]  # the weak labels of the shards
    embeddings: np.ndarray  # float32 [n, dim], L2-normalized
    probabilities: np.ndarray  # float32 [n, labels]: the multi-label head's sigmoid

    @property
    def held_out(self) -> np.ndarray:
        """Which images the encoder did not learn from."""
        return self.splits != TRAIN_SPLIT


def predict(checkpoint: str | Path, shards: str | Path, *, batch_size: int = 64, device: str = "auto",
            workers: int | None = None, progress: bool = False) -> tuple[Predictions, dict[str, Any]]:
    """Embed and score every image of every split of ``shards``; also the checkpoint's config."""
    device_ = inference_device(device)
    workers = plan_cpu(workers, device_).workers
    model, config = load_encoder(checkpoint, device_)
    if LABELS_TASK not in model.task_names:
        raise ValueError(f"{checkpoint} has no multi-label head ('{LABELS_TASK}'); audit a model trained on the "
                         "weak labels")
    info = ShardInfo.load(shards)
    transform = image_transform(config)
    parts = [_predict_split(model, Path(shards), split, transform, config, batch_size, workers, progress)
             for split, count in info.num_samples.items() if count]
    ids = [i for part in parts for i in part[0]]
    return Predictions(ids, np.concatenate([np.full(len(part[0]), split, dtype=object)
                                            for part, split in zip(parts, _nonempty(info), strict=True)]),
                       [labels for part in parts for labels in part[1]],
                       np.concatenate([part[2] for part in parts]), np.concatenate([part[3] for part in parts])), config


def _nonempty(info: ShardInfo) -> list[str]:
    return [split for split, count in info.num_samples.items() if count]


@torch.inference_mode()
def _predict_split(model: Encoder, shards: Path, split: str, transform: Any, config: dict[str, Any],
                   batch_size: int, workers: int, progress: bool):
    from tqdm.auto import tqdm

    total = ShardInfo.load(shards).num_samples[split]
    dataset = make_dataset(shards, split, training=False, transform=transform, image_size=config["image"]["size"],
                           return_meta=True)
    loader = make_loader(dataset, batch_size, workers, persistent_workers=False)
    device = next(model.parameters()).device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    ids, labels, embeddings, probabilities = [], [], [], []
    with tqdm(total=total, desc=f"audit: predict {split}", unit="img", disable=not progress) as bar:
        for images, _, meta in loader:
            with autocast:
                out = model(images.to(device, non_blocking=True))
            embeddings.append(F.normalize(out["embedding"].float(), dim=-1).cpu().numpy())
            probabilities.append(torch.sigmoid(out[LABELS_TASK].float()).cpu().numpy())
            ids += [str(m.get("id")) for m in meta]
            labels += [list(m.get("labels") or []) for m in meta]
            bar.update(len(meta))
    return ids, labels, np.concatenate(embeddings), np.concatenate(probabilities)
