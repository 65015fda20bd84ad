"""The audit on generated data, whose generator knows which words are drawn in the picture.

The demo pipeline (examples/pipeline.toml) at a larger size: ``--listings`` generated listings,
``--steps`` training steps. After ``assign``, ``--flip`` of the drawn labels are flipped: a listing's
label that names its true type, colour or material (one drawn thing, see
``weaklabel.synthetic.kinds.label_values``) is replaced, with that probability, by a label naming
another value of the same attribute (drawn in proportion to the labels' support). The flips are
written to OUT/flips.parquet. Then shards, train, eval, audit and (``[audit] apply = true``)
round 2 run as the pipeline runs them.

Printed, with the generator's knowledge as the truth (``weaklabel.synthetic.kinds``):

- **Non-visual flags**: precision and recall of the labels the audit flags non-visual, over the
  labels it judged whose words the generator wrote as one kind (visual: types, colours,
  materials; non-visual: brands, audiences, sizes, styles, fillers, tags, sentences). Target
  >= 0.90 each.
- **Contradicted pairs**: recall of the injected wrong pairs (a flipped-in label) among the pairs
  the audit marks contradicted, and precision of those marks over the pairs whose truth is known
  (the label names one drawn thing: wrong when the listing's true value differs, injected or
  not). Target recall >= 0.70 at precision >= 0.70. Also per split (the encoder learned the train
  split's labels, flipped ones included).
- **Missed pairs**: the same for the labels the flips took away.
- Round 1 against round 2 on the true type (retrieval among the test split).

    python benchmarks/audit.py                                  # default size (see the README for timings)
    python benchmarks/audit.py --listings 2000 --steps 100      # a quick check that it runs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from weaklabel.artifacts import labeled_parts
from weaklabel.demo import DEMO_TOML
from weaklabel.pipeline import parse_pipeline, run_pipeline
from weaklabel.synthetic import generate_listings
from weaklabel.synthetic.kinds import label_kind, label_values

ROOT = Path(__file__).resolve().parents[1]
FLAG_TARGET, PAIR_TARGET = 0.90, 0.70
ATTRIBUTES = {"type": "true_type", "colour": "true_colour", "material": "true_material"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "audit", help="output folder")
    parser.add_argument("--listings", type=int, default=8000, help="generated listings (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=1500, help="training steps of each round (default: %(default)s)")
    parser.add_argument("--flip", type=float, default=0.10, help="share of drawn labels flipped (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, the flips and training")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return parser.parse_args()


def pipeline(args: argparse.Namespace):
    data = tomllib.loads(DEMO_TOML)
    data["out"] = str(args.out)
    data["listings"]["paths"] = [str(args.out / "data" / "listings.csv")]
    data["shards"]["images_root"] = str(args.out / "data")
    data["shards"]["carry"] = ["true_type", "true_colour", "true_material"]
    data["train"].update({"steps": args.steps, "batch_size": 64, "eval_every": max(args.steps // 4, 1),
                          "seed": args.seed})
    data["eval"]["relevance"] = ["true_type"]
    data["audit"] = {"apply": True}
    return parse_pipeline(data, base=args.out)


def label_table(vocab: Path) -> pd.DataFrame:
    labels = pd.read_parquet(vocab / "labels.parquet", columns=["label_id", "name", "aliases", "support"])
    labels["kind"] = [label_kind(n, a) for n, a in zip(labels["name"], labels["aliases"], strict=True)]
    values = [label_values(n, a) for n, a in zip(labels["name"], labels["aliases"], strict=True)]
    labels["value"] = [next(iter(v)) if len(v) == 1 else None for v in values]
    return labels


def flip_labels(labeled: Path, labels: pd.DataFrame, rate: float, seed: int) -> pd.DataFrame:
    """Flip drawn labels in the labeled parts, in place; the flips as (id, split-free) rows."""
    rng = np.random.default_rng(seed)
    named = labels.dropna(subset=["value"])
    value_of = dict(zip(named["label_id"], named["value"], strict=True))
    by_attribute = {a: named[[v[0] == a for v in named["value"]]] for a in ATTRIBUTES}
    flips = []
    for part in labeled_parts(labeled):
        table = pq.read_table(part)
        frame = table.select(["id", "labels", *ATTRIBUTES.values()]).to_pandas()
        new_labels = []
        for row in frame.itertuples():
            ids = list(row.labels)
            for position, label in enumerate(ids):
                value = value_of.get(label)
                if value is None or getattr(row, ATTRIBUTES[value[0]]) != value[1] or rng.random() >= rate:
                    continue
                choices = by_attribute[value[0]]
                choices = choices[[v[1] != value[1] and i not in ids for i, v in
                                   zip(choices["label_id"], choices["value"], strict=True)]]
                if choices.empty:
                    continue
                weights = choices["support"].to_numpy(dtype=float)
                new = int(rng.choice(choices["label_id"].to_numpy(), p=weights / weights.sum()))
                ids[position] = new
                flips.append({"id": str(row.id), "old": int(label), "new": new})
            new_labels.append(ids)
        column = table.schema.get_field_index("labels")
        table = table.set_column(column, table.schema.field(column), pa.array(new_labels, type=table["labels"].type))
        pq.write_table(table, part)
    return pd.DataFrame(flips, columns=["id", "old", "new"])


def precision_recall(flagged: set, truth: set, judged: set) -> tuple[float, float]:
    flagged_judged = flagged & judged
    precision = len(flagged_judged & truth) / len(flagged_judged) if flagged_judged else float("nan")
    recall = len(flagged & truth) / len(truth) if truth else float("nan")
    return precision, recall


def flag_scores(audit: pd.DataFrame, labels: pd.DataFrame) -> dict[str, float]:
    table = audit.merge(labels[["label_id", "kind"]], on="label_id")
    judged = table[(table["verdict"] != "unjudged") & table["kind"].notna()]
    flagged = set(judged.loc[judged["verdict"] == "non-visual", "label_id"])
    truth = set(judged.loc[judged["kind"] == "non-visual", "label_id"])
    precision, recall = precision_recall(flagged, truth, set(judged["label_id"]))
    return {"precision": precision, "recall": recall, "judged_with_truth": len(judged), "flagged": len(flagged),
            "non_visual_truth": len(truth), "unjudged": int((table["verdict"] == "unjudged").sum()),
            "labels": len(table)}


def truth_of_pairs(pairs: pd.DataFrame, labels: pd.DataFrame, listings: pd.DataFrame) -> pd.Series:
    """Per pair: True when the label is wrong for the listing, False when right, None when unknown."""
    value_of = dict(zip(labels["label_id"], labels["value"], strict=True))
    truth = listings.set_index("id")
    wrong = []
    for pair in pairs.itertuples():
        value = value_of.get(pair.label_id)
        wrong.append(None if value is None else truth.at[pair.id, ATTRIBUTES[value[0]]] != value[1])
    return pd.Series(wrong, index=pairs.index, dtype=object)


def pair_scores(pairs: pd.DataFrame, kind: str, injected: pd.DataFrame, labels: pd.DataFrame,
                listings: pd.DataFrame, split: str | None = None) -> dict[str, float]:
    marked = pairs[pairs["kind"] == kind]
    if split is not None:
        marked = marked[marked["split"] == split]
        injected = injected[injected["split"] == split]
    wanted = {(i, label) for i, label in zip(injected["id"], injected["label"], strict=True)}
    found = {(i, label) for i, label in zip(marked["id"], marked["label_id"], strict=True)}
    wrong = truth_of_pairs(marked, labels, listings)
    known = wrong.notna()
    is_error = wrong[known] if kind == "contradicted" else ~wrong[known].astype(bool)
    return {"recall": len(found & wanted) / len(wanted) if wanted else float("nan"),
            "precision": float(is_error.astype(bool).mean()) if known.any() else float("nan"),
            "marked": len(marked), "known": int(known.sum()), "injected": len(wanted)}


def say(line: str) -> None:
    print(line, flush=True)


def main() -> int:
    args = parse_args()
    args.out = args.out.resolve()
    started = time.perf_counter()
    data = args.out / "data"
    if not (data / "listings.csv").is_file():
        generate_listings(args.listings, data, seed=args.seed, image_size=64, progress=not args.quiet)
    flow = pipeline(args)
    echo = lambda line: say(f"[pipeline] {line}")
    flips_file = args.out / "flips.parquet"
    if not flips_file.is_file():
        run_pipeline(flow, until="assign", progress=not args.quiet, echo=echo)
        labels = label_table(flow.folder("vocab"))
        flips = flip_labels(flow.folder("assign"), labels, args.flip, args.seed)
        flips.to_parquet(flips_file, index=False)
        run_pipeline(flow, start="shards", progress=not args.quiet, echo=echo)
    else:  # the flips are in the labeled parts already: every stage up to date is skipped
        run_pipeline(flow, progress=not args.quiet, echo=echo)
    labels = label_table(flow.folder("vocab"))
    flips = pd.read_parquet(flips_file)
    listings = pd.read_csv(data / "listings.csv", dtype=str, keep_default_na=False)
    audit = pd.read_parquet(flow.folder("audit") / "labels_audit.parquet")
    pairs = pd.read_parquet(flow.folder("audit") / "pairs.parquet")
    split_of = _splits(flow.folder("shards"))
    flips["split"] = flips["id"].map(split_of)
    results = {"flags": flag_scores(audit, labels),
               "contradicted": {"all": pair_scores(pairs, "contradicted", flips.rename(columns={"new": "label"}),
                                                   labels, listings)},
               "missed": {"all": pair_scores(pairs, "missed", flips.rename(columns={"old": "label"}), labels,
                                             listings)}}
    for split in sorted(set(split_of.values())):
        results["contradicted"][split] = pair_scores(pairs, "contradicted", flips.rename(columns={"new": "label"}),
                                                     labels, listings, split)
    round2 = json.loads((flow.folder("round2") / "manifest.json").read_text())["outputs"]
    results["rounds"] = {name: figures.get("true_type") for name, figures in round2.items()}
    results["audit_timings_s"] = json.loads((flow.folder("audit") / "manifest.json").read_text())["timings_s"]
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    report(results, args, time.perf_counter() - started)
    return 0


def _splits(shards: Path) -> dict[str, str]:
    from weaklabel.datasets.format import shard_samples
    from weaklabel.datasets.loader import ShardInfo

    info = ShardInfo.load(shards)
    return {str(json.loads(members["json"])["id"]): split for split, paths in info.splits.items()
            for path in paths for _, members in shard_samples(path)}


def report(results: dict, args: argparse.Namespace, seconds: float) -> None:
    flags = results["flags"]
    say(f"\naudit on {args.listings} generated listings, {args.steps} steps, {args.flip:.0%} of drawn labels flipped "
        f"({seconds / 60:.1f} min)")
    say(f"non-visual flags: precision {flags['precision']:.3f}, recall {flags['recall']:.3f} over "
        f"{flags['judged_with_truth']} judged labels with a known kind ({flags['non_visual_truth']} non-visual; "
        f"{flags['unjudged']} of {flags['labels']} labels unjudged): "
        + ("met" if min(flags["precision"], flags["recall"]) >= FLAG_TARGET else "MISSED") + f" (>= {FLAG_TARGET})")
    for kind in ("contradicted", "missed"):
        for split, s in results[kind].items():
            say(f"{kind} pairs ({split}): recall {s['recall']:.3f} of {s['injected']} injected, precision "
                f"{s['precision']:.3f} over {s['known']} of {s['marked']} marked with a known truth")
    c = results["contradicted"]["all"]
    say(f"contradicted target (recall >= {PAIR_TARGET} at precision >= {PAIR_TARGET}): "
        + ("met" if c["recall"] >= PAIR_TARGET and c["precision"] >= PAIR_TARGET else "MISSED"))
    rounds = results["rounds"]
    say("true type retrieval, round 1 -> round 2: " + ", ".join(
        f"{key} {rounds['round1'][key]:.3f} -> {rounds['round2'][key]:.3f}" for key in ("recall@1", "map@10")))
    say(f"audit timings (s): {results['audit_timings_s']}")


if __name__ == "__main__":
    sys.exit(main())
