"""Rejected records: the reasons, the table they go to, their raw text, and the counts."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .cleaning import is_null

REJECTION_REASONS: tuple[str, ...] = (
    "malformed_line", "malformed_json", "undecodable_bytes",
    "missing_id", "duplicate_id", "empty_text",
)
REJECTED_LISTINGS_SCHEMA = pa.schema([("source", pa.string()), ("row", pa.int64()), ("id", pa.string()),
                                      ("reason", pa.string()), ("detail", pa.string()), ("raw", pa.string())])
REJECTED_COLUMNS: tuple[str, ...] = tuple(REJECTED_LISTINGS_SCHEMA.names)
RAW_CHARS = 1000


def utf8_error(data: Any) -> str:
    """Why ``data`` is not valid UTF-8, or "" when it is (or is not bytes at all)."""
    if not isinstance(data, bytes):
        return ""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return str(e)
    return ""


def clip_raw(text: str) -> str:
    """The first :data:`RAW_CHARS` characters of a rejected record's text."""
    return text[:RAW_CHARS]


def escaped(data: bytes) -> str:
    """Bytes as text, invalid UTF-8 written as ``\\x..`` escapes."""
    return data.decode("utf-8", errors="backslashreplace")


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return escaped(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def json_record(record: dict) -> str:
    """A record as one JSON object, nulls as ``null``."""
    clean = {str(k): (None if is_null(v) else v) for k, v in record.items()}
    return json.dumps(clean, default=_json_default, ensure_ascii=False)


def delimited_line(values: Iterable[Any], delimiter: str) -> str:
    """Values as one CSV/TSV line, quoted where needed, nulls empty."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")  # quotes \r and \n
    writer.writerow(["" if is_null(v) else v for v in values])
    return out.getvalue().removesuffix("\r\n")


def render_raw(rows: pd.DataFrame, delimiter: str | None) -> list[str]:
    """Rejected records as text: a delimited line, or a JSON object when ``delimiter`` is None."""
    if delimiter is None:
        return [clip_raw(json_record(r)) for r in rows.to_dict("records")]
    return [clip_raw(delimited_line(list(r), delimiter)) for r in rows.itertuples(index=False)]


def rejected_frame(
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


def file_counts(rows_in: int, rows_out: int, reasons: Sequence[str], truncated: int) -> dict:
    """The counts of one file read: rows in and out, rejections by reason, values cut."""
    rejected = dict.fromkeys(REJECTION_REASONS, 0) | Counter(reasons)
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rejected": rejected,
        "truncated_fields": truncated,
    }


def sum_counts(parts: Sequence[dict]) -> dict:
    """The counts of several reads added up."""
    rejected: Counter = Counter()
    for counts in parts:
        rejected.update(counts["rejected"])
    return {
        "rows_in": sum(c["rows_in"] for c in parts),
        "rows_out": sum(c["rows_out"] for c in parts),
        "rejected": dict.fromkeys(REJECTION_REASONS, 0) | dict(rejected),
        "truncated_fields": sum(c["truncated_fields"] for c in parts),
    }
