"""``evaluate`` and ``weaklabel eval`` on tiny checkpoints trained on the example shards.

Two tiny models (resnet10t and mobilenetv3_small_050 at 32 px, two steps each) make the
side-by-side case; the metrics of the whole stage are checked against a recomputation from the
cached embeddings by brute force, so the wiring (ids, self-exclusion, tiers) is tested too.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_eval_metrics import brute_force_retrieval

from weaklabel.artifacts import read_embeddings, write_embeddings
from weaklabel.cli import main
from weaklabel.datasets.loader import ShardInfo
from weaklabel.eval import check_vocabulary, evaluate
from weaklabel.eval.retrieval import METRICS
from weaklabel.eval.stage import unique_names
from weaklabel.tiers import TIERS, label_tiers, rarest_tier
from weaklabel.training import load_encoder, train

MODEL_KEYS = {"source", "kind", "model", "queries", "gallery", "dim", "retrieval", "classification", "facets", "probes",
              "efficiency", "near_duplicates_left_out"}
SUMMARY_KEYS = {*METRICS, "queries", "queries_without_relevant"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def runs(example_shards: Path, tmp_path_factory) -> dict[str, Path]:
    """Two run folders with a last.pt each: the labels task and a softmax task over true_type."""
    root = tmp_path_factory.mktemp("eval-runs")
    checkpoints = {}
    for name, model in (("resnet", "resnet10t"), ("mobile", "mobilenetv3_small_050")):
        train(example_shards, root / name, model=model, image_size=32, embed_dim=16, batch_size=8, steps=2, workers=0,
              tasks=["true_type:softmax"], progress=False, shuffle_buffer=10, lr=0.01)
        checkpoints[name] = root / name / "last.pt"
    return checkpoints


@pytest.fixture(scope="module")
def evaluated(runs: dict[str, Path], example_shards: Path, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("eval") / "out"
    metrics = evaluate([runs["resnet"]], example_shards, out, relevance=["labels", "true_type"])
    return metrics, out


def brute_force_metrics(vectors, relevant, exclude_self=True):
    """Retrieval metrics by definition, from a full ranking per query (score descending, then index)."""
    queries, gallery = vectors
    ranked, relevant_sets = [], []
    for q in range(len(queries)):
        scores = gallery @ queries[q]
        order = [g for g in sorted(range(len(gallery)), key=lambda g: (-scores[g], g)) if not (exclude_self and g == q)]
        ranked.append(order)
        relevant_sets.append({g for g in order if relevant[q, g]})
    return brute_force_retrieval(ranked, relevant_sets)


def check_summary(summary, rows, mask=None):
    used = [r for i, r in enumerate(rows) if r is not None and (mask is None or mask[i])]
    assert summary["queries"] == len(used)
    for metric in METRICS:
        if used:
            assert summary[metric] == pytest.approx(np.mean([r[metric] for r in used]), abs=1e-9)
        else:
            assert summary[metric] is None


# ------------------------------------------------------------------------------------------------
# the stage
# ------------------------------------------------------------------------------------------------

def test_metrics_json_has_the_documented_schema(evaluated, example_shards: Path):
    metrics, out = evaluated
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert {"version", "split", "gallery_split", "relevance", "models"} <= set(metrics)
    assert metrics["split"] == "val" and metrics["gallery_split"] is None
    assert metrics["relevance"] == ["labels", "true_type"] and list(metrics["models"]) == ["resnet-last"]
    model = metrics["models"]["resnet-last"]
    assert set(model) == MODEL_KEYS and model["kind"] == "checkpoint"
    assert model["queries"] == ShardInfo.load(example_shards).num_samples["val"] == model["gallery"]
    for relevance in ("labels", "true_type"):
        assert set(model["retrieval"][relevance]["overall"]) == SUMMARY_KEYS
        assert set(model["retrieval"][relevance]["tiers"]) == set(TIERS)
        assert all(set(t) == SUMMARY_KEYS for t in model["retrieval"][relevance]["tiers"].values())
    labels = model["classification"]["labels"]
    assert {"map_macro", "map_micro", "f1_micro@fixed", "f1_macro@fixed", "f1_micro@tuned", "f1_macro@tuned",
            "threshold_fixed", "threshold_tuned", "tiers", "per_label"} <= set(labels)
    assert len(labels["per_label"]) == len(ShardInfo.load(example_shards).label_names)
    assert {"top1", "top5", "samples", "samples_unknown", "tiers"} <= set(model["classification"]["true_type"])
    assert set(model["probes"]) == {"true_type"}
    assert set(model["probes"]["true_type"]) == {"knn_accuracy", "linear_accuracy", "queries"}
    assert {"params", "gmacs", "latency_ms", "throughput", "peak_memory_mb", "weights_mb", "checkpoint_mb"} <= set(
        model["efficiency"])
    assert (out / "manifest.json").is_file() and (out / "embeddings" / "resnet-last.val.parquet").is_file()


def test_retrieval_metrics_equal_a_brute_force_recomputation(evaluated, example_shards: Path):
    metrics, out = evaluated
    frame, vectors = read_embeddings(out / "embeddings" / "resnet-last.val.parquet")
    labels = [set(map(int, row)) for row in frame["labels"]]
    n = len(frame)
    shares_label = np.array([[bool(labels[q] & labels[g]) for g in range(n)] for q in range(n)])
    rows = brute_force_metrics((vectors, vectors), shares_label)
    result = metrics["models"]["resnet-last"]["retrieval"]["labels"]
    check_summary(result["overall"], rows)
    query_tiers = rarest_tier([sorted(s) for s in labels], label_tiers(example_shards))
    for tier in TIERS:
        check_summary(result["tiers"][tier], rows, query_tiers == tier)
    values = frame["true_type"].tolist()
    same_value = np.array([[values[q] is not None and values[q] == values[g] for g in range(n)] for q in range(n)])
    check_summary(metrics["models"]["resnet-last"]["retrieval"]["true_type"]["overall"],
                  brute_force_metrics((vectors, vectors), same_value))


def test_queries_parquet_holds_every_query_metrics_by_definition(evaluated, example_shards: Path):
    metrics, out = evaluated
    frame, vectors = read_embeddings(out / "embeddings" / "resnet-last.val.parquet")
    queries = pd.read_parquet(out / "queries.parquet")
    assert list(queries.columns) == ["model", "relevance", "id", "tier", "relevant", *METRICS]
    assert len(queries) == 2 * len(frame) and set(queries["model"]) == {"resnet-last"}
    labels = [set(map(int, row)) for row in frame["labels"]]
    shares_label = np.array([[bool(labels[q] & labels[g]) for g in range(len(frame))] for q in range(len(frame))])
    rows = brute_force_metrics((vectors, vectors), shares_label)
    table = queries[queries["relevance"] == "labels"].set_index("id").loc[frame["id"].astype(str)]
    assert table["tier"].tolist() == list(rarest_tier([sorted(s) for s in labels], label_tiers(example_shards)))
    for (_, got), expected in zip(table.iterrows(), rows, strict=True):
        assert (got["relevant"] > 0) == (expected is not None)
        if expected is None:
            assert got[list(METRICS)].isna().all()
        else:
            assert all(got[m] == pytest.approx(expected[m], abs=1e-9) for m in METRICS)
    for tier in TIERS:
        summary = metrics["models"]["resnet-last"]["retrieval"]["labels"]["tiers"][tier]
        rows = table[table["tier"] == tier]
        assert summary["queries"] == rows["recall@1"].notna().sum()
        assert summary["recall@1"] == (pytest.approx(rows["recall@1"].mean()) if summary["queries"] else None)


def test_classification_scores_come_from_the_heads(evaluated, runs, example_shards: Path):
    from sklearn.metrics import average_precision_score

    metrics, out = evaluated
    frame, vectors = read_embeddings(out / "embeddings" / "resnet-last.val.parquet")
    model, _ = load_encoder(runs["resnet"])
    with torch.no_grad():
        probabilities = torch.sigmoid(model.heads["labels"](torch.from_numpy(vectors) * model.head_scale)).numpy()
    targets = np.zeros(probabilities.shape, dtype=bool)
    for row, ids in enumerate(frame["labels"]):
        targets[row, list(ids)] = True
    positive = targets.any(axis=0)
    expected = average_precision_score(targets[:, positive], probabilities[:, positive], average="macro")
    labels = metrics["models"]["resnet-last"]["classification"]["labels"]
    assert labels["map_macro"] == pytest.approx(expected, rel=1e-5)


def test_report_has_plots_tables_and_the_neighbour_grid(evaluated):
    _, out = evaluated
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # Recall@k, AP per tier
    assert page.count("data:image/jpeg;base64,") >= 6  # at least one query and its 5 neighbours
    assert 'class="rel"' in page or 'class="irr"' in page
    assert "Models side by side" in page and "AP per label" in page and "not in the shards" not in page


def test_embeddings_are_cached_and_reused(evaluated, runs, example_shards: Path, monkeypatch):
    import weaklabel.training

    _, out = evaluated
    calls = []
    monkeypatch.setattr(weaklabel.training, "embed", lambda *a, **k: calls.append(a))
    metrics = evaluate([runs["resnet"]], example_shards, out, relevance=["labels"], efficiency=False,
                       overwrite=True)
    assert calls == [] and metrics["models"]["resnet-last"]["efficiency"] == {}


def test_precomputed_embeddings_give_retrieval_and_probes_only(evaluated, example_shards: Path, tmp_path: Path):
    metrics, out = evaluated
    file = tmp_path / "other-model.parquet"
    shutil.copy(out / "embeddings" / "resnet-last.val.parquet", file)
    result = evaluate(shards=example_shards, out=tmp_path / "eval", embeddings=[file],
                      relevance=["labels", "true_type"])
    model = result["models"]["other-model"]
    assert model["kind"] == "embeddings" and model["classification"] == {} and model["efficiency"] == {}
    assert model["retrieval"] == metrics["models"]["resnet-last"]["retrieval"]
    assert model["probes"] == metrics["models"]["resnet-last"]["probes"]


def test_a_gallery_split_is_searched_without_self_exclusion(runs, example_shards: Path, tmp_path: Path):
    result = evaluate([runs["resnet"]], example_shards, tmp_path, split="val", gallery_split="test",
                      relevance="true_type", efficiency=False)
    query, q_vectors = read_embeddings(tmp_path / "embeddings" / "resnet-last.val.parquet")
    gallery, g_vectors = read_embeddings(tmp_path / "embeddings" / "resnet-last.test.parquet")
    same = np.array([[v is not None and v == w for w in gallery["true_type"]] for v in query["true_type"]])
    model = result["models"]["resnet-last"]
    check_summary(model["retrieval"]["true_type"]["overall"], brute_force_metrics((q_vectors, g_vectors), same, False))
    assert model["gallery"] == len(gallery) and result["gallery_split"] == "test"


# ------------------------------------------------------------------------------------------------
# errors and names
# ------------------------------------------------------------------------------------------------

def test_a_checkpoint_of_another_vocabulary_is_refused(runs, example_shards: Path, tmp_path: Path):
    shards = tmp_path / "shards"
    shutil.copytree(example_shards, shards)
    labels = pd.read_parquet(shards / "labels.parquet")
    labels.loc[labels["label_id"] == 3, "name"] = "renamed label"
    labels.to_parquet(shards / "labels.parquet")
    with pytest.raises(ValueError, match=f"vocabulary of {len(labels)} labels but .* has {len(labels)}; they first "
                                         "differ at label id 3: .* 'renamed label' in the shards"):
        evaluate([runs["resnet"]], shards, tmp_path / "eval", efficiency=False)
    with pytest.raises(ValueError, match="vocabulary of 3 labels but shards has 2; .* at label id 2: 'c' in the "
                                         "checkpoint, \\(none\\) in the shards"):
        check_vocabulary(["a", "b", "c"], ["a", "b"], Path("model.pt"), Path("shards"))


def test_embeddings_of_another_vocabulary_are_refused(evaluated, example_shards: Path, tmp_path: Path):
    _, out = evaluated
    frame, vectors = read_embeddings(out / "embeddings" / "resnet-last.val.parquet")
    frame["label_names"] = [[name.upper() for name in names] for names in frame["label_names"]]
    file = tmp_path / "other.parquet"
    write_embeddings(file, frame["id"], vectors, {c: frame[c].tolist() for c in frame.columns if c != "id"})
    first = frame["labels"][0][0]
    with pytest.raises(ValueError, match=f"other.parquet was made with another vocabulary: its label id {first} is "):
        evaluate(shards=example_shards, out=tmp_path / "eval", embeddings=[file])


def test_unknown_relevance_columns_and_misuse_are_clear_errors(runs, example_shards: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="relevance 'colour'.*carried columns: \\['true_type'\\]"):
        evaluate([runs["resnet"]], example_shards, tmp_path, relevance=["colour"], efficiency=False)
    assert not (tmp_path / "embeddings").exists()  # refused before embedding anything
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate([], example_shards, tmp_path)
    with pytest.raises(ValueError, match="split 'dev' is not in"):
        evaluate([runs["resnet"]], example_shards, tmp_path, split="dev")
    with pytest.raises(ValueError, match="--gallery-split needs checkpoints"):
        evaluate(shards=example_shards, out=tmp_path, embeddings=["x.parquet"], gallery_split="train")


def test_model_names_come_from_run_folders_and_are_unique(runs):
    names = unique_names([runs["resnet"], runs["resnet"].with_name("best.pt"), Path("a/e.parquet"),
                          Path("b/e.parquet"), runs["mobile"]])
    assert names == ["resnet-last", "resnet-best", "e-1", "e-2", "mobile-last"]


# ------------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------------

def test_cli_writes_the_outputs_and_prints_the_table(runs, example_shards: Path, tmp_path: Path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", str(runs["resnet"]), "--shards", str(example_shards), "--out", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    recall = metrics["models"]["resnet-last"]["retrieval"]["labels"]["overall"]["recall@1"]
    assert "R@1" in printed and f"{recall:.4f}" in printed and "latency, batch 1 (ms)" in printed
    assert (out / "report.html").is_file()


def test_cli_compares_two_checkpoints_side_by_side(runs, example_shards: Path, tmp_path: Path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", str(runs["resnet"]), str(runs["mobile"]), "--shards", str(example_shards), "--out", str(out),
                 "--relevance", "labels", "--relevance", "true_type", "--no-efficiency", "-q"]) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if "resnet" in line and "mobile" in line)
    assert header.split() == ["resnet-last", "mobile-last"]
    metrics = json.loads((out / "metrics.json").read_text())
    top1 = [metrics["models"][m]["classification"]["true_type"]["top1"] for m in ("resnet-last", "mobile-last")]
    row = next(line for line in printed.splitlines() if line.startswith("true_type: top1"))
    assert row.split()[-2:] == [f"{v:.4f}" for v in top1]
    page = (out / "report.html").read_text()
    assert "<th>resnet-last</th><th>mobile-last</th>" in page and page.count("<h3>") == 2
    best = max(top1)
    assert re.search(rf"<th>true_type: top1</th>(<td>[^<]*</td>)*<td><b>{best:.4f}</b></td>", page)


def test_cli_vocabulary_mismatch_exits_with_the_message(runs, example_shards: Path, tmp_path: Path, capsys):
    shards = tmp_path / "shards"
    shutil.copytree(example_shards, shards)
    labels = pd.read_parquet(shards / "labels.parquet")
    labels[labels["label_id"] < len(labels) - 1].to_parquet(shards / "labels.parquet")
    assert main(["eval", str(runs["resnet"]), "--shards", str(shards), "--out", str(tmp_path / "e"), "-q"]) == 1
    assert f"but {shards} has {len(labels) - 1}" in capsys.readouterr().err
