"""Decoding, checking, resizing and encoding one image with Pillow: bytes in, bytes out.

The resizer of the img2dataset split. Resize modes follow img2dataset's, so settings mean the
same in both tools:

- ``keep_ratio``: scale so the *shorter* side equals ``size`` (the longer one follows the ratio);
- ``center_crop``: ``keep_ratio``, then cut the central ``size`` x ``size`` square;
- ``border``: scale so the *longer* side equals ``size``, then pad to ``size`` x ``size`` in white;
- ``none``: keep the decoded size.

With ``resize_only_if_bigger`` an image whose relevant side (shorter for keep_ratio/center_crop,
longer for border) is at most ``size`` is left as it is, crop and border included (as img2dataset).
Downscaling uses area averaging (Pillow BOX, like the OpenCV INTER_AREA img2dataset uses);
upscaling uses bicubic (img2dataset: Lanczos), which in Pillow costs a third less for a result
that differs little once the image is cropped and resized again at training time.

Speed comes from not doing work: the header is checked before any pixel is decoded (bomb
guard, minimum size); JPEGs that shrink are decoded at a reduced DCT scale (``Image.draft``);
and when the geometry, the format and the colour mode already match, the original bytes are
passed through untouched (after a cheap decode to prove they are not corrupt).
EXIF orientation is applied, so pixels are stored upright and carry no orientation tag.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from .reasons import Rejected

RESIZE_MODES = ("keep_ratio", "center_crop", "border", "none")
FORMATS = {"jpg": "JPEG", "webp": "WEBP", "png": "PNG"}
PILLOW_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb warning threshold
ORIENTATION_TAG = 0x0112
SWAPS_AXES = frozenset({5, 6, 7, 8})  # EXIF orientations that rotate by 90 or 270 degrees
WHITE = (255, 255, 255)
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, Image.DecompressionBombError)


@dataclass(frozen=True)
class ImageOptions:
    """What every output image looks like, and which inputs are refused."""

    size: int = 256
    resize_mode: str = "keep_ratio"
    resize_only_if_bigger: bool = False
    image_format: str = "jpg"
    quality: int = 95
    min_size: int = 0
    max_pixels: int = PILLOW_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        if self.image_format not in FORMATS:
            raise ValueError(f"image_format must be one of {tuple(FORMATS)}, got {self.image_format!r}")
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be in 1..100, got {self.quality}")
        if self.min_size < 0 or self.max_pixels < 1:
            raise ValueError(f"min_size must be >= 0 and max_pixels >= 1, got {self.min_size}, {self.max_pixels}")


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    ext: str
    width: int
    height: int
    passed_through: bool


@dataclass(frozen=True)
class Geometry:
    """The size to scale to, then an optional centred crop or border to a square."""

    scaled: tuple[int, int]
    square: int | None = None
    crop: bool = False

    @property
    def output(self) -> tuple[int, int]:
        return (self.square, self.square) if self.square else self.scaled


def process_image(data: bytes, options: ImageOptions) -> EncodedImage:
    """Bytes of an image file → the output image, or :class:`Rejected` (decode_error, too_small...)."""
    image = _open(data)
    width, height = _upright_size(image)
    if width * height > options.max_pixels:
        raise Rejected("too_many_pixels", f"{width}x{height} is over {options.max_pixels} pixels")
    if min(width, height) < options.min_size:
        raise Rejected("too_small", f"{width}x{height}, the shorter side is below {options.min_size}")
    geometry = plan_geometry(width, height, options)
    try:
        if geometry is None and _can_pass_through(image, options):
            _prove_decodable(image)
            return EncodedImage(data, options.image_format, width, height, passed_through=True)
        pixels = _apply(_decode(image, geometry), geometry)
        return _encode(pixels, options)
    except DECODE_ERRORS as error:
        raise Rejected("decode_error", f"{type(error).__name__}: {error}") from None


def plan_geometry(width: int, height: int, options: ImageOptions) -> Geometry | None:
    """The resize an upright ``width`` x ``height`` image needs; None when it needs none."""
    size, mode = options.size, options.resize_mode
    if mode == "none":
        return None
    side = max(width, height) if mode == "border" else min(width, height)
    if options.resize_only_if_bigger and side <= size:
        return None
    scale = size / side
    scaled = (max(1, round(width * scale)), max(1, round(height * scale)))
    geometry = Geometry(scaled, square=None if mode == "keep_ratio" else size, crop=mode == "center_crop")
    return None if geometry.output == (width, height) == scaled else geometry


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise Rejected("too_many_pixels", str(error)) from None
    except DECODE_ERRORS as error:
        raise Rejected("decode_error", f"{type(error).__name__}: {error}") from None


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ORIENTATION_TAG, 1))
    except DECODE_ERRORS:  # a broken EXIF block should not cost the image
        return 1


def _upright_size(image: Image.Image) -> tuple[int, int]:
    width, height = image.size
    return (height, width) if _orientation(image) in SWAPS_AXES else (width, height)


def _can_pass_through(image: Image.Image, options: ImageOptions) -> bool:
    return (image.format == FORMATS[options.image_format] and image.mode == "RGB"
            and _orientation(image) == 1 and getattr(image, "n_frames", 1) == 1)


def _prove_decodable(image: Image.Image) -> None:
    """Decode before trusting bytes we pass through; JPEGs at 1/8 scale, which is nearly free."""
    if image.format == "JPEG":
        image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
    image.load()


def _decode(image: Image.Image, geometry: Geometry | None) -> Image.Image:
    """Upright RGB pixels; JPEGs that will shrink are decoded at the smallest DCT scale that suffices."""
    if geometry is not None and image.format == "JPEG":
        target = geometry.scaled[::-1] if _orientation(image) in SWAPS_AXES else geometry.scaled
        if target[0] < image.width and target[1] < image.height:
            image.draft("RGB", target)
    if _orientation(image) != 1:  # exif_transpose copies even when there is nothing to turn
        image = ImageOps.exif_transpose(image)
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparency flattened onto white (as img2dataset does)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _apply(image: Image.Image, geometry: Geometry | None) -> Image.Image:
    if geometry is None:
        return image
    if image.size != geometry.scaled:
        shrinking = geometry.scaled[0] < image.width
        image = image.resize(geometry.scaled, Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC)
    if geometry.square is None:
        return image
    side = geometry.square
    if geometry.crop:
        left, top = (image.width - side) // 2, (image.height - side) // 2
        return image.crop((left, top, left + side, top + side))
    canvas = Image.new("RGB", (side, side), WHITE)
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


def _encode(image: Image.Image, options: ImageOptions) -> EncodedImage:
    buffer = io.BytesIO()
    if options.image_format == "png":
        image.save(buffer, "PNG")
    else:
        image.save(buffer, FORMATS[options.image_format], quality=options.quality)
    return EncodedImage(buffer.getvalue(), options.image_format, image.width, image.height, passed_through=False)
