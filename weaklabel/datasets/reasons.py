"""Why a listing did not become a sample: a fixed vocabulary, recorded in ``rejected.parquet``.

Failures are data, never fatal to the run (img2dataset's rule): every input row ends up written,
recorded as a duplicate, or rejected with exactly one of these reasons and a free-text detail.
Details are deterministic (the same input gives the same detail), so reruns give the same
``rejected.parquet``.
"""

from __future__ import annotations

import re

MEMORY_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")  # in object reprs, e.g. Pillow's "<_io.BytesIO object at 0x...>"

REASONS: dict[str, str] = {
    "no_labels": "the listing has no label (kept only with --keep-unlabelled)",
    "missing_image": "the image field is empty",
    "invalid_source": "the image field is no usable path or URL (a NUL byte, a malformed URL)",
    "outside_root": "a local path whose real location (after .. and symlinks) is outside --images-root "
                    "(allowed with --allow-outside-root)",
    "not_found": "no such local file, or the server answered 404/410",
    "fetch_error": "the file could not be read or is not a regular file (a folder, FIFO or device), the "
                   "server failed or refused (after retries), or the URL scheme is not http, https or file",
    "timeout": "the server did not answer within --timeout (after retries), or a download took over "
               "3 x --timeout in all",
    "too_large": "the source is bigger than --max-download-bytes",
    "decode_error": "not an image Pillow can decode, or a corrupt/truncated one",
    "too_small": "the shorter side is below --min-size",
    "too_many_pixels": "width x height is above --max-pixels (decompression-bomb guard)",
    "too_large_output": "the resized image would be over --max-pixels (e.g. a 1 x 20000 strip upscaled), or "
                        "over the side the output format allows (jpg 65500, webp 16383)",
    "key_collision": "the listing's sample key is the key of an earlier listing (ids crafted to collide)",
}


class Rejected(Exception):
    """Raised by the fetch and image steps; the writer records it instead of failing the run."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}; known: {sorted(REASONS)}")
        detail = MEMORY_ADDRESS.sub("", detail)
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
