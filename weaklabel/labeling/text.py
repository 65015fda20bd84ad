"""Text normalization, tokenization and term keys shared by vocabulary fitting and assignment.

One analyzer serves both stages, so a term found while building the vocabulary is found the
same way when labels are assigned.

- Normalization: HTML tags stripped and entities unescaped, Unicode NFKC, lowercase; web
  addresses (``https://...``, ``www...``, ``shop.example.com``, e-mail addresses) become boundaries.
- Tokens are runs of letters/digits; a hyphen or apostrophe *inside* a word keeps it whole
  ("t-shirt", "men's"). Anything else (spaces, "|", ",", " - ") separates tokens; a line break
  (or a block-level HTML tag: <br>, <p>, <li>...) and any mark but a space is a boundary.
- N-grams never cross a boundary: punctuation other than inner hyphens/apostrophes, a
  stopword, a placeholder ("null", "nan", "undefined"), or a dropped (numeric or ID-like) token.
  "shirt for men" yields "shirt" and "men", never "shirt men". A word of one or two letters
  after a dropped number is its unit ("25 cm", "18 K Gold"), a single letter before one a size
  letter; both are dropped too.
- A single Latin letter is no term on its own, but stays a word of n-grams ("t shirt").
- A term *ends a phrase* where a word comes before it and a boundary or the end of the text after
  it ("shirt" in "Navy Blue Shirt for Men"), and *stands alone* where it is the whole phrase ("Best
  Seller" in "Blue Mug | Best Seller"). Titles end their noun phrase with the product ("Blue
  Jeans"), so the share of a label's phrases that it ends tells a product from a modifier; a phrase
  of its own says nothing either way. See :func:`weaklabel.labeling.vocabulary.informativeness`.
- A term's *key* folds the surface variants of one word together: hyphens, spaces and
  apostrophes removed and each word singularized, so "T-Shirts", "tshirt" and "t shirt" share
  the key "tshirt", and "women's", "womens" and "woman" share "woman".
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence

import pandas as pd
import stop_words
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# scikit-learn's English list holds content words that name products or their parts
# ("top", "back" as in "back pack", "bottom", "fill"): they are not stopwords in a catalogue.
PRODUCT_WORDS = frozenset(
    """top bottom back front side full fill fire thick thin system bill mill interest detail
    name part show call move found describe amount cry con de""".split()
)
ENGLISH = frozenset(ENGLISH_STOP_WORDS) - PRODUCT_WORDS

# Words that marketplace sellers add to almost any listing: they describe the offer, not the item.
# Words that name products ("top", "set", "pack") are deliberately absent.
MARKETPLACE_FILLER = frozenset(
    """new brand-new sale hot best quality premium free shipping delivery gift gifts
    offer offers deal deals discount cheap price buy now original genuine authentic latest
    trendy stylish item items product products pcs lot available great good perfect""".split()
)

# Values that stand for "no value" in exported dumps.
PLACEHOLDERS = frozenset({"null", "nan", "none", "undefined"})

_TAG_RE = re.compile(r"<[^>]*>")
# Tags that break a line: they end a phrase, as a line break does.
_BLOCK_TAG_RE = re.compile(
    r"<\s*/?\s*(?:br|p|div|li|ul|ol|h[1-6]|tr|td|th|table|hr|dd|dt|blockquote|section)\b[^>]*>", re.IGNORECASE
)
_WEB_RE = re.compile(
    r"(?:[a-z][a-z0-9+.-]*://|www\.)\S+"  # URLs
    r"|\S+@[\w-]+(?:\.[\w-]+)+"  # e-mail addresses
    # bare domains: generic endings, or a country code after a second level ("shop.co.uk"); a bare
    # country code would eat words after a missing space ("mug.It is")
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:(?:com|net|org|info|biz|shop|store|online|site)(?:\.[a-z]{2})?|co\.[a-z]{2})\b(?:/\S*)?"
)
# every web address _WEB_RE finds holds one of these: a search for them is much cheaper than its scan
_DOMAIN_END_RE = re.compile(r"\.(?:com|net|org|info|biz|shop|store|online|site|co\.)")
_NUMBER = "\x00"  # a dropped numeric token, before its neighbouring units are dropped too
# One scan yields tokens (group 1) and, as empty strings, boundaries: any other non-space mark.
_SCAN_RE = re.compile(r"([^\W_]+(?:[-'’][^\W_]+)*)|[^\w\s]|_|[\n\r]")
# A word: letters and digits, with inner hyphens or apostrophes ("t-shirt", "men's").
WORD_RE = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
_INNER_JOINERS_RE = re.compile(r"[-'’]+")


def resolve_stopwords(stopwords: str | Iterable[str] | None) -> frozenset[str]:
    """Turn a stopword setting into a set.

    ``"english"`` is scikit-learn's English list less the product words in it (``PRODUCT_WORDS``),
    ``"marketplace"`` the filler words sellers add ("new", "sale", "free shipping"...), joined with
    "+" for both; ``"detected"`` adds nothing here: it asks the vocabulary fit for the stopwords of
    the other languages the listings are written in (:func:`detect_languages`). An iterable is taken
    as the words themselves; ``None`` means none.
    """
    if stopwords is None:
        return frozenset()
    if isinstance(stopwords, str):
        named = {"english": ENGLISH, "marketplace": MARKETPLACE_FILLER, "detected": frozenset()}
        words: set[str] = set()
        for name in stopwords.split("+"):
            if name not in named:
                raise ValueError(
                    f"unknown stopword list {name!r}: use 'english', 'marketplace', 'detected' joined by '+' "
                    "(e.g. 'english+marketplace+detected'), 'none', or a file or list of words"
                )
            words |= named[name]
        return frozenset(words)
    return frozenset(normalize(w) for w in stopwords)


def wants_detected_languages(stopwords: str | Iterable[str] | None) -> bool:
    return isinstance(stopwords, str) and "detected" in stopwords.split("+")


def detect_languages(support: pd.Series, n_listings: int, *, min_words: int = 4,
                     min_share: float = 0.01) -> dict[str, list[str]]:
    """The languages other than English that listings are written in, from unigram listing counts.

    A language counts when at least ``min_words`` of its stopwords of two or more letters that are
    not English stopwords (the `stop-words` package's lists less scikit-learn's English list) each
    occur in at least ``min_share`` of the listings: Spanish titles repeat "para", "el", "los",
    "del"; an English catalogue holds a stray "bra" and "men" (Swedish "good", "but") or "car"
    (French "because"), never four such words of one language that often (measured on the fashion,
    flipkart and generated catalogues: two at most). Returns each detected language with the words
    that showed it.
    """
    frequent = {w for w in support.index[support >= max(min_share * n_listings, 1)] if len(w) > 1}
    found = {}
    for language in stop_words.AVAILABLE_LANGUAGES:
        if language != "english":
            seen = sorted((_stopword_list(language) - ENGLISH_STOP_WORDS) & frequent)
            if len(seen) >= min_words:
                found[language] = seen
    return found


def language_stopwords(languages: Iterable[str]) -> frozenset[str]:
    """The stopwords of the given languages (names as in the `stop-words` package), normalized."""
    return frozenset(w for language in languages for w in _stopword_list(language))


@functools.cache
def _stopword_list(language: str) -> frozenset[str]:
    return frozenset(" ".join(_words(w)) for w in stop_words.get_stop_words(language) if _words(w))


def normalize(text: str) -> str:
    """Strip HTML (a block-level tag becomes a line break), apply NFKC and lowercase one string."""
    if "<" in text or "&" in text:
        text = html.unescape(_TAG_RE.sub(" ", _BLOCK_TAG_RE.sub("\n", text)))
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = text.lower()
    if "@" in text or "://" in text or "www." in text or _DOMAIN_END_RE.search(text):
        text = _WEB_RE.sub(" . ", text)
    return text


def as_term(text: str) -> str:
    """A term as the analyzer writes it, for terms a user names: normalized words joined by one space
    ("Home & Kitchen" -> "home kitchen")."""
    return " ".join(_words(text))


def _words(text: str) -> list[str]:
    return WORD_RE.findall(normalize(text))


def _drop_units(tokens: list[str]) -> list[str]:
    """Dropped numbers become boundaries, and so do the units after them (words of one or two letters:
    "25 cm", "18 k") and single letters before them ("size m 10"); a two-letter word before a number
    is often a brand or product ("hp 15", "tv 32")."""
    last = len(tokens) - 1
    return ["" if t == _NUMBER or (t.isalpha() and ((len(t) <= 2 and i > 0 and tokens[i - 1] == _NUMBER) or
                                                    (len(t) == 1 and i < last and tokens[i + 1] == _NUMBER))) else t
            for i, t in enumerate(tokens)]


def is_droppable_token(token: str) -> bool:
    """Numbers, sizes, codes and IDs: tokens with digits that are not short model names like '3d'."""
    digits = sum(ch.isdigit() for ch in token)
    return digits > 0 and (digits >= 3 or digits == len(token.replace("-", "")) or len(token) > 12)


class Analyzer:
    """Turns one field value into its n-grams, with the boundaries described in the module docstring."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 3), stopwords: frozenset[str] = frozenset()):
        low, high = ngram_range
        if not 1 <= low <= high:
            raise ValueError(f"ngram_range must be (low, high) with 1 <= low <= high, got {ngram_range}")
        self.ngram_range = (low, high)
        self.stopwords = stopwords
        # token -> itself if kept, "" if it is a boundary (stopword, number): a cache, as this is the hot loop
        self._token_map: dict[str, str] = {"": ""}

    def _map_token(self, token: str) -> str:
        if is_droppable_token(token):
            kept = _NUMBER
        else:
            kept = token if token not in self.stopwords and token not in PLACEHOLDERS else ""
        self._token_map[token] = kept
        return kept

    def tokens(self, text: str) -> list[str]:
        """The tokens of a text in order, with "" standing for every boundary."""
        found = _SCAN_RE.findall(normalize(text))
        mapped = list(map(self._token_map.get, found))
        if None in mapped:
            mapped = [self._map_token(t) if m is None else m for t, m in zip(found, mapped)]
        if _NUMBER in mapped:
            mapped = _drop_units(mapped)
        return mapped

    def ngram_list(self, text: str) -> list[str]:
        """The n-grams of one text, in order, repeats included; none spans a boundary."""
        return self._ngrams(self.tokens(text))

    def ngrams_and_ends(self, text: str) -> tuple[set[str], set[str], set[str]]:
        """Distinct n-grams of one text; those of them that end a longer phrase (a word before them,
        a boundary after); and those that are a whole phrase on their own (boundaries both sides)."""
        tokens = self.tokens(text)
        low, high = self.ngram_range
        ends, alone = set(), set()
        for i, token in enumerate(tokens):
            if token and (i + 1 == len(tokens) or not tokens[i + 1]):
                for n in range(low, min(high, i + 1) + 1):
                    words = tokens[i + 1 - n : i + 1]
                    if not all(words):
                        break
                    before = i - n
                    (ends if before >= 0 and tokens[before] else alone).add(" ".join(words))
        grams = set(self._ngrams(tokens))
        return grams, ends & grams, alone & grams

    def _ngrams(self, tokens: list[str]) -> list[str]:
        low, high = self.ngram_range
        grams = [t for t in tokens if len(t) > 1 or (t and not t.isascii())] if low == 1 else []
        if low <= 2 <= high:  # bigrams and trigrams spelled out: the generic form is 2x slower
            grams += [f"{a} {b}" for a, b in zip(tokens, tokens[1:]) if a and b]
        if low <= 3 <= high:
            grams += [f"{a} {b} {c}" for a, b, c in zip(tokens, tokens[1:], tokens[2:]) if a and b and c]
        for n in range(max(low, 4), high + 1):
            grams += [" ".join(words) for words in zip(*(tokens[i:] for i in range(n))) if all(words)]
        return grams

    def ngrams(self, text: str) -> set[str]:
        """Distinct n-grams of one text (a listing counts once per term)."""
        return set(self.ngram_list(text))

    def whole_values(self, values: Sequence[str]) -> set[str]:
        """Terms of a tag or category field: each value whole, normalized, stopword-only values skipped."""
        terms = set()
        for value in values:
            tokens = _words(value)
            if tokens and not all(t in self.stopwords or t in PLACEHOLDERS or is_droppable_token(t) for t in tokens):
                terms.add(" ".join(tokens))
        return terms


# Irregular plurals a catalogue uses. The longer ones also end joined words ("bookshelves" is
# keyed like "book shelves"); a short one ("men") only stands alone, lest "omen" become "oman".
_IRREGULAR_PLURALS = {
    "men": "man", "women": "woman", "children": "child", "feet": "foot", "teeth": "tooth",
    "mice": "mouse", "geese": "goose", "scarves": "scarf", "knives": "knife", "shelves": "shelf",
    "leaves": "leaf", "halves": "half", "wolves": "wolf", "wives": "wife", "calves": "calf",
}
_IRREGULAR_ENDING_RE = re.compile("(" + "|".join(p for p in _IRREGULAR_PLURALS if len(p) >= 5) + ")$")


def singular(word: str) -> str:
    """A light English singularizer for term keys (never shown to users)."""
    irregular = _irregular_singular(word)
    if irregular is not None:
        return irregular
    regular = _regular_singular(word)  # "mens" -> "men", then irregular
    return _irregular_singular(regular) or regular


def _irregular_singular(word: str) -> str | None:
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    ending = _IRREGULAR_ENDING_RE.search(word)
    return word[: ending.start()] + _IRREGULAR_PLURALS[ending.group()] if ending else None


def _regular_singular(word: str) -> str:
    # no "is" guard: "capris", "kurtis", "bikinis" are plurals; "tennis" keyed "tenni" merges with nothing
    if len(word) <= 3 or word.endswith(("ss", "us")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes", "sses")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def contained_terms(terms: Sequence[str], index: dict[str, int]) -> Iterator[tuple[int, int]]:
    """Pairs (i, j): the j-th term is a run of whole words inside the longer i-th ("navy" in "navy blue")."""
    for i, term in enumerate(terms):
        words = term.split(" ")
        for n in range(1, len(words)):
            for start in range(len(words) - n + 1):
                j = index.get(" ".join(words[start : start + n]))
                if j is not None:
                    yield i, j


def term_key(term: str) -> str:
    """The variant-folding key of a term: 'T-Shirts', 't shirt' and 'tshirt' all give 'tshirt';
    "men's", "mens", "men" and "man" give 'man' (joiners go before singularizing, so a possessive "'s" is
    a plural "s")."""
    return "".join(singular(_INNER_JOINERS_RE.sub("", w)) for w in term.split())
