"""Facet discovery: which labels are alternatives to each other, found from the listings alone.

A facet is a set of labels of which a listing names at most one: its product type, its colour,
its gender, its brand. Labels in no facet stay in the multi-label group. Three signals decide,
all read from the listings and the vocabulary, never from a ground-truth column:

- **Substitutes.** Two labels that occur in similar contexts (the same other labels around them:
  cosine similarity of their rows of positive pointwise mutual information over label
  co-occurrence) but rarely in one listing are alternatives: "black" and "navy" sit beside the
  same product words and genders, yet a listing seldom names both.
- **Meaning.** Their text embeddings: colours lie near colours, product words near product words.
- **Role.** Where their terms stand in the title: a label's ``informativeness`` is the share of
  its phrases it ends, near 1 for product words ("shirt") and near 0 for modifiers ("men",
  "navy blue"); labels of one facet play one role.

The algorithm:

1. Count label co-occurrence over the listings (a sample of at most ``sample``), keeping labels
   of at least ``min_support`` listings.
2. Similarity of two labels = mean of context and embedding similarity, times role similarity
   (1 - the gap between their informativeness). Pairs that share more than ``max_collision`` of
   the rarer label's listings are not alternatives: their distance is the largest.
3. Average-linkage clustering; from the top of the tree down, the first subtree whose listings
   name two of its labels at most ``max_collision`` of the time (its *collision rate*) and whose
   labels were joined at similarity ``min_similarity`` or more is a facet candidate.
4. Candidates of one role are then merged greedily, most similar first, while their union's
   collision rate stays at most ``max_collision`` once the labels of step 5 are taken out of it
   (losing at most ``MAX_PRUNED`` of its support: a category label such as "clothing" beside the
   product words of one candidate must not keep two product facets apart), when their mean similarity reaches
   ``merge_similarity``; two candidates of phrase-ending labels (informativeness >=
   ``HEAD_INFORMATIVENESS`` on average) always qualify, since a listing names one product.
5. A label that shares more than ``MAX_OVERLAP`` of its listings with the rest of its facet is
   taken out ("pack" beside "socks"), the worst first; a facet keeps at least two labels and ``min_coverage`` of
   the listings.

A facet is named after its three most frequent labels ("black/blue/white") unless the user names
it. User seeds (``[facets]`` in the overrides) start as facets of their own before step 4 and
grow by it like the others, keeping their name; two seeds never merge; labels listed under
``unfaceted`` stay out of every facet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.cluster.hierarchy import linkage, to_tree
from scipy.sparse import csc_matrix, csr_matrix
from scipy.spatial.distance import squareform

HEAD_INFORMATIVENESS = 0.5  # facets of labels that end this share of their phrases are product words
ROLE_GAP = 0.3  # facets whose mean informativeness differs by more play different roles: never merged
MAX_OVERLAP = 0.5  # a label sharing more of its listings with the rest of its facet is taken out
MAX_PRUNED = 0.2  # two candidates merge only if taking out such labels loses at most this share of their support
NAME_LABELS = 3  # a facet is named after this many of its most frequent labels
MAX_LABELS = 5000  # the most frequent labels considered: memory grows with their square (~1 GB at 2,600)
FACETS_SCHEMA = pa.schema([
    ("facet_id", pa.int32()),
    ("name", pa.string()),
    ("labels", pa.list_(pa.int32())),
    ("listings", pa.int64()),
    ("coverage", pa.float32()),
    ("collision", pa.float32()),
    ("seeded", pa.bool_()),
])


@dataclass(frozen=True)
class FacetParams:
    min_support: int = 20
    max_collision: float = 0.1
    min_similarity: float = 0.1
    merge_similarity: float = 0.05
    min_coverage: float = 0.01
    sample: int = 200_000

    def check(self) -> None:
        checks = [
            (self.min_support >= 1, f"facet_min_support must be >= 1, got {self.min_support}"),
            (0 <= self.max_collision <= 1, f"facet_max_collision must be in [0, 1], got {self.max_collision}"),
            (-1 <= self.min_similarity <= 1, f"facet_min_similarity must be in [-1, 1], got {self.min_similarity}"),
            (-1 <= self.merge_similarity <= 1,
             f"facet_merge_similarity must be in [-1, 1], got {self.merge_similarity}"),
            (0 <= self.min_coverage <= 1, f"facet_min_coverage must be in [0, 1], got {self.min_coverage}"),
            (self.sample >= 1, f"facet_sample must be >= 1, got {self.sample}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class Facets:
    """The facet of each label (None: in no facet) and one row per facet."""

    of_label: list[str | None]
    table: pd.DataFrame  # FACETS_SCHEMA: facet_id, name, labels, listings, coverage, collision, seeded


def discover_facets(listing_labels: csr_matrix, names: list[str], informativeness: np.ndarray,
                    embeddings: np.ndarray, params: FacetParams, seeds: dict[str, list[int]] | None = None,
                    unfaceted: set[int] | frozenset[int] = frozenset()) -> Facets:
    """Group labels into facets (see the module docstring) from a binary listings x labels matrix."""
    seeds = seeds or {}
    seeded = {label for ids in seeds.values() for label in ids}
    support = np.asarray(listing_labels.sum(axis=0)).ravel()
    kept = np.flatnonzero((support >= params.min_support) & ~np.isin(np.arange(len(names)), list(unfaceted)))
    kept = kept[np.argsort(-support[kept], kind="stable")[:MAX_LABELS]]
    kept = np.union1d(kept, np.fromiter(seeded, np.int64, len(seeded)))
    position = {int(label): i for i, label in enumerate(kept)}
    space = _LabelSpace(listing_labels[:, kept].tocsc(), support[kept], informativeness[kept], embeddings[kept],
                        protected={position[label] for label in seeded})
    free = np.array([label not in seeded for label in kept])
    groups = [g for g in space.candidates(params, np.flatnonzero(free)) if len(g) >= 2]
    seed_groups = [[position[label] for label in ids] for ids in seeds.values()]
    grouped = {label for g in groups for label in g}
    # labels in no candidate may still join a seed that they behave like
    loose = [[int(i)] for i in np.flatnonzero(free) if int(i) not in grouped] if seeds else []
    groups = space.merged(seed_groups + groups + loose, n_seeds=len(seed_groups), n_loose=len(loose),
                          params=params)
    groups = [space.pruned(g) for g in groups]
    n = max(listing_labels.shape[0], 1)
    facets = []
    for i, group in enumerate(groups):
        coverage = space.listings(group) / n
        if i < len(seed_groups) or (len(group) >= 2 and coverage >= params.min_coverage):
            ids = kept[np.asarray(group, np.int64)]
            ids = ids[np.lexsort((ids, -support[ids]))]
            name = list(seeds)[i] if i < len(seed_groups) else "/".join(names[j] for j in ids[:NAME_LABELS])
            if i >= len(seed_groups) and name in seeds:  # a found facet never takes a seed's name
                name += " (found)"
            facets.append((name, ids, coverage, space.collision(group), i < len(seed_groups)))
    return _facets_result(facets, len(names), n)


def _facets_result(facets: list, n_labels: int, n_listings: int) -> Facets:
    facets.sort(key=lambda f: int(f[1].min()))  # by its most frequent label: the order of weaklabel.facets
    of_label: list[str | None] = [None] * n_labels
    for name, ids, *_ in facets:
        for label in ids:
            of_label[int(label)] = name
    table = pa.Table.from_pydict({
        "facet_id": list(range(len(facets))),
        "name": [f[0] for f in facets],
        "labels": [[int(i) for i in f[1]] for f in facets],
        "listings": [round(f[2] * n_listings) for f in facets],
        "coverage": [f[2] for f in facets],
        "collision": [f[3] for f in facets],
        "seeded": [f[4] for f in facets],
    }, schema=FACETS_SCHEMA)
    return Facets(of_label, table.to_pandas())


class _LabelSpace:
    """The kept labels: their listings, co-occurrence and pairwise similarity."""

    def __init__(self, listings: csc_matrix, support: np.ndarray, informativeness: np.ndarray,
                 embeddings: np.ndarray, protected: set[int]) -> None:
        self.x = listings
        self.protected = protected  # the labels the user seeded: never taken out
        self.support = support.astype(np.float64)
        self.role = informativeness.astype(np.float64)
        together = (listings.T @ listings).toarray().astype(np.float64)
        np.fill_diagonal(together, 0)
        self.together = together
        self.similarity = self._similarity(together, embeddings)

    def _similarity(self, together: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        n = max(self.x.shape[0], 1)
        expected = np.outer(self.support, self.support) / n
        with np.errstate(divide="ignore", invalid="ignore"):
            ppmi = np.where(together >= 2, np.maximum(np.log(together / np.maximum(expected, 1e-12)), 0), 0)
        context = ppmi / np.maximum(np.linalg.norm(ppmi, axis=1, keepdims=True), 1e-12)
        meaning = embeddings.astype(np.float64) @ embeddings.astype(np.float64).T
        role = 1 - np.abs(self.role[:, None] - self.role[None, :])
        return (context @ context.T + meaning) / 2 * role

    def overlap(self) -> np.ndarray:
        """Share of the rarer label's listings that two labels share."""
        return self.together / np.maximum(np.minimum(self.support[:, None], self.support[None, :]), 1)

    def listings(self, group: list[int]) -> int:
        return int((np.asarray(self.x[:, group].sum(axis=1)).ravel() >= 1).sum())

    def collision(self, group: list[int]) -> float:
        """Of the listings that name a label of the group, the share naming two or more."""
        count = np.asarray(self.x[:, group].sum(axis=1)).ravel()
        return float((count >= 2).sum() / max((count >= 1).sum(), 1))

    def candidates(self, params: FacetParams, free: np.ndarray) -> list[list[int]]:
        """Facet candidates among ``free`` labels: the highest exclusive, similar subtrees of the
        average-linkage tree (step 3 of the module docstring)."""
        if len(free) < 2:
            return []
        similarity = self.similarity[np.ix_(free, free)].copy()
        similarity[self.overlap()[np.ix_(free, free)] > params.max_collision] = -1
        distance = np.clip(1 - similarity, 0, 2)
        np.fill_diagonal(distance, 0)
        root = to_tree(linkage(squareform(distance, checks=False), "average"))
        found, stack = [], [root]
        while stack:
            node = stack.pop()
            if node.is_leaf():
                continue
            members = [int(free[i]) for i in node.pre_order()]
            if 1 - node.dist >= params.min_similarity and self.collision(members) <= params.max_collision:
                found.append(members)
            else:
                stack += [node.right, node.left]
        return sorted(found, key=min)

    def merged(self, groups: list[list[int]], *, n_seeds: int, n_loose: int,
               params: FacetParams) -> list[list[int]]:
        """Merge groups of one role, most similar first, while the union stays exclusive (step 4).
        The last ``n_loose`` groups are single labels that may only join a seed.

        Sums of pairwise similarity between groups are kept in one matrix, updated on each merge."""
        groups = [list(g) for g in groups]
        member = np.zeros((len(groups), len(self.support)))
        for i, g in enumerate(groups):
            member[i, g] = 1
        total = member @ self.similarity @ member.T
        size = member.sum(axis=1)
        role_mass = member @ (self.role * self.support)
        mass = member @ self.support
        seed = np.arange(len(groups)) < n_seeds
        loose = np.arange(len(groups)) >= len(groups) - n_loose
        refused: set[tuple[int, ...]] = set()
        while len(groups) > 1:
            role = role_mass / np.maximum(mass, 1e-12)
            mean = total / np.outer(size, size)
            heads = np.minimum.outer(role, role) >= HEAD_INFORMATIVENESS
            allowed = ((np.abs(role[:, None] - role[None, :]) <= ROLE_GAP) & ~np.outer(seed, seed)
                       & (heads | (mean >= params.merge_similarity))
                       & ~(loose[:, None] & ~seed[None, :]) & ~(loose[None, :] & ~seed[:, None]))
            allowed &= np.triu(np.ones_like(allowed), k=1).astype(bool)
            found = self._first_exclusive(groups, np.argwhere(allowed), (mean + heads), refused, params)
            if found is None:
                break
            a, b, merged = found
            groups[a] = merged
            total[a] = [self.similarity[np.ix_(merged, g)].sum() for g in groups]
            total[:, a] = total[a]
            size[a], mass[a] = len(merged), self.support[merged].sum()
            role_mass[a] = (self.role[merged] * self.support[merged]).sum()
            seed[a] |= seed[b]
            loose[a] = False
            del groups[b]
            total = np.delete(np.delete(total, b, axis=0), b, axis=1)
            size, role_mass, mass, seed, loose = (np.delete(v, b) for v in (size, role_mass, mass, seed, loose))
        return groups

    def _first_exclusive(self, groups, pairs, score, refused, params) -> tuple[int, int, list[int]] | None:
        """The most similar allowed pair whose union stays exclusive, and that union, pruned."""
        order = np.lexsort((pairs[:, 1], pairs[:, 0], -score[pairs[:, 0], pairs[:, 1]])) if len(pairs) else []
        for a, b in pairs[order]:
            both = groups[a] + groups[b]
            key = tuple(sorted(both))
            if key in refused:
                continue
            union = self.pruned(both)
            pruned_share = 1 - self.support[union].sum() / max(self.support[both].sum(), 1)
            if pruned_share <= MAX_PRUNED and self.collision(union) <= params.max_collision:
                return int(a), int(b), union
            refused.add(key)
        return None

    def pruned(self, group: list[int]) -> list[int]:
        """Without the labels sharing more than MAX_OVERLAP of their listings with the rest of the group,
        the worst first: taking out "kids" keeps "boys" and "girls", which share listings only with it."""
        group = list(group)
        while len(group) > 1:
            shared = self.together[np.ix_(group, group)].sum(axis=1) / np.maximum(self.support[group], 1)
            shared[[label in self.protected for label in group]] = -1
            worst = int(np.argmax(shared))
            if shared[worst] <= MAX_OVERLAP:
                break
            del group[worst]
        return group
