"""Tests for crs.eval.metrics on small hand-computed cases (arithmetic in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crs.eval.metrics import (
    RankingAccumulator,
    bleu,
    distinct_n,
    end_to_end_recall,
    item_ratio,
    mrr,
    ndcg_at_k,
    rank_of,
    recall_at_k,
    tokenize,
)

# --------------------------------------------------------------------------- #
# tokenize
# --------------------------------------------------------------------------- #


def test_tokenize_lowercases_and_splits_contractions_and_punctuation() -> None:
    # Treebank splits "don't" into "do" + "n't" and detaches the final "?".
    assert tokenize("Don't you LOVE it?") == ["do", "n't", "you", "love", "it", "?"]


def test_tokenize_possessive_quotes_and_empty() -> None:
    # "it's" -> "it" + "'s"; double quotes become Treebank `` and ''.
    assert tokenize('It\'s "Alien"') == ["it", "'s", "``", "alien", "''"]
    assert tokenize("") == []


# --------------------------------------------------------------------------- #
# rank_of
# --------------------------------------------------------------------------- #


def test_rank_of_distinct_scores() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7])
    # sorted descending: item 1 (0.9), item 3 (0.7), item 2 (0.5), item 0 (0.1)
    assert rank_of(scores, 1) == 1
    assert rank_of(scores, 3) == 2
    assert rank_of(scores, 2) == 3
    assert rank_of(scores, 0) == 4


def test_rank_of_ties_broken_by_lower_index() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.5])
    # order by (-score, index): 1, 0, 2, 3
    assert rank_of(scores, 1) == 1
    assert rank_of(scores, 0) == 2
    assert rank_of(scores, 2) == 3
    assert rank_of(scores, 3) == 4


def test_rank_of_all_equal_scores_gives_index_plus_one() -> None:
    # A model that scores everything the same gets no free rank 1.
    scores = np.zeros(5)
    assert [rank_of(scores, i) for i in range(5)] == [1, 2, 3, 4, 5]


def test_rank_of_matches_stable_sort_on_random_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=40).astype(float)  # many ties
    # stable sort by -score keeps index order within ties
    order = np.argsort(-scores, kind="stable")
    for position, item in enumerate(order, start=1):
        assert rank_of(scores, int(item)) == position


def test_rank_of_exclude_removes_items_from_ranking() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7])
    # target 2 is 3rd; excluding item 1 (ahead of it) moves it to 2nd
    assert rank_of(scores, 2, exclude=[1]) == 2
    # excluding both items ahead of it (1 and 3) makes it 1st
    assert rank_of(scores, 2, exclude=[1, 3]) == 1
    # excluding an item behind it (0) changes nothing
    assert rank_of(scores, 2, exclude=[0]) == 3
    # duplicates and generators are accepted; item 1 is removed once
    assert rank_of(scores, 2, exclude=(i for i in [1, 1])) == 2


def test_rank_of_exclude_with_ties() -> None:
    scores = np.array([0.5, 0.5, 0.5])
    # target 2 is behind 0 and 1 by index; excluding 0 leaves only 1 ahead -> rank 2
    assert rank_of(scores, 2, exclude=[0]) == 2


def test_rank_of_accepts_minus_inf_masks() -> None:
    scores = np.array([-np.inf, 0.2, -np.inf, 0.1])
    # ahead of item 3 (0.1): item 1 only -> rank 2; item 2 (-inf) is behind 0, 1, 3 -> rank 4
    assert rank_of(scores, 3) == 2
    assert rank_of(scores, 2) == 4


def test_rank_of_errors() -> None:
    scores = np.array([0.1, 0.9, 0.5])
    with pytest.raises(ValueError, match="target 1 is in exclude"):
        rank_of(scores, 1, exclude=[0, 1])
    with pytest.raises(ValueError, match="target 3 out of range"):
        rank_of(scores, 3)
    with pytest.raises(ValueError, match="target -1 out of range"):
        rank_of(scores, -1)
    with pytest.raises(ValueError, match="excluded item 7 out of range"):
        rank_of(scores, 0, exclude=[7])
    with pytest.raises(ValueError, match="1-D"):
        rank_of(np.zeros((2, 3)), 0)
    with pytest.raises(ValueError, match="NaN"):
        rank_of(np.array([0.1, np.nan]), 0)


# --------------------------------------------------------------------------- #
# recall_at_k, ndcg_at_k, mrr
# --------------------------------------------------------------------------- #


def test_recall_at_k() -> None:
    ranks = [1, 3, 12]
    assert recall_at_k(ranks, 1) == pytest.approx(1 / 3)  # only rank 1 <= 1
    assert recall_at_k(ranks, 10) == pytest.approx(2 / 3)  # 1 and 3 <= 10
    assert recall_at_k(ranks, 12) == pytest.approx(1.0)  # boundary: 12 <= 12
    assert recall_at_k(ranks, 50) == pytest.approx(1.0)


def test_recall_at_k_empty_and_errors() -> None:
    assert recall_at_k([], 10) == 0.0
    with pytest.raises(ValueError, match="k must be >= 1"):
        recall_at_k([1, 2], 0)
    with pytest.raises(ValueError, match="ranks are 1-based"):
        recall_at_k([0, 2], 10)


def test_ndcg_at_k_single_ranks() -> None:
    assert ndcg_at_k([1], 10) == pytest.approx(1.0)  # 1/log2(2) = 1
    assert ndcg_at_k([3], 10) == pytest.approx(0.5)  # 1/log2(4) = 1/2
    assert ndcg_at_k([7], 10) == pytest.approx(1 / 3)  # 1/log2(8) = 1/3
    assert ndcg_at_k([15], 10) == 0.0  # 15 > 10


def test_ndcg_at_k_mean() -> None:
    ranks = [1, 3, 15]
    # k=10: (1 + 1/2 + 0) / 3 = 0.5
    assert ndcg_at_k(ranks, 10) == pytest.approx(0.5)
    # k=50: (1 + 1/2 + 1/log2(16)=1/4) / 3 = 1.75 / 3
    assert ndcg_at_k(ranks, 50) == pytest.approx(1.75 / 3)


def test_ndcg_at_k_empty_and_errors() -> None:
    assert ndcg_at_k([], 10) == 0.0
    with pytest.raises(ValueError, match="k must be >= 1"):
        ndcg_at_k([1], 0)
    with pytest.raises(ValueError, match="ranks are 1-based"):
        ndcg_at_k([-2], 10)


def test_mrr() -> None:
    ranks = [1, 2, 4]
    # (1 + 1/2 + 1/4) / 3 = 1.75 / 3
    assert mrr(ranks) == pytest.approx(1.75 / 3)
    # k=2: rank 4 contributes 0 -> (1 + 1/2 + 0) / 3 = 0.5
    assert mrr(ranks, k=2) == pytest.approx(0.5)
    # k=4 is inclusive -> same as uncut
    assert mrr(ranks, k=4) == pytest.approx(1.75 / 3)


def test_mrr_empty_and_errors() -> None:
    assert mrr([]) == 0.0
    assert mrr([], k=5) == 0.0
    with pytest.raises(ValueError, match="k must be >= 1"):
        mrr([1], k=0)
    with pytest.raises(ValueError, match="ranks are 1-based"):
        mrr([0])


# --------------------------------------------------------------------------- #
# RankingAccumulator
# --------------------------------------------------------------------------- #


def test_ranking_accumulator_default_summary() -> None:
    acc = RankingAccumulator()
    for rank in [1, 3, 15]:
        acc.add(rank)
    summary = acc.summary()
    assert list(summary) == [
        "recall@1", "recall@10", "recall@50", "ndcg@10", "ndcg@50", "mrr", "count"
    ]
    assert summary["recall@1"] == pytest.approx(1 / 3)  # only rank 1
    assert summary["recall@10"] == pytest.approx(2 / 3)  # ranks 1, 3
    assert summary["recall@50"] == pytest.approx(1.0)
    assert summary["ndcg@10"] == pytest.approx(0.5)  # (1 + 1/2 + 0) / 3
    assert summary["ndcg@50"] == pytest.approx(1.75 / 3)  # (1 + 1/2 + 1/4) / 3
    assert summary["mrr"] == pytest.approx(7 / 15)  # (1 + 1/3 + 1/15) / 3 = (21/15) / 3
    assert summary["count"] == 3


def test_ranking_accumulator_empty_and_custom_ks() -> None:
    empty = RankingAccumulator().summary()
    assert empty["count"] == 0
    assert all(value == 0.0 for key, value in empty.items() if key != "count")

    acc = RankingAccumulator(ks=(2, 5))
    acc.add(2)
    acc.add(6)
    summary = acc.summary()
    assert set(summary) == {"recall@2", "recall@5", "ndcg@2", "ndcg@5", "mrr", "count"}
    assert summary["recall@2"] == pytest.approx(0.5)  # rank 2 <= 2, rank 6 > 2
    assert summary["ndcg@5"] == pytest.approx((1 / math.log2(3)) / 2)  # (1/log2(3) + 0) / 2
    assert summary["mrr"] == pytest.approx((1 / 2 + 1 / 6) / 2)  # = 1/3


def test_ranking_accumulator_errors() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        RankingAccumulator(ks=(0, 10))
    with pytest.raises(ValueError, match="at least one cut-off"):
        RankingAccumulator(ks=())
    acc = RankingAccumulator()
    with pytest.raises(ValueError, match="ranks are 1-based"):
        acc.add(0)


def test_ranking_accumulators_do_not_share_state() -> None:
    first, second = RankingAccumulator(), RankingAccumulator()
    first.add(1)
    assert first.summary()["count"] == 1
    assert second.summary()["count"] == 0


# --------------------------------------------------------------------------- #
# distinct_n
# --------------------------------------------------------------------------- #


def test_distinct_2_both_formulas() -> None:
    texts = ["a b c", "a b d"]
    # bigrams: (a,b) (b,c) | (a,b) (b,d) -> 3 unique, 4 in total, 2 replies
    assert distinct_n(texts, 2, "per_reply") == pytest.approx(3 / 2)
    assert distinct_n(texts, 2, "ratio") == pytest.approx(3 / 4)


def test_distinct_1_both_formulas() -> None:
    texts = ["a b c", "a b d"]
    # unigrams: a b c | a b d -> 4 unique (a, b, c, d), 6 in total, 2 replies
    assert distinct_n(texts, 1, "per_reply") == pytest.approx(4 / 2)
    assert distinct_n(texts, 1, "ratio") == pytest.approx(4 / 6)


def test_distinct_short_replies_count_as_replies_only() -> None:
    texts = ["a b", "c"]
    # bigrams: (a,b) | none -> 1 unique, 1 in total, 2 replies
    assert distinct_n(texts, 2, "per_reply") == pytest.approx(1 / 2)
    assert distinct_n(texts, 2, "ratio") == pytest.approx(1 / 1)
    # no reply long enough: 0 unique / 1 reply; ratio has no n-grams -> 0.0
    assert distinct_n(["a"], 2, "per_reply") == 0.0
    assert distinct_n(["a"], 2, "ratio") == 0.0


def test_distinct_uses_tokenize() -> None:
    # lower-cased: "A b" and "a B" give the same bigram -> 1 unique, 2 total, 2 replies
    assert distinct_n(["A b", "a B"], 2, "per_reply") == pytest.approx(1 / 2)
    assert distinct_n(["A b", "a B"], 2, "ratio") == pytest.approx(1 / 2)
    # "I like it." -> i, like, it, . -> 4 unique unigrams in 1 reply
    assert distinct_n(["I like it."], 1, "per_reply") == pytest.approx(4.0)


def test_distinct_empty_and_errors() -> None:
    assert distinct_n([], 2, "per_reply") == 0.0
    assert distinct_n([], 2, "ratio") == 0.0
    with pytest.raises(ValueError, match="allowed: per_reply, ratio"):
        distinct_n(["a b"], 2, "corpus")
    with pytest.raises(ValueError, match="n must be >= 1"):
        distinct_n(["a b"], 0, "ratio")


# --------------------------------------------------------------------------- #
# bleu
# --------------------------------------------------------------------------- #


def test_bleu_identical_is_one() -> None:
    sentence = "the cat sat on the mat today"
    for n in (1, 2, 3, 4):
        assert bleu([sentence], [sentence], n) == pytest.approx(1.0)


def test_bleu_disjoint_is_near_zero() -> None:
    # no unigram in common -> NLTK returns 0 regardless of smoothing
    assert bleu(["a b c d"], ["w x y z"], 1) == pytest.approx(0.0, abs=1e-9)
    assert bleu(["a b c d"], ["w x y z"], 4) == pytest.approx(0.0, abs=1e-9)


def test_bleu_hand_computed_middle_case() -> None:
    hyp, ref = "the cat sat down", "the cat sat up"
    # equal lengths -> brevity penalty 1
    # BLEU-1: unigram precision 3/4 (the, cat, sat match; down does not)
    assert bleu([hyp], [ref], 1) == pytest.approx(0.75)
    # BLEU-2: sqrt(p1 * p2) = sqrt(3/4 * 2/3) = sqrt(1/2); bigrams (the,cat) (cat,sat) match of 3
    assert bleu([hyp], [ref], 2) == pytest.approx(math.sqrt(0.5))


def test_bleu_brevity_penalty() -> None:
    # hyp 2 tokens, ref 4 tokens, p1 = 1 -> BP = exp(1 - 4/2) = e^-1
    assert bleu(["the cat"], ["the cat sat down"], 1) == pytest.approx(math.exp(-1))


def test_bleu_averages_sentence_scores_and_is_case_insensitive() -> None:
    hyps = ["The Cat sat on the mat", "the cat sat down"]
    refs = ["the cat sat on the mat", "the cat sat up"]
    # (1.0 + 0.75) / 2 = 0.875
    assert bleu(hyps, refs, 1) == pytest.approx(0.875)


def test_bleu_short_hypothesis_is_smoothed() -> None:
    # "hi" vs "hi": p1 = 1; no 2-, 3-, 4-grams -> method1 gives 0.1 each
    # BLEU-4 = (1 * 0.1 * 0.1 * 0.1) ** (1/4) = 0.1 ** 0.75
    assert bleu(["hi"], ["hi"], 4) == pytest.approx(0.1**0.75)


def test_bleu_empty_and_errors() -> None:
    assert bleu([], [], 2) == 0.0
    assert bleu([""], ["the cat"], 2) == 0.0
    with pytest.raises(ValueError, match="length mismatch: 2 hypotheses vs 1 references"):
        bleu(["a", "b"], ["a"], 2)
    with pytest.raises(ValueError, match="n must be >= 1"):
        bleu(["a"], ["a"], 0)


# --------------------------------------------------------------------------- #
# item_ratio, end_to_end_recall
# --------------------------------------------------------------------------- #


def test_item_ratio() -> None:
    # replies 0 and 2 name a movie -> 2 / 4
    assert item_ratio([[1], [], [2, 3], []]) == pytest.approx(0.5)
    assert item_ratio([[], []]) == 0.0
    assert item_ratio([]) == 0.0


def test_end_to_end_recall() -> None:
    reply_items = [[1], [2], [3], [], [6, 9]]
    gold_items = [[1, 5], [7], [], [4], [9]]
    # turn 2 has no gold -> skipped; scored turns 0, 1, 3, 4
    # hits: turn 0 (1 is gold), turn 4 (9 is gold) -> 2 / 4
    assert end_to_end_recall(reply_items, gold_items) == pytest.approx(0.5)


def test_end_to_end_recall_no_gold_and_errors() -> None:
    assert end_to_end_recall([[1], [2]], [[], []]) == 0.0
    assert end_to_end_recall([], []) == 0.0
    with pytest.raises(ValueError, match="length mismatch: 2 replies vs 1 gold lists"):
        end_to_end_recall([[1], [2]], [[1]])
