"""Generated photos and their near-copies, with the truth of which is a copy of which.

A marketplace's near-duplicates are one photo re-encoded, resized, cropped a little, mirrored or
lightly recoloured by another seller. :func:`scene` draws distinct photos (a random backdrop with
random shapes: no two alike), :func:`near_copy` makes one of these copies of a photo. The
near-duplicate benchmark and tests measure the shards stage against them.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

COPY_KINDS = ("reencode", "resize", "crop", "mirror", "recolour")


def scene(rng: np.random.Generator, size: int = 128) -> Image.Image:
    """A ``size`` x ``size`` RGB photo: a vertical colour gradient with 3 to 7 filled shapes."""
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    blend = np.linspace(0, 1, size)[:, None, None]
    backdrop = (top * (1 - blend) + bottom * blend).repeat(size, axis=1).astype(np.uint8)
    image = Image.fromarray(backdrop, "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 8))):
        x, y = (int(v) for v in rng.integers(-size // 4, size, 2))
        width, height = (int(v) for v in rng.integers(size // 8, size // 2, 2))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = int(rng.integers(3))
        if shape == 0:
            draw.ellipse((x, y, x + width, y + height), fill=fill)
        elif shape == 1:
            draw.rectangle((x, y, x + width, y + height), fill=fill)
        else:
            draw.polygon([(x, y + height), (x + width // 2, y), (x + width, y + height)], fill=fill)
    return image


def near_copy(image: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """A copy of ``image`` as another seller might post it; ``kind`` is one of :data:`COPY_KINDS`:
    re-encoded as JPEG at quality 30-90, resized to 40-80%, cropped by 3-10% of each side, mirrored,
    or recoloured (brightness and contrast within 10%, saturation within 15%)."""
    width, height = image.size
    if kind == "reencode":
        return jpeg(image, int(rng.choice([30, 50, 70, 90])))
    if kind == "resize":
        scale = rng.uniform(0.4, 0.8)
        return image.resize((max(8, int(width * scale)), max(8, int(height * scale))), Image.Resampling.BILINEAR)
    if kind == "crop":
        share = rng.uniform(0.03, 0.10)
        cut_x, cut_y = int(width * share), int(height * share)
        left, top = int(rng.integers(0, cut_x + 1)), int(rng.integers(0, cut_y + 1))
        return image.crop((left, top, width - (cut_x - left), height - (cut_y - top)))
    if kind == "mirror":
        return ImageOps.mirror(image)
    if kind == "recolour":
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.9, 1.1))
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.9, 1.1))
        return ImageEnhance.Color(image).enhance(rng.uniform(0.85, 1.15))
    raise ValueError(f"kind must be one of {COPY_KINDS}, got {kind!r}")


def jpeg(image: Image.Image, quality: int = 90) -> Image.Image:
    """``image`` after a round trip through JPEG at ``quality``."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
