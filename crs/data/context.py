"""What a recommender or the generator may look at in a dialogue so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from crs.data.redial import Turn
from crs.data.samples import Sample


@dataclass
class DialogueContext:
    """What a recommender may look at: the turns so far and the movies mentioned in them."""

    turns: list[Turn]
    mentioned_movies: list[int] = field(default_factory=list)  # ReDial ids, order of first mention
    conversation_id: str = ""
    # The entities linked in each turn (kg.linker.LinkedEntity lists, aligned with ``turns``) when
    # the caller linked them already; None: whoever needs them links the turns.
    linked: list[list] | None = None

    @classmethod
    def from_sample(cls, sample: Sample) -> "DialogueContext":
        return cls(turns=sample.context, mentioned_movies=list(sample.context_movies), conversation_id=sample.conversation_id)
