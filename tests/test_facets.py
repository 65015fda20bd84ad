"""Facet discovery in the vocabulary, its overrides, one label per facet in assignment, facets in the shards."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error

from weaklabel.datasets.format import shard_samples
from weaklabel.facets import facet_members
from weaklabel.labeling import LabelAssigner, Vocabulary, build_vocabulary
from weaklabel.labeling.facets import FacetParams, discover_facets
from weaklabel.labeling.overrides import OverridesError
from weaklabel.labeling.stages import read_labeled
from weaklabel.listings import ColumnRoles, Field
from weaklabel.metrics import multi_hot

NAMES = ["red", "blue", "green", "shirt", "mug", "lamp", "handmade"]
COLOURS, TYPES = [0, 1, 2], [3, 4, 5]


def _toy_listings(n: int = 600, seed: int = 0) -> list[np.ndarray]:
    """Each listing: one colour, one type, and "handmade" (6) on a third of them."""
    rng = np.random.default_rng(seed)
    return [np.array([rng.choice(COLOURS), rng.choice(TYPES)] + ([6] if i % 3 == 0 else [])) for i in range(n)]


def _toy_embeddings() -> np.ndarray:
    """Colours near colours, types near types, "handmade" apart from both."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 16))
    rows = [centres[0] + 0.3 * rng.normal(size=16) for _ in COLOURS] + [
        centres[1] + 0.3 * rng.normal(size=16) for _ in TYPES] + [centres[2]]
    vectors = np.array(rows)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _toy_facets(**seeding):
    matrix = multi_hot(_toy_listings(), len(NAMES))
    informativeness = np.array([0.05, 0.05, 0.05, 0.95, 0.95, 0.95, 0.1])
    return discover_facets(matrix, NAMES, informativeness, _toy_embeddings(), FacetParams(), **seeding)


def test_alternatives_of_one_role_form_a_facet_and_a_label_beside_them_stays_out():
    found = _toy_facets()
    assert sorted(map(sorted, found.table["labels"])) == [COLOURS, TYPES]
    assert found.of_label[6] is None
    for name, ids in zip(found.table["name"], found.table["labels"]):
        assert sorted(name.split("/")) == sorted(NAMES[i] for i in ids)  # named after its three labels
    assert (found.table["collision"] == 0).all() and np.allclose(found.table["coverage"], 1.0)


def test_a_seed_names_its_facet_and_grows_and_unfaceted_labels_stay_out():
    found = _toy_facets(seeds={"colour": [0, 1]}, unfaceted={5})
    by_name = dict(zip(found.table["name"], found.table["labels"]))
    assert sorted(by_name["colour"]) == COLOURS  # "green" behaves like the seeds: it joins them
    assert found.of_label[5] is None and found.table.set_index("name").loc["colour", "seeded"]
    split = _toy_facets(seeds={"warm": [0], "cool": [1, 2]})
    assert {"warm", "cool"} <= set(split.table["name"])  # two seeds never merge


def test_labels_that_share_listings_are_no_facet():
    together = [np.array([0, 1]) for _ in range(300)] + [np.array([2]) for _ in range(300)]
    matrix = multi_hot(together, 3)
    found = discover_facets(matrix, ["a", "b", "c"], np.full(3, 0.5), np.eye(3), FacetParams())
    assert found.of_label[0] is None or found.of_label[0] != found.of_label[1]


def test_facet_params_are_checked():
    with pytest.raises(ValueError, match="facet_max_collision"):
        FacetParams(max_collision=2).check()


@pytest.fixture(scope="module")
def vocab_with_facets(example_vocab) -> Vocabulary:
    return Vocabulary.load(example_vocab)


def test_the_vocabulary_writes_facets(example_vocab, vocab_with_facets):
    labels, facets = vocab_with_facets.labels, pd.read_parquet(example_vocab / "facets.parquet")
    assert len(facets) >= 2 and "facet" in pd.read_parquet(example_vocab / "labels.parquet")
    members = facet_members(labels)
    assert list(members) == facets["name"].tolist()  # one order everywhere
    for name, ids in zip(facets["name"], facets["labels"]):
        assert sorted(ids) == members[name]
    assert "Facets" in (example_vocab / "report.html").read_text()


def test_each_listing_gets_its_best_label_of_each_facet(example_labeled, vocab_with_facets):
    labeled = read_labeled(example_labeled)
    members = facet_members(vocab_with_facets.labels)
    facet_of = {label: name for name, ids in members.items() for label in ids}
    assert all(len(row) == len(members) for row in labeled["facets"])
    chosen_somewhere = 0
    for labels, scores, chosen in zip(labeled["labels"], labeled["scores"], labeled["facets"]):
        for position, name in enumerate(members):
            in_facet = [(s, -label) for label, s in zip(labels, scores) if facet_of.get(label) == name]
            expected = -max(in_facet)[1] if in_facet else -1
            assert chosen[position] == expected
            chosen_somewhere += expected >= 0
    assert chosen_somewhere > len(labeled)


def test_shards_carry_the_facet_labels(example_shards, example_labeled):
    by_id = read_labeled(example_labeled).set_index("id")["facets"]
    tar = min(example_shards.glob("train-*.tar"))
    for _, sample in list(shard_samples(tar))[:20]:
        meta = json.loads(sample["json"])
        assert meta["facets"] == list(by_id[meta["id"]])


def _vocab(example_data, out, overrides):
    roles = ColumnRoles((Field("title", "text"),), id="id", image="image")
    return build_vocabulary(example_data / "listings.csv", roles, out, progress=False, overrides=overrides)


def test_overrides_seed_and_keep_labels_out_of_facets(example_data, tmp_path, vocab_with_facets):
    plain = _vocab(example_data, tmp_path / "plain", None)
    colours = [n for n in ("black", "white", "grey", "blue") if n in set(plain.names)][:2]
    assert len(colours) == 2
    seeded = _vocab(example_data, tmp_path / "seeded", {"facets": {"colour": colours}, "unfaceted": ["red"]}
                    if "red" in set(plain.names) else {"facets": {"colour": colours}})
    labels = seeded.labels.set_index("name")
    assert (labels.loc[colours, "facet"] == "colour").all()
    if "red" in labels.index:
        assert labels.loc["red", "facet"] is None
    with pytest.raises(OverridesError, match="one facet at most"):
        _vocab(example_data, tmp_path / "twice", {"facets": {"a": [colours[0]], "b": [colours[0]]}})
    with pytest.raises(OverridesError, match="no label"):
        _vocab(example_data, tmp_path / "unknown", {"facets": {"a": ["zzqx-no-such"]}})


def test_facets_off_and_an_older_vocabulary_give_no_facets_column_values(example_data, tmp_path):
    roles = ColumnRoles((Field("title", "text"),), id="id", image="image")
    vocabulary = build_vocabulary(example_data / "listings.csv", roles, tmp_path / "v", progress=False, facets=False)
    assert vocabulary.labels["facet"].isna().all() and vocabulary.facets.empty
    frame = pd.DataFrame({"id": ["a"], "title": ["red t-shirt"], "image": [""]})
    assert "facets" not in LabelAssigner(vocabulary).fit().transform(frame)


def test_the_cli_turns_facets_off_and_checks_their_knobs(example_data, tmp_path, capsys):
    from weaklabel.cli import main

    listings = str(example_data / "listings.csv")
    assert main(["vocab", listings, "--text", "title", "--out", str(tmp_path / "off"), "--no-facets", "-q"]) == 0
    assert pd.read_parquet(tmp_path / "off" / "labels.parquet")["facet"].isna().all()
    error = one_line_error(["vocab", listings, "--text", "title", "--out", str(tmp_path / "bad"),
                            "--facet-max-collision", "2", "-q"], capsys)
    assert "facet_max_collision" in error
    bad_overrides = tmp_path / "overrides.toml"
    bad_overrides.write_text('[facets]\ncolour = 5\n')
    error = one_line_error(["vocab", listings, "--text", "title", "--out", str(tmp_path / "bad2"),
                            "--overrides", str(bad_overrides), "-q"], capsys)
    assert "[facets] 'colour'" in error


def test_a_seeded_facet_takes_out_a_label_that_is_no_alternative():
    # "pack" (7) always sits beside a colour: found or seeded, the colour facet leaves it out
    listings = [np.append(row, 7) if i % 4 == 0 else row for i, row in enumerate(_toy_listings())]
    matrix = multi_hot(listings, len(NAMES) + 1)
    informativeness = np.array([0.05, 0.05, 0.05, 0.95, 0.95, 0.95, 0.1, 0.05])
    embeddings = np.vstack([_toy_embeddings(), _toy_embeddings()[0]])
    for seeds in ({}, {"colour": [0, 1]}):
        found = discover_facets(matrix, [*NAMES, "pack"], informativeness, embeddings, FacetParams(), seeds=seeds)
        colour = next(ids for ids in found.table["labels"] if 0 in ids)
        assert sorted(colour) == COLOURS and found.of_label[7] is None


def test_misplaced_or_unusable_facet_edits_are_errors(example_data, tmp_path):
    with pytest.raises(OverridesError, match="before the first"):
        _vocab(example_data, tmp_path / "a", {"facets": {"colour": ["black"], "unfaceted": ["red"]}})
    roles = ColumnRoles((Field("title", "text"),), id="id", image="image")
    with pytest.raises(ValueError, match="facets are off"):
        build_vocabulary(example_data / "listings.csv", roles, tmp_path / "b", progress=False, facets=False,
                         overrides={"facets": {"colour": ["black"]}})


def test_a_listing_column_named_facets_never_passes_for_facet_labels(example_data, tmp_path):
    from weaklabel.labeling import assign_labels

    listings = pd.read_csv(example_data / "listings.csv").assign(facets="colour:red")
    listings.to_csv(tmp_path / "listings.csv", index=False)
    roles = ColumnRoles((Field("title", "text"),), id="id", image="image")
    for facets in (True, False):
        vocab = tmp_path / f"vocab-{facets}"
        build_vocabulary(tmp_path / "listings.csv", roles, vocab, progress=False, facets=facets)
        assign_labels(tmp_path / "listings.csv", vocab, tmp_path / f"labeled-{facets}", progress=False, workers=1)
        labeled = read_labeled(tmp_path / f"labeled-{facets}")
        assert (labeled["listing_facets"] == "colour:red").all()
        assert ("facets" in labeled) == facets
