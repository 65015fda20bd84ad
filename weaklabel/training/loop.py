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
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader

from ..artifacts import Timer, fingerprint_artifact, write_json, write_manifest
from ..corrections import Corrections
from ..datasets.loader import (
    ShardDataset,
    ShardInfo,
    carries_facets,
    carry_classes,
    make_dataset,
    make_loader,
    worker_quota,
)
from ..folders import OutputFolder, Outputs, output_folder
from .allocator import keep_freed_memory
from .checkpoint import (
    BEST,
    LAST,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .cores import CpuPlan, plan_cpu
from .losses import (
    MULTILABEL_LOSSES,
    per_sample_loss,
    task_loss,
    task_scores,
    valid_mask,
)
from .models import (
    LABELS_TASK,
    Encoder,
    Task,
    check_runs,
    facet_label_ids,
    facet_task,
    load_weights,
    parse_facets,
    parse_task,
    task_facet,
)
from .sampling import RepeatFactors, eval_transform, image_settings, train_dataset, train_transform

CONFIG = "config.json"
METRICS = "metrics.jsonl"
OUTPUTS = Outputs("train", frozenset({LAST, BEST, CONFIG, METRICS}), refuse_finished=False)  # resume or overwrite
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
    tasks: list[str] = field(default_factory=list)  # extra tasks "COLUMN:softmax[:WEIGHT]", "facets[:WEIGHT]"
    labels_weight: float = 1.0
    relabel: str | None = None  # an audit folder: its non-visual labels and contradicted pairs leave the targets
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
    workers: int | None = None  # None: from the cores (see .cores)
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
            if parse_facets(task) is None:
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
            if (getattr(self, name) or 0) < 0:
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
    """The labels task over the vocabulary, then per ``--task`` a softmax task over a column or one per facet."""
    tasks = [Task(LABELS_TASK, "multilabel", tuple(info.label_names), config.labels_weight)]
    for spec in config.tasks:
        weight = parse_facets(spec)
        tasks += column_task(shards, spec) if weight is None else facet_tasks(shards, info, weight)
    repeated = sorted(name for name, n in Counter(task.name for task in tasks).items() if n > 1)
    if repeated:
        raise ValueError(f"task {repeated[0]!r} is asked for more than once")
    return tasks


def column_task(shards: Path, spec: str) -> list[Task]:
    """The softmax task of ``"COLUMN:softmax[:WEIGHT]"``, its classes the values the train split carries."""
    column, kind, weight = parse_task(spec)
    classes = carry_classes(shards, column, "train")
    if not classes:
        raise ValueError(f"task {spec!r}: no train sample carries a value in {column!r}; write the shards "
                         f"with --carry {column}")
    return [Task(column, kind, tuple(classes), weight)]


def facet_tasks(shards: Path, info: ShardInfo, weight: float) -> list[Task]:
    """One softmax task per facet of the vocabulary, its classes the facet's labels."""
    if not info.facets:
        raise ValueError("task 'facets': these shards carry no facets: rebuild the vocabulary (weaklabel vocab), "
                         "then assign the labels and write the shards again (weaklabel assign, weaklabel shards)")
    if not carries_facets(shards, "train"):
        raise ValueError("task 'facets': the vocabulary of these shards has facets but their samples carry none "
                         "(written before facets): assign the labels and write the shards again (weaklabel assign, "
                         "weaklabel shards)")
    return [Task(facet_task(facet), "softmax", tuple(info.label_names[i] for i in ids), weight)
            for facet, ids in info.facets.items()]


def batches_per_epoch(num_samples: int, world_size: int, workers: int, batch_size: int) -> int:
    """Full batches one rank gets from an epoch of ``num_samples`` (each worker drops its last partial one)."""
    n = max(workers, 1)
    return sum(worker_quota(num_samples, world_size, w, n) // batch_size for w in range(n))


def train(shards: str | Path, out: str | Path, *, resume: bool = False, overwrite: bool = False,
          **options: Any) -> dict[str, Any]:
    """Train an encoder on a shards folder; write ``last.pt``, ``best.pt``, ``metrics.jsonl``,
    ``config.json`` and ``manifest.json`` to ``out``; return the final metrics.

    ``options`` are :class:`TrainConfig` fields. ``resume=True`` continues the run in ``out`` from
    ``last.pt`` up to the requested steps/epochs (a new run when there is none). ``overwrite``
    starts a new run over the one in ``out``, and writes even if ``out`` holds files this stage did
    not write (they are kept).
    """
    unknown = sorted(set(options) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise TypeError(f"unknown training option(s): {', '.join(unknown)}")
    dist = setup_distributed(options.get("device", "auto"))
    try:
        # only the rank that writes holds the folder's lock
        with output_folder(out, OUTPUTS, overwrite=overwrite) if dist.main else nullcontext() as folder:
            return _train(Path(shards), Path(out), resume, overwrite, options, dist, folder)
    finally:
        if dist.started:
            torch_dist.destroy_process_group()


@dataclass
class RunState:
    """What a run changes as it goes: weights, optimizer and EMA, the position in the train stream, the
    last validation and the best metric. ``last.pt`` holds it and ``restore`` reads it back."""

    model: Encoder
    optimizer: torch.optim.Optimizer
    ema: ModelEmaV3 | None
    timer: Timer
    step: int = 0  # optimizer steps taken
    epoch: int = 0  # the epoch in progress
    batch_in_epoch: int = 0  # loader batches of it consumed
    images_seen: int = 0
    best: dict[str, Any] | None = None
    last_eval: dict[str, Any] = field(default_factory=dict)
    evaluated_at: int = -1  # the step last validated
    saved_at: int = -1  # the step last.pt holds

    def finished(self, config: TrainConfig) -> bool:
        return self.step >= config.steps if config.steps is not None else self.epoch >= config.epochs

    def restore(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        try:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        except ValueError as error:  # weaklabel 0.2 ordered the parameter groups the other way
            raise ValueError(f"the optimizer state in last.pt does not fit this weaklabel ({error}); it was "
                             "written by an older version: start over with --overwrite") from None
        if self.ema is not None and checkpoint.get("ema") is not None:
            self.ema.module.load_state_dict(checkpoint["ema"])
        self.step, self.epoch = checkpoint["step"], checkpoint["epoch"]
        self.batch_in_epoch, self.images_seen = checkpoint["batch_in_epoch"], checkpoint.get("images_seen", 0)
        self.best, self.last_eval = checkpoint.get("best"), checkpoint.get("metrics") or {}
        # last.pt holds this step; when it was saved after validating here, a finished run resumed with
        # the same length neither validates nor saves again (no second eval line)
        self.saved_at, self.evaluated_at = self.step, self.last_eval.get("step", -1)
        set_rng_state(checkpoint["rng"])


@dataclass(frozen=True)
class TrainData:
    """The train stream and its loader, the val loader (None without a val split), optimizer steps per epoch."""

    train: ShardDataset
    loader: DataLoader
    val_loader: DataLoader | None
    steps_per_epoch: int


@dataclass(frozen=True)
class RunSetup:
    """What stays fixed while a run goes: options, folders, devices, tasks, data and schedule."""

    config: TrainConfig
    dist: Distributed
    shards: Path
    out: Path
    device: torch.device
    amp_dtype: torch.dtype | None  # bf16 autocast, or None for fp32
    cpu: CpuPlan
    info: ShardInfo
    tasks: list[Task]
    image: dict[str, Any]  # the checkpoint's "image" entry: what the eval transform needs
    data: TrainData
    schedule: dict[str, Any]  # lr_at's keyword arguments
    net: torch.nn.Module  # the model as the forward pass calls it: under DDP, compiled when asked


def _train(shards: Path, out: Path, resume: bool, overwrite: bool, options: dict[str, Any], dist: Distributed,
           folder: OutputFolder | None) -> dict[str, Any]:
    say = print if dist.main else (lambda *a, **k: None)
    checkpoint = _previous_run(out, resume, overwrite, say)
    resumed = checkpoint is not None
    config = resolve_config(options, checkpoint)
    device, amp_dtype, allocator_tuned = _runtime(config, dist)
    cpu = plan_cpu(config.workers, device)
    timer = Timer()
    with timer("setup"):
        info = ShardInfo.load(shards)
        tasks = _run_tasks(shards, info, config, checkpoint)
        model = _build_model(config, tasks, device, fresh=checkpoint is None, say=say)
        image = image_settings(model.backbone, config.image_size, pretrained=config.pretrained)
        data = _build_data(shards, info, tasks, config, image, dist, cpu.workers)
        optimizer = create_optimizer(model, config, device)
        # updated without a step number: a constant decay, no warmup
        ema = ModelEmaV3(model, decay=config.ema).requires_grad_(False) if config.ema else None
        run = RunState(model, optimizer, ema, timer)
        if checkpoint is not None:
            run.restore(checkpoint)
            del checkpoint  # its tensors are copied into the model and optimizer
        setup = RunSetup(config, dist, shards, out, device, amp_dtype, cpu, info, tasks, image, data,
                         _schedule(config, data.steps_per_epoch), _wrap(model, config, dist, device))
    resolved = _resolved_config(setup, allocator_tuned)
    if folder is not None:  # the main rank: a resumed run keeps its files, a new one removes an earlier run's
        if resumed:
            folder.remove_manifest()
        else:
            folder.clear()
        write_json(out / CONFIG, resolved)
        _trim_metrics(out / METRICS, run.step)

    start = time.perf_counter()
    finished = _train_steps(run, setup)
    train_seconds = time.perf_counter() - start
    if not finished:  # stop_after_steps, the test hook: leave last.pt as a kill after a checkpoint would
        _save(run, setup)
        return {"step": run.step, "epoch": run.epoch, "stopped": True}
    if run.evaluated_at != run.step:
        _validate_and_keep_best(run, setup)
    if run.saved_at != run.step:
        _save(run, setup)
    final = {"step": run.step, "epoch": run.epoch, "images_seen": run.images_seen} | {
        k: v for k, v in run.last_eval.items() if k not in ("step", "epoch")} | {"best": run.best}
    if dist.main:
        timer.seconds["train"] = train_seconds
        _write_manifest(run, setup, resolved, final)
    return final


# ---------------------------------------------------------------------------------------------
# setup: runtime, tasks, model, data, schedule
# ---------------------------------------------------------------------------------------------

def _previous_run(out: Path, resume: bool, overwrite: bool, say: Callable[[str], None]) -> dict[str, Any] | None:
    """``last.pt`` of the run in ``out`` to resume, or None for a new run; a run is overwritten only
    when asked."""
    if resume and (out / LAST).is_file():
        checkpoint = load_checkpoint(out / LAST)
        say(f"resuming {out / LAST} at step {checkpoint['step']} (epoch {checkpoint['epoch']})")
        return checkpoint
    if resume:
        say(f"no {LAST} in {out}: starting a new run")
    elif (out / LAST).is_file() and not overwrite:
        raise ValueError(f"{out} already holds a run; pass --resume to continue it, --overwrite to start over, "
                         "or choose another --out")
    return None


def _runtime(config: TrainConfig, dist: Distributed) -> tuple[torch.device, torch.dtype | None, bool]:
    """The device, the autocast dtype (None: fp32) and whether malloc now keeps freed memory (CPU);
    sets torch's kernel choices."""
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
    return device, amp_dtype, allocator_tuned


def _run_tasks(shards: Path, info: ShardInfo, config: TrainConfig, checkpoint: dict[str, Any] | None) -> list[Task]:
    """The checkpoint's tasks on resume (its vocabulary must be the shards'), else the options'."""
    if checkpoint is None:
        return build_tasks(shards, info, config)
    tasks = [Task.from_dict(t) for t in checkpoint["tasks"]]
    if list(tasks[0].classes) != info.label_names:
        raise ValueError(f"the vocabulary of {shards} differs from the checkpoint's")
    return tasks


def _build_model(config: TrainConfig, tasks: list[Task], device: torch.device, *, fresh: bool,
                 say: Callable[[str], None]) -> Encoder:
    """The encoder initialized from ``config.seed``, checked to run at the image size, on ``device``. A
    ``fresh`` run loads the pretrained or ``--weights`` weights; a resumed one gets its own from last.pt."""
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = Encoder(config.model, tasks, embed_dim=config.embed_dim, pretrained=config.pretrained and fresh,
                    image_size=config.image_size, drop_path_rate=config.drop_path)
    check_runs(model, config.model, config.image_size)
    if config.weights and fresh:
        report = load_weights(model, config.weights)
        say(f"loaded {config.weights}: " + "; ".join(
            f"{len(keys)} {kind} keys" + (f" ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})"
                                          if keys else "") for kind, keys in report.items()))
    return model.to(device=device, memory_format=_memory_format(device))


def _build_data(shards: Path, info: ShardInfo, tasks: list[Task], config: TrainConfig, image: dict[str, Any],
                dist: Distributed, workers: int) -> TrainData:
    repeat = RepeatFactors.from_shards(shards, config.repeat_threshold) if config.balance else None
    carry = {t.name: list(t.classes) for t in tasks[1:] if task_facet(t.name) is None}
    facets = facet_label_ids(tasks, info.facets, info.label_names)
    corrections = Corrections.read(config.relabel) if config.relabel else None
    augment = train_transform(config.image_size, mean=image["mean"], std=image["std"], crop_scale=config.crop_scale,
                              color_jitter=config.color_jitter)
    train_data = train_dataset(shards, transform=augment, num_labels=len(info.label_names), carry_targets=carry,
                               facet_targets=facets, corrections=corrections, image_size=config.image_size,
                               shuffle_buffer=config.shuffle_buffer, seed=config.seed, repeat=repeat)
    # its own generator: starting an epoch's iterator must not draw from the global RNG (resume)
    loader = make_loader(train_data, config.batch_size, workers, drop_last=True,
                         generator=torch.Generator().manual_seed(config.seed))
    val_loader = None
    if "val" in info.splits and info.num_samples.get("val"):
        val_data = make_dataset(shards, "val", training=False, carry_targets=carry, facet_targets=facets,
                                corrections=corrections,
                                image_size=config.image_size,
                                transform=eval_transform(config.image_size, mean=image["mean"], std=image["std"],
                                                         interpolation=image["interpolation"],
                                                         crop_pct=image["crop_pct"]))
        val_loader = make_loader(val_data, config.batch_size, workers, persistent_workers=False,
                                 generator=torch.Generator().manual_seed(config.seed))
    epoch_batches = batches_per_epoch(train_data.num_samples, dist.world_size, workers, config.batch_size)
    steps_per_epoch = epoch_batches // config.accum_steps
    if steps_per_epoch == 0:
        raise ValueError(f"the train split ({train_data.num_samples} samples over {dist.world_size} rank(s) and "
                         f"{max(workers, 1)} worker(s)) gives no full batch of {config.batch_size}"
                         + (f" x {config.accum_steps} accumulation steps" if config.accum_steps > 1 else ""))
    return TrainData(train_data, loader, val_loader, steps_per_epoch)


def _schedule(config: TrainConfig, steps_per_epoch: int) -> dict[str, Any]:
    """``lr_at``'s arguments: the run's length in steps and its warmup (5% of it unless given)."""
    total_steps = config.steps if config.steps is not None else config.epochs * steps_per_epoch
    warmup_steps = config.warmup_steps if config.warmup_steps is not None else round(0.05 * total_steps)
    return {"base_lr": config.lr, "min_lr": config.min_lr, "warmup_steps": warmup_steps, "total_steps": total_steps}


def _wrap(model: Encoder, config: TrainConfig, dist: Distributed, device: torch.device) -> torch.nn.Module:
    """The model under DDP with several ranks (wrapped after restoring: DDP broadcasts rank 0's weights),
    then compiled with ``--compile``."""
    net: torch.nn.Module = model
    if dist.world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None)
    if config.compile:
        net = torch.compile(net)
    return net


def _resolved_config(setup: RunSetup, allocator_tuned: bool) -> dict[str, Any]:
    """``config.json``: every option, and under ``resolved`` what the run made of them."""
    tasks = [{"name": t.name, "kind": t.kind, "classes": len(t.classes), "weight": t.weight} for t in setup.tasks]
    return asdict(setup.config) | {"resolved": {
        "device": str(setup.device), "precision": "bf16" if setup.amp_dtype else "fp32",
        "keep_freed_memory": allocator_tuned, "world_size": setup.dist.world_size,
        "cores": setup.cpu.cores, "threads": setup.cpu.threads, "workers": setup.cpu.workers,
        "total_steps": setup.schedule["total_steps"], "warmup_steps": setup.schedule["warmup_steps"],
        "steps_per_epoch": setup.data.steps_per_epoch, "train_samples_per_epoch": setup.data.train.num_samples,
        "image_mean": setup.image["mean"], "image_std": setup.image["std"],
        "image_interpolation": setup.image["interpolation"], "image_crop_pct": setup.image["crop_pct"],
        "tasks": tasks}}


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------

def _train_steps(run: RunState, setup: RunSetup) -> bool:
    """Optimizer steps until the run is finished (True) or ``stop_after_steps`` stops it (False)."""
    from tqdm.auto import tqdm

    config = setup.config
    batches = EpochBatches(setup.data, run.timer)
    window = LossWindow(len(setup.tasks) + 1, setup.device)
    total_steps = setup.schedule["total_steps"]
    run.model.train()
    with tqdm(total=total_steps, initial=min(run.step, total_steps), desc="train", unit="step", dynamic_ncols=True,
              disable=not (config.progress and setup.dist.main), file=sys.stderr) as bar:
        while not run.finished(config):
            if batches.between_epochs:
                batches.start_epoch(run)
            lr = lr_at(run.step, **setup.schedule)
            step_images = 0
            for micro in range(config.accum_steps):
                with window.waiting():
                    batch = batches.next(run)
                if batch is None:
                    break
                step_images += _forward_backward(setup, batch, window, last=micro == config.accum_steps - 1)
            if batch is None:  # the epoch's stream ended, possibly mid-accumulation
                _end_epoch(run, setup, batches)
                continue
            _optimizer_step(run, lr, config.grad_clip)
            run.images_seen += step_images * setup.dist.world_size
            bar.update(1)
            if run.step % config.log_every == 0 or run.finished(config):
                _log_train(run, setup, window, lr, bar)
            if run.finished(config):
                bar.close()  # before the last validation's line, so the bar is not drawn again below it
            if config.eval_every and run.step % config.eval_every == 0:
                _validate_and_keep_best(run, setup)
            if run.step % config.checkpoint_every == 0:
                _save(run, setup)
            if config.stop_after_steps is not None and run.step >= config.stop_after_steps:
                return False
    return True


class EpochBatches:
    """The train loader's batches one epoch at a time: ``next`` gives None at the end of an epoch."""

    def __init__(self, data: TrainData, timer: Timer) -> None:
        self.data, self.timer = data, timer
        self.batches: Iterator[Any] = iter(())
        self.between_epochs = True
        self.skipped = 0  # batches of the epoch consumed before this start (resume)
        self.first_step = 0  # the step this start was at

    def start_epoch(self, run: RunState) -> None:
        """The epoch's stream, fixed by (seed, epoch), past the batches ``run`` already consumed of it."""
        self.data.train.set_epoch(run.epoch)
        self.batches, self.between_epochs = iter(self.data.loader), False
        self.skipped, self.first_step = run.batch_in_epoch, run.step
        with self.timer("resume_skip"):
            for _ in range(self.skipped):
                next(self.batches)

    def next(self, run: RunState) -> Any | None:
        batch = next(self.batches, None)
        if batch is None:
            self.between_epochs = True
        else:
            run.batch_in_epoch += 1
        return batch


class LossWindow:
    """Losses, images and data wait since the last train log line."""

    def __init__(self, num_losses: int, device: torch.device) -> None:
        self.sums = torch.zeros(num_losses, device=device)  # the total loss, then each task's, summed over batches
        self.reset()

    def reset(self) -> None:
        self.sums.zero_()
        self.batches, self.images, self.wait, self.start = 0, 0, 0.0, time.perf_counter()

    def add(self, losses: torch.Tensor, images: int) -> None:
        self.sums += losses
        self.batches += 1
        self.images += images

    @contextmanager
    def waiting(self) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.wait += time.perf_counter() - start

    def metrics(self, tasks: list[Task], dist: Distributed) -> dict[str, Any]:
        """Mean losses (over all ranks), images/s and the share of time spent waiting for data."""
        sums = self.sums.clone()
        if dist.world_size > 1:
            torch_dist.all_reduce(sums)
            sums /= dist.world_size
        means = (sums / max(self.batches, 1)).tolist()
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        return {"loss": means[0], **{f"loss_{t.name}": v for t, v in zip(tasks, means[1:])},
                "images_per_s": self.images * dist.world_size / elapsed, "window_s": elapsed,
                "data_wait_s": self.wait, "data_wait_share": self.wait / elapsed}


def _forward_backward(setup: RunSetup, batch: Any, window: LossWindow, *, last: bool) -> int:
    """Add one batch's gradients (the ``last`` of an accumulation syncs them across ranks); return its size."""
    images, targets = batch
    images = images.to(setup.device, non_blocking=True, memory_format=_memory_format(setup.device))
    targets = {k: v.to(setup.device, non_blocking=True) for k, v in targets.items()}
    options = _loss_options(setup.config)
    sync = setup.net.no_sync() if not last and setup.dist.world_size > 1 else nullcontext()
    with sync:
        with _autocast(setup.amp_dtype):
            outputs = setup.net(images)
        losses = torch.stack([task_loss(t, outputs[t.name], targets[t.name], **options) for t in setup.tasks])
        loss = (losses * torch.tensor([t.weight for t in setup.tasks], device=setup.device)).sum()
        (loss / setup.config.accum_steps).backward()
    window.add(torch.cat([loss.detach()[None], losses.detach()]), images.shape[0])
    return images.shape[0]


def _optimizer_step(run: RunState, lr: float, grad_clip: float | None) -> None:
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.ema is not None:
        run.ema.update(run.model)
    run.step += 1


def _end_epoch(run: RunState, setup: RunSetup, batches: EpochBatches) -> None:
    """The epoch's stream ended: drop the gradients of an unfinished accumulation, move to the next
    epoch, validate (unless validation goes by steps) and checkpoint."""
    run.optimizer.zero_grad(set_to_none=True)
    if run.step == batches.first_step and batches.skipped == 0:
        raise ValueError(f"epoch {run.epoch} gave no batch; the train split is too small for batch size "
                         f"{setup.config.batch_size} with {max(setup.cpu.workers, 1)} worker(s)")
    run.epoch += 1
    run.batch_in_epoch = 0
    if not setup.config.eval_every:
        _validate_and_keep_best(run, setup)
    _save(run, setup)


def _log_train(run: RunState, setup: RunSetup, window: LossWindow, lr: float, bar: Any) -> None:
    record = window.metrics(setup.tasks, setup.dist) | {"step": run.step, "epoch": run.epoch, "lr": lr}
    window.reset()
    if setup.dist.main:
        _log(setup.out, {"kind": "train"} | record)
        bar.set_postfix(loss=f"{record['loss']:.4g}", lr=f"{lr:.2e}", img_s=f"{record['images_per_s']:.0f}",
                        refresh=False)


def _validate_and_keep_best(run: RunState, setup: RunSetup) -> None:
    """Validate (the EMA weights when kept), log the metrics and save ``best.pt`` when they are the best yet."""
    if setup.data.val_loader is None:
        return
    run.evaluated_at = run.step
    with run.timer("eval"):
        metrics = validate(run.ema.module if run.ema is not None else run.model, setup.data.val_loader,
                           setup.tasks, setup.config, setup.device, setup.amp_dtype, setup.dist)
    if not setup.dist.main:
        return
    run.saved_at = -1  # last.pt now lacks these metrics
    run.last_eval = {"step": run.step, "epoch": run.epoch} | metrics
    _log(setup.out, {"kind": "eval"} | run.last_eval)
    if setup.config.progress:
        from tqdm.auto import tqdm

        tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in run.last_eval.items()))
    name, value = best_metric(metrics, setup.tasks)
    if run.best is None or value > run.best["value"]:
        run.best = {"metric": name, "value": value, "step": run.step}
        _save(run, setup, BEST)


def best_metric(metrics: dict[str, Any], tasks: list[Task]) -> tuple[str, float]:
    """The validation figure ``best.pt`` is chosen by, higher being better: one of a trained task
    (weight > 0), since an untrained head's scores are noise. The labels task's mAP, else the first
    trained softmax task's top-1, else the weighted loss (in which untrained tasks weigh nothing)."""
    trained = [task for task in tasks if task.weight > 0]
    if any(task.name == LABELS_TASK for task in trained) and metrics.get("val_map") is not None:
        return "val_map", metrics["val_map"]
    for task in trained:
        top1 = metrics.get(f"val_top1_{task.name}")
        if task.kind == "softmax" and top1 is not None:
            return f"val_top1_{task.name}", top1
    return "neg_val_loss", -metrics["val_loss"]


@torch.no_grad()
def validate(model: Encoder, loader: Any, tasks: list[Task], config: TrainConfig, device: torch.device,
             amp_dtype: torch.dtype | None, dist: Distributed) -> dict[str, Any]:
    """Validation loss per task, mAP of the labels task, top-1 of softmax tasks (on rank 0; {} elsewhere).

    mAP is the mean average precision (as sklearn's, see :mod:`weaklabel.eval.classification`) over
    the labels with a positive in the split; P@1 is the share of samples whose top-scored label is
    one of theirs.
    """
    from ..metrics import average_precision

    task_options = _loss_options(config)
    was_training = model.training
    model.eval()
    losses = {t.name: [] for t in tasks}
    scores = {t.name: [] for t in tasks}
    targets = {t.name: [] for t in tasks}
    for images, target in loader:
        images = images.to(device, non_blocking=True)
        with _autocast(amp_dtype):
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


# ---------------------------------------------------------------------------------------------
# checkpoints and artifacts
# ---------------------------------------------------------------------------------------------

def _save(run: RunState, setup: RunSetup, name: str = LAST) -> None:
    if name == LAST:
        run.saved_at = run.step
    if setup.dist.main:
        with run.timer("checkpoint"):
            save_checkpoint(setup.out / name, _checkpoint(run, setup))


def _checkpoint(run: RunState, setup: RunSetup) -> dict[str, Any]:
    """The checkpoint's entries (see :mod:`.checkpoint`); ``ema`` is the averaged model's own state_dict."""
    return {"model": run.model.state_dict(), "ema": run.ema.module.state_dict() if run.ema is not None else None,
            "optimizer": run.optimizer.state_dict(), "scheduler": setup.schedule, "step": run.step,
            "epoch": run.epoch, "batch_in_epoch": run.batch_in_epoch, "images_seen": run.images_seen,
            "best": run.best, "rng": rng_state(), "config": asdict(setup.config),
            "tasks": [t.to_dict() for t in setup.tasks], "label_names": setup.info.label_names,
            "image": setup.image, "metrics": run.last_eval}


def _write_manifest(run: RunState, setup: RunSetup, resolved: dict[str, Any], final: dict[str, Any]) -> None:
    try:
        inputs = [fingerprint_artifact(setup.shards)]
    except FileNotFoundError:
        inputs = [{"path": str(setup.shards)}]
    counts = {"steps": run.step, "epochs_completed": run.epoch, "images_seen": run.images_seen,
              "train_samples": setup.info.num_samples.get("train", 0),
              "val_samples": setup.info.num_samples.get("val", 0)}
    outputs = {"last": LAST, "best": BEST if (setup.out / BEST).is_file() else None, "metrics": final}
    write_manifest(setup.out, "train", config=resolved, inputs=inputs, timings=run.timer.seconds,
                   seed=setup.config.seed, counts=counts, outputs=outputs)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _loss_options(config: TrainConfig) -> dict[str, Any]:
    return {"loss": config.loss, "label_smoothing": config.label_smoothing, "gamma_neg": config.asl_gamma_neg,
            "gamma_pos": config.asl_gamma_pos, "clip": config.asl_clip}


def _autocast(amp_dtype: torch.dtype | None) -> Any:
    return torch.autocast("cuda", dtype=amp_dtype) if amp_dtype is not None else nullcontext()


def _memory_format(device: torch.device) -> torch.memory_format:
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


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
