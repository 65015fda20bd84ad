"""Cleaning role columns: text to stripped ``str``, tags and categories to ``list[str]``, cut to a limit."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from ..perf import gc_paused
from .roles import ColumnRoles


def is_null(value: Any) -> bool:
    """Whether ``value`` is None, pandas' NA or a float NaN."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _scalar_str(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _holds_text(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.StringDtype) or (
        s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")
    )


def as_str(s: pd.Series) -> pd.Series:
    """Values as str with nulls as ""; integral floats lose ".0" (15970.0 -> "15970")."""
    if _holds_text(s):
        return s.fillna("").astype(str)
    if pd.api.types.is_float_dtype(s.dtype) and (s.dropna() % 1 == 0).all():
        s = s.astype("Int64")
    elif s.dtype == object:
        s = s.map(_scalar_str, na_action="ignore")
    return s.astype(object).where(s.notna(), "").astype(str)


def clean_fields(
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


def _clean_text(s: pd.Series, limit: int) -> tuple[pd.Series, pd.Series]:
    """Stripped text and a mask of the values cut to ``limit`` characters; a list (JSONL, Parquet)
    becomes its items, comma-separated, so no n-gram spans two of them."""
    if s.dtype == object:
        s = s.map(lambda v: ", ".join(_scalar_str(i) for i in v if not is_null(i))
                  if isinstance(v, (list, tuple, np.ndarray)) else v)
    text = as_str(s).str.strip()
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
                parts = [str(v) for v in parsed if not is_null(v)]
    elif isinstance(cell, (list, tuple, np.ndarray)):
        parts = [str(v) for v in cell if not is_null(v)]
    elif is_null(cell):
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
