"""Recommenders: a dialogue context in, one score per catalogue movie out.

Every recommender — the baselines in :mod:`crs.baselines`, the KG-enhanced model, a whole CRS —
answers :meth:`Recommender.score_items`, and the evaluation harness asks nothing else of it. Scores
are indexed by catalogue item index (:meth:`crs.data.Catalogue.index`); higher is better.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from crs.data.catalogue import Catalogue
from crs.data.redial import Turn
from crs.data.samples import Sample


@dataclass
class DialogueContext:
    """What a recommender may look at: the turns so far and the movies mentioned in them."""

    turns: list[Turn]
    mentioned_movies: list[int] = field(default_factory=list)  # ReDial ids, order of first mention
    conversation_id: str = ""

    @classmethod
    def from_sample(cls, sample: Sample) -> "DialogueContext":
        return cls(turns=sample.context, mentioned_movies=list(sample.context_movies), conversation_id=sample.conversation_id)


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

    def top_k(self, context: DialogueContext, k: int = 10, exclude_mentioned: bool = True) -> list[tuple[int, float]]:
        """The k best movies as (movie id, score); movies already mentioned left out unless told otherwise."""
        scores = np.asarray(self.score_items(context), dtype=np.float64).copy()
        if exclude_mentioned:
            for movie in context.mentioned_movies:
                if movie in self.catalogue:
                    scores[self.catalogue.index(movie)] = -np.inf
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]  # ties: lower index first, as metrics.rank_of
        return [(self.catalogue[i].movie_id, float(scores[i])) for i in order if np.isfinite(scores[i])]
