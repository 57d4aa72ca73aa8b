"""The generator's prompt steps: goal rules, topics, and one training example per recommender turn.

Fixed-prompt PTM tuning (the survey's term; UniMIND, BARCOR and RecInDial do the same): one
generator, all weights tuned, learns to write every recommender turn as

    <context> [goal] recommend [topic] comedy, Jim Carrey [item] The Mask (1994) [recommender] have you seen [REC]?</s>

after the dialogue context ``[seeker] … [recommender] … [seeker] …``. The hard prompt tokens mark
the sub-tasks: ``[goal]`` the turn's goal (:func:`derive_goal`, ReDial has no goal labels),
``[topic]`` the non-movie KG entities the turn talks about (:func:`turn_topics`), ``[item]`` the
movie it recommends, and ``[REC]`` each place in the reply where a new movie is recommended. Movies
already mentioned in the dialogue keep their titles in the reply.
"""

from __future__ import annotations

import re
from collections import ChainMap, Counter
from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

from crs.data.catalogue import Catalogue
from crs.data.context import DialogueContext
from crs.data.redial import RECOMMENDER, SEEKER, Dialogue, Turn, render_mentions
from crs.data.samples import Sample, dialogue_samples
from crs.gen.exemplars import context_key
from crs.text.render import render_turns
from crs.text.tokenizer import GOAL_TOKEN, ITEM_TOKEN, REC_TOKEN, RECOMMENDER_TOKEN, TOPIC_TOKEN, escape_control_tokens

NONE = "none"
MAX_TOPICS = 3

# --------------------------------------------------------------------------- goal rules

GOALS = ("recommend", "discuss", "ask_preference", "greet", "farewell", "chat")
_GREETING_RE = re.compile(r"\b(hi|hello|hey|hiya|howdy|good (morning|afternoon|evening))\b", re.I)
_FAREWELL_RE = re.compile(r"\b(bye|goodbye|good bye|have a (good|great|nice)|enjoy|take care|see you|nice (talking|chatting))\b", re.I)
_PREFERENCE_RE = re.compile(
    r"\b(what (kind|kinds|type|types|sort|genre|genres)|which (kind|type|genre)|what (do|would) you (like|enjoy|prefer|want)|"
    r"favou?rite|looking for|in the mood|do you (like|enjoy|prefer)|are you (into|a fan)|what movies?|any (particular|specific))\b",
    re.I,
)


def derive_goal(response: Turn, new_movies: Sequence[int], recommender_turn: int, recommender_turns: int) -> str:
    """The goal of a recommender turn, by the first rule that applies:

    1. ``recommend``: the turn mentions a movie not mentioned earlier in the dialogue;
    2. ``discuss``: it mentions only movies mentioned before;
    3. ``ask_preference``: a question ("?") about tastes ("what kind of", "favorite", "looking for", "do you like", …);
    4. ``farewell``: one of the last two recommender turns, with a farewell phrase ("bye", "enjoy", "have a good …");
    5. ``greet``: one of the first two recommender turns, with a greeting ("hi", "hello", "hey", "good morning");
    6. ``chat``: anything else (thanks, small talk, answers).

    ``recommender_turn`` counts from 0; ``recommender_turns`` is the dialogue's number of recommender turns.
    """
    text = response.text
    if new_movies:
        return "recommend"
    if response.movies:
        return "discuss"
    if "?" in text and _PREFERENCE_RE.search(text):
        return "ask_preference"
    if recommender_turn >= recommender_turns - 2 and _FAREWELL_RE.search(text):
        return "farewell"
    if recommender_turn < 2 and _GREETING_RE.search(text):
        return "greet"
    return "chat"


def turn_topics(text: str, linker) -> list[str]:
    """The non-movie KG entities (genres, people) linked in ``text``: readable names, first mention first, at most 3."""
    names = []
    for entity in linker.link(text):
        if entity.kind != "movie" and entity.name not in names:
            names.append(entity.name)
    return names[:MAX_TOPICS]


# --------------------------------------------------------------------------- prompt steps and examples


@dataclass
class Steps:
    """The prompt steps of one recommender turn."""

    goal: str
    topics: list[str]
    item: str  # the recommended movie's "Title (Year)", or "none" (an empty item is stored as "none")

    def __post_init__(self) -> None:
        self.item = self.item or NONE

    def render(self) -> str:
        topics = ", ".join(self.topics) if self.topics else NONE
        return f"{GOAL_TOKEN} {self.goal} {TOPIC_TOKEN} {topics} {ITEM_TOKEN} {self.item} {RECOMMENDER_TOKEN}"


@dataclass
class ConvExample:
    context: str  # "[seeker] … [recommender] …"
    steps: Steps
    reply: str  # the recommender turn, new movies as [REC], others as titles
    movies: list[int]  # gold new movies of the turn (ReDial ids)
    conversation_id: str = ""
    key: str = ""  # the last turns of the context as plain text: what exemplar retrieval compares
    exemplar: str = ""  # this turn as another turn's exemplar: every movie written [REC]
    exemplars: list[str] | None = None  # retrieved for this turn (None: not retrieved yet)

    @property
    def target(self) -> str:
        return f"{self.steps.render()} {self.reply}"




def dialogue_examples(dialogue: Dialogue, titles: Mapping[int, str], linker,
                      samples: Sequence[Sample] | None = None) -> list[ConvExample]:
    """One example per recommender turn of ``dialogue`` (``samples``: its samples, when already built)."""
    titles = ChainMap(titles, dialogue.movie_mentions)
    samples = dialogue_samples(dialogue) if samples is None else samples
    return [sample_example(sample, titles, linker, position, len(samples)) for position, sample in enumerate(samples)]


def sample_example(sample: Sample, titles: Mapping[int, str], linker, recommender_turn: int, recommender_turns: int) -> ConvExample:
    goal = derive_goal(sample.response, sample.new_movies, recommender_turn, recommender_turns)
    slotted = ChainMap({movie: REC_TOKEN for movie in sample.new_movies}, titles)
    reply = render_mentions(escape_control_tokens(sample.response.text), slotted)
    plain = render_mentions(sample.response.text, titles)
    item = titles.get(sample.new_movies[0], NONE) if sample.new_movies else NONE
    return ConvExample(
        context=render_turns(sample.context, titles, "prompt"),
        steps=Steps(goal, turn_topics(plain, linker), item),
        reply=reply,
        movies=list(sample.new_movies),
        conversation_id=sample.conversation_id,
        key=context_key(sample.context, titles),
        exemplar=render_mentions(escape_control_tokens(sample.response.text), _EVERY_MOVIE_SLOTTED),
    )


class _EverySlot(dict):
    """A title mapping that writes every ``@id`` mention as ``[REC]``."""

    def get(self, key, default=None):
        return REC_TOKEN


_EVERY_MOVIE_SLOTTED = _EverySlot()


def seeker_view(dialogue: Dialogue) -> Dialogue:
    """The dialogue with the speakers swapped: the seeker's turns take the recommender's place, so the
    same examples, prompt steps and generator write seeker turns (the simulated seeker's generator)."""
    swap = {SEEKER: RECOMMENDER, RECOMMENDER: SEEKER}
    return replace(dialogue, turns=[replace(turn, role=swap.get(turn.role, turn.role)) for turn in dialogue.turns])


def build_examples(dialogues: Iterable[Dialogue], catalogue: Catalogue, linker) -> list[ConvExample]:
    return [example for dialogue in dialogues for example in dialogue_examples(dialogue, catalogue.titles, linker)]


def goal_distribution(examples: Sequence[ConvExample]) -> dict[str, float]:
    counts = Counter(example.steps.goal for example in examples)
    return {goal: round(counts[goal] / max(len(examples), 1), 4) for goal in GOALS}


def parse_steps(text: str) -> tuple[str, list[str]]:
    """(goal, topics) from a decoded ``"[goal] g [topic] a, b [item]"`` prefix; unknown parts read as "chat"/[]."""
    goal_part = text.split(GOAL_TOKEN, 1)[-1].split(TOPIC_TOKEN, 1)[0].strip()
    topic_part = text.split(TOPIC_TOKEN, 1)[1].split(ITEM_TOKEN, 1)[0].strip() if TOPIC_TOKEN in text else ""
    goal = goal_part if goal_part in GOALS else "chat"
    topics = [t.strip() for t in topic_part.split(",") if t.strip() and t.strip() != NONE]
    return goal, list(dict.fromkeys(topics))[:MAX_TOPICS]


def render_context(context: DialogueContext, titles: Mapping[int, str]) -> str:
    """The generator's view of a context (:func:`~crs.text.render.render_turns`, ``prompt`` style)."""
    return render_turns(context.turns, titles, "prompt")
