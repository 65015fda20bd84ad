"""Assignment rules on a hand-made vocabulary, so every score can be computed by hand."""

import numpy as np
import pandas as pd
import pytest

from weaklabel.labeling.assign import LabelAssigner
from weaklabel.labeling.vocabulary import Vocabulary
from weaklabel.listings import ColumnRoles, Field

# label_id: name, [(term, similarity, support)]; products have informativeness 1, modifiers 0 (cotton 0.2)
LABELS = {
    0: ("shirt", [("shirt", 1.0, 80), ("shirts", 1.0, 20)]),
    1: ("blue", [("blue", 1.0, 100)]),
    2: ("navy", [("navy blue", 0.9, 10), ("navy", 1.0, 12)]),
    3: ("sneakers", [("sneakers", 1.0, 30), ("trainers", 0.8, 10)]),
    4: ("cotton", [("cotton", 1.0, 10)]),
    5: ("track pants", [("track pants", 1.0, 9)]),
    6: ("track", [("track", 1.0, 10)]),
    7: ("t-shirt", [("t-shirt", 1.0, 50), ("t shirt", 1.0, 5)]),
}


def make_vocabulary() -> Vocabulary:
    labels = pd.DataFrame({
        "label_id": np.arange(len(LABELS), dtype=np.int32),
        "name": [v[0] for v in LABELS.values()],
        "aliases": [[m[0] for m in v[1][1:]] for v in LABELS.values()],
        "support": [sum(m[2] for m in v[1]) for v in LABELS.values()],
        "tier": ["head", "head", "torso", "torso", "tail", "tail", "tail", "head"],
        "informativeness": np.array([1.0, 0.0, 0.0, 1.0, 0.2, 1.0, 0.0, 1.0], np.float32),
    })
    terms = pd.DataFrame(
        [(t, "title", n, i, s, "name") for i, (_, members) in LABELS.items() for t, s, n in members],
        columns=["term", "field", "support", "label_id", "similarity", "how"],
    )
    terms["label_id"] = terms["label_id"].astype("Int32")
    roles = ColumnRoles(fields=(Field("title", "text", 1.0), Field("tags", "tags", 0.5)), id="id", image=None)
    return Vocabulary(labels, terms, np.eye(len(LABELS), 4, dtype=np.float32),
                      {"ngram_range": [1, 3], "stopwords": ["for", "with"]}, None, roles)


def listing_frame(rows):
    return pd.DataFrame({"id": [str(i) for i in range(len(rows))],
                         "title": [r[0] for r in rows], "tags": [r[1] for r in rows]})


def labels_of(result, row):
    return list(result["labels"].iloc[row]), [round(float(s), 4) for s in result["scores"].iloc[row]]


def test_overlap_common_words_keep_their_label():
    result = LabelAssigner(make_vocabulary()).fit().transform(listing_frame([("Navy Blue Shirt", [])]))
    labels, _ = labels_of(result, 0)
    # "blue" (support 100) is common on its own: "navy blue" (10) does not absorb it; "shirt" neither.
    assert labels == [0, 1, 2]  # the product first; the modifiers at half their evidence (navy: 0.5 x 0.9)
    assert {"field": "title", "term": "navy blue"} in list(result["evidence"].iloc[0])


def test_overlap_fragments_are_absorbed():
    result = LabelAssigner(make_vocabulary()).fit().transform(listing_frame([("black track pants", [])]))
    assert labels_of(result, 0)[0] == [5]  # "track" (10) mostly occurs inside "track pants" (9)
    strict_assigner = LabelAssigner(make_vocabulary(), absorb_ratio=1.0).fit()
    strict = strict_assigner.transform(listing_frame([("black track pants", [])]))
    assert labels_of(strict, 0)[0] == [5, 6]


def test_overlap_one_word_label_written_apart_absorbs_its_parts():
    result = LabelAssigner(make_vocabulary()).fit().transform(listing_frame([("blue t shirt", [])]))
    assert labels_of(result, 0)[0] == [7, 1]  # t-shirt and blue, not shirt


def test_overlap_rule_is_per_field():
    assigner = LabelAssigner(make_vocabulary(), min_score=0.2).fit()
    result = assigner.transform(listing_frame([("track pants", ["track"])]))
    labels, scores = labels_of(result, 0)
    assert labels == [5, 6]
    assert scores == [1.0, 0.25]  # "track" only from the tag: weight 0.5 x similarity 1.0, a modifier: x 0.5


def test_scores_combine_field_weights_and_similarity_as_noisy_or():
    frame = listing_frame([("trainers", ["trainers"]), ("trainers", [])])
    result = LabelAssigner(make_vocabulary()).fit().transform(frame)
    assert labels_of(result, 0) == ([3], [round(1 - (1 - 0.8) * (1 - 0.5 * 0.8), 4)])
    assert labels_of(result, 1) == ([3], [0.8])


def test_two_exact_matches_outrank_one():
    result = LabelAssigner(make_vocabulary()).fit().transform(listing_frame([("Sneakers | T-Shirt, T Shirt", [])]))
    assert labels_of(result, 0) == ([7, 3], [1.0, 1.0])  # rounded; unrounded below
    assert result["scores"].iloc[0][0] == 1.0 and result["scores"].iloc[0][1] == np.float32(1 - 1e-6)


def test_the_most_informative_label_ranks_first_whatever_its_id():
    result = LabelAssigner(make_vocabulary()).fit().transform(listing_frame([("Navy Sneakers", [])]))
    assert labels_of(result, 0) == ([3, 2], [1.0, 0.5])  # the product (id 3) before the colour (id 2)


def test_min_score_and_top_k_and_order():
    frame = listing_frame([("cotton shirt", ["trainers"])])
    vocab = make_vocabulary()
    all_labels = LabelAssigner(vocab, min_score=0.0).fit().transform(frame)
    assert labels_of(all_labels, 0) == ([0, 4, 3], [1.0, 0.6, 0.4])  # score desc, then label id
    assert labels_of(LabelAssigner(vocab, min_score=0.5).fit().transform(frame), 0)[0] == [0, 4]
    assert labels_of(LabelAssigner(vocab, min_score=0.0, top_k=1).fit().transform(frame), 0)[0] == [0]


def test_unlabelled_listing_is_kept_with_empty_lists():
    frame = listing_frame([("lovely lamp", []), ("shirt", [])]).set_axis([10, 20])
    result = LabelAssigner(make_vocabulary()).fit().transform(frame)
    assert result.index.tolist() == [10, 20]
    assert list(result["labels"].loc[10]) == [] and list(result["scores"].loc[10]) == []
    assert list(result["labels"].loc[20]) == [0]


def test_variants_share_a_label_and_the_best_evidence_is_reported():
    result = LabelAssigner(make_vocabulary()).fit().transform(listing_frame([("shirts", ["shirt"])]))
    labels, _ = labels_of(result, 0)
    assert labels == [0]
    assert list(result["evidence"].iloc[0]) == [{"field": "title", "term": "shirts"}]


def test_bad_parameters_are_rejected():
    vocab = make_vocabulary()
    with pytest.raises(ValueError, match="top_k"):
        LabelAssigner(vocab, top_k=0).fit()
    with pytest.raises(ValueError, match="min_score"):
        LabelAssigner(vocab, min_score=2).fit()
    with pytest.raises(ValueError, match="title"):
        LabelAssigner(vocab).fit().transform(pd.DataFrame({"id": ["1"], "tags": [[]]}))


def test_estimators_follow_the_scikit_learn_contract():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.estimator_checks import (
        check_get_params_invariance,
        check_no_attributes_set_in_init,
        check_set_params,
    )

    from weaklabel.labeling import VocabularyBuilder

    vocab = make_vocabulary()
    for estimator in (VocabularyBuilder(vocab.roles, min_support=2), LabelAssigner(vocab, top_k=3)):
        name = type(estimator).__name__
        check_no_attributes_set_in_init(name, estimator)
        check_get_params_invariance(name, estimator)
        check_set_params(name, estimator)
        copy = clone(estimator)
        assert copy is not estimator and copy.get_params().keys() == estimator.get_params().keys()
    with pytest.raises(NotFittedError):
        LabelAssigner(vocab).transform(listing_frame([("navy shirt", [])]))
    assigner = clone(LabelAssigner(vocab)).set_params(min_score=0.0, top_k=1).fit()
    assert labels_of(assigner.transform(listing_frame([("navy blue shirt", [])])), 0)[0] == [0]
