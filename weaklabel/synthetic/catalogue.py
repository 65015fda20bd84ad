"""The generated marketplace's catalogue: product types, colours, materials and brands with their
surface forms, the words and sentences sellers write around them, noise rates and popularity.

Each tuple of variants starts with the canonical name (the ground truth); tables are ordered most
common first.
"""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS: tuple[str, ...] = (
    "id", "title", "description", "tags", "category_path", "brand", "colour_attr",
    "material_attr", "price", "image", "true_type", "true_colour", "true_material",
)
FIRST_ID = 100_000
JPEG_QUALITY = 90


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


COLOUR_BY_NAME: dict[str, Colour] = {c.name: c for c in COLOURS}
MATERIAL_BY_NAME: dict[str, Material] = {m.name: m for m in MATERIALS}
