"""Clustering candidate terms into labels, to tame the long tail.

Text embeddings alone cannot tell spelling variants from distinct concepts: all-MiniLM-L6-v2
scores "tshirt"/"t-shirt" at 0.73 but "shirt"/"t-shirt" at 0.80 and "kurta"/"kurti" (two
different garments) at 0.87. So the clustering works in steps, the safest first:

1. **Variants** – terms with the same key (hyphens and spaces removed, words singularized:
   "T-Shirts", "tshirt", "t shirt") form one group. Exact and cheap.
   Terms whose listings are nearly the same join too: a term inside a longer one ("arla" in "arla
   ko guarantees", "vary" in "vary slightly") whose listings the longer one holds almost all of
   (its support at least ``same_listings_ratio`` of the shorter's) says nothing the other does
   not. The terms that join another's label this way are ``how = "same-listings"`` and add
   nothing to its support; the label is named by its most frequent term.
2. **Frequent groups** – a group whose support reaches ``min_label_support`` is frequent.
   Frequent groups whose embeddings are at least ``merge_threshold`` similar are merged
   (synonyms such as "grey"/"gray"); the threshold is high on purpose.
3. **Typos** – a rare group whose key is one edit away from a frequent group's key (found with
   shared deletion keys, as SymSpell does) joins it when the frequent group is at least
   ``typo_support_ratio`` times more common and their embeddings are at least
   ``typo_min_similarity`` similar ("tshrit" → "tshirt", but not "skirt" → "shirt"); two swapped
   neighbouring letters ("neckalce" → "necklace") need no similarity.
4. **Attachment** – any other rare group joins its nearest label when their similarity is at
   least ``attach_threshold``.
5. **Rare clusters** – the remaining rare groups link to each other at
   ``rare_merge_threshold``; a connected set whose combined support reaches
   ``min_label_support`` becomes a new label, the rest are dropped (reason ``rare``).

Steps 2, 4 and 5 do not link two terms directly when they share a word and differ by words that
are distinct labels of their own, unless those words are synonyms (embeddings at least
``merge_threshold`` similar): the embedding scores "green duffle"/"blue duffle" at 0.93 and
"ucb women's"/"ucb men's" higher still, but "green" and "blue", "women" and "men" are labels, so
those links are cut, while "grey shirt" may join "gray shirt". The rule is a check on links, not
on labels: a chain of allowed links (through "duffle") can still put both in one label, and an
attaching term is compared with the label's first group only. That is on purpose: a general
label often holds colour forms of itself ("polo t-shirt" holds "white polo t-shirt"), and
checking every group would turn "navy polo t-shirt" away (on the fashion catalogue, 318 terms
of such labels would be dropped as rare, with label quality unchanged).

Numbers, units and model codes tell products apart: terms that differ in a word with a digit
("8gb"/"16gb", "eos rebel t3i"/"eos rebel t7i", "40mm"/"45mm") are never typos, synonyms or
attachments of each other, and no chain of links puts them in one label either: a label holds
terms of at most one such *code* (a term with no code may join any label).

Every nearest-neighbour search is exact (blocked matrix products), so results are
deterministic. A label's support is the sum of its terms' supports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from ..search import exact_search
from .text import contained_terms, term_key


@dataclass(frozen=True)
class ClusterParams:
    min_label_support: int = 10
    merge_threshold: float = 0.90
    attach_threshold: float = 0.80
    rare_merge_threshold: float = 0.85
    typo_min_similarity: float = 0.50
    typo_support_ratio: float = 5.0
    min_typo_length: int = 6
    neighbours: int = 10
    same_listings_ratio: float = 0.9


@dataclass
class Clustering:
    """Per candidate term: its label (-1 when dropped), how it joined, and its similarity to the label."""

    label: np.ndarray  # int64, label index in 0..n_labels-1 or -1
    how: np.ndarray  # object: name, variant, synonym, typo, attached, rare-cluster, rare
    similarity: np.ndarray  # float32
    n_labels: int


def cluster_terms(
    terms: pd.Series, support: np.ndarray, embeddings: np.ndarray, params: ClusterParams, *, enabled: bool = True,
    text_support: np.ndarray | None = None,
) -> Clustering:
    """Cluster terms (sorted by support, descending) into labels; see the module docstring.

    ``text_support`` is each term's support as an n-gram of free text (default: ``support``): only
    there does a longer term bring its shorter parts with it, as the same-listings step assumes (a
    category value "bags & purses" does not make its listings hold the term "bags")."""
    if not enabled:
        keep = support >= params.min_label_support
        label = np.where(keep, np.cumsum(keep) - 1, -1)
        how = np.where(keep, "name", "rare").astype(object)
        return Clustering(label, how, keep.astype(np.float32), int(keep.sum()))

    key, key_names = pd.factorize(pd.Series([term_key(t) for t in terms], dtype=object))
    term_code = _term_codes(terms)
    root = _same_listings_roots(terms, support, support if text_support is None else text_support, key,
                                _cluster_codes(term_code, key, len(key_names)), params.same_listings_ratio)
    group, uniques = pd.factorize(root[key])
    group_keys = np.asarray(key_names[uniques], dtype=object)  # group g's key: that of its most frequent term
    group_support = np.bincount(group, weights=support)
    group_emb = weighted_centroids(embeddings, support, group, len(group_support))
    is_frequent = group_support >= params.min_label_support
    frequent, rare = np.flatnonzero(is_frequent), np.flatnonzero(~is_frequent)

    contrast = _Contrast(terms, group, group_keys, is_frequent, group_emb, params.merge_threshold)
    code = _cluster_codes(term_code, group, len(group_support))  # the steps that build groups keep one code each

    # Group -> cluster of groups; starts as each group alone.
    cluster = np.arange(len(group_support))
    cluster[frequent] = frequent[_components_above(group_emb[frequent], params.merge_threshold, params.neighbours,
                                                   contrast.within(frequent), code[frequent])]
    group_how = np.full(len(group_support), "", dtype=object)

    typo_target = _typo_targets(group_keys, group_support, group_emb, frequent, rare, params)
    cluster_code = _cluster_codes(code[frequent], cluster[frequent], len(group_support))
    typo_target[(typo_target >= 0) & ~_compatible(code[rare], cluster_code[cluster[np.maximum(typo_target, 0)]])] = -1
    has_typo = typo_target >= 0
    cluster[rare[has_typo]] = cluster[typo_target[has_typo]]
    group_how[rare[has_typo]] = "typo"
    rare = rare[~has_typo]

    label_ids, first = np.unique(cluster[frequent], return_index=True)
    label_heads = frequent[first]  # each label's first group (that of its most frequent term) stands for it
    centroids = weighted_centroids(group_emb[frequent], group_support[frequent],
                                   np.searchsorted(label_ids, cluster[frequent]), len(label_ids))
    if len(rare) and len(label_ids):
        found = exact_search(group_emb[rare], centroids, min(params.neighbours, len(label_ids)))
        members = np.flatnonzero(np.isin(cluster, label_ids))
        label_code = _cluster_codes(code[members], np.searchsorted(label_ids, cluster[members]), len(label_ids))
        target = _first_allowed(rare, label_heads, found.indices, found.scores >= params.attach_threshold, contrast,
                                code[rare], label_code)
        attached = target >= 0
        cluster[rare[attached]] = label_ids[target[attached]]
        group_how[rare[attached]] = "attached"
        rare = rare[~attached]

    is_label = np.zeros(len(group_support), bool)
    is_label[cluster[frequent]] = True
    if len(rare):
        components = _components_above(group_emb[rare], params.rare_merge_threshold, params.neighbours,
                                       contrast.within(rare), code[rare])
        component_support = np.bincount(components, weights=group_support[rare])
        roots = rare[_first_of_each(components)]
        cluster[rare] = roots[components]
        big = component_support[components] >= params.min_label_support
        is_label[cluster[rare[big]]] = True
        group_how[rare[big]] = "rare-cluster"
        group_how[rare[~big]] = "rare"

    result = _label_terms(terms, group, cluster, is_label, group_how, support, embeddings)
    result.how[(result.how == "variant") & (root[key] != key)] = "same-listings"
    return result


def _same_listings_roots(terms: pd.Series, support: np.ndarray, text_support: np.ndarray, key: np.ndarray,
                         key_code: np.ndarray, ratio: float) -> np.ndarray:
    """Per term key, the key it joins (itself when none): a key whose term lies inside a longer term
    that holds at least ``ratio`` of the key's listings in free text joins that term's key, codes
    kept apart. The shorter side counts all its spelling variants ("container" and "containers"),
    the longer side only itself, so neither a variant nor a longer term's variants ("ear rings" of
    "earrings") bridge two concepts."""
    index = {term: i for i, term in enumerate(terms)}
    key_support = np.bincount(key, weights=support, minlength=len(key_code))
    rows, cols, share = [], [], []
    for i, j in contained_terms(terms.tolist(), index):
        if key[i] != key[j] and text_support[i] >= ratio * key_support[key[j]]:
            rows.append(key[j])
            cols.append(key[i])
            share.append(text_support[i] / key_support[key[j]])
    if not rows:
        return np.arange(len(key_code))
    return _components_keeping_codes_apart(np.array(rows), np.array(cols), np.array(share), key_code)


def _label_terms(terms, group, cluster, is_label, group_how, support, embeddings) -> Clustering:
    """Number the labels and describe every term's place in them."""
    term_cluster = cluster[group]
    kept = is_label[term_cluster]
    label = np.full(len(terms), -1, np.int64)
    codes, uniques = pd.factorize(term_cluster[kept])
    label[kept] = codes
    n_labels = len(uniques)
    centroids = weighted_centroids(embeddings[kept], support[kept], label[kept], n_labels)
    similarity = np.zeros(len(terms), np.float32)
    similarity[kept] = np.einsum("ij,ij->i", embeddings[kept], centroids[label[kept]])

    how = group_how[group].copy()
    first_in_group = np.zeros(len(terms), bool)
    first_in_group[_first_of_each(group)] = True
    variant = kept & ~first_in_group
    how[variant & (how == "")] = "variant"
    similarity[variant & (how == "variant")] = 1.0
    first_in_label = np.zeros(len(terms), bool)
    first_in_label[np.flatnonzero(kept)[_first_of_each(label[kept])]] = True
    how[first_in_label] = "name"
    similarity[first_in_label] = 1.0
    how[kept & (how == "")] = "synonym"
    how[~kept] = "rare"
    return Clustering(label, how, similarity, n_labels)


def _typo_targets(keys, group_support, group_emb, frequent, rare, params) -> np.ndarray:
    """For each rare group, the frequent group one edit away that it is a typo of, or -1."""
    target = np.full(len(rare), -1)
    if not len(rare) or not len(frequent):
        return target
    rare_keys = _deletion_keys(keys, rare, params.min_typo_length)
    frequent_keys = _deletion_keys(keys, frequent, params.min_typo_length)
    pairs = rare_keys.merge(frequent_keys, on="key", suffixes=("_rare", "_frequent")).drop_duplicates(
        ["group_rare", "group_frequent"]
    )
    if pairs.empty:
        return target
    g_rare = pairs["group_rare"].to_numpy()
    g_freq = pairs["group_frequent"].to_numpy()
    sim = np.einsum("ij,ij->i", group_emb[g_rare], group_emb[g_freq])
    # two swapped neighbours ("neckalce") embed far from the word (subword pieces differ), yet are
    # the commonest slip of a typist: they need no similarity
    swapped = np.fromiter((_swapped_neighbours(keys[r], keys[f]) for r, f in zip(g_rare, g_freq, strict=True)),
                          bool, len(g_rare))
    ok = ((sim >= params.typo_min_similarity) | swapped) & (
        group_support[g_freq] >= params.typo_support_ratio * group_support[g_rare])
    best = pd.DataFrame({"rare": g_rare[ok], "frequent": g_freq[ok], "sim": sim[ok]})
    best = best.sort_values(["rare", "sim"], ascending=[True, False]).drop_duplicates("rare")
    position = pd.Series(np.arange(len(rare)), index=rare)
    target[position[best["rare"]].to_numpy()] = best["frequent"].to_numpy()
    return target


def _swapped_neighbours(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with two neighbouring characters swapped."""
    if len(a) != len(b):
        return False
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    return (len(differ) == 2 and differ[1] == differ[0] + 1
            and a[differ[0]] == b[differ[1]] and a[differ[1]] == b[differ[0]])


def _deletion_keys(keys: np.ndarray, groups: np.ndarray, min_length: int) -> pd.DataFrame:
    """Each group's key and all its one-character deletions, for keys of at least ``min_length``."""
    rows = [
        (g, variant)
        for g in groups
        if len(key := keys[g]) >= min_length
        for variant in {key, *(key[:i] + key[i + 1 :] for i in range(len(key)))}
    ]
    return pd.DataFrame(rows, columns=["group", "key"])


def _components_above(vectors: np.ndarray, threshold: float, k: int,
                      separate: Callable[[np.ndarray, np.ndarray], np.ndarray], code: np.ndarray) -> np.ndarray:
    """Connected components of the graph linking each vector to its k nearest at >= threshold,
    leaving out the links that ``separate(rows, cols)`` marks True, and those that would put two
    different codes in one component (the closest links are taken first)."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, np.int64)
    found = exact_search(vectors, vectors, min(k + 1, n))
    neighbours, sim = found.indices, found.scores.reshape(-1)
    rows, cols = np.repeat(np.arange(n), neighbours.shape[1]), neighbours.reshape(-1)
    keep = (sim >= threshold) & (rows != cols)
    keep[keep] = ~separate(rows[keep], cols[keep])
    if (code[rows[keep]] != "").any() or (code[cols[keep]] != "").any():
        components = _components_keeping_codes_apart(rows[keep], cols[keep], sim[keep], code)
    else:
        graph = coo_matrix((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(n, n))
        _, components = connected_components(graph, directed=False)
    # Number components by their first member so results follow the input order.
    numbers, _ = pd.factorize(components)
    return numbers.astype(np.int64)


def _components_keeping_codes_apart(rows: np.ndarray, cols: np.ndarray, sim: np.ndarray,
                                    code: np.ndarray) -> np.ndarray:
    """Union-find over the links, closest first, skipping a link whose two sides hold different codes.
    Each node's component is named by its smallest member."""
    parent = np.arange(len(code))
    root_code = code.copy()

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    closest_first = np.argsort(-sim, kind="stable")
    for r, c in zip(rows[closest_first].tolist(), cols[closest_first].tolist()):
        a, b = root(r), root(c)
        if a != b and _compatible(root_code[a], root_code[b]):
            parent[max(a, b)] = min(a, b)
            root_code[min(a, b)] = root_code[a] or root_code[b]
    return np.array([root(i) for i in range(len(code))])


def _term_codes(terms: pd.Series) -> np.ndarray:
    """Each term's code: its words that hold a digit, keyed and joined ("" when none)."""
    return np.array([" ".join(sorted(term_key(w) for w in term.split() if any(ch.isdigit() for ch in w)))
                     for term in terms.tolist()], dtype=object)


def _cluster_codes(code: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """The code of each cluster (of terms, keys or groups): that of its members that have one ("" when none)."""
    result = np.full(n_clusters, "", dtype=object)
    has = code != ""
    result[cluster[has]] = code[has]
    return result


def _compatible(a: np.ndarray | str, b: np.ndarray | str) -> np.ndarray | bool:
    """Codes that may share a label: equal, or one of them none."""
    return (a == "") | (b == "") | (a == b)


class _Contrast:
    """Which pairs of term groups must stay apart: they share a word and each has a word the
    other lacks that is a label of its own (a frequent one-word group), and no such word of one
    is a synonym of such a word of the other."""

    def __init__(self, terms: pd.Series, group: np.ndarray, group_keys: np.ndarray, is_frequent: np.ndarray,
                 group_emb: np.ndarray, synonym_threshold: float):
        self.words = [frozenset(term_key(w) for w in terms.iloc[i].split()) for i in _first_of_each(group)]
        self.label_of_word = {key: g for g, key in enumerate(group_keys) if is_frequent[g]}
        self.group_emb = group_emb
        self.synonym_threshold = synonym_threshold

    def __call__(self, g: int, h: int) -> bool:
        words_g, words_h = self.words[g], self.words[h]
        if not words_g & words_h:
            return False
        only_g = [self.label_of_word[w] for w in words_g - words_h if w in self.label_of_word]
        only_h = [self.label_of_word[w] for w in words_h - words_g if w in self.label_of_word]
        if not only_g or not only_h:
            return False
        return float((self.group_emb[only_g] @ self.group_emb[only_h].T).max()) < self.synonym_threshold

    def within(self, groups: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``separate(rows, cols)`` over positions in ``groups``, for :func:`_components_above`."""
        return lambda rows, cols: np.fromiter(
            (self(groups[r], groups[c]) for r, c in zip(rows.tolist(), cols.tolist())), bool, len(rows))


def _first_allowed(rare: np.ndarray, label_heads: np.ndarray, nearest: np.ndarray, close: np.ndarray,
                   contrast: _Contrast, rare_code: np.ndarray, label_code: np.ndarray) -> np.ndarray:
    """Per rare group, the position of the nearest close-enough label it does not contrast with and whose
    code it shares (-1: none). A label takes the code of the first coded group that joins it."""
    target = np.full(len(rare), -1)
    for i in np.flatnonzero(close[:, 0]):
        for j in np.flatnonzero(close[i]):
            label = nearest[i, j]
            if _compatible(rare_code[i], label_code[label]) and not contrast(rare[i], label_heads[label]):
                target[i] = label
                label_code[label] = label_code[label] or rare_code[i]
                break
    return target


def weighted_centroids(vectors: np.ndarray, weights: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """L2-normalized weighted mean of the rows of ``vectors`` in each of ``n`` groups."""
    return _normalize(_sum_rows_by(vectors * np.asarray(weights, np.float32)[:, None], index, n))


def _sum_rows_by(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """Row sums of ``values`` grouped by ``index`` (a sparse product: np.add.at is slow)."""
    onehot = csr_matrix((np.ones(len(index), np.float32), (index, np.arange(len(index)))), shape=(n, len(index)))
    return np.asarray(onehot @ values, dtype=np.float32)


def _normalize(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def _first_of_each(ids: np.ndarray) -> np.ndarray:
    """Index of the first occurrence of each distinct id, in order of first appearance."""
    _, first = np.unique(ids, return_index=True)
    return np.sort(first)
