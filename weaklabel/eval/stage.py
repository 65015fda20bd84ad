"""``evaluate``: the evaluation stage (``weaklabel eval``) over checkpoints and precomputed embeddings.

For each model: the embeddings of the evaluated split (and of the gallery split) are computed once
with ``weaklabel.training.embed`` and cached under ``out/embeddings/``; every query of the split
searches the gallery exactly (``weaklabel.search.exact_search``); the retrieval metrics follow for each
relevance definition, overall and per tier; the task heads' classification metrics are computed
from the cached embeddings (the heads read the embedding, so no second pass over the images);
then each facet head's top-1 and the retrieval among the items of its facet, the probes and the
efficiency figures. ``metrics.json``, ``queries.parquet`` (every query's metrics, for paired
comparisons of models), ``report.html`` and ``manifest.json`` are written to ``out``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..artifacts import (
    MANIFEST,
    Timer,
    fingerprint_files,
    read_embeddings,
    read_manifest,
    sha256_file,
    write_json,
    write_manifest,
)
from ..datasets.loader import ShardInfo
from ..facets import FACETS_FIELD, label_in_facet
from ..folders import Outputs, output_folder
from ..search import Neighbours
from ..stage import Inputs, OptionTypes, Stage, plural, signature_options
from ..tiers import label_tiers, rarest_tier, value_tiers
from ..training.checkpoint import run_checkpoint
from ..training.cores import plan_cpu
from ..training.embed import embed, inference_device, load_encoder
from ..training.losses import task_scores
from ..training.models import EmbeddingModel, Task, facet_label_ids, task_facet
from .classification import multilabel_metrics, softmax_metrics
from .near_duplicates import group_pairs, near_duplicate_groups, search_without_copies
from .probes import probe_report
from .retrieval import (
    MAX_K,
    LabelRelevance,
    Relevance,
    ValueRelevance,
    encode_values,
    judge,
    missing_to_none,
    per_query,
    report_from_values,
)

SCHEMA_VERSION = 1
LABELS = "labels"
EXAMPLE_QUERIES = 8
EXAMPLE_NEIGHBOURS = 5
RUN_FILES = ("config.json", "metrics.jsonl", "manifest.json")
FRAME_COLUMNS = ("id", "labels", "label_names")
OUTPUTS = Outputs("eval", frozenset({"metrics.json", "queries.parquet", "report.html"}), folders=("embeddings",))


@dataclass
class Embedded:
    """Rows of an embeddings file: its columns (id, labels, carried columns) and the vectors."""

    frame: pd.DataFrame
    vectors: np.ndarray


@dataclass
class Context:
    """What every model of one evaluation shares."""

    shards: Path
    out: Path
    info: ShardInfo
    split: str
    gallery_split: str | None
    relevance: tuple[str, ...]
    label_tiers: np.ndarray
    device: torch.device
    batch_size: int
    workers: int
    progress: bool
    near_groups: dict[str, str]  # near-copy id → its group's first id; empty: none left out


def evaluate(checkpoints: Sequence[str | Path] = (), shards: str | Path | None = None,
             out: str | Path | None = None, *, split: str = "val", gallery_split: str | None = None,
             embeddings: Sequence[str | Path] = (), relevance: Sequence[str] = (LABELS,), device: str = "auto",
             batch_size: int = 64, workers: int | None = None, efficiency: bool = True,
             exclude_near_duplicates: bool = True, progress: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Evaluate checkpoints and/or embeddings files on a shards split; write ``out/metrics.json``,
    ``out/queries.parquet``, ``out/report.html``, cached embeddings under ``out/embeddings/``; return the metrics.

    ``relevance``: ``"labels"`` (sharing at least one weak label) and/or carried column names
    (an equal value). ``gallery_split``: search that split instead of the evaluated one (which is
    otherwise its own gallery, each query excluded). Embeddings files are evaluated on retrieval
    and probes only. See the README's "Evaluating encoders" for every metric and the schema.
    ``exclude_near_duplicates``: leave each query's near-copies (its group in the shards'
    ``duplicates.parquet``) out of its gallery and of its relevant items, as the query itself is.
    ``overwrite``: write even if ``out`` holds files this stage did not write (they are kept).
    """
    if shards is None or out is None:
        raise TypeError("evaluate() needs shards and out")
    checkpoints, embeddings = [Path(p) for p in _listed(checkpoints)], [Path(p) for p in _listed(embeddings)]
    relevance = _listed(relevance)
    if not checkpoints and not embeddings:
        raise ValueError("nothing to evaluate: give at least one checkpoint or embeddings file")
    if embeddings and gallery_split:
        raise ValueError("precomputed embeddings are searched among themselves; --gallery-split needs checkpoints")
    if checkpoints:  # images are embedded from the shards: their carried columns are known before that
        _check_carried(Path(shards), relevance)
    with output_folder(out, OUTPUTS, overwrite=overwrite) as folder:
        context = _context(shards, out, split, gallery_split, relevance, device, batch_size, workers, progress,
                           exclude_near_duplicates)
        folder.remove_manifest()  # until the new one is written; the cached embeddings stay
        return _evaluate_models(context, checkpoints, embeddings, efficiency)


def _evaluate_models(context: Context, checkpoints: list[Path], embeddings: list[Path],
                     efficiency: bool) -> dict[str, Any]:
    names = unique_names([*checkpoints, *embeddings])
    timer = Timer()
    models: dict[str, dict[str, Any]] = {}
    examples: dict[str, list[dict[str, Any]]] = {}
    queries: list[pd.DataFrame] = []
    for index, (name, path) in enumerate(zip(names, [*checkpoints, *embeddings], strict=True)):
        with timer(name):
            if index < len(checkpoints):
                models[name], examples[name], model_queries = _evaluate_checkpoint(context, name, path, efficiency)
            else:
                models[name], examples[name], model_queries = _evaluate_embeddings(context, path)
        queries.append(model_queries.assign(model=name))
    metrics = {"version": SCHEMA_VERSION, "weaklabel_version": __version__, "shards": str(context.shards),
               "split": context.split, "gallery_split": context.gallery_split, "relevance": list(context.relevance),
               "k": MAX_K, "exclude_near_duplicates": bool(context.near_groups), "models": models}
    _write_outputs(context, metrics, examples, pd.concat(queries, ignore_index=True), [*checkpoints, *embeddings],
                   timer)
    return metrics


def _listed(values: Sequence[Any] | str | Path) -> list[Any]:
    """A lone path or name given where a sequence is expected counts as a one-item list."""
    return [values] if isinstance(values, (str, Path)) else list(values)


def _context(shards: str | Path, out: str | Path, split: str, gallery_split: str | None, relevance: Sequence[str],
             device: str, batch_size: int, workers: int | None, progress: bool, exclude_near_duplicates: bool
             ) -> Context:
    info = ShardInfo.load(shards)
    for name in (split, gallery_split):
        if name is not None:
            info.shard_urls(name)
    relevance = tuple(relevance)
    if not relevance or len(set(relevance)) != len(relevance):
        raise ValueError(f"relevance must name at least one definition, each once; got {list(relevance)}")
    out = Path(out)
    (out / "embeddings").mkdir(parents=True, exist_ok=True)
    resolved_device = inference_device(device)
    return Context(Path(shards), out, info, split, gallery_split, relevance, label_tiers(shards),
                   resolved_device, batch_size, plan_cpu(workers, resolved_device).workers, progress,
                   near_duplicate_groups(shards) if exclude_near_duplicates else {})


def unique_names(paths: Sequence[Path]) -> list[str]:
    """A model's name: its run folder's name and checkpoint ("train-best": the pipeline's run folder
    alone reads as the train split), else the file stem. Names shared by several models get a number."""
    names = [f"{path.parent.name}-{path.stem}" if any((path.parent / f).is_file() for f in RUN_FILES) else path.stem
             for path in paths]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if names.count(name) == 1 else f"{name}-{seen[name]}")
    return unique


def check_vocabulary(label_names: Sequence[str], shard_names: Sequence[str], source: Path, shards: Path) -> None:
    """A clear error when a checkpoint's label vocabulary is not the shards' one."""
    if list(label_names) == list(shard_names):
        return
    first = next((i for i, (a, b) in enumerate(zip(label_names, shard_names)) if a != b),
                 min(len(label_names), len(shard_names)))
    ours = repr(label_names[first]) if first < len(label_names) else "(none)"
    theirs = repr(shard_names[first]) if first < len(shard_names) else "(none)"
    raise ValueError(f"{source} was trained on a vocabulary of {len(label_names)} labels but {shards} has "
                     f"{len(shard_names)}; they first differ at label id {first}: {ours} in the checkpoint, "
                     f"{theirs} in the shards. Evaluate on shards built with the checkpoint's vocabulary.")


def check_embedded_labels(frame: pd.DataFrame, shard_names: Sequence[str], source: Path, shards: Path) -> None:
    """An embeddings file's label ids must name the shards' labels (its ``label_names`` say which they were)."""
    for ids, names in zip(frame[LABELS], frame["label_names"], strict=True):
        for label, name in zip(ids, names, strict=False):
            theirs = shard_names[label] if 0 <= label < len(shard_names) else None
            if theirs != name:
                raise ValueError(f"{source} was made with another vocabulary: its label id {label} is {name!r}, "
                                 f"in {shards} it is {theirs!r} ({len(shard_names)} labels)")


# ---------------------------------------------------------------------------------------------
# One model
# ---------------------------------------------------------------------------------------------

def _evaluate_checkpoint(context: Context, name: str, checkpoint: Path,
                         efficiency: bool) -> tuple[dict[str, Any], list[dict[str, Any]], pd.DataFrame]:
    model, config = load_encoder(checkpoint, "cpu")
    check_vocabulary(config["label_names"], context.info.label_names, checkpoint, context.shards)
    facets = facet_label_ids(list(map(Task.from_dict, config["tasks"])), context.info.facets, context.info.label_names)
    query = _cached_embeddings(context, name, checkpoint, context.split)
    gallery = _cached_embeddings(context, name, checkpoint, context.gallery_split) if context.gallery_split else None
    _say(context, f"{name}: retrieval")
    result, examples, queries = _retrieval_and_probes(context, query, gallery, _task_columns(config))
    if context.near_groups:
        _say(context, f"{name}: {near_duplicates_line(result['near_duplicates_left_out'])}")
    _say(context, f"{name}: classification")
    result["classification"] = classification_report(model, config, query, context.label_tiers)
    if facets:
        _say(context, f"{name}: facets")
    result["facets"] = facet_report(context, model, config, query, gallery, facets)
    if efficiency:
        _say(context, f"{name}: efficiency")
        result["efficiency"] = _efficiency(model, config, checkpoint, context.device)
    else:
        result["efficiency"] = {}
    model_info = {"backbone": config["model"], "embed_dim": config["embed_dim"], "image_size": config["image"]["size"],
                  "step": config["step"], "weights": config["weights"]}
    return {"source": str(checkpoint), "kind": "checkpoint", "model": model_info, **result}, examples, queries


def _evaluate_embeddings(context: Context, path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], pd.DataFrame]:
    frame, vectors = read_embeddings(path)
    if LABELS in frame.columns and "label_names" in frame.columns:
        check_embedded_labels(frame, context.info.label_names, path, context.shards)
    query = Embedded(frame, vectors)
    _say(context, f"{path.name}: retrieval")
    result, examples, queries = _retrieval_and_probes(context, query, None, [])
    return {"source": str(path), "kind": "embeddings", "model": {"embed_dim": int(vectors.shape[1])}, **result,
            "classification": {}, "facets": {}, "efficiency": {}}, examples, queries


def _cached_embeddings(context: Context, name: str, checkpoint: Path, split: str) -> Embedded:
    """The split's embeddings, computed once per checkpoint content and shards folder."""
    path = context.out / "embeddings" / f"{name}.{split}.parquet"
    stamp_path = path.with_suffix(".json")
    stamp = {"checkpoint": str(checkpoint), "checkpoint_sha256": sha256_file(checkpoint),
             "shards": str(context.shards), "shards_sha256": _shards_fingerprint(context.shards), "split": split}
    if not (path.is_file() and stamp_path.is_file() and json.loads(stamp_path.read_text()) == stamp):
        _say(context, f"{name}: embedding the {split} split")
        embed(checkpoint, context.shards, path, split=split, batch_size=context.batch_size, device=context.device,
              workers=context.workers, progress=context.progress)
        write_json(stamp_path, stamp)
    frame, vectors = read_embeddings(path)
    return Embedded(frame, vectors)


def _shards_fingerprint(shards: Path) -> str:
    """The shards manifest lists every shard's hash; a copied folder without one falls back to _info.json."""
    manifest = shards / "manifest.json"
    return sha256_file(manifest if manifest.is_file() else shards / "_info.json")


def _task_columns(config: dict[str, Any]) -> list[str]:
    """The carried columns the softmax heads predict."""
    return [t["name"] for t in config["tasks"] if t["kind"] == "softmax" and task_facet(t["name"]) is None]


@dataclass
class Search:
    """The queries' search of a gallery: the row each query leaves out (itself, when the query split is
    its own gallery; None otherwise), the near-copies left out and the neighbours found."""

    gallery: Embedded
    exclude: np.ndarray | None
    copies: pd.DataFrame
    neighbours: Neighbours


def _search(context: Context, query: Embedded, gallery: Embedded | None) -> Search:
    searched = gallery if gallery is not None else query
    exclude = None if gallery is not None else np.arange(len(query.frame))
    copies = group_pairs(query.frame["id"], searched.frame["id"], context.near_groups)
    neighbours = search_without_copies(query.vectors, searched.vectors, MAX_K, exclude, copies, context.device)
    return Search(searched, exclude, copies, neighbours)


def _judge(context: Context, name: str, query: pd.DataFrame,
           search: Search) -> tuple[Relevance, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Relevance ``name``, each query's tier and number of relevant items, and its metrics."""
    relevance, tiers = _relevance(context, name, query, search.gallery.frame)
    n_relevant = relevance.counts(search.exclude) - _relevant_copies(relevance, search.copies, len(query))
    return relevance, tiers, n_relevant, per_query(judge(relevance, search.neighbours.indices), n_relevant)


def _retrieval_and_probes(context: Context, query: Embedded, gallery: Embedded | None, task_columns: Sequence[str]
                          ) -> tuple[dict[str, Any], list[dict[str, Any]], pd.DataFrame]:
    """Metrics, example neighbours and the per-query table (one row per query and relevance)."""
    search = _search(context, query, gallery)
    searched, copies, neighbours = search.gallery, search.copies, search.neighbours
    retrieval: dict[str, Any] = {}
    examples: list[dict[str, Any]] = []
    queries: list[pd.DataFrame] = []
    for index, name in enumerate(context.relevance):
        relevance, tiers, n_relevant, values = _judge(context, name, query.frame, search)
        retrieval[name] = report_from_values(values, n_relevant, tiers)
        answerable = n_relevant > 0  # the others are left out of the averages, so they get no value
        queries.append(pd.DataFrame({"relevance": name, "id": query.frame["id"].astype(str).to_numpy(),
                                     "tier": pd.Series(tiers, dtype="string"), "relevant": n_relevant.astype(np.int64),
                                     **{metric: np.where(answerable, v, np.nan) for metric, v in values.items()}}))
        if index == 0:
            examples = _examples(relevance, n_relevant, neighbours, query.frame, searched.frame)
    probes = {}
    for column in dict.fromkeys([*(r for r in context.relevance if r != LABELS), *task_columns]):
        if column in query.frame.columns and column in searched.frame.columns:
            query_codes, gallery_codes, _ = encode_values(query.frame[column], searched.frame[column])
            probes[column] = probe_report(neighbours.indices, neighbours.scores, query.vectors, query_codes,
                                          gallery_codes, None if gallery is None else gallery.vectors)
    sizes = {"queries": len(query.frame), "gallery": len(searched.frame), "dim": int(query.vectors.shape[1]),
             "near_duplicates_left_out": {"items": len(copies), "queries": int(copies["query"].nunique())}}
    return {**sizes, "retrieval": retrieval, "probes": probes}, examples, pd.concat(queries, ignore_index=True)


def _relevant_copies(relevance: Relevance, copies: pd.DataFrame, n_queries: int) -> np.ndarray:
    """Per query, the relevant gallery items left out as its near-copies."""
    query, item = copies["query"].to_numpy(), copies["item"].to_numpy()
    return np.bincount(query[relevance.pairs(query, item)], minlength=n_queries).astype(np.int64)


def _check_carried(shards: Path, relevance: Sequence[str]) -> None:
    """Fail before any embedding when a relevance column was not carried into the shards."""
    if not (shards / MANIFEST).is_file():  # not written by weaklabel shards: checked after embedding
        return
    carried = read_manifest(shards)["config"].get("carry", [])
    for name in relevance:
        if name != LABELS and name not in carried:
            raise ValueError(f"relevance {name!r}: the shards carry no such column; carried columns: "
                             f"{carried or 'none'} (write the shards with --carry {name}, or carry under [shards] in a "
                             "pipeline file)")


def _relevance(context: Context, name: str, query: pd.DataFrame,
               gallery: pd.DataFrame) -> tuple[Relevance, np.ndarray]:
    """A relevance definition and the tier of each query under it."""
    for frame in (query, gallery):
        if name not in frame.columns:
            carried = [c for c in frame.columns if c not in FRAME_COLUMNS]
            raise ValueError(f"relevance {name!r}: the embeddings have no such column; carried columns: "
                             f"{carried or 'none'} (write the shards with --carry {name}, or carry under [shards] in a "
                             "pipeline file)")
    if name == LABELS:
        relevance = LabelRelevance(list(query[LABELS]), list(gallery[LABELS]), len(context.label_tiers))
        return relevance, rarest_tier(list(query[LABELS]), context.label_tiers)
    tiers = value_tiers([missing_to_none(v) for v in gallery[name]])
    query_values = [missing_to_none(v) for v in query[name]]
    query_tiers = np.array([None if v is None else tiers.get(v, "tail") for v in query_values], dtype=object)
    return ValueRelevance(list(query[name]), list(gallery[name])), query_tiers


def _examples(relevance: Relevance, n_relevant: np.ndarray, neighbours: Neighbours, query: pd.DataFrame,
              gallery: pd.DataFrame) -> list[dict[str, Any]]:
    """Top neighbours of a few queries spread over the split (those with a relevant item), by id."""
    has_relevant = np.flatnonzero(n_relevant > 0)
    if not len(has_relevant):
        return []
    spread = np.linspace(0, len(has_relevant) - 1, min(EXAMPLE_QUERIES, len(has_relevant))).astype(int)
    rows = has_relevant[np.unique(spread)]
    top = neighbours.indices[rows, :EXAMPLE_NEIGHBOURS]
    judged = relevance.pairs(rows[:, None], top)
    query_ids, gallery_ids = query["id"].astype(str).to_numpy(), gallery["id"].astype(str).to_numpy()
    return [{"query": query_ids[row],
             "neighbours": [{"id": gallery_ids[i], "relevant": bool(r), "score": float(s)}
                            for i, r, s in zip(top[n], judged[n], neighbours.scores[row], strict=False) if i >= 0]}
            for n, row in enumerate(rows)]


# ---------------------------------------------------------------------------------------------
# Classification and efficiency of a checkpoint
# ---------------------------------------------------------------------------------------------

@torch.inference_mode()
def head_scores(model: Any, config: dict[str, Any], vectors: np.ndarray, batch: int = 4096) -> dict[str, np.ndarray]:
    """Each task head's probabilities for precomputed (normalized) embeddings."""
    out: dict[str, list[np.ndarray]] = {t["name"]: [] for t in config["tasks"]}
    for start in range(0, len(vectors), batch):
        scaled = torch.from_numpy(vectors[start:start + batch]) * model.head_scale
        for task in map(Task.from_dict, config["tasks"]):
            logits = model.head(task.name)(scaled)
            out[task.name].append(task_scores(task, logits, config.get("loss", "bce")).numpy())
    return {name: np.concatenate(parts) if parts else np.zeros((0, 0), np.float32) for name, parts in out.items()}


def classification_report(model: Any, config: dict[str, Any], query: Embedded,
                          tiers: np.ndarray) -> dict[str, Any]:
    """Metrics of every task head on the evaluated split."""
    from ..metrics import multi_hot

    scores = head_scores(model, config, query.vectors)
    report: dict[str, Any] = {}
    for task in config["tasks"]:
        name = task["name"]
        if task["kind"] == "multilabel":
            targets = multi_hot(list(query.frame[LABELS]), len(task["classes"])).toarray().astype(bool)
            report[name] = multilabel_metrics(targets, scores[name], tiers, label_names=task["classes"])
        elif name in query.frame.columns:
            values = [missing_to_none(v) for v in query.frame[name]]
            report[name] = softmax_metrics(scores[name], values, task["classes"])
    return report


def facet_report(context: Context, model: Any, config: dict[str, Any], query: Embedded, gallery: Embedded | None,
                 facets: dict[str, list[int]]) -> dict[str, Any]:
    """Per facet head (``facets``: its task -> the facet's label ids): top-1 and top-5 accuracy over the
    split's items that have a label of the facet, and retrieval among those items only (the gallery
    split's too), an item being relevant when it has the query's label in the facet."""
    scores = head_scores(model, config, query.vectors)
    classes = {t["name"]: t["classes"] for t in config["tasks"]}
    report: dict[str, Any] = {}
    for task, ids in facets.items():
        values = facet_values(query.frame, ids, classes[task])
        accuracy = softmax_metrics(scores[task], values, classes[task])
        faceted = _with_facet(query, task, values)
        faceted_gallery = None if gallery is None else _with_facet(
            gallery, task, facet_values(gallery.frame, ids, classes[task]))
        _, tiers, n_relevant, metrics = _judge(context, task, faceted.frame, _search(context, faceted, faceted_gallery))
        report[task_facet(task)] = {"task": task, "classes": len(ids), "n": accuracy["samples"],
                                    "top1_accuracy": accuracy["top1"], "top5_accuracy": accuracy["top5"],
                                    "retrieval": report_from_values(metrics, n_relevant, tiers)}
    return report


def facet_values(frame: pd.DataFrame, ids: Sequence[int], names: Sequence[str]) -> list[str | None]:
    """Each row's label in a facet (its label ``ids``, named ``names``), read from the row's ``facets``
    list of label ids; None for a row without one (or embeddings of shards written before facets)."""
    name_of = dict(zip(ids, names, strict=True))
    rows = frame[FACETS_FIELD] if FACETS_FIELD in frame.columns else [None] * len(frame)
    chosen = (label_in_facet(row, name_of) for row in rows)
    return [name_of[label] if label is not None else None for label in chosen]


def _with_facet(embedded: Embedded, column: str, values: list[str | None]) -> Embedded:
    """The rows that have a value, with it in ``column``."""
    has = np.array([v is not None for v in values], dtype=bool)
    frame = embedded.frame[has].assign(**{column: [v for v in values if v is not None]}).reset_index(drop=True)
    return Embedded(frame, embedded.vectors[has])


def _efficiency(model: Any, config: dict[str, Any], checkpoint: Path, device: torch.device) -> dict[str, Any]:
    from .efficiency import measure

    return measure(EmbeddingModel(model), config["image"]["size"], device, checkpoint=checkpoint, heads=model.heads)


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------

def _write_outputs(context: Context, metrics: dict[str, Any], examples: dict[str, list[dict[str, Any]]],
                   queries: pd.DataFrame, sources: Sequence[Path], timer: Timer) -> None:
    from .report import write_report

    write_json(context.out / "metrics.json", metrics)
    queries[["model", *queries.columns.drop("model")]].to_parquet(context.out / "queries.parquet", index=False)
    with timer("report"):
        write_report(context.out / "report.html", metrics, examples, context.shards)
    config = {"split": context.split, "gallery_split": context.gallery_split, "relevance": list(context.relevance),
              "device": str(context.device), "batch_size": context.batch_size}
    inputs = [*fingerprint_files(sources), {"path": str(context.shards), "sha256": _shards_fingerprint(context.shards)}]
    counts = {name: {"queries": m["queries"], "gallery": m["gallery"]} for name, m in metrics["models"].items()}
    write_manifest(context.out, "eval", config=config, inputs=inputs, counts=counts, timings=timer.seconds,
                   outputs={"metrics": "metrics.json", "queries": "queries.parquet", "report": "report.html",
                            "embeddings": "embeddings/"})


def _say(context: Context, message: str) -> None:
    if context.progress:
        print(f"[eval] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The stage as the runner and the CLI see it (weaklabel.stage.Stage)
# ---------------------------------------------------------------------------------------------

CHECKPOINTS = ("last", "best")  # which checkpoint of the train stage's folder a pipeline evaluates


def eval_options() -> OptionTypes:
    return {"checkpoint": ("last", str)} | signature_options(evaluate, exclude={"checkpoints", "shards", "out"})


def _check(options: dict[str, Any]) -> None:
    if options.get("checkpoint", "last") not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, not {options['checkpoint']!r}")
    relevance = _listed(options.get("relevance", (LABELS,)))
    if not relevance or len(set(relevance)) != len(relevance):
        raise ValueError(f"relevance must name at least one definition, each once; got {relevance}")
    for name in ("batch_size",):
        if options.get(name, 1) < 1:
            raise ValueError(f"{name} must be >= 1, got {options[name]}")


def _files(options: dict[str, Any]) -> list[str]:
    return [str(path) for path in _listed(options.get("embeddings") or ())]


def _run(inputs: Inputs, out: Path, options: dict[str, Any], *, progress: bool, resume: bool = False,
         overwrite: bool = False) -> dict[str, Any]:
    params = dict(options)
    checkpoint = run_checkpoint(inputs.folders["train"], params.pop("checkpoint", "last"))
    evaluate([checkpoint], inputs.folders["shards"], out, progress=progress, overwrite=overwrite, **params)
    return read_manifest(out, "eval")


def eval_summary(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """One line per model and relevance: Recall@1/10 and mAP@10 overall, Recall@1 on the tail tier;
    one per model and facet head: top-1, and Recall@1 and mAP@10 among the items of the facet."""
    path = folder / "metrics.json"
    metrics_file = json.loads(path.read_text()) if path.is_file() else {}
    models = metrics_file.get("models", {})
    lines = []
    left_out = next(iter(models.values()), {}).get("near_duplicates_left_out")
    if metrics_file.get("exclude_near_duplicates") and left_out:
        lines.append(near_duplicates_line(left_out))
    for model, metrics in models.items():
        for relevance, scores in metrics.get("retrieval", {}).items():
            overall, tail = scores["overall"], scores.get("tiers", {}).get("tail")
            lines.append((f"{model}, " if len(models) > 1 else "") + f"relevance '{relevance}': "
                         f"R@1 {_three(overall['recall@1'])}, R@10 {_three(overall['recall@10'])}, "
                         f"mAP@10 {_three(overall['map@10'])} over {_queries(overall)}"
                         + (f"; tail R@1 {_three(tail['recall@1'])}" if tail and tail.get("queries") else ""))
        for facet, scores in metrics.get("facets", {}).items():
            overall = scores["retrieval"]["overall"]
            lines.append((f"{model}, " if len(models) > 1 else "") + f"facet '{facet}': top-1 "
                         f"{_three(scores['top1_accuracy'])} over {plural(scores['n'], 'item')}, R@1 "
                         f"{_three(overall['recall@1'])}, mAP@10 {_three(overall['map@10'])} over {_queries(overall)}")
    return lines


def near_duplicates_line(left_out: dict[str, int]) -> str:
    """How many near-copies of queries were kept out of their galleries."""
    return (f"left {plural(left_out['items'], 'near-duplicate')} of {plural(left_out['queries'], 'query', 'queries')} "
            "out of the gallery (their group in the shards' duplicates.parquet)")


def _queries(summary: dict[str, Any]) -> str:
    """The queries averaged, of all: "175 of 185 queries (10 without a relevant item)"."""
    averaged, without = summary["queries"], summary["queries_without_relevant"]
    if not without:
        return plural(averaged, "query", "queries")
    return f"{averaged} of {averaged + without} queries ({without} without a relevant item)"


def _three(value: float | None) -> str:
    """A metric to 3 decimals; n/a where it is undefined (no query had a relevant item)."""
    return "n/a" if value is None else f"{value:.3f}"


EVAL = Stage("eval", "eval", upstream=("train", "shards"), reads_listings=False, outputs=("metrics.json",),
             options=eval_options, check=_check, run=_run, summary=eval_summary,
             files=_files)
