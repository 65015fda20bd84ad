"""Reading listing files: the reader for each format and encoding, then validation and combining."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from ..textfile import SNIFF_BYTES, decode_text, not_text_reason, wide_encoding
from .combine import concat_listings
from .delimited import read_delimited, read_delimited_python
from .files import list_listing_files, read_bytes, suffix_of, unsupported
from .jsonl import read_jsonl, read_jsonl_python
from .parquet import read_parquet
from .results import Decoded, Listings
from .roles import ColumnRoles, ListingsError
from .validate import check_columns, validate


def read_listing_file(path: str | Path, roles: ColumnRoles) -> Listings:
    """Read, clean and validate one listing file (one partition).

    Duplicate ids are only checked within this file; :func:`read_listings` and
    :func:`concat_listings` check across files. Raises :class:`ListingsError` when
    the file cannot be read or a role column is missing.
    """
    path = Path(path)
    decoded = _decode(path, roles)
    check_columns(decoded.frame, roles, path)
    return validate(decoded, roles, path)


def read_listings(
    source: str | Path | Sequence[str | Path], roles: ColumnRoles, *, progress: bool = False
) -> Listings:
    """Read every listing file of ``source`` (see :func:`list_listing_files`).

    Files are read one at a time (a tqdm bar over files when ``progress``) and
    concatenated in file order; duplicate ids across files are rejected too.
    """
    files = list_listing_files(source)
    with tqdm(files, desc="reading listings", unit="file", disable=not progress) as bar:  # closed before an error
        return concat_listings([read_listing_file(path, roles) for path in bar])


_DELIMITERS = {".csv": ",", ".tsv": "\t"}
_READERS = {
    ".csv": lambda p, r: read_delimited(p, ",", r),
    ".tsv": lambda p, r: read_delimited(p, "\t", r),
    ".jsonl": read_jsonl,
    ".ndjson": read_jsonl,
    ".parquet": read_parquet,
    ".pq": read_parquet,
}


_TEXT_KINDS = (".csv", ".tsv", ".jsonl", ".ndjson")


def _decode(path: Path, roles: ColumnRoles) -> Decoded:
    suffix = suffix_of(path)
    if suffix is None:
        raise unsupported(f"unsupported listing file {str(path)!r}")
    kind = suffix.removesuffix(".gz")
    try:
        wide = _wide_text(path, kind) if kind in _TEXT_KINDS else None
        decoded = _read_wide(path, kind, roles) if wide else _READERS[kind](path, roles)
    except (OSError, EOFError) as e:
        raise ListingsError(f"cannot read {path}: {e}") from None
    if decoded.frame.shape == (0, 0):  # no header and no records: nothing to check
        decoded.frame = pd.DataFrame(columns=roles.columns, dtype=object)
    return decoded


def _wide_text(path: Path, kind: str) -> bool:
    """Whether a text listing file is UTF-16 or UTF-32 with a byte-order mark; raise when it is no text."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if wide_encoding(head):
        return True
    reason = not_text_reason(head)
    if reason:
        raise ListingsError(f"{path} {reason}; expected a {_listing_kind(kind)}")
    return False


def _listing_kind(kind: str) -> str:
    return f"{kind[1:].upper()} listing file of UTF-8 text"


def _read_wide(path: Path, kind: str, roles: ColumnRoles) -> Decoded:
    """A UTF-16/32 text file, decoded in full and parsed by the Python readers."""
    text = decode_text(read_bytes(path), path, f"a {_listing_kind(kind)}")
    if kind in _DELIMITERS:
        return read_delimited_python(path, text, _DELIMITERS[kind], roles)
    return read_jsonl_python(text.encode("utf-8"), roles)
