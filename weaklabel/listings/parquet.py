"""Reading Parquet files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .arrow_columns import binary_columns, drop_undecodable, ints_to_str
from .results import Decoded
from .roles import ColumnRoles, ListingsError


def read_parquet(path: Path, roles: ColumnRoles) -> Decoded:
    """Read a Parquet file; role columns must hold valid UTF-8."""
    try:
        table = pq.read_table(path)
    except pa.ArrowException as e:
        raise ListingsError(f"cannot read Parquet file {path}: {e}") from None
    table, binary = binary_columns(ints_to_str(table, roles.columns), roles.columns)
    rows = np.arange(table.num_rows)
    table, rows, rejected = drop_undecodable(table, binary, rows, roles.id, None)
    frame = table.to_pandas()
    frame.index = rows
    return Decoded(frame, rejected, len(rows) + len(rejected), None)
