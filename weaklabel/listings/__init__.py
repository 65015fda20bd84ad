"""Reading listing dumps: file discovery, column roles, cleaning and validation.

A listing dump is one or more files of product listings, one record per listing.
Supported formats: ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson`` (one JSON object per
line), ``.parquet``/``.pq``, and gzip-compressed ``.csv.gz``, ``.tsv.gz``,
``.jsonl.gz``, ``.ndjson.gz``.

:class:`ColumnRoles` says which columns matter: the id column, the optional image
column, and the *fields* that carry listing text, each with a role:

- ``text``: free text (title, description); cleaned to ``str`` (nulls become ``""``,
  surrounding whitespace stripped, values longer than ``max_field_chars`` cut).
- ``tags``: a list of tags, stored as a list/array cell, a JSON list string
  (``'["a", "b"]'``) or a delimited string (``"a, b"``); cleaned to ``list[str]``.
- ``category``: a category path (``"Home > Kitchen > Mugs"``) or a list of levels;
  cleaned to ``list[str]`` of levels.

Every other column is passed through untouched. CSV/TSV files carry no types, so
there every column is read as text (nulls for empty cells); JSONL and Parquet keep
their own types.

Every input record ends in exactly one place: :attr:`Listings.frame` (accepted) or
:attr:`Listings.rejected`, so ``rows_in == rows_out + sum(rejected.values())``.
Blank lines are not records. Records are numbered from 0 in each file, the CSV/TSV
header not counted. Rejection reasons (a fixed vocabulary, see
:data:`REJECTION_REASONS`):

- ``malformed_line``: a CSV/TSV record with the wrong number of fields, that is not
  strictly quoted, or that the CSV parser cannot read. Strictly quoted: a field that
  starts with a quote ends at its closing quote (``""`` inside is one quote, line
  breaks are allowed), and only a delimiter or a line end follows it; an unquoted CSV
  field holds no quote (RFC 4180), an unquoted TSV field may (``12" pan``). A record
  that is not strictly quoted, or that spans lines and has the wrong number of fields,
  is cut at its first line end: that line is the rejected record and the next line
  starts a new one, so a runaway quote never swallows the records after it.
- ``malformed_json``: a JSONL line that is not a JSON object.
- ``undecodable_bytes``: a record containing bytes that are not valid UTF-8 (a BOM
  at the start of a file is fine; the other records of the file are still read).
- ``missing_id``: the id is null or empty.
- ``empty_text``: every role field (text, tags, category) is empty after cleaning.
- ``duplicate_id``: the id was already accepted earlier, in the same file or in an
  earlier file; the first accepted occurrence wins and ``detail`` says where it is.

Values longer than ``max_field_chars`` are cut, not rejected: text values to that
many characters, tags/category strings before they are split. They are counted in
``counts["truncated_fields"]`` (over the rows each file read accepts).

Text files (CSV, TSV, JSONL) must be text: one with a UTF-16 or UTF-32 byte-order mark
is decoded; one that is binary, or in another encoding than UTF-8, is a
:class:`ListingsError` (see :mod:`weaklabel.textfile`).

Speed: a clean CSV/TSV file is checked for strict quoting with one regular-expression
scan, parsed once by pyarrow's multi-threaded reader and cleaned with vectorized
pandas operations (tags and category strings are split once per distinct value).
Lines to cut are replaced by marker lines before pyarrow reads the file. A file with
malformed records is read again single-threaded, which numbers them; a file with
invalid UTF-8 is read again as bytes and checked column by column. Only a file with
both problems, a malformed record spanning lines, or one that pyarrow cannot parse,
goes record by record through the Python parser (Python's ``csv`` module splits each
record, and rejects a field over 131,072 characters as ``malformed_line``). JSONL
files are parsed by pyarrow when they are clean and line by line otherwise.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import functools
import glob
import gzip
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from tqdm import tqdm

from ..perf import gc_paused
from ..textfile import SNIFF_BYTES, decode_text, not_text_reason, wide_encoding

Role = Literal["text", "tags", "category"]
ROLES: tuple[str, ...] = get_args(Role)

SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq",
    ".csv.gz", ".tsv.gz", ".jsonl.gz", ".ndjson.gz",
)
REJECTION_REASONS: tuple[str, ...] = (
    "malformed_line", "malformed_json", "undecodable_bytes",
    "missing_id", "duplicate_id", "empty_text",
)
REJECTED_SCHEMA = pa.schema([("source", pa.string()), ("row", pa.int64()), ("id", pa.string()),
                             ("reason", pa.string()), ("detail", pa.string()), ("raw", pa.string())])
REJECTED_COLUMNS: tuple[str, ...] = tuple(REJECTED_SCHEMA.names)
RAW_CHARS = 1000

_BOM = b"\xef\xbb\xbf"
_FIRST_BLOCK = 1 << 20          # pyarrow's default; grown when one record is larger
_MAX_BLOCK = 1 << 30
_CHECK_CHUNK = 1 << 24
_LINE_BREAK = re.compile(r"\r\n|\n|\r")


class ListingsError(ValueError):
    """A problem with the listing files or the column roles, worded for the user."""


# --------------------------------------------------------------------------- roles


@dataclass(frozen=True)
class Field:
    """One listing column that carries text, with its role and a weight in (0, 1]."""

    column: str
    role: Role
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column.strip():
            raise ListingsError(f"a field needs a column name, got {self.column!r}")
        if self.role not in ROLES:
            raise ListingsError(
                f"field {self.column!r}: unknown role {self.role!r}; "
                f"expected one of {', '.join(ROLES)}"
            )
        if not 0 < self.weight <= 1:
            raise ListingsError(
                f"field {self.column!r}: weight must satisfy 0 < weight <= 1, "
                f"got {self.weight}"
            )

    @classmethod
    def parse(cls, spec: str, role: Role) -> Field:
        """Parse ``"title"`` (weight 1) or ``"title:0.3"`` (weight 0.3)."""
        column, sep, weight = spec.rpartition(":")
        if not sep:
            return cls(spec.strip(), role)
        try:
            value = float(weight)
        except ValueError:
            raise ListingsError(
                f"field spec {spec!r}: weight {weight.strip()!r} is not a number "
                f"(write COLUMN or COLUMN:WEIGHT with 0 < WEIGHT <= 1)"
            ) from None
        return cls(column.strip(), role, value)


@dataclass(frozen=True)
class ColumnRoles:
    """Which columns of a listing dump hold the id, the image and the text fields."""

    fields: tuple[Field, ...]
    id: str = "id"
    image: str | None = "image"
    tag_separator: str = ","
    category_separator: str = ">"
    max_field_chars: int = 20_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        if not self.fields:
            raise ListingsError("column roles need at least one text, tags or category field")
        if not self.id:
            raise ListingsError("the id column name is empty")
        if not self.tag_separator or not self.category_separator:
            raise ListingsError("tag_separator and category_separator must be non-empty")
        if not isinstance(self.max_field_chars, int) or self.max_field_chars < 1:
            raise ListingsError(
                f"max_field_chars must be a positive integer, got {self.max_field_chars!r}"
            )
        self._check_field_columns()

    def _check_field_columns(self) -> None:
        seen: set[str] = set()
        for f in self.fields:
            if f.column in seen:
                raise ListingsError(f"column {f.column!r} is given more than one field role")
            if f.column in (self.id, self.image):
                raise ListingsError(
                    f"column {f.column!r} is the id or image column and cannot also be a field"
                )
            seen.add(f.column)

    @property
    def text_weights(self) -> dict[str, float]:
        """The free-text field columns, each with its weight."""
        return {f.column: f.weight for f in self.fields if f.role == "text"}

    @property
    def columns(self) -> list[str]:
        """The id, image (if set) and field columns, deduplicated, in that order."""
        names = [self.id, *([self.image] if self.image else []), *(f.column for f in self.fields)]
        return list(dict.fromkeys(names))

    def to_dict(self) -> dict:
        """A JSON-safe description, the inverse of :meth:`from_dict`."""
        return {
            "fields": [
                {"column": f.column, "role": f.role, "weight": f.weight} for f in self.fields
            ],
            "id": self.id,
            "image": self.image,
            "tag_separator": self.tag_separator,
            "category_separator": self.category_separator,
            "max_field_chars": self.max_field_chars,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ColumnRoles:
        """Build roles from :meth:`to_dict` output (e.g. a manifest or a config file)."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ListingsError(f"unknown column-role keys: {', '.join(sorted(unknown))}")
        try:
            fields = tuple(
                Field(f["column"], f["role"], float(f.get("weight", 1.0))) for f in d["fields"]
            )
        except (KeyError, TypeError) as e:
            raise ListingsError(
                f"column roles need 'fields': a list of {{column, role, weight}} ({e!r})"
            ) from None
        return cls(**{**d, "fields": fields})


@dataclass
class Listings:
    """Accepted listings, rejected records and counts, from one or more files.

    ``frame`` has a RangeIndex and every original column; the id, image and field
    columns are cleaned (see the module docstring). ``rejected`` has the columns
    :data:`REJECTED_COLUMNS`. ``roles`` are the roles the files were read with and
    ``origin`` (columns ``source``, ``row``; aligned with ``frame``) says which file
    and record each accepted row came from.
    """

    frame: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict
    files: list[Path]
    roles: ColumnRoles | None = None
    origin: pd.DataFrame | None = field(default=None, repr=False)


# ----------------------------------------------------------------- file discovery


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in SUPPORTED_SUFFIXES if name.endswith(s)), None)


def _unsupported(what: str) -> ListingsError:
    return ListingsError(f"{what}; supported listing files: {', '.join(SUPPORTED_SUFFIXES)}")


def _files_of(item: str | Path) -> list[Path]:
    text, path = str(item), Path(item)
    if not path.exists() and any(c in text for c in "*?["):
        matches = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
        found = [p for p in matches if p.is_file() and _suffix(p)]
        if not found:
            raise _unsupported(f"no listing files match {text!r}")
        return found
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and _suffix(p))
        if not found:
            raise _unsupported(f"no listing files directly inside directory {text!r}")
        return found
    if not path.exists():
        raise ListingsError(f"listing source {text!r} does not exist")
    if not _suffix(path):
        raise _unsupported(f"unsupported listing file {text!r}")
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
        raise _unsupported("no listing source given")
    files: dict[Path, Path] = {}
    for item in items:
        for path in _files_of(item):
            files.setdefault(path.resolve(), path)
    return list(files.values())


# ----------------------------------------------------------------------- decoding


@dataclass
class _Decoded:
    """Records parsed from one file, before validation.

    ``frame`` is indexed by record number; ``rejected`` holds (row, id, reason,
    detail, raw) tuples; ``delimiter`` renders rejected records as delimited lines,
    or as JSON when None.
    """

    frame: pd.DataFrame
    rejected: list[tuple[int, str | None, str, str, str]]
    rows_in: int
    delimiter: str | None


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.lower().endswith(".gz") else data


def _utf8_error(data: Any) -> str:
    """Why ``data`` is not valid UTF-8, or "" when it is (or is not bytes at all)."""
    if not isinstance(data, bytes):
        return ""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return str(e)
    return ""


def _clip(text: str) -> str:
    return text[:RAW_CHARS]


def _valid_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8, checked in chunks (no full copy as text)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), _CHECK_CHUNK):
            decoder.decode(view[start:start + _CHECK_CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


@functools.cache
def _record_pattern(delimiter: str, binary: bool) -> re.Pattern:
    """One strictly quoted record: fields separated by ``delimiter``, each either quoted (it ends
    at its closing quote, ``""`` inside stands for one quote, line breaks are allowed) or unquoted
    (no line break; in CSV no quote either, as RFC 4180 says; in TSV, whose writers often do not
    quote, a quote after the field's first character is text: ``12" pan``)."""
    d = re.escape(delimiter)
    unquoted = rf'[^"{d}\r\n]*+' if delimiter == "," else rf'(?:[^"{d}\r\n][^{d}\r\n]*+)?'
    field = rf'(?:"[^"]*+(?:""[^"]*+)*+"|{unquoted})'
    record = rf"{field}(?:{d}{field})*+"
    return re.compile(record.encode() if binary else record)


@functools.cache
def _file_pattern(delimiter: str, binary: bool) -> re.Pattern:
    """A run of strictly quoted records, each ending at a line break or at the end of the text."""
    record = _record_pattern(delimiter, binary).pattern
    pattern = rf"(?:{record}(?:\r\n|\n|\r|\Z))*+"
    return re.compile(pattern.encode() if binary else pattern)


def _strictly_quoted(data: bytes, delimiter: str) -> bool:
    """Whether every record of ``data`` is strictly quoted: then pyarrow reads it as the Python parser would."""
    return b'"' not in data or _file_pattern(delimiter, binary=True).fullmatch(data) is not None


def _cut_marker(fields: int, delimiter: str) -> str:
    """A line that stands for a cut line in the text given to pyarrow: one field too many, and a
    NUL, so that no line of a listing file is read as one by mistake."""
    return delimiter * fields + "\0"


def _mark_cut_lines(text: str, delimiter: str) -> tuple[str, str, list[tuple[str, str]]] | None:
    """``text`` with every line that :func:`_csv_records` cuts replaced by a marker line; the
    marker, and the (raw line, error) of each cut line in order. None when the header is cut."""
    runs, record = _file_pattern(delimiter, binary=False), _record_pattern(delimiter, binary=False)
    parts: list[str] = []
    cuts: list[tuple[str, str]] = []
    marker, start = "", 0
    while True:
        end = runs.match(text, start).end()
        parts.append(text[start:end])
        if end == len(text):
            return "".join(parts), marker, cuts
        if not marker:
            header = next(filter(None, csv.reader(io.StringIO(parts[0], newline=""), delimiter=delimiter)), None)
            if header is None:
                return None
            marker = _cut_marker(len(header), delimiter)
        _, raw, error, start = _cut_line(text, end, _quote_error(text, end, record.match(text, end).end(), delimiter))
        parts.append(marker + "\n")
        cuts.append((raw, error))


def _arrow_csv(
    source: pa.Buffer, delimiter: str, column_type: pa.DataType, numbered: bool
) -> tuple[pa.Table, list[tuple]]:
    """Read a delimited file with every column as ``column_type`` (string or binary).

    Without ``numbered`` the read is multi-threaded and fails on a malformed record.
    With it, the read is single-threaded and skips malformed records, returned as
    (number, text, expected, actual); only use it on valid UTF-8, because pyarrow
    cannot hand invalid UTF-8 to the handler. The read block grows when a single
    record is larger than a block.
    """
    block = _FIRST_BLOCK
    while True:
        try:
            return _arrow_csv_blocks(source, delimiter, column_type, numbered, block)
        except pa.ArrowInvalid as e:
            if "straddl" not in str(e) or block >= _MAX_BLOCK:
                raise
            block = min(block * 16, _MAX_BLOCK)


def _arrow_csv_blocks(
    source: pa.Buffer, delimiter: str, column_type: pa.DataType, numbered: bool, block: int
) -> tuple[pa.Table, list[tuple]]:
    bad: list[tuple] = []

    def on_invalid(row: Any) -> str:
        bad.append((row.number, row.text, row.expected_columns, row.actual_columns))
        return "skip"

    parse = pacsv.ParseOptions(
        delimiter=delimiter,
        newlines_in_values=True,
        invalid_row_handler=on_invalid if numbered else None,
    )
    read = pacsv.ReadOptions(use_threads=not numbered, block_size=block)
    with pacsv.open_csv(pa.BufferReader(source), read_options=read, parse_options=parse) as reader:
        names = reader.schema.names
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, column_type), strings_can_be_null=True, null_values=[""]
    )
    bad.clear()
    return pacsv.read_csv(pa.BufferReader(source), read, parse, convert), bad


def _arrow_csv_tiers(data: bytes, delimiter: str) -> tuple[pa.Table, list[tuple], pa.DataType]:
    """Try pyarrow readings from fastest to most forgiving; raise when none works.

    First text columns with no malformed records (the common case). After a
    failure: on valid UTF-8, text columns with malformed records skipped and
    numbered; otherwise bytes columns (still failing on malformed records).
    """
    source = pa.py_buffer(data)
    try:
        return (*_arrow_csv(source, delimiter, pa.string(), numbered=False), pa.string())
    except pa.ArrowException:
        if _valid_utf8(data):
            return (*_arrow_csv(source, delimiter, pa.string(), numbered=True), pa.string())
        return (*_arrow_csv(source, delimiter, pa.binary(), numbered=False), pa.binary())


def _read_delimited(path: Path, delimiter: str, roles: ColumnRoles) -> _Decoded:
    """Read a CSV/TSV file with pyarrow, or with the Python parser where pyarrow cannot.

    Lines that are not strictly quoted are cut (see :func:`_csv_records`) before pyarrow
    reads the file. The Python parser is needed for a file whose header is cut, that has
    invalid UTF-8 and malformed records, that has a malformed record spanning lines, or
    that pyarrow cannot parse at all.
    """
    data = _read_bytes(path)
    source, marker, cuts = data, "", []
    if not _strictly_quoted(data, delimiter):
        marked = _mark_cut_lines(_utf8_text(data), delimiter)
        if marked is None:
            return _read_delimited_python(path, _utf8_text(data), delimiter, roles)
        text, marker, cuts = marked
        source = _surrogates_to_bytes(text)
    try:
        table, bad, column_type = _arrow_csv_tiers(source, delimiter)
    except pa.ArrowException:
        return _read_delimited_python(path, _utf8_text(data), delimiter, roles)
    if any(_LINE_BREAK.search(line) for _, line, *_ in bad):
        return _read_delimited_python(path, _utf8_text(data), delimiter, roles)
    rows_in = table.num_rows + len(bad)
    bad_rows = [number - 2 for number, *_ in bad]  # numbers are 1-based and count the header
    malformed = _malformed(bad_rows, bad, marker, iter(cuts))
    rows = np.delete(np.arange(rows_in), bad_rows)
    binary = table.column_names if column_type == pa.binary() else []
    table, rows, undecodable = _drop_undecodable(table, binary, rows, roles.id, delimiter)
    frame = table.to_pandas()
    frame.index = rows
    return _Decoded(frame, malformed + undecodable, rows_in, delimiter)


def _malformed(
    rows: list[int], bad: list[tuple], marker: str, cuts: Iterator[tuple[str, str]]
) -> list[tuple[int, str | None, str, str, str]]:
    """Rejection records of the records pyarrow skipped; a marker line stands for the next cut line."""
    rejected = []
    for row, (_, text, expected, actual) in zip(rows, bad):
        raw, detail = next(cuts) if text == marker else (text, f"expected {expected} fields, got {actual}")
        rejected.append((row, None, "malformed_line", detail, _clip(_escaped(_surrogates_to_bytes(raw)))))
    return rejected


def _surrogates_to_bytes(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def _utf8_text(data: bytes) -> str:
    """Text with invalid UTF-8 bytes kept as surrogate escapes, so that each record is checked on its own."""
    return data.removeprefix(_BOM).decode("utf-8", errors="surrogateescape")


def _csv_records(text: str, delimiter: str) -> Iterator[tuple[list[str] | None, str, str]]:
    """(fields, raw text, parse error) per record, the header first; blank lines are skipped.

    A record must be strictly quoted (see :func:`_record_pattern`); a quoted field may
    span lines. A record that is not strictly quoted (a stray quote, a quote that is
    not closed where its field ends), or that spans lines and has not the header's
    number of fields, is cut at its first line end: that line comes with ``fields``
    None, and reading goes on at the next line. So a runaway quote costs its own line,
    never the records after it.
    """
    record = _record_pattern(delimiter, binary=False)
    expected, start = None, 0
    while start < len(text):
        end = record.match(text, start).end()
        line_break = _LINE_BREAK.match(text, end)
        if line_break is None and end < len(text):
            fields, raw, error, start = _cut_line(text, start, _quote_error(text, start, end, delimiter))
        else:
            raw, after = text[start:end], line_break.end() if line_break else end
            fields, error = _split_fields(raw, delimiter)
            if fields is not None and expected not in (None, len(fields)) and _LINE_BREAK.search(raw):
                detail = f"expected {expected} fields, got {len(fields)} over several lines: the first is read alone"
                fields, raw, error, after = _cut_line(text, start, detail)
            start = after
        if fields != []:
            expected = expected or len(fields or ())
            yield fields, raw, error


def _cut_line(text: str, start: int, error: str) -> tuple[None, str, str, int]:
    """The physical line at ``start`` as a rejected record, and where the next line starts."""
    line_break = _LINE_BREAK.search(text, start)
    if line_break is None:
        return None, text[start:], error, len(text)
    return None, text[start:line_break.start()], error, line_break.end()


def _quote_error(text: str, start: int, end: int, delimiter: str) -> str:
    """Why the record at ``start`` stops being strictly quoted at ``end``."""
    if _LINE_BREAK.search(text, start, end):
        return ("unclosed quote: a quoted field starting on this line does not end where a field ends "
                "on a later line, so this line is read alone")
    at = f"at character {end - start + 1} of the line"
    if text[end] != '"':
        return f"text after a closing quote {at} (quote the whole field and write a quote inside it as \"\")"
    if end == start or text[end - 1] == delimiter:
        return f"unclosed quote {at}"
    return f"stray quote {at} (quote the whole field and write a quote inside it as \"\")"


def _split_fields(raw: str, delimiter: str) -> tuple[list[str] | None, str]:
    """The fields of one strictly quoted record, or None and the ``csv`` module's error."""
    try:
        return next(csv.reader([raw], delimiter=delimiter, strict=True), []), ""
    except csv.Error as e:
        return None, str(e)


def _read_delimited_python(path: Path, text: str, delimiter: str, roles: ColumnRoles) -> _Decoded:
    """Slow path: parse record by record (see :func:`_csv_records`).

    ``text`` holds invalid UTF-8 bytes as surrogate escapes so that each record can be
    checked on its own; rejects keep the raw text of their record.
    """
    records = _csv_records(text, delimiter)
    header, _, error = next(records, ([], "", ""))
    if header is None:
        raise ListingsError(f"{path}: cannot parse the header line: {error}")
    if not header:
        return _Decoded(pd.DataFrame(), [], 0, delimiter)
    good: list[list[str | None]] = []
    rows: list[int] = []
    rejected: list[tuple[int, str | None, str, str, str]] = []
    with gc_paused():
        for row, (fields, raw, error) in enumerate(records):
            raw_bytes = _surrogates_to_bytes(raw)
            if fields is None or len(fields) != len(header):
                detail = error or f"expected {len(header)} fields, got {len(fields or ())}"
                rejected.append((row, None, "malformed_line", detail, _clip(_escaped(raw_bytes))))
            elif error := _utf8_error(raw_bytes):
                rid = dict(zip(header, fields)).get(roles.id) or None
                if rid and _utf8_error(_surrogates_to_bytes(rid)):
                    rid = None
                rejected.append((row, rid, "undecodable_bytes", error, _clip(_escaped(raw_bytes))))
            else:
                good.append([value or None for value in fields])
                rows.append(row)
    frame = pd.DataFrame(good, columns=header, index=rows, dtype=object)
    return _Decoded(frame, rejected, len(good) + len(rejected), delimiter)


def _escaped(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def _ints_to_str(table: pa.Table, names: Sequence[str]) -> pa.Table:
    """Cast integer role columns to text in Arrow, so that nulls never turn ids into floats."""
    for name in names:
        i = table.schema.get_field_index(name)
        if i >= 0 and pa.types.is_integer(table.schema.field(i).type):
            table = table.set_column(i, name, pc.cast(table.column(i), pa.string()))
    return table


def _read_jsonl(path: Path, roles: ColumnRoles) -> _Decoded:
    """Fast path: pyarrow's JSON reader; any error sends the file line by line.

    pyarrow does not check that JSON strings are valid UTF-8, so the table is
    validated in full (a fast scan) before it is trusted.
    """
    try:
        table = pajson.read_json(path)
        table.validate(full=True)
    except pa.ArrowException:
        return _read_jsonl_python(_read_bytes(path), roles)
    frame = _ints_to_str(table, roles.columns).to_pandas()
    return _Decoded(frame, [], len(frame), None)


def _read_jsonl_python(data: bytes, roles: ColumnRoles) -> _Decoded:
    """Parse one JSON object per non-blank line; reject the lines that are not."""
    records: list[dict] = []
    rows: list[int] = []
    rejected: list[tuple[int, str | None, str, str, str]] = []
    lines = (line for line in data.removeprefix(_BOM).splitlines() if line.strip())
    with gc_paused():
        for row, line in enumerate(lines):
            reason, detail, record = _parse_json_line(line)
            if record is None:
                rejected.append((row, None, reason, detail, _clip(_escaped(line))))
                continue
            value = record.get(roles.id)
            if isinstance(value, int) and not isinstance(value, bool):
                record[roles.id] = str(value)  # exact, even when the column also holds nulls
            records.append(record)
            rows.append(row)
    frame = pd.DataFrame(records, index=rows) if records else pd.DataFrame()
    return _Decoded(frame, rejected, len(records) + len(rejected), None)


def _parse_json_line(line: bytes) -> tuple[str, str, dict | None]:
    """Return ("", "", record) for a JSON object, else (reason, detail, None)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        return "undecodable_bytes", str(e), None
    try:
        value = json.loads(text)
    except ValueError as e:
        return "malformed_json", f"invalid JSON: {e}", None
    if not isinstance(value, dict):
        return "malformed_json", f"expected a JSON object, got {type(value).__name__}", None
    return "", "", value


def _read_parquet(path: Path, roles: ColumnRoles) -> _Decoded:
    """Read a Parquet file; role columns must hold valid UTF-8."""
    try:
        table = pq.read_table(path)
    except pa.ArrowException as e:
        raise ListingsError(f"cannot read Parquet file {path}: {e}") from None
    table, binary = _binary_columns(_ints_to_str(table, roles.columns), roles.columns)
    rows = np.arange(table.num_rows)
    table, rows, rejected = _drop_undecodable(table, binary, rows, roles.id, None)
    frame = table.to_pandas()
    frame.index = rows
    return _Decoded(frame, rejected, len(rows) + len(rejected), None)


def _drop_undecodable(
    table: pa.Table, binary: Sequence[str], rows: np.ndarray, id_column: str, delimiter: str | None
) -> tuple[pa.Table, np.ndarray, list[tuple[int, str | None, str, str, str]]]:
    """Reject the rows whose ``binary`` columns hold invalid UTF-8; cast those columns to text.

    ``rows`` are the record numbers of the table rows; the kept ones are returned.
    """
    bad = _undecodable_mask(table, binary)
    rejected = _undecodable_records(table, bad, binary, rows, id_column, delimiter)
    if rejected:
        table, rows = table.filter(pa.array(~bad)), rows[~bad]
    for i, name in enumerate(table.column_names):
        if name in binary:
            table = table.set_column(i, name, pc.cast(table.column(i), pa.string()))
    return table, rows, rejected


def _undecodable_mask(table: pa.Table, binary: Sequence[str]) -> np.ndarray:
    """Rows whose binary columns hold invalid UTF-8 (checked cell by cell only on failure)."""
    bad = np.zeros(table.num_rows, dtype=bool)
    for i, name in enumerate(table.column_names):
        if name not in binary:
            continue
        try:
            pc.cast(table.column(i), pa.string())
        except pa.ArrowInvalid:
            bad |= np.array([_utf8_error(v) != "" for v in table.column(i).to_pylist()])
    return bad


def _binary_columns(table: pa.Table, names: Sequence[str]) -> tuple[pa.Table, list[str]]:
    """Role columns that may hold invalid UTF-8, as binary.

    Those are bytes columns (e.g. Parquet written without a UTF-8 annotation) and
    string columns that fail Arrow's full validation.
    """
    binary = []
    for name in names:
        i = table.schema.get_field_index(name)
        if i < 0:
            continue
        column = table.column(i)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            try:
                column.validate(full=True)
                continue
            except pa.ArrowInvalid:
                table = table.set_column(i, name, column.cast(pa.large_binary()))
        elif not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
            continue
        binary.append(name)
    return table, binary


def _undecodable_records(
    table: pa.Table,
    bad: np.ndarray,
    binary: Sequence[str],
    rows: np.ndarray,
    id_column: str,
    delimiter: str | None,
) -> list[tuple[int, str | None, str, str, str]]:
    """Rejection records for the rows flagged by :func:`_undecodable_mask`."""
    if not bad.any():
        return []
    records = []
    for row, record in zip(rows[bad], table.filter(pa.array(bad)).to_pylist()):
        errors = [f"column {n!r}: {e}" for n in binary if (e := _utf8_error(record.get(n)))]
        rid = record.get(id_column)
        if isinstance(rid, bytes):
            rid = None if _utf8_error(rid) else rid.decode("utf-8")
        values = {k: _escaped(v) if isinstance(v, bytes) else v for k, v in record.items()}
        raw = _delimited_line(values.values(), delimiter) if delimiter else _json_record(values)
        records.append((int(row), rid or None, "undecodable_bytes", "; ".join(errors), _clip(raw)))
    return records


_DELIMITERS = {".csv": ",", ".tsv": "\t"}
_READERS = {
    ".csv": lambda p, r: _read_delimited(p, ",", r),
    ".tsv": lambda p, r: _read_delimited(p, "\t", r),
    ".jsonl": _read_jsonl,
    ".ndjson": _read_jsonl,
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
}
_TEXT_KINDS = (".csv", ".tsv", ".jsonl", ".ndjson")


def _decode(path: Path, roles: ColumnRoles) -> _Decoded:
    suffix = _suffix(path)
    if suffix is None:
        raise _unsupported(f"unsupported listing file {str(path)!r}")
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


def _read_wide(path: Path, kind: str, roles: ColumnRoles) -> _Decoded:
    """A UTF-16/32 text file, decoded in full and parsed by the Python readers."""
    text = decode_text(_read_bytes(path), path, f"a {_listing_kind(kind)}")
    if kind in _DELIMITERS:
        return _read_delimited_python(path, text, _DELIMITERS[kind], roles)
    return _read_jsonl_python(text.encode("utf-8"), roles)


# --------------------------------------------------------------------- validation


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _scalar_str(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _holds_text(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.StringDtype) or (
        s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")
    )


def _as_str(s: pd.Series) -> pd.Series:
    """Values as str with nulls as ""; integral floats lose ".0" (15970.0 -> "15970")."""
    if _holds_text(s):
        return s.fillna("").astype(str)
    if pd.api.types.is_float_dtype(s.dtype) and (s.dropna() % 1 == 0).all():
        s = s.astype("Int64")
    elif s.dtype == object:
        s = s.map(_scalar_str, na_action="ignore")
    return s.astype(object).where(s.notna(), "").astype(str)


def _clean_text(s: pd.Series, limit: int) -> tuple[pd.Series, pd.Series]:
    """Stripped text and a mask of the values cut to ``limit`` characters; a list (JSONL, Parquet)
    becomes its items, comma-separated, so no n-gram spans two of them."""
    if s.dtype == object:
        s = s.map(lambda v: ", ".join(_scalar_str(i) for i in v if not _is_null(i))
                  if isinstance(v, (list, tuple, np.ndarray)) else v)
    text = _as_str(s).str.strip()
    over = text.str.len() > limit
    if over.any():
        text = text.str.slice(0, limit).str.rstrip()
    return text, over


def _items(cell: Any, sep: str) -> list[str]:
    """Tags or category levels from a list/array, a JSON list string or a delimited string."""
    if isinstance(cell, str):
        parts: Any = cell.split(sep)
        if cell.lstrip().startswith("["):
            try:
                parsed = json.loads(cell)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                parts = [str(v) for v in parsed if not _is_null(v)]
    elif isinstance(cell, (list, tuple, np.ndarray)):
        parts = [str(v) for v in cell if not _is_null(v)]
    elif _is_null(cell):
        return []
    else:
        parts = [_scalar_str(cell)]
    return [p for p in map(str.strip, parts) if p]


def _clean_items(s: pd.Series, sep: str, limit: int) -> tuple[pd.Series, pd.Series]:
    """Lists of items and a mask of the string cells cut to ``limit`` before splitting."""
    if _holds_text(s):
        return _split_text(s.fillna(""), sep, limit)
    items = np.empty(len(s), dtype=object)
    over = np.zeros(len(s), dtype=bool)
    with gc_paused():
        for i, cell in enumerate(s.tolist()):
            if isinstance(cell, str) and len(cell) > limit:
                cell, over[i] = cell[:limit], True
            items[i] = _items(cell, sep)
    return pd.Series(items, index=s.index, dtype=object), pd.Series(over, index=s.index)


def _split_text(text: pd.Series, sep: str, limit: int) -> tuple[pd.Series, pd.Series]:
    """The all-strings case of :func:`_clean_items`.

    Tags and category strings repeat a lot, so each distinct string is parsed
    once; every row still gets its own list.
    """
    over = text.str.len() > limit
    if over.any():
        text = text.str.slice(0, limit)
    codes, uniques = pd.factorize(text)
    parsed = [_items(value, sep) for value in uniques]
    with gc_paused():
        items = [parsed[code][:] for code in codes.tolist()]
    return pd.Series(items, index=text.index, dtype=object), over


def _clean_fields(
    frame: pd.DataFrame, roles: ColumnRoles
) -> tuple[dict[str, pd.Series], pd.Series, pd.Series]:
    """Cleaned field columns, a has-content mask and a per-row count of cut values."""
    cleaned: dict[str, pd.Series] = {}
    content = pd.Series(False, index=frame.index)
    cut = pd.Series(0, index=frame.index)
    for f in roles.fields:
        if f.role == "text":
            values, over = _clean_text(frame[f.column], roles.max_field_chars)
            content |= values != ""
        else:
            sep = roles.tag_separator if f.role == "tags" else roles.category_separator
            values, over = _clean_items(frame[f.column], sep, roles.max_field_chars)
            content |= values.to_numpy().astype(bool)  # a list is true when not empty
        cleaned[f.column] = values
        cut += over.astype(int)
    return cleaned, content, cut


def _check_columns(frame: pd.DataFrame, roles: ColumnRoles, path: Path) -> None:
    """Raise a ListingsError naming each missing role column and a close match."""
    present = [str(c) for c in frame.columns]
    kinds = {f.column: f"{f.role} field" for f in roles.fields}
    kinds.update({roles.id: "id column", **({roles.image: "image column"} if roles.image else {})})
    problems = []
    for column in roles.columns:
        if column not in present:
            problems.append(f"{kinds[column]} {column!r} not found{_missing_column_hint(column, present, roles)}")
        elif present.count(column) > 1:
            problems.append(f"{kinds[column]} {column!r} appears more than once")
    if problems:
        shown = ", ".join(present[:50]) or "(none)"
        if len(present) > 50:
            shown += f", ... ({len(present) - 50} more)"
        raise ListingsError(f"{path}: {'; '.join(problems)}. Columns in the file: {shown}")


def _missing_column_hint(column: str, present: list[str], roles: ColumnRoles) -> str:
    by_lower = {c.lower(): c for c in reversed(present)}
    close = difflib.get_close_matches(column.lower(), list(by_lower), n=1, cutoff=0.5)
    if close:
        return f" (did you mean {by_lower[close[0]]!r}?)"
    if column == roles.image:
        return " (for listings without images: --image '', image = \"\" under [listings] in a pipeline file)"
    return ""


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return _escaped(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _json_record(record: dict) -> str:
    clean = {str(k): (None if _is_null(v) else v) for k, v in record.items()}
    return json.dumps(clean, default=_json_default, ensure_ascii=False)


def _delimited_line(values: Iterable[Any], delimiter: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")  # quotes \r and \n
    writer.writerow(["" if _is_null(v) else v for v in values])
    return out.getvalue().removesuffix("\r\n")


def _render_raw(rows: pd.DataFrame, delimiter: str | None) -> list[str]:
    """Rejected records as text: a delimited line, or a JSON object when ``delimiter`` is None."""
    if delimiter is None:
        return [_clip(_json_record(r)) for r in rows.to_dict("records")]
    return [_clip(_delimited_line(list(r), delimiter)) for r in rows.itertuples(index=False)]


def _rejected_frame(
    source: str, records: Sequence[tuple[int, str | None, str, str, str]]
) -> pd.DataFrame:
    """The rejected table for one file, sorted by record number."""
    records = sorted(records, key=lambda r: r[0])
    rows, ids, reasons, details, raws = zip(*records) if records else ((),) * 5
    return pd.DataFrame({
        "source": pd.Series([source] * len(records), dtype=object),
        "row": np.array(rows, dtype=np.int64),
        "id": pd.Series(list(ids), dtype=object),
        "reason": pd.Series(list(reasons), dtype=object),
        "detail": pd.Series(list(details), dtype=object),
        "raw": pd.Series(list(raws), dtype=object),
    })


def _rejects(
    decoded: _Decoded, ids: pd.Series, mask: pd.Series, reason: str, details: str | list[str]
) -> list[tuple[int, str | None, str, str, str]]:
    """Rejection records for the rows of ``mask``, with their raw text."""
    rows = decoded.frame.index[mask.to_numpy()]
    if len(rows) == 0:
        return []
    raws = _render_raw(decoded.frame.loc[rows], decoded.delimiter)
    rids = [None] * len(rows) if reason == "missing_id" else ids[mask].tolist()
    details = [details] * len(rows) if isinstance(details, str) else details
    return list(zip(rows.tolist(), rids, [reason] * len(rows), details, raws))


def _first_occurrence(ids: pd.Series, first: np.ndarray, dup: np.ndarray) -> np.ndarray:
    """For each duplicate id (``dup`` mask), the index label of its kept occurrence (``first``)."""
    values = ids.to_numpy()
    lookup = pd.Series(ids.index[first], index=values[first])
    return lookup.loc[values[dup]].to_numpy()


def _counts(rows_in: int, rows_out: int, reasons: Sequence[str], truncated: int) -> dict:
    rejected = dict.fromkeys(REJECTION_REASONS, 0) | Counter(reasons)
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rejected": rejected,
        "truncated_fields": truncated,
    }


def _reject_masks(ids: pd.Series, content: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Rows with a missing id, with no content, and repeating an id accepted earlier."""
    missing = ids == ""
    empty = ~missing & ~content
    candidates = ~missing & ~empty
    dup = pd.Series(False, index=ids.index)
    dup[candidates] = ids[candidates].duplicated()
    return missing, empty, dup


def _accepted(
    frame: pd.DataFrame,
    keep: pd.Series,
    ids: pd.Series,
    cleaned: dict[str, pd.Series],
    roles: ColumnRoles,
) -> pd.DataFrame:
    """The kept rows, with cleaned role columns, still indexed by record number."""
    out = frame.loc[keep.to_numpy()].copy(deep=False)
    out[roles.id] = ids[keep]
    for column, values in cleaned.items():
        out[column] = values[keep]
    if roles.image:
        out[roles.image] = _as_str(out[roles.image]).str.strip()
    return out


def _validate(decoded: _Decoded, roles: ColumnRoles, path: Path) -> Listings:
    """Clean the role columns and reject missing ids, empty text and duplicate ids."""
    source = str(path)
    ids = _as_str(decoded.frame[roles.id]).str.strip()
    cleaned, content, cut = _clean_fields(decoded.frame, roles)
    missing, empty, dup = _reject_masks(ids, content)
    keep = ~(missing | empty | dup)
    firsts = _first_occurrence(ids, keep.to_numpy(), dup.to_numpy()) if dup.any() else []
    dup_details = [f"id {i!r} first seen at row {r} of {source}" for i, r in zip(ids[dup], firsts)]
    rejected = [
        *decoded.rejected,
        *_rejects(decoded, ids, missing, "missing_id", f"id column {roles.id!r} is empty"),
        *_rejects(decoded, ids, empty, "empty_text", "every text/tags/category field is empty"),
        *_rejects(decoded, ids, dup, "duplicate_id", dup_details),
    ]
    out = _accepted(decoded.frame, keep, ids, cleaned, roles)
    rows = out.index.to_numpy(dtype=np.int64)
    origin = pd.DataFrame({"source": np.full(len(out), source, dtype=object), "row": rows})
    counts = _counts(decoded.rows_in, len(out), [r[2] for r in rejected], int(cut[keep].sum()))
    return Listings(
        out.reset_index(drop=True), _rejected_frame(source, rejected), counts, [path], roles, origin
    )


def read_listing_file(path: str | Path, roles: ColumnRoles) -> Listings:
    """Read, clean and validate one listing file (one partition).

    Duplicate ids are only checked within this file; :func:`read_listings` and
    :func:`concat_listings` check across files. Raises :class:`ListingsError` when
    the file cannot be read or a role column is missing.
    """
    path = Path(path)
    decoded = _decode(path, roles)
    _check_columns(decoded.frame, roles, path)
    return _validate(decoded, roles, path)


# ----------------------------------------------------------------------- combining


def _sum_counts(parts: Sequence[dict]) -> dict:
    rejected: Counter = Counter()
    for counts in parts:
        rejected.update(counts["rejected"])
    return {
        "rows_in": sum(c["rows_in"] for c in parts),
        "rows_out": sum(c["rows_out"] for c in parts),
        "rejected": dict.fromkeys(REJECTION_REASONS, 0) | dict(rejected),
        "truncated_fields": sum(c["truncated_fields"] for c in parts),
    }


def concat_listings(parts: Sequence[Listings]) -> Listings:
    """Concatenate listings in order, rejecting ids already accepted by an earlier part.

    The first accepted occurrence of an id wins. Parts must come from
    :func:`read_listing_file` (or this function) with equal roles. For a duplicate
    found here, ``raw`` is the cleaned record as JSON.
    """
    if not parts:
        raise ListingsError("concat_listings() needs at least one Listings")
    roles = parts[0].roles
    if roles is None or any(p.origin is None for p in parts):
        raise ListingsError(
            "concat_listings() needs Listings from read_listing_file() (with roles and origin)"
        )
    if any(p.roles != roles for p in parts):
        raise ListingsError("cannot concatenate listings read with different column roles")
    if len(parts) == 1:
        return parts[0]
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    origin = pd.concat([p.origin for p in parts], ignore_index=True)
    ids = frame[roles.id]
    dup = ids.duplicated().to_numpy()
    found = _cross_duplicates(frame, origin, ids, dup)
    files = [f for p in parts for f in p.files]
    counts = _sum_counts([p.counts for p in parts])
    counts["rows_out"] -= int(dup.sum())
    counts["rejected"]["duplicate_id"] += int(dup.sum())
    return Listings(
        frame[~dup].reset_index(drop=True),
        _sorted_rejects([*(p.rejected for p in parts), found], files),
        counts,
        files,
        roles,
        origin[~dup].reset_index(drop=True),
    )


def _cross_duplicates(
    frame: pd.DataFrame, origin: pd.DataFrame, ids: pd.Series, dup: np.ndarray
) -> pd.DataFrame:
    """Rejected rows for ids that an earlier part already accepted."""
    firsts = origin.loc[_first_occurrence(ids, ~dup, dup)] if dup.any() else origin.iloc[:0]
    details = [
        f"id {i!r} first seen at row {r} of {s}"
        for i, r, s in zip(ids[dup], firsts["row"], firsts["source"])
    ]
    return pd.DataFrame({
        "source": origin["source"].to_numpy()[dup].astype(object),
        "row": origin["row"].to_numpy()[dup].astype(np.int64),
        "id": ids.to_numpy()[dup].astype(object),
        "reason": np.array(["duplicate_id"] * int(dup.sum()), dtype=object),
        "detail": np.array(details, dtype=object),
        "raw": np.array(_render_raw(frame[dup], None), dtype=object),
    })


def _sorted_rejects(frames: list[pd.DataFrame], files: list[Path]) -> pd.DataFrame:
    """Rejected rows in file order, then record order."""
    rejected = pd.concat(frames, ignore_index=True)
    order = {str(f): i for i, f in enumerate(files)}
    rank = rejected["source"].map(order)
    rejected = rejected.assign(_rank=rank).sort_values(["_rank", "row"], kind="stable")
    return rejected.drop(columns="_rank").reset_index(drop=True)


def read_listings(
    source: str | Path | Sequence[str | Path], roles: ColumnRoles, *, progress: bool = False
) -> Listings:
    """Read every listing file of ``source`` (see :func:`list_listing_files`).

    Files are read one at a time (a tqdm bar over files when ``progress``) and
    concatenated in file order; duplicate ids across files are rejected too.
    """
    files = list_listing_files(source)
    bar = tqdm(files, desc="reading listings", unit="file", disable=not progress)
    return concat_listings([read_listing_file(path, roles) for path in bar])
