"""The photo of one generated listing: its true type's silhouette in its true colour and material."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .catalogue import COLOUR_BY_NAME, MATERIAL_BY_NAME
from .shapes import BODY_PAINTS, FIXED_PAINTS, SHADOW_LUT, SHADOW_RGB, SHAPES, Part


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
