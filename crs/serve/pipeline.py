"""The whole system behind one chat turn: ``CRS.from_pretrained(folder).respond(history)``.

A checkpoint folder holds the recommender (see :mod:`crs.rec.kg_text`) and, when the generator
stages have run, ``tokenizer/`` and ``generator/`` (see :mod:`crs.gen.reply`). Without a
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
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable

from crs.data.catalogue import Catalogue, Movie
from crs.data.context import DialogueContext
from crs.data.redial import RECOMMENDER, SEEKER, Turn
from crs.gen.reply import ReplyGenerator
from crs.gen.steps import Steps
from crs.rec.kg_text import KGTextRecommender
from crs.text.tokenizer import REC_TOKEN, escape_control_tokens
from kg.graph import KnowledgeGraph
from kg.linker import EntityLinker, LinkedEntity
from kg.paths import GraphIndex

logger = logging.getLogger(__name__)

ROLES = {"user": SEEKER, "assistant": RECOMMENDER}
TOP_K = 10
LINK_MEMO_SIZE = 4096  # texts whose linked entities a pipeline remembers
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


def history_turns(history: Iterable[dict], link: Callable[[str], list[LinkedEntity]]) -> tuple[list[Turn], list[LinkedEntity]]:
    """Gradio messages as :class:`Turn` s (consecutive messages of one role merged), with linked movies.

    ``link`` is the entity linker (:meth:`CRS.link`). Text is escaped (:func:`escape_control_tokens`): a user who types "[REC]" or "</s>" gets those
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
        entities = link(text)
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

    def __init__(self, recommender: KGTextRecommender, generator: ReplyGenerator | None = None):
        self.recommender = recommender
        self.generator: ReplyGenerator | None = generator
        # Text -> its linked entities: a conversation's earlier turns are linked once, not on every turn.
        self._link_memo: OrderedDict[str, list[LinkedEntity]] = OrderedDict()

    def link(self, text: str) -> list[LinkedEntity]:
        """The entities linked in ``text`` (memoised: the chat, the reasoning panel and the
        recommender's features all read the same turns)."""
        entities = self._link_memo.get(text)
        if entities is None:
            entities = self.linker.link(text)
            self._link_memo[text] = entities
            if len(self._link_memo) > LINK_MEMO_SIZE:
                self._link_memo.popitem(last=False)
        else:
            self._link_memo.move_to_end(text)
        return list(entities)

    @cached_property
    def graph_index(self) -> GraphIndex:
        """The knowledge graph's triples by entity (for explanation paths), built on first use;
        movies are named by their most mentioned catalogue entry."""
        names: dict[int, str] = {}
        for movie in sorted(self.catalogue.movies, key=lambda m: m.mentions):
            entity = self.kg.movie_to_entity.get(movie.movie_id)
            if entity is not None:
                names[entity] = movie.display_name
        return GraphIndex(self.kg, names)

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
    def from_pretrained(cls, folder: str | Path, device: str = "cpu", encoders: dict | None = None,
                        with_generator: bool = True) -> "CRS":
        """The recommender and generator of one checkpoint, each loaded once.

        This is the one place that pairs them: ``generator/`` is loaded when present and
        ``with_generator`` (else it stays None), and always when the recommender takes the
        generator's ``[REC]`` state, which it then reads from this generator. ``encoders`` shares
        sentence encoders between checkpoints (see :meth:`KGTextRecommender.from_pretrained`).
        """
        folder = Path(folder)
        recommender = KGTextRecommender.from_pretrained(folder, encoders=encoders)
        takes_state = bool(recommender.config.rec.rec_state_dim)
        generator = None
        if takes_state or (with_generator and ReplyGenerator.present(folder)):
            if not ReplyGenerator.present(folder):
                raise FileNotFoundError(f"checkpoint {folder} is incomplete: missing generator/ "
                                        "(the recommender takes its [REC] state)")
            generator = ReplyGenerator.from_pretrained(folder, device=device)
        if takes_state:
            catalogue = recommender.catalogue
            recommender.state_source = lambda contexts: generator.rec_state(contexts, catalogue)
        return cls(recommender, generator)

    def movie(self, movie_id: int) -> Movie:
        return self.catalogue.by_id(movie_id)

    def context(self, history: Iterable[dict]) -> tuple[DialogueContext, list[LinkedEntity]]:
        turns, linked = history_turns(history, self.link)
        mentioned = list(dict.fromkeys(m for turn in turns for m in turn.movies))
        # Each turn's entities go down with the context, so the recommender does not link it again.
        return DialogueContext(turns=turns, mentioned_movies=mentioned, linked=[self.link(t.text) for t in turns]), linked

    def rank(self, context: DialogueContext, rejected: Iterable[int] = (), k: int = TOP_K) -> list[tuple[int, float]]:
        """The recommender's k best movies, mentioned and rejected ones left out."""
        return self.recommender.top_k(context, k, exclude=rejected)

    def respond(self, history: Iterable[dict], rejected: Iterable[int] = (),
                context: tuple[DialogueContext, list[LinkedEntity]] | None = None) -> Reply:
        """The next recommender turn after ``history`` (whose last message is the user's);
        ``context``: :meth:`context` of ``history`` when the caller has it already."""
        context, linked = context or self.context(list(history))
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

