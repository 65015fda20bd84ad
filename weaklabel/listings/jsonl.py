"""Reading JSONL files: pyarrow's reader when the file is clean, line by line otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.json as pajson

from ..perf import gc_paused
from .arrow_columns import ints_to_str
from .files import BOM, read_bytes
from .rejects import clip_raw, escaped
from .results import Decoded
from .roles import ColumnRoles


def read_jsonl(path: Path, roles: ColumnRoles) -> Decoded:
    """Fast path: pyarrow's JSON reader; any error sends the file line by line.

    pyarrow does not check that JSON strings are valid UTF-8, so the table is
    validated in full (a fast scan) before it is trusted.
    """
    try:
        table = pajson.read_json(path)
        table.validate(full=True)
    except pa.ArrowException:
        return read_jsonl_python(read_bytes(path), roles)
    frame = ints_to_str(table, roles.columns).to_pandas()
    return Decoded(frame, [], len(frame), None)


def read_jsonl_python(data: bytes, roles: ColumnRoles) -> Decoded:
    """Parse one JSON object per non-blank line; reject the lines that are not."""
    records: list[dict] = []
    rows: list[int] = []
    rejected: list[tuple[int, str | None, str, str, str]] = []
    lines = (line for line in data.removeprefix(BOM).splitlines() if line.strip())
    with gc_paused():
        for row, line in enumerate(lines):
            reason, detail, record = _parse_json_line(line)
            if record is None:
                rejected.append((row, None, reason, detail, clip_raw(escaped(line))))
                continue
            value = record.get(roles.id)
            if isinstance(value, int) and not isinstance(value, bool):
                record[roles.id] = str(value)  # exact, even when the column also holds nulls
            records.append(record)
            rows.append(row)
    frame = pd.DataFrame(records, index=rows) if records else pd.DataFrame()
    return Decoded(frame, rejected, len(records) + len(rejected), None)


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
