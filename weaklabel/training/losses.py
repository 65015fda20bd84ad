"""Losses: one value per sample, so that samples without a target can be masked out of a task.

Multi-label losses over the vocabulary (``targets`` a float multi-hot ``[B, L]``):

- ``bce``: sigmoid binary cross-entropy, summed over labels.
- ``asl``: asymmetric loss (Ridnik et al., 2021), summed over labels:
  ``-[y (1-p)^γ+ log p + (1-y) p_m^γ- log(1-p_m)]`` with ``p_m = max(p - clip, 0)``.
- ``softmax``: cross-entropy against the multi-hot normalized to sum 1, as in weakly-supervised
  hashtag pretraining (Mahajan et al., 2018).

Softmax tasks over a carried column (``targets`` int64 ``[B]``, -1 = unknown): cross-entropy.

Label smoothing ε: binary targets become ``y (1-ε) + ε/2``; distributions ``t (1-ε) + ε/C``.
A task's loss is the mean over its valid samples (a multi-hot with a positive; an index >= 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .models import Task

MULTILABEL_LOSSES = ("bce", "asl", "softmax")


def bce_loss(logits: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0) -> torch.Tensor:
    """Sigmoid BCE per sample ``[B]``, summed over labels."""
    if label_smoothing:
        targets = targets * (1 - label_smoothing) + label_smoothing / 2
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)


def asymmetric_loss(logits: torch.Tensor, targets: torch.Tensor, *, gamma_neg: float = 4.0, gamma_pos: float = 0.0,
                    clip: float = 0.05, eps: float = 1e-8, label_smoothing: float = 0.0) -> torch.Tensor:
    """Asymmetric loss per sample ``[B]``, summed over labels (the paper's reference implementation)."""
    if label_smoothing:
        targets = targets * (1 - label_smoothing) + label_smoothing / 2
    p = torch.sigmoid(logits)
    p_neg = 1 - p  # probability of "not this label"
    if clip > 0:
        p_neg = (p_neg + clip).clamp(max=1)  # = 1 - max(p - clip, 0): easy negatives are discarded
    loss = targets * torch.log(p.clamp(min=eps)) + (1 - targets) * torch.log(p_neg.clamp(min=eps))
    if gamma_neg > 0 or gamma_pos > 0:
        p_true = p * targets + p_neg * (1 - targets)
        gamma = gamma_pos * targets + gamma_neg * (1 - targets)
        loss = loss * torch.pow(1 - p_true, gamma)
    return -loss.sum(-1)


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, *,
                              label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy per sample ``[B]`` against ``targets`` normalized to sum 1 (rows of zeros give 0)."""
    dist = targets / targets.sum(-1, keepdim=True).clamp(min=1e-12)
    if label_smoothing:
        dist = dist * (1 - label_smoothing) + label_smoothing / logits.shape[-1]
    return -(dist * F.log_softmax(logits, dim=-1)).sum(-1)


def class_cross_entropy(logits: torch.Tensor, index: torch.Tensor, *, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy per sample ``[B]`` against class indices; index -1 gives 0 (masked by the caller)."""
    return F.cross_entropy(logits, index.clamp(min=0), reduction="none", label_smoothing=label_smoothing)


def valid_mask(task: Task, target: torch.Tensor) -> torch.Tensor:
    """Samples that carry a target for ``task``: a positive in the multi-hot, or a class index >= 0."""
    return target.sum(-1) > 0 if task.kind == "multilabel" else target >= 0


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``mask``; 0 (still in the graph) when nothing is valid."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


def per_sample_loss(task: Task, logits: torch.Tensor, target: torch.Tensor, *, loss: str = "bce",
                    label_smoothing: float = 0.0, gamma_neg: float = 4.0, gamma_pos: float = 0.0,
                    clip: float = 0.05) -> torch.Tensor:
    """A task's loss per sample ``[B]`` in float32 (samples without a target included; see ``valid_mask``)."""
    logits = logits.float()
    if task.kind == "softmax":
        return class_cross_entropy(logits, target, label_smoothing=label_smoothing)
    if loss == "bce":
        return bce_loss(logits, target, label_smoothing=label_smoothing)
    if loss == "asl":
        return asymmetric_loss(logits, target, gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip,
                               label_smoothing=label_smoothing)
    if loss == "softmax":
        return soft_target_cross_entropy(logits, target, label_smoothing=label_smoothing)
    raise ValueError(f"loss must be one of {MULTILABEL_LOSSES}, not {loss!r}")


def task_loss(task: Task, logits: torch.Tensor, target: torch.Tensor, **options) -> torch.Tensor:
    """A task's loss for a batch: the mean of ``per_sample_loss`` over its valid samples."""
    return masked_mean(per_sample_loss(task, logits, target, **options), valid_mask(task, target))


def task_scores(task: Task, logits: torch.Tensor, loss: str = "bce") -> torch.Tensor:
    """Probabilities the evaluator ranks by: sigmoid for bce/asl heads, softmax otherwise."""
    logits = logits.float()
    if task.kind == "multilabel" and loss in ("bce", "asl"):
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=-1)
