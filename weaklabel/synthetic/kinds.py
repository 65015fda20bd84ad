"""What the generator knows about its words: which are drawn in the picture and which are not.

The photo shows the true type's silhouette in the true colour with the true material's texture
(see :mod:`.photos`): the words of types, colours and materials are *visual*. Brands, audiences,
sizes, styles, filler words, generic tags and the sentences of descriptions are never drawn:
they are *non-visual*. Category paths name groups of types; their words are neither (a label
made of them is left out of a score, as is a word of both kinds).

A label is judged by its name and aliases: a phrase belongs to a kind when its words appear in
that order in a phrase of the kind (so "jet", of "jet black", is visual).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from .catalogue import (
    AUDIENCES,
    BRANDS,
    COLOUR_SENTENCES,
    COLOURS,
    CROSS_SELL_SENTENCES,
    FILLERS,
    GENERIC_TAGS,
    GROUPS,
    MARKETING_SENTENCES,
    MATERIAL_SENTENCES,
    MATERIALS,
    PRODUCT_TYPES,
    TYPE_SENTENCES,
)

VISUAL = "visual"
NON_VISUAL = "non-visual"
CATEGORY = "category"


def words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9]+", text.lower()))


@cache
def _phrases() -> dict[str, tuple[tuple[str, ...], ...]]:
    visual = [v for t in PRODUCT_TYPES for v in t.variants] + [v for c in COLOURS for v in c.variants] + [
        v for m in MATERIALS for v in m.variants]
    sentences = [*TYPE_SENTENCES, *COLOUR_SENTENCES, *MATERIAL_SENTENCES, *MARKETING_SENTENCES, *CROSS_SELL_SENTENCES]
    non_visual = [*BRANDS, *AUDIENCES, *FILLERS, *GENERIC_TAGS, *(s.replace("{", " ").replace("}", " ")
                                                                  for s in sentences),
                  *(w for g in GROUPS.values() for w in (*g.specs, *g.styles))]
    placeholders = {"type", "colour", "material"}
    return {VISUAL: tuple(words(p) for p in visual),
            NON_VISUAL: tuple(tuple(w for w in words(p) if w not in placeholders) for p in non_visual),
            CATEGORY: tuple(words(t.category) for t in PRODUCT_TYPES)}


def _inside(phrase: tuple[str, ...], source: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(source[i:i + n] == phrase for i in range(len(source) - n + 1))


def phrase_kinds(phrase: str) -> set[str]:
    """The kinds (visual, non-visual, category) whose phrases contain this phrase's words in order."""
    found = words(phrase)
    if not found:
        return set()
    return {kind for kind, sources in _phrases().items() if any(_inside(found, s) for s in sources)}


def label_kind(name: str, aliases: Iterable[str] = ()) -> str | None:
    """"visual" or "non-visual" when every phrase of the label that the generator wrote is of that
    one kind; None when none is, or they are of several kinds (a category word counts as another)."""
    kinds = set().union(*(phrase_kinds(p) for p in [name, *aliases]))
    if VISUAL in kinds:  # a type's word in a category path ("Clothing > Dresses") is still the type's
        kinds.discard(CATEGORY)
    return next(iter(kinds)) if kinds in ({VISUAL}, {NON_VISUAL}) else None


def label_values(name: str, aliases: Iterable[str] = ()) -> set[tuple[str, str]]:
    """The ("type" | "colour" | "material", canonical name) pairs whose surface forms contain a phrase
    of the label: one pair when the label names one drawn thing ("tees": ("type", "t-shirt"))."""
    tables = {"type": PRODUCT_TYPES, "colour": COLOURS, "material": MATERIALS}
    found = set()
    for phrase in (words(p) for p in [name, *aliases]):
        found |= {(attribute, item.name) for attribute, items in tables.items() for item in items
                  if phrase and any(_inside(phrase, words(v)) for v in item.variants)}
    return found
