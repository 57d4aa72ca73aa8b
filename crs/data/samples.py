"""Turn samples: one per recommender turn, the unit every task trains and evaluates on.

The context is every earlier turn; the labels are the movies the recommender mentions in that
turn. ``new_movies`` keeps only those not mentioned earlier in the dialogue, for the new-items
protocol of Recall@k (see DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from crs.data.redial import RECOMMENDER, SEEKER, Dialogue, MovieFeedback, Turn


@dataclass
class Sample:
    conversation_id: str
    turn_index: int  # position of the response among the dialogue's turns
    context: list[Turn]
    response: Turn
    context_movies: list[int]  # movies mentioned earlier, in order of first mention
    movies: list[int]  # movies mentioned in the response
    new_movies: list[int]  # movies of the response not mentioned earlier
    seeker_feedback: dict[int, MovieFeedback]

    @property
    def is_recommendation(self) -> bool:
        return bool(self.movies)


def _turn_samples(dialogue: Dialogue, role: str, labels: Callable[[Turn, dict[int, None]], list[int] | None]) -> list[Sample]:
    """One sample per turn of ``role`` for which ``labels(turn, mentioned)`` (``mentioned``: the
    movies named before it, in order) gives a label list; None skips the turn."""
    samples = []
    mentioned: dict[int, None] = {}
    for index, turn in enumerate(dialogue.turns):
        movies = labels(turn, mentioned) if turn.role == role else None
        if movies is not None:
            samples.append(
                Sample(
                    conversation_id=dialogue.conversation_id,
                    turn_index=index,
                    context=dialogue.turns[:index],
                    response=turn,
                    context_movies=list(mentioned),
                    movies=movies,
                    new_movies=[movie for movie in movies if movie not in mentioned],
                    seeker_feedback=dialogue.seeker_feedback,
                )
            )
        for movie in turn.movies:
            mentioned.setdefault(movie, None)
    return samples


def dialogue_samples(dialogue: Dialogue) -> list[Sample]:
    return _turn_samples(dialogue, RECOMMENDER, lambda turn, mentioned: list(turn.movies))


def build_samples(dialogues: list[Dialogue]) -> list[Sample]:
    return [sample for dialogue in dialogues for sample in dialogue_samples(dialogue)]


def seeker_samples(dialogue: Dialogue) -> list[Sample]:
    """Extra recommender training turns from the seeker's side: each seeker turn that names movies
    not mentioned before, with those of them the seeker's questionnaire does not mark as disliked as
    labels (what the seeker brings up next, given the context, is what a recommender could have
    offered). Only for training (``rec.seeker_targets``): evaluation keeps to recommender turns."""
    feedback = dialogue.seeker_feedback

    def labels(turn: Turn, mentioned: dict[int, None]) -> list[int] | None:
        new = [m for m in turn.movies if m not in mentioned and not (m in feedback and feedback[m].liked == 0)]
        return new or None

    return _turn_samples(dialogue, SEEKER, labels)
