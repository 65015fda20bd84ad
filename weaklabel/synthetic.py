"""Deterministic synthetic marketplace listings with procedurally drawn product photos.

What the data models
--------------------
A dump of a marketplace's listings table, as sellers typed it, plus one photo per listing.
Every listing has a hidden truth (a product type, a colour, a material) that the text only
hints at, with the noise a labeling algorithm has to get through:

* **Long tail.** Product types, colours and materials follow Zipf-like distributions
  (the tables below are ordered most common first): the largest type has ~22% of the
  listings, the rarest ones ~0.5%.
* **Surface variation.** Each type, colour and material has several surface forms:
  plurals ("mug"/"mugs"), spelling and spacing ("t-shirt"/"tshirt"/"t shirt"), synonyms
  ("sneakers"/"trainers", "sofa"/"couch", "grey"/"gray"). About 3% of those words carry a
  typo (a swapped, dropped or doubled letter).
* **Messy fields.** Titles follow varied templates (brand, audience, colour, material,
  type, size/capacity, filler words like "free shipping") with varied casing and
  separators. Descriptions mix product sentences (often naming the type by another synonym)
  with generic marketing, sometimes as simple HTML, sometimes empty, rarely advertising
  another product type. Tags mix type variants, colour, style and generic tags. About 5%
  of category paths point to the wrong category and 3% are cut to the top level.
  The colour and material attribute columns are often blank.
* **Photos follow the truth.** Each image shows the listing's true type as a distinct
  silhouette (scale, position, mirroring and rotation jittered), filled with the true
  colour (shade jittered) and a texture for the true material, on a light background,
  so an image encoder can learn type, colour and material from pixels.

Everything is a function of ``(n, seed, image_size)``: each listing's text and image come
from their own random streams seeded by ``(seed, listing index)``.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

__all__ = [
    "COLOURS",
    "COLUMNS",
    "MATERIALS",
    "PRODUCT_TYPES",
    "generate_listings",
    "render_image",
]

T = TypeVar("T")

COLUMNS: tuple[str, ...] = (
    "id", "title", "description", "tags", "category_path", "brand", "colour_attr",
    "material_attr", "price", "image", "true_type", "true_colour", "true_material",
)
FIRST_ID = 100_000
JPEG_QUALITY = 90


# ---------------------------------------------------------------------------------------------
# Catalogue tables. Each tuple of variants starts with the canonical name (the ground truth).
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProductType:
    name: str
    category: str
    variants: tuple[str, ...]
    materials: tuple[str, ...]  # plausible materials, most common first
    group: str  # key into GROUPS
    price: float  # typical price


@dataclass(frozen=True)
class Colour:
    name: str
    variants: tuple[str, ...]
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class Material:
    name: str
    variants: tuple[str, ...]
    texture: str  # how the photo renders it, see _texture


@dataclass(frozen=True)
class Group:
    """What listings of a family of types share: audience words, specs, style tags."""

    audience: bool
    specs: tuple[str, ...]
    styles: tuple[str, ...]


P = ProductType
PRODUCT_TYPES: tuple[ProductType, ...] = (  # most common first
    P("t-shirt", "Clothing > Tops > T-Shirts",
      ("t-shirt", "t-shirts", "tshirt", "t shirt", "tee", "tees", "tee shirt"),
      ("cotton", "polyester", "linen"), "apparel", 22),
    P("mug", "Home & Living > Kitchen & Dining > Mugs",
      ("mug", "mugs", "coffee mug", "coffee cup", "cup", "tea mug"),
      ("ceramic", "glass", "metal"), "kitchen", 16),
    P("necklace", "Jewellery > Necklaces",
      ("necklace", "necklaces", "pendant", "chain necklace", "pendant necklace"),
      ("metal", "glass", "wood", "leather"), "jewellery", 35),
    P("dress", "Clothing > Dresses",
      ("dress", "dresses", "maxi dress", "sundress", "midi dress"),
      ("cotton", "polyester", "linen"), "apparel", 48),
    P("earrings", "Jewellery > Earrings",
      ("earrings", "earring", "ear rings", "drop earrings", "dangle earrings"),
      ("metal", "glass", "wood"), "jewellery", 28),
    P("hoodie", "Clothing > Tops > Hoodies & Sweatshirts",
      ("hoodie", "hoodies", "hoody", "hooded sweatshirt", "pullover hoodie"),
      ("cotton", "polyester", "wool"), "apparel", 45),
    P("tote bag", "Bags & Purses > Tote Bags",
      ("tote bag", "tote", "tote bags", "totes", "shopping bag", "canvas tote"),
      ("cotton", "linen", "leather", "polyester"), "bags", 24),
    P("sneakers", "Shoes > Sneakers",
      ("sneakers", "sneaker", "trainers", "trainer", "running shoes", "tennis shoes"),
      ("leather", "polyester", "cotton"), "footwear", 75),
    P("ring", "Jewellery > Rings",
      ("ring", "rings", "statement ring", "band ring", "stacking ring"),
      ("metal", "wood", "glass"), "jewellery", 40),
    P("cushion", "Home & Living > Home Decor > Cushions",
      ("cushion", "cushions", "throw pillow", "pillow", "cushion cover", "pillow cover"),
      ("cotton", "linen", "polyester", "wool"), "home", 30),
    P("candle", "Home & Living > Home Decor > Candles",
      ("candle", "candles", "scented candle", "pillar candle", "soy candle"),
      ("glass", "ceramic", "metal"), "home", 18),
    P("handbag", "Bags & Purses > Handbags",
      ("handbag", "handbags", "purse", "purses", "hand bag", "shoulder bag"),
      ("leather", "polyester", "cotton"), "bags", 65),
    P("sweater", "Clothing > Tops > Sweaters",
      ("sweater", "sweaters", "jumper", "jumpers", "knit sweater", "pullover"),
      ("wool", "cotton", "polyester"), "apparel", 55),
    P("jeans", "Clothing > Bottoms > Jeans",
      ("jeans", "denim jeans", "jean", "denims", "skinny jeans"),
      ("cotton", "polyester"), "apparel", 50),
    P("backpack", "Bags & Purses > Backpacks",
      ("backpack", "backpacks", "rucksack", "back pack", "knapsack"),
      ("polyester", "leather", "cotton"), "bags", 55),
    P("bracelet", "Jewellery > Bracelets",
      ("bracelet", "bracelets", "bangle", "bangles", "cuff bracelet"),
      ("metal", "leather", "wood", "glass"), "jewellery", 30),
    P("scarf", "Clothing > Accessories > Scarves",
      ("scarf", "scarves", "scarfs", "shawl", "wrap scarf"),
      ("wool", "cotton", "polyester", "linen"), "apparel", 25),
    P("vase", "Home & Living > Home Decor > Vases",
      ("vase", "vases", "flower vase", "bud vase"),
      ("ceramic", "glass", "metal"), "home", 35),
    P("beanie", "Clothing > Accessories > Hats",
      ("beanie", "beanies", "knit hat", "winter hat", "toque", "beanie hat"),
      ("wool", "cotton", "polyester"), "apparel", 20),
    P("wallet", "Bags & Purses > Wallets",
      ("wallet", "wallets", "billfold", "card holder", "card wallet"),
      ("leather", "polyester"), "bags", 35),
    P("boots", "Shoes > Boots",
      ("boots", "boot", "ankle boots", "booties", "chelsea boots"),
      ("leather", "polyester"), "footwear", 95),
    P("socks", "Clothing > Socks",
      ("socks", "sock", "ankle socks", "crew socks"),
      ("cotton", "wool", "polyester"), "apparel", 12),
    P("water bottle", "Home & Living > Kitchen & Dining > Water Bottles",
      ("water bottle", "water bottles", "bottle", "drinking bottle", "flask"),
      ("metal", "glass", "plastic"), "kitchen", 22),
    P("blanket", "Home & Living > Bedding > Blankets",
      ("blanket", "blankets", "throw blanket", "throw"),
      ("wool", "cotton", "polyester"), "home", 60),
    P("jacket", "Clothing > Outerwear > Jackets",
      ("jacket", "jackets", "bomber jacket", "blazer"),
      ("leather", "polyester", "cotton", "wool"), "apparel", 90),
    P("plate", "Home & Living > Kitchen & Dining > Plates",
      ("plate", "plates", "dinner plate", "dish", "side plate"),
      ("ceramic", "glass", "wood"), "kitchen", 25),
    P("skirt", "Clothing > Bottoms > Skirts",
      ("skirt", "skirts", "mini skirt", "a-line skirt", "aline skirt"),
      ("cotton", "polyester", "linen", "leather"), "apparel", 38),
    P("bowl", "Home & Living > Kitchen & Dining > Bowls",
      ("bowl", "bowls", "serving bowl", "salad bowl"),
      ("ceramic", "wood", "glass"), "kitchen", 22),
    P("lamp", "Home & Living > Lighting > Lamps",
      ("lamp", "lamps", "table lamp", "desk lamp", "bedside lamp"),
      ("ceramic", "metal", "glass", "wood"), "home", 70),
    P("sunglasses", "Accessories > Sunglasses",
      ("sunglasses", "sun glasses", "shades", "sunnies"),
      ("plastic", "metal"), "accessories", 30),
    P("watch", "Accessories > Watches",
      ("watch", "watches", "wristwatch", "wrist watch"),
      ("metal", "leather", "wood"), "accessories", 120),
    P("clock", "Home & Living > Home Decor > Clocks",
      ("clock", "clocks", "wall clock"),
      ("wood", "metal", "plastic", "glass"), "home", 40),
    P("slippers", "Shoes > Slippers",
      ("slippers", "slipper", "house shoes", "house slippers"),
      ("wool", "cotton", "polyester"), "footwear", 28),
    P("sandals", "Shoes > Sandals",
      ("sandals", "sandal", "flip flops", "flip-flops", "sliders"),
      ("leather", "polyester"), "footwear", 40),
    P("teapot", "Home & Living > Kitchen & Dining > Teapots",
      ("teapot", "teapots", "tea pot", "tea kettle"),
      ("ceramic", "glass", "metal"), "kitchen", 38),
    P("chair", "Home & Living > Furniture > Chairs",
      ("chair", "chairs", "armchair", "accent chair", "dining chair"),
      ("wood", "metal", "leather", "plastic"), "home", 150),
    P("sofa", "Home & Living > Furniture > Sofas",
      ("sofa", "sofas", "couch", "couches", "settee", "loveseat"),
      ("leather", "linen", "polyester", "cotton"), "home", 600),
)
del P

COLOURS: tuple[Colour, ...] = (  # most common first
    Colour("black", ("black", "jet black", "blk", "noir"), (24, 24, 27)),
    Colour("white", ("white", "snow white", "pure white"), (246, 246, 243)),
    Colour("grey", ("grey", "gray", "light grey", "heather gray"), (132, 133, 137)),
    Colour("navy", ("navy", "navy blue", "dark blue", "midnight blue"), (28, 39, 92)),
    Colour("blue", ("blue", "royal blue", "cobalt", "cobalt blue"), (38, 96, 204)),
    Colour("red", ("red", "scarlet", "crimson", "cherry red"), (198, 30, 40)),
    Colour("beige", ("beige", "tan", "camel", "sand"), (214, 190, 150)),
    Colour("green", ("green", "forest green", "emerald", "emerald green"), (36, 128, 62)),
    Colour("pink", ("pink", "blush", "rose pink", "light pink"), (240, 150, 182)),
    Colour("brown", ("brown", "chocolate brown", "dark brown", "cognac"), (108, 68, 38)),
    Colour("off-white", ("off-white", "off white", "cream", "ivory", "ecru"), (236, 228, 206)),
    Colour("silver", ("silver", "silver tone", "silvery"), (190, 192, 198)),
    Colour("gold", ("gold", "golden", "gold tone", "gold-tone"), (210, 172, 52)),
    Colour("purple", ("purple", "violet", "lilac", "lavender"), (122, 60, 162)),
    Colour("yellow", ("yellow", "mustard", "lemon yellow", "mustard yellow"), (238, 204, 40)),
    Colour("orange", ("orange", "burnt orange", "rust", "tangerine"), (238, 118, 30)),
)

MATERIALS: tuple[Material, ...] = (
    Material("cotton", ("cotton", "100% cotton", "organic cotton", "cotton blend"), "plain"),
    Material("polyester", ("polyester", "poly", "recycled polyester", "microfiber"), "sheen"),
    Material("leather", ("leather", "genuine leather", "real leather", "full grain leather"),
             "speckle"),
    Material("wool", ("wool", "merino wool", "merino", "wool blend", "woollen"), "knit"),
    Material("linen", ("linen", "pure linen", "linen blend", "flax linen"), "hatch"),
    Material("ceramic", ("ceramic", "ceramics", "stoneware", "porcelain"), "gloss"),
    Material("metal", ("metal", "stainless steel", "steel", "brass"), "brushed"),
    Material("wood", ("wood", "wooden", "solid wood", "oak"), "grain"),
    Material("glass", ("glass", "borosilicate glass", "clear glass"), "glass"),
    Material("plastic", ("plastic", "acrylic", "bpa free plastic"), "gloss"),
)

GROUPS: dict[str, Group] = {
    "apparel": Group(True, ("Size S", "Size M", "Size L", "XL", "S-XXL", "Plus Size", "One Size"),
                     ("casual", "streetwear", "vintage", "boho", "minimalist", "oversized",
                      "summer")),
    "footwear": Group(True, ("Size 8", "Size 10", "EU 39", "UK 6", "US 9"),
                      ("casual", "running", "outdoor", "comfort", "vintage")),
    "bags": Group(True, ("large", "small", "30x40cm", "mini"),
                  ("travel", "everyday", "minimalist", "boho", "work")),
    "kitchen": Group(False, ("11oz", "15 oz", "350ml", "500 ml", "set of 2", "set of 4"),
                     ("kitchen", "coffee lover", "housewarming", "rustic", "modern")),
    "home": Group(False, ("40x40cm", "18x18", "large", "set of 2", "small"),
                  ("home decor", "living room", "cozy", "rustic", "scandinavian", "modern")),
    "jewellery": Group(True, ("18 inch", "adjustable", "size 7", "set of 3"),
                       ("dainty", "boho", "bridal", "minimalist", "statement", "layering")),
    "accessories": Group(True, ("one size", "adjustable"),
                         ("classic", "vintage", "summer", "everyday")),
}

BRANDS: tuple[str, ...] = (  # most common first
    "Northwind", "Maple & Co", "Urban Loft", "Blue Harbor", "Kestrel", "Luna Studio",
    "Oakridge", "Petal & Pine", "Nordhaus", "Atlas Goods", "Wildflower", "Copper Fox",
    "Seabreeze", "Ironbark", "Little Wren", "Moss & Stone", "Velvet Lane", "Redwood Supply",
    "Halcyon", "Juniper", "Brightside", "Old Mill", "Cielo", "Fjord", "Saffron Home",
)
AUDIENCES: tuple[str, ...] = ("women's", "womens", "ladies", "men's", "mens", "unisex", "kids")
FILLERS: tuple[str, ...] = (
    "new", "gift", "free shipping", "sale", "premium", "2024", "handmade", "best seller",
    "gift idea", "limited edition", "hot",
)
GENERIC_TAGS: tuple[str, ...] = (
    "gift", "handmade", "new", "sale", "trending", "gift for her", "gift for him",
    "christmas gift", "birthday gift", "best seller",
)

# Title templates: groups of slots joined by one separator; empty groups are dropped.
TITLE_TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("{brand} {audience} {colour} {material} {type} {spec}", "{filler}"),
    ("{audience} {colour} {type}", "{brand}", "{filler}"),
    ("{colour} {material} {type} by {brand}", "{spec}", "{filler}"),
    ("{type}", "{colour}", "{material}", "{audience}", "{spec}"),
    ("{brand} {type} {colour} {audience}", "{filler}"),
    ("{filler} {material} {colour} {type}", "{spec}"),
)
TITLE_SEPARATORS: tuple[str, ...] = (" ", " | ", " - ", ", ", " / ")  # most common first
TITLE_ENDINGS: tuple[str, ...] = ("!", "!!", " ★", "...")

TYPE_SENTENCES: tuple[str, ...] = (
    "Our {type} is made to last.",
    "A beautiful {type} for everyday use.",
    "Looking for the perfect {type}? You found it!",
    "This {type} makes a great gift.",
    "{type} designed and finished by hand.",
)
COLOUR_SENTENCES: tuple[str, ...] = (
    "This {type} comes in {colour}.",
    "Colour: {colour}.",
    "Available in {colour}.",
    "The {colour} shade goes with everything.",
)
MATERIAL_SENTENCES: tuple[str, ...] = (
    "Made from {material}.",
    "Material: {material}.",
    "Crafted from high quality {material}.",
    "The {material} feels great and is easy to care for.",
)
MARKETING_SENTENCES: tuple[str, ...] = (
    "Ships within 1-3 business days.",
    "Perfect gift for birthdays & holidays.",
    "Colours may vary slightly due to screen settings.",
    "Please message us with any questions!",
    "100% satisfaction guaranteed.",
    "Follow our shop for new arrivals.",
    "Fast & free shipping on orders over $35.",
    "✨ New arrival ✨",
    "Handmade with love in our small studio.",
    "Please check the measurements before ordering.",
)
CROSS_SELL_SENTENCES: tuple[str, ...] = (
    "Check out our matching {type} too!",
    "Also available: {type} in the same style.",
)

# Noise rates.
TYPO_RATE = 0.03
MISCATEGORIZED_RATE = 0.05
TRUNCATED_CATEGORY_RATE = 0.03
TITLE_WITHOUT_TYPE_RATE = 0.04
EMPTY_DESCRIPTION_RATE = 0.08
HTML_DESCRIPTION_RATE = 0.25
BLANK_COLOUR_ATTR_RATE = 0.22
BLANK_MATERIAL_ATTR_RATE = 0.40

# Zipf-like popularity: weight of rank r (1-based) is 1 / (r + shift) ** exponent.
TYPE_ZIPF = (1.3, 1.0)
COLOUR_ZIPF = (0.9, 0.0)
VARIANT_ZIPF = (1.0, 0.0)
BRAND_ZIPF = (1.0, 1.0)

# ---------------------------------------------------------------------------------------------
# Silhouettes, in a unit box (x right, y down). A part is (kind, paint, coordinates):
#   kind   poly (x0, y0, x1, y1, ...) | rect, ellipse (x0, y0, x1, y1) | rrect (box, radius)
#          ring (box, width) | line (x0, y0, x1, y1, ..., width) | arc (box, start, end, width)
#   paint  "+" the product colour, "-" cut out, "dark"/"light" a shade of the product colour,
#          or a fixed paint from FIXED_PAINTS. "+"/"-" parts form the body and get the material
#          texture; the other parts are details drawn on top.
# ---------------------------------------------------------------------------------------------

FIXED_PAINTS: dict[str, tuple[int, int, int]] = {
    "sole": (236, 234, 228), "ink": (30, 30, 32), "flame": (255, 170, 40),
}

SHADOW_RGB = (40, 40, 40)
SHADOW_LUT = [round(a * 0.35) for a in range(256)]  # shadow opacity from the product's alpha

BODY_PAINTS = ("+", "-")
Part = tuple[str, str, tuple[float, ...]]
LONG_SLEEVES = (0.30, 0.12, 0.70, 0.12, 0.93, 0.42, 0.96, 0.86, 0.85, 0.88, 0.78, 0.50, 0.76,
                0.92, 0.24, 0.92, 0.22, 0.50, 0.15, 0.88, 0.04, 0.86, 0.07, 0.42)

SHAPES: dict[str, tuple[Part, ...]] = {
    "t-shirt": (
        ("poly", "+", (0.30, 0.10, 0.42, 0.10, 0.50, 0.17, 0.58, 0.10, 0.70, 0.10, 0.95, 0.32,
                       0.84, 0.44, 0.74, 0.36, 0.74, 0.92, 0.26, 0.92, 0.26, 0.36, 0.16, 0.44,
                       0.05, 0.32)),
        ("line", "dark", (0.42, 0.10, 0.50, 0.17, 0.58, 0.10, 0.025)),
    ),
    "hoodie": (
        ("ellipse", "+", (0.33, 0.00, 0.67, 0.30)),
        ("poly", "+", LONG_SLEEVES),
        ("ellipse", "dark", (0.40, 0.05, 0.60, 0.24)),
        ("rect", "dark", (0.36, 0.62, 0.64, 0.78)),
        ("line", "light", (0.46, 0.24, 0.45, 0.42, 0.02)),
        ("line", "light", (0.54, 0.24, 0.55, 0.42, 0.02)),
    ),
    "sweater": (
        ("poly", "+", LONG_SLEEVES),
        ("ellipse", "-", (0.40, 0.06, 0.60, 0.20)),
        ("ring", "dark", (0.39, 0.05, 0.61, 0.21, 0.03)),
        ("line", "dark", (0.24, 0.89, 0.76, 0.89, 0.04)),
        ("line", "dark", (0.05, 0.82, 0.15, 0.84, 0.04)),
        ("line", "dark", (0.85, 0.84, 0.95, 0.82, 0.04)),
    ),
    "jacket": (
        ("poly", "+", LONG_SLEEVES),
        ("poly", "-", (0.40, 0.10, 0.60, 0.10, 0.50, 0.34)),
        ("poly", "dark", (0.40, 0.12, 0.50, 0.34, 0.43, 0.42, 0.33, 0.15)),
        ("poly", "dark", (0.60, 0.12, 0.50, 0.34, 0.57, 0.42, 0.67, 0.15)),
        ("line", "dark", (0.50, 0.34, 0.50, 0.92, 0.02)),
    ),
    "dress": (
        ("poly", "+", (0.40, 0.05, 0.46, 0.05, 0.50, 0.12, 0.54, 0.05, 0.60, 0.05, 0.62, 0.34,
                       0.58, 0.42, 0.86, 0.95, 0.14, 0.95, 0.42, 0.42, 0.38, 0.34)),
        ("line", "dark", (0.41, 0.40, 0.59, 0.40, 0.03)),
    ),
    "jeans": (
        ("poly", "+", (0.26, 0.05, 0.74, 0.05, 0.80, 0.95, 0.57, 0.95, 0.50, 0.36, 0.43, 0.95,
                       0.20, 0.95)),
        ("line", "dark", (0.26, 0.11, 0.74, 0.11, 0.03)),
        ("line", "dark", (0.50, 0.11, 0.50, 0.30, 0.015)),
    ),
    "skirt": (
        ("poly", "+", (0.32, 0.14, 0.68, 0.14, 0.90, 0.86, 0.10, 0.86)),
        ("rect", "dark", (0.32, 0.14, 0.68, 0.21)),
        ("line", "dark", (0.42, 0.21, 0.34, 0.86, 0.012)),
        ("line", "dark", (0.58, 0.21, 0.66, 0.86, 0.012)),
    ),
    "scarf": (
        ("ellipse", "+", (0.24, 0.02, 0.76, 0.30)),
        ("ellipse", "-", (0.36, 0.09, 0.64, 0.22)),
        ("rect", "+", (0.26, 0.14, 0.46, 0.92)),
        ("rect", "+", (0.54, 0.16, 0.74, 0.78)),
        ("line", "dark", (0.30, 0.92, 0.30, 0.98, 0.015)),
        ("line", "dark", (0.36, 0.92, 0.36, 0.98, 0.015)),
        ("line", "dark", (0.42, 0.92, 0.42, 0.98, 0.015)),
        ("line", "dark", (0.58, 0.78, 0.58, 0.84, 0.015)),
        ("line", "dark", (0.64, 0.78, 0.64, 0.84, 0.015)),
        ("line", "dark", (0.70, 0.78, 0.70, 0.84, 0.015)),
    ),
    "beanie": (
        ("ellipse", "+", (0.14, 0.18, 0.86, 1.00)),
        ("rect", "-", (0.00, 0.66, 1.00, 1.00)),
        ("rect", "+", (0.12, 0.60, 0.88, 0.82)),
        ("ellipse", "+", (0.41, 0.04, 0.59, 0.22)),
        ("line", "dark", (0.25, 0.60, 0.25, 0.82, 0.015)),
        ("line", "dark", (0.38, 0.60, 0.38, 0.82, 0.015)),
        ("line", "dark", (0.50, 0.60, 0.50, 0.82, 0.015)),
        ("line", "dark", (0.62, 0.60, 0.62, 0.82, 0.015)),
        ("line", "dark", (0.75, 0.60, 0.75, 0.82, 0.015)),
    ),
    "socks": (
        ("poly", "+", (0.34, 0.05, 0.60, 0.05, 0.60, 0.58, 0.90, 0.72, 0.92, 0.86, 0.86, 0.93,
                       0.46, 0.93, 0.34, 0.80)),
        ("rect", "dark", (0.34, 0.05, 0.60, 0.16)),
        ("ellipse", "light", (0.80, 0.73, 0.93, 0.92)),
        ("ellipse", "light", (0.34, 0.76, 0.46, 0.92)),
    ),
    "sneakers": (
        ("poly", "+", (0.05, 0.56, 0.32, 0.46, 0.52, 0.30, 0.70, 0.28, 0.76, 0.48, 0.95, 0.60,
                       0.96, 0.78, 0.05, 0.78)),
        ("rect", "sole", (0.04, 0.76, 0.97, 0.86)),
        ("line", "dark", (0.38, 0.44, 0.46, 0.52, 0.015)),
        ("line", "dark", (0.44, 0.39, 0.52, 0.47, 0.015)),
        ("line", "dark", (0.50, 0.34, 0.58, 0.42, 0.015)),
        ("line", "light", (0.20, 0.68, 0.70, 0.56, 0.03)),
    ),
    "boots": (
        ("poly", "+", (0.30, 0.04, 0.62, 0.04, 0.63, 0.54, 0.90, 0.68, 0.93, 0.88, 0.30, 0.88)),
        ("rect", "dark", (0.28, 0.86, 0.95, 0.95)),
        ("rect", "dark", (0.30, 0.04, 0.62, 0.10)),
    ),
    "sandals": (
        ("ellipse", "+", (0.30, 0.04, 0.70, 0.96)),
        ("line", "dark", (0.27, 0.26, 0.73, 0.34, 0.07)),
        ("line", "dark", (0.29, 0.58, 0.71, 0.58, 0.07)),
    ),
    "slippers": (
        ("ellipse", "+", (0.06, 0.34, 0.94, 0.86)),
        ("ellipse", "-", (0.46, 0.40, 0.86, 0.60)),
        ("arc", "sole", (0.06, 0.34, 0.94, 0.86, 20, 160, 0.04)),
    ),
    "handbag": (
        ("arc", "+", (0.30, 0.10, 0.70, 0.62, 180, 360, 0.06)),
        ("poly", "+", (0.20, 0.40, 0.80, 0.40, 0.92, 0.90, 0.08, 0.90)),
        ("poly", "dark", (0.20, 0.40, 0.80, 0.40, 0.76, 0.58, 0.24, 0.58)),
        ("ellipse", "light", (0.46, 0.53, 0.54, 0.62)),
    ),
    "backpack": (
        ("arc", "+", (0.40, 0.04, 0.60, 0.24, 180, 360, 0.04)),
        ("rrect", "+", (0.22, 0.12, 0.78, 0.94, 0.16)),
        ("rrect", "dark", (0.30, 0.56, 0.70, 0.86, 0.06)),
        ("line", "dark", (0.30, 0.40, 0.70, 0.40, 0.02)),
    ),
    "tote bag": (
        ("arc", "+", (0.28, 0.08, 0.48, 0.62, 180, 360, 0.035)),
        ("arc", "+", (0.52, 0.08, 0.72, 0.62, 180, 360, 0.035)),
        ("rect", "+", (0.18, 0.35, 0.82, 0.95)),
        ("line", "dark", (0.18, 0.42, 0.82, 0.42, 0.015)),
    ),
    "wallet": (
        ("rrect", "+", (0.10, 0.28, 0.90, 0.74, 0.06)),
        ("rrect", "dark", (0.62, 0.38, 0.92, 0.58, 0.04)),
        ("ellipse", "light", (0.80, 0.44, 0.86, 0.52)),
    ),
    "mug": (
        ("ellipse", "+", (0.56, 0.34, 0.92, 0.76)),
        ("ellipse", "-", (0.65, 0.44, 0.83, 0.66)),
        ("rrect", "+", (0.16, 0.18, 0.70, 0.92, 0.05)),
        ("ellipse", "dark", (0.16, 0.14, 0.70, 0.24)),
    ),
    "water bottle": (
        ("rect", "+", (0.42, 0.12, 0.58, 0.28)),
        ("rrect", "+", (0.33, 0.24, 0.67, 0.96, 0.10)),
        ("rect", "dark", (0.40, 0.03, 0.60, 0.14)),
        ("rect", "light", (0.33, 0.52, 0.67, 0.64)),
    ),
    "plate": (
        ("ellipse", "+", (0.04, 0.04, 0.96, 0.96)),
        ("ring", "light", (0.20, 0.20, 0.80, 0.80, 0.025)),
    ),
    "bowl": (
        ("ellipse", "+", (0.06, 0.00, 0.94, 0.86)),
        ("rect", "-", (0.00, 0.00, 1.00, 0.40)),
        ("rect", "+", (0.38, 0.82, 0.62, 0.92)),
        ("ellipse", "dark", (0.06, 0.32, 0.94, 0.48)),
    ),
    "teapot": (
        ("ellipse", "+", (0.04, 0.44, 0.30, 0.78)),
        ("ellipse", "-", (0.10, 0.51, 0.24, 0.71)),
        ("poly", "+", (0.68, 0.60, 0.93, 0.36, 0.97, 0.40, 0.76, 0.80)),
        ("ellipse", "+", (0.18, 0.34, 0.78, 0.92)),
        ("ellipse", "+", (0.44, 0.16, 0.52, 0.28)),
        ("ellipse", "dark", (0.32, 0.26, 0.64, 0.42)),
    ),
    "vase": (
        ("poly", "+", (0.40, 0.04, 0.60, 0.04, 0.56, 0.24, 0.80, 0.52, 0.72, 0.94, 0.28, 0.94,
                       0.20, 0.52, 0.44, 0.24)),
        ("line", "dark", (0.40, 0.06, 0.60, 0.06, 0.03)),
    ),
    "candle": (
        ("rect", "+", (0.34, 0.34, 0.66, 0.96)),
        ("ellipse", "light", (0.34, 0.30, 0.66, 0.40)),
        ("line", "ink", (0.50, 0.35, 0.50, 0.26, 0.012)),
        ("ellipse", "flame", (0.45, 0.08, 0.55, 0.28)),
    ),
    "cushion": (
        ("poly", "+", (0.08, 0.10, 0.50, 0.17, 0.92, 0.10, 0.85, 0.50, 0.92, 0.90, 0.50, 0.83,
                       0.08, 0.90, 0.15, 0.50)),
        ("ellipse", "dark", (0.46, 0.46, 0.54, 0.54)),
    ),
    "blanket": (
        ("rrect", "+", (0.06, 0.28, 0.94, 0.82, 0.05)),
        ("line", "dark", (0.06, 0.46, 0.94, 0.46, 0.015)),
        ("line", "dark", (0.06, 0.64, 0.94, 0.64, 0.015)),
        ("line", "dark", (0.94, 0.34, 0.99, 0.34, 0.012)),
        ("line", "dark", (0.94, 0.55, 0.99, 0.55, 0.012)),
        ("line", "dark", (0.94, 0.76, 0.99, 0.76, 0.012)),
    ),
    "sofa": (
        ("rrect", "+", (0.12, 0.24, 0.88, 0.62, 0.05)),
        ("rrect", "+", (0.03, 0.40, 0.20, 0.84, 0.05)),
        ("rrect", "+", (0.80, 0.40, 0.97, 0.84, 0.05)),
        ("rect", "+", (0.16, 0.56, 0.84, 0.82)),
        ("line", "dark", (0.20, 0.60, 0.80, 0.60, 0.015)),
        ("line", "dark", (0.50, 0.60, 0.50, 0.82, 0.012)),
        ("rect", "ink", (0.08, 0.84, 0.12, 0.94)),
        ("rect", "ink", (0.88, 0.84, 0.92, 0.94)),
    ),
    "chair": (
        ("rect", "+", (0.30, 0.04, 0.70, 0.50)),
        ("rect", "+", (0.24, 0.48, 0.76, 0.60)),
        ("rect", "+", (0.26, 0.60, 0.33, 0.96)),
        ("rect", "+", (0.67, 0.60, 0.74, 0.96)),
        ("line", "dark", (0.30, 0.16, 0.70, 0.16, 0.02)),
        ("line", "dark", (0.30, 0.30, 0.70, 0.30, 0.02)),
    ),
    "lamp": (
        ("poly", "+", (0.30, 0.06, 0.70, 0.06, 0.86, 0.46, 0.14, 0.46)),
        ("rect", "dark", (0.47, 0.46, 0.53, 0.84)),
        ("ellipse", "dark", (0.30, 0.80, 0.70, 0.94)),
    ),
    "clock": (
        ("ellipse", "+", (0.06, 0.06, 0.94, 0.94)),
        ("ellipse", "sole", (0.15, 0.15, 0.85, 0.85)),
        ("line", "ink", (0.50, 0.50, 0.50, 0.24, 0.035)),
        ("line", "ink", (0.50, 0.50, 0.70, 0.58, 0.035)),
    ),
    "necklace": (
        ("arc", "+", (0.14, 0.00, 0.86, 0.66, 0, 180, 0.035)),
        ("poly", "+", (0.50, 0.58, 0.62, 0.72, 0.50, 0.94, 0.38, 0.72)),
        ("poly", "light", (0.50, 0.64, 0.56, 0.72, 0.50, 0.82, 0.44, 0.72)),
    ),
    "ring": (
        ("ellipse", "+", (0.18, 0.30, 0.82, 0.96)),
        ("ellipse", "-", (0.29, 0.41, 0.71, 0.85)),
        ("poly", "+", (0.36, 0.34, 0.64, 0.34, 0.58, 0.14, 0.42, 0.14)),
        ("poly", "light", (0.40, 0.16, 0.60, 0.16, 0.55, 0.04, 0.45, 0.04)),
    ),
    "earrings": (
        ("ring", "+", (0.22, 0.06, 0.34, 0.18, 0.02)),
        ("line", "+", (0.28, 0.18, 0.28, 0.40, 0.02)),
        ("ellipse", "+", (0.16, 0.38, 0.40, 0.80)),
        ("ring", "+", (0.66, 0.06, 0.78, 0.18, 0.02)),
        ("line", "+", (0.72, 0.18, 0.72, 0.40, 0.02)),
        ("ellipse", "+", (0.60, 0.38, 0.84, 0.80)),
        ("ellipse", "light", (0.22, 0.46, 0.30, 0.58)),
        ("ellipse", "light", (0.66, 0.46, 0.74, 0.58)),
    ),
    "bracelet": (
        ("ellipse", "+", (0.06, 0.20, 0.94, 0.80)),
        ("ellipse", "-", (0.20, 0.32, 0.80, 0.68)),
        ("ring", "light", (0.13, 0.26, 0.87, 0.74, 0.015)),
    ),
    "sunglasses": (
        ("ellipse", "+", (0.04, 0.34, 0.46, 0.74)),
        ("ellipse", "+", (0.54, 0.34, 0.96, 0.74)),
        ("arc", "+", (0.42, 0.36, 0.58, 0.52, 180, 360, 0.04)),
        ("line", "+", (0.06, 0.44, 0.02, 0.30, 0.03)),
        ("line", "+", (0.94, 0.44, 0.98, 0.30, 0.03)),
        ("ellipse", "ink", (0.10, 0.40, 0.40, 0.68)),
        ("ellipse", "ink", (0.60, 0.40, 0.90, 0.68)),
    ),
    "watch": (
        ("rect", "+", (0.38, 0.02, 0.62, 0.98)),
        ("ellipse", "+", (0.24, 0.28, 0.76, 0.72)),
        ("ellipse", "sole", (0.31, 0.35, 0.69, 0.65)),
        ("line", "ink", (0.50, 0.50, 0.50, 0.39, 0.025)),
        ("line", "ink", (0.50, 0.50, 0.60, 0.53, 0.025)),
        ("ellipse", "dark", (0.48, 0.82, 0.52, 0.86)),
        ("ellipse", "dark", (0.48, 0.89, 0.52, 0.93)),
    ),
}

COLOUR_BY_NAME: dict[str, Colour] = {c.name: c for c in COLOURS}
MATERIAL_BY_NAME: dict[str, Material] = {m.name: m for m in MATERIALS}


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

def generate_listings(n: int, out_dir: str | Path, *, seed: int = 0, image_size: int = 64,
                      images: bool = True, progress: bool = False) -> pd.DataFrame:
    """Write ``n`` synthetic listings to ``out_dir/listings.csv`` (and photos) and return them.

    With ``images`` each listing gets ``out_dir/images/<id>.jpg`` (``image_size`` square,
    RGB, JPEG quality 90) and its ``image`` column holds that relative path; without, the
    ``image`` column is empty. The same ``(n, seed, image_size)`` gives byte-identical files,
    and the text does not depend on ``image_size`` or ``images``.
    """
    _check_int("n", n, 1)
    _check_int("seed", seed, 0)
    _check_int("image_size", image_size, 16)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [_listing(seed, i) for i in range(n)]
    if images:
        (out / "images").mkdir(exist_ok=True)
        for i, row in enumerate(tqdm(rows, desc="images", unit="img", disable=not progress)):
            row["image"] = f"images/{row['id']}.jpg"
            rng = np.random.default_rng([seed, i])
            img = render_image(row["true_type"], row["true_colour"], row["true_material"],
                               image_size, rng)
            img.save(out / row["image"], format="JPEG", quality=JPEG_QUALITY)
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df.to_csv(out / "listings.csv", index=False, encoding="utf-8", lineterminator="\n")
    return df


def render_image(product_type: str, colour: str, material: str, size: int,
                 rng: np.random.Generator) -> Image.Image:
    """Draw one ``size`` x ``size`` RGB product photo; all jitter comes from ``rng``."""
    shade = np.array(COLOUR_BY_NAME[colour].rgb) * rng.uniform(0.88, 1.08)
    rgb = tuple(int(v) for v in np.clip(shade + rng.uniform(-10, 10, 3), 0, 255))
    scale = size * rng.uniform(0.62, 0.86)
    centre = size * (0.5 + rng.uniform(-0.07, 0.07, 2))
    mirror = bool(rng.random() < 0.5)
    body = [p for p in SHAPES[product_type] if p[1] in BODY_PAINTS]
    details = [p for p in SHAPES[product_type] if p[1] not in BODY_PAINTS]
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for part in body:
        _draw_part(draw, part, rgb, centre, scale, mirror)
    layer = _apply_texture(layer, MATERIAL_BY_NAME[material].texture, centre, scale, rng)
    draw = ImageDraw.Draw(layer)
    for part in details:
        _draw_part(draw, part, rgb, centre, scale, mirror)
    layer = layer.rotate(rng.uniform(-12, 12), resample=Image.Resampling.NEAREST,
                         center=(float(centre[0]), float(centre[1])))
    return _photograph(layer, rng)


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------

def _listing(seed: int, i: int) -> dict[str, object]:
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


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------

def _draw_part(draw: ImageDraw.ImageDraw, part: Part, rgb: tuple[int, int, int],
               centre: np.ndarray, scale: float, mirror: bool) -> None:
    kind, paint, c = part
    fill = _paint(paint, rgb)

    def xy(points: Sequence[float]) -> list[tuple[float, float]]:
        return [(centre[0] + ((1 - x if mirror else x) - 0.5) * scale,
                 centre[1] + (y - 0.5) * scale) for x, y in zip(points[::2], points[1::2])]

    def box(coords: Sequence[float]) -> list[float]:
        (x0, y0), (x1, y1) = xy(coords[:4])
        return [min(x0, x1), y0, max(x0, x1), y1]

    def width(w: float) -> int:
        return max(1, round(w * scale))

    if kind == "poly":
        draw.polygon(xy(c), fill=fill)
    elif kind == "rect":
        draw.rectangle(box(c), fill=fill)
    elif kind == "ellipse":
        draw.ellipse(box(c), fill=fill)
    elif kind == "rrect":
        draw.rounded_rectangle(box(c), radius=c[4] * scale, fill=fill)
    elif kind == "ring":
        draw.ellipse(box(c), outline=fill, width=width(c[4]))
    elif kind == "line":
        draw.line(xy(c[:-1]), fill=fill, width=width(c[-1]), joint="curve")
    elif kind == "arc":
        start, end = (180 - c[5], 180 - c[4]) if mirror else (c[4], c[5])
        draw.arc(box(c), start % 360, end % 360 or 360, fill=fill, width=width(c[6]))
    else:
        raise ValueError(f"unknown shape part kind {kind!r}")


def _paint(paint: str, rgb: tuple[int, int, int]) -> tuple[int, int, int, int]:
    if paint == "+":
        return (*rgb, 255)
    if paint == "-":
        return (0, 0, 0, 0)
    if paint == "dark":
        return (*(int(v * 0.62) for v in rgb), 255)
    if paint == "light":
        return (*(int(v + (255 - v) * 0.45) for v in rgb), 255)
    return (*FIXED_PAINTS[paint], 255)


def _apply_texture(layer: Image.Image, texture: str, centre: np.ndarray, scale: float,
                   rng: np.random.Generator) -> Image.Image:
    """Modulate the body's brightness (and, for glass, opacity) with the material's pattern."""
    if texture == "plain":
        return layer
    size = layer.size[0]
    pixels = np.arange(size, dtype=np.float32)
    x = ((pixels - centre[0]) / scale)[None, :]  # object units, about -0.5..0.5
    y = ((pixels - centre[1]) / scale)[:, None]
    period = 1 / rng.uniform(9, 14)
    arr = np.array(layer, dtype=np.float32)
    if texture == "sheen":
        factor = 0.88 + 0.24 * (x + y + 1) / 2
    elif texture == "speckle":
        factor = 1 + 0.07 * rng.standard_normal((size, size), dtype=np.float32)
    elif texture == "knit":
        factor = 1 - 0.16 * (np.sin(2 * np.pi * x / period) * np.sin(2 * np.pi * y / period) > 0.3)
    elif texture == "hatch":
        factor = (1 - 0.1 * (np.mod(x + y, period) < period / 3)
                  - 0.1 * (np.mod(x - y, period) < period / 3))
    elif texture == "brushed":
        streaks = 0.05 * rng.standard_normal((size, 1), dtype=np.float32)
        factor = 0.8 + 0.35 * (x + 0.5) + streaks
    elif texture == "grain":
        factor = 1 + 0.12 * np.sin(2 * np.pi * (y / period + 0.8 * np.sin(2 * np.pi * x / 0.3)))
    elif texture in ("gloss", "glass"):
        factor = 1 + 0.5 * np.exp(-((x + 0.15) ** 2 + (y + 0.2) ** 2) / 0.02)
        if texture == "glass":
            arr[..., 3] *= 0.72
    else:
        raise ValueError(f"unknown texture {texture!r}")
    arr[..., :3] *= np.broadcast_to(factor, (size, size))[..., None]
    return Image.fromarray(np.clip(arr, 0, 255, out=arr).astype(np.uint8), "RGBA")


def _photograph(layer: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Put the product on a light backdrop with a soft shadow and a little sensor noise."""
    size = layer.size[0]
    tone = rng.uniform(185, 240) + rng.uniform(-12, 12, 3)
    gradient = 1 - rng.uniform(0, 0.1) * np.linspace(0, 1, size)[:, None, None]
    column = np.clip(tone * gradient, 0, 255).astype(np.uint8)  # size x 1 x 3
    photo = Image.fromarray(column, "RGB").resize((size, size), Image.Resampling.NEAREST)
    alpha = layer.getchannel("A")
    shadow = alpha.filter(ImageFilter.BoxBlur(max(1, size // 40))).point(SHADOW_LUT)
    offset = int(size * 0.025) + 1
    photo.paste(SHADOW_RGB, (offset, offset), shadow)
    photo.paste(layer, (0, 0), alpha)
    arr = np.array(photo, dtype=np.float32)
    arr += 3 * rng.standard_normal((size, size, 1), dtype=np.float32)
    return Image.fromarray(np.clip(arr, 0, 255, out=arr).astype(np.uint8), "RGB")


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
