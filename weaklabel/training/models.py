"""The encoder: a timm backbone by name, an embedding head, and one linear head per task.

::

    images ─ backbone (timm, num_classes=0) ─ Linear(features, embed_dim) ─ L2 normalize ─ embedding
                                                                                │ × sqrt(embed_dim)
                                                     ┌──────────────────────────┼──────────────────┐
                                                 Linear → "labels"       Linear → "articleType"    ...

The embedding is what gets served (``embed``/``export``); the task heads exist for training and
for the evaluator. Heads see the unit embedding scaled by ``sqrt(embed_dim)`` so that each of its
components has about unit variance, which is what ``nn.Linear``'s initialization expects.

Tasks: ``labels`` (multi-label over the vocabulary), ``COLUMN`` (softmax over a carried column's
values) and ``facet:NAME`` (softmax over the labels of one facet of the vocabulary, see
:mod:`weaklabel.facets`; ``"facets"`` asks for one such task per facet).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

LABELS_TASK = "labels"
FACETS_SPEC = "facets"  # a task spec asking for one softmax task per facet of the vocabulary
FACET_PREFIX = "facet:"
TASK_KINDS = ("multilabel", "softmax")
HEAD_PRIOR = 0.01  # multi-label heads start by predicting this probability for every label


@dataclass(frozen=True)
class Task:
    """One training target: the vocabulary's multi-label task, or a softmax task over a carried column
    or over the labels of a facet."""

    name: str  # "labels", the carried column or "facet:" + the facet's name
    kind: str  # "multilabel" | "softmax"
    classes: tuple[str, ...]
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task {self.name!r}: kind must be one of {TASK_KINDS}, not {self.kind!r}")
        if not self.classes:
            raise ValueError(f"task {self.name!r} has no classes")
        if self.weight < 0:
            raise ValueError(f"task {self.name!r}: weight must be >= 0, not {self.weight}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        return cls(data["name"], data["kind"], tuple(data["classes"]), float(data.get("weight", 1.0)))


def parse_task(spec: str) -> tuple[str, str, float]:
    """``"COLUMN:softmax"`` or ``"COLUMN:softmax:WEIGHT"`` → ``(column, kind, weight)``."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or parts[1] != "softmax":
        raise ValueError(f"task {spec!r}: expected COLUMN:softmax or COLUMN:softmax:WEIGHT")
    if parts[0] == LABELS_TASK:
        raise ValueError(f"task {spec!r}: 'labels' is the vocabulary task; set its weight with labels_weight")
    return parts[0], "softmax", task_weight(spec, parts[2] if len(parts) == 3 else "", "COLUMN:softmax:WEIGHT")


def task_weight(spec: str, text: str, form: str) -> float:
    """A task spec's loss weight: 1 when ``text`` is empty, else a finite number >= 0."""
    try:
        weight = float(text) if text else 1.0
    except ValueError:
        weight = math.nan
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"task {spec!r}: expected {form} with a WEIGHT that is a number >= 0")
    return weight


def parse_facets(spec: str) -> float | None:
    """The loss weight of every facet task asked for by ``"facets"`` or ``"facets:WEIGHT"``; None
    for another spec (``"facets:softmax"`` is a task over a carried column named facets)."""
    name, _, weight = spec.partition(":")
    if name != FACETS_SPEC or weight.split(":")[0] == "softmax":
        return None
    return task_weight(spec, weight, "facets or facets:WEIGHT")


def facet_task(facet: str) -> str:
    """The name of the softmax task over a facet's labels."""
    return FACET_PREFIX + facet


def task_facet(task: str) -> str | None:
    """The facet a task predicts; None for the labels task and carried-column tasks (whose names hold no ":")."""
    return task[len(FACET_PREFIX):] if task.startswith(FACET_PREFIX) else None


def head_key(task: str) -> str:
    """A task head's name in ``Encoder.heads``: a module name may not hold ".", which a facet's name
    (any text) may, so the facet part is percent-encoded ("%" too, to keep names apart)."""
    facet = task_facet(task)
    return task if facet is None else facet_task(facet.replace("%", "%25").replace(".", "%2E"))


def facet_label_ids(tasks: Sequence[Task], members: Mapping[str, Sequence[int]],
                    label_names: Sequence[str]) -> dict[str, list[int]]:
    """Each facet task's label ids in class order, from a folder's facets (``facet_members``); a
    ValueError when the folder lacks the facet or gives it other labels than the task's classes."""
    found: dict[str, list[int]] = {}
    for task in tasks:
        facet = task_facet(task.name)
        if facet is None:
            continue
        ids = list(members.get(facet, []))
        theirs = [label_names[i] for i in ids]
        if theirs != list(task.classes):
            raise ValueError(f"the checkpoint's facet {facet!r} ({_some(task.classes)}) is not the shards' "
                             f"({_some(theirs) if ids else 'they have no such facet'}); use shards written with "
                             "the checkpoint's vocabulary")
        found[task.name] = ids
    return found


def _some(names: Sequence[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f", ... ({len(names)} labels)" if len(names) > shown else "")


def create_backbone(name: str, *, pretrained: bool = False, image_size: int | None = None,
                    **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, num_classes=0)``: pooled features out. ``image_size`` goes to models
    that take ``img_size`` (ViTs and other fixed-size models); others ignore it."""
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown timm model {name!r}; see timm.list_models()")
    options = dict(pretrained=pretrained, num_classes=0, **kwargs)
    try:
        if image_size is not None:
            try:
                return timm.create_model(name, img_size=image_size, **options)
            except TypeError as error:
                if "img_size" not in str(error):
                    raise
        return timm.create_model(name, **options)
    except (OSError, RuntimeError, ValueError) as error:
        if not pretrained:
            raise
        raise ValueError(f"could not get timm's pretrained weights for {name} ({type(error).__name__}: {error}); "
                         "they come from the Hugging Face hub (or its cache); without network access, start "
                         "from a local file with --weights instead") from error


def backbone_features(backbone: nn.Module) -> int:
    """Width of a timm backbone's pooled output (after any conv head, as in MobileNetV3)."""
    return int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)


class Encoder(nn.Module):
    """timm backbone + embedding head (Linear, L2 norm) + one Linear head per task."""

    def __init__(self, backbone: str, tasks: Sequence[Task], *, embed_dim: int = 256, pretrained: bool = False,
                 image_size: int | None = None, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        extra = {"drop_path_rate": drop_path_rate} if drop_path_rate else {}
        self.backbone = create_backbone(backbone, pretrained=pretrained, image_size=image_size, **extra)
        self.embed_head = nn.Linear(backbone_features(self.backbone), embed_dim)
        self.heads = nn.ModuleDict({head_key(task.name): nn.Linear(embed_dim, len(task.classes)) for task in tasks})
        self.task_names = [task.name for task in tasks]
        self.embed_dim = embed_dim
        self.head_scale = math.sqrt(embed_dim)
        for task in tasks:
            if task.kind == "multilabel":
                nn.init.constant_(self.head(task.name).bias, math.log(HEAD_PRIOR / (1 - HEAD_PRIOR)))

    def head(self, task: str) -> nn.Module:
        """The linear head of the task named ``task``."""
        return self.heads[head_key(task)]

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalized embeddings ``[batch, embed_dim]``."""
        return F.normalize(self.embed_head(self.backbone(images)), dim=-1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"embedding": [B, D], task: logits [B, classes], ...}``."""
        embedding = self.embed(images)
        scaled = embedding * self.head_scale
        return {"embedding": embedding, **{name: self.head(name)(scaled) for name in self.task_names}}

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay beyond norms and biases (position embeddings...)."""
        inner = self.backbone.no_weight_decay() if hasattr(self.backbone, "no_weight_decay") else set()
        return {f"backbone.{name}" for name in inner}


class EmbeddingModel(nn.Module):
    """The served encoder alone: images → normalized embedding (what ``export`` writes)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.backbone = encoder.backbone
        self.embed_head = encoder.embed_head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed_head(self.backbone(images)), dim=-1)


def check_runs(model: Encoder, name: str, image_size: int) -> None:
    """One forward pass at ``image_size``, so a model that cannot run at that size fails early and clearly."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size))
    except (RuntimeError, AssertionError, ValueError) as error:
        raise ValueError(f"{name} does not run at {image_size} px ({error}); its pretrained config expects "
                         f"{model.backbone.pretrained_cfg.get('input_size')}") from error
    finally:
        model.train(was_training)


def load_weights(model: Encoder, path: str | Path) -> dict[str, list[str]]:
    """Load a local weights file into ``model``; return the keys that did not fit.

    Accepts a weaklabel checkpoint (its ``model``, or ``ema`` when ``model`` is missing), a timm /
    torchvision-style backbone state dict (``fc.*``/``classifier.*`` keys end up unexpected), or a
    dict holding one under ``state_dict``/``model``. ``module.`` and ``_orig_mod.`` prefixes (DDP,
    torch.compile) are removed. Tensors whose shape differs from the model's are skipped and
    reported as ``mismatched``.
    """
    state = read_weights(path)
    whole = any(key.startswith(("backbone.", "embed_head.", "heads.")) for key in state)
    target: nn.Module = model if whole else model.backbone
    own = target.state_dict()
    mismatched = sorted(k for k, v in state.items() if k in own and own[k].shape != v.shape)
    fitting = {k: v for k, v in state.items() if k not in mismatched}
    result = target.load_state_dict(fitting, strict=False)
    prefix = "" if whole else "backbone."
    return {"missing": [prefix + k for k in result.missing_keys],
            "unexpected": list(result.unexpected_keys), "mismatched": mismatched}


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of tensors in a weights file (see :func:`load_weights`), prefixes removed; a
    ValueError naming the file when it is missing or no PyTorch weights file (text, truncated, other)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch.load fails on a bad file with any type (IndexError, KeyError...)
        raise ValueError(f"{path} is not a timm/PyTorch weights file ({type(error).__name__}: {_first_line(error)}); "
                         "give a state dict or checkpoint saved by torch.save") from None
    if isinstance(state, Mapping):
        for key in ("model", "state_dict", "ema"):
            if key in state and isinstance(state[key], Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no state dict of tensors")
    return {_strip_prefixes(key): value for key, value in state.items()}


def _first_line(error: BaseException) -> str:
    return str(error).strip().split("\n")[0][:200]


def _strip_prefixes(key: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key.replace("._orig_mod.", ".")
