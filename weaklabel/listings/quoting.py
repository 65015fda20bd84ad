"""Strict quoting of CSV/TSV records, and cutting the lines that break it.

Strictly quoted: a field that starts with a quote ends at its closing quote (``""`` inside is one
quote, line breaks are allowed), and only a delimiter or a line end follows it; an unquoted CSV
field holds no quote (RFC 4180), an unquoted TSV field may (``12" pan``). A record that is not
strictly quoted, or that spans lines and has the wrong number of fields, is cut at its first line
end: that line is rejected and the next line starts a new record.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterator

LINE_BREAK = re.compile(r"\r\n|\n|\r")


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


def strictly_quoted(data: bytes, delimiter: str) -> bool:
    """Whether every record of ``data`` is strictly quoted: then pyarrow reads it as the Python parser would."""
    return b'"' not in data or _file_pattern(delimiter, binary=True).fullmatch(data) is not None


def _cut_marker(fields: int, delimiter: str) -> str:
    """A line that stands for a cut line in the text given to pyarrow: one field too many, and a
    NUL, so that no line of a listing file is read as one by mistake."""
    return delimiter * fields + "\0"


def mark_cut_lines(text: str, delimiter: str) -> tuple[str, str, list[tuple[str, str]]] | None:
    """``text`` with every line that :func:`csv_records` cuts replaced by a marker line; the
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


def csv_records(text: str, delimiter: str) -> Iterator[tuple[list[str] | None, str, str]]:
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
        line_break = LINE_BREAK.match(text, end)
        if line_break is None and end < len(text):
            fields, raw, error, start = _cut_line(text, start, _quote_error(text, start, end, delimiter))
        else:
            raw, after = text[start:end], line_break.end() if line_break else end
            fields, error = _split_fields(raw, delimiter)
            if fields is not None and expected not in (None, len(fields)) and LINE_BREAK.search(raw):
                detail = f"expected {expected} fields, got {len(fields)} over several lines: the first is read alone"
                fields, raw, error, after = _cut_line(text, start, detail)
            start = after
        if fields != []:
            expected = expected or len(fields or ())
            yield fields, raw, error


def _cut_line(text: str, start: int, error: str) -> tuple[None, str, str, int]:
    """The physical line at ``start`` as a rejected record, and where the next line starts."""
    line_break = LINE_BREAK.search(text, start)
    if line_break is None:
        return None, text[start:], error, len(text)
    return None, text[start:line_break.start()], error, line_break.end()


def _quote_error(text: str, start: int, end: int, delimiter: str) -> str:
    """Why the record at ``start`` stops being strictly quoted at ``end``."""
    if LINE_BREAK.search(text, start, end):
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
