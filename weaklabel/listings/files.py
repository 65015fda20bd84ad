"""Finding listing files (files, folders, globs; by suffix) and reading their bytes."""

from __future__ import annotations

import glob
import gzip
from collections.abc import Sequence
from pathlib import Path

from .roles import ListingsError

SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq",
    ".csv.gz", ".tsv.gz", ".jsonl.gz", ".ndjson.gz",
)
BOM = b"\xef\xbb\xbf"


def suffix_of(path: Path) -> str | None:
    """The supported suffix ``path`` ends with (``.csv.gz``...), or None."""
    name = path.name.lower()
    return next((s for s in SUPPORTED_SUFFIXES if name.endswith(s)), None)


def unsupported(what: str) -> ListingsError:
    """An error saying ``what``, then listing the supported suffixes."""
    return ListingsError(f"{what}; supported listing files: {', '.join(SUPPORTED_SUFFIXES)}")


def _files_of(item: str | Path) -> list[Path]:
    text, path = str(item), Path(item)
    if not path.exists() and any(c in text for c in "*?["):
        matches = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
        found = [p for p in matches if p.is_file() and suffix_of(p)]
        if not found:
            raise unsupported(f"no listing files match {text!r}")
        return found
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and suffix_of(p))
        if not found:
            raise unsupported(f"no listing files directly inside directory {text!r}")
        return found
    if not path.exists():
        raise ListingsError(f"listing source {text!r} does not exist")
    if not suffix_of(path):
        raise unsupported(f"unsupported listing file {text!r}")
    return [path]


def list_listing_files(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """Resolve a file, a directory, a glob, or a list of those to listing files.

    A directory contributes every supported file directly inside it, sorted; a
    glob its sorted matches with a supported extension. Duplicates are dropped
    (first mention wins). Raises :class:`ListingsError` when nothing is found or
    a named file has an unsupported extension.
    """
    items = [source] if isinstance(source, (str, Path)) else list(source)
    if not items:
        raise unsupported("no listing source given")
    files: dict[Path, Path] = {}
    for item in items:
        for path in _files_of(item):
            files.setdefault(path.resolve(), path)
    return list(files.values())


def read_bytes(path: Path) -> bytes:
    """The bytes of a listing file, gunzipped when its name ends in ``.gz``."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.lower().endswith(".gz") else data
