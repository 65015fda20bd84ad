"""Label quality and labeling speed on the real fashion catalogue (../shared/data/fashion).

Only ``title`` is read to build and assign labels; ``articleType`` is read afterwards, to score.

Quality: for each articleType, the F1 of the single best label as a predictor of that type;
printed as the mean weighted by type size, the macro mean over types with >= 20 items, the
weighted mean over the tail tier of types (the rarest, holding the last 20% of listings, as
``weaklabel eval`` draws tiers) and coverage (listings with >= 1 label). Run with clustering on and off.
Speed: vocabulary build from a cold and a warm embedding cache; assignment listings/s on one
core beside scikit-learn's CountVectorizer.transform (same texts, same n-gram range).

With --ceiling, also an oracle's figure (it reads articleType to choose each type's n-grams): how
far any clustering of the title n-grams could go.

    python benchmarks/labeling_fashion.py [--data ../shared/data/fashion] [--out bench-out/labeling]
                                          [--model DIR] [--ceiling]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from weaklabel.eval.tiers import value_tiers
from weaklabel.labeling import LabelAssigner, build_vocabulary
from weaklabel.labeling.text import Analyzer, term_key
from weaklabel.listings import ColumnRoles, Field, read_listings

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion"


def best_label_f1(types: pd.Series, labels: pd.Series, n_labels: int, min_items: int = 20) -> dict:
    """Per type, the best single label's F1; weighted mean, macro mean over types >= min_items, coverage,
    and ``losses``: per type, its best label and the weighted F1 it loses, largest first."""
    type_codes, type_names = pd.factorize(types)
    lengths = labels.map(len).to_numpy()
    rows = np.repeat(np.arange(len(labels)), lengths)
    cols = np.concatenate([np.asarray(v, dtype=np.int64) for v in labels]) if lengths.sum() else np.zeros(0, int)
    y = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(labels), max(n_labels, 1)))
    a = csr_matrix((np.ones(len(types)), (np.arange(len(types)), type_codes)), shape=(len(types), len(type_names)))
    tp = (a.T @ y).toarray()
    n_type = np.asarray(a.sum(axis=0)).ravel()
    n_label = np.asarray(y.sum(axis=0)).ravel()
    per_label_f1 = 2 * tp / (n_type[:, None] + n_label[None, :] + 1e-12)
    f1, best = per_label_f1.max(axis=1), per_label_f1.argmax(axis=1)
    big = n_type >= min_items
    tier = value_tiers(list(types))
    tail = np.array([tier[name] == "tail" for name in type_names])
    return {
        "weighted_f1": float((f1 * n_type).sum() / n_type.sum()),
        "macro_f1_20": float(f1[big].mean()),
        "tail_weighted_f1": float((f1 * n_type)[tail].sum() / n_type[tail].sum()),
        "coverage": float((lengths > 0).mean()),
        "losses": pd.DataFrame({"type": type_names, "items": n_type.astype(int), "f1": f1, "best_label": best,
                                "loss": (1 - f1) * n_type / n_type.sum()}).sort_values("loss", ascending=False),
    }


def ceiling_f1(titles: list[str], types: pd.Series, analyzer: Analyzer, max_terms: int = 8, candidates: int = 300,
               min_support: int = 3) -> float:
    """An oracle that reads articleType, to show how far any clustering of the n-grams could go: per
    type, the union of up to ``max_terms`` n-gram groups (one group per term key, so variants are
    one) that maximizes the type's F1, chosen greedily among the ``candidates`` commonest in the
    type. It ignores the overlap rule and lets one n-gram serve several types, so it is generous."""
    keys = [{term_key(g) for g in analyzer.ngram_list(t)} for t in titles]
    codes, _ = pd.factorize(pd.Series([k for ks in keys for k in ks], dtype=object))
    rows = np.repeat(np.arange(len(keys)), [len(ks) for ks in keys])
    x = csr_matrix((np.ones(len(codes), bool), (rows, codes))).tocsc()
    x = x[:, np.flatnonzero(np.asarray(x.sum(axis=0)).ravel() >= min_support)]
    type_codes, type_names = pd.factorize(types)
    f1 = np.zeros(len(type_names))
    for t in range(len(type_names)):
        is_type = type_codes == t
        in_type = np.asarray(x[is_type].sum(axis=0)).ravel()
        columns = x[:, np.argsort(-in_type, kind="stable")[:candidates]].toarray()
        member = np.zeros(len(keys), bool)
        for _ in range(max_terms):
            union = member[:, None] | columns
            scores = 2 * (union & is_type[:, None]).sum(axis=0) / (is_type.sum() + union.sum(axis=0))
            if scores.max() <= f1[t]:
                break
            f1[t], member = scores.max(), union[:, scores.argmax()]
    n_type = np.bincount(type_codes)
    return float((f1 * n_type).sum() / n_type.sum())


def time_assignment(assigner: LabelAssigner, frame: pd.DataFrame, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        assigner.transform_arrow(frame)
        best = min(best, time.perf_counter() - start)
    return len(frame) / best


def time_count_vectorizer(texts: list[str], ngram_range: tuple[int, int], repeats: int = 3) -> float:
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(ngram_range=ngram_range, min_df=3).fit(texts)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        vectorizer.transform(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("bench-out/labeling"))
    parser.add_argument("--ceiling", action="store_true",
                        help="also print an oracle's weighted F1 (it reads articleType; see ceiling_f1)")
    parser.add_argument("--model", help="text embedding model: a local sentence-transformers directory "
                        "(default: the packaged all-MiniLM-L6-v2)")
    args = parser.parse_args()
    csv = args.data / "listings.csv"
    if not csv.exists():
        print(f"skipped: {csv} not found")
        return 0
    roles = ColumnRoles(fields=(Field("title", "text"),), id="id", image="image")
    cache = args.out / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    truth = pd.read_csv(csv, usecols=["id", "articleType"], dtype={"id": str}).set_index("id")["articleType"]

    results = {}
    for name, options in (("clustering on", {"model": args.model}), ("clustering off", {"cluster": False})):
        start = time.perf_counter()
        vocab = build_vocabulary(csv, roles, args.out / name.replace(" ", "_"), progress=False, cache_dir=cache, **options)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        vocab = build_vocabulary(csv, roles, args.out / name.replace(" ", "_"), progress=False, cache_dir=cache, **options)
        warm = time.perf_counter() - start
        listings = read_listings(csv, roles)
        assigned = LabelAssigner(vocab, roles).transform(listings)
        types = truth.loc[listings.frame["id"]].reset_index(drop=True)
        quality = best_label_f1(types, assigned["labels"].reset_index(drop=True), len(vocab.labels))
        results[name] = {**quality, "labels": len(vocab.labels), "build_cold_s": cold, "build_warm_s": warm,
                         "label_names": vocab.labels["name"].to_numpy()}

    print(f"{'':16}{'weighted F1':>12}{'macro F1>=20':>14}{'tail F1':>9}{'coverage':>10}{'labels':>8}"
          f"{'build cold s':>14}{'warm s':>8}")
    for name, r in results.items():
        print(f"{name:16}{r['weighted_f1']:12.3f}{r['macro_f1_20']:14.3f}{r['tail_weighted_f1']:9.3f}"
              f"{r['coverage']:10.3f}{r['labels']:8d}{r['build_cold_s']:14.1f}{r['build_warm_s']:8.1f}")
    print("tail F1: the weighted F1 over the tail tier of articleTypes (the rarest, holding the last 20% of listings)")
    on = results["clustering on"]
    print("where the weighted F1 goes (clustering on), largest losses:")
    for row in on["losses"].head(8).itertuples():
        best = repr(on["label_names"][row.best_label]) if row.f1 > 0 else "-"
        print(f"  {row.type:<16}{row.items:>6} items  best label {best:<18} F1 {row.f1:.3f}  loses {row.loss:.4f}")
    if args.ceiling:  # the listings, types and analyzer of the last run above: the same for both runs
        ceiling = ceiling_f1(listings.frame["title"].tolist(), types, vocab.make_analyzer())
        print(f"ceiling: {ceiling:.3f} weighted F1 for an oracle that reads articleType and, per type, unites the "
              "best of up to 8 n-grams (brand names among them) into one label")
    print("targets: weighted F1 >= 0.90, coverage >= 0.97, cold build <= 60 s, warm <= 10 s "
          "(cold includes the embedding of every candidate term; the first run also loads torch from disk)")

    import threadpoolctl

    with threadpoolctl.threadpool_limits(1):
        listings = read_listings(csv, roles)
        assigner = LabelAssigner(str(args.out / "clustering_on"), roles)
        ours = time_assignment(assigner, listings.frame)
        baseline = time_count_vectorizer(listings.frame["title"].tolist(), tuple(assigner.analyzer_.ngram_range))
    print(f"assignment: {ours:,.0f} listings/s on one core; CountVectorizer.transform {baseline:,.0f}/s; "
          f"ratio {ours / baseline:.2f} (targets >= 40,000/s, ratio >= 0.7)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
