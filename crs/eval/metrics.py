"""Evaluation metrics for the conversational recommender.

Three families of metrics live here:

* **Recommendation (ranking) metrics** -- Recall@k, NDCG@k and MRR over the
  1-based rank of the single gold movie of each evaluation instance, as reported
  by CRSLab, KGSF, KBRD, UniCRS and most CRS papers on ReDial. ``rank_of`` turns
  a score vector into such a rank; ``RankingAccumulator`` collects ranks over a
  data set.
* **Conversation (text) metrics** -- word-level Distinct-n and BLEU-n of the
  generated replies.
* **End-to-end metrics** -- the share of replies that name a movie at all
  (item ratio) and the share of turns where a movie named in the reply is one of
  the gold movies (end-to-end recall).

Tokenisation
------------
Every text metric tokenises with :func:`tokenize` and nothing else: the text is
lower-cased and then split with NLTK's ``TreebankWordTokenizer`` (Penn Treebank
conventions). This needs no downloaded NLTK data (unlike ``word_tokenize``,
which needs the ``punkt`` models). Consequences worth knowing when comparing
with published numbers:

* contractions are split: ``"don't"`` -> ``["do", "n't"]``,
  ``"it's"`` -> ``["it", "'s"]``;
* final punctuation becomes its own token: ``"it?"`` -> ``["it", "?"]``;
* double quotes are rewritten to the Treebank forms `````` and ``''``.

Conventions
-----------
* Ranks are 1-based (the best item has rank 1).
* Every mean over an empty input is ``0.0`` rather than an error or NaN, so
  that an empty evaluation split produces a well-formed report; callers that
  need to tell "no data" apart from "all wrong" should look at the counts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from nltk.tokenize import TreebankWordTokenizer
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from nltk.util import ngrams

logger = logging.getLogger(__name__)

DISTINCT_FORMULAS: tuple[str, ...] = ("per_reply", "ratio")


# --------------------------------------------------------------------------- #
# Tokenisation
# --------------------------------------------------------------------------- #


def tokenize(text: str) -> list[str]:
    """Split ``text`` into word tokens: lower-case, then NLTK ``TreebankWordTokenizer``.

    This is the one tokenisation used by every text metric in this module (see the
    module docstring for what Treebank does with contractions and punctuation).

    >>> tokenize("Don't you LOVE it?")
    ['do', "n't", 'you', 'love', 'it', '?']
    """
    # The tokenizer is stateless and cheap to build; building it here avoids
    # module-level state.
    return TreebankWordTokenizer().tokenize(text.lower())


# --------------------------------------------------------------------------- #
# Ranking metrics
# --------------------------------------------------------------------------- #


def rank_of(scores: np.ndarray, target: int, exclude: Iterable[int] = ()) -> int:
    """Return the 1-based rank of item ``target`` in ``scores`` (higher score = better).

    The rank is the position of ``target`` in the order a stable sort by
    ``(-score, index)`` gives, i.e. ties are broken deterministically in favour of
    the lower item index. This is stricter than "count of strictly better items
    + 1" (which would reward a model that scores everything equally) and does not
    depend on the sort algorithm.

    Items in ``exclude`` (e.g. movies already mentioned earlier in the dialogue)
    are removed from the ranking: they never occupy a rank.

    Args:
        scores: 1-D array of shape ``(num_items,)``.
        target: index of the gold item.
        exclude: item indices to drop from the ranking; duplicates are allowed.

    Raises:
        ValueError: if ``scores`` is not 1-D or contains NaN, if ``target`` or an
            excluded index is out of range, or if ``target`` itself is excluded.
    """
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D (num_items,), got shape {scores.shape}")
    num_items = scores.shape[0]
    if not 0 <= target < num_items:
        raise ValueError(f"target {target} out of range for {num_items} items")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; ranks would be ill-defined")

    excluded = np.zeros(num_items, dtype=bool)
    for item in exclude:
        if not 0 <= item < num_items:
            raise ValueError(f"excluded item {item} out of range for {num_items} items")
        excluded[item] = True
    if excluded[target]:
        raise ValueError(f"target {target} is in exclude; it cannot be ranked")

    target_score = scores[target]
    lower_index = np.arange(num_items) < target
    ahead = (scores > target_score) | ((scores == target_score) & lower_index)
    return int(np.count_nonzero(ahead & ~excluded)) + 1


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def _as_rank_array(ranks: Sequence[int]) -> np.ndarray:
    """Validate 1-based ranks and return them as an int array."""
    array = np.asarray(ranks, dtype=np.int64).reshape(-1)
    if array.size and array.min() < 1:
        raise ValueError(f"ranks are 1-based and must be >= 1, got {int(array.min())}")
    return array


def recall_at_k(ranks: Sequence[int], k: int) -> float:
    """Recall@k (a.k.a. Hit@k) with one gold item per instance: the share of ranks ``<= k``.

    As computed by CRSLab's ``RECMetric`` / KGSF for ReDial. Empty ``ranks`` gives
    ``0.0``.

    Raises:
        ValueError: if ``k < 1`` or a rank is ``< 1``.
    """
    _check_k(k)
    array = _as_rank_array(ranks)
    if array.size == 0:
        return 0.0
    return float(np.mean(array <= k))


def ndcg_at_k(ranks: Sequence[int], k: int) -> float:
    """NDCG@k with exactly one relevant item per instance.

    With binary relevance and a single relevant item the ideal DCG is 1, so
    ``NDCG@k = 1 / log2(rank + 1)`` if ``rank <= k`` else ``0`` (Jarvelin &
    Kekalainen 2002, DCG with the ``log2(i + 1)`` discount), averaged over
    instances. Empty ``ranks`` gives ``0.0``.

    Raises:
        ValueError: if ``k < 1`` or a rank is ``< 1``.
    """
    _check_k(k)
    array = _as_rank_array(ranks)
    if array.size == 0:
        return 0.0
    gains = np.where(array <= k, 1.0 / np.log2(array + 1.0), 0.0)
    return float(np.mean(gains))


def mrr(ranks: Sequence[int], k: int | None = None) -> float:
    """Mean reciprocal rank: the mean of ``1 / rank`` (Voorhees 1999, TREC-8 QA).

    With ``k`` given this is MRR@k: ranks beyond ``k`` contribute ``0``. Empty
    ``ranks`` gives ``0.0``.

    Raises:
        ValueError: if ``k`` is given and ``< 1``, or a rank is ``< 1``.
    """
    if k is not None:
        _check_k(k)
    array = _as_rank_array(ranks)
    if array.size == 0:
        return 0.0
    reciprocal = 1.0 / array
    if k is not None:
        reciprocal = np.where(array <= k, reciprocal, 0.0)
    return float(np.mean(reciprocal))


@dataclass
class RankingAccumulator:
    """Collects 1-based ranks and summarises them.

    ``summary()`` returns ``recall@k`` for every ``k`` in ``ks``, ``ndcg@k`` for
    every ``k > 1`` in ``ks`` (NDCG@1 equals Recall@1, so it is left out), the
    uncut ``mrr`` and the number of ranks as ``count``. With the default
    ``ks = (1, 10, 50)`` (the cut-offs of CRSLab/UniCRS on ReDial) the keys are
    ``recall@1, recall@10, recall@50, ndcg@10, ndcg@50, mrr, count``. With no
    ranks added every metric is ``0.0`` and ``count`` is ``0``.
    """

    ks: tuple[int, ...] = (1, 10, 50)
    _ranks: list[int] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.ks = tuple(self.ks)
        if not self.ks:
            raise ValueError("ks must contain at least one cut-off")
        for k in self.ks:
            _check_k(k)

    def add(self, rank: int) -> None:
        """Record the 1-based rank of one instance's gold item."""
        if rank < 1:
            raise ValueError(f"ranks are 1-based and must be >= 1, got {rank}")
        self._ranks.append(int(rank))

    @property
    def ranks(self) -> list[int]:
        """The ranks added so far, in order (a copy)."""
        return list(self._ranks)

    def summary(self) -> dict[str, float]:
        """Return the metrics over all ranks added so far (see the class docstring)."""
        result: dict[str, float] = {}
        for k in self.ks:
            result[f"recall@{k}"] = recall_at_k(self._ranks, k)
        for k in self.ks:
            if k > 1:
                result[f"ndcg@{k}"] = ndcg_at_k(self._ranks, k)
        result["mrr"] = mrr(self._ranks)
        result["count"] = len(self._ranks)
        return result


# --------------------------------------------------------------------------- #
# Conversation metrics
# --------------------------------------------------------------------------- #


def distinct_n(texts: Sequence[str], n: int, formula: str) -> float:
    """Word-level Distinct-n of a set of generated replies, on :func:`tokenize`.

    Two definitions circulate in the CRS literature and give numbers on very
    different scales, so the caller must name one:

    * ``"per_reply"``: ``|unique n-grams over all replies| / |replies|`` -- the
      formula in the UniCRS and KGSF evaluation code (can exceed 1).
    * ``"ratio"``: ``|unique n-grams| / |all n-grams|`` -- the original
      definition of Li et al. 2016 ("A Diversity-Promoting Objective Function
      for Neural Conversation Models"), used by C2-CRS and VRICR (in ``[0, 1]``).

    n-grams are counted over the whole set (the unique set is corpus level).
    Replies shorter than ``n`` tokens contribute no n-grams but still count as
    replies for ``"per_reply"``. Empty ``texts`` (or, for ``"ratio"``, no n-gram
    at all) gives ``0.0``.

    Raises:
        ValueError: if ``formula`` is not one of ``"per_reply"``, ``"ratio"``,
            or ``n < 1``.
    """
    if formula not in DISTINCT_FORMULAS:
        allowed = ", ".join(DISTINCT_FORMULAS)
        raise ValueError(f"unknown distinct formula {formula!r}; allowed: {allowed}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if len(texts) == 0:
        return 0.0

    unique: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        grams = list(ngrams(tokenize(text), n))
        unique.update(grams)
        total += len(grams)

    if formula == "per_reply":
        return len(unique) / len(texts)
    return len(unique) / total if total else 0.0


def bleu(hypotheses: Sequence[str], references: Sequence[str], n: int) -> float:
    """Cumulative BLEU-n averaged over hypothesis/reference pairs.

    Each pair is scored with NLTK ``sentence_bleu`` (Papineni et al. 2002) with
    uniform weights ``1/n`` over 1..n-gram precisions, the brevity penalty, and
    ``SmoothingFunction().method1`` (Chen & Cherry 2014: add epsilon to zero
    n-gram counts); the sentence scores are then averaged, as CRSLab and KGSF
    report BLEU. One reference per hypothesis; both are tokenised with
    :func:`tokenize`. An empty hypothesis scores ``0.0``; empty input gives ``0.0``.

    Note (NLTK behaviour, kept for comparability): a hypothesis shorter than ``n``
    tokens has no k-grams for the higher orders, and method1 smooths those zero
    precisions to ``0.1``, so even an exact copy of a one-word reference scores
    ``0.1 ** (3/4) ~= 0.178`` on BLEU-4.

    Raises:
        ValueError: if the two sequences differ in length or ``n < 1``.
    """
    if len(hypotheses) != len(references):
        raise ValueError(
            f"length mismatch: {len(hypotheses)} hypotheses vs {len(references)} references"
        )
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if len(hypotheses) == 0:
        return 0.0

    weights = tuple([1.0 / n] * n)
    smoothing = SmoothingFunction().method1
    scores = []
    for hypothesis, reference in zip(hypotheses, references):
        hyp_tokens = tokenize(hypothesis)
        if not hyp_tokens:
            scores.append(0.0)
            continue
        scores.append(
            float(
                sentence_bleu(
                    [tokenize(reference)],
                    hyp_tokens,
                    weights=weights,
                    smoothing_function=smoothing,
                )
            )
        )
    return float(np.mean(scores))


# --------------------------------------------------------------------------- #
# End-to-end metrics
# --------------------------------------------------------------------------- #


def item_ratio(reply_items: Sequence[Sequence[int]]) -> float:
    """Share of generated replies that recommend (name) at least one movie.

    ``reply_items[i]`` are the movie ids found in reply ``i``. This is the
    "item ratio" of end-to-end CRS evaluation (how often the dialogue model
    actually recommends). Empty input gives ``0.0``.
    """
    if len(reply_items) == 0:
        return 0.0
    return sum(1 for items in reply_items if len(items) > 0) / len(reply_items)


def end_to_end_recall(
    reply_items: Sequence[Sequence[int]], gold_items: Sequence[Sequence[int]]
) -> float:
    """Share of turns with at least one gold movie where a movie named in the reply is gold.

    ``reply_items[i]`` are the movie ids named in the generated reply of turn
    ``i`` and ``gold_items[i]`` the movies the human recommender named. Turns
    without gold movies are skipped (there is nothing to hit); if no turn has a
    gold movie the result is ``0.0``. This is a hit rate: a turn counts once,
    however many gold movies the reply names.

    Raises:
        ValueError: if the two sequences differ in length.
    """
    if len(reply_items) != len(gold_items):
        raise ValueError(
            f"length mismatch: {len(reply_items)} replies vs {len(gold_items)} gold lists"
        )
    hits = 0
    scored = 0
    for named, gold in zip(reply_items, gold_items):
        gold_set = set(gold)
        if not gold_set:
            continue
        scored += 1
        if gold_set.intersection(named):
            hits += 1
    if scored == 0:
        logger.debug("end_to_end_recall: no turn has a gold movie; returning 0.0")
        return 0.0
    return hits / scored
