"""The pipeline file and its runner: ``weaklabel run pipeline.toml``.

A pipeline file (TOML) describes a whole run, one table per stage besides ``[listings]``::

    out = "."                 # stage folders go here: vocab/ labeled/ shards/ train/ eval/
    [listings]                # input files and column roles (the options of `weaklabel vocab`)
    [vocab]                   # keyword arguments of VocabularyBuilder
    [assign]                  # of LabelAssigner and assign_labels
    [shards]                  # of write_shards
    [train]                   # fields of TrainConfig
    [eval]                    # of weaklabel.eval.evaluate, plus `checkpoint`

A section takes the keyword arguments of its stage's Python function, with the same defaults, so
the Python API, the file and the README's tables say the same thing. Unknown keys and values of
the wrong type are errors that name the section, the key and the valid keys. Paths are relative
to the pipeline file.

**Skipping.** When a stage finishes, the runner adds a ``pipeline`` entry to its
``manifest.json``: the stage's resolved settings, fingerprints of its inputs (listing files
and word files by content, upstream artifacts by the hash of their manifest) and the weaklabel
version. A later run skips the stage when that entry equals what it would be now and the
stage's outputs exist; an interrupted stage resumes only under the same entry. A stage's
manifest is removed before it runs, so a stage that failed or was killed never looks finished;
a stage that reruns writes a new manifest, so every stage after it reruns too. Images are not
fingerprinted: after changing image files, run with ``--force shards``.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
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
from .textfile import read_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

STAGES: tuple[str, ...] = ("vocab", "assign", "shards", "train", "eval")
FOLDERS: dict[str, str] = {"vocab": "vocab", "assign": "labeled", "shards": "shards", "train": "train",
                           "eval": "eval"}
SECTIONS: tuple[str, ...] = ("listings", *STAGES)
# files a finished stage must still hold to be skipped (globs, relative to its folder)
OUTPUTS: dict[str, tuple[str, ...]] = {"vocab": ("labels.parquet",), "assign": ("parts/part-*.parquet",),
                                       "shards": ("_info.json",), "train": ("last.pt",),
                                       "eval": ("metrics.json",)}
# keys that change how a stage runs but not what it writes: changing them does not rerun it
EXECUTION: dict[str, tuple[str, ...]] = {"vocab": ("batch_size", "device", "cache_dir"),
                                         "assign": ("batch_size", "device", "workers", "scheduler"),
                                         "shards": ("fetch_threads", "workers", "scheduler")}

TRAIN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "config.json", MANIFEST)
CHECKPOINTS = ("last", "best")

LISTINGS_KEYS: dict[str, tuple[Any, Any]] = {
    "paths": ([], list[str]),
    "id": ("id", str),
    "image": ("image", str),
    "text": ([], list[str]),
    "tags": ([], list[str]),
    "category": ([], list[str]),
    "tag_separator": (",", str),
    "category_separator": (">", str),
    "max_field_chars": (20_000, int),
}
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


def section_keys(section: str) -> dict[str, tuple[Any, Any]]:
    """``{key: (default, type)}`` of a section: the keyword arguments of the stage's function."""
    if section == "listings":
        return dict(LISTINGS_KEYS)
    if section == "vocab":
        from .labeling import VocabularyBuilder

        return _signature_keys(VocabularyBuilder.__init__, exclude={"self", "roles", "progress"})
    if section == "assign":
        from .labeling import LabelAssigner, assign_labels

        return (_signature_keys(LabelAssigner.__init__, exclude={"self", "vocabulary", "roles"})
                | _signature_keys(assign_labels, exclude={"source", "vocab", "out", "roles", "progress"}))
    if section == "shards":
        from .datasets import write_shards

        return _signature_keys(write_shards, exclude={"labeled", "out", "progress"})
    if section == "train":
        from .training import TrainConfig

        hints = typing.get_type_hints(TrainConfig)
        return {f.name: (_field_default(f), hints[f.name]) for f in dataclasses.fields(TrainConfig)
                if f.name not in ("progress", "stop_after_steps")}
    if section == "eval":
        from .eval import evaluate

        keys = _signature_keys(evaluate, exclude={"checkpoints", "shards", "out", "progress"})
        return {"checkpoint": ("last", str)} | keys
    raise PipelineError(f"unknown section [{section}]; sections are {', '.join(SECTIONS)}")


def _signature_keys(func: Callable, exclude: set[str]) -> dict[str, tuple[Any, Any]]:
    hints = typing.get_type_hints(func)
    return {name: (_plain(p.default), hints.get(name, Any)) for name, p in inspect.signature(func).parameters.items()
            if name not in exclude | {"overwrite"} and p.default is not inspect.Parameter.empty}  # it owns its folders


def _field_default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _plain(value: Any) -> Any:
    """Defaults as a TOML file would give them: tuples as lists, paths as strings."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


@dataclass(frozen=True)
class Pipeline:
    """A loaded pipeline file: the output folder and every section with its defaults filled in."""

    out: Path
    sections: dict[str, dict[str, Any]]
    source: Path | None = None

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections[section]

    def folder(self, stage: str) -> Path:
        return self.out / FOLDERS[stage]

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
    pipeline = Pipeline(Path(_resolve(base, top["out"])), sections, source)
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
    """Checks across sections, so that a mistake stops the run before its first stage."""
    from .datasets.format import parse_splits

    if not pipeline["listings"]["paths"]:
        raise PipelineError(f"{where}[listings]: paths: name at least one listing file, folder or glob")
    try:
        pipeline.roles()
        splits = parse_splits(pipeline["shards"]["splits"])
        _train_config(pipeline)
        _check_files(pipeline)
    except ValueError as error:
        raise PipelineError(f"{where}{error}") from None
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
    if evaluation["checkpoint"] not in CHECKPOINTS:
        raise PipelineError(f"{where}[eval] checkpoint must be one of {', '.join(CHECKPOINTS)}, "
                            f"not {evaluation['checkpoint']!r}")


def _check_files(pipeline: Pipeline) -> None:
    """Read the overrides and weights files now, so that a bad one stops the run before its first stage."""
    from .labeling.overrides import Overrides

    try:
        Overrides.load(pipeline["vocab"]["overrides"])
    except ValueError as error:
        raise ValueError(f"[vocab] overrides: {error}") from None
    if pipeline["train"]["weights"]:
        from .training.models import read_weights

        try:
            read_weights(pipeline["train"]["weights"])
        except ValueError as error:
            raise ValueError(f"[train] weights: {error}") from None


def _train_config(pipeline: Pipeline):
    from .training import TrainConfig

    try:
        return TrainConfig(**pipeline["train"])
    except ValueError as error:
        raise ValueError(f"[train] {error}") from None


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
    record = _normalize(RECORDS[name](pipeline, fingerprints) | {"weaklabel_version": __version__})
    reason = "forced" if forced else stale_reason(pipeline.folder(name), name, record)
    if reason is None:
        echo(f"{name}: skipped (up to date)")
        return StageResult(name, "skipped")
    echo(f"{name}: running ({reason})")
    started = time.perf_counter()
    summary = _execute(pipeline, name, record, forced, progress)
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
        made_by = f"weaklabel {previous['weaklabel_version']}" if "weaklabel_version" in previous else "an earlier weaklabel"
        return f"made by {made_by} (this is {record['weaklabel_version']})"
    if previous.get("config") != record["config"]:
        return "settings changed: " + ", ".join(_changed_keys(previous.get("config") or {}, record["config"]))
    if previous.get("inputs") != record["inputs"]:
        return "inputs changed: " + ", ".join(_changed_inputs(previous.get("inputs") or [], record["inputs"]))
    missing = [pattern for pattern in OUTPUTS[stage] if not any(folder.glob(pattern))]
    return f"outputs missing: {', '.join(missing)}" if missing else None


def _changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [f"[{section}] {key}" for section in new for key in sorted({*old.get(section, {}), *new[section]})
            if old.get(section, {}).get(key) != new[section].get(key)]


def _changed_inputs(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    before = {entry["path"]: entry for entry in old}
    changed = [entry["path"] for entry in new if before.get(entry["path"]) != entry]
    return changed + [path for path in before if path not in {entry["path"] for entry in new}]


def _execute(pipeline: Pipeline, name: str, record: dict[str, Any], forced: bool, progress: bool) -> str:
    folder = pipeline.folder(name)
    kept = {stage: pipeline.folder(stage) for stage in STAGES[: STAGES.index(name)]
            if (pipeline.folder(stage) / MANIFEST).is_file()}
    pending = folder / PENDING
    with folder_lock(folder):  # held before the folder is touched; the stage's own lock reuses it
        interrupted = not forced and pending.is_file() and json.loads(pending.read_text()) == record
        (folder / MANIFEST).unlink(missing_ok=True)
        write_json(pending, record)
        started = time.perf_counter()
        try:
            summary = RUNNERS[name](pipeline, progress, interrupted)
        except Exception as error:
            raise StageFailed(name, error, kept) from error
        _record(folder, name, record, time.perf_counter() - started)
        pending.unlink()
    return summary


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


def _vocab_record(p: Pipeline, fp: _Fingerprints) -> dict[str, Any]:
    return {"config": {"listings": p["listings"], "vocab": _settings(p, "vocab")},
            "inputs": fp.listings(p) + fp.files(_word_files(p["vocab"]))}


def _assign_record(p: Pipeline, fp: _Fingerprints) -> dict[str, Any]:
    return {"config": {"listings": p["listings"], "assign": _settings(p, "assign")},
            "inputs": fp.listings(p) + [_artifact(p, "vocab")]}


def _shards_record(p: Pipeline, fp: _Fingerprints) -> dict[str, Any]:
    return {"config": {"shards": _settings(p, "shards")}, "inputs": [_artifact(p, "assign")]}


def _train_record(p: Pipeline, fp: _Fingerprints) -> dict[str, Any]:
    weights = [p["train"]["weights"]] if p["train"]["weights"] else []
    return {"config": {"train": p["train"]}, "inputs": [_artifact(p, "shards")] + fp.files(weights)}


def _eval_record(p: Pipeline, fp: _Fingerprints) -> dict[str, Any]:
    return {"config": {"eval": p["eval"]},
            "inputs": [_artifact(p, "train"), _artifact(p, "shards")] + fp.files(p["eval"].get("embeddings") or ())}


def _settings(pipeline: Pipeline, section: str) -> dict[str, Any]:
    """A section less the keys that only say how a stage runs, not what it makes (see EXECUTION)."""
    return {key: value for key, value in pipeline[section].items() if key not in EXECUTION.get(section, ())}


def _artifact(pipeline: Pipeline, stage: str) -> dict[str, Any]:
    """An upstream artifact's fingerprint; a missing one (not run yet) fingerprints as absent."""
    try:
        return fingerprint_artifact(pipeline.folder(stage))
    except FileNotFoundError:
        return {"path": str(pipeline.folder(stage)), "manifest_sha256": None}


def _word_files(vocab: Mapping[str, Any]) -> list[str]:
    """The files the vocab section names (overrides, word lists), fingerprinted as inputs."""
    return [vocab[key] for key in ("overrides", "blocklist", "allowlist", "stopwords")
            if isinstance(vocab[key], str) and Path(vocab[key]).is_file()]


RECORDS: dict[str, Callable[[Pipeline, _Fingerprints], dict[str, Any]]] = {
    "vocab": _vocab_record, "assign": _assign_record, "shards": _shards_record, "train": _train_record,
    "eval": _eval_record}


# --------------------------------------------------------------------------- running each stage


def _run_vocab(p: Pipeline, progress: bool, interrupted: bool) -> str:
    from .labeling import build_vocabulary
    from .labeling.stages import describe_vocabulary

    params = dict(p["vocab"])
    for key in ("blocklist", "allowlist"):
        if isinstance(params[key], str):
            params[key] = _read_words(params[key])
    stopwords = params["stopwords"]
    if stopwords == "none":
        params["stopwords"] = None
    elif isinstance(stopwords, str) and Path(stopwords).is_file():
        params["stopwords"] = _read_words(stopwords)
    params["ngram_range"] = tuple(params["ngram_range"])
    params["tier_mass"] = tuple(params["tier_mass"])
    vocabulary = build_vocabulary(p["listings"]["paths"], p.roles(), p.folder("vocab"), progress=progress, **params)
    return "; ".join(describe_vocabulary(vocabulary))


def _read_words(path: str) -> list[str]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _run_assign(p: Pipeline, progress: bool, interrupted: bool) -> str:
    from .labeling import assign_labels

    coverage = assign_labels(p["listings"]["paths"], p.folder("vocab"), p.folder("assign"), roles=p.roles(),
                             progress=progress, **p["assign"])
    return (f"{coverage['listings_labelled']} listings labelled, {coverage['listings_unlabelled']} without a label "
            f"({coverage['labels_per_listing_mean']:.2f} labels each)")


def _run_shards(p: Pipeline, progress: bool, interrupted: bool) -> str:
    from .datasets import write_shards

    manifest = write_shards(p.folder("assign"), p.folder("shards"), progress=progress, **p["shards"])
    return _shards_line(manifest)


def _shards_line(manifest: Mapping[str, Any]) -> str:
    splits = manifest["outputs"]["splits"]
    shards = sum(len(split["shards"]) for split in splits.values())
    rejected = manifest["counts"]["rejected_total"]
    return (", ".join(f"{name} {split['samples']}" for name, split in splits.items())
            + f" samples in {shards} shards; {rejected} listing{'' if rejected == 1 else 's'} rejected")


def _run_train(p: Pipeline, progress: bool, interrupted: bool) -> str:
    from .training import train

    folder = p.folder("train")
    if not interrupted:
        for name in TRAIN_FILES:
            (folder / name).unlink(missing_ok=True)
    resume = interrupted and (folder / "last.pt").is_file()
    result = train(p.folder("shards"), folder, resume=resume, progress=progress, **p["train"])
    return ("resumed; " if resume else "") + _curve_line(folder, result)


def _run_eval(p: Pipeline, progress: bool, interrupted: bool) -> str:
    from .eval import evaluate

    params = dict(p["eval"])
    checkpoint = p.folder("train") / f"{params.pop('checkpoint')}.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint} does not exist (best.pt needs a val split in [shards] splits); "
                                "set [eval] checkpoint = \"last\"")
    result = evaluate([checkpoint], p.folder("shards"), p.folder("eval"), progress=progress, **params)
    return "; ".join(_retrieval_lines(result))


RUNNERS: dict[str, Callable[[Pipeline, bool, bool], str]] = {
    "vocab": _run_vocab, "assign": _run_assign, "shards": _run_shards, "train": _run_train, "eval": _run_eval}


# --------------------------------------------------------------------------- summaries


def summarize(pipeline: Pipeline, until: str | None = None) -> list[str]:
    """A few lines on what the finished artifacts hold: labels, shards, training curve, retrieval, reports.

    Stages after ``until`` were not run, so their artifacts (if any) may be stale: they are not shown.
    """
    shown = STAGES[: STAGES.index(until) + 1] if until else STAGES
    lines: list[str] = []
    for stage in shown:
        folder = pipeline.folder(stage)
        if (folder / MANIFEST).is_file():
            lines += SUMMARIES[stage](folder, read_manifest(folder))
    reports = [pipeline.folder(stage) / name for stage, name in
               (("vocab", "report.html"), ("eval", "report.html"), ("eval", "metrics.json")) if stage in shown]
    found = [_shown(path) for path in reports if path.is_file()]
    return lines + ([f"reports:   {', '.join(found)}"] if found else [])


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _vocab_summary(folder: Path, manifest: Mapping[str, Any]) -> list[str]:
    tiers = manifest["outputs"].get("tiers", {})
    line = (f"labels:    {manifest['outputs']['labels']} (head {tiers.get('head', 0)}, "
            f"torso {tiers.get('torso', 0)}, tail {tiers.get('tail', 0)}) from {manifest['counts']['rows_out']} listings")
    return [line]


def _assign_summary(folder: Path, manifest: Mapping[str, Any]) -> list[str]:
    counts = manifest["counts"]
    return [f"labelled:  {counts['listings_labelled']} listings ({counts['coverage']:.1%}), "
            + f"{counts['labels_per_listing_mean']:.2f} labels each"]


def _shards_summary(folder: Path, manifest: Mapping[str, Any]) -> list[str]:
    return [f"shards:    {_shards_line(manifest)} ({_shown(folder)})"]


def _train_summary(folder: Path, manifest: Mapping[str, Any]) -> list[str]:
    config = manifest["config"]
    return [f"training:  {config['model']} at {config['image_size']} px, "
            + _curve_line(folder, manifest["outputs"].get("metrics", {}))]


def _curve_line(folder: Path, result: Mapping[str, Any], points: int = 6) -> str:
    """Steps, the training loss at a few evenly spaced logged steps, and the last validation mAP."""
    path = folder / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    train = [row for row in rows if row.get("kind") == "train"]
    shown = min(points, len(train))
    picked = [train[round(i * (len(train) - 1) / max(shown - 1, 1))] for i in range(shown)]
    curve = ", ".join(f"{row['step']}: {row['loss']:.3g}" for row in picked)
    text = f"{result.get('step', 0)} steps" + (f"; loss by step {curve}" if curve else "")
    return text + (f"; val mAP {result['val_map']:.3f}" if isinstance(result.get("val_map"), float) else "")


def _eval_summary(folder: Path, manifest: Mapping[str, Any]) -> list[str]:
    path = folder / "metrics.json"
    if not path.is_file():
        return []
    return ["retrieval: " + line for line in _retrieval_lines(json.loads(path.read_text()))]


def _retrieval_lines(result: Mapping[str, Any]) -> list[str]:
    """One line per model and relevance: Recall@1/10 and mAP@10 overall, Recall@1 on the tail tier."""
    lines = []
    models = result.get("models", {})
    for model, metrics in models.items():
        for relevance, scores in metrics.get("retrieval", {}).items():
            overall = scores["overall"]
            tail = scores.get("tiers", {}).get("tail")
            lines.append((f"{model}, " if len(models) > 1 else "") + f"relevance '{relevance}': "
                         f"R@1 {_metric(overall['recall@1'])}, R@10 {_metric(overall['recall@10'])}, "
                         f"mAP@10 {_metric(overall['map@10'])} over {overall['queries']} queries"
                         + (f"; tail R@1 {_metric(tail['recall@1'])}" if tail and tail.get("queries") else ""))
    return lines


def _metric(value: float | None) -> str:
    """A metric to 3 decimals; n/a where it is undefined (no query had a relevant item)."""
    return "n/a" if value is None else f"{value:.3f}"


SUMMARIES: dict[str, Callable[[Path, Mapping[str, Any]], list[str]]] = {
    "vocab": _vocab_summary, "assign": _assign_summary, "shards": _shards_summary, "train": _train_summary,
    "eval": _eval_summary}
