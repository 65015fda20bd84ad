"""Term counts over listing files, one Dask partition per file (see :mod:`weaklabel.parallel`).

No process holds more than one file's listings, a sample of them (where boilerplate and facets are
found) and the ids of all of them (to reject an id a second file repeats); the counts are summed
(:meth:`TermCounts.combine`), so memory grows with the distinct terms, not the listings.

Each file is read three times: :func:`read_sample` reads it for its ids (and rejects), then for
its share of a uniform sample of the listings (those whose id hashes lowest);
:func:`count_terms` reads it again, drops the ids an earlier file accepted, strips the
boilerplate found on the sample and counts the terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..listings import ColumnRoles, Listings, concat_listings, read_listing_file
from ..parallel import iter_partitions, run_partitions
from .boilerplate import Boilerplate, StripCounts
from .terms import TermCounts
from .text import Analyzer


@dataclass(frozen=True)
class _File:
    """One listing file as a partition; ``repeated``: its ids an earlier file accepted first."""

    index: int
    path: str
    roles: dict
    repeated: frozenset[str] = frozenset()

    def read(self) -> pd.DataFrame:
        """The file's accepted listings, less the repeated ids."""
        listings = read_listing_file(self.path, ColumnRoles.from_dict(self.roles))
        frame = listings.frame
        return frame[~frame[listings.roles.id].isin(self.repeated)] if self.repeated else frame


@dataclass
class Sampled:
    """Every accepted listing's id (with the rejected rows and the counts of all files), and a
    uniform sample of the listings in file order (all of them when there are no more than asked)."""

    ids: Listings
    sample: pd.DataFrame
    files: list[_File]


def read_sample(files: Sequence[str | Path], roles: ColumnRoles, size: int, *, workers: int | None = None,
                scheduler: str | None = None, progress: bool = True) -> Sampled:
    """Read every file for its ids and rejects; then read the ``size`` listings whose id hashes lowest."""
    parallel = {"workers": workers, "scheduler": scheduler, "progress": progress}
    parts = [_File(i, str(f), roles.to_dict()) for i, f in enumerate(files)]
    slim = run_partitions(_ids_of, parts, desc="reading listings", **parallel)
    ids = concat_listings(slim)
    parts = [replace(part, repeated=frozenset(repeated)) for part, repeated in zip(parts, repeated_per_file(slim))]
    # a hash bound rather than lists of ids: what travels to the workers stays small
    bound = _hash_bound(ids.frame[roles.id], size)
    frames = run_partitions(partial(_sampled_rows, bound=bound), parts, desc="reading a sample", **parallel)
    return Sampled(ids, pd.concat(frames, ignore_index=True), parts)


def count_terms(sampled: Sampled, analyzer: Analyzer, boilerplate: Boilerplate, *, workers: int | None = None,
                scheduler: str | None = None,
                progress: bool = True) -> tuple[TermCounts, dict[str, StripCounts]]:
    """The term counts of every accepted listing, its boilerplate stripped, and what was stripped per field.

    Each file's counts are added to the total as they come, in file order: memory holds the total
    and the counts of files that finished early, not the counts of every file."""
    count = partial(_count_file, analyzer=analyzer, boilerplate=boilerplate)
    total: TermCounts | None = None
    stripped: dict[str, StripCounts] = {}
    for counts, removed in iter_partitions(count, sampled.files, workers=workers, scheduler=scheduler,
                                           progress=progress, desc="counting terms"):
        total = counts if total is None else TermCounts.combine([total, counts])
        for column, found in removed.items():
            before = stripped.get(column, StripCounts(0, 0))
            stripped[column] = StripCounts(before.listings + found.listings, before.words + found.words)
    return total, stripped


def _ids_of(part: _File) -> Listings:
    listings = read_listing_file(part.path, ColumnRoles.from_dict(part.roles))
    return Listings(listings.frame[[listings.roles.id]], listings.rejected, listings.counts, listings.files,
                    listings.roles, listings.origin)


def _sampled_rows(part: _File, bound: int) -> pd.DataFrame:
    frame = part.read()
    return frame[_id_hashes(frame[ColumnRoles.from_dict(part.roles).id]) <= bound]


def _count_file(part: _File, analyzer: Analyzer, boilerplate: Boilerplate) -> tuple[TermCounts, dict[str, StripCounts]]:
    frame, removed = boilerplate.strip_frame(part.read())
    return TermCounts.count(frame, ColumnRoles.from_dict(part.roles), analyzer), removed


def _id_hashes(ids: pd.Series) -> np.ndarray:
    return pd.util.hash_pandas_object(ids.astype(str), index=False).to_numpy()


def _hash_bound(ids: pd.Series, size: int) -> int:
    """The largest id hash of the sample: the ``size`` ids that hash lowest, a uniform sample that
    depends on the ids alone."""
    hashes = _id_hashes(ids)
    if len(hashes) <= size:
        return int(np.iinfo(np.uint64).max)
    return int(np.partition(hashes, size - 1)[size - 1])


def repeated_per_file(slim: list[Listings]) -> list[set[str]]:
    """Per file, its accepted ids that an earlier file accepted first (each file's own ids are distinct)."""
    ids = pd.concat([listings.frame.iloc[:, 0] for listings in slim], ignore_index=True)
    file_of = np.repeat(np.arange(len(slim)), [len(listings.frame) for listings in slim])
    again = ids.duplicated().to_numpy()
    repeated: list[set[str]] = [set() for _ in slim]
    for file, id_ in zip(file_of[again], ids[again]):
        repeated[file].add(id_)
    return repeated
