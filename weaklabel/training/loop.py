"""The training loop: ``train(shards, out, **config)``, behind ``weaklabel train``.

One function reads top to bottom: config → model → data → optimizer → (resume) → loop → artifacts.
The loop counts optimizer steps; an epoch is one pass of the train stream (see :mod:`.sampling`).

**Resume** (``resume=True``): ``last.pt`` holds the model, optimizer, EMA, RNG states, the step,
the epoch in progress and how many loader batches of it were consumed. The data order of an
epoch is a function of (seed, epoch) and each sample's augmentation of (seed, epoch, key, copy),
so a resumed run rebuilds the epoch's stream and skips the consumed batches; with the same
number of workers (and deterministic kernels) it ends with the same weights as a run that was
never interrupted. Skipped batches are still read and decoded.

**DDP** (``torchrun --nproc_per_node N -m weaklabel.cli train ...``): the process group is set up
from torchrun's environment (nccl on CUDA, gloo on CPU); every rank reads its own shards and the
same number of batches (the loader's per-rank quota); validation is split between ranks and
gathered on rank 0; only rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from timm.utils import ModelEmaV3

from ..artifacts import Timer, fingerprint_artifact, write_json, write_manifest
from ..datasets.loader import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ShardInfo,
    carry_classes,
    make_dataset,
    make_loader,
    worker_quota,
)
from .allocator import keep_freed_memory
from .checkpoint import (
    BEST,
    LAST,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .losses import (
    MULTILABEL_LOSSES,
    per_sample_loss,
    task_loss,
    task_scores,
    valid_mask,
)
from .models import LABELS_TASK, Encoder, Task, check_runs, load_weights, parse_task
from .sampling import RepeatFactors, eval_transform, train_dataset, train_transform

CONFIG = "config.json"
METRICS = "metrics.jsonl"
BALANCE = ("repeat-factor",)
PRECISIONS = ("auto", "bf16", "fp32")
# options a resumed run may change; any other option must match the checkpoint's
RUN_OPTIONS = frozenset({"epochs", "steps", "workers", "device", "precision", "compile", "log_every",
                         "checkpoint_every", "eval_every", "progress", "stop_after_steps"})


@dataclass
class TrainConfig:
    """Every option of a training run; ``config.json`` holds the resolved values."""

    # model
    model: str = "efficientnet_b0"
    pretrained: bool = False
    weights: str | None = None
    embed_dim: int = 256
    drop_path: float = 0.0
    image_size: int = 224
    # tasks and losses
    tasks: list[str] = field(default_factory=list)  # extra tasks "COLUMN:softmax[:WEIGHT]"
    labels_weight: float = 1.0
    loss: str = "bce"
    asl_gamma_neg: float = 4.0
    asl_gamma_pos: float = 0.0
    asl_clip: float = 0.05
    label_smoothing: float = 0.0
    # data
    balance: str | None = None
    repeat_threshold: float = 0.001
    shuffle_buffer: int = 1000
    crop_scale: float = 0.25
    color_jitter: float = 0.2
    # optimization
    epochs: int = 10
    steps: int | None = None
    batch_size: int = 64
    accum_steps: int = 1
    lr: float = 1e-3
    min_lr: float = 0.0
    weight_decay: float = 0.05
    warmup_steps: int | None = None
    grad_clip: float | None = 1.0
    ema: float | None = None
    # runtime
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    workers: int = 4
    seed: int = 0
    deterministic: bool = False
    eval_every: int | None = None
    log_every: int = 10
    checkpoint_every: int = 500
    progress: bool = True
    stop_after_steps: int | None = None  # stop (as if killed) after this many steps; for tests

    def __post_init__(self) -> None:
        self.tasks = list(self.tasks)
        for task in self.tasks:
            parse_task(task)
        if self.loss not in MULTILABEL_LOSSES:
            raise ValueError(f"loss must be one of {MULTILABEL_LOSSES}, not {self.loss!r}")
        if self.balance not in (None, *BALANCE):
            raise ValueError(f"balance must be one of {BALANCE} or None, not {self.balance!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        for name in ("embed_dim", "image_size", "batch_size", "accum_steps", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(self, name)}")
        for name in ("epochs", "workers", "shuffle_buffer"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        if self.steps is not None and self.steps < 0:
            raise ValueError(f"steps must be >= 0, not {self.steps}")
        if not 0 < self.crop_scale <= 1:
            raise ValueError(f"crop_scale must be in (0, 1], not {self.crop_scale}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), not {self.label_smoothing}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ValueError(f"ema decay must be in (0, 1), not {self.ema}")


def lr_at(step: int, *, base_lr: float, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warmup to ``base_lr`` over
    ``warmup_steps``, then a cosine from ``base_lr`` down to ``min_lr`` at ``total_steps``."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def create_optimizer(model: Encoder, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW with weight decay on weight matrices and kernels; none on norms, biases, scalars and
    the names in ``model.no_weight_decay()`` (position embeddings...)."""
    from timm.optim import create_optimizer_v2

    return create_optimizer_v2(model, opt="adamw", lr=config.lr, weight_decay=config.weight_decay,
                               filter_bias_and_bn=True, **({"fused": True} if device.type == "cuda" else {}))


@dataclass
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    started: bool = False  # whether train() set up the process group (and so tears it down)

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> Distributed:
    """Join the torchrun job described by WORLD_SIZE/RANK/LOCAL_RANK, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and device != "cpu"
    if cuda:
        torch.cuda.set_device(local_rank)
    started = not torch_dist.is_initialized()
    if started:
        torch_dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Distributed(torch_dist.get_rank(), torch_dist.get_world_size(), local_rank, started)


def resolve_device(name: str, dist: Distributed) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device cuda was asked for, but CUDA is not available")
        if dist.world_size > 1:
            device = torch.device("cuda", dist.local_rank)
    return device


def resolve_config(options: dict[str, Any], checkpoint: dict[str, Any] | None) -> TrainConfig:
    """The run's config: ``options`` over the defaults, or over the checkpoint's config on resume,
    where only ``RUN_OPTIONS`` (run length, devices, logging) may differ."""
    known = {f.name for f in fields(TrainConfig)}
    if checkpoint is None:
        return TrainConfig(**options)
    saved = {k: v for k, v in checkpoint["config"].items() if k in known and k != "stop_after_steps"}
    for name, value in options.items():
        if name not in RUN_OPTIONS and value != saved.get(name):
            raise ValueError(f"option {name}={value!r} differs from the checkpoint's {saved.get(name)!r}; "
                             "resume with the same options or start a new run in another folder")
    return TrainConfig(**(saved | {k: v for k, v in options.items() if k in RUN_OPTIONS}))


def build_tasks(shards: Path, info: ShardInfo, config: TrainConfig) -> list[Task]:
    """The labels task over the vocabulary, then one softmax task per ``--task`` column."""
    tasks = [Task(LABELS_TASK, "multilabel", tuple(info.label_names), config.labels_weight)]
    for spec in config.tasks:
        column, kind, weight = parse_task(spec)
        classes = carry_classes(shards, column, "train")
        if not classes:
            raise ValueError(f"task {spec!r}: no train sample carries a value in {column!r}; write the shards "
                             f"with --carry {column}")
        tasks.append(Task(column, kind, tuple(classes), weight))
    return tasks


def batches_per_epoch(num_samples: int, world_size: int, workers: int, batch_size: int) -> int:
    """Full batches one rank gets from an epoch of ``num_samples`` (each worker drops its last partial one)."""
    n = max(workers, 1)
    return sum(worker_quota(num_samples, world_size, w, n) // batch_size for w in range(n))


def train(shards: str | Path, out: str | Path, *, resume: bool = False, **options: Any) -> dict[str, Any]:
    """Train an encoder on a shards folder; write ``last.pt``, ``best.pt``, ``metrics.jsonl``,
    ``config.json`` and ``manifest.json`` to ``out``; return the final metrics.

    ``options`` are :class:`TrainConfig` fields. ``resume=True`` continues the run in ``out`` from
    ``last.pt`` up to the requested steps/epochs (a new run when there is none).
    """
    unknown = sorted(set(options) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise TypeError(f"unknown training option(s): {', '.join(unknown)}")
    dist = setup_distributed(options.get("device", "auto"))
    try:
        return _train(Path(shards), Path(out), resume, options, dist)
    finally:
        if dist.started:
            torch_dist.destroy_process_group()


def _train(shards: Path, out: Path, resume: bool, options: dict[str, Any], dist: Distributed) -> dict[str, Any]:
    timer = Timer()
    say = print if dist.main else (lambda *a, **k: None)
    checkpoint = None
    if resume and (out / LAST).is_file():
        checkpoint = load_checkpoint(out / LAST)
        say(f"resuming {out / LAST} at step {checkpoint['step']} (epoch {checkpoint['epoch']})")
    elif resume:
        say(f"no {LAST} in {out}: starting a new run")
    elif (out / LAST).is_file():
        raise ValueError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    config = resolve_config(options, checkpoint)
    device = resolve_device(config.device, dist)
    cuda = device.type == "cuda"
    allocator_tuned = not cuda and keep_freed_memory()
    amp_dtype = torch.bfloat16 if config.precision == "bf16" or (
        config.precision == "auto" and cuda and torch.cuda.is_bf16_supported()) else None
    if amp_dtype is not None and not cuda:
        raise ValueError("precision bf16 needs a CUDA device")
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif cuda:
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")

    # ---- tasks and model -----------------------------------------------------------------------
    with timer("setup"):
        info = ShardInfo.load(shards)
        if checkpoint is not None:
            tasks = [Task.from_dict(t) for t in checkpoint["tasks"]]
            if list(tasks[0].classes) != info.label_names:
                raise ValueError(f"the vocabulary of {shards} differs from the checkpoint's")
        else:
            tasks = build_tasks(shards, info, config)
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        raw = Encoder(config.model, tasks, embed_dim=config.embed_dim,
                      pretrained=config.pretrained and checkpoint is None,  # a resumed run has its weights
                      image_size=config.image_size, drop_path_rate=config.drop_path)
        check_runs(raw, config.model, config.image_size)
        if config.weights and checkpoint is None:
            report = load_weights(raw, config.weights)
            say(f"loaded {config.weights}: " + "; ".join(
                f"{len(keys)} {kind} keys" + (f" ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})"
                                              if keys else "") for kind, keys in report.items()))
        pretrained_cfg = raw.backbone.pretrained_cfg
        mean = list(pretrained_cfg.get("mean", IMAGENET_MEAN))
        std = list(pretrained_cfg.get("std", IMAGENET_STD))
        memory_format = torch.channels_last if cuda else torch.contiguous_format
        raw.to(device=device, memory_format=memory_format)
        ema = ModelEmaV3(raw, decay=config.ema).requires_grad_(False) if config.ema else None
        optimizer = create_optimizer(raw, config, device)

        # ---- data ------------------------------------------------------------------------------
        repeat = RepeatFactors.from_shards(shards, config.repeat_threshold) if config.balance else None
        carry = {t.name: list(t.classes) for t in tasks[1:]}
        train_data = train_dataset(
            shards, transform=train_transform(config.image_size, mean=mean, std=std, crop_scale=config.crop_scale,
                                              color_jitter=config.color_jitter),
            num_labels=len(info.label_names), carry_targets=carry, image_size=config.image_size,
            shuffle_buffer=config.shuffle_buffer, seed=config.seed, repeat=repeat)
        # its own generator: starting an epoch's iterator must not draw from the global RNG (resume)
        loader = make_loader(train_data, config.batch_size, config.workers, drop_last=True,
                             generator=torch.Generator().manual_seed(config.seed))
        val_loader = None
        if "val" in info.splits and info.num_samples.get("val"):
            val_data = make_dataset(shards, "val", training=False, carry_targets=carry, image_size=config.image_size,
                                    transform=eval_transform(config.image_size, mean=mean, std=std))
            val_loader = make_loader(val_data, config.batch_size, config.workers, persistent_workers=False,
                                     generator=torch.Generator().manual_seed(config.seed))
        epoch_batches = batches_per_epoch(train_data.num_samples, dist.world_size, config.workers, config.batch_size)
        steps_per_epoch = epoch_batches // config.accum_steps
        if steps_per_epoch == 0:
            raise ValueError(f"the train split ({train_data.num_samples} samples over {dist.world_size} rank(s) and "
                             f"{max(config.workers, 1)} worker(s)) gives no full batch of {config.batch_size}"
                             + (f" x {config.accum_steps} accumulation steps" if config.accum_steps > 1 else ""))
        total_steps = config.steps if config.steps is not None else config.epochs * steps_per_epoch
        warmup_steps = config.warmup_steps if config.warmup_steps is not None else round(0.05 * total_steps)
        schedule = {"base_lr": config.lr, "min_lr": config.min_lr, "warmup_steps": warmup_steps,
                    "total_steps": total_steps}

        # ---- state (fresh or resumed) ------------------------------------------------------------
        step, epoch, batch_in_epoch, images_seen = 0, 0, 0, 0
        best: dict[str, Any] | None = None
        last_eval: dict[str, Any] = {}
        resumed = checkpoint is not None
        if checkpoint is not None:
            raw.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            if ema is not None and checkpoint.get("ema") is not None:
                ema.module.load_state_dict(checkpoint["ema"])
            step, epoch = checkpoint["step"], checkpoint["epoch"]
            batch_in_epoch, images_seen = checkpoint["batch_in_epoch"], checkpoint.get("images_seen", 0)
            best, last_eval = checkpoint.get("best"), checkpoint.get("metrics") or {}
            set_rng_state(checkpoint["rng"])
            del checkpoint
        model: torch.nn.Module = raw
        if dist.world_size > 1:
            model = torch.nn.parallel.DistributedDataParallel(raw, device_ids=[device.index] if cuda else None)
        if config.compile:
            model = torch.compile(model)

    resolved = asdict(config) | {"resolved": {
        "device": str(device), "precision": "bf16" if amp_dtype else "fp32", "keep_freed_memory": allocator_tuned, "world_size": dist.world_size,
        "total_steps": total_steps, "warmup_steps": warmup_steps, "steps_per_epoch": steps_per_epoch,
        "train_samples_per_epoch": train_data.num_samples, "image_mean": mean, "image_std": std,
        "tasks": [{"name": t.name, "kind": t.kind, "classes": len(t.classes), "weight": t.weight} for t in tasks]}}
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / CONFIG, resolved)
        _trim_metrics(out / METRICS, step)

    def state() -> dict[str, Any]:
        return {"model": raw.state_dict(), "ema": ema.module.state_dict() if ema else None,
                "optimizer": optimizer.state_dict(), "scheduler": schedule, "step": step, "epoch": epoch,
                "batch_in_epoch": batch_in_epoch, "images_seen": images_seen, "best": best, "rng": rng_state(),
                "config": asdict(config), "tasks": [t.to_dict() for t in tasks], "label_names": info.label_names,
                "image": {"size": config.image_size, "mean": mean, "std": std}, "metrics": last_eval}

    saved_at = step if resumed else -1  # last.pt holds the resumed state already

    def save(name: str = LAST) -> None:
        nonlocal saved_at
        if name == LAST:
            saved_at = step
        if dist.main:
            with timer("checkpoint"):
                save_checkpoint(out / name, state())

    # a resumed run whose last.pt was saved after validating at its step need not validate again (a
    # finished run resumed with the same length is then a no-op, not a second eval line)
    evaluated_at = last_eval.get("step", -1) if resumed else -1

    def run_eval() -> None:
        nonlocal best, last_eval, evaluated_at, saved_at
        if val_loader is None:
            return
        evaluated_at = step
        with timer("eval"):
            metrics = validate(ema.module if ema else raw, val_loader, tasks, config, device, amp_dtype, dist)
        if not dist.main:
            return
        saved_at = -1  # last.pt now lacks these metrics
        last_eval = {"step": step, "epoch": epoch} | metrics
        _log(out, {"kind": "eval"} | last_eval)
        if config.progress:
            bar.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in last_eval.items()))
        name, value = ("val_map", metrics["val_map"]) if metrics.get("val_map") is not None else (
            "neg_val_loss", -metrics["val_loss"])
        if best is None or value > best["value"]:
            best = {"metric": name, "value": value, "step": step}
            save(BEST)

    # ---- the loop ------------------------------------------------------------------------------
    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, initial=min(step, total_steps), unit="step", dynamic_ncols=True,
               disable=not (config.progress and dist.main), file=sys.stderr)
    autocast = torch.autocast("cuda", dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    task_options = {"loss": config.loss, "label_smoothing": config.label_smoothing,
                    "gamma_neg": config.asl_gamma_neg, "gamma_pos": config.asl_gamma_pos, "clip": config.asl_clip}
    running = torch.zeros(len(tasks) + 1, device=device)  # total loss, then each task's, summed over batches
    window = {"batches": 0, "images": 0, "wait": 0.0, "start": time.perf_counter()}
    micro, step_images = 0, 0
    stopped = False

    def finished() -> bool:
        return step >= config.steps if config.steps is not None else epoch >= config.epochs

    raw.train()
    timer_start = time.perf_counter()
    while not finished() and not stopped:
        train_data.set_epoch(epoch)
        batches = iter(loader)
        skipped = batch_in_epoch
        with timer("resume_skip"):
            for _ in range(skipped):
                next(batches)
        steps_this_epoch = 0
        waited = time.perf_counter()
        for images, targets in batches:
            window["wait"] += time.perf_counter() - waited
            batch_in_epoch += 1
            micro += 1
            images = images.to(device, non_blocking=True, memory_format=memory_format)
            targets = {k: v.to(device, non_blocking=True) for k, v in targets.items()}
            sync = model.no_sync() if micro < config.accum_steps and dist.world_size > 1 else nullcontext()
            with sync:
                with autocast:
                    outputs = model(images)
                losses = torch.stack([task_loss(t, outputs[t.name], targets[t.name], **task_options) for t in tasks])
                loss = (losses * torch.tensor([t.weight for t in tasks], device=device)).sum()
                (loss / config.accum_steps).backward()
            running += torch.cat([loss.detach()[None], losses.detach()])
            window["batches"] += 1
            window["images"] += images.shape[0]
            step_images += images.shape[0]
            if micro < config.accum_steps:
                waited = time.perf_counter()
                continue
            micro = 0
            lr = lr_at(step, **schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(raw.parameters(), config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(raw)
            step += 1
            steps_this_epoch += 1
            images_seen += step_images * dist.world_size
            step_images = 0
            bar.update(1)
            if step % config.log_every == 0 or finished():
                record = _window_metrics(running, window, tasks, dist) | {"step": step, "epoch": epoch, "lr": lr}
                if dist.main:
                    _log(out, {"kind": "train"} | record)
                    bar.set_postfix(loss=f"{record['loss']:.4g}", lr=f"{lr:.2e}",
                                    img_s=f"{record['images_per_s']:.0f}", refresh=False)
                running.zero_()
                window = {"batches": 0, "images": 0, "wait": 0.0, "start": time.perf_counter()}
            if config.eval_every and step % config.eval_every == 0:
                run_eval()
            if step % config.checkpoint_every == 0:
                save()
            if config.steps is not None and finished():
                break
            if config.stop_after_steps is not None and step >= config.stop_after_steps:
                stopped = True
                break
            waited = time.perf_counter()
        else:
            # the epoch's stream ended: drop gradients of an unfinished accumulation, evaluate, checkpoint
            if micro:
                optimizer.zero_grad(set_to_none=True)
                micro, step_images = 0, 0
            if steps_this_epoch == 0 and skipped == 0:
                raise ValueError(f"epoch {epoch} gave no batch; the train split is too small for batch size "
                                 f"{config.batch_size} with {max(config.workers, 1)} worker(s)")
            epoch += 1
            batch_in_epoch = 0
            if not config.eval_every:
                run_eval()
            save()
    bar.close()
    train_seconds = time.perf_counter() - timer_start

    if stopped:  # the test hook: leave last.pt as a kill after a checkpoint would
        save()
        return {"step": step, "epoch": epoch, "stopped": True}
    if evaluated_at != step:
        run_eval()
    if saved_at != step:
        save()
    final = {"step": step, "epoch": epoch, "images_seen": images_seen} | {
        k: v for k, v in last_eval.items() if k not in ("step", "epoch")} | {"best": best}
    if dist.main:
        timer.seconds["train"] = train_seconds
        try:
            inputs = [fingerprint_artifact(shards)]
        except FileNotFoundError:
            inputs = [{"path": str(shards)}]
        write_manifest(out, "train", config=resolved, inputs=inputs, timings=timer.seconds, seed=config.seed,
                       counts={"steps": step, "epochs_completed": epoch, "images_seen": images_seen,
                               "train_samples": info.num_samples.get("train", 0),
                               "val_samples": info.num_samples.get("val", 0)},
                       outputs={"last": LAST, "best": BEST if (out / BEST).is_file() else None, "metrics": final})
    return final


@torch.no_grad()
def validate(model: Encoder, loader: Any, tasks: list[Task], config: TrainConfig, device: torch.device,
             amp_dtype: torch.dtype | None, dist: Distributed) -> dict[str, Any]:
    """Validation loss per task, mAP of the labels task, top-1 of softmax tasks (on rank 0; {} elsewhere).

    mAP is the mean average precision (as sklearn's, see :mod:`weaklabel.eval.classification`) over
    the labels with a positive in the split; P@1 is the share of samples whose top-scored label is
    one of theirs.
    """
    from ..metrics import average_precision

    task_options = {"loss": config.loss, "label_smoothing": config.label_smoothing,
                    "gamma_neg": config.asl_gamma_neg, "gamma_pos": config.asl_gamma_pos, "clip": config.asl_clip}
    was_training = model.training
    model.eval()
    losses = {t.name: [] for t in tasks}
    scores = {t.name: [] for t in tasks}
    targets = {t.name: [] for t in tasks}
    autocast = torch.autocast("cuda", dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    for images, target in loader:
        images = images.to(device, non_blocking=True)
        with autocast:
            outputs = model(images)
        for task in tasks:
            y = target[task.name].to(device)
            mask = valid_mask(task, y)
            losses[task.name].append(per_sample_loss(task, outputs[task.name], y, **task_options)[mask].cpu())
            scores[task.name].append(task_scores(task, outputs[task.name][mask], config.loss).half().cpu())
            targets[task.name].append(y[mask].cpu())
    model.train(was_training)
    parts = [{name: (losses[name], scores[name], targets[name]) for name in losses}]
    if dist.world_size > 1:  # every rank's predictions to rank 0
        gathered: list[Any] | None = [None] * dist.world_size if dist.main else None
        torch_dist.gather_object(parts[0], gathered, dst=0)
        if not dist.main:
            return {}
        parts = gathered  # type: ignore[assignment]
    local = {name: [_cat([t for part in parts for t in part[name][i]]) for i in range(3)] for name in losses}
    metrics: dict[str, Any] = {"val_loss": 0.0}
    for task in tasks:
        loss, score, y = local[task.name]
        if loss is None or not len(loss):
            metrics[f"val_loss_{task.name}"] = None
            continue
        metrics[f"val_loss_{task.name}"] = float(loss.mean())
        metrics["val_loss"] += task.weight * float(loss.mean())
        metrics[f"val_samples_{task.name}"] = len(loss)
        if task.kind == "softmax":
            metrics[f"val_top1_{task.name}"] = float((score.float().argmax(1) == y).float().mean())
        else:
            y_np, s_np = y.numpy() > 0, score.float().numpy()
            positive = y_np.any(0)
            metrics["val_map"] = (float(average_precision(y_np[:, positive], s_np[:, positive]).mean())
                                  if positive.any() else None)
            metrics["val_p_at_1"] = float(y_np[np.arange(len(y_np)), s_np.argmax(1)].mean())
            metrics["val_labels_with_positives"] = int(positive.sum())
    return metrics


def _cat(parts: list[torch.Tensor]) -> torch.Tensor | None:
    return torch.cat(parts) if parts else None


def _window_metrics(running: torch.Tensor, window: dict[str, Any], tasks: list[Task],
                    dist: Distributed) -> dict[str, Any]:
    """Mean losses since the last log (over all ranks), images/s and the share of time spent waiting for data."""
    sums = running.clone()
    if dist.world_size > 1:
        torch_dist.all_reduce(sums)
        sums /= dist.world_size
    means = (sums / max(window["batches"], 1)).tolist()
    elapsed = max(time.perf_counter() - window["start"], 1e-9)
    return {"loss": means[0], **{f"loss_{t.name}": v for t, v in zip(tasks, means[1:])},
            "images_per_s": window["images"] * dist.world_size / elapsed, "window_s": elapsed,
            "data_wait_s": window["wait"], "data_wait_share": window["wait"] / elapsed}


def _log(out: Path, record: dict[str, Any]) -> None:
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S")} | record
    with open(out / METRICS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _trim_metrics(path: Path, step: int) -> None:
    """On resume, drop the lines logged after the checkpoint's step (the resumed run logs them again)."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        path.write_text("".join(line + "\n" for line in kept))
