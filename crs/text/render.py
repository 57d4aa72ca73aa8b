"""One renderer of dialogue turns, in the three styles the models read.

* ``prompt`` — ``[seeker] text [recommender] text …``, the user's text escaped
  (:func:`~crs.text.tokenizer.escape_control_tokens`): the generator's context;
* ``corpus`` — the same speaker tokens, text as written: the tokenizer and LM pre-training corpus;
* ``plain`` — ``Seeker: text Recommender: text …``: the sentence encoder's context.

``@id`` mentions become the titles of ``titles`` (ids without one stay as they are).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from crs.data.redial import RECOMMENDER, SEEKER, Turn, render_mentions
from crs.text.tokens import RECOMMENDER_TOKEN, SEEKER_TOKEN, escape_control_tokens

STYLES = ("prompt", "corpus", "plain")
_PLAIN_SPEAKER = {SEEKER: "Seeker", RECOMMENDER: "Recommender"}


def render_turns(turns: Sequence[Turn], titles: Mapping[int, str], style: str = "prompt") -> str:
    """The turns as one line of text in ``style`` (one of :data:`STYLES`)."""
    if style == "plain":
        return " ".join(f"{_PLAIN_SPEAKER.get(t.role, t.role)}: {render_mentions(t.text, titles)}" for t in turns)
    if style not in STYLES:
        raise ValueError(f"unknown rendering style {style!r}; choose from {STYLES}")
    escape = escape_control_tokens if style == "prompt" else str
    return " ".join(
        f"{SEEKER_TOKEN if turn.role == SEEKER else RECOMMENDER_TOKEN} {render_mentions(escape(turn.text), titles)}"
        for turn in turns
    )
