"""Facets found from text alone, scored against the ground-truth columns of every corpus at hand.

Each corpus's vocabulary is built with the defaults (facets on) from its text fields, as
``benchmarks/labeling.py`` builds it, and its listings are assigned; ground-truth columns are read
only afterwards, to score. For each truth column: the facet whose top-1 label (the one label a
listing gets in that facet) best predicts it, by the weighted best-match F1 (for each truth class
the F1 of the single best facet label, weighted by class size; a listing with no label in the
facet counts as a miss), and that facet's coverage.

On the generated corpus, whose generator knows each listing's type and colour, also the *purity*
of the best facet: each facet label stands for the truth class it most often goes with, and
purity is the share of the listings holding a label of the facet that it gets right.

Targets (fashion): articleType >= 0.85, baseColour >= 0.80, gender >= 0.95; printed "met" or
"MISSED". Every figure goes to OUT/results.json.

    python benchmarks/facets.py [--data ../shared/data] [--out bench-out/facets] [--generated-n 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pandas as pd
from labeling import CORPORA, DEFAULT_DATA

from weaklabel.facets import facet_members
from weaklabel.labeling import LabelAssigner, VocabularyBuilder
from weaklabel.listings import read_listings
from weaklabel.synthetic import generate_listings

TRUTHS = {"fashion": ("articleType", "baseColour", "gender"), "flipkart": ("cat2", "cat3"),
          "generated": ("true_type", "true_colour", "true_material")}
TARGETS = {("fashion", "articleType"): 0.85, ("fashion", "baseColour"): 0.80, ("fashion", "gender"): 0.95}
PURITY_TRUTHS = ("true_type", "true_colour")


def best_match_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Per truth class, the F1 of the single best predicted label; weighted by class size. -1 = no label."""
    frame = pd.DataFrame({"truth": truth, "label": predicted})
    label_count = frame.loc[frame["label"] >= 0, "label"].value_counts()
    total = 0.0
    for _, rows in frame.groupby("truth"):
        hits = rows.loc[rows["label"] >= 0, "label"].value_counts()
        if len(hits):
            total += float((2 * hits / (len(rows) + label_count.reindex(hits.index))).max()) * len(rows)
    return total / max(len(frame), 1)


def purity(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Share of labelled listings whose facet label's majority truth class is their own."""
    frame = pd.DataFrame({"truth": truth, "label": predicted})
    frame = frame[frame["label"] >= 0]
    majority = frame.groupby("label")["truth"].agg(lambda values: values.value_counts().index[0])
    return float((frame["label"].map(majority) == frame["truth"]).mean()) if len(frame) else 0.0


def corpus_csv(name: str, args: argparse.Namespace) -> Path | None:
    if name == "generated":
        out = args.out / "generated"
        if not (out / "listings.csv").is_file():
            generate_listings(args.generated_n, out, seed=0, images=False)
        return out / "listings.csv"
    path = args.data / name / "listings.csv"
    return path if path.is_file() else None


def score_corpus(name: str, csv: Path) -> dict:
    corpus = CORPORA[name]
    listings = read_listings([csv], corpus.roles, progress=False)
    started = time.perf_counter()
    builder = VocabularyBuilder(corpus.roles).fit(listings)
    vocabulary = builder.vocabulary_
    seconds = time.perf_counter() - started
    assigned = LabelAssigner(vocabulary, corpus.roles).fit().transform(listings)
    members = facet_members(vocabulary.labels)
    names = vocabulary.labels["name"].to_numpy()
    chosen = (np.array([list(row) for row in assigned["facets"]]) if members
              else np.zeros((len(assigned), 0), np.int64))
    truth = pd.read_csv(csv, dtype=str, keep_default_na=False).set_index("id").loc[listings.frame["id"].astype(str)]
    result = {"facets": len(members), "vocab_seconds": seconds, "facet_seconds": builder.timer_.seconds["facets"],
              "facet_list": [{"name": n, "labels": len(ids), "coverage": float((chosen[:, i] >= 0).mean())}
                             for i, (n, ids) in enumerate(members.items())], "truths": {}}
    print(f"{name}: {len(listings.frame):,} listings, {len(vocabulary.labels):,} labels, {len(members)} facets "
          f"(vocabulary {seconds:.0f} s, of which facets {builder.timer_.seconds['facets']:.1f} s)")
    for position, (facet, ids) in enumerate(list(members.items())[:6]):
        print(f"  facet {facet}: {len(ids)} labels, coverage {(chosen[:, position] >= 0).mean():.3f}: "
              f"{', '.join(names[ids[:10]])}{' ...' if len(ids) > 10 else ''}")
    for column in TRUTHS[name]:
        values = truth[column].to_numpy()
        scores = [best_match_f1(values, chosen[:, i]) for i in range(len(members))]
        best = int(np.argmax(scores)) if scores else None
        entry = {"facet": list(members)[best] if best is not None else None,
                 "f1": scores[best] if best is not None else 0.0,
                 "coverage": float((chosen[:, best] >= 0).mean()) if best is not None else 0.0}
        if name == "generated" and column in PURITY_TRUTHS and best is not None:
            entry["purity"] = purity(values, chosen[:, best])
        target = TARGETS.get((name, column))
        entry["target"] = target
        verdict = "" if target is None else f" (target >= {target}: {'met' if entry['f1'] >= target else 'MISSED'})"
        extra = f", purity {entry['purity']:.3f}" if "purity" in entry else ""
        print(f"  {column}: best facet {entry['facet']!r}, weighted best-match F1 {entry['f1']:.3f}, "
              f"coverage {entry['coverage']:.3f}{extra}{verdict}")
        result["truths"][column] = entry
    return result


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding fashion/ and flipkart/")
    parser.add_argument("--out", type=Path, default=Path("bench-out/facets"))
    parser.add_argument("--generated-n", type=int, default=2000, help="listings of the generated corpus")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in TRUTHS:
        csv = corpus_csv(name, args)
        if csv is None:
            print(f"{name}: skipped ({args.data / name} is absent)")
            continue
        results[name] = score_corpus(name, csv)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
