"""Seller boilerplate: sentences that many listings repeat, found from the data before terms are counted.

Shipping notes, care instructions, shop slogans and brand sentences ("Ships within 1-3 business
days.", "Follow our shop for new arrivals.") sit in 5-20% of the descriptions: too few for a
maximum document frequency to catch, enough to become labels. They are found per text field from
the field's values alone (no word lists), and then only stop producing terms: nothing of a
listing is deleted.

Sentences. A field value is split into sentences at block-level HTML (``<br>``, ``<p>``, ``<li>``,
...), at sentence punctuation (``.``, ``!``, ``?`` and runs of them, before a space or the end),
at line breaks and at bullet and emoji characters (``•``, ``✓``, ``★``, ``✨``...); *not* at
``" | "``, ``" - "`` or ``","``, which separate the parts of one title. A sentence's words are the
analyzer's words of the normalized text (:func:`weaklabel.labeling.text.normalize`).

Counting. Sentences are counted in *distinct* field values: a text repeated verbatim (one product
listed 50 times under the same title) counts once, as a popular product is no boilerplate. A
value of a single sentence (a title, a one-line description) is the listing's own text, never
something added to it, so it counts for nothing. The threshold is
``max(min_listings, min_share x distinct values)``.

- A *sentence* of at least ``min_words`` words is boilerplate when it occurs in at least the
  threshold of distinct values.
- A *template* is a sentence with a slot, a run of one to three words (``MAX_SLOT_WORDS``: "mug",
  "navy blue", "full grain leather") written ``*``, and at least ``max(2, min_words - 1)`` fixed
  words ("available in *" counts, "colour *" does not). It is boilerplate when its instances
  reach the threshold and its slot takes at least ``min_fillers`` different words at each edge:
  "* makes a great gift", whose fillers all begin with "this", gives way to "this * makes a
  great gift".
- A template whose fixed words vary as much as a slot ("this * comes in black", "this * comes
  in white", ...) gives way to the template with those words as a second slot ("this * comes in
  *") or as part of a wider slot, when that one is frequent and long enough; otherwise it is
  dropped ("colour * white" would need "colour *", which is too short). A colour or material
  word is never stripped for being common.
- The fixed words of a sentence that matches a template are boilerplate and its slot words stay
  content: of "This mug makes a great gift." only "mug" still produces terms. Where several
  templates match, every word in any of their slots is kept.
- A frequent sentence that matches a template with varying slots, even one too short to be
  boilerplate, is a popular filler and no boilerplate as a whole ("this mug makes a great gift"
  in a shop of mugs, "colour: jet black"). Only sentences that match no such template are
  dropped whole.
- With ``groups`` (one key per listing, such as a seller column) the same rules also run within
  each group, with the threshold taken over the group's distinct values, so a brand sentence that
  one seller repeats is found even when that seller has 1% of the catalogue. A pattern found in
  any group is boilerplate in every listing: one rule set per field keeps assignment a lookup.

Applying. :meth:`FieldBoilerplate.strip` turns a value into the text that terms are counted on:
every boilerplate word becomes a boundary (kept pieces are joined by ``" . "``, which no n-gram of
the analyzer spans) and a value without boilerplate comes back unchanged. The patterns are saved
as one table (:meth:`Boilerplate.to_frame`) that is also the report: field, pattern, kind
(sentence or template), listings (distinct values it occurs in; for a template, its instances in
distinct values), fillers (distinct slot contents), group (where it was found, empty for the whole
field) and an example sentence. :meth:`Boilerplate.strip_frame` also counts, per field, the
listings that lost boilerplate and the words removed.

Detection holds every distinct value's sentences in memory. ``VocabularyBuilder.fit`` searches
the listings it is fitted on; ``fit_counts``, which takes term counts made elsewhere, finds none.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .text import WORD_RE, normalize

MAX_SLOT_WORDS = 3
SLOT = "*"
SUMMARY_COLUMNS = ("field", "pattern", "kind", "listings", "fillers", "group", "example")

_SENTENCE_BREAK_RE = re.compile(
    r"[.!?\u3002\uff01\uff1f]+(?=\s|$)"  # not the dot of "1.5"
    r"|[\n\r\u2022\u2023\u2043\u2190-\u21ff\u25a0-\u25ff\u2600-\u27bf\u2b50\u2b55\U0001f300-\U0001faff]"
)
# "Colour: navy blue": one or two words at the start of a sentence, then a colon (not a time, "10:30")
_KEY_RE = re.compile(r"\s*([^\W\d_][\w'’-]*(?:\s+[^\W\d_][\w'’-]*)?)\s*:(?!\d)\s*")
_CACHE_SIZE = 100_000

Words = tuple[str, ...]
Template = tuple[Words, ...]  # the fixed words between slots: ("this",), ("comes", "in"), () is "this * comes in *"
Slots = list[tuple[int, int]]  # word ranges [start, end) of a sentence


def split_sentences(text: str) -> list[str]:
    """The normalized sentences of one field value, in order, blank ones left out. The key of a
    "key: value" sentence ("Colour: navy blue") is a sentence of its own, ending in ":"."""
    sentences = []
    for sentence in _SENTENCE_BREAK_RE.split(normalize(text)):
        key = _KEY_RE.match(sentence)
        if key:
            sentences.append(key.group(1) + ":")
            sentence = sentence[key.end():]
        if sentence and not sentence.isspace():
            sentences.append(sentence.strip())
    return sentences


def _words_of(sentence: str) -> Words:
    """A sentence's words; a key keeps its ":" as a last word, so "colour:" is not the sentence "colour"."""
    words = tuple(WORD_RE.findall(sentence))
    return (*words, ":") if words and sentence.endswith(":") else words


def template_pattern(template: Template) -> str:
    """A template as saved: its words joined by spaces, ``*`` for each slot."""
    return f" {SLOT} ".join(" ".join(segment) for segment in template).strip()


def parse_template(pattern: str) -> Template:
    """The inverse of :func:`template_pattern`."""
    return tuple(tuple(segment.split()) for segment in pattern.split(SLOT))


class _Matcher:
    """Finds the templates a sentence matches: a dict lookup per prefix, then per suffix."""

    def __init__(self, templates: Iterable[Template]):
        index: dict[Words, dict[Words, list[Template]]] = defaultdict(lambda: defaultdict(list))
        span: dict[Words, int] = defaultdict(int)  # the most words between a prefix and a suffix
        for template in templates:
            index[template[0]][template[-1]].append(template)
            middle = sum(len(segment) + MAX_SLOT_WORDS for segment in template[1:-1])
            span[template[0]] = max(span[template[0]], MAX_SLOT_WORDS + middle)
        self.index = {prefix: (dict(by_suffix), span[prefix]) for prefix, by_suffix in index.items()}

    def matches(self, words: Words) -> Iterator[tuple[Template, Slots]]:
        n = len(words)
        for i in range(n):
            by_suffix, span = self.index.get(words[:i], (None, 0))
            if by_suffix is None:
                continue
            for j in range(i + 1, min(n, i + span) + 1):
                for template in by_suffix.get(words[j:], ()):
                    slots = _slots_between(words, i, j, template[1:-1])
                    if slots:
                        yield template, slots

    def kept(self, words: Words) -> Slots:
        """The union of the slots of every matching template, as sorted, merged ranges."""
        merged: Slots = []
        for start, end in sorted(s for _, slots in self.matches(words) for s in slots):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged


def _slots_between(words: Words, i: int, j: int, middle: tuple[Words, ...]) -> Slots | None:
    """The slots when ``words[i:j]`` is slot, middle segment, slot (or one slot without one)."""
    if not middle:
        return [(i, j)] if j - i <= MAX_SLOT_WORDS else None
    (segment,) = middle  # two slots at most
    size = len(segment)
    for k in range(i + 1, min(i + MAX_SLOT_WORDS, j - size - 1) + 1):
        if words[k : k + size] == segment and j - k - size <= MAX_SLOT_WORDS:
            return [(i, k), (k + size, j)]
    return None


@dataclass(eq=False)
class FieldBoilerplate:
    """The boilerplate of one text field: whole sentences and templates, as word tuples."""

    sentences: frozenset[Words] = frozenset()
    templates: frozenset[Template] = frozenset()
    summary: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(SUMMARY_COLUMNS[1:])))

    def __post_init__(self) -> None:
        self._matcher = _Matcher(self.templates)
        # normalized sentence -> its kept pieces and words removed, or None when it has no boilerplate
        self._cache: dict[str, tuple[list[str], int] | None] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": {}}  # a worker it is sent to builds its own cache

    def __bool__(self) -> bool:
        return bool(self.sentences or self.templates)

    def strip(self, text: str) -> str:
        """``text`` with its boilerplate words replaced by boundaries; unchanged if it has none."""
        return self.strip_counted(text)[0]

    def strip_counted(self, text: str) -> tuple[str, int]:
        """:meth:`strip`, and the number of boilerplate words it removed."""
        if not text or not (self.sentences or self.templates):
            return text, 0
        pieces: list[str] = []
        removed = 0
        for sentence in split_sentences(text):
            found = self._cache.get(sentence, False)
            if found is False:
                found = self._strip_sentence(sentence)
            if found is None:
                pieces.append(sentence)
            else:
                pieces += found[0]
                removed += found[1]
        return (" . ".join(pieces), removed) if removed else (text, 0)

    def _strip_sentence(self, sentence: str) -> tuple[list[str], int] | None:
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        if sentence.endswith(":"):  # a key: wholly boilerplate or not at all
            words = _words_of(sentence)
            found = ([], len(words) - 1) if words in self.sentences else None
            self._cache[sentence] = found
            return found
        spans = [m.span() for m in WORD_RE.finditer(sentence)]
        words = tuple(sentence[a:b] for a, b in spans)
        kept = self._matcher.kept(words)
        if kept or words in self.sentences:
            pieces = [sentence[spans[i][0] : spans[j - 1][1]] for i, j in kept]
            found = pieces, len(words) - sum(j - i for i, j in kept)
        else:
            found = None
        self._cache[sentence] = found
        return found


@dataclass(frozen=True)
class _Thresholds:
    min_words: int
    min_listings: int
    min_share: float
    min_fillers: int

    def __post_init__(self) -> None:
        if self.min_words < 2 or self.min_listings < 1 or self.min_fillers < 2:
            raise ValueError(f"need min_words >= 2, min_listings >= 1 and min_fillers >= 2, got {self}")
        if not 0.0 <= self.min_share <= 1.0:
            raise ValueError(f"min_share must be within [0, 1], got {self.min_share}")

    def of(self, n_distinct: int) -> int:
        return max(self.min_listings, math.ceil(self.min_share * n_distinct))


def find_boilerplate(
    values: Iterable[str],
    *,
    groups: Iterable[Hashable] | None = None,
    min_words: int = 3,
    min_listings: int = 20,
    min_share: float = 0.01,
    min_fillers: int = 3,
) -> FieldBoilerplate:
    """The boilerplate sentences and templates of one text field's values (rules in the module docstring).

    ``groups``, one key per value (a seller or shop column), adds the same search within each
    group. Values that are not strings, and empty ones, are skipped.
    """
    thresholds = _Thresholds(min_words, min_listings, min_share, min_fillers)
    values = list(values)
    keys = [None] * len(values) if groups is None else list(groups)
    if len(keys) != len(values):
        raise ValueError(f"groups has {len(keys)} keys for {len(values)} values")
    distinct_values: set[str] = set()
    by_group: dict[Hashable, set[str]] = defaultdict(set)
    for value, key in zip(values, keys):
        if isinstance(value, str) and value:
            distinct_values.add(value)
            if not pd.isna(key):  # a listing with no seller belongs to no group
                by_group[key].add(value)
    scopes: list[tuple[str, set[str]]] = [("", distinct_values)]  # "": the whole field
    if groups is not None:
        scopes += [(str(k), distinct) for k, distinct in by_group.items() if len(distinct) >= min_listings]
    parsed = _SentenceCache(min_words)
    found: dict[tuple[str, str], dict] = {}
    for key, distinct in scopes:
        for row in _detect(distinct, parsed, thresholds):
            row["group"] = key
            previous = found.get((row["pattern"], row["kind"]))
            if previous is None or row["listings"] > previous["listings"]:
                found[(row["pattern"], row["kind"])] = row
    return _field_boilerplate(list(found.values()))


class _SentenceCache:
    """Each distinct value's distinct sentences of ``min_words`` words or more, parsed once for all scopes."""

    def __init__(self, min_words: int):
        self.min_words = min_words
        self.sentences: dict[str, tuple[Words, ...]] = {}
        self.examples: dict[Words, str] = {}

    def __call__(self, value: str) -> tuple[Words, ...]:
        sentences = self.sentences.get(value)
        if sentences is None:
            found = [(_words_of(s), s) for s in split_sentences(value)]
            found = [(words, s) for words, s in found if words]
            # a value of one sentence, its key aside ("Nike: Air Max"), is the listing's own text
            several = sum(words[-1] != ":" for words, _ in found) > 1
            long = ([(words, s) for words, s in found if len(words) >= self.min_words or words[-1] == ":"]
                    if several else [])
            for words, s in long:
                self.examples.setdefault(words, s)
            sentences = self.sentences[value] = tuple(dict.fromkeys(words for words, _ in long))
        return sentences


def _detect(distinct: set[str], parsed: _SentenceCache, thresholds: _Thresholds) -> list[dict]:
    """Summary rows of the boilerplate within one scope (all values, or one group's)."""
    threshold = thresholds.of(len(distinct))
    if len(distinct) < threshold:
        return []
    counts = Counter(words for value in distinct for words in parsed(value))
    keys = {words: counts.pop(words) for words in list(counts) if words[-1] == ":"}  # no part of a template
    accepted, varying = _templates(counts, threshold, thresholds)
    rows = [
        _row(template_pattern(t), "template", stats.count, stats.fillers, parsed.examples[stats.example])
        for t, stats in accepted.items()
    ]
    # a frequent sentence with a varying part is a popular filler ("colour: jet black"), not boilerplate
    frames = _Matcher(varying)
    rows += [
        _row(" ".join(words), "sentence", n, 0, parsed.examples[words])
        for words, n in counts.items()
        if n >= threshold and not any(frames.matches(words))
    ]
    rows += [_row(" ".join(words), "sentence", n, 0, parsed.examples[words])
             for words, n in keys.items() if n >= threshold]
    return rows


@dataclass
class _TemplateStats:
    example: Words
    count: int = 0
    fillers: int = 0
    firsts: list[set[str]] = field(default_factory=lambda: [set(), set()])  # the slots' first words
    lasts: list[set[str]] = field(default_factory=lambda: [set(), set()])

    def diverse(self, min_fillers: int) -> bool:
        return all(len(words) >= min_fillers for words in (*self.firsts, *self.lasts) if words)


def _templates(
    counts: Counter, threshold: int, thresholds: _Thresholds
) -> tuple[dict[Template, _TemplateStats], set[Template]]:
    """The boilerplate templates of one scope with their statistics, and every template whose slots vary."""
    frequent = _frequent_one_slot(counts, threshold, thresholds.min_words)
    wider = {t: _widened(t) for t in frequent}
    second = {t: _second_slots(t) for t in frequent}
    stats = _template_stats(counts, frequent.union(*wider.values(), *second.values()))
    widened = set().union(*wider.values())

    def long_enough(template: Template) -> bool:
        return sum(map(len, template)) >= max(thresholds.min_words - 1, 2)

    # a too-short wider slot still shows that a multi-word filler was cut ("colour * white" in "colour *")
    varying = {
        t
        for t, s in stats.items()
        if s.count >= threshold and s.diverse(thresholds.min_fillers) and (long_enough(t) or t in widened)
    }
    superseded = {t for t in frequent if varying & (wider[t] | second[t])}
    accepted = {t for t in varying - superseded if long_enough(t)}
    return {t: stats[t] for t in accepted - _covered(accepted)}, varying


def _covered(templates: set[Template]) -> set[Template]:
    """Templates that another one always matches with slots as wide ("this * comes in jet *" in "this * comes in *")."""
    matcher = _Matcher(templates)
    covered = set()
    for template in templates:
        words: Words = ()
        slots: Slots = []
        for segment in template[:-1]:
            words += (*segment, "\x00")  # a word no sentence has, standing for the slot
            slots.append((len(words) - 1, len(words)))
        words += template[-1]
        for other, wider in matcher.matches(words):
            if other != template and all(any(c <= a and b <= d for c, d in wider) for a, b in slots):
                covered.add(template)
    return covered


def _frequent_one_slot(counts: Counter, threshold: int, min_words: int) -> set[Template]:
    """One-slot templates whose instances reach ``threshold``, counted without a matcher (the fast path)."""
    instances: Counter = Counter()
    for words, n in counts.items():
        size = len(words)
        for slot in range(1, min(MAX_SLOT_WORDS, size - max(min_words - 1, 2)) + 1):
            for i in range(size - slot + 1):
                instances[(words[:i], words[i + slot :])] += n
    return {t for t, n in instances.items() if n >= threshold}


def _widened(template: Template) -> set[Template]:
    """The one-slot template with its slot widened by the fixed word before or after it."""
    prefix, suffix = template
    found = {(prefix[:-1], suffix)} if prefix else set()
    found |= {(prefix, suffix[1:])} if suffix else set()
    return {t for t in found if any(t)}


def _second_slots(template: Template) -> set[Template]:
    """The one-slot template with a second slot in place of a run of fixed words not next to the first."""
    prefix, suffix = template
    runs = range(1, MAX_SLOT_WORDS + 1)
    found = {(prefix[:k], prefix[k + r :], suffix) for r in runs for k in range(len(prefix) - r)}
    return found | {(prefix, suffix[:k], suffix[k + r :]) for r in runs for k in range(1, len(suffix) - r + 1)}


def _template_stats(counts: Counter, templates: set[Template]) -> dict[Template, _TemplateStats]:
    matcher = _Matcher(templates)
    stats: dict[Template, _TemplateStats] = {}
    for words, n in counts.items():
        for template, slots in matcher.matches(words):
            s = stats.get(template) or stats.setdefault(template, _TemplateStats(words))
            s.count += n
            s.fillers += 1
            for k, (start, end) in enumerate(slots):
                s.firsts[k].add(words[start])
                s.lasts[k].add(words[end - 1])
    return stats


def _row(pattern: str, kind: str, listings: int, fillers: int, example: str) -> dict:
    return {"pattern": pattern, "kind": kind, "listings": int(listings), "fillers": int(fillers), "example": example}


def _field_boilerplate(rows: list[dict]) -> FieldBoilerplate:
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS[1:]))
    is_template = (summary["kind"] == "template").to_numpy()
    matcher = _Matcher(map(parse_template, summary["pattern"][is_template]))
    # a template handles every sentence it matches, also one found frequent in another scope (group)
    needed = [t or not any(matcher.matches(tuple(p.split()))) for t, p in zip(is_template, summary["pattern"])]
    summary = summary.loc[np.asarray(needed, dtype=bool)]
    summary = summary.sort_values(["listings", "pattern"], ascending=[False, True], ignore_index=True)
    kinds = summary["kind"].to_numpy()
    return FieldBoilerplate(
        sentences=frozenset(tuple(p.split()) for p, k in zip(summary["pattern"], kinds) if k == "sentence"),
        templates=frozenset(parse_template(p) for p, k in zip(summary["pattern"], kinds) if k == "template"),
        summary=summary,
    )


@dataclass(frozen=True)
class StripCounts:
    """What one field lost to boilerplate: listings with any removed, and words removed in all."""

    listings: int = 0
    words: int = 0


@dataclass(eq=False)
class Boilerplate:
    """The boilerplate of several text fields, saved and loaded as one table."""

    fields: dict[str, FieldBoilerplate]

    @classmethod
    def find(
        cls, frame: pd.DataFrame, columns: Sequence[str], *, groups: str | None = None, **thresholds: float
    ) -> Boilerplate:
        """The boilerplate of each of ``columns`` (text fields). ``groups`` names a column (a seller, a
        shop) to search within as well; ``thresholds`` are :func:`find_boilerplate`'s."""
        keys = None if groups is None else frame[groups].tolist()
        return cls({c: find_boilerplate(frame[c].tolist(), groups=keys, **thresholds) for c in columns})

    def strip_frame(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, StripCounts]]:
        """A copy of ``frame`` with the boilerplate of each known field stripped, and what was removed."""
        if not self.fields:
            return frame, {}
        out = frame.copy()
        counts = {}
        for column, found in self.fields.items():
            if column not in frame.columns:
                continue
            results = [found.strip_counted(v) if isinstance(v, str) else (v, 0) for v in frame[column]]
            out[column] = [text for text, _ in results]
            counts[column] = StripCounts(sum(n > 0 for _, n in results), sum(n for _, n in results))
        return out, counts

    def to_frame(self) -> pd.DataFrame:
        """One row per pattern: field, pattern, kind (sentence/template), listings, fillers, group, example."""
        parts = [f.summary.assign(field=column) for column, f in self.fields.items() if len(f.summary)]
        if not parts:
            return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
        return pd.concat(parts, ignore_index=True)[list(SUMMARY_COLUMNS)]

    @classmethod
    def from_frame(cls, table: pd.DataFrame) -> Boilerplate:
        """The inverse of :meth:`to_frame`."""
        return cls(
            {
                str(column): _field_boilerplate(rows.drop(columns="field").to_dict("records"))
                for column, rows in table.groupby("field", sort=False)
            }
        )
