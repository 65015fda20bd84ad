"""The pipeline file and its runner: ``weaklabel run pipeline.toml``.

A pipeline file (TOML) describes a whole run, one table per stage besides ``[listings]``::

    out = "."                 # stage folders go here: vocab/ labeled/ shards/ train/ eval/ audit/ round2/
    [listings]                # input files and column roles (the options of `weaklabel vocab`)
    [vocab]                   # keyword arguments of VocabularyBuilder
    [assign]                  # of LabelAssigner and assign_labels
    [shards]                  # of write_shards
    [train]                   # fields of TrainConfig
    [eval]                    # of weaklabel.eval.evaluate, plus `checkpoint`
    [audit]                   # of weaklabel.audit.audit, plus `checkpoint`, `apply` and `warm_start`:
                              # with apply = true, stage round2 retrains on the audited labels and evaluates

A section takes the keyword arguments of its stage's Python function, with the same defaults, so
the Python API, the file and the README's tables say the same thing. Unknown keys and values of
the wrong type are errors that name the section, the key and the valid keys. Paths are relative
to the pipeline file.

**Skipping.** When a stage finishes, the runner adds a ``pipeline`` entry to its
``manifest.json``: the stage's resolved settings, fingerprints of its inputs (listing files
and word files by content, upstream artifacts by the hash of their manifest) and the weaklabel
version, with every path inside the pipeline file's folder relative to it, so that a project
folder moved or copied as a whole skips its stages. A later run skips the stage when that entry
equals what it would be now and the stage's outputs exist; an interrupted stage resumes only
under the same entry. A stage's manifest is removed before it runs, so a stage that failed or
was killed never looks finished; a stage that reruns writes a new manifest, so every stage after
it reruns too. Images are not fingerprinted: after changing image files, run with ``--force
shards``.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import time
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .artifacts import (
    MANIFEST,
    fingerprint_artifact,
    fingerprint_files,
    read_manifest,
    write_json,
)
from .folders import PIPELINE_PENDING as PENDING  # the record of a stage that started and has not finished
from .folders import folder_lock
from .listings import ColumnRoles
from .stage import SECTIONLESS, STAGES, Inputs, OptionTypes, dataclass_options, shown_path
from .stage import get as get_stage
from .textfile import read_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SECTIONS: tuple[str, ...] = ("listings", *(stage for stage in STAGES if stage not in SECTIONLESS))

LISTINGS_KEYS: OptionTypes = {
    "paths": ([], list[str]),
    "text": ([], list[str]),
    "tags": ([], list[str]),
    "category": ([], list[str]),
} | dataclass_options(ColumnRoles, exclude={"fields"})  # id, image, separators, max_field_chars
# path-valued keys, resolved against the pipeline file's folder ("maybe": only when that file exists)
PATHS: dict[str, tuple[str, ...]] = {"listings": ("paths",), "vocab": ("cache_dir",),
                                     "shards": ("images_root",), "train": ("weights",), "eval": ("embeddings",)}
MAYBE_PATHS: dict[str, tuple[str, ...]] = {"vocab": ("overrides", "blocklist", "allowlist", "stopwords", "model")}


class PipelineError(ValueError):
    """A problem with the pipeline file or the stage selection, worded for the user."""


class StageFailed(RuntimeError):
    """A stage raised; ``stage`` names it and the message lists the finished artifacts kept."""

    def __init__(self, stage: str, error: BaseException, kept: Mapping[str, Path]):
        self.stage = stage
        kept_text = ", ".join(f"{name} in {folder}" for name, folder in kept.items()) or "none"
        super().__init__(f"stage '{stage}' failed: {type(error).__name__}: {error}\n"
                         f"finished artifacts are kept: {kept_text}")


# --------------------------------------------------------------------------- the file


def section_keys(section: str) -> OptionTypes:
    """``{key: (default, type)}`` of a section: the keyword arguments of the stage's Python API."""
    if section == "listings":
        return dict(LISTINGS_KEYS)
    if section not in STAGES:
        raise PipelineError(f"unknown section [{section}]; sections are {', '.join(SECTIONS)}")
    return get_stage(section).options()


@dataclass(frozen=True)
class Pipeline:
    """A loaded pipeline file: the output folder and every section with its defaults filled in;
    ``base``: the folder its relative paths start from (the pipeline file's)."""

    out: Path
    sections: dict[str, dict[str, Any]]
    base: Path
    source: Path | None = None

    def __getitem__(self, section: str) -> dict[str, Any]:
        return {} if section in SECTIONLESS else self.sections[section]

    def folder(self, stage: str) -> Path:
        return self.out / get_stage(stage).folder

    def roles(self):
        """The listings section as :class:`~weaklabel.listings.ColumnRoles`."""
        from .listings import ROLES, ColumnRoles, Field

        s = self.sections["listings"]
        fields = tuple(Field.parse(spec, role) for role in ROLES for spec in s[role])
        return ColumnRoles(fields, id=s["id"], image=s["image"] or None, tag_separator=s["tag_separator"],
                           category_separator=s["category_separator"], max_field_chars=s["max_field_chars"])


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate a pipeline file; paths in it are relative to its folder."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"pipeline file {path} does not exist")
    try:
        data = tomllib.loads(read_text(path, "a pipeline file (TOML)"))
    except tomllib.TOMLDecodeError as error:
        raise PipelineError(f"{path} is not valid TOML: {error}") from None
    return parse_pipeline(data, base=path.resolve().parent, source=path)


def parse_pipeline(data: Mapping[str, Any], *, base: str | Path = ".", source: Path | None = None) -> Pipeline:
    """Validate a pipeline's tables (as ``tomllib`` gives them) and fill in the defaults."""
    where = f"{source}: " if source else ""
    base = Path(base).resolve()
    top = {"out": ".", **{k: v for k, v in data.items() if k not in SECTIONS}}
    _check_keys(where, "top level", top, {"out": (".", str)}, extra=SECTIONS)
    sections = {}
    for name in SECTIONS:
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise PipelineError(f"{where}[{name}] must be a table, got {type(table).__name__}")
        sections[name] = _load_section(where, name, table, base)
    pipeline = Pipeline(Path(_resolve(base, top["out"])), sections, base, source)
    _check_pipeline(where, pipeline)
    return pipeline


def _load_section(where: str, name: str, table: Mapping[str, Any], base: Path) -> dict[str, Any]:
    keys = section_keys(name)
    _check_keys(where, f"[{name}]", table, keys)
    values = {key: _coerce(value, keys[key][1]) for key, value in table.items()}
    for key in PATHS.get(name, ()):
        if values.get(key) is not None:
            values[key] = _resolve(base, values[key])
    for key in MAYBE_PATHS.get(name, ()):
        if isinstance(values.get(key), str) and values[key] and (base / values[key]).exists():
            values[key] = str(base / values[key])
    return {key: values.get(key, default) for key, (default, _) in keys.items()}


def _check_keys(where: str, name: str, table: Mapping[str, Any], keys: Mapping[str, tuple[Any, Any]],
                extra: Iterable[str] = ()) -> None:
    valid = list(keys)
    for key, value in table.items():
        if key not in keys:
            close = difflib.get_close_matches(key, [*valid, *extra], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PipelineError(f"{where}{name}: unknown key '{key}'{hint}; valid keys: {', '.join(valid)}")
        expected = keys[key][1]
        if not _is_type(value, expected):
            raise PipelineError(f"{where}{name}: {key} = {value!r} should be {_type_name(expected)}")


def _is_type(value: Any, tp: Any) -> bool:
    """Whether a TOML value fits a parameter's annotation (TOML has no null: None is never given)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_type(value, arg) for arg in args)
    if origin in (list, tuple, Sequence, Iterable, set, frozenset):
        return isinstance(value, list) and all(_is_type(v, args[0]) for v in value) if args else isinstance(value, list)
    if origin in (dict, Mapping):
        return isinstance(value, dict) and all(_is_type(v, args[1]) for v in value.values())
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is Path:
        return isinstance(value, str)
    return isinstance(tp, type) and isinstance(value, tp)


def _coerce(value: Any, tp: Any) -> Any:
    """An integer given for a float parameter becomes a float (so 1 and 1.0 are the same setting)."""
    if isinstance(value, int) and not isinstance(value, bool) and tp is float:
        return float(value)
    return value


def _type_name(tp: Any) -> str:
    text = str(tp).replace("typing.", "").replace("collections.abc.", "").replace("pathlib.", "")
    return text.replace("NoneType", "None").replace("<class '", "").replace("'>", "")


def _resolve(base: Path, value: str | list[str]) -> Any:
    if isinstance(value, list):
        return [_resolve(base, v) for v in value]
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _check_pipeline(where: str, pipeline: Pipeline) -> None:
    """Every section checked by its stage, then the checks across sections, so that a mistake
    anywhere stops the run before its first stage."""
    from .datasets.format import parse_splits

    if not pipeline["listings"]["paths"]:
        raise PipelineError(f"{where}[listings]: paths: name at least one listing file, folder or glob")
    try:
        pipeline.roles()
    except ValueError as error:
        raise PipelineError(f"{where}[listings] {error}") from None
    for name in STAGES:
        try:
            get_stage(name).check(pipeline[name])
        except ValueError as error:
            raise PipelineError(f"{where}[{name}] {error}") from None
    splits = parse_splits(pipeline["shards"]["splits"])
    carried = set(pipeline["shards"]["carry"])
    for spec in pipeline["train"]["tasks"]:
        if spec.split(":")[0] not in carried:
            raise PipelineError(f"{where}[train] tasks: {spec!r} needs its column in [shards] carry "
                                f"(carry = {sorted(carried)})")
    evaluation = pipeline["eval"]
    for name in ("split", "gallery_split"):
        if evaluation.get(name) is not None and evaluation[name] not in splits:
            raise PipelineError(f"{where}[eval] {name} = {evaluation[name]!r} is not a split of [shards] splits "
                                f"({', '.join(splits)})")
    for relevance in evaluation.get("relevance", ()):
        if relevance != "labels" and relevance not in carried:
            raise PipelineError(f"{where}[eval] relevance: {relevance!r} needs its column in [shards] carry "
                                f"(carry = {sorted(carried)})")


# --------------------------------------------------------------------------- the runner


@dataclass(frozen=True)
class StageResult:
    """What the runner did with one stage: ``status`` is "ran" or "skipped"."""

    stage: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    summary: str = ""


def run_pipeline(pipeline: Pipeline, *, force: Iterable[str] = (), start: str | None = None,
                 until: str | None = None, progress: bool = True,
                 echo: Callable[[str], None] = print) -> dict[str, StageResult]:
    """Run the stages in order, skipping those that are up to date (see the module docstring).

    ``force`` stages rerun even when up to date; ``start`` reruns that stage and runs the ones
    after it without checking the ones before (their artifacts must exist); ``until`` stops after
    that stage. A stage that raises becomes :class:`StageFailed`; finished artifacts stay.
    """
    first, last, forced = select_stages(force, start, until)
    for name in STAGES[:first]:
        _require_finished(pipeline, name, start)
    fingerprints = _Fingerprints()
    results: dict[str, StageResult] = {}
    for name in STAGES[first : last + 1]:
        why = get_stage(name).not_asked(pipeline.sections)
        if why:
            echo(f"{name}: not asked for ({why})")
            results[name] = StageResult(name, "skipped", why)
            continue
        results[name] = _run_or_skip(pipeline, name, name in forced, fingerprints, progress, echo)
    return results


def select_stages(force: Iterable[str], start: str | None, until: str | None) -> tuple[int, int, set[str]]:
    """``(first, last, forced)``: indexes into :data:`STAGES` and the stages to rerun regardless."""
    force = list(force)
    for option, name in [*(("--force", f) for f in force), ("--from", start), ("--until", until)]:
        if name is not None and name not in STAGES:
            raise PipelineError(f"{option} {name}: unknown stage; stages are {', '.join(STAGES)}")
    first = STAGES.index(start) if start else 0
    last = STAGES.index(until) if until else len(STAGES) - 1
    if first > last:
        raise PipelineError(f"--from {start} comes after --until {until}")
    outside = [f for f in force if not first <= STAGES.index(f) <= last]
    if outside:
        raise PipelineError(f"--force {outside[0]}: that stage is not among those selected "
                            f"({', '.join(STAGES[first:last + 1])})")
    return first, last, set(force) | ({start} if start else set())


def _require_finished(pipeline: Pipeline, name: str, start: str | None) -> None:
    if not (pipeline.folder(name) / MANIFEST).is_file():
        raise PipelineError(f"--from {start}: stage '{name}' has not finished ({pipeline.folder(name) / MANIFEST} "
                            "is missing); run the earlier stages first")


def _run_or_skip(pipeline: Pipeline, name: str, forced: bool, fingerprints: _Fingerprints, progress: bool,
                 echo: Callable[[str], None]) -> StageResult:
    record = _normalize(_stage_record(pipeline, name, fingerprints) | {"weaklabel_version": __version__})
    reason = "forced" if forced else stale_reason(pipeline.folder(name), name, record)
    if reason is None:
        echo(f"{name}: skipped (up to date)")
        return StageResult(name, "skipped")
    echo(f"{name}: running ({reason})")
    started = time.perf_counter()
    summary = "; ".join(_execute(pipeline, name, record, forced, progress))
    seconds = time.perf_counter() - started
    echo(f"{name}: done in {seconds:.1f} s: {summary}")
    return StageResult(name, "ran", reason, seconds, summary)


def stale_reason(folder: Path, stage: str, record: Mapping[str, Any]) -> str | None:
    """Why ``stage`` must run again in ``folder`` given its ``record`` (settings, input fingerprints
    and the weaklabel version); None when its manifest holds that same record and its outputs exist."""
    if not (folder / MANIFEST).is_file():
        return "its last run did not finish" if (folder / PENDING).is_file() else "not run yet"
    try:
        previous = read_manifest(folder, stage).get("pipeline")
    except ValueError as error:
        return str(error)
    if previous is None:
        return "its manifest was not written by 'weaklabel run'"
    if previous.get("weaklabel_version") != record["weaklabel_version"]:
        made_by = (f"weaklabel {previous['weaklabel_version']}" if "weaklabel_version" in previous
                   else "an earlier weaklabel")
        return f"made by {made_by} (this is {record['weaklabel_version']})"
    if previous.get("config") != record["config"]:
        return "settings changed: " + ", ".join(_changed_keys(previous.get("config") or {}, record["config"]))
    if previous.get("inputs") != record["inputs"]:
        return "inputs changed: " + ", ".join(_changed_inputs(previous.get("inputs") or [], record["inputs"]))
    missing = [pattern for pattern in get_stage(stage).outputs if not any(folder.glob(pattern))]
    return f"outputs missing: {', '.join(missing)}" if missing else None


def _changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [f"[{section}] {key}" for section in new for key in sorted({*old.get(section, {}), *new[section]})
            if old.get(section, {}).get(key) != new[section].get(key)]


def _changed_inputs(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    before = {entry["path"]: entry for entry in old}
    changed = [entry["path"] for entry in new if before.get(entry["path"]) != entry]
    return changed + [path for path in before if path not in {entry["path"] for entry in new}]


def _execute(pipeline: Pipeline, name: str, record: dict[str, Any], forced: bool, progress: bool) -> list[str]:
    """Run one stage into its folder; its summary lines."""
    stage, folder = get_stage(name), pipeline.folder(name)
    kept = {before: pipeline.folder(before) for before in STAGES[: STAGES.index(name)]
            if (pipeline.folder(before) / MANIFEST).is_file()}
    pending = folder / PENDING
    inputs = Inputs(tuple(pipeline["listings"]["paths"]), pipeline.roles(),
                    {before: pipeline.folder(before) for before in stage.upstream})
    options = dict(pipeline[name]) | {section: dict(pipeline[section]) for section in stage.reads}
    with folder_lock(folder):  # held before the folder is touched; the stage's own lock reuses it
        interrupted = not forced and pending.is_file() and json.loads(pending.read_text()) == record
        (folder / MANIFEST).unlink(missing_ok=True)
        write_json(pending, record)
        started = time.perf_counter()
        try:
            manifest = stage.run(inputs, folder, options, progress=progress, resume=interrupted)
        except Exception as error:
            raise StageFailed(name, error, kept) from error
        _record(folder, name, record, time.perf_counter() - started)
        pending.unlink()
    return stage.summary(folder, manifest)


def _record(folder: Path, stage: str, record: dict[str, Any], seconds: float) -> None:
    """Add the pipeline record to the stage's manifest (writing one if the stage did not)."""
    from .artifacts import write_manifest

    if not (folder / MANIFEST).is_file():
        write_manifest(folder, stage, config=record["config"], inputs=record["inputs"], counts={},
                       timings={"total": seconds})
    manifest = read_manifest(folder, stage)
    manifest["pipeline"] = record
    write_json(folder / MANIFEST, manifest)


def _normalize(value: Any) -> Any:
    """As JSON gives it back, so that a stored record compares equal to a fresh one."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


class _Fingerprints:
    """Input fingerprints, each file hashed once per run."""

    def __init__(self) -> None:
        self._files: dict[str, dict[str, Any]] = {}

    def files(self, paths: Iterable[str | Path]) -> list[dict[str, Any]]:
        found = []
        for path in paths:
            key = str(Path(path).resolve())
            if key not in self._files:
                self._files[key] = fingerprint_files([key])[0]
            found.append(self._files[key])
        return found

    def listings(self, pipeline: Pipeline) -> list[dict[str, Any]]:
        from .listings import list_listing_files

        return self.files(list_listing_files(pipeline["listings"]["paths"]))


# --------------------------------------------------------------------------- records: settings + inputs


def _stage_record(pipeline: Pipeline, name: str, fingerprints: _Fingerprints) -> dict[str, Any]:
    """What a stage's run depends on: its settings (and the listings section, for stages that read
    listings) and the fingerprints of its inputs (listing files, the files its options name, the
    manifests of the stages it reads), with the paths inside the project relative to it."""
    stage = get_stage(name)
    config = ({"listings": pipeline["listings"]} if stage.reads_listings else {}) | {
        section: _settings(pipeline, section) for section in (name, *stage.reads)}
    inputs = (fingerprints.listings(pipeline) if stage.reads_listings else []) + fingerprints.files(
        stage.files(pipeline[name])) + [_artifact(pipeline, before) for before in stage.upstream]
    base = pipeline.base
    return {"config": {section: _portable_settings(section, values, base) for section, values in config.items()},
            "inputs": [{**entry, "path": _portable(entry["path"], base)} for entry in inputs]}


def _settings(pipeline: Pipeline, section: str) -> dict[str, Any]:
    """A stage's section without the keys that change how it runs but not what it writes."""
    execution = get_stage(section).execution
    return {key: value for key, value in pipeline[section].items() if key not in execution}


def _portable_settings(section: str, settings: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """A section's settings with its paths made portable (see :func:`_portable`)."""
    path_keys = {*PATHS.get(section, ()), *MAYBE_PATHS.get(section, ())}
    return {key: _portable(value, base) if key in path_keys else value for key, value in settings.items()}


def _portable(value: Any, base: Path) -> Any:
    """A path (or list of paths) inside ``base`` relative to it, so that a project folder moved or
    copied as a whole keeps its records and skips its stages; a path outside stays absolute (the
    same files wherever the project goes). Anything else (a model name, None) is kept."""
    if isinstance(value, list):
        return [_portable(item, base) for item in value]
    if not isinstance(value, str) or not os.path.isabs(value):
        return value
    try:
        return Path(os.path.normpath(value)).relative_to(base).as_posix()
    except ValueError:
        return value


def _artifact(pipeline: Pipeline, stage: str) -> dict[str, Any]:
    """An upstream artifact's fingerprint; a missing one (not run yet) fingerprints as absent."""
    try:
        return fingerprint_artifact(pipeline.folder(stage))
    except FileNotFoundError:
        return {"path": str(pipeline.folder(stage)), "manifest_sha256": None}


# --------------------------------------------------------------------------- summaries


def summarize(pipeline: Pipeline, until: str | None = None) -> list[str]:
    """A few lines on what the finished artifacts hold (each stage's summary), then the reports.

    Stages after ``until`` were not run, so their artifacts (if any) may be stale: they are not shown.
    """
    shown = [name for name in (STAGES[: STAGES.index(until) + 1] if until else STAGES)
             if not get_stage(name).not_asked(pipeline.sections)]
    lines: list[str] = []
    for name in shown:
        folder = pipeline.folder(name)
        if (folder / MANIFEST).is_file():
            lines += [f"{name + ':':<8}{line}" for line in get_stage(name).summary(folder, read_manifest(folder))]
    reports = [pipeline.folder(stage) / name for stage, name in
               (("vocab", "report.html"), ("shards", "gallery.html"), ("eval", "report.html"),
                ("eval", "metrics.json"), ("audit", "report.html"), ("round2", "eval/report.html")) if stage in shown]
    found = [shown_path(path) for path in reports if path.is_file()]
    return lines + ([f"reports: {', '.join(found)}"] if found else [])
