"""Facet heads: training one softmax head per facet of the vocabulary, and evaluating them per facet.

The shards are the example shards cut small, with facets written by the test itself (its own
``facet`` column in labels.parquet and ``facets`` field in each json), so these tests do not
depend on how the vocabulary finds facets. Models are tiny (resnet10t at 32 px, a few steps).
"""

from __future__ import annotations

import json
import shutil
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import webdataset as wds
from conftest import one_line_error

from weaklabel.artifacts import read_embeddings
from weaklabel.cli import main
from weaklabel.datasets.loader import ShardInfo, TargetEncoder, iter_samples, make_dataset
from weaklabel.eval import evaluate
from weaklabel.eval.stage import eval_summary
from weaklabel.facets import FACET_COLUMN, FACETS_FIELD
from weaklabel.training import Encoder, Task, load_encoder, train
from weaklabel.training.loop import TrainConfig
from weaklabel.training.losses import task_loss
from weaklabel.training.models import facet_label_ids, head_key, parse_facets, parse_task
from weaklabel.training.stage import TRAIN

# facet name -> label ids; names a module name could not hold as they are ("." is refused by torch)
FACETS = {"type.v1": [0, 1, 2], "colour%2E": [3, 4]}
TASKS = {"facet:type.v1": [0, 1, 2], "facet:colour%2E": [3, 4]}
TINY = {"model": "resnet10t", "image_size": 32, "embed_dim": 16, "batch_size": 8, "workers": 0, "progress": False,
        "shuffle_buffer": 20, "lr": 0.01}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def faceted_shards(source: Path, out: Path, facets: dict[str, list[int]] | None, *, in_samples: bool = True) -> Path:
    """The first 40 train samples of ``source`` (two shards) and its val split. ``facets`` go into
    labels.parquet and, with ``in_samples``, into each json (a sample's facet label: the lowest of its
    labels in the facet, else -1); None writes no facets at all, as before facets existed."""
    info = ShardInfo.load(source)
    out.mkdir(parents=True)
    splits = {}
    for split, sizes in (("train", [20, 20]), ("val", [info.num_samples["val"]])):
        samples = wds.tarfile_to_samples()({"url": url} for url in info.shard_urls(split))
        names = []
        for index, size in enumerate(sizes):
            names.append(f"{split}-{index:06d}.tar")
            with wds.TarWriter(str(out / names[-1])) as tar:
                for sample in islice(samples, size):
                    meta = json.loads(sample["json"])
                    meta.pop(FACETS_FIELD, None)
                    if facets is not None and in_samples:
                        meta[FACETS_FIELD] = [min((label for label in meta["labels"] if label in ids), default=-1)
                                              for ids in facets.values()]
                    kept = {k: v for k, v in sample.items() if k == "__key__" or not k.startswith("__")}
                    tar.write(kept | {"json": json.dumps(meta).encode()})
        splits[split] = {"name": split, "num_samples": sum(sizes), "filenames": names}
    (out / "_info.json").write_text(json.dumps({"name": "faceted", "splits": splits}))
    labels = pd.read_parquet(source / "labels.parquet").drop(columns=[FACET_COLUMN], errors="ignore")
    if facets is not None:
        facet_of = {label: name for name, ids in facets.items() for label in ids}
        labels[FACET_COLUMN] = [facet_of.get(label) for label in labels["label_id"]]
    labels.to_parquet(out / "labels.parquet", index=False)
    return out


@pytest.fixture(scope="module")
def faceted(example_shards: Path, tmp_path_factory) -> Path:
    return faceted_shards(example_shards, tmp_path_factory.mktemp("faceted") / "shards", FACETS)


@pytest.fixture(scope="module")
def run(faceted: Path, tmp_path_factory) -> Path:
    """A run with facet heads (weight 0.5) beside a softmax task over a carried column."""
    out = tmp_path_factory.mktemp("facet-runs") / "facets"
    train(faceted, out, steps=3, tasks=["facets:0.5", "true_type:softmax"], **TINY)
    return out


@pytest.fixture(scope="module")
def evaluated(run: Path, faceted: Path, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("facet-eval") / "eval"
    return evaluate([run / "last.pt"], faceted, out, efficiency=False), out


def test_the_shards_hold_present_and_absent_facets(faceted: Path):
    info = ShardInfo.load(faceted)
    assert info.facets == {"type.v1": [0, 1, 2], "colour%2E": [3, 4]}
    chosen = np.array([sample["json"][FACETS_FIELD] for sample in iter_samples(faceted, "val")])
    assert (chosen >= 0).any(axis=0).all() and (chosen == -1).any(axis=0).all()


# ------------------------------------------------------------------------------------------------
# tasks, targets and losses
# ------------------------------------------------------------------------------------------------

def test_facets_specs_parse():
    assert parse_facets("facets") == 1.0 and parse_facets("facets:0.3") == 0.3
    assert parse_facets("facets:softmax") is None and parse_facets("true_type:softmax") is None  # column tasks
    for bad in ("facets:heavy", "facets:nan", "facets:-1", "facets:inf"):
        with pytest.raises(ValueError, match="expected facets or facets:WEIGHT"):
            parse_facets(bad)
    with pytest.raises(ValueError, match="number >= 0"):
        parse_task("true_type:softmax:nan")
    assert TrainConfig(tasks=["facets", "true_type:softmax:0.5"]).tasks == ["facets", "true_type:softmax:0.5"]
    TRAIN.check({"tasks": ["facets:2"]})  # a pipeline's [train] tasks = ["facets:2"]
    with pytest.raises(ValueError):
        TrainConfig(tasks=["facets:x"])


def test_head_keys_are_module_names_and_stay_apart():
    names = ["labels", "true_type", "facet:a.b", "facet:a%2Eb", "facet:a_b", "facet:", "facet:..."]
    keys = [head_key(name) for name in names]
    assert len(set(keys)) == len(keys) and not any("." in key for key in keys)
    assert keys[:2] == ["labels", "true_type"]  # only facet names are encoded: older checkpoints still load
    tasks = [Task(name, "softmax" if name != "labels" else "multilabel", ("x", "y")) for name in names]
    model = Encoder("resnet10t", tasks, embed_dim=8)
    assert set(model(torch.zeros(2, 3, 32, 32))) == {"embedding", *names}
    again = Encoder("resnet10t", tasks, embed_dim=8)
    again.load_state_dict(model.state_dict())
    assert torch.equal(again.head("facet:a.b").weight, model.head("facet:a.b").weight)


def test_targets_are_class_indices_within_each_facet():
    encode = TargetEncoder.create(8, facet_targets={"facet:kind": [2, 5, 7], "facet:colour": [3, 4]})
    targets = encode({"labels": [5, 3], FACETS_FIELD: [5, 3]})
    assert targets["facet:kind"].item() == 1 and targets["facet:colour"].item() == 0
    targets = encode({"labels": [7], FACETS_FIELD: [7, -1]})
    assert targets["facet:kind"].item() == 2 and targets["facet:colour"].item() == -1
    older = encode({"labels": [7]})  # a sample written before facets
    assert older["facet:kind"].item() == -1 and older["facet:colour"].item() == -1
    assert older["facet:kind"].dtype == torch.int64


def test_the_loader_reads_facet_targets_from_the_json(faceted: Path):
    dataset = make_dataset(faceted, "val", training=False, image_size=32, facet_targets=TASKS, return_meta=True)
    for _, targets, meta in dataset:
        for position, (task, ids) in enumerate(TASKS.items()):
            label = meta[FACETS_FIELD][position]
            assert targets[task].item() == (ids.index(label) if label >= 0 else -1)


def test_the_facet_loss_leaves_out_samples_without_the_facet():
    task = Task("facet:kind", "softmax", ("a", "b", "c"))
    logits = torch.randn(4, 3, requires_grad=True)
    target = torch.tensor([-1, 2, -1, 0])
    loss = task_loss(task, logits, target)
    expected = F.cross_entropy(logits[[1, 3]], target[[1, 3]])
    assert torch.allclose(loss, expected)
    loss.backward()
    assert torch.count_nonzero(logits.grad[[0, 2]]) == 0 and torch.count_nonzero(logits.grad[[1, 3]]) > 0


# ------------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------------

def test_one_head_per_facet_with_its_labels_as_classes(run: Path, faceted: Path):
    state = torch.load(run / "last.pt", weights_only=True)
    names = ShardInfo.load(faceted).label_names
    tasks = {t["name"]: t for t in state["tasks"]}
    assert list(tasks) == ["labels", "facet:type.v1", "facet:colour%2E", "true_type"]
    for task, ids in TASKS.items():
        assert tasks[task]["classes"] == [names[i] for i in ids]
        assert tasks[task]["kind"] == "softmax" and tasks[task]["weight"] == 0.5
        assert state["model"][f"heads.{head_key(task)}.weight"].shape == (len(ids), 16)
    model, _ = load_encoder(run / "last.pt")
    outputs = model(torch.zeros(2, 3, 32, 32))
    assert outputs["facet:type.v1"].shape == (2, 3) and outputs["facet:colour%2E"].shape == (2, 2)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [line for line in lines if line["kind"] == "eval"]
    chosen = np.array([sample["json"][FACETS_FIELD] for sample in iter_samples(faceted, "val")])
    for position, task in enumerate(TASKS):
        assert 0 <= evals[-1][f"val_top1_{task}"] <= 1
        assert evals[-1][f"val_samples_{task}"] == (chosen[:, position] >= 0).sum()  # absent facets left out
        assert f"loss_{task}" in lines[0]


def test_shards_without_facets_are_a_clear_error(example_shards: Path, tmp_path: Path, capsys):
    bare = faceted_shards(example_shards, tmp_path / "bare", None)
    with pytest.raises(ValueError, match=r"these shards carry no facets: rebuild the vocabulary \(weaklabel vocab\)"):
        train(bare, tmp_path / "run", steps=1, tasks=["facets"], **TINY)
    error = one_line_error(["train", str(bare), "--out", str(tmp_path / "cli"), "--model", "resnet10t",
                            "--image-size", "32", "--steps", "1", "--workers", "0", "--tasks", "facets", "-q"], capsys)
    assert "these shards carry no facets" in error
    older = faceted_shards(example_shards, tmp_path / "older", FACETS, in_samples=False)
    with pytest.raises(ValueError, match="samples carry none .*write the shards again"):
        train(older, tmp_path / "run", steps=1, tasks=["facets"], **TINY)
    with pytest.raises(ValueError, match="asked for more than once"):
        train(example_shards, tmp_path / "twice", steps=1, tasks=["true_type:softmax", "true_type:softmax"], **TINY)


def test_a_resumed_run_keeps_its_facet_heads(faceted: Path, tmp_path: Path):
    options = TINY | {"steps": 4, "tasks": ["facets"], "eval_every": 2}
    whole = train(faceted, tmp_path / "whole", **options)
    assert train(faceted, tmp_path / "parts", stop_after_steps=2, **options)["stopped"]
    resumed = train(faceted, tmp_path / "parts", resume=True, **options)
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "parts" / "last.pt", weights_only=True)
    assert a["tasks"] == b["tasks"] and a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][name], b["model"][name]) for name in a["model"])
    assert whole["val_top1_facet:type.v1"] == resumed["val_top1_facet:type.v1"]


def test_a_checkpoints_facets_must_be_the_shards(run: Path, faceted: Path, example_shards: Path, tmp_path: Path):
    tasks = [Task.from_dict(t) for t in torch.load(run / "last.pt", weights_only=True)["tasks"]]
    info = ShardInfo.load(faceted)
    assert facet_label_ids(tasks, info.facets, info.label_names) == TASKS
    with pytest.raises(ValueError, match="facet 'type.v1' .* is not the shards' .*they have no such facet"):
        facet_label_ids(tasks, {}, info.label_names)
    other = faceted_shards(example_shards, tmp_path / "other", {"type.v1": [0, 1], "colour%2E": [3, 4]})
    shutil.copytree(run, tmp_path / "run")
    with pytest.raises(ValueError, match="the checkpoint's facet 'type.v1' .* is not the shards'"):
        train(other, tmp_path / "run", resume=True, steps=4)
    with pytest.raises(ValueError, match="the checkpoint's facet 'type.v1' .* is not the shards'"):
        evaluate([run / "last.pt"], other, tmp_path / "eval", efficiency=False)
    assert not (tmp_path / "eval" / "embeddings" / "facets-last.val.parquet").exists()  # refused before embedding


# ------------------------------------------------------------------------------------------------
# evaluation
# ------------------------------------------------------------------------------------------------

def test_metrics_json_reports_each_facet_head(evaluated, faceted: Path):
    metrics, out = evaluated
    assert json.loads((out / "metrics.json").read_text()) == metrics
    (model,) = metrics["models"].values()
    assert list(model["facets"]) == list(FACETS)
    frame, vectors = read_embeddings(out / "embeddings" / "facets-last.val.parquet")
    encoder, _ = load_encoder(Path(model["source"]))
    for position, (facet, ids) in enumerate(FACETS.items()):
        scores = model["facets"][facet]
        chosen = np.array([row[position] for row in frame[FACETS_FIELD]])
        present = np.flatnonzero(chosen >= 0)
        assert scores["task"] == f"facet:{facet}" and scores["classes"] == len(ids) and scores["n"] == len(present)
        with torch.no_grad():
            logits = encoder.head(f"facet:{facet}")(torch.from_numpy(vectors[present]) * encoder.head_scale)
        truth = np.array([ids.index(label) for label in chosen[present]])
        assert scores["top1_accuracy"] == pytest.approx((logits.argmax(1).numpy() == truth).mean())
        expected = brute_force_summary(vectors[present], truth)
        assert {key: scores["retrieval"]["overall"][key] for key in expected} == pytest.approx(expected)
    assert "true_type" in model["classification"] and not any(k.startswith("facet:") for k in model["classification"])


def brute_force_summary(vectors: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Recall@1, Recall@10 and mAP@10 among the items with the facet, each query excluded."""
    recall_1, recall_10, ap_10 = [], [], []
    for q in range(len(vectors)):
        scores = vectors @ vectors[q]
        order = [g for g in sorted(range(len(vectors)), key=lambda g: (-scores[g], g)) if g != q]
        relevant = [truth[g] == truth[q] for g in order]
        if not any(relevant):
            continue
        recall_1.append(float(relevant[0]))
        recall_10.append(float(any(relevant[:10])))
        hits = np.cumsum(relevant[:10])
        ap_10.append(sum(hits[i] / (i + 1) for i in range(min(10, len(relevant))) if relevant[i])
                     / min(10, sum(relevant)))
    return {"recall@1": np.mean(recall_1), "recall@10": np.mean(recall_10), "map@10": np.mean(ap_10),
            "queries": len(recall_1)}


def test_report_summary_and_table_show_the_facets(evaluated, run: Path, faceted: Path, tmp_path: Path, capsys):
    _, out = evaluated
    html = (out / "report.html").read_text()
    assert "<h2>Facets</h2>" in html and "type.v1" in html and "colour%2E" in html
    lines = eval_summary(out, {})
    assert any(line.startswith("facet 'type.v1': top-1 ") and "R@1" in line for line in lines)
    assert main(["eval", str(run / "last.pt"), "--shards", str(faceted), "--out", str(tmp_path / "eval"),
                 "--no-efficiency", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "facet type.v1: top1_accuracy" in printed and "facet colour%2E: recall@1" in printed
