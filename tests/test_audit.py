"""``weaklabel audit``: visualness per label, suspect pairs, the audit folder, the CLI, and round 2's targets."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import EXAMPLE_ROLES, one_line_error

from weaklabel.audit import audit
from weaklabel.audit.predict import Predictions
from weaklabel.audit.scores import AuditParams, given_matrix, label_visualness, neighbour_votes, suspect_pairs
from weaklabel.cli import main
from weaklabel.corrections import LABELS_AUDIT, PAIRS, Corrections
from weaklabel.datasets.loader import TargetEncoder

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLUSTERS = 4  # labels 0..3: one per cluster of images (visual); 4: random (non-visual); 5: two held-out images


def constructed(n: int = 240, flipped: int = 8, seed: int = 0) -> Predictions:
    """Images in four tight clusters, each cluster's label given by the text, plus a random label; image
    ``flipped`` (cluster 0) is labelled with cluster 1's label instead of its own."""
    rng = np.random.default_rng(seed)
    cluster = np.arange(n) % CLUSTERS
    centres = np.eye(8, dtype=np.float32)[:CLUSTERS] * 4
    embeddings = centres[cluster] + rng.normal(0, 0.3, (n, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    random_label = rng.random(n) < 0.3
    labels = [[int(c)] + ([4] if r else []) for c, r in zip(cluster, random_label, strict=True)]
    labels[flipped] = [1 if x == 0 else x for x in labels[flipped]]
    splits = np.where(np.arange(n) < n * 3 // 4, "train", "val").astype(object)
    for i in np.flatnonzero(splits == "val")[:2]:
        labels[i].append(5)
    probabilities = np.full((n, 6), 0.05, dtype=np.float32)
    probabilities[np.arange(n), cluster] = 0.9
    probabilities[:, 4] = rng.random(n) * 0.5
    return Predictions([f"item{i}" for i in range(n)], splits, labels, embeddings, probabilities)


def test_visual_labels_non_visual_labels_and_too_few_images_are_told_apart():
    predictions = constructed()
    given = given_matrix(predictions, 6)
    table = label_visualness(predictions, given, neighbour_votes(predictions.embeddings, given, 10), AuditParams())
    assert table["verdict"].tolist() == ["visual"] * CLUSTERS + ["non-visual", "unjudged"]
    assert (table.loc[:3, "visualness"] > 0.8).all() and abs(table.loc[4, "visualness"]) < 0.1
    assert table.loc[5, "held_out"] == 2 and table["images"].tolist()[4] == int(given[:, 4].sum())


def test_neighbour_votes_are_the_share_of_the_nearest_other_images_with_the_label():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(30, 5)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = [list(np.flatnonzero(rng.random(3) < 0.4)) for _ in range(30)]
    given = given_matrix(Predictions([], np.array([]), labels, vectors, np.zeros((30, 3))), 3)
    votes = neighbour_votes(vectors, given, 4)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    for i in range(30):
        nearest = np.argsort(-similarity[i], kind="stable")[:4]
        np.testing.assert_allclose(votes[i], given[nearest].toarray().mean(axis=0), atol=1e-6)


def test_a_flipped_label_is_contradicted_and_the_true_one_missed():
    predictions = constructed()
    given = given_matrix(predictions, 6)
    votes = neighbour_votes(predictions.embeddings, given, 10)
    pairs = suspect_pairs(predictions, given, votes, np.arange(CLUSTERS))
    found = set(zip(pairs["id"], pairs["label_id"], pairs["kind"], strict=True))
    assert {("item8", 1, "contradicted"), ("item8", 0, "missed")} <= found
    assert len(pairs) <= 4  # clean clusters: nothing else to suspect
    assert set(pairs["label_id"]) <= set(range(CLUSTERS))  # only the labels asked about
    assert pairs.loc[pairs["kind"] == "contradicted", "score"].between(0, 1).all()


def test_corrections_drop_non_visual_labels_everywhere_and_contradicted_pairs_per_listing(tmp_path: Path):
    pd.DataFrame({"label_id": [0, 1, 2], "verdict": ["visual", "non-visual", "unjudged"]}).to_parquet(
        tmp_path / LABELS_AUDIT)
    pd.DataFrame({"id": ["a", "b"], "label_id": [0, 2], "kind": ["contradicted", "missed"]}).to_parquet(
        tmp_path / PAIRS)
    corrections = Corrections.read(tmp_path)
    assert corrections.kept([0, 1, 2], "a") == [2] and corrections.kept([0, 1, 2], "b") == [0, 2]
    encoder = TargetEncoder.create(3, corrections=corrections)
    assert encoder({"id": "a", "labels": [0, 1, 2]})["labels"].tolist() == [0.0, 0.0, 1.0]
    assert encoder({"id": "c", "labels": [0, 1]})["labels"].tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="is not an audit folder"):
        Corrections.read(tmp_path / "nowhere")


# --------------------------------------------------------------------------- on the example shards


@pytest.fixture(scope="module")
def checkpoint(example_shards: Path, tmp_path_factory) -> Path:
    from weaklabel.training import train

    out = tmp_path_factory.mktemp("audit-run")
    train(example_shards, out, model="resnet10t", image_size=32, embed_dim=16, batch_size=32, steps=20, lr=0.003,
          workers=0, shuffle_buffer=50, progress=False)
    return out / "last.pt"


@pytest.fixture(scope="module")
def audited(checkpoint: Path, example_shards: Path, example_vocab: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("audit") / "audit"
    assert main(["audit", str(checkpoint), "--shards", str(example_shards), "--vocab", str(example_vocab),
                 "--out", str(out), "-q", "--neighbours", "10"]) == 0
    return out


def test_the_audit_folder_holds_every_label_and_pair_in_open_formats(audited: Path, example_shards: Path):
    verdicts = pd.read_parquet(audited / LABELS_AUDIT)
    names = pd.read_parquet(example_shards / "labels.parquet")["name"].tolist()
    assert verdicts["label_id"].tolist() == list(range(len(names))) and verdicts["name"].tolist() == names
    assert set(verdicts["verdict"]) <= {"visual", "non-visual", "unjudged"}
    assert {"ap_gain", "agreement_gain", "visualness", "held_out", "contradicted", "missed"} <= set(verdicts)
    judged = verdicts[verdicts["verdict"] != "unjudged"]
    assert (judged["held_out"] >= AuditParams().min_held_out).all()
    assert ((judged["visualness"] < AuditParams().min_visualness) == (judged["verdict"] == "non-visual")).all()
    pairs = pd.read_parquet(audited / PAIRS)
    assert list(pairs.columns) == ["id", "split", "label_id", "name", "kind", "score", "predicted"]
    assert set(pairs["kind"]) <= {"contradicted", "missed"}
    assert not set(pairs["label_id"]) & set(verdicts.loc[verdicts["verdict"] == "non-visual", "label_id"])
    manifest = json.loads((audited / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["visual"] + counts["non-visual"] + counts["unjudged"] == len(verdicts) == counts["labels"]
    assert counts["contradicted"] + counts["missed"] == len(pairs) and counts["images"] == 600
    for kind in ("contradicted", "missed"):
        assert verdicts[kind].sum() == (pairs["kind"] == kind).sum()


def test_the_suggested_overrides_delete_the_non_visual_labels_and_rebuild(audited: Path, example_data: Path,
                                                                         example_vocab: Path, tmp_path: Path):
    from weaklabel.labeling import build_vocabulary

    verdicts = pd.read_parquet(audited / LABELS_AUDIT)
    flagged = verdicts.loc[verdicts["verdict"] == "non-visual"].sort_values(["visualness", "label_id"])
    text = (audited / "overrides.toml").read_text(encoding="utf-8")
    assert "NOT applied" in text and tomllib.loads(text)["delete"] == flagged["name"].tolist()
    assert flagged["name"].tolist(), "the tiny model should find some label it cannot see"
    build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, tmp_path, progress=False, min_label_support=5,
                     overrides=audited / "overrides.toml")
    rebuilt = set(pd.read_parquet(tmp_path / "labels.parquet")["name"])
    assert not rebuilt & set(flagged["name"])


def test_the_report_shows_each_label_with_its_images(audited: Path):
    page = (audited / "report.html").read_text(encoding="utf-8")
    verdicts = pd.read_parquet(audited / LABELS_AUDIT)
    shown = verdicts.sort_values("images", ascending=False).head(20)
    for name in shown["name"]:
        assert f"<b>{name}</b>" in page
    assert page.count('src="data:image/jpeg;base64,') >= 20
    assert 'id="search"' in page


def test_the_audit_is_deterministic(checkpoint: Path, example_shards: Path, audited: Path, tmp_path: Path):
    audit(checkpoint, example_shards, tmp_path / "again", neighbours=10)
    for name in (LABELS_AUDIT, PAIRS):
        pd.testing.assert_frame_equal(pd.read_parquet(audited / name), pd.read_parquet(tmp_path / "again" / name))


def test_audit_input_errors_are_one_line(checkpoint: Path, example_shards: Path, audited: Path, tmp_path: Path,
                                         capsys):
    base = ["--shards", str(example_shards), "--out"]
    assert "--overwrite" in one_line_error(["audit", str(checkpoint), *base, str(audited)], capsys)
    assert "does not exist" in one_line_error(["audit", str(tmp_path / "none.pt"), *base, str(tmp_path / "a")],
                                              capsys)
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    pd.DataFrame({"label_id": [0], "name": ["other"], "aliases": [[]]}).to_parquet(vocab / "labels.parquet")
    assert "the checkpoint and vocabulary the shards were built from" in one_line_error(
        ["audit", str(checkpoint), *base, str(tmp_path / "b"), "--vocab", str(vocab)], capsys)
    only_train = tmp_path / "only-train"
    shutil.copytree(example_shards, only_train)
    info = json.loads((only_train / "_info.json").read_text())
    info["splits"] = {"train": info["splits"]["train"]}
    (only_train / "_info.json").write_text(json.dumps(info))
    assert "no split besides train" in one_line_error(
        ["audit", str(checkpoint), "--shards", str(only_train), "--out", str(tmp_path / "c")], capsys)
    assert "min_visualness must be in [0, 1]" in one_line_error(
        ["audit", str(checkpoint), *base, str(tmp_path / "d"), "--min-visualness", "2"], capsys)


def test_round_two_trains_without_the_dropped_labels(audited: Path, example_shards: Path, tmp_path: Path, capsys):
    from weaklabel.training import train

    train(example_shards, tmp_path / "run", model="resnet10t", image_size=32, embed_dim=16, batch_size=16, steps=2,
          workers=0, shuffle_buffer=10, progress=False, relabel=str(audited))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["relabel"] == str(audited)
    message = one_line_error(["train", str(example_shards), "--out", str(tmp_path / "bad"), "--model", "resnet10t",
                              "--steps", "1", "--relabel", str(tmp_path)], capsys)
    assert "is not an audit folder" in message


def test_the_training_targets_leave_out_what_the_audit_dropped(audited: Path, example_shards: Path):
    from weaklabel.datasets.loader import make_dataset

    corrections = Corrections.read(audited)
    dataset = make_dataset(example_shards, "val", training=False, image_size=32, corrections=corrections,
                           return_meta=True)
    checked = 0
    for _, targets, meta in dataset:
        kept = set(np.flatnonzero(targets["labels"].numpy()))
        assert kept == set(meta["labels"]) - corrections.labels - corrections.pairs.get(str(meta["id"]), set())
        checked += 1
    assert checked and (corrections.labels or corrections.pairs)
    assert torch.is_tensor(targets["labels"])


@pytest.mark.timeout(180)
def test_the_report_in_a_headless_browser_shows_every_image_and_filters_by_search(audited: Path):
    from test_gallery import chromium_binary, visible_rows

    binary = chromium_binary()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            page.goto((audited / "report.html").as_uri())
            page.wait_for_function("[...document.images].every(image => image.complete)")
            widths = page.eval_on_selector_all("img", "images => images.map(image => image.naturalWidth)")
            assert widths and min(widths) > 0
            rows = visible_rows(page)
            assert rows == min(200, len(pd.read_parquet(audited / LABELS_AUDIT)))
            page.locator("#search").fill("no label is called this")
            assert visible_rows(page) == 0 and page.locator("#count").inner_text() == f"0 of {rows} labels"
        finally:
            browser.close()
