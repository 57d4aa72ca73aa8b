"""Two non-learned baselines that anchor every Recall@k table.

* ``popularity`` — movies ranked by how many training dialogues mention them.
* ``repeat-context`` — movies already mentioned in the dialogue first (most recent first), then
  popularity. ReDial recommenders often repeat a movie under discussion, so under the standard
  protocol this trivial rule scores about as well as published models at Recall@1; under the
  new-items protocol (mentioned movies removed) it equals popularity.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from crs.data.catalogue import Catalogue
from crs.data.context import DialogueContext
from crs.data.redial import Dialogue
from crs.rec.interface import BaseRecommender


def mention_counts(dialogues: list[Dialogue], catalogue: Catalogue) -> np.ndarray:
    """(num_items,) number of dialogues mentioning each catalogue movie."""
    counts = Counter(movie for dialogue in dialogues for movie in dialogue.movies if movie in catalogue)
    scores = np.zeros(len(catalogue), dtype=np.float64)
    for movie, count in counts.items():
        scores[catalogue.index(movie)] = count
    return scores


class PopularityRecommender(BaseRecommender):
    name = "popularity"

    def __init__(self, catalogue: Catalogue, counts: np.ndarray):
        super().__init__(catalogue)
        if counts.shape != (len(catalogue),):
            raise ValueError(f"counts must have shape ({len(catalogue)},), got {counts.shape}")
        self.counts = counts

    @classmethod
    def fit(cls, dialogues: list[Dialogue], catalogue: Catalogue) -> "PopularityRecommender":
        return cls(catalogue, mention_counts(dialogues, catalogue))

    def score_items(self, context: DialogueContext) -> np.ndarray:
        return self.counts.copy()


class RepeatContextRecommender(PopularityRecommender):
    name = "repeat-context"

    def score_items(self, context: DialogueContext) -> np.ndarray:
        scores = self.counts.copy()
        # Above every popularity score, most recent mention highest.
        top = scores.max() + 1.0
        in_catalogue = [m for m in context.mentioned_movies if m in self.catalogue]
        recency = self._recency(context, in_catalogue)
        for movie in in_catalogue:
            scores[self.catalogue.index(movie)] = top + recency[movie]
        return scores

    @staticmethod
    def _recency(context: DialogueContext, movies: list[int]) -> dict[int, int]:
        """Position of each movie's last mention (higher = more recent)."""
        last = {movie: 0 for movie in movies}
        position = 0
        for turn in context.turns:
            for movie in turn.movies:
                position += 1
                if movie in last:
                    last[movie] = position
        return last


BASELINES = {cls.name: cls for cls in (PopularityRecommender, RepeatContextRecommender)}
