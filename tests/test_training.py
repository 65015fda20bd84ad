"""The training stage on shards written by the real pipeline from the generated example catalogue.

Models are tiny (resnet10t at 32 px) and runs a few steps long; torch uses one thread, which is
both faster and steadier on small, busy machines.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
import webdataset as wds
from timm.utils import ModelEmaV3
from torch import nn

from weaklabel.cli import main
from weaklabel.datasets.loader import (
    ShardInfo,
    SharedEpoch,
    carry_classes,
    iter_samples,
)
from weaklabel.training import Encoder, Task, allocator, train
from weaklabel.training.checkpoint import rng_state, set_rng_state
from weaklabel.training.loop import TrainConfig, best_metric, create_optimizer, lr_at
from weaklabel.training.losses import (
    asymmetric_loss,
    bce_loss,
    soft_target_cross_entropy,
    task_loss,
)
from weaklabel.training.models import load_weights, parse_task
from weaklabel.training.sampling import (
    RepeatFactors,
    category_repeat_factors,
    eval_transform,
    image_repeat_factor,
    image_settings,
    label_frequencies,
    repeat_samples,
    stochastic_round,
    train_dataset,
)

TINY = {"model": "resnet10t", "image_size": 32, "embed_dim": 16, "batch_size": 8, "workers": 0,
        "progress": False, "shuffle_buffer": 20}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shards(example_shards: Path) -> Path:
    return example_shards


@pytest.fixture(scope="module")
def tiny(shards: Path, tmp_path_factory) -> Path:
    """40 train samples in two shards and the whole val split: 5 batches of 8 per epoch."""
    return subset_shards(shards, tmp_path_factory.mktemp("tiny") / "shards", {"train": [20, 20], "val": None})


def subset_shards(source: Path, out: Path, plan: dict[str, list[int] | None]) -> Path:
    """The first samples of each split of ``source`` in shards of the given sizes (None: copy the split)."""
    info = ShardInfo.load(source)
    out.mkdir(parents=True)
    splits = {}
    for split, sizes in plan.items():
        urls = info.shard_urls(split)
        if sizes is None:
            for url in urls:
                shutil.copy(url, out / Path(url).name)
            names = [Path(url).name for url in urls]
            splits[split] = {"name": split, "num_samples": info.num_samples[split], "filenames": names}
            continue
        raw = wds.tarfile_to_samples()({"url": url} for url in urls)
        names = []
        for index, size in enumerate(sizes):
            names.append(f"{split}-{index:06d}.tar")
            with wds.TarWriter(str(out / names[-1])) as tar:
                for _ in range(size):
                    sample = next(raw)
                    tar.write({k: v for k, v in sample.items() if k == "__key__" or not k.startswith("__")})
        splits[split] = {"name": split, "num_samples": sum(sizes), "filenames": names, "shard_lengths": sizes}
    (out / "_info.json").write_text(json.dumps({"name": "tiny", "splits": splits}))
    shutil.copy(source / "labels.parquet", out / "labels.parquet")
    shutil.copy(source / "manifest.json", out / "manifest.json")
    return out


def only_plain_types(value) -> bool:
    """What ``torch.load(weights_only=True)`` promises: tensors and plain containers/scalars."""
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and only_plain_types(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(only_plain_types(v) for v in value)
    return value is None or isinstance(value, (torch.Tensor, str, int, float, bool))


# ------------------------------------------------------------------------------------------------
# a run through the CLI
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_run(tiny: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "cli"
    code = main(["train", str(tiny), "--out", str(out), "--model", "resnet10t", "--image-size", "32",
                 "--embed-dim", "16", "--batch-size", "8", "--epochs", "2", "--workers", "0", "--log-every", "2",
                 "--task", "true_type:softmax:0.5", "--shuffle-buffer", "20", "--checkpoint-every", "3", "-q"])
    assert code == 0
    return out


def test_cli_run_writes_the_run_folder(cli_run: Path, tiny: Path):
    assert {p.name for p in cli_run.iterdir()} >= {"last.pt", "best.pt", "metrics.jsonl", "config.json",
                                                    "manifest.json"}
    lines = [json.loads(line) for line in (cli_run / "metrics.jsonl").read_text().splitlines()]
    train_lines = [line for line in lines if line["kind"] == "train"]
    evals = [line for line in lines if line["kind"] == "eval"]
    assert [line["step"] for line in train_lines] == [2, 4, 6, 8, 10]  # 5 full batches of 8 per epoch
    assert {"loss", "loss_labels", "loss_true_type", "lr", "images_per_s", "data_wait_s",
            "data_wait_share", "epoch"} <= set(train_lines[0])
    assert [(e["step"], e["epoch"]) for e in evals] == [(5, 1), (10, 2)]  # after each epoch
    assert 0 < evals[-1]["val_map"] <= 1 and 0 <= evals[-1]["val_top1_true_type"] <= 1
    config = json.loads((cli_run / "config.json").read_text())
    assert config["model"] == "resnet10t" and config["tasks"] == ["true_type:softmax:0.5"]
    assert config["resolved"]["total_steps"] == 10 and config["resolved"]["device"] == "cpu"
    assert config["resolved"]["keep_freed_memory"] is glibc_without_user_malloc_settings()
    assert config["resolved"]["workers"] == 0 and config["resolved"]["threads"] == 1  # OMP_NUM_THREADS=1 here
    manifest = json.loads((cli_run / "manifest.json").read_text())
    assert manifest["stage"] == "train" and manifest["counts"]["steps"] == 10
    assert manifest["counts"]["images_seen"] == 80 and manifest["inputs"][0]["path"] == str(tiny)


def glibc_without_user_malloc_settings() -> bool:
    return (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
            and not any(name in os.environ for name in allocator.USER_SETTINGS))


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_malloc_settings_are_applied_unless_the_user_set_them(monkeypatch):
    for name in allocator.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert allocator.keep_freed_memory() is True
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert allocator.keep_freed_memory() is False


def test_cli_without_a_val_split_says_there_is_no_best_checkpoint(tiny: Path, tmp_path: Path, capsys):
    no_val = subset_shards(tiny, tmp_path / "shards", {"train": None})
    out = tmp_path / "run"
    assert main(["train", str(no_val), "--out", str(out), "--model", "resnet10t", "--image-size", "32",
                 "--embed-dim", "16", "--batch-size", "8", "--steps", "2", "--workers", "0", "-q"]) == 0
    text = capsys.readouterr().out
    assert "trained 2 steps (0 full epochs, 16 images)" in text
    assert "no best.pt" in text and not (out / "best.pt").exists() and (out / "last.pt").is_file()


def test_checkpoints_load_with_weights_only(cli_run: Path, tiny: Path):
    for name in ("last.pt", "best.pt"):
        state = torch.load(cli_run / name, weights_only=True)
        assert only_plain_types(state)
        assert {"model", "optimizer", "scheduler", "step", "epoch", "rng", "config", "tasks", "label_names",
                "ema"} <= set(state)
    last = torch.load(cli_run / "last.pt", weights_only=True)
    assert (last["step"], last["epoch"], last["batch_in_epoch"]) == (10, 2, 0)
    assert last["label_names"] == ShardInfo.load(tiny).label_names
    tasks = {t["name"]: t for t in last["tasks"]}
    assert tasks["true_type"]["classes"] == carry_classes(tiny, "true_type")
    assert tasks["true_type"]["kind"] == "softmax" and tasks["true_type"]["weight"] == 0.5
    assert last["model"]["heads.true_type.weight"].shape == (len(tasks["true_type"]["classes"]), 16)
    assert last["best"]["metric"] == "val_map"
    assert last["image"] == {"size": 32, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                             "interpolation": "bilinear", "crop_pct": 1.0}


def test_resume_refuses_other_options_and_existing_runs(cli_run: Path, tiny: Path):
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny, cli_run, **TINY)
    with pytest.raises(ValueError, match="lr=0.5 differs"):
        train(tiny, cli_run, resume=True, lr=0.5)
    with pytest.raises(TypeError, match="unknown training option"):
        train(tiny, cli_run, learning_rate=0.5)


def test_resuming_a_finished_run_changes_nothing(tiny: Path, tmp_path: Path):
    out = tmp_path / "run"
    first = train(tiny, out, steps=3, **TINY)
    lines = (out / "metrics.jsonl").read_text()
    last = (out / "last.pt").stat().st_mtime_ns
    again = train(tiny, out, resume=True, steps=3)
    assert again == first
    assert (out / "metrics.jsonl").read_text() == lines  # no second eval line at step 3
    assert (out / "last.pt").stat().st_mtime_ns == last
    longer = train(tiny, out, resume=True, steps=4)
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals if e["kind"] == "eval"] == [3, 4] and longer["step"] == 4


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tiny: Path, tmp_path: Path):
    # 5 batches per epoch (fewer or more with repeats), 2 batches per step: crosses epochs, drops a
    # leftover batch at an epoch end, and stops mid-epoch
    options = TINY | {"steps": 8, "accum_steps": 2, "batch_size": 4, "ema": 0.9, "balance": "repeat-factor",
                      "repeat_threshold": 0.05, "log_every": 2, "eval_every": 4, "checkpoint_every": 100,
                      "tasks": ["true_type:softmax"], "drop_path": 0.1}
    whole = train(tiny, tmp_path / "whole", **options)
    stopped = train(tiny, tmp_path / "parts", stop_after_steps=3, **options)
    assert stopped == {"step": 3, "epoch": stopped["epoch"], "stopped": True}
    assert torch.load(tmp_path / "parts" / "last.pt", weights_only=True)["step"] == 3
    resumed = train(tiny, tmp_path / "parts", resume=True, **options)
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "parts" / "last.pt", weights_only=True)
    assert (a["step"], a["epoch"], a["batch_in_epoch"]) == (b["step"], b["epoch"], b["batch_in_epoch"])
    assert a["epoch"] >= 1  # the run crossed an epoch boundary
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert whole["val_map"] == resumed["val_map"]
    logged = {name: [json.loads(line)["step"] for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
              for name in ("whole", "parts")}
    assert logged["whole"] == logged["parts"]


def test_weights_file_is_loaded_and_its_odd_keys_reported(tiny: Path, tmp_path: Path):
    torch.manual_seed(1)
    source = Encoder("resnet10t", [Task("labels", "multilabel", ("a", "b"))], embed_dim=16)
    state = {f"module.{k}": v for k, v in source.backbone.state_dict().items()} | {"fc.weight": torch.zeros(3, 512)}
    torch.save(state, tmp_path / "backbone.pt")
    torch.manual_seed(2)
    target = Encoder("resnet10t", [Task("labels", "multilabel", ("a", "b", "c"))], embed_dim=16)
    report = load_weights(target, tmp_path / "backbone.pt")
    assert report == {"missing": [], "unexpected": ["fc.weight"], "mismatched": []}
    for name, value in source.backbone.state_dict().items():
        assert torch.equal(target.backbone.state_dict()[name], value)
    # a whole weaklabel checkpoint: the heads whose class counts differ are reported, not loaded
    torch.save({"model": source.state_dict(), "config": {}}, tmp_path / "run.pt")
    report = load_weights(target, tmp_path / "run.pt")
    assert report["mismatched"] == ["heads.labels.bias", "heads.labels.weight"]
    assert torch.equal(target.embed_head.weight, source.embed_head.weight)
    # through train(): zero steps leaves the loaded backbone in last.pt
    train(tiny, tmp_path / "run", **TINY | {"steps": 0, "weights": str(tmp_path / "backbone.pt")})
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    assert torch.equal(saved["backbone.conv1.0.weight"], source.backbone.state_dict()["conv1.0.weight"])


def test_ddp_on_two_cpu_processes(tiny: Path, tmp_path: Path):
    out = tmp_path / "ddp"
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "weaklabel.cli", "train", str(tiny), "--out", str(out), "--model", "resnet10t",
               "--image-size", "32", "--embed-dim", "16", "--batch-size", "4", "--steps", "6", "--workers", "0",
               "--log-every", "1", "--checkpoint-every", "2", "--shuffle-buffer", "10", "-q"]
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained 6 steps") == 1  # rank 0 alone reports
    last = torch.load(out / "last.pt", weights_only=True)
    # 40 samples: 20 per rank, 5 batches of 4 per epoch on each
    assert (last["step"], last["epoch"], last["batch_in_epoch"]) == (6, 1, 1)
    config = json.loads((out / "config.json").read_text())
    assert config["resolved"]["world_size"] == 2 and config["resolved"]["steps_per_epoch"] == 5
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["images_seen"] == 6 * 4 * 2
    assert (out / "best.pt").is_file()


# ------------------------------------------------------------------------------------------------
# losses
# ------------------------------------------------------------------------------------------------

LOGITS = torch.tensor([[2.0, -1.0, 0.5, -3.0], [-0.5, 1.5, -2.0, 0.0], [0.3, 0.2, -0.1, 4.0]])
TARGETS = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_bce_sums_the_binary_cross_entropy_of_each_label():
    for eps in (0.0, 0.1):
        expected = [sum(-(y * math.log(sigmoid(x)) + (1 - y) * math.log(1 - sigmoid(x)))
                        for x, y in zip(row, (t * (1 - eps) + eps / 2 for t in targets)))
                    for row, targets in zip(LOGITS.tolist(), TARGETS.tolist())]
        assert torch.allclose(bce_loss(LOGITS, TARGETS, label_smoothing=eps), torch.tensor(expected), atol=1e-5)


def test_asymmetric_loss_follows_the_paper():
    gamma_neg, gamma_pos, clip = 4.0, 1.0, 0.05
    expected = []
    for row, targets in zip(LOGITS.tolist(), TARGETS.tolist()):
        total = 0.0
        for x, y in zip(row, targets):
            p = sigmoid(x)
            p_m = max(p - clip, 0.0)
            total -= y * (1 - p) ** gamma_pos * math.log(p) + (1 - y) * p_m ** gamma_neg * math.log(1 - p_m)
        expected.append(total)
    got = asymmetric_loss(LOGITS, TARGETS, gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip)
    assert torch.allclose(got, torch.tensor(expected), atol=1e-5)
    # no focusing and no clip: plain BCE
    assert torch.allclose(asymmetric_loss(LOGITS, TARGETS, gamma_neg=0, gamma_pos=0, clip=0),
                          bce_loss(LOGITS, TARGETS), atol=1e-5)


def test_softmax_loss_uses_the_normalized_multi_hot():
    for eps in (0.0, 0.2):
        expected = []
        for row, targets in zip(LOGITS.tolist(), TARGETS.tolist()):
            log_z = math.log(sum(math.exp(x) for x in row))
            dist = [t / max(sum(targets), 1e-12) for t in targets]
            dist = [d * (1 - eps) + eps / len(row) for d in dist] if eps else dist
            expected.append(-sum(d * (x - log_z) for d, x in zip(dist, row)))
        got = soft_target_cross_entropy(LOGITS, TARGETS, label_smoothing=eps)
        assert torch.allclose(got, torch.tensor(expected), atol=1e-5)


def test_task_losses_leave_out_samples_without_a_target():
    labels = Task("labels", "multilabel", ("a", "b", "c", "d"))
    for loss in ("bce", "asl", "softmax"):
        masked = task_loss(labels, LOGITS, TARGETS, loss=loss)
        kept = task_loss(labels, LOGITS[:2], TARGETS[:2], loss=loss)  # row 3 has no label
        assert torch.allclose(masked, kept)
    kind = Task("kind", "softmax", ("a", "b", "c", "d"))
    index = torch.tensor([0, -1, 3])
    expected = (F.cross_entropy(LOGITS[[0]], index[[0]]) + F.cross_entropy(LOGITS[[2]], index[[2]])) / 2
    assert torch.allclose(task_loss(kind, LOGITS, index), expected)
    # a batch where nobody has a target: 0, and still differentiable
    logits = LOGITS.clone().requires_grad_()
    zero = task_loss(kind, logits, torch.tensor([-1, -1, -1]))
    zero.backward()
    assert zero.item() == 0 and torch.count_nonzero(logits.grad) == 0


def test_unavailable_pretrained_weights_point_to_weights_file(monkeypatch):
    import timm

    from weaklabel.training.models import create_backbone

    def offline(*args, **kwargs):
        raise OSError("cannot reach the hub")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(ValueError, match="pretrained weights for resnet10t .*cannot reach the hub.*--weights"):
        create_backbone("resnet10t", pretrained=True)
    with pytest.raises(OSError, match="cannot reach the hub"):  # other failures are left as they are
        create_backbone("resnet10t")


def test_task_specs_parse():
    assert parse_task("articleType:softmax") == ("articleType", "softmax", 1.0)
    assert parse_task("true_type:softmax:0.3") == ("true_type", "softmax", 0.3)
    for bad in ("true_type", "true_type:bce", "labels:softmax", "x:softmax:heavy"):
        with pytest.raises(ValueError):
            parse_task(bad)


def test_best_checkpoint_is_chosen_by_a_trained_task():
    metrics = {"val_map": 0.31, "val_top1_kind": 0.72, "val_loss": 1.5}

    def chosen(labels_weight: float, kind_weight: float) -> tuple[str, float]:
        return best_metric(metrics, [Task("labels", "multilabel", ("a", "b"), labels_weight),
                                     Task("kind", "softmax", ("x", "y"), kind_weight)])

    assert chosen(1.0, 0.5) == ("val_map", 0.31)
    assert chosen(0.0, 0.5) == ("val_top1_kind", 0.72)  # not the untrained label head's mAP
    assert chosen(0.0, 0.0) == ("neg_val_loss", -1.5)
    assert best_metric({"val_map": None, "val_loss": 2.0}, [Task("labels", "multilabel", ("a",))]) == (
        "neg_val_loss", -2.0)

# ------------------------------------------------------------------------------------------------
# repeat-factor sampling
# ------------------------------------------------------------------------------------------------

def test_repeat_factors_follow_the_formula():
    factors = category_repeat_factors([0.5, 0.01, 0.0025, 0.0], threshold=0.04)
    assert np.allclose(factors, [1.0, 2.0, 4.0, 1.0])
    assert image_repeat_factor([0, 1], factors) == 2.0
    assert image_repeat_factor([0, 2, 1], factors) == 4.0
    assert image_repeat_factor([], factors) == 1.0


def test_stochastic_rounding_is_unbiased_and_deterministic():
    keys = [f"k{i}" for i in range(4000)]
    draws = [stochastic_round(1.3, 0, 0, key) for key in keys]
    assert set(draws) == {1, 2} and abs(np.mean(draws) - 1.3) < 0.03
    assert draws == [stochastic_round(1.3, 0, 0, key) for key in keys]
    assert draws != [stochastic_round(1.3, 0, 1, key) for key in keys]  # a new draw each epoch
    assert draws != [stochastic_round(1.3, 1, 0, key) for key in keys]
    assert all(stochastic_round(3.0, 0, 0, key) == 3 for key in keys[:100])


def test_rare_label_images_appear_about_r_times_as_often(shards: Path):
    threshold = 0.05
    repeat = RepeatFactors.from_shards(shards, threshold)
    frequencies, images = label_frequencies(shards)
    metas = {s["key"]: s["json"] for s in iter_samples(shards, "train")}
    assert images == len(metas) == ShardInfo.load(shards).num_samples["train"]
    counts = Counter(label for meta in metas.values() for label in set(meta["labels"]))
    assert np.allclose(frequencies[list(counts)], [counts[c] / images for c in counts])
    factor = {key: image_repeat_factor(set(meta["labels"]), repeat.factors) for key, meta in metas.items()}
    assert repeat.expected_samples == round(sum(factor.values()))
    assert max(factor.values()) > 2  # the example has rare labels

    urls = ShardInfo.load(shards).shard_urls("train")
    seen: Counter[str] = Counter()
    epochs = 4
    for epoch in range(epochs):
        raw = wds.tarfile_to_samples()({"url": url} for url in urls)
        copies = list(repeat_samples(raw, repeat, seed=0, epoch=SharedEpoch(epoch)))
        seen.update(sample["__key__"] for sample in copies)
        assert all(sample["__copy__"] < math.ceil(factor[sample["__key__"]]) for sample in copies)
    for key, r in factor.items():  # each image: floor(r) or ceil(r) copies per epoch
        assert math.floor(r) * epochs <= seen[key] <= math.ceil(r) * epochs
    rare = [key for key, r in factor.items() if r >= 2]
    common = [key for key, r in factor.items() if r == 1]
    expected_ratio = np.mean([factor[k] for k in rare])
    ratio = np.mean([seen[k] for k in rare]) / np.mean([seen[k] for k in common])
    assert abs(ratio - expected_ratio) / expected_ratio < 0.05


def test_train_stream_repeats_before_decoding_and_seeds_augmentation(tiny: Path):
    repeat = RepeatFactors.from_shards(tiny, 0.3)
    info = ShardInfo.load(tiny)

    def stream(epoch: int):
        dataset = train_dataset(tiny, transform=lambda image: torch.rand(3), num_labels=len(info.label_names),
                                seed=0, epoch=epoch, repeat=repeat, shuffle_buffer=20)
        return list(dataset)

    first = stream(0)
    assert abs(len(first) - repeat.expected_samples) <= 0.2 * repeat.expected_samples
    assert len(first) > info.num_samples["train"]
    again = stream(0)  # same seed and epoch: same order, same random draws
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again)) and len(first) == len(again)
    other = stream(1)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other))
    # the augmentation's RNG is forked per sample: the global RNG is left alone
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    stream(0)
    assert torch.equal(torch.rand(2), expected)


def test_eval_transform_is_timms_with_pretrained_crop_and_interpolation_only():
    from PIL import Image
    from timm.data import create_transform

    backbone = timm.create_model("resnet10t")
    fresh = image_settings(backbone, 32, pretrained=False)
    assert fresh == {"size": 32, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                     "interpolation": "bilinear", "crop_pct": 1.0}
    pretrained = image_settings(backbone, 32, pretrained=True)
    assert (pretrained["interpolation"], pretrained["crop_pct"]) == ("bicubic", 0.875)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (45, 60, 3), dtype=np.uint8))
    for settings in (fresh, pretrained):
        options = {k: v for k, v in settings.items() if k != "size"}
        ours = eval_transform(32, **options)(image)
        # equal up to float rounding: ToNormalizedTensor scales and shifts in one pass
        assert torch.allclose(ours, create_transform(32, is_training=False, **options)(image), atol=1e-6)


# ------------------------------------------------------------------------------------------------
# optimization pieces
# ------------------------------------------------------------------------------------------------

def test_warmup_then_cosine_schedule():
    schedule = {"base_lr": 1.0, "total_steps": 110, "warmup_steps": 10, "min_lr": 0.1}
    assert [lr_at(s, **schedule) for s in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert lr_at(9, **schedule) == pytest.approx(1.0)
    assert lr_at(10, **schedule) == pytest.approx(1.0)
    assert lr_at(60, **schedule) == pytest.approx(0.55)  # halfway down the cosine
    assert lr_at(110, **schedule) == pytest.approx(0.1)
    assert lr_at(500, **schedule) == pytest.approx(0.1)  # past the end: stays at min_lr
    assert lr_at(35, **schedule) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert lr_at(0, base_lr=1.0, total_steps=4) == 1.0  # no warmup


@pytest.mark.parametrize("backbone", ["resnet10t", "vit_tiny_patch16_224"])
def test_no_weight_decay_on_norms_biases_and_position_embeddings(backbone: str):
    model = Encoder(backbone, [Task("labels", "multilabel", ("a",))], embed_dim=8, image_size=32)
    optimizer = create_optimizer(model, TrainConfig(weight_decay=0.05), torch.device("cpu"))
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0.05 for p in g["params"]}
    skipped = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    # the rule timm's parameter groups follow: no decay on 1-d parameters and on no_weight_decay() names
    params = dict(model.named_parameters())
    assert decayed == {n for n, p in params.items() if p.ndim > 1 and n not in model.no_weight_decay()}
    assert skipped == set(params) - decayed
    assert "embed_head.weight" in decayed and "embed_head.bias" in skipped
    if backbone.startswith("vit"):
        assert {"backbone.pos_embed", "backbone.cls_token", "backbone.norm.weight"} <= skipped


def test_ema_averages_float_state_and_copies_counters():
    # timm's EMA as the loop uses it: update(model) without a step, so no decay warmup
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEmaV3(model, decay=0.75).requires_grad_(False)
    old = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(4, 2))  # moves BatchNorm's running stats and its counter
    ema.update(model)
    new = model.state_dict()
    for name, value in ema.module.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, 0.75 * old[name] + 0.25 * new[name]), name
        else:
            assert torch.equal(value, new[name]), name
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_rng_state_round_trips_through_plain_types():
    import random

    state = rng_state()
    assert only_plain_types(state)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
