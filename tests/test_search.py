import numpy as np
import pytest

from weaklabel.search import top_k


def test_top_k_matches_brute_force_in_any_block_size():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 16)).astype(np.float32)
    queries = rng.normal(size=(50, 16)).astype(np.float32)
    scores = queries @ base.T
    brute = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    for block in (7, 50, 1024):
        index, score = top_k(queries, base, 5, block=block)
        assert (index == brute).all()
        np.testing.assert_allclose(score, np.take_along_axis(scores, brute, axis=1), rtol=1e-5)


def test_equal_scores_are_ordered_by_base_index():
    base = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], np.float32)
    index, score = top_k(np.array([[1, 0]], np.float32), base, 3)
    assert index.tolist() == [[0, 2, 3]]
    assert score.tolist() == [[1, 1, 1]]


@pytest.mark.parametrize("n_queries, n_base", [(0, 5), (3, 0)])
def test_empty_inputs_give_empty_results(n_queries, n_base):
    index, score = top_k(np.zeros((n_queries, 4), np.float32), np.zeros((n_base, 4), np.float32), 2)
    assert index.shape == score.shape == (n_queries, min(2, n_base))


def test_k_is_capped_at_the_base_size():
    index, _ = top_k(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32), 10)
    assert index.tolist() == [[0, 1], [1, 0]]
