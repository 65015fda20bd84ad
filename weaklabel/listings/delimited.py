"""Reading CSV/TSV files: pyarrow where it can, record by record in Python where it cannot.

A clean file is checked for strict quoting with one regular-expression scan (see
:mod:`weaklabel.listings.quoting`), parsed once by pyarrow's multi-threaded reader and cleaned with vectorized
pandas operations. Lines to cut are replaced by marker lines before pyarrow reads the file. A
file with malformed records is read again single-threaded, which numbers them; a file with
invalid UTF-8 is read again as bytes and checked column by column. Only a file with both
problems, a malformed record spanning lines, or one that pyarrow cannot parse, goes record by
record through the Python parser (Python's ``csv`` module splits each record, and rejects a field
over 131,072 characters as ``malformed_line``).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..perf import gc_paused
from .arrow_columns import drop_undecodable
from .files import BOM, read_bytes
from .quoting import LINE_BREAK, csv_records, mark_cut_lines, strictly_quoted
from .rejects import clip_raw, escaped, utf8_error
from .results import Decoded
from .roles import ColumnRoles, ListingsError

_FIRST_BLOCK = 1 << 20          # pyarrow's default; grown when one record is larger
_MAX_BLOCK = 1 << 30
_CHECK_CHUNK = 1 << 24


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


def read_delimited(path: Path, delimiter: str, roles: ColumnRoles) -> Decoded:
    """Read a CSV/TSV file with pyarrow, or with the Python parser where pyarrow cannot.

    Lines that are not strictly quoted are cut (see :func:`csv_records`) before pyarrow
    reads the file. The Python parser is needed for a file whose header is cut, that has
    invalid UTF-8 and malformed records, that has a malformed record spanning lines, or
    that pyarrow cannot parse at all.
    """
    data = read_bytes(path)
    source, marker, cuts = data, "", []
    if not strictly_quoted(data, delimiter):
        marked = mark_cut_lines(_utf8_text(data), delimiter)
        if marked is None:
            return read_delimited_python(path, _utf8_text(data), delimiter, roles)
        text, marker, cuts = marked
        source = _surrogates_to_bytes(text)
    try:
        table, bad, column_type = _arrow_csv_tiers(source, delimiter)
    except pa.ArrowException:
        return read_delimited_python(path, _utf8_text(data), delimiter, roles)
    if any(LINE_BREAK.search(line) for _, line, *_ in bad):
        return read_delimited_python(path, _utf8_text(data), delimiter, roles)
    rows_in = table.num_rows + len(bad)
    bad_rows = [number - 2 for number, *_ in bad]  # numbers are 1-based and count the header
    malformed = _malformed(bad_rows, bad, marker, iter(cuts))
    rows = np.delete(np.arange(rows_in), bad_rows)
    binary = table.column_names if column_type == pa.binary() else []
    table, rows, undecodable = drop_undecodable(table, binary, rows, roles.id, delimiter)
    frame = table.to_pandas()
    frame.index = rows
    return Decoded(frame, malformed + undecodable, rows_in, delimiter)


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


def _malformed(
    rows: list[int], bad: list[tuple], marker: str, cuts: Iterator[tuple[str, str]]
) -> list[tuple[int, str | None, str, str, str]]:
    """Rejection records of the records pyarrow skipped; a marker line stands for the next cut line."""
    rejected = []
    for row, (_, text, expected, actual) in zip(rows, bad):
        raw, detail = next(cuts) if text == marker else (text, f"expected {expected} fields, got {actual}")
        rejected.append((row, None, "malformed_line", detail, clip_raw(escaped(_surrogates_to_bytes(raw)))))
    return rejected


def _surrogates_to_bytes(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def _utf8_text(data: bytes) -> str:
    """Text with invalid UTF-8 bytes kept as surrogate escapes, so that each record is checked on its own."""
    return data.removeprefix(BOM).decode("utf-8", errors="surrogateescape")


def read_delimited_python(path: Path, text: str, delimiter: str, roles: ColumnRoles) -> Decoded:
    """Slow path: parse record by record (see :func:`csv_records`).

    ``text`` holds invalid UTF-8 bytes as surrogate escapes so that each record can be
    checked on its own; rejects keep the raw text of their record.
    """
    records = csv_records(text, delimiter)
    header, _, error = next(records, ([], "", ""))
    if header is None:
        raise ListingsError(f"{path}: cannot parse the header line: {error}")
    if not header:
        return Decoded(pd.DataFrame(), [], 0, delimiter)
    good: list[list[str | None]] = []
    rows: list[int] = []
    rejected: list[tuple[int, str | None, str, str, str]] = []
    with gc_paused():
        for row, (fields, raw, error) in enumerate(records):
            raw_bytes = _surrogates_to_bytes(raw)
            if fields is None or len(fields) != len(header):
                detail = error or f"expected {len(header)} fields, got {len(fields or ())}"
                rejected.append((row, None, "malformed_line", detail, clip_raw(escaped(raw_bytes))))
            elif error := utf8_error(raw_bytes):
                rid = dict(zip(header, fields)).get(roles.id) or None
                if rid and utf8_error(_surrogates_to_bytes(rid)):
                    rid = None
                rejected.append((row, rid, "undecodable_bytes", error, clip_raw(escaped(raw_bytes))))
            else:
                good.append([value or None for value in fields])
                rows.append(row)
    frame = pd.DataFrame(good, columns=header, index=rows, dtype=object)
    return Decoded(frame, rejected, len(good) + len(rejected), delimiter)
