"""Every evaluation metric against a brute-force reference (plain loops or sklearn.metrics) on small inputs.

Inputs are random but seeded; integer-valued vectors and rounded scores make exact ties common, so
the tie rules are tested, not just the generic case.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, f1_score
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from weaklabel import metrics, tiers
from weaklabel.eval import classification, efficiency, probes, retrieval
from weaklabel.search import exact_search
from weaklabel.tiers import assign_tiers

# ------------------------------------------------------------------------------------------------
# references
# ------------------------------------------------------------------------------------------------


def brute_force_neighbours(queries, gallery, k, exclude=None):
    """Every query against every gallery row, ranked by score descending then index ascending."""
    out_i, out_s = [], []
    for q, query in enumerate(queries):
        scored = [(-float(np.dot(query.astype(np.float64), row)), g) for g, row in enumerate(gallery)
                  if exclude is None or g != exclude[q]]
        ranked = sorted(scored)[:k]
        out_i.append([g for _, g in ranked] + [-1] * (k - len(ranked)))
        out_s.append([-s for s, _ in ranked] + [-math.inf] * (k - len(ranked)))
    return np.array(out_i), np.array(out_s)


def brute_force_retrieval(ranked, relevant_sets):
    """Metric definitions of the README, one query at a time: ranked gallery ids and relevance per query."""
    rows = []
    for ranking, relevant in zip(ranked, relevant_sets, strict=True):
        if not relevant:
            rows.append(None)
            continue
        hits = [g in relevant for g in ranking[:100]]
        row = {f"recall@{k}": float(any(hits[:k])) for k in (1, 5, 10)}
        row["precision@10"] = sum(hits[:10]) / 10
        for k in (10, 100):
            precision_sum = sum(sum(hits[:i + 1]) / (i + 1) for i in range(min(k, len(hits))) if hits[i])
            row[f"map@{k}"] = precision_sum / min(k, len(relevant))
        row["mrr"] = next((1 / (i + 1) for i, h in enumerate(hits) if h), 0.0)
        rows.append(row)
    return rows


def average(rows, mask=None):
    used = [r for i, r in enumerate(rows) if r is not None and (mask is None or mask[i])]
    return {m: (np.mean([r[m] for r in used]) if used else None) for m in retrieval.METRICS}, len(used)


def integer_vectors(rng, n, dim=4):
    return rng.integers(-1, 2, size=(n, dim)).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# exact search
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 5, 60])
def test_search_matches_brute_force_with_ties_across_blocks(k):
    rng = np.random.default_rng(k)
    queries, gallery = integer_vectors(rng, 37), integer_vectors(rng, 53)  # 81 distinct vectors: many ties
    found = exact_search(queries, gallery, k, block_bytes=4 * 5 * 7, query_block=5)
    indices, scores = brute_force_neighbours(queries, gallery, k)
    assert np.array_equal(found.indices, indices) and np.allclose(found.scores, scores)


@pytest.mark.parametrize("k", [3, 10])
def test_search_of_wide_blocks_ranks_by_chunk_maxima_exactly(k):
    rng = np.random.default_rng(11)
    queries = integer_vectors(rng, 20, dim=3)
    gallery = integer_vectors(rng, 9000, dim=3)  # 27 distinct vectors: chunk maxima tie everywhere
    floats = rng.normal(size=(9000, 3)).astype(np.float32)
    floats[4000:4100] = floats[17]  # and exact duplicates among distinct scores
    floats[8995] = 10 * queries[0]  # the best match of query 0 among the last columns (not a whole chunk)
    exclude = rng.integers(-1, 9000, 20)
    for candidates in (gallery, floats):
        # blocks of 6400 and 2600
        found = exact_search(queries, candidates, k, exclude=exclude, block_bytes=4 * 8 * 6400, query_block=8)
        indices, _ = brute_force_neighbours(queries, candidates, k, exclude)
        assert np.array_equal(found.indices, indices)


def test_search_excludes_each_query_itself():
    rng = np.random.default_rng(1)
    vectors = integer_vectors(rng, 41)
    vectors[7] = vectors[3]  # exact duplicates must still find each other
    exclude = np.arange(41)
    found = exact_search(vectors, vectors, 10, exclude=exclude, block_bytes=4 * 8 * 6, query_block=8)
    indices, _ = brute_force_neighbours(vectors, vectors, 10, exclude)
    assert np.array_equal(found.indices, indices)
    assert not (found.indices == exclude[:, None]).any() and found.indices[3, 0] == 7 and found.indices[7, 0] == 3


def test_search_with_fewer_gallery_rows_than_k_pads_with_minus_one():
    vectors = np.eye(3, dtype=np.float32)
    found = exact_search(vectors, vectors, 5, exclude=np.array([0, -1, 2]))
    assert found.indices.tolist() == [[1, 2, -1, -1, -1], [1, 0, 2, -1, -1], [0, 1, -1, -1, -1]]
    assert np.isneginf(found.scores[0, 2:]).all()


def test_search_of_random_floats_matches_numpy_with_default_blocks():
    rng = np.random.default_rng(2)
    queries = rng.normal(size=(300, 32)).astype(np.float32)
    gallery = rng.normal(size=(2000, 32)).astype(np.float32)
    found = exact_search(queries, gallery, 20)
    expected = np.argsort(-(queries.astype(np.float64) @ gallery.T.astype(np.float64)), axis=1, kind="stable")[:, :20]
    assert np.array_equal(found.indices, expected)


def test_search_rejects_bad_shapes():
    with pytest.raises(ValueError, match="dimension"):
        exact_search(np.zeros((2, 3)), np.zeros((4, 5)), 1)
    with pytest.raises(ValueError, match="k must be"):
        exact_search(np.zeros((2, 3)), np.zeros((4, 3)), 0)
    with pytest.raises(ValueError, match="one gallery row per query"):
        exact_search(np.zeros((2, 3)), np.zeros((4, 3)), 1, exclude=np.zeros(3, dtype=int))


# ------------------------------------------------------------------------------------------------
# retrieval metrics, relevance, tiers
# ------------------------------------------------------------------------------------------------

def random_labels(rng, n, num_labels, max_labels=3):
    return [sorted(set(rng.integers(0, num_labels, size=rng.integers(0, max_labels + 1)).tolist())) for _ in range(n)]


def check_report(report, rows, query_tiers):
    expected, used = average(rows)
    for metric in retrieval.METRICS:
        assert report["overall"][metric] == pytest.approx(expected[metric])
    assert report["overall"]["queries"] == used
    assert report["overall"]["queries_without_relevant"] == sum(r is None for r in rows)
    for tier in tiers.TIERS:
        mask = [t == tier for t in query_tiers]
        expected, used = average(rows, mask)
        assert report["tiers"][tier]["queries"] == used
        for metric in retrieval.METRICS:
            assert report["tiers"][tier][metric] == pytest.approx(expected[metric])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_relevance_metrics_match_brute_force_on_the_same_split(seed):
    rng = np.random.default_rng(seed)
    n, num_labels = 130, 12
    vectors = integer_vectors(rng, n, dim=5)
    labels = random_labels(rng, n, num_labels)
    exclude = np.arange(n)
    found = exact_search(vectors, vectors, retrieval.MAX_K, exclude=exclude, block_bytes=4 * 16 * 40, query_block=16)
    relevance = retrieval.LabelRelevance(labels, labels, num_labels)
    label_tier = np.array(["head"] * 4 + ["torso"] * 4 + ["tail"] * 4, dtype=object)
    query_tiers = tiers.rarest_tier(labels, label_tier)
    report = retrieval.retrieval_report(relevance, found.indices, relevance.counts(exclude), query_tiers)
    ranked, _ = brute_force_neighbours(vectors, vectors, n, exclude)
    relevant_sets = [{g for g in range(n) if g != q and set(labels[q]) & set(labels[g])} for q in range(n)]
    check_report(report, brute_force_retrieval([r[r >= 0] for r in ranked], relevant_sets), query_tiers)
    assert np.array_equal(relevance.counts(exclude), [len(s) for s in relevant_sets])


def test_value_relevance_metrics_match_brute_force_against_a_gallery_split():
    rng = np.random.default_rng(3)
    queries, gallery = integer_vectors(rng, 60, dim=5), integer_vectors(rng, 150, dim=5)
    pool = ["a", "b", "c", "d", None, float("nan"), ""]
    query_values = [pool[i] for i in rng.integers(0, len(pool), 60)]
    gallery_values = [pool[i] for i in rng.integers(0, 5, 150)]
    found = exact_search(queries, gallery, retrieval.MAX_K)
    relevance = retrieval.ValueRelevance(query_values, gallery_values)
    query_tiers = np.array([["head", "torso", "tail"][i % 3] for i in range(60)], dtype=object)
    report = retrieval.retrieval_report(relevance, found.indices, relevance.counts(), query_tiers)
    known = lambda v: retrieval.missing_to_none(v) is not None
    relevant_sets = [{g for g in range(150) if known(qv) and gallery_values[g] == qv} for qv in query_values]
    ranked, _ = brute_force_neighbours(queries, gallery, 150)
    check_report(report, brute_force_retrieval(ranked, relevant_sets), query_tiers)
    assert report["overall"]["queries_without_relevant"] == sum(not known(v) for v in query_values)


def test_map_over_the_whole_ranking_equals_sklearn_average_precision():
    rng = np.random.default_rng(4)
    queries, gallery = rng.normal(size=(25, 8)).astype(np.float32), rng.normal(size=(90, 8)).astype(np.float32)
    values = rng.integers(0, 4, 90)
    query_values = rng.integers(0, 4, 25)
    found = exact_search(queries, gallery, retrieval.MAX_K)  # 90 < 100: the ranking covers the gallery
    relevance = retrieval.ValueRelevance(query_values.tolist(), values.tolist())
    per_query = retrieval.per_query(retrieval.judge(relevance, found.indices), relevance.counts())
    for q in range(25):
        expected = average_precision_score(values == query_values[q], gallery @ queries[q])
        assert per_query["map@100"][q] == pytest.approx(expected)


def test_tiers_without_queries_report_none():
    relevance = retrieval.ValueRelevance(["a", "b", "a"], ["a", "a", "b", "c"])
    indices = np.array([[0, 1, 2, 3], [2, 0, 1, 3], [3, 2, 1, 0]])
    report = retrieval.retrieval_report(relevance, indices, relevance.counts(), np.array(["head"] * 3, dtype=object))
    assert report["tiers"]["torso"] == {**{m: None for m in retrieval.METRICS}, "queries": 0,
                                        "queries_without_relevant": 0}
    assert report["overall"]["recall@1"] == pytest.approx(2 / 3) and report["overall"]["mrr"] == pytest.approx(
        (1 + 1 + 1 / 3) / 3)


def test_multi_hot_rejects_unknown_label_ids():
    with pytest.raises(ValueError, match="label ids must be in 0..2"):
        retrieval.multi_hot([[0, 3]], 3)


def test_tier_rules_follow_the_vocabulary(tmp_path):
    support = np.array([5, 50, 1, 20, 20, 4])
    expected = np.empty(6, dtype=object)
    order = np.argsort(-support, kind="stable")
    expected[order] = assign_tiers(support[order], (0.5, 0.8))
    assert list(tiers.tiers_by_support(support)) == list(expected)
    frame = pd.DataFrame({"label_id": np.arange(6)[::-1], "name": list("fedcba"), "support": support[::-1]})
    frame.to_parquet(tmp_path / "labels.parquet")
    assert list(tiers.label_tiers(tmp_path)) == list(expected)  # from the support column
    frame.drop(columns="support").to_parquet(tmp_path / "labels.parquet")
    histogram = {str(i): int(s) for i, s in enumerate(support)}
    manifest = {"outputs": {"splits": {"train": {"label_histogram": histogram}}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert list(tiers.label_tiers(tmp_path)) == list(expected)  # from the train histogram
    frame.assign(tier=["tail", "tail", "head", "torso", "head", "head"]).to_parquet(tmp_path / "labels.parquet")
    assert list(tiers.label_tiers(tmp_path)) == ["head", "head", "torso", "head", "tail", "tail"]  # as written


def test_rarest_tier_and_value_tiers():
    label_tier = np.array(["head", "torso", "tail"], dtype=object)
    assert list(tiers.rarest_tier([[0], [0, 1], [2, 0], []], label_tier)) == ["head", "torso", "tail", None]
    values = ["x"] * 6 + ["y"] * 3 + ["z"] * 1 + [None] * 5
    assert tiers.value_tiers(values) == {"x": "head", "y": "torso", "z": "tail"}


# ------------------------------------------------------------------------------------------------
# classification
# ------------------------------------------------------------------------------------------------

def tied_scores(rng, shape):
    return np.round(rng.random(shape), 1)  # 11 distinct values: many ties


def test_average_precision_matches_sklearn_with_ties():
    rng = np.random.default_rng(5)
    targets = rng.random((80, 9)) < 0.3
    targets[:, 4] = False
    scores = tied_scores(rng, (80, 9))
    ap = metrics.average_precision(targets, scores)
    for j in range(9):
        if j == 4:
            assert np.isnan(ap[j])
        else:
            assert ap[j] == pytest.approx(average_precision_score(targets[:, j], scores[:, j]))
    micro = metrics.micro_average_precision(targets, scores)
    assert micro == pytest.approx(average_precision_score(targets.ravel(), scores.ravel()))
    assert metrics.micro_average_precision(targets, scores.astype(np.float32)) == pytest.approx(micro)
    assert np.isnan(metrics.micro_average_precision(targets[:, 4], scores[:, 4]))


def test_f1_scores_match_sklearn():
    rng = np.random.default_rng(6)
    targets = rng.random((50, 7)) < 0.3
    targets[:, 2] = False
    predicted = rng.random((50, 7)) < 0.4
    micro, macro = classification.f1_scores(targets, predicted)
    positive = targets.any(axis=0)
    assert micro == pytest.approx(f1_score(targets, predicted, average="micro"))
    assert macro == pytest.approx(f1_score(targets[:, positive], predicted[:, positive], average="macro"))
    assert classification.f1_scores(np.zeros((3, 2), bool), predicted[:3, :2]) == (None, None)


def brute_force_threshold(targets, scores):
    best, best_f1 = None, -1.0
    for cut in classification.THRESHOLD_GRID:
        value = f1_score(targets.ravel(), (scores >= cut).ravel(), zero_division=0)
        if value > best_f1 + 1e-12:
            best, best_f1 = cut, value
    return best


def test_tuned_threshold_and_cross_fitted_f1_match_brute_force():
    rng = np.random.default_rng(7)
    targets = rng.random((41, 6)) < 0.25
    scores = np.clip(targets * 0.3 + tied_scores(rng, (41, 6)) * 0.7, 0, 1)
    assert classification.tune_threshold(targets, scores) == pytest.approx(brute_force_threshold(targets, scores))
    label_tier = np.array(["head", "head", "torso", "torso", "tail", "tail"], dtype=object)
    result = classification.multilabel_metrics(targets, scores, label_tier)
    predicted = np.zeros_like(targets)
    for fold in (0, 1):
        rows = np.arange(41) % 2 == fold
        predicted[rows] = scores[rows] >= brute_force_threshold(targets[~rows], scores[~rows])
    positive = targets.any(axis=0)
    assert result["f1_micro@tuned"] == pytest.approx(f1_score(targets, predicted, average="micro"))
    assert result["f1_macro@tuned"] == pytest.approx(
        f1_score(targets[:, positive], predicted[:, positive], average="macro"))
    assert result["f1_micro@fixed"] == pytest.approx(f1_score(targets, scores >= 0.5, average="micro"))
    assert result["threshold_tuned"] == pytest.approx(brute_force_threshold(targets, scores))
    assert result["map_macro"] == pytest.approx(average_precision_score(targets[:, positive], scores[:, positive]))
    assert result["map_micro"] == pytest.approx(average_precision_score(targets, scores, average="micro"))
    head = result["tiers"]["head"]
    assert head["map_macro"] == pytest.approx(np.mean(
        [average_precision_score(targets[:, j], scores[:, j]) for j in (0, 1) if targets[:, j].any()]))
    assert head["f1_micro@tuned"] == pytest.approx(f1_score(targets[:, :2], predicted[:, :2], average="micro"))
    assert [row["ap"] is None for row in result["per_label"]] == list(~positive)
    assert result["per_label"][3]["positives"] == targets[:, 3].sum() and result["per_label"][3]["tier"] == "torso"


def test_an_empty_tier_has_no_classification_metrics():
    targets = np.array([[1, 0], [0, 1], [1, 1]], dtype=bool)
    result = classification.multilabel_metrics(targets, np.full((3, 2), 0.5), np.array(["head", "head"], dtype=object))
    assert result["tiers"]["tail"]["map_macro"] is None and result["tiers"]["tail"]["labels_with_positives"] == 0
    assert result["map_macro"] == pytest.approx(np.mean([2 / 3, 2 / 3]))


def test_top_k_with_ties_and_softmax_metrics_match_loops():
    rng = np.random.default_rng(8)
    scores = tied_scores(rng, (70, 8))
    truth = rng.integers(0, 8, 70)
    for k in (1, 5):
        expected = [truth[i] in sorted(range(8), key=lambda c, i=i: (-scores[i, c], c))[:k] for i in range(70)]
        assert classification.top_k_hits(scores, truth, k).tolist() == expected
    classes = [f"c{i}" for i in range(8)]
    values = [classes[t] for t in truth[:60]] + [None] * 5 + ["unseen"] * 5
    result = classification.softmax_metrics(scores, values, classes)
    assert result["samples"] == 60 and result["samples_unknown"] == 10
    assert result["top1"] == pytest.approx(np.mean(classification.top_k_hits(scores[:60], truth[:60], 1)))
    class_tier = tiers.value_tiers(values[:60])
    tail = [i for i in range(60) if class_tier[values[i]] == "tail"]
    assert result["tiers"]["tail"]["samples"] == len(tail)
    assert result["tiers"]["tail"]["top5"] == pytest.approx(
        np.mean(classification.top_k_hits(scores[tail], truth[tail], 5)))


# ------------------------------------------------------------------------------------------------
# probes
# ------------------------------------------------------------------------------------------------

def test_knn_vote_matches_a_loop_with_ties_and_missing_values():
    rng = np.random.default_rng(9)
    indices = rng.integers(-1, 30, size=(50, 25))
    similarities = np.round(rng.random((50, 25)), 1)
    gallery_codes = rng.integers(-1, 4, 30)
    expected = []
    for row in range(50):
        votes: dict[int, float] = {}
        for i, s in zip(indices[row, :20], similarities[row, :20], strict=True):
            if i >= 0 and gallery_codes[i] >= 0:
                votes[gallery_codes[i]] = votes.get(gallery_codes[i], 0.0) + s
        expected.append(min(votes, key=lambda c, v=votes: (-v[c], c)) if votes else -1)
    assert probes.knn_predict(indices, similarities, gallery_codes).tolist() == expected
    query_codes = rng.integers(-1, 4, 50)
    known = query_codes >= 0
    assert probes.knn_accuracy(indices, similarities, query_codes, gallery_codes) == pytest.approx(
        np.mean(np.array(expected)[known] == query_codes[known]))


def test_linear_probe_matches_sklearn_by_hand():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(60, 6))
    codes = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)
    codes[:4] = -1
    known = codes >= 0
    predicted = np.empty(known.sum(), dtype=int)
    for train, test in KFold(5, shuffle=True, random_state=0).split(x[known]):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        model.fit(x[known][train], codes[known][train])
        predicted[test] = model.predict(x[known][test])
    assert probes.linear_accuracy(x, codes) == pytest.approx(np.mean(predicted == codes[known]))
    gallery_x, gallery_codes = rng.normal(size=(40, 6)), rng.integers(0, 3, 40)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(gallery_x, gallery_codes)
    assert probes.linear_accuracy(x, codes, (gallery_x, gallery_codes)) == pytest.approx(
        np.mean(model.predict(x[known]) == codes[known]))
    assert probes.linear_accuracy(x[:3], np.array([1, 1, 1])) == 1.0  # one class: predicted as is


# ------------------------------------------------------------------------------------------------
# efficiency
# ------------------------------------------------------------------------------------------------

class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4, 5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(images).mean(dim=(2, 3)))


def test_params_and_macs_are_counted_exactly():
    model = Tiny()
    assert efficiency.count_params(model) == 3 * 4 * 9 + 4 * 5 + 5
    assert efficiency.weight_bytes(model) == 4 * efficiency.count_params(model)
    assert efficiency.count_macs(model, 8) == 8 * 8 * 4 * 3 * 9 + 4 * 5


def test_tensor_memory_tracks_the_peak_of_live_tensors():
    def run() -> torch.Tensor:
        a = torch.ones(1000)  # 4000 bytes live
        b = a * 2  # 8000
        del a  # 4000
        c = torch.ones(250)  # 5000
        return b + c.sum()  # the 4-byte sum and the 4000-byte result: 9004, the peak

    with efficiency.TensorMemory() as tracker:
        result = run()
    assert tracker.peak == 9004 and tracker.current == 4000 and result.shape == (1000,)


def test_measure_reports_every_figure(tmp_path):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"x" * 2048)
    result = efficiency.measure(Tiny(), 16, "cpu", checkpoint=checkpoint, heads=nn.Linear(2, 3))
    assert result["params"] == efficiency.count_params(Tiny()) and result["params_heads"] == 9
    assert result["gmacs"] == pytest.approx(efficiency.count_macs(Tiny(), 16) / 1e9)
    assert result["latency_ms"] > 0 and result["throughput"] > 0 and result["checkpoint_mb"] == 2048 / 2 ** 20
    # weights, the 64-image input, and at least the conv output [64, 4, 16, 16] in float32
    assert result["peak_memory_mb"] * 2 ** 20 >= result["weights_mb"] * 2 ** 20 + 2 * 64 * 3 * 16 * 16 * 4


def test_timings_are_a_median_of_several_runs_even_past_the_budget():
    calls = []
    efficiency.median_seconds(lambda: calls.append(1), torch.device("cpu"), warmup=0, runs=20, budget=0.0)
    assert len(calls) == efficiency.MIN_RUNS


def test_measure_records_the_load_and_says_when_the_machine_was_loaded(monkeypatch):
    result = efficiency.measure(Tiny(), 16, "cpu")
    assert result["cores"] >= 1 and result["machine_loaded"] == (result["load_average"] > result["cores"] / 2)
    monkeypatch.setattr(efficiency.os, "getloadavg", lambda: (3.04, 2.0, 1.0))
    monkeypatch.setattr(efficiency.os, "cpu_count", lambda: 4)
    loaded = efficiency.machine_load()
    assert loaded == {"load_average": 3.04, "cores": 4, "machine_loaded": True}
    assert efficiency.load_note(loaded) == "machine loaded (load average 3.0 on 4 cores)"
    assert efficiency.load_note({"load_average": 2.0, "cores": 4, "machine_loaded": False}) is None


def test_the_terminal_table_truncates_nothing_and_aligns_its_columns():
    from weaklabel.eval.report import format_table

    def model(value: float, load: float) -> dict:
        overall = dict.fromkeys(retrieval.METRICS, value) | {"queries": 120}
        return {"retrieval": {"labels": {"overall": overall}}, "classification": {},
                "probes": {"true_type": {"knn_accuracy": value, "linear_accuracy": value}},
                "efficiency": {"latency_ms": 979.8, "throughput": 1234.5,
                               "load_average": load, "cores": 2, "machine_loaded": load > 1}}

    metrics = {"relevance": ["labels"], "models": {"a-rather-long-run-name-best": model(0.5, 3.0),
                                                   "r-last": model(0.25, 0.5)}}
    lines = format_table(metrics).splitlines()
    retrieval_block, side_by_side = lines[:3], lines[4:9]
    assert retrieval_block[1].split()[:2] == ["a-rather-long-run-name-best", "labels"]
    assert len({len(line) for line in retrieval_block}) == 1 and len({len(line) for line in side_by_side}) == 1
    assert side_by_side[0].split() == ["a-rather-long-run-name-best", "r-last"]
    assert side_by_side[2].startswith("probe true_type: linear_accuracy ")
    assert lines[-1] == ("a-rather-long-run-name-best: machine loaded (load average 3.0 on 2 cores), "
                         "so its latency and throughput are unsteady")


def test_eval_exports_load_on_first_use_without_torch_for_the_metrics():
    import subprocess
    import sys

    code = ("import sys, weaklabel.eval.retrieval, weaklabel.eval.classification, weaklabel.tiers; "
            "assert 'torch' not in sys.modules; "
            "from weaklabel.eval import check_vocabulary, evaluate, exact_search; "
            "assert all(callable(f) for f in (check_vocabulary, evaluate, exact_search))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
