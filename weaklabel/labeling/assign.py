"""Weak multi-labels for listings, from a fitted vocabulary.

How a listing gets its labels:

1. **Matching.** Each field is analyzed exactly as when the vocabulary was built, its
   boilerplate skipped; every n-gram (free text) or whole value (tags, categories) that is a
   labelled term is a match.
2. **Overlaps: fragments are absorbed, words keep their meaning.** Within one field, when a
   longer matched term contains a shorter one, the shorter is ignored if it is a fragment of
   the longer: if the longer term has at least ``absorb_ratio`` times its support (the shorter
   mostly occurs inside it: "navy" in "navy blue"), or if the longer term is a one-word label
   written apart ("t shirt" for "t-shirt": no "shirt" label).
   Otherwise both count: "navy blue shirt" gets "navy blue" *and* "shirt", and "blue" too,
   since "blue" is common on its own and a navy-blue item is blue. The rule is per field, not
   per position.
3. **Scores.** Each remaining match is evidence of strength ``w_f * s``: the field's weight
   times the term's similarity to its label (1 for the label's own term and its spelling
   variants, the cosine similarity for a synonym or an attached rare term). Evidence for one label
   combines as a noisy-OR, and is then weighed by how informative the label is::

       score = (1 + q) / 2 * (1 - prod(1 - w_f * s))

   ``q`` is the label's ``informativeness`` in ``labels.parquet`` (see
   :func:`weaklabel.labeling.vocabulary.informativeness`): near 1 for a product word that ends
   the title's noun phrase ("shirt"), near 0 for a modifier ("men", "navy blue", a brand). So the
   product ranks first, a modifier still scores at least half of its evidence, and more evidence
   always raises a score, which stays in [0, 1].
4. **Selection.** Labels scoring at least ``min_score`` are kept, best first (equal scores by
   label id), at most ``top_k``; the ``evidence`` of each is the field and term of its strongest
   match. The first label is the listing's most informative one: the shards' ``cls``.
5. **Facets.** When the vocabulary has facets (sets of alternative labels: product type, colour,
   ...; see :mod:`weaklabel.labeling.facets`), each listing gets at most one label per facet: its
   best-scoring selected label of that facet (equal scores by label id), whose ``evidence`` says
   which term decided it. The ``facets`` column holds one label id per facet, -1 for none, in the
   order of :func:`weaklabel.facets.facet_members`.
6. **Fallback (optional).** A listing left with no label gets the labels nearest to its text
   embedding when their cosine similarity reaches ``fallback_threshold`` (evidence field
   ``embedding``, no term).

A listing with no label is kept, with empty lists. Everything after matching is vectorized
with NumPy/SciPy sparse matrices; matching is one dictionary lookup per n-gram.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..facets import FACETS_FIELD, NO_LABEL, facet_members
from ..listings import ColumnRoles, Listings
from ..perf import gc_paused
from .embeddings import TextEmbedder
from .text import contained_terms, term_key
from .vocabulary import Vocabulary

EVIDENCE_TYPE = pa.struct([("field", pa.string()), ("term", pa.string())])


@dataclass
class _Matches:
    """Evidence: listing row, label, strength, field index, term index (-1: none)."""

    row: np.ndarray
    label: np.ndarray
    strength: np.ndarray
    field: np.ndarray
    term: np.ndarray

    @classmethod
    def concat(cls, parts: Sequence[_Matches]) -> _Matches:
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__))


class LabelAssigner(TransformerMixin, BaseEstimator):
    """Assign weak labels to listings (see the module docstring for the rules).

    Parameters
    ----------
    vocabulary: a fitted :class:`Vocabulary` (or the folder it was saved in).
    roles: columns and weights to read; defaults to those the vocabulary was built with.
    top_k: at most this many labels per listing.
    min_score: labels scoring below this are not kept.
    fallback_threshold: None (off) or the cosine similarity a label needs to be assigned to a
        listing that matched nothing.
    absorb_ratio: a contained term is absorbed when the containing term has at least this
        share of its support (see rule 2 above).

    A scikit-learn transformer: ``fit()`` (no data needed) validates and indexes the vocabulary,
    ``transform(listings)`` labels them; ``clone``, ``get_params`` and ``set_params`` work.
    """

    def __init__(
        self,
        vocabulary: Vocabulary | str,
        roles: ColumnRoles | None = None,
        *,
        top_k: int = 20,
        min_score: float = 0.3,
        fallback_threshold: float | None = None,
        absorb_ratio: float = 0.8,
        batch_size: int = 256,
        device: str | None = None,
    ):
        self.vocabulary = vocabulary
        self.roles = roles
        self.top_k = top_k
        self.min_score = min_score
        self.fallback_threshold = fallback_threshold
        self.absorb_ratio = absorb_ratio
        self.batch_size = batch_size
        self.device = device

    def fit(self, listings: Listings | pd.DataFrame | None = None, y: None = None) -> LabelAssigner:
        """Validate the parameters and index the vocabulary's terms; ``listings`` are not needed (the
        vocabulary is fitted already), the argument is there for scikit-learn pipelines."""
        self._validate()
        vocabulary = Vocabulary.load(self.vocabulary) if isinstance(self.vocabulary, (str, Path)) else self.vocabulary
        self.vocabulary_ = vocabulary
        self.roles_ = self.roles or vocabulary.roles
        if self.roles_ is None:
            raise ValueError("roles are required: this vocabulary does not record the columns it was built from")
        table = vocabulary.term_table()
        self.analyzer_ = vocabulary.make_analyzer()
        self.terms_ = table["term"].to_numpy(object)
        self.term_index_ = {term: i for i, term in enumerate(self.terms_)}
        self.term_label_ = table["label_id"].to_numpy(np.int32)
        self.term_similarity_ = table["similarity"].to_numpy(np.float32)
        self.label_weight_ = (1 + vocabulary.labels["informativeness"].to_numpy(np.float64)) / 2
        names = vocabulary.labels["name"].to_numpy(object)
        spelled_apart = np.array([" " not in n and term_key(t) == term_key(n) and " " in t
                                  for t, n in zip(self.terms_, names[self.term_label_])], dtype=bool)
        self.containment_ = _absorption(self.terms_, self.term_index_, table["support"].to_numpy(np.float64),
                                        spelled_apart, self.absorb_ratio)
        members = facet_members(vocabulary.labels)
        self.facet_of_ = np.full(len(vocabulary.labels), NO_LABEL, np.int64)
        for position, ids in enumerate(members.values()):
            self.facet_of_[ids] = position
        self.n_facets_ = len(members)
        self.n_fallback_ = 0
        return self

    def _validate(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if not 0 <= self.min_score <= 1:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
        if self.fallback_threshold is not None and not -1 <= self.fallback_threshold <= 1:
            raise ValueError(f"fallback_threshold is a cosine similarity in [-1, 1], got {self.fallback_threshold}")
        if not 0 < self.absorb_ratio <= 1:
            raise ValueError(f"absorb_ratio must be in (0, 1], got {self.absorb_ratio}")

    def transform(self, listings: Listings | pd.DataFrame) -> pd.DataFrame:
        """``labels``, ``scores`` and ``evidence`` columns, one row per listing, same index."""
        frame = listings.frame if isinstance(listings, Listings) else listings
        table = self.transform_arrow(frame)
        return table.to_pandas().set_axis(frame.index)

    def transform_arrow(self, frame: pd.DataFrame) -> pa.Table:
        """As :meth:`transform`, as an Arrow table (no per-row Python objects: fast to write)."""
        check_is_fitted(self, "terms_")
        missing = [f.column for f in self.roles_.fields if f.column not in frame.columns]
        if missing:
            raise ValueError(f"listings lack the field column(s) {missing}; columns are {list(frame.columns)}")
        with gc_paused():
            matches = _Matches.concat([self._match_field(frame, i) for i in range(len(self.roles_.fields))])
        labels = _combine(matches, self.label_weight_, self.min_score, self.top_k)
        if self.fallback_threshold is not None:
            unlabelled = np.flatnonzero(np.bincount(labels.row, minlength=len(frame)) == 0)
            if len(unlabelled):
                labels = _Matches.concat([labels, self._fallback(frame, unlabelled)])
                labels = _sort(labels)
        field_names = np.array([f.column for f in self.roles_.fields] + ["embedding"], dtype=object)
        table = _to_arrow(labels, len(frame), field_names, self.terms_)
        if self.n_facets_:
            table = table.append_column(FACETS_FIELD, _facet_labels(labels, self.facet_of_, self.n_facets_, len(frame)))
        return table

    def _match_field(self, frame: pd.DataFrame, field_index: int) -> _Matches:
        field = self.roles_.fields[field_index]
        values = frame[field.column].tolist()
        if field.role == "text":
            terms_of = self.analyzer_.ngram_list
            boilerplate = self.vocabulary_.boilerplate.fields.get(field.column)
            if boilerplate:
                values = [boilerplate.strip(v) if isinstance(v, str) and v else v for v in values]
        else:
            terms_of = self.analyzer_.whole_values
        found = [terms_of(v) if v is not None and len(v) else [] for v in values]
        lengths = np.fromiter(map(len, found), np.int64, len(found))
        flat = list(chain.from_iterable(found))
        term = np.fromiter(map(self.term_index_.get, flat, repeat(-1)), np.int64, len(flat))
        row = np.repeat(np.arange(len(found)), lengths)
        matched = term >= 0
        shape = (len(frame), max(len(self.terms_), 1))
        hits = csr_matrix((np.ones(int(matched.sum()), np.float32), (row[matched], term[matched])), shape=shape)
        hits.data[:] = 1.0  # a term repeated in one field counts once
        if self.containment_.nnz:
            absorbed = (hits @ self.containment_).astype(bool)
            hits = hits - hits.multiply(absorbed)
            hits.eliminate_zeros()
        hits = hits.tocoo()
        term = hits.col
        return _Matches(
            row=hits.row.astype(np.int64),
            label=self.term_label_[term],
            strength=field.weight * self.term_similarity_[term],
            field=np.full(len(term), field_index, dtype=np.int64),
            term=term.astype(np.int64),
        )

    def _fallback(self, frame: pd.DataFrame, rows: np.ndarray) -> _Matches:
        texts = [" ".join(str(frame[f.column].iloc[r]) for f in self.roles_.fields if f.role == "text") for r in rows]
        embedder = TextEmbedder(self.vocabulary_.model, batch_size=self.batch_size, device=self.device, use_cache=False)
        similarity = embedder.encode(texts) @ self.vocabulary_.label_embeddings.T
        k = min(self.top_k, similarity.shape[1])
        best = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        best_sim = np.take_along_axis(similarity, best, axis=1)
        keep = best_sim >= self.fallback_threshold
        self.n_fallback_ += int(keep.any(axis=1).sum())
        return _Matches(
            row=np.repeat(rows, k)[keep.reshape(-1)],
            label=best[keep].astype(np.int32),
            strength=best_sim[keep].astype(np.float32),
            field=np.full(int(keep.sum()), len(self.roles_.fields), dtype=np.int64),
            term=np.full(int(keep.sum()), -1, dtype=np.int64),
        )


def _absorption(terms: np.ndarray, index: dict[str, int], support: np.ndarray, spelled_apart: np.ndarray,
                absorb_ratio: float) -> csr_matrix:
    """A[long, short] = 1 when ``long`` contains ``short`` and absorbs it (rule 2 of the module docstring)."""
    rows, cols = [], []
    for i, j in contained_terms(terms, index):
        if spelled_apart[i] or support[i] >= absorb_ratio * support[j]:
            rows.append(i)
            cols.append(j)
    shape = (max(len(terms), 1),) * 2
    return csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)


def _combine(matches: _Matches, label_weight: np.ndarray, min_score: float, top_k: int) -> _Matches:
    """Noisy-OR the evidence per (listing, label), weigh it by the label, keep the strongest evidence,
    select the best labels."""
    if len(matches.row) == 0:
        return matches
    order = np.lexsort((matches.term, -matches.strength, matches.label, matches.row))
    m = _Matches(*(getattr(matches, name)[order] for name in _Matches.__dataclass_fields__))
    starts = np.flatnonzero(np.r_[True, (np.diff(m.row) != 0) | (np.diff(m.label) != 0)])
    # Capped below 1: no log(0), and two exact matches (1.0) still outrank one (0.999999).
    log_miss = np.log1p(-np.minimum(m.strength, 1 - 1e-6).astype(np.float64))
    score = (label_weight[m.label[starts]] * (1.0 - np.exp(np.add.reduceat(log_miss, starts)))).astype(np.float32)
    best = _Matches(m.row[starts], m.label[starts], score, m.field[starts], m.term[starts])
    keep = best.strength >= min_score
    return _sort(_Matches(*(getattr(best, name)[keep] for name in _Matches.__dataclass_fields__)), top_k)


def _sort(matches: _Matches, top_k: int | None = None) -> _Matches:
    """Order by listing, then score descending, then label id; keep ``top_k`` per listing."""
    order = np.lexsort((matches.label, -matches.strength, matches.row))
    m = _Matches(*(getattr(matches, name)[order] for name in _Matches.__dataclass_fields__))
    if top_k is None:
        return m
    group_start = np.r_[0, np.flatnonzero(np.diff(m.row)) + 1]
    rank = np.arange(len(m.row)) - np.repeat(group_start, np.diff(np.r_[group_start, len(m.row)]))
    keep = rank < top_k
    return _Matches(*(getattr(m, name)[keep] for name in _Matches.__dataclass_fields__))


def _facet_labels(m: _Matches, facet_of: np.ndarray, n_facets: int, n_rows: int) -> pa.ListArray:
    """Per listing, one label id per facet: its best-scoring selected label there (equal scores by
    label id), -1 for none. ``m`` is sorted by listing, score descending, label id."""
    chosen = np.full((n_rows, n_facets), NO_LABEL, np.int32)
    facet = facet_of[m.label]
    faceted = np.flatnonzero(facet >= 0)
    rows, facets = m.row[faceted], facet[faceted]
    _, first = np.unique(rows * n_facets + facets, return_index=True)  # the first of each pair is its best
    chosen[rows[first], facets[first]] = m.label[faceted][first]
    offsets = pa.array(np.arange(n_rows + 1, dtype=np.int32) * n_facets)
    return pa.ListArray.from_arrays(offsets, pa.array(chosen.reshape(-1)))


def _to_arrow(m: _Matches, n_rows: int, field_names: np.ndarray, terms: np.ndarray) -> pa.Table:
    offsets = pa.array(np.searchsorted(m.row, np.arange(n_rows + 1)).astype(np.int32))
    term = pa.DictionaryArray.from_arrays(pa.array(m.term, pa.int64(), mask=m.term < 0), pa.array(terms, pa.string()))
    field = pa.DictionaryArray.from_arrays(pa.array(m.field), pa.array(field_names, pa.string()))
    evidence = pa.StructArray.from_arrays(
        [field.cast(pa.string()), term.cast(pa.string())], fields=list(EVIDENCE_TYPE)
    )
    return pa.table({
        "labels": pa.ListArray.from_arrays(offsets, pa.array(m.label.astype(np.int32))),
        "scores": pa.ListArray.from_arrays(offsets, pa.array(m.strength.astype(np.float32))),
        "evidence": pa.ListArray.from_arrays(offsets, evidence),
    })
