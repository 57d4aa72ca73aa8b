"""The whole system behind one chat turn: ``CRS.from_pretrained(folder).respond(history)``.

A checkpoint folder holds the recommender (see :mod:`crs.rec.kg_text`) and, when the generator
stages have run, ``tokenizer/`` and ``generator/`` (see :mod:`crs.gen.conversation`). Without a
generator the reply is a fixed template around the recommender's choice, so a recommender-only
checkpoint still chats.

One turn: the history (Gradio's ``{"role", "content"}`` messages, the last one the user's) becomes
a :class:`DialogueContext`; user text is escaped so that it can never become a control token, and
movies are linked in every turn. The recommender scores the catalogue (with the generator's
``[REC]`` state when the recommender was trained with it); the generator writes
``[goal] … [topic] … [item] … [recommender] reply`` with ``[REC]`` where a movie goes; each
``[REC]`` is filled with the next best movie that is neither mentioned nor rejected.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from crs.data.catalogue import Catalogue, Movie
from crs.data.redial import RECOMMENDER, SEEKER, Turn
from crs.rec.kg_text import KGTextRecommender
from crs.gen.conversation import Steps
from crs.rec.model import DialogueContext
from crs.text.tokenizer import REC_TOKEN, escape_control_tokens
from kg.graph import KnowledgeGraph
from kg.linking import EntityLinker, LinkedEntity

logger = logging.getLogger(__name__)

ROLES = {"user": SEEKER, "assistant": RECOMMENDER}
TOP_K = 10
FALLBACK_RECOMMEND = f"How about {REC_TOKEN}? I think you would like it."
FALLBACK_NOTHING = "Tell me about a movie you enjoyed, and I will find you something similar."


@dataclass
class Reply:
    """One generated turn and the reasoning behind it."""

    text: str  # the reply as shown, every [REC] slot filled with a title
    items: list[int]  # ReDial ids of the movies recommended in ``text``, in order
    goal: str  # the goal step (predicted by the generator, or "recommend" for the template)
    topics: list[str]  # the topic step: non-movie KG entities the reply is about
    linked: list[LinkedEntity]  # entities linked in the whole conversation, last turn first
    ranking: list[tuple[int, float]]  # the recommender's top movies (id, score), mentioned and rejected left out
    template: str = ""  # the generated reply before slot filling
    mentioned: list[int] = field(default_factory=list)  # movies mentioned so far (ids)


def history_turns(history: Iterable[dict], linker: EntityLinker) -> tuple[list[Turn], list[LinkedEntity]]:
    """Gradio messages as :class:`Turn` s (consecutive messages of one role merged), with linked movies.

    Text is escaped (:func:`escape_control_tokens`): a user who types "[REC]" or "</s>" gets those
    characters shown back, never a control token.
    """
    turns: list[Turn] = []
    linked: list[LinkedEntity] = []
    for message in history:
        role = ROLES.get(message.get("role", "")) if isinstance(message, dict) else None
        content = message.get("content") if role else None
        if not isinstance(content, str) or not content.strip():
            continue  # files, components and empty messages carry nothing to recommend from
        text = escape_control_tokens(content.strip())
        entities = linker.link(text)
        linked.extend(entities)
        movies = list(dict.fromkeys(e.movie_id for e in entities if e.movie_id is not None))
        if turns and turns[-1].role == role:
            last = turns[-1]
            turns[-1] = Turn(role, f"{last.text} {text}", list(dict.fromkeys(last.movies + movies)), last.num_messages + 1)
        else:
            turns.append(Turn(role, text, movies))
    return turns, linked


class CRS:
    """Recommender + optional generator, loaded from one checkpoint folder."""

    def __init__(self, recommender: KGTextRecommender, generator=None):
        self.recommender = recommender
        self.generator = generator  # crs.gen.conversation.ReplyGenerator or None

    @property
    def catalogue(self) -> Catalogue:
        return self.recommender.catalogue

    @property
    def kg(self) -> KnowledgeGraph:
        return self.recommender.kg

    @property
    def linker(self) -> EntityLinker:
        return self.recommender.featurizer.linker

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str = "cpu") -> "CRS":
        from crs.gen.conversation import ReplyGenerator

        folder = Path(folder)
        recommender = KGTextRecommender.from_pretrained(folder)
        generator = recommender.generator
        if generator is None and ReplyGenerator.present(folder):
            generator = ReplyGenerator.from_pretrained(folder, device=device)
        return cls(recommender, generator)

    def movie(self, movie_id: int) -> Movie:
        return self.catalogue.by_id(movie_id)

    def context(self, history: Iterable[dict]) -> tuple[DialogueContext, list[LinkedEntity]]:
        turns, linked = history_turns(history, self.linker)
        mentioned = list(dict.fromkeys(m for turn in turns for m in turn.movies))
        return DialogueContext(turns=turns, mentioned_movies=mentioned), linked

    def rank(self, context: DialogueContext, rejected: Iterable[int] = (), k: int = TOP_K) -> list[tuple[int, float]]:
        """The recommender's k best movies, mentioned and rejected ones left out."""
        return self.recommender.top_k(context, k, exclude=rejected)

    def respond(self, history: Iterable[dict], rejected: Iterable[int] = ()) -> Reply:
        """The next recommender turn after ``history`` (whose last message is the user's)."""
        history = list(history)
        context, linked = self.context(history)
        rejected = list(rejected)
        ranking = self.rank(context, rejected)
        mentioned = list(context.mentioned_movies)
        if self.generator is not None:
            generated = self.generator.generate([context], [ranking], self.catalogue)[0]
            if generated.goal != "recommend" and ranking and asks_for_recommendation(context):
                # The user asked, or named a movie: answer with a recommendation whatever goal the
                # generator predicted (ReDial's first recommender turns are mostly greetings).
                steps = Steps("recommend", generated.topics, self.catalogue.by_id(ranking[0][0]).display_name)
                generated = self.generator.generate([context], [ranking], self.catalogue, forced=[steps])[0]
            goal, topics, template = generated.goal, generated.topics, generated.reply
            if not template.strip():  # an untrained or derailed generator: say something useful
                template = FALLBACK_RECOMMEND if ranking else FALLBACK_NOTHING
            elif goal == "recommend" and ranking and REC_TOKEN not in template:
                template = f"{template} {FALLBACK_RECOMMEND}"
        else:
            goal = "recommend" if ranking else "ask_preference"
            topics = []
            template = FALLBACK_RECOMMEND if ranking else FALLBACK_NOTHING
        text, items = fill_slots(template, ranking, self.catalogue)
        return Reply(text=text, items=items, goal=goal, topics=topics, linked=linked[::-1], ranking=ranking,
                     template=template, mentioned=mentioned)


_REQUEST_RE = re.compile(
    r"\b(recommend|recommendations?|suggest|suggestions?|similar|something like|anything like|movies? like|"
    r"what should i (watch|see)|any ideas|looking for|in the mood for)\b", re.I)


def asks_for_recommendation(context: DialogueContext) -> bool:
    """Whether the user's last turn asks for a movie or names one (a linked movie)."""
    if not context.turns or context.turns[-1].role != SEEKER:
        return False
    last = context.turns[-1]
    return bool(last.movies) or bool(_REQUEST_RE.search(last.text))


def fill_slots(template: str, ranking: list[tuple[int, float]], catalogue: Catalogue) -> tuple[str, list[int]]:
    """Each ``[REC]`` in ``template`` replaced by the next movie of ``ranking`` (display name).

    A slot with no movie left is dropped with the space before it. Returns the text and the movies used.
    """
    parts = template.split(REC_TOKEN)
    out, items = [parts[0]], []
    for part in parts[1:]:
        if len(items) < len(ranking):
            movie_id = ranking[len(items)][0]
            items.append(movie_id)
            out.append(catalogue.by_id(movie_id).display_name)
        else:
            out[-1] = out[-1].rstrip()
        out.append(part)
    return "".join(out).strip(), items

