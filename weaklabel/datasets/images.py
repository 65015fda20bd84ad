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

Memory is bounded on both sides: the input by ``max_pixels`` (from the header), and the output
too, so no resize can ask for more than ``max_pixels`` pixels (a 1 x 20000 strip whose shorter
side goes to 256 would need 256 x 5,120,000) nor for a side the output format cannot hold
(:data:`MAX_SIDE`): those images are rejected as ``too_large_output`` before any pixel is decoded.

Grey images of more than 8 bits are scaled to 8 bits, never clipped (which would turn them white):
16-bit modes (``I;16*``, e.g. 16-bit PNGs and TIFFs) by 1/257, so 65535 stays white; 32-bit
integer images (``I``) the same when their values lie in 0..65535; float images (``F``) by 255
when their values lie in 0..1. Other ``I`` and ``F`` images are stretched from their minimum
to their maximum (a constant one is clipped to 0..255).
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from . import near
from .reasons import Rejected

RESIZE_MODES = ("keep_ratio", "center_crop", "border", "none")
FORMATS = {"jpg": "JPEG", "webp": "WEBP", "png": "PNG"}
PILLOW_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb warning threshold
ORIENTATION_TAG = 0x0112
SWAPS_AXES = frozenset({5, 6, 7, 8})  # EXIF orientations that rotate by 90 or 270 degrees
WHITE = (255, 255, 255)
MAX_SIDE = {"jpg": 65_500, "webp": 16_383}  # what libjpeg and libwebp can encode; png has no practical limit
HIGH_DEPTH_GREY = ("I", "F")
NEAR_PIXELS = 2 * near.HASH_SIDE  # JPEGs are decoded at least this big, enough for a fingerprint
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
    fingerprint: bytes | None = None  # near-duplicate fingerprint (:mod:`.near`), when asked for


@dataclass(frozen=True)
class Geometry:
    """The size to scale to, then an optional centred crop or border to a square."""

    scaled: tuple[int, int]
    square: int | None = None
    crop: bool = False

    @property
    def output(self) -> tuple[int, int]:
        return (self.square, self.square) if self.square else self.scaled


def process_image(data: bytes, options: ImageOptions, *, fingerprint: bool = False) -> EncodedImage:
    """Bytes of an image file → the output image, or :class:`Rejected` (decode_error, too_small...).

    ``fingerprint``: also compute the near-duplicate fingerprint of the scaled image, before any crop or
    border (so a copy left unresized by ``resize_only_if_bigger`` still matches), or of the decoded
    image when the scaled one has a side under ``NEAR_PIXELS`` (a tiny one would blur it). JPEGs are
    decoded with sides of at least ``NEAR_PIXELS`` either way, so the option never changes the output."""
    image = _open(data)
    width, height = _upright_size(image)
    if width * height > options.max_pixels:
        raise Rejected("too_many_pixels", f"{width}x{height} is over {options.max_pixels} pixels")
    if min(width, height) < options.min_size:
        raise Rejected("too_small", f"{width}x{height}, the shorter side is below {options.min_size}")
    geometry = plan_geometry(width, height, options)
    _check_output(width, height, geometry, options)
    try:
        if geometry is None and _can_pass_through(image, options):
            _prove_decodable(image, NEAR_PIXELS if fingerprint else 1)  # its pixels are not stored
            return EncodedImage(data, options.image_format, width, height, passed_through=True,
                                fingerprint=near.fingerprint(image.convert("RGB")) if fingerprint else None)
        decoded = _decode(image, geometry)
        scaled = _scale(decoded, geometry)
        signature = near.fingerprint(scaled if min(scaled.size) >= NEAR_PIXELS else decoded) if fingerprint else None
        return _encode(_square(scaled, geometry), options, signature)
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


def _check_output(width: int, height: int, geometry: Geometry | None, options: ImageOptions) -> None:
    """Refuse a resize whose result (or the scaled image a crop is cut from) would be too big."""
    scaled, output = (geometry.scaled, geometry.output) if geometry else ((width, height), (width, height))
    pixels = max(scaled[0] * scaled[1], output[0] * output[1])
    if pixels > options.max_pixels:
        raise Rejected("too_large_output", f"{width}x{height} resized ({options.resize_mode} to {options.size}) "
                                           f"needs {pixels} pixels, over {options.max_pixels}")
    limit = MAX_SIDE.get(options.image_format)
    if limit and max(output) > limit:
        raise Rejected("too_large_output", f"the output would be {output[0]}x{output[1]}; "
                                           f"{options.image_format} holds at most {limit} px a side")


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


def _prove_decodable(image: Image.Image, least_side: int) -> None:
    """Decode before trusting bytes we pass through; JPEGs at the smallest DCT scale (down to 1/8, nearly
    free) whose sides stay at least ``least_side``."""
    if image.format == "JPEG":
        image.draft("RGB", (max(least_side, image.width // 8), max(least_side, image.height // 8)))
    image.load()


def _decode(image: Image.Image, geometry: Geometry | None) -> Image.Image:
    """Upright RGB pixels; JPEGs that will shrink are decoded at the smallest DCT scale that suffices,
    with sides of at least ``NEAR_PIXELS`` (enough for a fingerprint)."""
    if geometry is not None and image.format == "JPEG":
        scaled = geometry.scaled[::-1] if _orientation(image) in SWAPS_AXES else geometry.scaled
        target = (max(scaled[0], NEAR_PIXELS), max(scaled[1], NEAR_PIXELS))
        if target[0] < image.width and target[1] < image.height:
            image.draft("RGB", target)
    if _orientation(image) != 1:  # exif_transpose copies even when there is nothing to turn
        image = ImageOps.exif_transpose(image)
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparency flattened onto white (as img2dataset does)."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    if image.mode in HIGH_DEPTH_GREY:
        return _grey_to_8_bits(image).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _grey_to_8_bits(image: Image.Image) -> Image.Image:
    """An ``I`` or ``F`` image as ``L``, by the rule of the module docstring (one pass for the range,
    one for the scaling, both in Pillow's C code)."""
    low, high = image.getextrema()
    if image.mode == "F" and 0 <= low and high <= 1:
        scale, offset = 255.0, 0.0
    elif image.mode == "I" and 0 <= low and high <= 65535:
        scale, offset = 1 / 257, 0.0
    elif high > low:
        scale, offset = 255 / (high - low), -low * 255 / (high - low)
    else:
        scale, offset = 1.0, 0.0
    return image.point(lambda value: value * scale + offset + 0.5).convert("L")  # + 0.5: round, not truncate


def _scale(image: Image.Image, geometry: Geometry | None) -> Image.Image:
    if geometry is None or image.size == geometry.scaled:
        return image
    shrinking = geometry.scaled[0] < image.width
    return image.resize(geometry.scaled, Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC)


def _square(image: Image.Image, geometry: Geometry | None) -> Image.Image:
    """The scaled image cut (center_crop) or padded (border) to its square, when the mode asks for one."""
    if geometry is None or geometry.square is None:
        return image
    side = geometry.square
    if geometry.crop:
        left, top = (image.width - side) // 2, (image.height - side) // 2
        return image.crop((left, top, left + side, top + side))
    canvas = Image.new("RGB", (side, side), WHITE)
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


def _encode(image: Image.Image, options: ImageOptions, fingerprint: bytes | None) -> EncodedImage:
    buffer = io.BytesIO()
    if options.image_format == "png":
        image.save(buffer, "PNG")
    else:
        image.save(buffer, FORMATS[options.image_format], quality=options.quality)
    return EncodedImage(buffer.getvalue(), options.image_format, image.width, image.height, passed_through=False,
                        fingerprint=fingerprint)
