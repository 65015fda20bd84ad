"""The one shape of every stage: all that the runner (``weaklabel run``) and the CLI know of one.

A stage reads listing files and the folders of the stages before it, writes one folder, and
returns that folder's manifest. Each stage package defines its :class:`Stage` beside its Python
API (``weaklabel.labeling.stages``: vocab and assign, ``weaklabel.datasets.stage``: shards,
``weaklabel.training.stage``: train, ``weaklabel.eval.stage``: eval); :func:`get` finds it by name
without importing the others.

A stage's options are the keys of its pipeline-file section, with the defaults and types of its
Python API (``options()``); ``check`` validates a whole section before any stage runs, so a
mistake in ``[shards]`` stops ``weaklabel run`` before vocab starts. :func:`listings_read`, :func:`by_reason`
and :func:`plural` word the counts that every summary states the same way (in = kept + rejected, by reason).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

STAGES: tuple[str, ...] = ("vocab", "assign", "shards", "train", "eval", "audit", "round2")
_HOMES = {"vocab": "weaklabel.labeling.stages:VOCAB", "assign": "weaklabel.labeling.stages:ASSIGN",
          "shards": "weaklabel.datasets.stage:SHARDS", "train": "weaklabel.training.stage:TRAIN",
          "eval": "weaklabel.eval.stage:EVAL", "audit": "weaklabel.audit.stage:AUDIT",
          "round2": "weaklabel.audit.round2:ROUND2"}

SECTIONLESS = frozenset({"round2"})  # stages with no settings of their own: no table in the pipeline file
OptionTypes = dict[str, tuple[Any, Any]]  # key -> (default, type)
PER_CALL = frozenset({"progress", "overwrite"})  # how one call behaves, never a setting of a stage


@dataclass(frozen=True)
class Inputs:
    """What a stage reads: listing files (and their column roles), and the folders of earlier stages."""

    listings: tuple[str, ...] = ()
    roles: Any = None  # weaklabel.listings.ColumnRoles
    folders: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """A stage: its name, its folder, what it reads, how it runs, and what a finished folder says.

    ``run(inputs, out, options, progress=, resume=)`` writes ``out`` and returns its manifest
    (``resume``: continue an interrupted run of the same settings where the stage can);
    ``summary(out, manifest)`` gives a few lines for a person; ``outputs`` are the globs a
    finished folder holds; ``execution`` the option keys that change how a stage runs but not what
    it writes; ``files(options)`` the files its options name (fingerprinted as inputs); ``reads``
    other sections of the pipeline file it runs with (given to ``run`` under their names, and part of
    its record); ``not_asked(sections)`` why the pipeline's sections leave the stage out (None: run it).
    """

    name: str
    folder: str
    upstream: tuple[str, ...]
    reads_listings: bool
    outputs: tuple[str, ...]
    options: Callable[[], OptionTypes]
    check: Callable[[Mapping[str, Any]], None]
    run: Callable[..., dict[str, Any]]
    summary: Callable[[Path, Mapping[str, Any]], list[str]]
    execution: tuple[str, ...] = ()
    files: Callable[[Mapping[str, Any]], list[str]] = lambda options: []
    reads: tuple[str, ...] = ()
    not_asked: Callable[[Mapping[str, Mapping[str, Any]]], str | None] = lambda sections: None


def get(name: str) -> Stage:
    """The stage called ``name`` (one of :data:`STAGES`)."""
    if name not in _HOMES:
        raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
    module, attribute = _HOMES[name].split(":")
    return getattr(import_module(module), attribute)


def signature_options(func: Callable, exclude: set[str]) -> OptionTypes:
    """``{key: (default, type)}``: the keyword arguments of ``func`` that have a default."""
    hints = typing.get_type_hints(func)
    return {name: (_plain(p.default), hints.get(name, Any)) for name, p in inspect.signature(func).parameters.items()
            if name not in exclude | PER_CALL and p.default is not inspect.Parameter.empty}


def dataclass_options(cls: type, exclude: set[str]) -> OptionTypes:
    """``{key: (default, type)}``: the fields of a dataclass of settings."""
    hints = typing.get_type_hints(cls)
    return {f.name: (_plain(f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default),
                     hints[f.name])
            for f in dataclasses.fields(cls) if f.name not in exclude | PER_CALL}


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and the noun in the number it takes: "1 shard", "3 shards" (``nouns``: an irregular plural)."""
    return f"{n} {noun}" if n == 1 else f"{n} {nouns or noun + 's'}"


def by_reason(rejected: Mapping[str, int]) -> str:
    """The reasons that rejected any row, as ' (duplicate_id 1, not_found 2)'; '' when none did."""
    reasons = ", ".join(f"{reason} {n}" for reason, n in rejected.items() if n)
    return f" ({reasons})" if reasons else ""


def listings_read(counts: Mapping[str, Any]) -> str:
    """How the listing rows a stage read were accounted for (rows_in = rows_out + rejected), as its summaries
    and reports say it: "301 listings read: 299 kept, 2 rejected (malformed_line 1, duplicate_id 1)"."""
    rejected = counts["rejected"]
    return (f"{plural(counts['rows_in'], 'listing')} read: {counts['rows_out']} kept, "
            f"{sum(rejected.values())} rejected{by_reason(rejected)}")


def shown_path(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _plain(value: Any) -> Any:
    """Defaults as a TOML file would give them: tuples as lists, paths as strings."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value
