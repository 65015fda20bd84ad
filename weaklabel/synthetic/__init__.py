"""Deterministic synthetic marketplace listings with procedurally drawn product photos.

What the data models
--------------------
A dump of a marketplace's listings table, as sellers typed it, plus one photo per listing.
Every listing has a hidden truth (a product type, a colour, a material) that the text only
hints at, with the noise a labeling algorithm has to get through:

* **Long tail.** Product types, colours and materials follow Zipf-like distributions
  (the tables of `catalogue` are ordered most common first): the largest type has ~22% of the
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

Modules: ``catalogue`` (the tables), ``text`` (a listing's fields), ``shapes`` (the silhouettes),
``photos`` (drawing one photo); this one writes the dump.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .catalogue import (
    AUDIENCES,
    BRANDS,
    COLOURS,
    COLUMNS,
    GROUPS,
    JPEG_QUALITY,
    MARKETING_SENTENCES,
    MATERIALS,
    PRODUCT_TYPES,
)
from .photos import render_image
from .text import listing_row

__all__ = [
    "AUDIENCES",
    "BRANDS",
    "COLOURS",
    "COLUMNS",
    "GROUPS",
    "MARKETING_SENTENCES",
    "MATERIALS",
    "PRODUCT_TYPES",
    "generate_listings",
    "render_image",
]


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
    rows = [listing_row(seed, i) for i in range(n)]
    if images:
        (out / "images").mkdir(exist_ok=True)
        with tqdm(rows, desc="images", unit="img", disable=not progress) as bar:  # closed before an error
            for i, row in enumerate(bar):
                row["image"] = f"images/{row['id']}.jpg"
                rng = np.random.default_rng([seed, i])
                img = render_image(row["true_type"], row["true_colour"], row["true_material"],
                                   image_size, rng)
                img.save(out / row["image"], format="JPEG", quality=JPEG_QUALITY)
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df.to_csv(out / "listings.csv", index=False, encoding="utf-8", lineterminator="\n")
    return df


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
