"""Reading the user's text files: a file that is binary, or text in an encoding other than UTF-8, stops
the run with one line that names it and says how to convert it.

Text with a UTF-16 or UTF-32 byte-order mark is decoded; a UTF-8 byte-order mark is dropped.
"""

from __future__ import annotations

import codecs
from pathlib import Path

SNIFF_BYTES = 8192
# the UTF-32 marks first: the UTF-16LE mark is a prefix of the UTF-32LE one
_WIDE_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"),
)
_NOT_TEXT_SHARE = 0.1  # a larger share of undecodable or control characters is no UTF-8 text file


class TextFileError(ValueError):
    """A file that should be UTF-8 text is not, worded for the user."""


def wide_encoding(head: bytes) -> str | None:
    """"UTF-16" or "UTF-32" when ``head`` (a file's first bytes) starts with that byte-order mark."""
    return next((name for bom, name in _WIDE_BOMS if head.startswith(bom)), None)


def not_text_reason(head: bytes) -> str | None:
    """Why a file starting with ``head`` is no UTF-8 text, or None when it is text.

    A few invalid bytes or control characters (a bad record) still leave it text; more than a tenth
    of its first characters make it binary (when it holds NUL bytes) or text in another encoding.
    """
    chars = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head)  # a cut last char waits
    bad = sum(c == "\ufffd" or (c < " " and c not in "\t\n\r\f") or c == "\x7f" for c in chars)
    if bad <= _NOT_TEXT_SHARE * len(chars):
        return None
    if _utf16_without_bom(head):
        return "is UTF-16 text without a byte-order mark: convert it to UTF-8 (iconv -f UTF-16LE -t UTF-8)"
    if b"\0" in head:
        return "is binary, not text"
    return "is not UTF-8 text (another encoding?): convert it to UTF-8 (iconv -f ENCODING -t UTF-8)"


def _utf16_without_bom(head: bytes) -> bool:
    """ASCII text as UTF-16: every other byte is NUL."""
    half = len(head) // 2
    return half > 0 and max(head[1::2].count(0), head[0::2].count(0)) > 0.9 * half


def decode_text(data: bytes, path: str | Path, expected: str) -> str:
    """``data``, the contents of ``path``, as text; raise a :class:`TextFileError` naming the file,
    what it should be (``expected``, e.g. "a pipeline file (TOML)") and the fix."""
    wide = wide_encoding(data)
    try:
        return data.decode(wide or "utf-8-sig")
    except UnicodeDecodeError as error:
        reason = not_text_reason(data[:SNIFF_BYTES])
        if wide or reason is None:
            encoding = wide or "UTF-8"
            reason = (f"is not valid {encoding} text ({error.reason} at byte {error.start}): "
                      f"save it as UTF-8 text")
        raise TextFileError(f"{path} {reason}; expected {expected}") from None


def read_text(path: str | Path, expected: str) -> str:
    """The text of ``path`` (see :func:`decode_text`)."""
    return decode_text(Path(path).read_bytes(), path, expected)
