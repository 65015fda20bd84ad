"""Counting and filtering candidate terms; resolving the embedding model."""

from pathlib import Path

import pandas as pd
import pytest

from weaklabel.labeling.embeddings import DEFAULT_MODEL, resolve_model
from weaklabel.labeling.terms import TermCounts, npmi, select_candidates
from weaklabel.labeling.text import Analyzer, resolve_stopwords
from weaklabel.listings import ColumnRoles, Field

ROLES = ColumnRoles(fields=(Field("title", "text"), Field("tags", "tags")), id="id", image=None)


def counts_of(titles, tags=None):
    frame = pd.DataFrame({"id": [str(i) for i in range(len(titles))], "title": titles,
                          "tags": tags or [[] for _ in titles]})
    return TermCounts.count(frame, ROLES, Analyzer((1, 2), resolve_stopwords("english")))


def test_support_counts_listings_not_occurrences_per_field_and_in_any_field():
    counts = counts_of(["red mug red mug", "red cup"], [["mug"], []])
    assert counts.any_field["red"] == 2 and counts.any_field["mug"] == 1 and counts.any_field["red mug"] == 1
    by_field = counts.by_field.set_index(["term", "field"])["support"]
    assert by_field[("mug", "title")] == 1 and by_field[("mug", "tags")] == 1
    assert counts.n_listings == 2


def test_counts_of_partitions_add_up_to_the_whole():
    titles = ["red mug", "blue mug", "red cup", "green vase", "blue vase"]
    whole = counts_of(titles)
    parts = TermCounts.combine([counts_of(titles[:2]), counts_of(titles[2:])])
    assert parts.n_listings == whole.n_listings
    pd.testing.assert_series_equal(parts.any_field.sort_index(), whole.any_field.sort_index(), check_names=False)


def test_npmi_is_one_for_words_always_together_and_near_zero_for_chance():
    support = pd.Series({"track": 10, "pants": 10, "track pants": 10, "men": 50, "blue": 20, "men blue": 10})
    scores = npmi(pd.Index(["track pants", "men blue", "men"]), support, 100)
    assert scores[0] == pytest.approx(1.0) and abs(scores[1]) < 0.01 and scores[2] == 1.0


def test_candidates_filtered_by_support_max_df_npmi_and_lists():
    titles = ["men blue mug"] * 6 + ["men red mug"] * 6 + ["men vase"] * 4 + ["green teapot", "rare thing"]
    counts = counts_of(titles)
    candidates, dropped, reasons = select_candidates(
        counts, min_support=3, max_df=0.8, min_npmi=0.05, blocklist={"vase"}, allowlist={"teapot"})
    kept = set(candidates["term"])
    assert {"mug", "blue", "red", "teapot"} <= kept
    assert "men" not in kept and dropped.set_index("term").loc["men", "reason"] == "max_df"  # in 16 of 18
    assert dropped.set_index("term").loc["vase", "reason"] == "blocklist"
    assert "rare" not in kept and reasons["min_support"] >= 2
    assert candidates["support"].is_monotonic_decreasing


def test_model_resolution_prefers_a_local_directory_then_the_packaged_copy(tmp_path: Path):
    assert resolve_model(str(tmp_path)) == str(tmp_path.resolve())
    packaged = Path(resolve_model(None))
    assert (packaged / "config.json").is_file() and resolve_model(DEFAULT_MODEL) == str(packaged)
    assert resolve_model("someone/another-model") == "someone/another-model"


def test_product_compounds_survive_npmi_but_colour_compounds_do_not():
    titles = (["Fresh Apple"] * 40 + ["Orange Juice"] * 80 + ["Apple Juice"] * 15 + ["Mango Juice"] * 25
              + ["Blue Shirt"] * 12 + ["Blue Mug"] * 40 + ["Shirt"] * 40 + ["Blue Cup"] * 40)
    counts = counts_of(titles)
    assert counts.end_share(["title"])["juice"] == 1.0 and counts.end_share(["title"])["blue"] == 0.0
    _, dropped, _ = select_candidates(counts, min_support=3, max_df=1.0, min_npmi=0.0)
    assert "apple juice" in set(dropped["term"]) and "blue shirt" in set(dropped["term"])  # both below chance
    kept, _, _ = select_candidates(counts, min_support=3, max_df=1.0, min_npmi=0.0, compound_support=10,
                                   text_fields=["title"])
    assert "apple juice" in set(kept["term"])  # 15 listings, head "juice" ends phrases, 27% of "apple"
    assert "blue shirt" not in set(kept["term"])  # 12 of the 92 "blue" listings: a colour, not a product
