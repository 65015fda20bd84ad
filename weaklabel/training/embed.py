"""Precomputed embeddings (``weaklabel embed``) and ``load_encoder``, the evaluator's way to a trained model.

The output is the embeddings file of :func:`weaklabel.artifacts.write_embeddings`: Parquet with
``id`` and ``embedding`` (fixed-size list<float32>, L2-normalized). From a shards folder the id is
the listing id and the sample json's ``labels``, ``label_names`` and carried columns come along
as extra columns; from an image folder the id is the image's path relative to the folder, and
each image is turned upright by its EXIF orientation first, as the shards stage does.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ..artifacts import write_embeddings
from .checkpoint import load_checkpoint
from .cores import plan_cpu
from .models import Encoder, Task
from .sampling import eval_transform

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
SAMPLE_FIELDS = ("id", "labels", "label_names", "scores", "width", "height")


def load_encoder(checkpoint: str | Path, device: str | torch.device = "cpu", *,
                 ema: bool | None = None) -> tuple[Encoder, dict[str, Any]]:
    """A trained encoder in eval mode on ``device``, and its config.

    ``model.embed(images)`` gives normalized embeddings, ``model(images)`` the embedding and each
    task's logits, ``model.head(name)`` a task's head. Images are float tensors normalized with
    ``config["image"]["mean"/"std"]`` at ``config["image"]["size"]`` px (``image_transform(config)``
    builds that transform). The EMA weights are used when the checkpoint has them, unless
    ``ema=False``. ``config`` is the training config plus ``tasks`` (name, kind, classes, weight),
    ``label_names``, ``image``, ``step``, ``weights`` ("ema" or "model") and ``checkpoint``.
    """
    state = load_checkpoint(checkpoint)
    saved = state["config"]
    tasks = [Task.from_dict(t) for t in state["tasks"]]
    use_ema = state.get("ema") is not None if ema is None else ema
    if use_ema and state.get("ema") is None:
        raise ValueError(f"{checkpoint} has no EMA weights (the run was trained without --ema)")
    model = Encoder(saved["model"], tasks, embed_dim=saved["embed_dim"], image_size=saved["image_size"])
    model.load_state_dict(state["ema"] if use_ema else state["model"])
    model.to(inference_device(device)).eval()
    config = dict(saved) | {"tasks": [t.to_dict() for t in tasks], "label_names": list(state["label_names"]),
                            "image": dict(state["image"]), "step": state["step"],
                            "weights": "ema" if use_ema else "model", "checkpoint": str(checkpoint)}
    return model, config


def image_transform(config: dict[str, Any]) -> Any:
    """The evaluation transform a loaded encoder expects (PIL RGB image → normalized tensor)."""
    image = config["image"]
    # checkpoints that predate interpolation and crop_pct were evaluated with bilinear and the whole short side
    return eval_transform(image["size"], mean=image["mean"], std=image["std"],
                          interpolation=image.get("interpolation", "bilinear"), crop_pct=image.get("crop_pct", 1.0))


def embed(checkpoint: str | Path, source: str | Path, out: str | Path, *, split: str = "val", batch_size: int = 64,
          device: str = "auto", workers: int | None = None, ema: bool | None = None,
          progress: bool = False) -> dict[str, Any]:
    """Embed every image of a shards folder's ``split`` or of an image folder (recursively) into ``out``.

    Returns ``{"rows", "dim", "source", "failed"}``; ``failed`` lists image files that could not be
    read (they are left out). ``workers`` None chooses the DataLoader workers from the cores (see :mod:`.cores`).
    """
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is neither a shards folder nor an image folder")
    device = inference_device(device)
    workers = plan_cpu(workers, device).workers
    model, config = load_encoder(checkpoint, device, ema=ema)
    transform = image_transform(config)
    if (source / "_info.json").is_file():
        ids, vectors, extra, failed = _embed_shards(model, source, split, transform, config, batch_size, workers,
                                                    progress)
        kind = "shards"
    else:
        ids, vectors, extra, failed = _embed_folder(model, source, transform, batch_size, workers, progress)
        kind = "images"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_embeddings(out, ids, vectors, extra)
    return {"rows": len(ids), "dim": int(vectors.shape[1]), "source": kind, "failed": failed}


@torch.inference_mode()
def embed_batch(model: Encoder, images: torch.Tensor) -> np.ndarray:
    """Normalized float32 embeddings of a batch (bf16 autocast on CUDA)."""
    device = next(model.parameters()).device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    with autocast:
        vectors = model.embed(images.to(device, non_blocking=True))
    return F.normalize(vectors.float(), dim=-1).cpu().numpy()


def _embed_shards(model: Encoder, folder: Path, split: str, transform: Any, config: dict[str, Any],
                  batch_size: int, workers: int, progress: bool):
    from tqdm.auto import tqdm

    from ..datasets.loader import ShardInfo, make_dataset, make_loader

    total = ShardInfo.load(folder).num_samples.get(split)
    dataset = make_dataset(folder, split, training=False, transform=transform, image_size=config["image"]["size"],
                           return_meta=True)
    loader = make_loader(dataset, batch_size, workers, persistent_workers=False)
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    metas: list[dict[str, Any]] = []
    with tqdm(total=total, desc=f"embed {split}", unit="img", disable=not progress) as bar:
        for images, _, meta in loader:
            vectors.append(embed_batch(model, images))
            ids += [str(m.get("id")) for m in meta]
            metas += meta
            bar.update(len(meta))
    carried = sorted({key for m in metas for key in m} - set(SAMPLE_FIELDS))
    extra = {"labels": [list(m.get("labels") or []) for m in metas],
             "label_names": [list(m.get("label_names") or []) for m in metas]}
    extra |= {column: _arrow_safe([m.get(column) for m in metas]) for column in carried}
    return ids, _stack(vectors, model), extra, []


class _ImageFiles(torch.utils.data.Dataset):
    def __init__(self, root: Path, paths: Sequence[Path], transform: Any) -> None:
        self.root, self.paths, self.transform = root, list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            with Image.open(self.paths[index]) as image:  # upright, as the shards stage stores images
                return self.transform(ImageOps.exif_transpose(image).convert("RGB")), index
        except (OSError, ValueError, Image.DecompressionBombError):
            return None, index


def _collate_images(batch):
    good = [(image, i) for image, i in batch if image is not None]
    images = torch.stack([image for image, _ in good]) if good else None
    return images, [i for _, i in good], [i for image, i in batch if image is None]


def _embed_folder(model: Encoder, folder: Path, transform: Any, batch_size: int, workers: int, progress: bool):
    from tqdm.auto import tqdm

    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    dataset = _ImageFiles(folder, paths, transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                                         collate_fn=_collate_images)
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    failed: list[str] = []
    with tqdm(total=len(paths), desc="embed images", unit="img", disable=not progress) as bar:
        for images, good, bad in loader:
            if images is not None:
                vectors.append(embed_batch(model, images))
                ids += [paths[i].relative_to(folder).as_posix() for i in good]
            failed += [paths[i].relative_to(folder).as_posix() for i in bad]
            bar.update(len(good) + len(bad))
    return ids, _stack(vectors, model), None, failed


def _stack(vectors: list[np.ndarray], model: Encoder) -> np.ndarray:
    return np.concatenate(vectors) if vectors else np.zeros((0, model.embed_dim), dtype=np.float32)


def _arrow_safe(values: list[Any]) -> list[Any]:
    """A carried column as values Arrow can type; mixed types become strings."""
    try:
        pa.array(values)
        return values
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return [None if v is None else str(v) for v in values]


def inference_device(device: str | torch.device) -> torch.device:
    """``auto``: CUDA when present, else the CPU; a clear error when CUDA is asked for and absent."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but CUDA is not available")
    return torch.device(device)
