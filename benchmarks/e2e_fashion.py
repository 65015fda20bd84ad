"""End to end on the real fashion catalogue: does an encoder trained on weak labels from titles
retrieve images nearly as well as one trained on the ground truth?

The labeling stage reads ``title`` only; ``articleType`` is carried into the shards for evaluation
(and for arm b's training) only. The same backbone, image size, training budget (``--steps``
optimizer steps of ``--batch-size`` images) and seed (``--seed``) for every trained arm:

  (a) weak         the pipeline of examples/fashion.toml: weak labels from a clustered vocabulary
  (a+) facets      as (a) on (a)'s shards, plus a softmax head per facet of the vocabulary (tasks=["facets"])
  (a2) audited     one audit round within (a)'s budget: half the steps on (a)'s shards, `weaklabel audit` of
                   that checkpoint, then the other half from its weights without the labels the audit
                   flagged non-visual and its contradicted pairs (train relabel=, weights=)
  (b) supervised   trained on articleType (a softmax task; the weak-label task weighted 0): upper bound
  (c) random       not trained (a 0-step run, random weights): lower bound
  (d) no-cluster   as (a), with a vocabulary built without clustering (own vocab, labels, shards)

Every arm is judged on the same held-out listings: the test split of (a)'s shards, and for (d) of its
own (the evaluator checks a checkpoint's vocabulary against the shards'), which holds the same
listings since shards are written with keep_unlabelled and a listing's split follows its id. Each
test image searches the others, and an item is relevant when it has the query's articleType. Printed: Recall@1,
Recall@10 and mAP@10, overall and on the tail tier (the rarest articleTypes, holding the last 20%
of the split's items), then the targets: (a) >= 0.90 x (b) on Recall@1; (a) clearly (by at least
0.05) above (c) on Recall@1; (a) above (d) on the tail tier's Recall@1; and, printed as met or
MISSED, (a+) >= 0.95 x (b) on Recall@1 ((a+) is skipped when (a)'s vocabulary has no facets) and
(a2) >= 0.95 x (b) on Recall@1. ``--arms`` runs some arms only; ``--judge-only`` judges the arms an
earlier run trained, without training.
Below them, a 95% interval for each comparison of (a) by a paired bootstrap over the test queries
(from each arm's ``queries.parquet``); ``--pool OUT OUT ...`` prints them over several finished
runs (seeds), from the queries' means.

Stages of (a) and (d) run through ``weaklabel.pipeline``, so a second run skips what is up to date;
(a+), (b) and (c) are retrained each time. Results go to OUT/results.json, reports to OUT/eval/ARM/.

    python benchmarks/e2e_fashion.py                               # full size (see the README for timings)
    python benchmarks/e2e_fashion.py --limit 2000 --steps 20       # a quick check that it runs
    python benchmarks/e2e_fashion.py --seed 1 --out bench-out/e2e_fashion-s1      # another training seed
    python benchmarks/e2e_fashion.py --pool bench-out/e2e_fashion bench-out/e2e_fashion-s1
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from weaklabel.artifacts import read_manifest
from weaklabel.audit import audit
from weaklabel.datasets.loader import ShardInfo
from weaklabel.eval import evaluate
from weaklabel.pipeline import Pipeline, parse_pipeline, run_pipeline
from weaklabel.training import train

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fashion"
FASHION_TOML = ROOT / "examples" / "fashion.toml"
COLUMN = "articleType"
ARMS = {"a_weak": "(a) weak labels", "a_facets": "(a+) weak + facet heads", "a2_audit": "(a2) weak, one audit round",
        "b_supervised": "(b) articleType", "c_random": "(c) random weights", "d_no_cluster": "(d) weak, no clustering"}
RATIO, MARGIN, FACETS_RATIO, AUDIT_RATIO = 0.90, 0.05, 0.95, 0.95


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the fashion folder (read in place)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "e2e_fashion", help="output folder")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N listings (a quick check)")
    parser.add_argument("--steps", type=int, default=None, help="training steps of every arm (default: fashion.toml's)")
    parser.add_argument("--model", default=None, help="timm backbone (default: fashion.toml's)")
    parser.add_argument("--batch-size", type=int, default=None, help="images per step (default: fashion.toml's)")
    parser.add_argument("--seed", type=int, default=None,
                        help="training seed of every arm (default: fashion.toml's, 0)")
    parser.add_argument("--pool", type=Path, nargs="+", metavar="OUT",
                        help="train nothing: print the intervals over the queries' means across these finished "
                             "runs' --out folders (e.g. three seeds)")
    parser.add_argument("--arms", default=",".join(ARMS),
                        help="the arms to run, comma-separated (default: all; (a) always runs)")
    parser.add_argument("--judge-only", action="store_true",
                        help="train nothing: judge the arms' checkpoints of an earlier run in --out and print")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    args.arms = {"a_weak", *args.arms.split(",")}
    unknown = args.arms - set(ARMS)
    if unknown:
        parser.error(f"unknown arms {sorted(unknown)}; arms are {', '.join(ARMS)}")
    args.out = args.out.resolve()  # the pipeline file would read a relative path from examples/
    return args


def pipeline_for(args: argparse.Namespace, listings: Path, arm: str, *, cluster: bool) -> Pipeline:
    """examples/fashion.toml with this run's data, output folder and budget."""
    data = tomllib.loads(FASHION_TOML.read_text(encoding="utf-8"))
    data["out"] = str(args.out / arm)
    data["listings"]["paths"] = [str(listings)]
    data["shards"]["images_root"] = str(args.data)
    data.setdefault("vocab", {})["cluster"] = cluster
    overrides = {"steps": args.steps, "model": args.model, "batch_size": args.batch_size, "seed": args.seed}
    data["train"].update({key: value for key, value in overrides.items() if value is not None})
    return parse_pipeline(data, base=FASHION_TOML.parent, source=FASHION_TOML)


def listings_file(args: argparse.Namespace) -> Path:
    """The listings, or with --limit a file of their first N rows (images stay where they are)."""
    source = args.data / "listings.csv"
    if args.limit is None:
        return source
    subset = args.out / f"listings-first-{args.limit}.csv"
    if not subset.is_file():
        args.out.mkdir(parents=True, exist_ok=True)
        pd.read_csv(source, dtype=str, keep_default_na=False).head(args.limit).to_csv(subset, index=False)
    return subset


def weak_arm(args: argparse.Namespace, listings: Path, arm: str, *, cluster: bool) -> tuple[Pipeline, Path]:
    pipeline = pipeline_for(args, listings, arm, cluster=cluster)
    run_pipeline(pipeline, until="train", progress=not args.quiet, echo=lambda line: say(f"[{arm}] {line}"))
    return pipeline, pipeline.folder("train") / "last.pt"


def direct_arm(args: argparse.Namespace, shards: Path, arm: str, options: dict[str, Any]) -> Path:
    """Train on (a)'s shards with other options, into a fresh folder."""
    folder = args.out / arm
    if args.judge_only:
        return finished(folder / "last.pt")
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    result = train(shards, folder, progress=not args.quiet, **options)
    say(f"[{arm}] trained {result['step']} steps in {time.perf_counter() - started:.0f} s")
    return folder / "last.pt"


def finished(checkpoint: Path) -> Path:
    if not checkpoint.is_file():
        raise SystemExit(f"error: --judge-only needs {checkpoint}; run the benchmark without it first")
    return checkpoint


def audit_arm(args: argparse.Namespace, weak: Pipeline, arm: str) -> tuple[Path, dict[str, Any]]:
    """(a2): round 1 with half of (a)'s steps, the audit, round 2 with the other half from round 1's weights."""
    options, shards = weak["train"], weak.folder("shards")
    first = options["steps"] // 2
    round1 = direct_arm(args, shards, f"{arm}-round1", options | {"steps": first})
    folder = args.out / f"{arm}-audit"
    manifest = (read_manifest(folder, "audit") if args.judge_only else
                audit(round1, shards, folder, vocab=weak.folder("vocab"), progress=not args.quiet, overwrite=True))
    c = manifest["counts"]
    say(f"[{arm}] audit: {c['non-visual']} of {c['labels']} labels non-visual, {c['contradicted']} contradicted and "
        f"{c['missed']} missed pairs over {c['images']} images in {sum(manifest['timings_s'].values()):.0f} s "
        "(time and memory alone: benchmarks/audit_scale.py)")
    checkpoint = direct_arm(args, shards, arm, options | {"steps": options["steps"] - first, "relabel": str(folder),
                                                          "weights": str(round1)})
    return checkpoint, {"counts": c, "timings_s": manifest["timings_s"]}


def judge(args: argparse.Namespace, shards: Path, arm: str, checkpoint: Path, split: str) -> dict[str, Any]:
    metrics = evaluate([checkpoint], shards, args.out / "eval" / arm, split=split, relevance=[COLUMN],
                       efficiency=False, progress=not args.quiet, overwrite=True)
    (model,) = metrics["models"].values()
    return model["retrieval"][COLUMN]


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    header = f"{'arm':26} {'R@1':>6} {'R@10':>6} {'mAP@10':>7} | {'tail R@1':>8} {'R@10':>6} {'mAP@10':>7} | queries"
    lines = [header, "-" * len(header)]
    for arm, scores in results.items():
        o, t = scores["overall"], scores["tiers"].get("tail", {})
        tail = f"{t['recall@1']:8.3f} {t['recall@10']:6.3f} {t['map@10']:7.3f}" if t.get("queries") else f"{'-':>24}"
        lines.append(f"{ARMS[arm]:26} {o['recall@1']:6.3f} {o['recall@10']:6.3f} {o['map@10']:7.3f} | {tail} | "
                     f"{o['queries']} (tail {t.get('queries', 0)})")
    return lines


def recall_at_1(results: dict[str, dict[str, Any]], arm: str, tier: str | None = None) -> float:
    scores = results[arm]["tiers"].get(tier, {}) if tier else results[arm]["overall"]
    value = scores.get("recall@1")
    return float("nan") if value is None else float(value)


def targets(results: dict[str, dict[str, Any]]) -> list[tuple[str, bool]]:
    def r1(arm: str, tier: str | None = None) -> float:
        return recall_at_1(results, arm, tier)

    found = []
    a = r1("a_weak")
    if "b_supervised" in results:
        b = r1("b_supervised")
        found.append((f"(a) >= {RATIO:.2f} x (b) on Recall@1: {a:.3f} vs {RATIO * b:.3f} ({a / b:.1%} of (b))",
                      a >= RATIO * b))
    if "c_random" in results:
        c = r1("c_random")
        found.append((f"(a) above (c) by >= {MARGIN} on Recall@1: {a:.3f} vs {c:.3f} ({a - c:+.3f})", a - c >= MARGIN))
    if "d_no_cluster" in results:
        a_tail, d_tail = r1("a_weak", "tail"), r1("d_no_cluster", "tail")
        found.append((f"(a) above (d) on tail Recall@1: {a_tail:.3f} vs {d_tail:.3f} ({a_tail - d_tail:+.3f})",
                      a_tail > d_tail))
    return found


def ratio_target(results: dict[str, dict[str, Any]], arm: str, name: str, ratio: float) -> str:
    """The line of an arm's target against (b), met or MISSED, with (a) and (b) beside it; skipped without either."""
    if arm not in results or "b_supervised" not in results:
        return f"skipped  {name}: not run (not among --arms, or for (a+) a vocabulary without facets)"
    value, a, b = (recall_at_1(results, x) for x in (arm, "a_weak", "b_supervised"))
    return (f"{'met' if value >= ratio * b else 'MISSED'}  {name} >= {ratio:.2f} x (b) on Recall@1: "
            f"{value:.3f} vs {ratio * b:.3f} ({value / b:.1%} of (b)); (a) {a:.3f}, {name} {value:.3f}, (b) {b:.3f}")


COMPARISONS = (("(a) / (b) on Recall@1", "a_weak", "b_supervised", None, "ratio"),
               ("(a) - (c) on Recall@1", "a_weak", "c_random", None, "difference"),
               ("(a) - (d) on tail Recall@1", "a_weak", "d_no_cluster", "tail", "difference"))
STATISTICS: dict[str, Callable[[Any, Any], Any]] = {"ratio": lambda x, y: x / y, "difference": lambda x, y: x - y}
FORMATS = {"ratio": ".3f", "difference": "+.3f"}


def intervals(outs: list[Path]) -> list[dict[str, Any]]:
    """Paired bootstrap 95% intervals of the targets' comparisons, resampling the test queries (read
    from each arm's queries.parquet; every arm answers the same queries). With several runs (seeds),
    a query's value is its mean over the runs, so the interval covers the queries drawn, and the
    training noise only as far as the runs average it out."""
    @functools.cache  # arm (a) is in every comparison: read its files once
    def recall_at_1(arm: str, tier: str | None) -> pd.Series:
        """Per query id, as in metrics.json: queries with a relevant item, of the tier if one is given."""
        runs = []
        for out in outs:
            queries = pd.read_parquet(out / "eval" / arm / "queries.parquet")
            queries = queries[(queries["relevance"] == COLUMN) & (queries["relevant"] > 0)]
            runs.append((queries[queries["tier"] == tier] if tier else queries).set_index("id")["recall@1"])
        return pd.concat(runs, axis=1, join="inner").mean(axis=1)

    found = []
    for text, x, y, tier, statistic in COMPARISONS:
        if not all((out / "eval" / arm / "queries.parquet").is_file() for out in outs for arm in (x, y)):
            continue  # an arm not run
        value, low, high, n = paired_bootstrap(recall_at_1(x, tier), recall_at_1(y, tier), STATISTICS[statistic])
        found.append({"comparison": text, "statistic": statistic, "queries": n,  # null, not NaN, in results.json
                      **{key: None if np.isnan(v) else v
                         for key, v in (("value", value), ("low", low), ("high", high))}})
    return found


def interval_lines(found: list[dict[str, Any]], runs: int) -> list[str]:
    seeds = f"{runs} training seed{'s' if runs > 1 else ''}"
    lines = [f"paired bootstrap 95% intervals over the test queries (10,000 resamples; {seeds}):"]
    for row in found:
        form = FORMATS[row["statistic"]]
        if None in (row["value"], row["low"], row["high"]):
            lines.append(f"  {row['comparison']}: - ({row['queries']} queries)")
            continue
        lines.append(f"  {row['comparison']}: {row['value']:{form}} [{row['low']:{form}}, {row['high']:{form}}] "
                     f"({row['queries']} queries)")
    return lines


def paired_bootstrap(x: pd.Series, y: pd.Series, statistic: Callable[[Any, Any], Any], resamples: int = 10_000,
                     seed: int = 0, chunk: int = 1_000) -> tuple[float, float, float, int]:
    """``statistic(mean x, mean y)`` over the ids both hold, the 2.5 and 97.5 percentiles of it when
    the ids are resampled with replacement (the same draw for x and y), and the number of ids.
    NaN when they share no id; draws where the statistic is undefined (a ratio over 0) are left out."""
    x, y = x.align(y, join="inner")
    if x.empty:
        return float("nan"), float("nan"), float("nan"), 0
    xs, ys = x.to_numpy(), y.to_numpy()
    rng = np.random.default_rng(seed)
    drawn = []
    for size in np.diff(np.r_[0:resamples:chunk, resamples]):
        picks = rng.integers(0, len(xs), size=(size, len(xs)), dtype=np.int32)
        with np.errstate(divide="ignore", invalid="ignore"):
            drawn.append(statistic(xs[picks].mean(axis=1), ys[picks].mean(axis=1)))
    drawn = np.concatenate(drawn)
    low, high = np.nanpercentile(np.where(np.isfinite(drawn), drawn, np.nan), [2.5, 97.5])
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(statistic(xs.mean(), ys.mean())), float(low), float(high), len(xs)


def say(line: str) -> None:
    print(line, flush=True)


def main() -> int:
    args = parse_args()
    if args.pool:  # reads finished runs only: the catalogue is not needed
        compared = dict.fromkeys(arm for comparison in COMPARISONS for arm in comparison[1:3])
        missing = [str(p) for out in args.pool for arm in compared
                   if not (p := out / "eval" / arm / "queries.parquet").is_file()]
        if missing:
            say(f"error: --pool needs finished runs of this benchmark; missing: {', '.join(missing)}")
            return 2
        say("\n".join(interval_lines(intervals(args.pool), runs=len(args.pool))))
        return 0
    if not (args.data / "listings.csv").is_file():
        say(f"skipped: the fashion catalogue is not at {args.data} (see ../shared/data/fashion/README.md)")
        return 0
    started = time.perf_counter()
    listings = listings_file(args)
    weak, checkpoints = {}, {}
    weak["a_weak"], checkpoints["a_weak"] = weak_arm(args, listings, "a_weak", cluster=True)
    shards, options = weak["a_weak"].folder("shards"), weak["a_weak"]["train"]
    audited = {}
    if "a_facets" in args.arms and ShardInfo.load(shards).facets:
        checkpoints["a_facets"] = direct_arm(args, shards, "a_facets",
                                             options | {"tasks": [*options.get("tasks", []), "facets"]})
    elif "a_facets" in args.arms:
        say("[a_facets] skipped: the vocabulary of (a) has no facets")
    if "a2_audit" in args.arms:
        checkpoints["a2_audit"], audited = audit_arm(args, weak["a_weak"], "a2_audit")
    if "b_supervised" in args.arms:
        checkpoints["b_supervised"] = direct_arm(args, shards, "b_supervised",
                                                 options | {"labels_weight": 0.0, "tasks": [f"{COLUMN}:softmax"]})
    if "c_random" in args.arms:
        checkpoints["c_random"] = direct_arm(args, shards, "c_random", options | {"steps": 0})
    if "d_no_cluster" in args.arms:
        weak["d_no_cluster"], checkpoints["d_no_cluster"] = weak_arm(args, listings, "d_no_cluster", cluster=False)
    split = weak["a_weak"]["eval"]["split"]
    # (d)'s checkpoint has its own vocabulary, so it is judged on its own shards: the same test listings
    judged_on = {arm: shards for arm in ARMS} | (
        {"d_no_cluster": weak["d_no_cluster"].folder("shards")} if "d_no_cluster" in weak else {})
    results = {arm: judge(args, judged_on[arm], arm, checkpoints[arm], split) for arm in ARMS if arm in checkpoints}
    if len({scores["overall"]["queries"] for scores in results.values()}) != 1:
        say("warning: the arms were judged on different numbers of queries; compare with care")
    minutes = (time.perf_counter() - started) / 60
    config = weak["a_weak"]["train"]
    say(f"\nretrieval on the {split} split of {shards}, relevance: same {COLUMN}; {config['model']} at "
        f"{config['image_size']} px, {config['steps']} steps of {config['batch_size']} images per trained arm")
    lines = table(results) + [""] + [f"{'PASS' if ok else 'FAIL'}  {text}" for text, ok in targets(results)]
    lines += [ratio_target(results, "a_facets", "(a+)", FACETS_RATIO), ratio_target(results, "a2_audit", "(a2)",
                                                                                    AUDIT_RATIO)]
    found = intervals([args.out])
    lines += [""] + interval_lines(found, runs=1)
    lines.append(f"\nwall time {minutes:.1f} min")
    say("\n".join(lines))
    (args.out / "results.json").write_text(json.dumps({"results": results, "intervals": found, "minutes": minutes,
                                                       "train": config, "audit": audited}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
