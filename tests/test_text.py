import pandas as pd
import pytest

from weaklabel.labeling.text import (
    Analyzer,
    detect_languages,
    language_stopwords,
    normalize,
    resolve_stopwords,
    singular,
    term_key,
)


def test_normalize_strips_html_nfkc_and_lowercases():
    assert normalize("<p>Blue&nbsp;T-Shirt</p><br/>") .split() == ["blue", "t-shirt"]
    assert normalize("ＣＯＴＴＯＮ Ｔee") == "cotton tee"  # full-width forms fold under NFKC


def test_tokens_keep_inner_hyphens_and_apostrophes():
    analyzer = Analyzer((1, 1))
    assert analyzer.ngrams("Men's T-Shirt - Navy") == {"men's", "t-shirt", "navy"}


def test_ngrams_never_cross_punctuation_stopwords_or_numbers():
    analyzer = Analyzer((1, 3), resolve_stopwords("english"))
    grams = analyzer.ngrams("Navy Blue Shirt for Men | Cotton, 2024 edition")
    assert {"navy blue shirt", "navy blue", "blue shirt", "men", "cotton", "edition"} <= grams
    assert "shirt men" not in grams and "shirt for" not in grams  # stopword boundary
    assert "men cotton" not in grams  # "|" boundary
    assert not any("2024" in g for g in grams)  # numbers dropped and act as boundaries


def test_id_like_tokens_are_dropped_but_short_model_names_kept():
    analyzer = Analyzer((1, 1))
    assert analyzer.ngrams("SKU-123456 3d printer") == {"3d", "printer"}


def test_whole_values_normalize_and_skip_stopword_only_values():
    analyzer = Analyzer((1, 3), resolve_stopwords("english+marketplace"))
    assert analyzer.whole_values(["Home ", "Kitchen & Dining", "new", ""]) == {"home", "kitchen dining"}


def test_stopword_lists():
    assert "the" in resolve_stopwords("english") and "sale" not in resolve_stopwords("english")
    assert {"the", "sale", "free"} <= resolve_stopwords("english+marketplace")
    assert resolve_stopwords(None) == frozenset()
    assert resolve_stopwords(["Gift"]) == {"gift"}
    with pytest.raises(ValueError, match="unknown stopword list"):
        resolve_stopwords("french")


@pytest.mark.parametrize(
    "variants",
    [("T-Shirts", "tshirt", "t shirt", "T-shirt"), ("dresses", "dress"), ("watches", "watch"),
     ("batteries", "battery"), ("flip-flops", "flip flop", "flipflops"),
     ("men's", "Mens", "men", "MEN’S", "man"), ("Women", "woman", "womens"),
     ("scarves", "scarf"), ("children's", "child"), ("bookshelves", "book shelf", "book shelves"),
     ("sportswomen", "sportswoman"), ("capris", "capri"), ("kurtis", "kurti"), ("women's shoes", "womens shoe")],
)
def test_term_key_folds_variants(variants):
    assert len({term_key(normalize(v)) for v in variants}) == 1


def test_term_key_keeps_distinct_words_apart():
    assert term_key("shirt") != term_key("t-shirt")
    assert term_key("kurta") != term_key("kurti")
    assert singular("glass") == "glass" and singular("bus") == "bus"
    assert term_key("omen") != term_key("oman")  # a short irregular plural only stands alone


def test_ngram_ranges_beyond_trigrams_and_without_unigrams():
    analyzer = Analyzer((2, 4))
    assert analyzer.ngram_list("a b c d | e f") == ["a b", "b c", "c d", "e f", "a b c", "b c d", "a b c d"]
    assert Analyzer((3, 3)).ngram_list("x y") == []


def test_units_letters_urls_and_placeholders_are_no_terms():
    analyzer = Analyzer((1, 2), resolve_stopwords("english"))
    grams = analyzer.ngrams("18 K Gold Ring, 25 cm, HP 15 | T Shirt null www.shop.example/x visit shop.example.com")
    assert {"gold ring", "t shirt", "shirt", "visit", "hp"} <= grams  # "hp" before a number: a brand, kept
    assert not {"k", "cm", "t", "null", "www", "com", "example", "k gold"} & grams
    assert analyzer.ngrams("Coffee mug.It is handmade") >= {"coffee mug", "mug", "handmade"}  # no domain "mug.it"
    assert ("mug bamboo" not in analyzer.ngrams("Blue mug\nbamboo lid")
            and "bamboo lid" in analyzer.ngrams("mug<br>bamboo lid"))
    assert analyzer.ngrams("3d printer 25") == {"3d", "printer", "3d printer"}  # a digit makes a model name


def test_phrase_ends_and_phrases_alone():
    analyzer = Analyzer((1, 3), resolve_stopwords("english"))
    grams, ends, alone = analyzer.ngrams_and_ends("Navy Blue Shirt for Men, Cotton | Best Seller")
    assert ends == {"shirt", "blue shirt", "seller"}  # a word before, a boundary after
    assert alone == {"navy blue shirt", "men", "cotton", "best seller"}  # the whole phrase
    assert ends < grams and alone < grams


def test_other_languages_are_detected_from_their_stopwords_and_english_words_are_kept():
    spanish = pd.Series({"zapatos": 40, "para": 60, "con": 30, "el": 50, "los": 20, "del": 20, "hombre": 20, "y": 50})
    found = detect_languages(spanish, 100)
    assert "spanish" in found and {"para", "el", "los"} <= set(found["spanish"])
    assert {"para", "con", "el"} <= language_stopwords(found) and "zapatos" not in language_stopwords(found)
    english = pd.Series({"bra": 50, "men": 60, "car": 40, "pendant": 30, "care": 20, "sale": 10, "t": 30, "shirt": 90})
    assert detect_languages(english, 100) == {}  # one stray word per language is no language
