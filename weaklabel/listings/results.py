"""What reading produces: the records of one file before validation, and the listings after."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .roles import ColumnRoles


@dataclass
class Decoded:
    """Records parsed from one file, before validation.

    ``frame`` is indexed by record number; ``rejected`` holds (row, id, reason,
    detail, raw) tuples; ``delimiter`` renders rejected records as delimited lines,
    or as JSON when None.
    """

    frame: pd.DataFrame
    rejected: list[tuple[int, str | None, str, str, str]]
    rows_in: int
    delimiter: str | None


@dataclass
class Listings:
    """Accepted listings, rejected records and counts, from one or more files.

    ``frame`` has a RangeIndex and every original column; the id, image and field
    columns are cleaned (see :mod:`weaklabel.listings`). ``rejected`` has the columns
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
