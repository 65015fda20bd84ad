"""Candidate terms: counting them over listings and filtering the counts.

Counts are additive (``TermCounts.combine``), so partitions of a large dump can be counted
apart and merged; the vocabulary is then fitted on these term statistics alone, never on a
matrix of all listings.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..listings import ColumnRoles, Field
from ..perf import gc_paused
from .text import Analyzer

_NO_TERMS: tuple[set[str], set[str], set[str]] = (set(), set(), set())


def field_terms(frame: pd.DataFrame, field: Field, analyzer: Analyzer) -> Iterator[tuple[set[str], set[str], set[str]]]:
    """The distinct terms of one field, listing by listing, each with those of them that end a
    longer phrase and those that stand alone (free text only: a tag or category value has no
    phrase around it; see :meth:`Analyzer.ngrams_and_ends`)."""
    values = frame[field.column]
    if field.role == "text":
        return (analyzer.ngrams_and_ends(v) if v else _NO_TERMS for v in values)
    return ((analyzer.whole_values(v), set(), set()) for v in values)


@dataclass
class TermCounts:
    """Listing counts of every term: per field (with the listings where it ends a longer phrase and
    where it stands alone as one), and in any field (a listing counts once)."""

    n_listings: int
    by_field: pd.DataFrame  # term, field, support, ends, alone
    any_field: pd.Series  # term -> support

    @classmethod
    def count(cls, frame: pd.DataFrame, roles: ColumnRoles, analyzer: Analyzer) -> TermCounts:
        per_field = {f.column: Counter() for f in roles.fields}
        ends = {f.column: Counter() for f in roles.fields}
        alone = {f.column: Counter() for f in roles.fields}
        any_field: Counter = Counter()
        streams = [field_terms(frame, f, analyzer) for f in roles.fields]
        with gc_paused():
            for listing_terms in zip(*streams):
                union: set[str] = set()
                for field, (terms, phrase_ends, phrases) in zip(roles.fields, listing_terms):
                    per_field[field.column].update(terms)
                    ends[field.column].update(phrase_ends)
                    alone[field.column].update(phrases)
                    union |= terms
                any_field.update(union)
        by_field = pd.concat(
            [_counter_frame(c, ends[column], alone[column], column) for column, c in per_field.items()],
            ignore_index=True,
        )
        return cls(len(frame), by_field, pd.Series(any_field, dtype="int64").rename("support"))

    def text_support(self, text_fields: Sequence[str]) -> pd.Series:
        """Per term, the listings holding it in the free-text field where it is commonest."""
        in_text = self.by_field[self.by_field["field"].isin(list(text_fields))]
        return in_text.groupby("term", sort=False)["support"].max()

    def end_share(self, text_fields: Sequence[str]) -> pd.Series:
        """Per term seen in free text, the share of the longer phrases it is in that it ends."""
        in_text = self.by_field[self.by_field["field"].isin(list(text_fields))]
        summed = in_text.assign(phrases=phrases(in_text)).groupby("term", sort=False)[["ends", "phrases"]].sum()
        return summed["ends"] / summed["phrases"].clip(lower=1)

    @classmethod
    def combine(cls, parts: Sequence[TermCounts]) -> TermCounts:
        """Sum the counts of several partitions."""
        by_field = (
            pd.concat([p.by_field for p in parts])
            .groupby(["term", "field"], sort=False)[["support", "ends", "alone"]]
            .sum()
        )
        any_field = pd.concat([p.any_field for p in parts]).groupby(level=0, sort=False).sum()
        return cls(sum(p.n_listings for p in parts), by_field.reset_index(), any_field.rename("support"))


def phrases(by_field: pd.DataFrame) -> pd.Series:
    """Per row of term counts, the listings where the term is part of a longer phrase (a listing may
    hold it alone in one place and ending a phrase in another: it then counts)."""
    return np.maximum(by_field["support"] - by_field["alone"], by_field["ends"])


def _counter_frame(counter: Counter, ends: Counter, alone: Counter, field: str) -> pd.DataFrame:
    terms = list(counter.keys())
    return pd.DataFrame({
        "term": terms, "field": field, "support": np.fromiter(counter.values(), "int64", len(counter)),
        "ends": np.fromiter((ends.get(t, 0) for t in terms), "int64", len(terms)),
        "alone": np.fromiter((alone.get(t, 0) for t in terms), "int64", len(terms)),
    })


def _product_compounds(frame: pd.DataFrame, support: pd.Series, end_share: pd.Series,
                       compound_support: int) -> np.ndarray:
    """Multi-word terms of at least ``compound_support`` listings whose last word is a candidate
    that ends at least half of its phrases, and that hold a quarter of their first word's listings."""
    unigram = frame["reason"].isna() & ~frame["term"].str.contains(" ", regex=False)
    heads = set(frame.loc[unigram & (frame["term"].map(end_share).fillna(0) >= 0.5), "term"])
    return np.fromiter((" " in t and n >= compound_support and t.rsplit(" ", 1)[1] in heads
                        and n >= 0.25 * support.get(t.split(" ", 1)[0], n)
                        for t, n in zip(frame["term"], frame["support"])), bool, len(frame))


def npmi(terms: pd.Index, support: pd.Series, n_listings: int) -> np.ndarray:
    """Normalized pointwise mutual information of each n-gram against its words taken apart.

    1 means the words only ever occur together (a phrase like "track pants"), 0 means they
    co-occur by chance ("men blue"), below 0 that they avoid each other. Unigrams get 1.
    """
    scores = np.ones(len(terms))
    for i, term in enumerate(terms):
        words = term.split(" ")
        if len(words) == 1:
            continue
        p_joint = support.iloc[i] / n_listings
        log_indep = sum(math.log(support.get(w, 1) / n_listings) for w in words)
        if p_joint >= 1.0:
            scores[i] = 1.0
        else:
            scores[i] = (math.log(p_joint) - log_indep) / -math.log(p_joint)
    return scores


def select_candidates(
    counts: TermCounts,
    *,
    min_support: int,
    max_df: float,
    min_npmi: float,
    blocklist: Iterable[str] = (),
    allowlist: Iterable[str] = (),
    stopwords: frozenset[str] = frozenset(),
    compound_support: int | None = None,
    text_fields: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Filter counted terms into candidates.

    A compound that the NPMI rule would drop survives when it is a product name (phrases counted in
    ``text_fields``): it occurs in at
    least ``compound_support`` listings, its last word (the head of an English noun phrase) is a
    candidate that ends most of its phrases, as products do, and it holds at least a quarter of
    its first word's listings ("apple juice", "sour milk" in a grocery catalogue, where each word
    is too common for the pair to stand out; not "blue t-shirt": most blue things are not t-shirts).

    ``stopwords`` are words found to be stopwords after counting (another language's): a term
    holding one is dropped, as the analyzer would have cut it there.

    Returns ``(candidates, dropped, reasons)``: candidates (term, support) sorted by support
    then term; dropped terms with a ``reason`` (``max_df``, ``npmi``, ``stopword``, ``blocklist``) that are
    listed individually; and a count per reason including ``min_support``, whose terms are only
    counted (there can be millions of them).
    """
    support = counts.any_field
    allow = set(allowlist)
    block = set(blocklist)
    frequent = support[(support >= min_support) | support.index.isin(allow)]
    reasons = {"min_support": int(len(support) - len(frequent))}

    frame = frequent.rename_axis("term").reset_index()
    frame["reason"] = None
    frame.loc[frame["support"] > max_df * counts.n_listings, "reason"] = "max_df"
    scores = npmi(pd.Index(frame["term"]), frame["support"].set_axis(frame["term"]), counts.n_listings)
    below = frame["reason"].isna() & (scores < min_npmi)
    if compound_support is not None:
        below &= ~_product_compounds(frame, support, counts.end_share(text_fields), compound_support)
    frame.loc[below, "reason"] = "npmi"
    if stopwords:
        holds_stopword = [not stopwords.isdisjoint(term.split(" ")) for term in frame["term"]]
        frame.loc[frame["reason"].isna() & np.array(holds_stopword, bool), "reason"] = "stopword"
    frame.loc[frame["term"].isin(block), "reason"] = "blocklist"
    frame.loc[frame["term"].isin(allow) & ~frame["term"].isin(block), "reason"] = None

    dropped = frame[frame["reason"].notna()].reset_index(drop=True)
    for reason, n in dropped["reason"].value_counts().items():
        reasons[str(reason)] = int(n)
    candidates = frame[frame["reason"].isna()][["term", "support"]]
    candidates = candidates.sort_values(["support", "term"], ascending=[False, True], ignore_index=True)
    return candidates, dropped, reasons
