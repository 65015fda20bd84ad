"""The text of one generated listing: title, description, tags, category path and attributes."""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
from functools import cache
from typing import TypeVar

import numpy as np

from .catalogue import (
    AUDIENCES,
    BLANK_COLOUR_ATTR_RATE,
    BLANK_MATERIAL_ATTR_RATE,
    BRAND_ZIPF,
    BRANDS,
    COLOUR_SENTENCES,
    COLOUR_ZIPF,
    COLOURS,
    CROSS_SELL_SENTENCES,
    EMPTY_DESCRIPTION_RATE,
    FILLERS,
    FIRST_ID,
    GENERIC_TAGS,
    GROUPS,
    HTML_DESCRIPTION_RATE,
    MARKETING_SENTENCES,
    MATERIAL_BY_NAME,
    MATERIAL_SENTENCES,
    MISCATEGORIZED_RATE,
    PRODUCT_TYPES,
    TITLE_ENDINGS,
    TITLE_SEPARATORS,
    TITLE_TEMPLATES,
    TITLE_WITHOUT_TYPE_RATE,
    TRUNCATED_CATEGORY_RATE,
    TYPE_SENTENCES,
    TYPE_ZIPF,
    TYPO_RATE,
    VARIANT_ZIPF,
    Colour,
    Material,
    ProductType,
)

T = TypeVar("T")


def listing_row(seed: int, i: int) -> dict[str, object]:
    """One listing's row (``image`` left empty), from its own random stream."""
    rnd = random.Random(f"weaklabel-synthetic:{seed}:{i}")
    ptype = _pick(rnd, PRODUCT_TYPES, TYPE_ZIPF)
    colour = _pick(rnd, COLOURS, COLOUR_ZIPF)
    material = MATERIAL_BY_NAME[_pick(rnd, ptype.materials, VARIANT_ZIPF)]
    brand = _pick(rnd, BRANDS, BRAND_ZIPF)
    return {
        "id": FIRST_ID + i,
        "title": _title(rnd, ptype, colour, material, brand),
        "description": _description(rnd, ptype, colour, material),
        "tags": _tags(rnd, ptype, colour, material),
        "category_path": _category_path(rnd, ptype),
        "brand": brand,
        "colour_attr": _attribute(rnd, colour.variants, BLANK_COLOUR_ATTR_RATE),
        "material_attr": _attribute(rnd, material.variants, BLANK_MATERIAL_ATTR_RATE),
        "price": _price(rnd, ptype.price),
        "image": "",
        "true_type": ptype.name,
        "true_colour": colour.name,
        "true_material": material.name,
    }


def _title(rnd: random.Random, ptype: ProductType, colour: Colour, material: Material,
           brand: str) -> str:
    group = GROUPS[ptype.group]
    slots = {
        "brand": brand,
        "audience": _maybe(rnd, 0.4 if group.audience else 0.0, lambda: _choice(rnd, AUDIENCES)),
        "colour": _maybe(rnd, 0.85, lambda: _surface(rnd, colour.variants)),
        "material": _maybe(rnd, 0.35, lambda: _surface(rnd, material.variants)),
        "type": _maybe(rnd, 1 - TITLE_WITHOUT_TYPE_RATE, lambda: _surface(rnd, ptype.variants)),
        "spec": _maybe(rnd, 0.25, lambda: _choice(rnd, group.specs)),
        "filler": " ".join(_sample(rnd, FILLERS, _choice(rnd, (0, 0, 0, 1, 1, 2)))),
    }
    template = _choice(rnd, TITLE_TEMPLATES)
    groups = (" ".join(g.format(**slots).split()) for g in template)
    title = _pick(rnd, TITLE_SEPARATORS, VARIANT_ZIPF).join(g for g in groups if g)
    title = _recase(rnd, title)
    if rnd.random() < 0.08:
        title += _choice(rnd, TITLE_ENDINGS)
    return title


def _description(rnd: random.Random, ptype: ProductType, colour: Colour,
                 material: Material) -> str:
    if rnd.random() < EMPTY_DESCRIPTION_RATE:
        return ""
    type_word = _surface(rnd, ptype.variants)
    sentences = [_choice(rnd, TYPE_SENTENCES).format(type=type_word)]
    if rnd.random() < 0.7:
        sentences.append(_choice(rnd, COLOUR_SENTENCES).format(
            type=type_word, colour=_surface(rnd, colour.variants)))
    if rnd.random() < 0.6:
        sentences.append(_choice(rnd, MATERIAL_SENTENCES).format(
            material=_surface(rnd, material.variants)))
    marketing = _sample(rnd, MARKETING_SENTENCES, 1 + int(rnd.random() * 3))
    sentences = marketing + sentences if rnd.random() < 0.3 else sentences + marketing
    other = _pick(rnd, PRODUCT_TYPES, TYPE_ZIPF)
    if rnd.random() < 0.05 and other is not ptype:
        sentences.append(_choice(rnd, CROSS_SELL_SENTENCES).format(
            type=_surface(rnd, other.variants)))
    sentences = [s[0].upper() + s[1:] for s in sentences]
    return _layout(rnd, sentences)


def _layout(rnd: random.Random, sentences: list[str]) -> str:
    """Join sentences as plain text, text with line breaks, or simple HTML."""
    r = rnd.random()
    if r >= HTML_DESCRIPTION_RATE:
        return ("\n" if r < HTML_DESCRIPTION_RATE + 0.15 else " ").join(sentences)
    html = [s.replace("&", "&amp;") for s in sentences]
    style = int(rnd.random() * 3)
    if style == 0:
        return "<p>" + " ".join(html) + "</p>"
    if style == 1:
        return "<br>".join(html)
    return "<p>" + html[0] + "</p><ul>" + "".join(f"<li>{s}</li>" for s in html[1:]) + "</ul>"


def _tags(rnd: random.Random, ptype: ProductType, colour: Colour, material: Material) -> str:
    tags = [_surface(rnd, ptype.variants) for _ in range(1 + int(rnd.random() * 2))]
    if rnd.random() < 0.6:
        tags.append(_surface(rnd, colour.variants))
    if rnd.random() < 0.3:
        tags.append(_surface(rnd, material.variants))
    tags += _sample(rnd, GROUPS[ptype.group].styles, int(rnd.random() * 3))
    tags += _sample(rnd, GENERIC_TAGS, 1 + int(rnd.random() * 2))
    tags = list(dict.fromkeys(t.lower() for t in tags))
    return ",".join(_sample(rnd, tags, 2 + int(rnd.random() * 5)))


def _category_path(rnd: random.Random, ptype: ProductType) -> str:
    r = rnd.random()
    if r < MISCATEGORIZED_RATE:  # usually a sibling in the same top-level category
        top = ptype.category.split(" > ")[0]
        same_top = [t for t in PRODUCT_TYPES if t is not ptype and t.category.startswith(top)]
        others = same_top if same_top and rnd.random() < 0.6 else PRODUCT_TYPES
        return _choice(rnd, [t for t in others if t is not ptype]).category
    if r < MISCATEGORIZED_RATE + TRUNCATED_CATEGORY_RATE:
        return ptype.category.split(" > ")[0]
    return ptype.category


def _attribute(rnd: random.Random, variants: Sequence[str], blank_rate: float) -> str:
    if rnd.random() < blank_rate:
        return ""
    value = _surface(rnd, variants)
    return _titlecase(value) if rnd.random() < 0.5 else value


def _price(rnd: random.Random, typical: float) -> float:
    price = typical * float(np.exp(rnd.gauss(0.0, 0.4)))
    r = rnd.random()
    if r < 0.6:
        return max(1, round(price)) - 0.01
    if r < 0.85:
        return float(max(1, round(price)))
    return round(price, 2)


def _surface(rnd: random.Random, variants: Sequence[str]) -> str:
    """A surface form: a Zipf-popular variant, sometimes with a typo."""
    return " ".join(_typo(rnd, w) if len(w) >= 4 and rnd.random() < TYPO_RATE else w
                    for w in _pick(rnd, variants, VARIANT_ZIPF).split(" "))


def _typo(rnd: random.Random, word: str) -> str:
    """Swap, drop or double one letter (never the first)."""
    j = 1 + int(rnd.random() * (len(word) - 2))
    op = int(rnd.random() * 3)
    if op == 0:
        return word[:j] + word[j + 1] + word[j] + word[j + 2:]
    if op == 1:
        return word[:j] + word[j + 1:]
    return word[:j] + word[j] + word[j:]


def _recase(rnd: random.Random, text: str) -> str:
    r = rnd.random()
    if r < 0.45:
        return _titlecase(text)
    if r < 0.65:
        return text.lower()
    if r < 0.72:
        return text.upper()
    return text


def _titlecase(text: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))


# Choices draw on rnd.random() only: for a given seed its sequence is stable across Python
# versions, unlike random.choice/sample/shuffle.

def _choice(rnd: random.Random, items: Sequence[T]) -> T:
    return items[int(rnd.random() * len(items))]


def _sample(rnd: random.Random, items: Sequence[T], k: int) -> list[T]:
    pool = list(items)
    return [pool.pop(int(rnd.random() * len(pool))) for _ in range(min(k, len(pool)))]


def _maybe(rnd: random.Random, p: float, make: Callable[[], str]) -> str:
    return make() if rnd.random() < p else ""


def _pick(rnd: random.Random, items: Sequence[T], zipf: tuple[float, float]) -> T:
    """Draw from ``items`` (most popular first) with Zipf-like weights."""
    cum = _zipf_cumulative(len(items), *zipf)
    return items[bisect.bisect_right(cum, rnd.random() * cum[-1])]


@cache
def _zipf_cumulative(n: int, exponent: float, shift: float) -> tuple[float, ...]:
    return tuple(np.cumsum(1.0 / (np.arange(1, n + 1) + shift) ** exponent).tolist())
