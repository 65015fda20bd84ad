"""Arrow columns made safe for pandas: integer ids as text, rows with invalid UTF-8 rejected."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .rejects import clip_raw, delimited_line, escaped, json_record, utf8_error


def ints_to_str(table: pa.Table, names: Sequence[str]) -> pa.Table:
    """Cast integer role columns to text in Arrow, so that nulls never turn ids into floats."""
    for name in names:
        i = table.schema.get_field_index(name)
        if i >= 0 and pa.types.is_integer(table.schema.field(i).type):
            table = table.set_column(i, name, pc.cast(table.column(i), pa.string()))
    return table


def binary_columns(table: pa.Table, names: Sequence[str]) -> tuple[pa.Table, list[str]]:
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


def drop_undecodable(
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
            bad |= np.array([utf8_error(v) != "" for v in table.column(i).to_pylist()])
    return bad


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
        errors = [f"column {n!r}: {e}" for n in binary if (e := utf8_error(record.get(n)))]
        rid = record.get(id_column)
        if isinstance(rid, bytes):
            rid = None if utf8_error(rid) else rid.decode("utf-8")
        values = {k: escaped(v) if isinstance(v, bytes) else v for k, v in record.items()}
        raw = delimited_line(values.values(), delimiter) if delimiter else json_record(values)
        records.append((int(row), rid or None, "undecodable_bytes", "; ".join(errors), clip_raw(raw)))
    return records
