"""Clustering rules on hand-made embeddings, so each rule is tested exactly."""

import numpy as np
import pandas as pd

from weaklabel.labeling.clustering import ClusterParams, cluster_terms

DIM = 8


def unit(*pairs):
    """A normalized vector with the given (axis, value) entries."""
    v = np.zeros(DIM, np.float32)
    for axis, value in pairs:
        v[axis] = value
    return v / np.linalg.norm(v)


def run(rows, **params):
    terms = pd.Series([r[0] for r in rows])
    support = np.array([r[1] for r in rows], dtype=np.float64)
    emb = np.stack([r[2] for r in rows])
    result = cluster_terms(terms, support, emb, ClusterParams(**params))
    return {t: (int(l), h) for t, l, h in zip(terms, result.label, result.how)}, result


def test_lexical_variants_merge_even_with_dissimilar_embeddings():
    out, result = run([
        ("t-shirt", 100, unit((0, 1))),
        ("tshirt", 50, unit((1, 1))),  # orthogonal embedding: merged by the key alone
        ("t shirts", 20, unit((2, 1))),
        ("shirt", 80, unit((0, 1), (3, 0.3))),  # similar embedding but a different word
    ])
    assert out["t-shirt"][0] == out["tshirt"][0] == out["t shirts"][0]
    assert out["shirt"][0] != out["t-shirt"][0]
    assert out["t-shirt"][1] == "name" and out["tshirt"][1] == "variant"
    assert result.n_labels == 2


def test_frequent_synonyms_merge_only_above_merge_threshold():
    out, _ = run([
        ("grey", 100, unit((0, 1))),
        ("gray", 60, unit((0, 1), (1, 0.2))),  # cosine 0.98
        ("silver", 50, unit((0, 1), (1, 0.9))),  # cosine 0.74
    ], merge_threshold=0.9)
    assert out["grey"][0] == out["gray"][0]
    assert out["gray"][1] == "synonym"
    assert out["silver"][0] != out["grey"][0]


def test_rare_term_attaches_to_nearest_label_when_similar_enough():
    out, _ = run([
        ("sneakers", 100, unit((0, 1))),
        ("sandals", 100, unit((1, 1))),
        ("running sneakers", 3, unit((0, 1), (1, 0.3))),  # cosine 0.96 to sneakers
        ("zebra", 3, unit((5, 1))),  # near nothing
    ], attach_threshold=0.8, min_label_support=10)
    assert out["running sneakers"] == (out["sneakers"][0], "attached")
    assert out["zebra"] == (-1, "rare")


def test_rare_terms_cluster_into_a_new_label_when_their_support_adds_up():
    out, result = run([
        ("mug", 100, unit((0, 1))),
        ("teapot", 4, unit((4, 1))),
        ("tea pots", 3, unit((4, 1), (5, 0.05))),  # a variant of teapot
        ("teakettle", 4, unit((4, 1), (5, 0.2))),  # cosine 0.98 to teapot
        ("lonely", 2, unit((6, 1))),
    ], min_label_support=10, rare_merge_threshold=0.85, attach_threshold=0.8)
    assert out["teapot"][0] == out["tea pots"][0] == out["teakettle"][0] >= 0
    assert out["teakettle"][1] in {"rare-cluster", "name"}
    assert out["lonely"] == (-1, "rare")
    assert result.n_labels == 2


def test_typo_joins_a_much_more_frequent_word_one_edit_away():
    out, _ = run([
        ("trainers", 200, unit((0, 1))),
        ("trianers", 2, unit((0, 1), (1, 1.2))),  # cosine 0.64: below attach, above typo similarity
        ("skirts", 100, unit((2, 1))),
        ("shirts", 100, unit((3, 1))),  # one edit from skirts, but both frequent
    ], min_label_support=10, attach_threshold=0.9, typo_min_similarity=0.5, min_typo_length=6)
    assert out["trianers"] == (out["trainers"][0], "typo")
    assert out["skirts"][0] != out["shirts"][0]


def test_swapped_neighbours_join_without_similarity_other_typos_need_it():
    out, _ = run([
        ("necklace", 85, unit((0, 1))),
        ("neckalce", 7, unit((1, 1))),  # two letters swapped, an orthogonal embedding (MiniLM gives 0.38)
        ("necklase", 7, unit((2, 1))),  # one letter replaced, orthogonal: not taken as a typo
    ], min_label_support=10, attach_threshold=0.9, typo_min_similarity=0.5, min_typo_length=6)
    assert out["neckalce"] == (out["necklace"][0], "typo")
    assert out["necklase"][0] != out["necklace"][0]


def test_clustering_off_makes_each_frequent_term_a_label():
    terms = pd.Series(["a", "b", "c"])
    result = cluster_terms(terms, np.array([20.0, 15.0, 2.0]), np.eye(3, DIM, dtype=np.float32),
                           ClusterParams(min_label_support=10), enabled=False)
    assert result.label.tolist() == [0, 1, -1]
    assert result.how.tolist() == ["name", "name", "rare"]


def test_terms_differing_by_distinct_labels_stay_apart():
    # the embedding puts colour swaps close together; the words say they differ
    duffle = unit((0, 1))
    out, _ = run([
        ("blue", 100, unit((1, 1))),
        ("green", 90, unit((2, 1))),  # cosine 0 to blue: distinct labels
        ("grey", 80, unit((3, 1))),
        ("gray", 70, unit((3, 1), (4, 0.1))),  # cosine 0.995 to grey: synonyms
        ("duffle", 60, unit((0, 1), (5, 0.6))),
        ("blue duffle", 30, duffle),
        ("green duffle", 20, unit((0, 1), (2, 0.1))),  # cosine 0.995 to blue duffle: not merged
        ("grey duffle", 25, unit((0, 1), (3, 0.1))),
        ("grey holdall duffle", 4, duffle),  # rare, nearest to blue duffle; joins grey duffle
        ("yellow duffle", 3, unit((0, 1), (6, 0.1))),  # "yellow" is no label: attaches to the nearest
        ("blue duffle bag", 3, unit((0, 1), (7, 0.1))),  # more specific, nothing swapped: attaches
    ], merge_threshold=0.9, attach_threshold=0.8, min_label_support=10)
    assert out["green duffle"][0] != out["blue duffle"][0]
    assert out["gray"][0] == out["grey"][0]
    assert out["grey holdall duffle"] == (out["grey duffle"][0], "attached")
    assert out["yellow duffle"] == (out["blue duffle"][0], "attached")
    assert out["blue duffle bag"] == (out["blue duffle"][0], "attached")
    assert out["grey duffle"][0] != out["blue duffle"][0]


def test_attaching_term_is_checked_against_the_label_it_joins_not_its_colour_variants():
    # "polo t-shirt" holds "white polo t-shirt" as a synonym; a navy one still belongs under it
    polo = unit((0, 1))
    out, _ = run([
        ("white", 100, unit((1, 1))),
        ("navy", 90, unit((2, 1))),
        ("polo t-shirt", 60, polo),
        ("white polo t-shirt", 20, unit((0, 1), (1, 0.2))),
        ("navy polo t-shirt", 4, unit((0, 1), (2, 0.2))),
    ], merge_threshold=0.9, attach_threshold=0.8, min_label_support=10)
    assert out["white polo t-shirt"][0] == out["polo t-shirt"][0]
    assert out["navy polo t-shirt"] == (out["polo t-shirt"][0], "attached")


def test_terms_with_different_codes_never_share_a_label():
    same = unit((0, 1))  # every embedding identical: only the code rule keeps them apart
    out, _ = run([
        ("ram", 60, same), ("8gb", 50, same), ("16gb", 40, same), ("eos rebel t3i", 12, same),
        ("eos rebel t7i", 11, same), ("40mm", 20, same), ("45mm", 20, same),
        ("8gb ram", 5, same), ("16gb ram", 4, same), ("eos rebel t5", 3, same), ("42mm", 2, same),
    ], min_label_support=10)
    code_of = {}
    for term, (label, _) in out.items():
        codes = {w for w in term.split() if any(ch.isdigit() for ch in w)}
        if label >= 0 and codes:
            assert code_of.setdefault(label, codes) == codes, (term, code_of[label])  # one code per label, no chain
    assert out["8gb"][0] != out["16gb"][0] and out["40mm"][0] != out["45mm"][0]
    assert out["eos rebel t3i"][0] != out["eos rebel t7i"][0]
    assert out["ram"][0] in (out["8gb"][0], out["16gb"][0])  # a term without a code joins one of them


def test_terms_with_nearly_the_same_listings_share_a_label():
    out, _ = run([
        ("arla", 100, unit((0, 1))), ("arla ko", 95, unit((1, 1))), ("arla ko guarantees", 92, unit((2, 1))),
        ("brand arla", 91, unit((3, 1))), ("milk", 80, unit((4, 1))), ("arla milk", 20, unit((5, 1))),
    ], min_label_support=10, merge_threshold=0.99)
    assert out["arla"][0] == out["arla ko"][0] == out["arla ko guarantees"][0] == out["brand arla"][0]
    assert out["arla"][1] == "name" and out["brand arla"][1] == "same-listings"
    assert out["arla milk"][0] not in (out["arla"][0], out["milk"][0])  # 20% and 25% of their listings: apart
    assert out["milk"][0] != out["arla"][0]


def test_a_label_keeps_the_code_of_the_first_coded_term_it_takes():
    near = [unit((0, 1)), unit((0, 0.95), (1, 0.31)), unit((0, 0.95), (2, 0.31))]
    out, _ = run([("ram", 100, near[0]), ("8gb ram", 3, near[1]), ("16gb ram", 3, near[2])])
    assert out["8gb ram"] == (out["ram"][0], "attached") and out["16gb ram"][1] == "rare"  # not both into "ram"
    out, _ = run([("ram", 100, near[0]), ("8gb ram", 95, near[1]), ("16gb ram", 12, near[2])])
    assert out["8gb ram"] == (out["ram"][0], "same-listings")  # the group {ram, 8gb ram} has code 8gb
    assert out["16gb ram"][0] != out["ram"][0]
