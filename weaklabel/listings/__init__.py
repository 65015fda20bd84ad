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
"""

from .combine import concat_listings
from .files import SUPPORTED_SUFFIXES, list_listing_files
from .read import read_listing_file, read_listings
from .rejects import RAW_CHARS, REJECTED_COLUMNS, REJECTED_LISTINGS_SCHEMA, REJECTION_REASONS
from .results import Listings
from .roles import ROLES, ColumnRoles, Field, ListingsError, Role

__all__ = [
    "RAW_CHARS", "REJECTED_COLUMNS", "REJECTED_LISTINGS_SCHEMA", "REJECTION_REASONS", "ROLES",
    "SUPPORTED_SUFFIXES",
    "ColumnRoles", "Field", "Listings", "ListingsError", "Role",
    "concat_listings", "list_listing_files", "read_listing_file", "read_listings",
]
