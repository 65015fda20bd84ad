"""Label quality on every corpus at hand, and labeling speed on the real fashion catalogue.

Corpora (one printed line skips a corpus whose folder under --data is absent):

- fashion: ``DATA/fashion/listings.csv``, labels from ``title`` alone; truth ``articleType``.
- flipkart: ``DATA/flipkart/listings.csv``, labels from ``title`` alone, no images; truth ``cat2``
  and ``cat3``, both scored on the same labels.
- generated: ``weaklabel.synthetic.generate_listings`` (``--generated-n`` listings, seed 0, no
  images), labels from the fields of the demo's pipeline file (title, description:0.3, tags:0.5,
  category_path:0.5); truth ``true_type``.

Vocabularies are built with the defaults, once with clustering and once without; truth columns
are read only afterwards, to score. For each truth class, the F1 of the single best label as a
predictor of that class, printed as the mean weighted by class size, with all of a listing's
labels ("all F1") and with only its highest-scoring one ("top-1 F1"; ties go to the first in the
list); the macro mean over classes with >= 20 items; the weighted mean over the tail tier of
classes (the rarest, holding the last 20% of listings, as ``weaklabel eval`` draws tiers);
coverage (listings with >= 1 label); the number of labels.

With --ceiling, an oracle's figure per corpus and truth (it reads the truth to choose each class's
n-grams; see ``ceiling_f1``): how far any clustering of the text fields' n-grams could go.

On the generated corpus, the share of the 50 labels of most support, and of all labels, that name
concepts of the generator rather than its filler and boilerplate (see ``concept_keys``).

Speed (fashion, unless --no-speed): vocabulary build from a cold and a warm embedding cache;
assignment listings/s on one core beside scikit-learn's CountVectorizer.transform (same texts,
same n-gram range).

Every target is printed with "met" or "MISSED"; every figure is written to OUT/results.json.

    python benchmarks/labeling.py [--data ../shared/data] [--out bench-out/labeling]
                                  [--corpus fashion|flipkart|generated ...] [--model DIR]
                                  [--ceiling] [--generated-n 2000] [--no-speed]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from weaklabel.demo import DEMO_TOML
from weaklabel.labeling import LabelAssigner, Vocabulary, build_vocabulary
from weaklabel.labeling.text import Analyzer, as_term, term_key
from weaklabel.listings import ROLES, ColumnRoles, Field, Listings, read_listings
from weaklabel.synthetic import AUDIENCES, BRANDS, COLOURS, GROUPS, MATERIALS, PRODUCT_TYPES, generate_listings
from weaklabel.tiers import value_tiers

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETTINGS: dict[str, dict] = {"clustering on": {}, "clustering off": {"cluster": False}}
TOP = 50  # labels of most support judged on the generated corpus


@dataclass(frozen=True)
class Corpus:
    name: str
    roles: ColumnRoles
    truths: tuple[str, ...]


def demo_roles() -> ColumnRoles:
    """The fields of the demo's pipeline file, parsed as the pipeline parses them; no image column."""
    listings = tomllib.loads(DEMO_TOML)["listings"]
    return ColumnRoles(tuple(Field.parse(spec, role) for role in ROLES for spec in listings.get(role, ())),
                       id="id", image=None)


TITLE = (Field("title", "text"),)
CORPORA: dict[str, Corpus] = {  # in this order, so that fashion's first build is from a cold cache
    "fashion": Corpus("fashion", ColumnRoles(TITLE, id="id", image="image"), ("articleType",)),
    "flipkart": Corpus("flipkart", ColumnRoles(TITLE, id="id", image=None), ("cat2", "cat3")),
    "generated": Corpus("generated", demo_roles(), ("true_type",)),
}


@dataclass
class Run:
    """One vocabulary built on a corpus and the labels it assigns to the corpus's listings."""

    vocab: Vocabulary
    listings: Listings
    assigned: pd.DataFrame  # labels, scores, evidence; one row per listing
    cold_s: float
    warm_s: float | None


# --------------------------------------------------------------------------- quality


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


def top_label(labels: pd.Series, scores: pd.Series) -> pd.Series:
    """Each listing's highest-scoring label alone (ties: the first in the list, as ``np.argmax``)."""
    return pd.Series([[int(ls[int(np.argmax(ss))])] if len(ls) else [] for ls, ss in zip(labels, scores)],
                     dtype=object)


def score(run: Run, types: pd.Series, shown_losses: int = 8) -> dict:
    """best_label_f1 with all labels, beside the weighted F1 of the top-1 labels; the largest losses named."""
    labels = run.assigned["labels"].reset_index(drop=True)
    names = run.vocab.labels["name"].to_numpy()
    every = best_label_f1(types, labels, len(names))
    top1 = best_label_f1(types, top_label(labels, run.assigned["scores"]), len(names))
    losses = [{"type": str(row.type), "items": int(row.items), "f1": float(row.f1), "loss": float(row.loss),
               "best_label": str(names[row.best_label]) if row.f1 > 0 else None}
              for row in every.pop("losses").head(shown_losses).itertuples()]
    return {**every, "top1_f1": top1["weighted_f1"], "losses": losses}


def ceiling_f1(texts: Sequence[Sequence[str]], types: pd.Series, analyzer: Analyzer, max_terms: int = 8,
               candidates: int = 300, min_support: int = 3) -> float:
    """An oracle that reads the truth, to show how far any clustering of the n-grams could go: per
    type, the union of up to ``max_terms`` n-gram groups (one group per term key, so variants are
    one) that maximizes the type's F1, chosen greedily among the ``candidates`` commonest in the
    type. ``texts`` holds, per listing, the values of its text fields (n-grams never cross two). It
    ignores the overlap rule and lets one n-gram serve several types, so it is generous."""
    keys = [{term_key(g) for value in values for g in analyzer.ngram_list(value)} for values in texts]
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


def text_values(listings: Listings) -> list[list[str]]:
    """Per listing, the values of its text fields."""
    columns = [f.column for f in listings.roles.fields if f.role == "text"]
    return [list(values) for values in listings.frame[columns].itertuples(index=False)]


# --------------------------------------------------------------------------- concepts of the generator

STRICT_CONCEPTS = [v for table in (PRODUCT_TYPES, COLOURS, MATERIALS) for item in table for v in item.variants]
CATEGORY_LEVELS = sorted({level for ptype in PRODUCT_TYPES for level in ptype.category.split(" > ")})
ATTRIBUTES = [*BRANDS, *AUDIENCES, *(style for group in GROUPS.values() for style in group.styles), *CATEGORY_LEVELS]


def typos(word: str) -> set[str]:
    """Every typo the generator's ``_typo`` can make of a word of 4 letters or more: one letter (never
    the first) swapped with the next, dropped or doubled."""
    if len(word) < 4:
        return set()
    return {typo for j in range(1, len(word) - 1)
            for typo in (word[:j] + word[j + 1] + word[j] + word[j + 2:], word[:j] + word[j + 1:],
                         word[:j] + word[j] + word[j:])}


def concept_keys(entries: Iterable[str]) -> set[str]:
    """The concept vocabulary of some of the generator's table entries, as term keys: each entry is
    written as the analyzer writes it (``as_term``); the keys are those of its words, of the entry
    written as one word ("t shirt" -> "tshirt") and of each typo the generator can make of a word.

    A label is a concept when every word of its name has its key here ("black leather", "navy blue
    t shirt"; not "vary slightly", "arrivals", "gift"): a judgement on names, which does not look at
    which listings a label went to. Strict concepts are the variants of PRODUCT_TYPES, COLOURS and
    MATERIALS; attributes add BRANDS, AUDIENCES, the GROUPS' styles and the levels of the category
    tree ("Clothing", "Home & Living": the shop's taxonomy, real concepts of a listing). Everything
    else the generator writes is filler or boilerplate: FILLERS, GENERIC_TAGS, the sentence
    templates, the specs, the separators."""
    keys = set()
    for entry in entries:
        term = as_term(entry)
        keys.add(term_key(term))
        for word in term.split():
            keys.add(term_key(word))
            keys.update(term_key(typo) for typo in typos(word))
    return keys


def is_concept(name: str, keys: set[str]) -> bool:
    return all(term_key(word) in keys for word in as_term(name).split())


def concept_shares(vocab: Vocabulary, top: int = TOP) -> dict:
    """Shares of the ``top`` labels of most support (label_id < top) and of all labels that are concepts,
    strict and with attributes; the top labels that are not concepts, and those that are attributes only."""
    labels = vocab.labels.sort_values("label_id")
    strict_keys = concept_keys(STRICT_CONCEPTS)
    attribute_keys = strict_keys | concept_keys(ATTRIBUTES)
    strict = np.array([is_concept(name, strict_keys) for name in labels["name"]])
    attribute = np.array([is_concept(name, attribute_keys) for name in labels["name"]])
    head = labels.head(top)
    return {
        "top": len(head),
        "top_strict_share": float(strict[:top].mean()),
        "top_attribute_share": float(attribute[:top].mean()),
        "all_strict_share": float(strict.mean()),
        "all_attribute_share": float(attribute.mean()),
        "labels": len(labels),
        "top_not_concepts": head.loc[~attribute[:top], ["name", "support"]].to_dict("records"),
        "top_attributes_only": head.loc[attribute[:top] & ~strict[:top], "name"].tolist(),
    }


# --------------------------------------------------------------------------- speed


def items_per_second(work: Callable[[], object], items: int, repeats: int = 3) -> float:
    """``items`` over the fastest of ``repeats`` runs of ``work``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return items / best


def time_assignment(assigner: LabelAssigner, frame: pd.DataFrame) -> float:
    return items_per_second(lambda: assigner.transform_arrow(frame), len(frame))


def time_count_vectorizer(texts: list[str], ngram_range: tuple[int, int]) -> float:
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(ngram_range=ngram_range, min_df=3).fit(texts)
    return items_per_second(lambda: vectorizer.transform(texts), len(texts))


def assignment_speed(csv: Path, roles: ColumnRoles, vocab_folder: Path) -> dict:
    """Assignment listings/s on one core, beside CountVectorizer.transform on the same titles."""
    import threadpoolctl

    with threadpoolctl.threadpool_limits(1):
        listings = read_listings(csv, roles)
        assigner = LabelAssigner(str(vocab_folder), roles).fit()
        ours = time_assignment(assigner, listings.frame)
        baseline = time_count_vectorizer(listings.frame["title"].tolist(), tuple(assigner.analyzer_.ngram_range))
    return {"assign_per_s": ours, "count_vectorizer_per_s": baseline, "ratio": ours / baseline}


# --------------------------------------------------------------------------- running


def corpus_csv(name: str, args: argparse.Namespace) -> Path | None:
    """The corpus's listings file (the generated one is written first); None, with a line, when absent."""
    if name == "generated":
        folder = args.out / "generated" / "data"
        generate_listings(args.generated_n, folder, seed=0, images=False)
        return folder / "listings.csv"
    folder = args.data / name
    if not (folder / "listings.csv").is_file():
        print(f"{name}: skipped, {folder / 'listings.csv'} not found")
        return None
    return folder / "listings.csv"


def build_and_assign(csv: Path, roles: ColumnRoles, folder: Path, warm: bool, **options) -> Run:
    """Build the vocabulary (twice with ``warm``: the second from a warm cache), assign its labels."""
    start = time.perf_counter()
    vocab = build_vocabulary(csv, roles, folder, progress=False, overwrite=True, **options)
    cold = time.perf_counter() - start
    warm_s = None
    if warm:
        start = time.perf_counter()
        vocab = build_vocabulary(csv, roles, folder, progress=False, overwrite=True, **options)
        warm_s = time.perf_counter() - start
    listings = read_listings(csv, roles)
    return Run(vocab, listings, LabelAssigner(vocab, roles).fit().transform(listings), cold, warm_s)


def read_truth(csv: Path, corpus: Corpus, listings: Listings) -> pd.DataFrame:
    """The truth columns, row for row with the listings (an empty cell is a class of its own)."""
    id_column = corpus.roles.id
    truth = pd.read_csv(csv, usecols=[id_column, *corpus.truths], dtype=str, keep_default_na=False)
    return truth.set_index(id_column).loc[listings.frame[id_column]].reset_index(drop=True)


def run_corpus(corpus: Corpus, csv: Path, args: argparse.Namespace) -> dict:
    """Both settings on one corpus: figures per setting and truth, then the ceiling, concepts and speed."""
    figures = {}
    for setting, options in SETTINGS.items():
        folder = args.out / corpus.name / setting.replace(" ", "_")
        run = build_and_assign(csv, corpus.roles, folder, warm=corpus.name == "fashion" and not args.no_speed,
                               model=args.model, cache_dir=args.out / "cache", **options)
        truth = read_truth(csv, corpus, run.listings)
        figures[setting] = {"labels": len(run.vocab.labels), "build_cold_s": run.cold_s, "build_warm_s": run.warm_s,
                            "truths": {column: score(run, truth[column]) for column in corpus.truths}}
        if setting == "clustering on" and corpus.name == "generated":
            figures["concepts"] = concept_shares(run.vocab)
    if args.ceiling:  # the listings, truth and analyzer of the last run above: the same for both runs
        values, analyzer = text_values(run.listings), run.vocab.make_analyzer()
        figures["ceiling"] = {column: ceiling_f1(values, truth[column], analyzer) for column in corpus.truths}
    if corpus.name == "fashion" and not args.no_speed:
        figures["speed"] = assignment_speed(csv, corpus.roles, args.out / corpus.name / "clustering_on")
    return figures


# --------------------------------------------------------------------------- printing


def print_quality(results: dict) -> None:
    print(f"{'corpus':10}{'truth':13}{'clustering':>10}{'all F1':>8}{'top-1 F1':>10}{'macro F1>=20':>14}"
          f"{'tail F1':>9}{'coverage':>10}{'labels':>8}")
    for name, figures in results.items():
        for column in CORPORA[name].truths:
            for setting in SETTINGS:
                r = figures[setting]["truths"][column]
                print(f"{name:10}{column:13}{setting.split()[-1]:>10}{r['weighted_f1']:8.3f}{r['top1_f1']:10.3f}"
                      f"{r['macro_f1_20']:14.3f}{r['tail_weighted_f1']:9.3f}{r['coverage']:10.3f}"
                      f"{figures[setting]['labels']:8d}")
    print("all F1 / top-1 F1: per class, the F1 of its best single label, weighted by class size, with all of a "
          "listing's labels / only its highest-scoring one; tail F1: the weighted F1 over the tail tier of classes "
          "(the rarest, holding the last 20% of listings)")


def print_losses(results: dict, shown: int = 5) -> None:
    for name, figures in results.items():
        for column in CORPORA[name].truths:
            print(f"where the all-labels F1 goes on {name} {column} (clustering on), largest losses:")
            for row in figures["clustering on"]["truths"][column]["losses"][:shown]:
                best = repr(row["best_label"]) if row["best_label"] is not None else "-"
                print(f"  {(row['type'] or '(empty)')[:28]:<30}{row['items']:>6} items  best label {best:<22}"
                      f" F1 {row['f1']:.3f}  loses {row['loss']:.4f}")


def print_ceilings(results: dict) -> None:
    for name, figures in results.items():
        for column, ceiling in figures.get("ceiling", {}).items():
            on = figures["clustering on"]["truths"][column]["weighted_f1"]
            print(f"ceiling {name} {column}: {ceiling:.3f} weighted F1 (clustering on: {on:.3f}) for an oracle that "
                  "reads the truth and, per class, unites the best of up to 8 n-grams of the text fields into one "
                  "label")


def print_concepts(concepts: dict) -> None:
    print(f"generated: labels that name the generator's concepts (strict: types, colours, materials; attributes "
          f"add brands, audiences, styles, category levels): top {concepts['top']} by support "
          f"{concepts['top_strict_share']:.0%} strict, {concepts['top_attribute_share']:.0%} with attributes; "
          f"all {concepts['labels']} labels "
          f"{concepts['all_strict_share']:.0%} strict, {concepts['all_attribute_share']:.0%} with attributes")
    junk = ", ".join(f"{r['name']!r} ({r['support']})" for r in concepts["top_not_concepts"]) or "none"
    print(f"  top {concepts['top']} labels that are not concepts (support): {junk}")
    attributes = ", ".join(repr(n) for n in concepts["top_attributes_only"]) or "none"
    print(f"  top {concepts['top']} labels that are attributes, not strict concepts: {attributes}")


def print_speed(fashion: dict) -> None:
    builds = "; ".join(f"{s}: cold {fashion[s]['build_cold_s']:.1f} s, warm {fashion[s]['build_warm_s']:.1f} s"
                       for s in SETTINGS)
    speed = fashion["speed"]
    print(f"fashion vocabulary build, {builds} (cold includes the embedding of every candidate term; the first "
          "build also loads torch from disk)")
    print(f"fashion assignment: {speed['assign_per_s']:,.0f} listings/s on one core; CountVectorizer.transform "
          f"{speed['count_vectorizer_per_s']:,.0f}/s; ratio {speed['ratio']:.2f}")


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    name: str
    value: float
    bound: float
    at_most: bool = False
    fmt: str = ".3f"
    note: str = ""

    @property
    def met(self) -> bool:
        return self.value <= self.bound if self.at_most else self.value >= self.bound

    def line(self) -> str:
        op = "<=" if self.at_most else ">="
        return (f"  {self.name} {op} {self.bound:{self.fmt}}: {self.value:{self.fmt}}{self.note}  "
                f"{'met' if self.met else 'MISSED'}")


def gain(figures: dict, column: str) -> float:
    """Clustering on minus off, on the all-labels weighted F1."""
    return (figures["clustering on"]["truths"][column]["weighted_f1"]
            - figures["clustering off"]["truths"][column]["weighted_f1"])


def targets(results: dict) -> list[Target]:
    found = []
    if "fashion" in results:
        on = results["fashion"]["clustering on"]
        found += [Target("fashion all-labels F1", on["truths"]["articleType"]["weighted_f1"], 0.90),
                  Target("fashion top-1 F1", on["truths"]["articleType"]["top1_f1"], 0.80),
                  Target("fashion coverage", on["truths"]["articleType"]["coverage"], 0.97),
                  Target("fashion clustering on minus off", gain(results["fashion"], "articleType"), 0.05, fmt="+.3f")]
    if "flipkart" in results:
        truths = results["flipkart"]["clustering on"]["truths"]
        found += [Target("flipkart cat2 all-labels F1", truths["cat2"]["weighted_f1"], 0.84),
                  Target("flipkart cat3 all-labels F1", truths["cat3"]["weighted_f1"], 0.79),
                  *(Target(f"flipkart {c} clustering on minus off", gain(results["flipkart"], c), 0.03, fmt="+.3f")
                    for c in ("cat2", "cat3"))]
    if "generated" in results:
        concepts = results["generated"]["concepts"]
        found.append(Target(f"generated top-{concepts['top']} labels that are concepts, attributes included",
                            concepts["top_attribute_share"], 0.95, fmt=".0%",
                            note=f" (strict: {concepts['top_strict_share']:.0%})"))
    if "speed" in results.get("fashion", {}):
        fashion = results["fashion"]
        found += [Target("fashion cold build s", fashion["clustering on"]["build_cold_s"], 60, at_most=True, fmt=".1f"),
                  Target("fashion warm build s", fashion["clustering on"]["build_warm_s"], 10, at_most=True, fmt=".1f"),
                  Target("fashion assignment listings/s on one core", fashion["speed"]["assign_per_s"], 40_000,
                         fmt=",.0f"),
                  Target("fashion assignment / CountVectorizer", fashion["speed"]["ratio"], 0.7, fmt=".2f")]
    return found


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="the shared data root, holding fashion/ and flipkart/ (default: ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("bench-out/labeling"))
    parser.add_argument("--corpus", action="append", choices=list(CORPORA),
                        help="run only this corpus (repeatable; default: all)")
    parser.add_argument("--model", help="text embedding model: a local sentence-transformers directory "
                        "(default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--ceiling", action="store_true",
                        help="also print an oracle's weighted F1 per corpus and truth (it reads the truth; slow)")
    parser.add_argument("--generated-n", type=int, default=2000, help="generated listings (default: 2000)")
    parser.add_argument("--no-speed", action="store_true", help="skip the timings (warm build and assignment)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    shutil.rmtree(args.out / "cache", ignore_errors=True)
    results = {}
    for name, corpus in CORPORA.items():
        if args.corpus and name not in args.corpus:
            continue
        csv = corpus_csv(name, args)
        if csv is not None:
            results[name] = run_corpus(corpus, csv, args)
    if not results:
        return 0
    print_quality(results)
    print_losses(results)
    print_ceilings(results)
    if "generated" in results:
        print_concepts(results["generated"]["concepts"])
    if "speed" in results.get("fashion", {}):
        print_speed(results["fashion"])
    found = targets(results)
    print("targets:")
    for target in found:
        print(target.line())
    results["targets"] = [{"name": t.name, "value": t.value, "bound": t.bound, "at_most": t.at_most, "met": t.met}
                          for t in found]
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=int))
    print(f"figures: {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
