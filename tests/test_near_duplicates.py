"""Near-duplicate images: found by the shards stage, kept in one split, kept out of the judge's way."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from test_shards import FAST, derive, labeled_rows, labelled_positions, read_samples

from weaklabel.datasets import near, verify_shards, write_shards
from weaklabel.datasets.images import ImageOptions, process_image
from weaklabel.eval import evaluate
from weaklabel.eval.near_duplicates import group_pairs, search_without_copies
from weaklabel.synthetic.copies import near_copy, scene

UNCROPPED = ("reencode", "resize", "mirror", "recolour")


def fingerprints(images: list[Image.Image]) -> np.ndarray:
    """Each image through the stage's own path: saved as JPEG, processed at the default size."""
    prints = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        encoded = process_image(buffer.getvalue(), ImageOptions(), fingerprint=True)
        prints.append(np.frombuffer(encoded.fingerprint, np.uint8))
    return np.stack(prints)


# ------------------------------------------------------------------------------------------------
# the fingerprint and the grouping
# ------------------------------------------------------------------------------------------------

def test_copies_are_found_and_distinct_photos_are_not():
    photos = [scene(np.random.default_rng([3, i])) for i in range(24)]
    rng = np.random.default_rng(0)
    copies = [near_copy(photos[i], kind, rng) for i, kind in enumerate(UNCROPPED)]
    pairs = near.near_pairs(fingerprints(photos + copies))
    assert sorted(zip(pairs["a"], pairs["b"])) == [(i, len(photos) + i) for i in range(len(UNCROPPED))]
    assert (pairs["distance"] <= 1 - near.MIN_SIMILARITY).all()


def test_a_passed_through_jpeg_gets_the_fingerprint_of_its_pixels():
    photo = scene(np.random.default_rng(7), size=256)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=95)
    passed = process_image(buffer.getvalue(), ImageOptions(size=256), fingerprint=True)
    resized = process_image(buffer.getvalue(), ImageOptions(size=200), fingerprint=True)
    assert passed.passed_through and not resized.passed_through
    assert near.pair_distance(np.frombuffer(passed.fingerprint, np.uint8),
                              np.frombuffer(resized.fingerprint, np.uint8))[0] < 1 - near.MIN_SIMILARITY
    assert process_image(buffer.getvalue(), ImageOptions(size=256)).fingerprint is None


@pytest.mark.parametrize("mode", ["center_crop", "border", "keep_ratio"])
def test_a_copy_left_unresized_matches_its_resized_original(mode):
    """With resize_only_if_bigger the small copy is neither cropped nor padded: the fingerprint is
    taken of the scaled image, before any crop or border."""
    photo = scene(np.random.default_rng(4), size=600).crop((0, 100, 600, 500))
    options = ImageOptions(size=256, resize_mode=mode, resize_only_if_bigger=True)
    prints = []
    for image in (photo, photo.resize((240, 160), Image.Resampling.LANCZOS)):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        prints.append(np.frombuffer(process_image(buffer.getvalue(), options, fingerprint=True).fingerprint, np.uint8))
    assert near.pair_distance(prints[0], prints[1])[0] < 1 - near.MIN_SIMILARITY


def test_the_option_changes_no_output_pixels():
    buffer = io.BytesIO()
    scene(np.random.default_rng(6), size=300).save(buffer, "JPEG", quality=90)
    for size in (32, 48, 64, 100):
        options = ImageOptions(size=size, resize_mode="border")
        plain, fingerprinted = (process_image(buffer.getvalue(), options, fingerprint=f) for f in (False, True))
        assert plain.data == fingerprinted.data


def test_a_query_is_never_its_own_near_copy():
    ids = pd.Series(["q1", "q2", "m"])
    pairs = group_pairs(ids, ids, {"m": "q1"})  # a gallery split named as the query split
    assert sorted(zip(pairs["query"], pairs["item"])) == [(0, 2), (2, 0)]


def test_the_search_leaves_exactly_the_copies_out():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(30, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = pd.Series([f"i{n}" for n in range(30)])
    groups = {f"i{n}": "i0" for n in range(1, 6)} | {"i11": "i10"}
    copies = group_pairs(ids, ids, groups)
    found = search_without_copies(vectors, vectors, 5, np.arange(30), copies, "cpu")
    group_of = np.array([groups.get(i, i) for i in ids])
    for query in range(30):
        scores = vectors @ vectors[query]
        scores[group_of == group_of[query]] = -np.inf  # itself and its group-mates
        assert found.indices[query].tolist() == np.argsort(-scores, kind="stable")[:5].tolist()


def test_copies_of_copies_form_one_group_each_member_with_its_closest_partner():
    pairs = pd.DataFrame({"a": [0, 1, 3], "b": [1, 2, 4], "distance": [0.001, 0.0005, 0.0]})
    first, partner, distance = near.groups(6, pairs)
    assert first.tolist() == [0, 0, 0, 3, 3, 5]
    assert partner.tolist() == [1, 2, 1, 4, 3, -1]
    assert distance[:5].tolist() == [0.001, 0.0005, 0.0005, 0.0, 0.0] and np.isnan(distance[5])


def test_identical_signatures_are_copies_even_at_similarity_one():
    prints = fingerprints([scene(np.random.default_rng(2))] * 2)
    pairs = near.near_pairs(prints, min_similarity=1.0)
    assert list(zip(pairs["a"], pairs["b"])) == [(0, 1)] and pairs["distance"].tolist() == [0.0]


def test_a_bucket_of_look_alikes_costs_linear_work():
    base = np.frombuffer(fingerprints([scene(np.random.default_rng(1))])[0].tobytes(), np.float16).astype(np.float32)
    noise = np.random.default_rng(0).normal(0, 1e-3 * np.abs(base).max(), (600, base.size)).astype(np.float32)
    prints = (base + noise).astype(np.float16).view(np.uint8)
    windows = near.HASH_BITS // near.WINDOW_BITS
    pairs = near.near_pairs(prints)
    assert 0 < len(pairs) <= len(prints) * near.NEIGHBOURS * windows < len(prints) * (len(prints) - 1) // 2
    first, _, _ = near.groups(len(prints), pairs)
    assert (first == 0).all()  # one group: copies of copies stay together


# ------------------------------------------------------------------------------------------------
# the shards stage
# ------------------------------------------------------------------------------------------------

COPIED = 4  # listings whose image is replaced by a near-copy of an earlier listing's image


@pytest.fixture(scope="module")
def with_copies(example_labeled: Path, example_data: Path, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """200 example listings; ``COPIED`` of them get a generated 128 px photo each, and as many others a
    near-copy of one of these; {copy id: original id}."""
    folder = tmp_path_factory.mktemp("copies")
    rows = labeled_rows(example_labeled).head(200)
    positions = labelled_positions(example_labeled, 200)
    originals, targets = positions[:COPIED], positions[-COPIED:]
    rng = np.random.default_rng(3)
    replaced, truth = {}, {}
    for kind, original, target in zip(UNCROPPED, originals, targets):
        photo = scene(np.random.default_rng([5, original]))
        photo.save(folder / f"photo-{original}.jpg", quality=90)
        near_copy(photo, kind, rng).save(folder / f"copy-{target}.jpg", quality=90)
        replaced |= {original: str(folder / f"photo-{original}.jpg"), target: str(folder / f"copy-{target}.jpg")}
        truth[rows["id"][target]] = rows["id"][original]
    return derive(example_labeled, folder / "labeled", 200, replaced), truth


def written_splits(folder: Path) -> dict[str, str]:
    return {json.loads(sample["json"])["id"]: shard.split("-")[0]
            for shard, samples in read_samples(folder).items() for sample in samples}


@pytest.mark.parametrize("mode", ["group", "drop"])
def test_near_copies_are_grouped_into_their_originals_split(with_copies, example_data: Path, tmp_path: Path, mode):
    labeled, truth = with_copies
    out = tmp_path / "shards"
    manifest = write_shards(labeled, out, images_root=example_data, allow_outside_root=True,
                            splits="train=0.5,val=0.5", near_duplicates=mode, **FAST)
    duplicates = pd.read_parquet(out / "duplicates.parquet")
    near_rows = duplicates[duplicates["kind"].eq("near")]
    assert dict(zip(near_rows["id"], near_rows["duplicate_of"])) == truth
    assert dict(zip(near_rows["id"], near_rows["group"])) == truth
    assert (near_rows["distance"] < 1 - near.MIN_SIMILARITY).all() and near_rows["written"].eq(mode == "group").all()
    splits = written_splits(out)
    for copy, original in truth.items():
        assert near_rows.set_index("id").loc[copy, "split"] == splits[original]
        assert splits.get(copy) == (splits[original] if mode == "group" else None)
    counts = manifest["counts"]
    assert counts["near_duplicates"] == {"groups": COPIED, "written": COPIED * (mode == "group"),
                                         "dropped": COPIED * (mode == "drop")}
    assert counts["rows_in"] == counts["written"] + counts["duplicates"] + counts["rejected_total"]
    assert verify_shards(out, workers=1, progress=False) == []


def test_near_duplicates_off_finds_only_exact_copies(with_copies, example_data: Path, tmp_path: Path):
    labeled, _ = with_copies
    manifest = write_shards(labeled, tmp_path / "shards", images_root=example_data, allow_outside_root=True,
                            near_duplicates="off", **FAST)
    assert not pd.read_parquet(tmp_path / "shards" / "duplicates.parquet")["kind"].eq("near").any()
    assert manifest["counts"]["near_duplicates"] == {"groups": 0, "written": 0, "dropped": 0}


def test_a_bad_near_option_is_refused_before_anything_is_written(with_copies, tmp_path: Path):
    labeled, _ = with_copies
    for options in ({"near_duplicates": "merge"}, {"near_similarity": 1.5}):
        with pytest.raises(ValueError, match="near_"):
            write_shards(labeled, tmp_path / "shards", **options, **FAST)
    assert not (tmp_path / "shards").exists()


# ------------------------------------------------------------------------------------------------
# the judge
# ------------------------------------------------------------------------------------------------

def test_eval_leaves_a_querys_near_copies_out_of_its_gallery(with_copies, example_data: Path, tmp_path: Path):
    """Queries whose only relevant item is their near-copy: found at rank 1 unless the copy is left out."""
    labeled, truth = with_copies
    shards = tmp_path / "shards"
    write_shards(labeled, shards, images_root=example_data, allow_outside_root=True, **FAST)
    ids = [*truth, *truth.values(), *(f"other-{i}" for i in range(12))]
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(ids), 32)).astype(np.float32)
    vectors[:COPIED] = vectors[COPIED:2 * COPIED]  # each copy where its original is
    labels = [[i] for i in range(COPIED)] * 2 + [[100 + i] for i in range(12)]  # only the pair shares a label
    embeddings = tmp_path / "embeddings.parquet"
    pq.write_table(pa.table({"id": ids, "labels": labels, "embedding": list(vectors)}), embeddings)
    kept = evaluate(embeddings=[embeddings], shards=shards, out=tmp_path / "kept", exclude_near_duplicates=False,
                    efficiency=False)["models"]["embeddings"]
    left = evaluate(embeddings=[embeddings], shards=shards, out=tmp_path / "left", efficiency=False)
    model = left["models"]["embeddings"]
    assert left["exclude_near_duplicates"] and model["near_duplicates_left_out"] == {"items": 2 * COPIED,
                                                                                   "queries": 2 * COPIED}
    assert kept["retrieval"]["labels"]["overall"]["recall@1"] == 1.0
    assert kept["retrieval"]["labels"]["overall"]["queries"] == 2 * COPIED
    assert model["retrieval"]["labels"]["overall"]["queries"] == 0
    assert model["retrieval"]["labels"]["overall"]["queries_without_relevant"] == len(ids)
    report = (tmp_path / "left" / "report.html").read_text()
    assert f"{2 * COPIED} gallery images that are near-copies" in report
