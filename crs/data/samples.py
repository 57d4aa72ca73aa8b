"""Turn samples: one per recommender turn, the unit every task trains and evaluates on.

The context is every earlier turn; the labels are the movies the recommender mentions in that
turn. ``new_movies`` keeps only those not mentioned earlier in the dialogue, for the new-items
protocol of Recall@k (see DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def seeker_samples(dialogue: Dialogue) -> list[Sample]:
    """Extra recommender training turns from the seeker's side: each seeker turn that names movies
    not mentioned before, with those of them the seeker's questionnaire does not mark as disliked as
    labels (what the seeker brings up next, given the context, is what a recommender could have
    offered). Only for training (``rec.seeker_targets``): evaluation keeps to recommender turns."""
    samples = []
    mentioned: dict[int, None] = {}
    for index, turn in enumerate(dialogue.turns):
        if turn.role == SEEKER:
            new = [m for m in turn.movies if m not in mentioned
                   and not (m in dialogue.seeker_feedback and dialogue.seeker_feedback[m].liked == 0)]
            if new:
                samples.append(
                    Sample(
                        conversation_id=dialogue.conversation_id,
                        turn_index=index,
                        context=dialogue.turns[:index],
                        response=turn,
                        context_movies=list(mentioned),
                        movies=new,
                        new_movies=new,
                        seeker_feedback=dialogue.seeker_feedback,
                    )
                )
        for movie in turn.movies:
            mentioned.setdefault(movie, None)
    return samples
