"""The label vocabulary: fitted from listings, saved as an artifact folder, edited by overrides.

``VocabularyBuilder`` follows scikit-learn: parameters are set in ``__init__`` and validated in
``fit``; ``fit`` learns ``vocabulary_``. The fit only needs term statistics
(:class:`~weaklabel.labeling.terms.TermCounts`), so ``fit_counts`` accepts counts made over
partitions elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator

from ..artifacts import Timer, read_manifest, write_parquet
from ..facets import FACET_COLUMN
from ..listings import ColumnRoles, Listings
from ..metrics import multi_hot
from ..tiers import assign_tiers
from .boilerplate import Boilerplate, StripCounts
from .clustering import ClusterParams, cluster_terms, weighted_centroids
from .embeddings import TextEmbedder
from .facets import FACETS_SCHEMA, FacetParams, discover_facets
from .overrides import Overrides, OverridesError, most_frequent_first, no_terms_message
from .terms import TermCounts, phrases, select_candidates
from .text import (
    Analyzer,
    as_term,
    detect_languages,
    language_stopwords,
    resolve_stopwords,
    wants_detected_languages,
)

LABELS_SCHEMA = pa.schema(
    [
        ("label_id", pa.int32()),
        ("name", pa.string()),
        ("aliases", pa.list_(pa.string())),
        ("support", pa.int64()),
        ("tier", pa.string()),
        ("informativeness", pa.float32()),
        ("facet", pa.string()),
    ]
)
TERMS_SCHEMA = pa.schema(
    [
        ("term", pa.string()),
        ("field", pa.string()),
        ("support", pa.int64()),
        ("ends", pa.int64()),
        ("alone", pa.int64()),
        ("label_id", pa.int32()),
        ("similarity", pa.float32()),
        ("how", pa.string()),
    ]
)
BOILERPLATE_SCHEMA = pa.schema(
    [
        ("field", pa.string()),
        ("pattern", pa.string()),
        ("kind", pa.string()),
        ("listings", pa.int64()),
        ("fillers", pa.int64()),
        ("group", pa.string()),
        ("example", pa.string()),
    ]
)


@dataclass
class Vocabulary:
    """Labels, the terms that map to them, and the settings needed to find those terms again."""

    labels: pd.DataFrame  # label_id, name, aliases, support, tier, informativeness, facet
    terms: pd.DataFrame  # term, field, support, ends, alone, label_id (<NA> when dropped), similarity, how
    label_embeddings: np.ndarray  # n_labels x dim, L2-normalized, row i = label_id i
    analyzer: dict[str, Any]  # ngram_range, stopwords
    model: str | None = None
    roles: ColumnRoles | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    boilerplate: Boilerplate = field(default_factory=lambda: Boilerplate({}))
    facets: pd.DataFrame = field(default_factory=lambda: FACETS_SCHEMA.empty_table().to_pandas())

    @property
    def names(self) -> list[str]:
        return self.labels["name"].tolist()

    def make_analyzer(self) -> Analyzer:
        return Analyzer(tuple(self.analyzer["ngram_range"]), frozenset(self.analyzer["stopwords"]))

    def term_table(self) -> pd.DataFrame:
        """One row per labelled term (term, label_id, similarity, support), support being its largest in any field."""
        kept = self.terms[self.terms["label_id"].notna()]
        support = kept.groupby("term", sort=False)["support"].max()
        table = kept.drop_duplicates("term")[["term", "label_id", "similarity"]].reset_index(drop=True)
        return table.assign(support=table["term"].map(support).to_numpy())

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_parquet(self.labels, folder / "labels.parquet", LABELS_SCHEMA)
        write_parquet(self.terms, folder / "terms.parquet", TERMS_SCHEMA)
        np.save(folder / "label_embeddings.npy", self.label_embeddings.astype(np.float32))
        write_parquet(self.boilerplate.to_frame(), folder / "boilerplate.parquet", BOILERPLATE_SCHEMA)
        write_parquet(self.facets, folder / "facets.parquet", FACETS_SCHEMA)

    def config(self) -> dict[str, Any]:
        """What assignment needs besides the tables (stored in the manifest's config)."""
        return {
            "analyzer": {"ngram_range": list(self.analyzer["ngram_range"]),
                         "stopwords": sorted(self.analyzer["stopwords"])},
            "model": self.model,
            "roles": self.roles.to_dict() if self.roles else None,
        }

    @classmethod
    def load(cls, folder: str | Path) -> Vocabulary:
        folder = Path(folder)
        config = read_manifest(folder, "vocab")["config"]["vocabulary"]
        labels = pd.read_parquet(folder / "labels.parquet")
        if "informativeness" not in labels:
            raise ValueError(f"{folder} was built by an older weaklabel (its labels have no informativeness): "
                             "rebuild it with 'weaklabel vocab'")
        if not (folder / "boilerplate.parquet").is_file():
            raise ValueError(f"{folder} lacks boilerplate.parquet (written by 'weaklabel vocab' since version 0.2): "
                             "rebuild the vocabulary")
        labels["aliases"] = labels["aliases"].map(list)
        if FACET_COLUMN not in labels:  # built before facets: no label is in one
            labels[FACET_COLUMN] = None
        facets_path = folder / "facets.parquet"
        facets = pd.read_parquet(facets_path) if facets_path.is_file() else FACETS_SCHEMA.empty_table().to_pandas()
        terms = pd.read_parquet(folder / "terms.parquet")
        terms["label_id"] = terms["label_id"].astype("Int32")
        roles = ColumnRoles.from_dict(config["roles"]) if config.get("roles") else None
        boilerplate = Boilerplate.from_frame(pd.read_parquet(folder / "boilerplate.parquet"))
        return cls(labels, terms, np.load(folder / "label_embeddings.npy"), config["analyzer"], config.get("model"),
                   roles, boilerplate=boilerplate, facets=facets)


class VocabularyBuilder(BaseEstimator):
    """Fit a label vocabulary on listing text.

    Parameters
    ----------
    roles: which columns are free text, tags and categories (and their weights).
    ngram_range: n-gram lengths taken from free text.
    stopwords: named lists joined by "+" (``"english"``, ``"marketplace"``, ``"detected"``: the
        stopwords of other languages found in the listings), a list, or None.
    min_support: a term must occur in this many listings to be a candidate.
    max_df: terms in more than this fraction of listings are dropped as generic.
    min_npmi: n-grams whose words co-occur no more than chance (normalized PMI below this) are
        dropped ("men blue"), unless they are product compounds (``min_label_support`` listings, a
        last word that ends most of its phrases, a quarter of the first word's listings: "apple
        juice"; see :func:`~weaklabel.labeling.terms.select_candidates`); unigrams are kept.
    blocklist / allowlist: terms always dropped / always kept as candidates.
    model: text embedding model (directory or hub name); None uses the packaged all-MiniLM-L6-v2.
    cluster: False skips clustering (each frequent term is its own label), for comparison.
    min_label_support, merge_threshold, attach_threshold, rare_merge_threshold,
    typo_min_similarity, typo_support_ratio, min_typo_length, neighbours, same_listings_ratio: see
        :mod:`weaklabel.labeling.clustering`.
    overrides: a TOML file or dict of user edits (see :mod:`weaklabel.labeling.overrides`).
    tier_mass: cumulative support shares closing the head and torso tiers.
    head_prior: how many listings' worth of the corpus-wide phrase-end rate a label's informativeness
        starts from (see :func:`informativeness`).
    boilerplate: find the sentences and sentence templates many listings repeat in each free-text
        field and count no terms in them (see :mod:`weaklabel.labeling.boilerplate`); assignment
        skips them too.
    boilerplate_group: a column (seller, shop) within which repeated sentences are also looked for.
    boilerplate_sample: the boilerplate is looked for in a seeded sample of this many listings (in
        all of them when there are fewer); it is stripped from all of them.
    facets: group labels into facets, sets of alternatives (see :mod:`weaklabel.labeling.facets`);
        ``fit_counts`` finds them on the sample it is given. facet_min_support, facet_max_collision,
        facet_min_similarity, facet_merge_similarity, facet_min_coverage, facet_sample: its knobs,
        documented there.
    """

    def __init__(
        self,
        roles: ColumnRoles,
        *,
        ngram_range: tuple[int, int] = (1, 3),
        stopwords: str | Iterable[str] | None = "english+marketplace+detected",
        min_support: int = 3,
        max_df: float = 0.5,
        min_npmi: float = 0.0,
        blocklist: Iterable[str] = (),
        allowlist: Iterable[str] = (),
        model: str | None = None,
        batch_size: int = 256,
        device: str | None = None,
        cache_dir: str | Path | None = None,
        cluster: bool = True,
        min_label_support: int = 10,
        merge_threshold: float = 0.90,
        attach_threshold: float = 0.80,
        rare_merge_threshold: float = 0.85,
        typo_min_similarity: float = 0.50,
        typo_support_ratio: float = 5.0,
        min_typo_length: int = 6,
        neighbours: int = 10,
        same_listings_ratio: float = 0.9,
        overrides: str | Path | dict | None = None,
        tier_mass: tuple[float, float] = (0.5, 0.8),
        head_prior: float = 20.0,
        boilerplate: bool = True,
        boilerplate_group: str | None = None,
        boilerplate_sample: int = 200_000,
        facets: bool = True,
        facet_min_support: int = 20,
        facet_max_collision: float = 0.1,
        facet_min_similarity: float = 0.1,
        facet_merge_similarity: float = 0.05,
        facet_min_coverage: float = 0.01,
        facet_sample: int = 200_000,
        progress: bool = False,
    ):
        self.roles = roles
        self.ngram_range = ngram_range
        self.stopwords = stopwords
        self.min_support = min_support
        self.max_df = max_df
        self.min_npmi = min_npmi
        self.blocklist = blocklist
        self.allowlist = allowlist
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = cache_dir
        self.cluster = cluster
        self.min_label_support = min_label_support
        self.merge_threshold = merge_threshold
        self.attach_threshold = attach_threshold
        self.rare_merge_threshold = rare_merge_threshold
        self.typo_min_similarity = typo_min_similarity
        self.typo_support_ratio = typo_support_ratio
        self.min_typo_length = min_typo_length
        self.neighbours = neighbours
        self.same_listings_ratio = same_listings_ratio
        self.overrides = overrides
        self.tier_mass = tier_mass
        self.head_prior = head_prior
        self.boilerplate = boilerplate
        self.boilerplate_group = boilerplate_group
        self.boilerplate_sample = boilerplate_sample
        self.facets = facets
        self.facet_min_support = facet_min_support
        self.facet_max_collision = facet_max_collision
        self.facet_min_similarity = facet_min_similarity
        self.facet_merge_similarity = facet_merge_similarity
        self.facet_min_coverage = facet_min_coverage
        self.facet_sample = facet_sample
        self.progress = progress

    def analyzer(self) -> Analyzer:
        return Analyzer(tuple(self.ngram_range), resolve_stopwords(self.stopwords))

    def fit(self, listings: Listings | pd.DataFrame, y: None = None) -> VocabularyBuilder:
        """Find the boilerplate of ``listings`` (a :class:`Listings` or its cleaned frame), strip it,
        count the terms and fit on the counts."""
        frame = listings.frame if isinstance(listings, Listings) else listings
        self._validate()
        self.timer_ = Timer()
        with self.timer_("boilerplate"):
            boilerplate = self.find_boilerplate(frame)
            frame, stripped = boilerplate.strip_frame(frame)
        with self.timer_("count_terms"):
            counts = TermCounts.count(frame, self.roles, self.analyzer())
        return self._fit(counts, boilerplate, stripped, frame)

    def fit_counts(self, counts: TermCounts, *, boilerplate: Boilerplate | None = None,
                   stripped: dict[str, StripCounts] | None = None,
                   sample: pd.DataFrame | None = None) -> VocabularyBuilder:
        """Fit on term statistics alone, counted over any number of partitions
        (:mod:`weaklabel.labeling.counting`). ``boilerplate``: what the counts were stripped of (see
        :meth:`find_boilerplate`), ``stripped`` how much of it per field; ``sample``: listings,
        stripped too, on which facets are found (none without it)."""
        self._validate()
        self.timer_ = Timer()
        return self._fit(counts, boilerplate or Boilerplate({}), stripped or {}, sample)

    def find_boilerplate(self, frame: pd.DataFrame) -> Boilerplate:
        """The boilerplate of the free-text fields of ``frame`` (a seeded sample of ``boilerplate_sample`` rows)."""
        if not self.boilerplate:
            return Boilerplate({})
        if self.boilerplate_group is not None and self.boilerplate_group not in frame.columns:
            raise ValueError(f"boilerplate_group (--group): the listings have no column {self.boilerplate_group!r}; "
                             f"columns are {list(frame.columns)}")
        if len(frame) > self.boilerplate_sample:
            frame = frame.sample(n=self.boilerplate_sample, random_state=0).sort_index()
        return Boilerplate.find(frame, list(self.roles.text_weights), groups=self.boilerplate_group)

    def _fit(self, counts: TermCounts, boilerplate: Boilerplate, stripped: dict[str, StripCounts],
             sample: pd.DataFrame | None) -> VocabularyBuilder:
        self._fit_counts(counts, boilerplate)
        if self.facets and sample is not None:
            with self.timer_("facets"):
                self._find_facets(sample)
        patterns = boilerplate.to_frame()["field"].value_counts()
        self.vocabulary_.stats["boilerplate"] = {
            column: {"patterns": int(patterns.get(column, 0)), "listings": found.listings, "words": found.words}
            for column, found in stripped.items()}
        return self

    def _find_facets(self, frame: pd.DataFrame) -> None:
        """Label a sample of the listings with the fitted vocabulary and group its labels into facets."""
        from .assign import LabelAssigner  # assignment builds on the vocabulary: imported when used

        vocabulary = self.vocabulary_
        params = self._facet_params()
        sample = frame.sample(n=params.sample, random_state=0) if len(frame) > params.sample else frame
        assigned = LabelAssigner(vocabulary, self.roles).fit().transform_arrow(sample)
        labels = vocabulary.labels
        seeds, unfaceted = Overrides.load(self.overrides).facet_seeds(labels, vocabulary.terms)
        found = discover_facets(multi_hot(assigned.column("labels").to_pylist(), len(labels)), labels["name"].tolist(),
                                labels["informativeness"].to_numpy(np.float64), vocabulary.label_embeddings,
                                params, seeds, unfaceted)
        labels[FACET_COLUMN] = found.of_label
        vocabulary.facets = found.table
        vocabulary.stats["facets"] = len(found.table)

    def _facet_params(self) -> FacetParams:
        return FacetParams(min_support=self.facet_min_support, max_collision=self.facet_max_collision,
                           min_similarity=self.facet_min_similarity, merge_similarity=self.facet_merge_similarity,
                           min_coverage=self.facet_min_coverage, sample=self.facet_sample)

    def _fit_counts(self, counts: TermCounts, boilerplate: Boilerplate) -> VocabularyBuilder:
        timer = self.timer_
        if counts.any_field.empty:
            raise ValueError(self._no_labels_message(counts.n_listings, 0))
        overrides = Overrides.load(self.overrides)
        allowed = {as_term(t) for t in self.allowlist}
        absent = sorted(t for t in allowed if t not in counts.any_field.index)
        if absent:
            raise ValueError(f"allowlist: {no_terms_message(absent)}")
        allow = allowed | overrides.added_terms()
        with timer("select_terms"):
            unigrams = counts.any_field[~counts.any_field.index.str.contains(" ", regex=False)]
            languages = (detect_languages(unigrams, counts.n_listings)
                         if wants_detected_languages(self.stopwords) else {})
            # a word the user named in a term (allowlist, overrides) is no stopword of another language
            named = {word for term in allow for word in term.split(" ")}
            self.detected_stopwords_ = language_stopwords(languages) - resolve_stopwords(self.stopwords) - named
            candidates, dropped, reasons = select_candidates(
                counts,
                min_support=self.min_support,
                max_df=self.max_df,
                min_npmi=self.min_npmi,
                blocklist={as_term(t) for t in self.blocklist},
                allowlist=allow,
                stopwords=self.detected_stopwords_,
                compound_support=self.min_label_support,
                text_fields=list(self.roles.text_weights),
            )
        if candidates.empty:
            raise ValueError(self._no_labels_message(counts.n_listings, 0))
        embedder = TextEmbedder(self.model, batch_size=self.batch_size, device=self.device,
                                cache_dir=self.cache_dir, progress=self.progress, desc="embed terms")
        with timer("embed_terms"):
            embeddings = embedder.encode(candidates["term"].tolist())
        with timer("cluster"):
            text_support = counts.text_support(list(self.roles.text_weights)).reindex(candidates["term"]).fillna(0)
            clustering = cluster_terms(candidates["term"], candidates["support"].to_numpy(np.float64),
                                       embeddings, self._cluster_params(), enabled=self.cluster,
                                       text_support=text_support.to_numpy(np.float64))
        with timer("overrides"):
            assignment = candidates.assign(label=clustering.label, how=clustering.how, similarity=clustering.similarity)
            assignment = overrides.apply(assignment, counts.any_field)
        if not (assignment["label"] >= 0).any():
            raise ValueError(self._no_labels_message(counts.n_listings, len(candidates)))
        self.vocabulary_ = self._vocabulary(assignment, dropped, counts, embedder, embeddings, boilerplate)
        self.vocabulary_.stats = {
            "listings": counts.n_listings,
            "distinct_terms": len(counts.any_field),
            "candidates": len(candidates),
            "labels": len(self.vocabulary_.labels),
            "labelled_terms": int((assignment["label"] >= 0).sum()),
            "dropped_terms": {**reasons, **_how_counts(assignment)},
            "embeddings_computed": embedder.n_computed,
            "languages_detected": {language: words[:10] for language, words in languages.items()},
            "support_before": candidates["support"].tolist(),
        }
        return self

    # -- building the result ---------------------------------------------------------------
    def _vocabulary(self, assignment, dropped, counts, embedder, embeddings, boilerplate) -> Vocabulary:
        kept = assignment[assignment["label"] >= 0]
        labels = _label_table(kept, self.tier_mass)
        new_id = pd.Series(labels["label_id"].to_numpy(), index=labels.pop("_key"))
        assignment["label_id"] = assignment["label"].map(new_id).astype("Int32")

        vectors = (embedder.encode(kept["term"].tolist()) if len(kept)
                   else np.zeros((0, embeddings.shape[1]), np.float32))
        kept_label_ids = assignment.loc[kept.index, "label_id"].to_numpy(int)
        centroid = weighted_centroids(vectors, kept["support"].to_numpy(), kept_label_ids, len(labels))

        dropped = dropped[~dropped["term"].isin(assignment["term"])]  # pulled in again by an override
        dropped_rows = dropped.assign(label_id=pd.NA, similarity=np.nan, how="dropped:" + dropped["reason"])
        per_term = pd.concat([assignment[["term", "label_id", "similarity", "how"]],
                              dropped_rows[["term", "label_id", "similarity", "how"]]], ignore_index=True)
        terms = counts.by_field.merge(per_term, on="term", how="inner")
        terms["label_id"] = terms["label_id"].astype("Int32")
        terms["similarity"] = terms["similarity"].astype(np.float32).where(terms["label_id"].notna())
        terms = terms.sort_values(["support", "term", "field"], ascending=[False, True, True], ignore_index=True)
        terms = terms[["term", "field", "support", "ends", "alone", "label_id", "similarity", "how"]]
        labels["informativeness"] = informativeness(terms, self.roles.text_weights, len(labels), self.head_prior)
        labels[FACET_COLUMN] = None  # facets are found once the vocabulary can label listings
        analyzer = self.analyzer()
        stopwords = analyzer.stopwords | self.detected_stopwords_
        return Vocabulary(labels, terms, centroid,
                          {"ngram_range": list(analyzer.ngram_range), "stopwords": sorted(stopwords)},
                          self.model, self.roles, boilerplate=boilerplate)

    def _no_labels_message(self, n_listings: int, n_candidates: int) -> str:
        if n_candidates:
            found = (f"none of the {n_candidates} candidate terms makes a label of at least "
                     f"min_label_support={self.min_label_support} listings")
            if self.overrides:
                found += " once the overrides are applied"
        else:
            found = (f"no term occurs in at least min_support={self.min_support} listings and at most "
                     f"max_df={self.max_df:g} of them")
        return (f"no labels: in {n_listings} listing{'s' if n_listings != 1 else ''}, {found}; "
                "lower these settings or fit on more listings")

    def _cluster_params(self) -> ClusterParams:
        return ClusterParams(
            min_label_support=self.min_label_support,
            merge_threshold=self.merge_threshold,
            attach_threshold=self.attach_threshold,
            rare_merge_threshold=self.rare_merge_threshold,
            typo_min_similarity=self.typo_min_similarity,
            typo_support_ratio=self.typo_support_ratio,
            min_typo_length=self.min_typo_length,
            neighbours=self.neighbours,
            same_listings_ratio=self.same_listings_ratio,
        )

    def _validate(self) -> None:
        checks = [
            (self.min_support >= 1, f"min_support must be >= 1, got {self.min_support}"),
            (0 < self.max_df <= 1, f"max_df must be in (0, 1], got {self.max_df}"),
            (-1 <= self.min_npmi <= 1, f"min_npmi must be in [-1, 1], got {self.min_npmi}"),
            (self.min_label_support >= 1, f"min_label_support must be >= 1, got {self.min_label_support}"),
            (self.neighbours >= 1, f"neighbours must be >= 1, got {self.neighbours}"),
            (0 < self.tier_mass[0] <= self.tier_mass[1] <= 1,
             f"tier_mass must be 0 < head <= torso <= 1, got {self.tier_mass}"),
            (self.head_prior > 0, f"head_prior must be > 0, got {self.head_prior}"),
            (self.boilerplate_sample >= 1, f"boilerplate_sample must be >= 1, got {self.boilerplate_sample}"),
            (self.boilerplate or self.boilerplate_group is None,
             "boilerplate_group (--group) needs boilerplate on (it names where to look for repeated sentences)"),
            (0 < self.same_listings_ratio <= 1,
             f"same_listings_ratio must be in (0, 1], got {self.same_listings_ratio}"),
        ]
        for name in ("merge_threshold", "attach_threshold", "rare_merge_threshold", "typo_min_similarity"):
            value = getattr(self, name)
            checks.append((-1 <= value <= 1, f"{name} is a cosine similarity in [-1, 1], got {value}"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self._facet_params().check()
        overrides = Overrides.load(self.overrides)  # a bad overrides file stops the fit before any work
        if overrides.names_facets() and not self.facets:
            raise ValueError("the overrides name facets ([facets] or unfaceted) but facets are off (facets = false, "
                             "--no-facets): turn them on, or remove those edits")


def _label_table(kept: pd.DataFrame, tier_mass: tuple[float, float]) -> pd.DataFrame:
    """One row per label, numbered by support (descending) then name; name = most frequent term."""
    kept = most_frequent_first(kept)
    grouped = kept.groupby("label", sort=False)
    terms = grouped["term"].agg(list).to_numpy()
    labels = pd.DataFrame({
        "_key": list(grouped.groups.keys()),
        "name": grouped["term"].first().to_numpy(),
        "aliases": [label_terms[1:] for label_terms in terms],
        # a same-listings term holds nearly the listings of another term of the label: not added again
        "support": kept["support"].where(kept["how"] != "same-listings", 0).groupby(kept["label"], sort=False)
        .sum().to_numpy(np.int64),
    })
    renamed = kept.dropna(subset=["display_name"]).drop_duplicates("label") if "display_name" in kept else None
    if renamed is not None and len(renamed):
        names = renamed.set_index("label")["display_name"]
        labels["name"] = labels["_key"].map(names).fillna(labels["name"])
        labels["aliases"] = [[t for t in label_terms if t != name] for label_terms, name in zip(terms, labels["name"])]
        clashes = labels.loc[labels["name"].duplicated(keep=False), "name"].unique()
        if len(clashes):
            raise OverridesError(f"overrides give several labels the name {clashes[0]!r}; to make them one "
                                 "label, use [merge]")
    labels = labels.sort_values(["support", "name"], ascending=[False, True], ignore_index=True)
    labels.insert(0, "label_id", np.arange(len(labels), dtype=np.int32))
    labels["tier"] = assign_tiers(labels["support"].to_numpy(), tier_mass)
    return labels


def informativeness(terms: pd.DataFrame, text_weights: dict[str, float], n_labels: int, prior: float) -> np.ndarray:
    """How much each label says about what a listing *is*, in (0, 1]: of the phrases of free text
    its terms are part of, the share they end, each field counted at its weight (a title says more
    than a description), shrunk towards the corpus-wide share by ``prior`` listings.

    A product ends the noun phrase of a title ("Navy Blue *Shirt*", "Shirt for Men"), modifiers
    (colours, genders, brands, styles) rarely do: on the fashion catalogue "shirt" ends 99% of its
    phrases, "navy blue" 6%, "men" 2%. A term that is a whole phrase on its own ("Best Seller" in
    "Mug | Best Seller", a tag-like "Handmade" after a separator) says nothing either way, so those
    occurrences are left out. The shrinkage ranks a well-attested product word ("t-shirt", 6,773
    listings) above a rarer compound of it ("polo t-shirt"), which a raw share would put level with
    it. A label seen in no phrase gets the corpus-wide share.
    """
    labelled = terms[terms["label_id"].notna() & terms["field"].isin(list(text_weights))]
    ids = labelled["label_id"].to_numpy(np.int64)
    weight = labelled["field"].map(text_weights).to_numpy(np.float64)
    ends = np.bincount(ids, weights=weight * labelled["ends"].to_numpy(np.float64), minlength=n_labels)
    seen = np.bincount(ids, weights=weight * phrases(labelled).to_numpy(np.float64), minlength=n_labels)
    overall = ends.sum() / seen.sum() if seen.sum() else 1.0
    return ((ends + prior * overall) / np.maximum(seen + prior, 1e-12)).astype(np.float32)



def _how_counts(assignment: pd.DataFrame) -> dict[str, int]:
    dropped = assignment[assignment["label"] < 0]
    return {str(k): int(v) for k, v in dropped["how"].value_counts().items()}

