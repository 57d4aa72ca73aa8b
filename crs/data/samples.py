"""Turn samples: one per recommender turn, the unit every task trains and evaluates on.

The context is every earlier turn; the labels are the movies the recommender mentions in that
turn. ``new_movies`` keeps only those not mentioned earlier in the dialogue, for the new-items
protocol of Recall@k (see DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from crs.data.redial import RECOMMENDER, Dialogue, MovieFeedback, Turn


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


def dialogue_samples(dialogue: Dialogue) -> list[Sample]:
    samples = []
    mentioned: dict[int, None] = {}
    for index, turn in enumerate(dialogue.turns):
        if turn.role == RECOMMENDER:
            samples.append(
                Sample(
                    conversation_id=dialogue.conversation_id,
                    turn_index=index,
                    context=dialogue.turns[:index],
                    response=turn,
                    context_movies=list(mentioned),
                    movies=list(turn.movies),
                    new_movies=[movie for movie in turn.movies if movie not in mentioned],
                    seeker_feedback=dialogue.seeker_feedback,
                )
            )
        for movie in turn.movies:
            mentioned.setdefault(movie, None)
    return samples


def build_samples(dialogues: list[Dialogue]) -> list[Sample]:
    return [sample for dialogue in dialogues for sample in dialogue_samples(dialogue)]
