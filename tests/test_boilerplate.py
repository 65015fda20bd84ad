"""Finding seller boilerplate in text fields and stripping it before terms are counted."""

from pathlib import Path

import pandas as pd
import pytest

from weaklabel.labeling.boilerplate import Boilerplate, FieldBoilerplate, find_boilerplate, split_sentences
from weaklabel.labeling.text import Analyzer, as_term, resolve_stopwords
from weaklabel.synthetic import MARKETING_SENTENCES, generate_listings

ANALYZER = Analyzer((1, 3), resolve_stopwords("english"))


@pytest.fixture(scope="module")
def listings(tmp_path_factory) -> pd.DataFrame:
    return generate_listings(600, tmp_path_factory.mktemp("boilerplate"), seed=0, images=False)


@pytest.fixture(scope="module")
def descriptions(listings) -> FieldBoilerplate:
    return find_boilerplate(listings["description"])


def terms_of(texts) -> set[str]:
    return set().union(*(ANALYZER.ngrams(t) for t in texts))


def test_sentences_split_at_punctuation_line_breaks_bullets_and_block_html_but_not_title_separators():
    assert split_sentences("Blue Mug | Gift for Her - Large, Handmade") == ["blue mug | gift for her - large, handmade"]
    assert split_sentences("<p>Soft wool.</p><ul><li>Ships fast!!</li><li>Size 1.5 m</li></ul>") == [
        "soft wool", "ships fast", "size 1.5 m"]
    assert split_sentences("Red scarf\nWarm • Cosy ✨ New arrival ✨ Why wait? Buy") == [
        "red scarf", "warm", "cosy", "new arrival", "why wait", "buy"]


def test_marketing_sentences_are_found_and_stop_producing_terms(listings, descriptions):
    patterns = set(descriptions.summary["pattern"])
    long_enough = [m for m in MARKETING_SENTENCES if len(as_term(m).split()) >= 3]
    assert {as_term(m) for m in long_enough} <= patterns
    before = terms_of(listings["description"])
    after = terms_of(descriptions.strip(d) for d in listings["description"])
    junk = {"business days", "screen settings", "vary slightly", "satisfaction guaranteed", "arrivals",
            "questions", "message", "measurements", "birthdays", "small studio"}
    assert junk <= before and not junk & after


def test_template_slot_words_stay_and_the_rest_of_the_sentence_goes(descriptions):
    assert "this * makes a great gift" in set(descriptions.summary["pattern"])
    gift = "This mug makes a great gift. Follow our shop for new arrivals."
    everyday = "A beautiful coffee mug for everyday use."
    assert descriptions.strip(gift) == "mug"
    assert descriptions.strip(everyday) == "coffee mug"


def test_type_colour_and_material_words_survive_stripping(listings, descriptions):
    before, after = terms_of(listings["description"]), terms_of(descriptions.strip(d) for d in listings["description"])
    for column in ("true_type", "true_colour", "true_material"):
        assert set(listings[column]) & before <= after


def test_no_ngram_spans_the_stripped_part(descriptions):
    text = "Navy throw! Ships within 1-3 business days. Pillow cover"
    stripped = descriptions.strip(text)
    assert stripped == "navy throw . pillow cover"
    assert "throw pillow" not in ANALYZER.ngrams(stripped) and "navy throw" in ANALYZER.ngrams(stripped)


def test_a_value_without_boilerplate_comes_back_unchanged(descriptions):
    text = "<b>Hand-thrown</b> stoneware Mug | 350ml"
    assert descriptions.strip(text) is text
    empty, shipping = FieldBoilerplate(), "Ships within 1-3 business days. Red mug."
    assert not empty and empty.strip(shipping) is shipping


def test_a_text_repeated_verbatim_is_a_popular_product_not_boilerplate(listings):
    titles = listings["title"].tolist()
    repeated = ["Ships within 1-3 business days. Blue ceramic mug."] * 100 + ["Coffee Mug. Perfect Gift for Her!"] * 100
    found = find_boilerplate(repeated + titles)
    assert not found and found.strip(repeated[0]) == repeated[0]
    shared = find_boilerplate([f"Ships within 1-3 business days. {t}" for t in titles[:100]] + titles)
    assert set(shared.summary["pattern"]) == {"ships within 1-3 business days"}


def test_titles_are_single_sentences_and_never_boilerplate(listings):
    assert not find_boilerplate(listings["title"])


def test_a_sentence_one_seller_repeats_is_found_within_that_group_and_stripped_everywhere(listings):
    brand = "Arla Ko guarantees freshness in every pack."
    titles = listings["title"].tolist()
    arla = [f"{brand} {t}" for t in titles[:30]]
    others = [f"{a}. {b}" for a, b in zip(titles, titles[1:])]
    values = arla + others
    groups = ["arla"] * len(arla) + [f"seller{i % 10}" for i in range(len(others))]
    pattern = "arla ko guarantees freshness in every pack"
    assert pattern not in set(find_boilerplate(values, min_share=0.1).summary["pattern"])  # 30 < 10% of 629
    found = find_boilerplate(values, groups=groups, min_share=0.1)
    row = found.summary.set_index("pattern").loc[pattern]
    assert row["kind"] == "sentence" and row["group"] == "arla" and row["listings"] == 30
    assert found.strip(f"{brand} Rice drink.") == "rice drink"


def test_strip_frame_counts_listings_and_words_removed():
    frame = pd.DataFrame({"description": ["Red mug. Ships within 1-3 business days.", "Blue cup.", None]})
    shipping_sentence = ("ships", "within", "1-3", "business", "days")
    found = Boilerplate({"description": FieldBoilerplate(sentences=frozenset({shipping_sentence}))})
    stripped, counts = found.strip_frame(frame)
    assert stripped["description"].tolist()[:2] == ["red mug", "Blue cup."]
    assert counts["description"].listings == 1 and counts["description"].words == 5


def test_listings_without_a_group_join_none(listings):
    values = listings["description"].tolist()
    whole = find_boilerplate(values)
    no_seller = find_boilerplate(values, groups=[None] * len(values))
    assert no_seller.summary["pattern"].tolist() == whole.summary["pattern"].tolist()
    assert set(no_seller.summary["group"]) == {""}  # found in the whole field, no group named "None" or "nan"


def test_round_trip_through_a_parquet_table(listings, tmp_path: Path):
    found = Boilerplate.find(listings, ["title", "description"])
    table = found.to_frame()
    assert set(table["field"]) == {"description"} and set(table["kind"]) == {"sentence", "template"}
    table.to_parquet(tmp_path / "boilerplate.parquet")
    loaded = Boilerplate.from_frame(pd.read_parquet(tmp_path / "boilerplate.parquet"))
    pd.testing.assert_frame_equal(loaded.to_frame(), table)
    assert [loaded.fields["description"].strip(d) for d in listings["description"]] == [
        found.fields["description"].strip(d) for d in listings["description"]]
    assert "title" not in loaded.fields


def test_the_keys_of_key_value_sentences_are_boilerplate_their_values_content():
    colours = ["navy blue", "black", "white", "red", "green"]
    values = [f"A lovely mug number {i}. Colour: {colours[i % 5]}. Dishwasher safe {i}." for i in range(100)]
    found = find_boilerplate(values)
    assert ("colour", ":") in found.sentences
    stripped = found.strip(values[0])
    assert "colour" not in stripped and "navy blue" in stripped.split(" . ")
    titles = [f"Nike: Air Max {i}" for i in range(100)]  # one sentence, its key aside: the listing's own text
    assert not find_boilerplate(titles)
    assert split_sentences("Delivery at 10:30. Size: M") == ["delivery at 10:30", "size:", "m"]
