"""Recommenders: a dialogue context in, one score per catalogue movie out.

Every recommender — the baselines in :mod:`crs.rec.baselines`, the KG-enhanced model, the
tuning-free LM ranker — answers :meth:`Recommender.score_items`, and the evaluation harness asks
nothing else of it. Scores are indexed by catalogue item index (:meth:`crs.data.Catalogue.index`);
higher is better.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from crs.data.catalogue import Catalogue
from crs.data.context import DialogueContext


@runtime_checkable
class Recommender(Protocol):
    name: str
    catalogue: Catalogue

    def score_items(self, context: DialogueContext) -> np.ndarray:
        """Scores of shape (num_items,), float, higher = better."""
        ...

    def score_batch(self, contexts: list[DialogueContext]) -> np.ndarray:
        """Scores of shape (len(contexts), num_items)."""
        ...


class BaseRecommender:
    """Shared plumbing: batch scoring by looping, and top-k with masking of given movies."""

    name = "base"

    def __init__(self, catalogue: Catalogue):
        self.catalogue = catalogue

    def score_items(self, context: DialogueContext) -> np.ndarray:
        raise NotImplementedError

    def score_batch(self, contexts: list[DialogueContext]) -> np.ndarray:
        return np.stack([self.score_items(context) for context in contexts]) if contexts else np.zeros((0, len(self.catalogue)))

    def mentioned_items(self, context: DialogueContext) -> list[int]:
        """Catalogue indices of the movies the context mentions."""
        return [self.catalogue.index(m) for m in context.mentioned_movies if m in self.catalogue]

    def top_k(self, context: DialogueContext, k: int = 10, exclude_mentioned: bool = True) -> list[tuple[int, float]]:
        """The k best movies as (movie id, score); movies already mentioned left out unless told otherwise."""
        excluded = self.mentioned_items(context) if exclude_mentioned else []
        return self.best_of(self.score_items(context), excluded, k)

    def best_of(self, scores: np.ndarray, excluded: list[int], k: int) -> list[tuple[int, float]]:
        """The k best (movie id, score) of a score vector, catalogue indices in ``excluded`` left out."""
        scores = np.asarray(scores, dtype=np.float64).copy()
        scores[excluded] = -np.inf
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]  # ties: lower index first, as metrics.rank_of
        return [(self.catalogue[i].movie_id, float(scores[i])) for i in order if np.isfinite(scores[i])]
