"""Why a listing did not become a sample: a fixed vocabulary, recorded in ``rejected.parquet``.

Failures are data, never fatal to the run (img2dataset's rule): every input row ends up written,
recorded as a duplicate, or rejected with exactly one of these reasons and a free-text detail.
"""

from __future__ import annotations

REASONS: dict[str, str] = {
    "no_labels": "the listing has no label (kept only with --keep-unlabelled)",
    "missing_image": "the image field is empty",
    "not_found": "no such local file, or the server answered 404/410",
    "fetch_error": "the file could not be read, the server failed or refused (after retries), "
                   "or the URL scheme is not http, https or file",
    "timeout": "the server did not answer within --timeout (after retries)",
    "too_large": "the source is bigger than --max-download-bytes",
    "decode_error": "not an image Pillow can decode, or a corrupt/truncated one",
    "too_small": "the shorter side is below --min-size",
    "too_many_pixels": "width x height is above --max-pixels (decompression-bomb guard)",
}


class Rejected(Exception):
    """Raised by the fetch and image steps; the writer records it instead of failing the run."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}; known: {sorted(REASONS)}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
