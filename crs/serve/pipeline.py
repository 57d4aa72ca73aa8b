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

The generated reply is then cleaned up (:func:`polish_template`, :func:`drop_ungrounded`): a greeting
is kept only in the first reply or when the user greets, spacing and capitals are tidied, a sentence
naming a person or genre that is neither a KG neighbour of the recommended movie nor said by the user
is dropped, and a reply left empty becomes the fixed fallback sentence.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from rapidfuzz import fuzz, process

from crs.data.catalogue import Catalogue, Movie, without_duplicates
from crs.data.context import DialogueContext
from crs.data.redial import RECOMMENDER, SEEKER, Turn
from crs.gen.prompting import PROMPT_DIR
from crs.gen.reply import GENERATOR_DIR, TOKENIZER_DIR, ReplyGenerator, describes_plot
from crs.gen.steps import Steps
from crs.gen.topic_head import CANDIDATE_FEATURES, candidate_features
from crs.io import CheckpointFileError, verify_files
from crs.rec.kg_text import KGTextRecommender
from crs.rec.request import ROLES as PERSON_ROLES
from crs.rec.request import (
    Constraint,
    MovieFacts,
    RequestReader,
    RequestState,
    honour_scores,
    relaxation_sentence,
    studio_and_country_words,
    theme_words,
)
from crs.serve.answers import answer_question
from crs.text.spelling import correct_request_words
from crs.text.tokenizer import REC_TOKEN, escape_control_tokens
from kg.graph import KnowledgeGraph
from kg.lexicon import COMMON_WORDS
from kg.linker import EntityLinker, LinkedEntity
from kg.paths import GraphIndex

logger = logging.getLogger(__name__)

ROLES = {"user": SEEKER, "assistant": RECOMMENDER}
TOP_K = 10
LINK_MEMO_SIZE = 4096  # texts whose linked entities a pipeline remembers
# The fixed sentences: a reply that is empty after clean-up, and the sentence added when the goal is
# to recommend but the reply names no movie.
FALLBACK_RECOMMEND = f"How about {REC_TOKEN}? I think you would like it."
FALLBACK_NOTHING = "Tell me about a movie you enjoyed, and I will find you something similar."
FAREWELL = "You're welcome! Enjoy the movie, and come back any time."  # after thanks
FAREWELL_UNTHANKED = "Enjoy the movie, and come back any time!"  # after "ok", "sounds good", "bye"
WARM_UP_MESSAGE = "I loved The Matrix and Heat, anything similar with Tom Hanks?"  # a movie, a person and a request
# Then one batch of turns as concurrent users send them: a first batch of many turns is otherwise
# about half again slower than the next ones (measured: 19 turns 0.68 s cold, 0.49 s after this).
WARM_UP_BATCH = (
    "Hi! Can you recommend a funny movie?",
    "I'm in the mood for a romantic comedy like Notting Hill",
    "Something scary from the 80s please, not too gory",
    "My kids loved Toy Story and Finding Nemo",
    "Any good crime movies? I liked Heat and The Departed a lot",
    "I want a sci-fi movie by Christopher Nolan",
    "I've seen that one, something else?",
    "Thanks, bye!",
)


@dataclass
class Reply:
    """One generated turn and the reasoning behind it."""

    text: str  # the reply as shown, every [REC] slot filled with a title
    items: list[int]  # ReDial ids of the movies recommended in ``text``, in order
    goal: str  # the goal step (predicted by the generator, or "recommend" for the template)
    topics: list[str]  # the topic step: non-movie KG entities the reply is about
    linked: list[LinkedEntity]  # entities linked in the whole conversation, last turn first
    ranking: list[tuple[int, float]]  # the recommender's top movies (id, score), mentioned and rejected left out
    template: str = ""  # the reply before slot filling (cleaned up: see polish_template)
    mentioned: list[int] = field(default_factory=list)  # movies mentioned so far (ids)
    generated: str = ""  # the generator's reply as written (before clean-up), "" without a generator
    request: RequestState | None = None  # what the user asked for so far (crs.rec.request), as the ranking honoured it
    answer: str = ""  # the answer to a factual question about a movie, from KG facts ("" when none was asked)


@dataclass
class TurnRequest:
    """One conversation's next turn to compute (see :meth:`CRS.respond` for the fields)."""

    history: list[dict]
    rejected: list[int] = field(default_factory=list)
    context: tuple[DialogueContext, list[LinkedEntity]] | None = None
    wants_movie: bool = False


@dataclass
class _Row:
    """A turn in progress inside :meth:`CRS.respond_batch`."""

    context: DialogueContext
    linked: list[LinkedEntity]
    rejected: list[int]
    wants_movie: bool
    state: RequestState
    ranking: list[tuple[int, float]] = field(default_factory=list)
    answer: object = None  # crs.serve.answers' answer to a factual question, or None
    kind: str = "template"  # "farewell" or "generate" when the generator is asked for the reply
    generated: object = None  # the generator's crs.gen.reply.Generated
    reply: Reply | None = None

    def done(self, text: str, goal: str, answer: str = "") -> Reply:
        """A reply that is ``text`` as it stands (an answer, a farewell): no movie, no generated text."""
        return Reply(text=text, items=[], goal=goal, topics=[], linked=self.linked[::-1], ranking=self.ranking, template=text,
                     mentioned=list(self.context.mentioned_movies), request=self.state, answer=answer)


def history_turns(history: Iterable[dict], link: Callable[[str], list[LinkedEntity]]) -> tuple[list[Turn], list[LinkedEntity]]:
    """Gradio messages as :class:`Turn` s (consecutive messages of one role merged), with linked movies.

    ``link`` is the entity linker (:meth:`CRS.link`). The user's misspelt request words are put right
    (:func:`crs.text.spelling.correct_request_words`). Text is escaped (:func:`escape_control_tokens`): a user who types "[REC]" or "</s>" gets those
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
        if role == SEEKER:
            text = correct_request_words(text)  # "recomend a scary movi": the request words put right
        entities = link(text)
        linked.extend(entities)
        movies = list(dict.fromkeys(e.movie_id for e in entities if e.movie_id is not None))
        if turns and turns[-1].role == role:
            last = turns[-1]
            turns[-1] = Turn(role, f"{last.text} {text}", list(dict.fromkeys(last.movies + movies)), last.num_messages + 1)
        else:
            turns.append(Turn(role, text, movies))
    return turns, linked


def load_generator(folder: Path, device: str = "cpu") -> ReplyGenerator:
    """The checkpoint's generator; a missing, truncated or mismatched file is named in the error."""
    generator_dir, tokenizer_dir = folder / GENERATOR_DIR, folder / TOKENIZER_DIR
    if not generator_dir.is_dir():
        raise FileNotFoundError(f"{generator_dir}: missing (this checkpoint has no generator)")
    verify_files(generator_dir, ["config.json", "model.safetensors"])
    if tokenizer_dir.is_dir():
        verify_files(tokenizer_dir, ["tokenizer.json"])
    if (folder / PROMPT_DIR).is_dir():  # a soft prompt or LoRA adapters (crs.gen.prompting)
        verify_files(folder / PROMPT_DIR)
    try:
        return ReplyGenerator.from_pretrained(folder, device=device)
    except (OSError, ValueError, RuntimeError) as error:
        if isinstance(error, CheckpointFileError) or str(folder) in str(error):
            raise
        first = " ".join(str(error).split())[:300]
        problem = "shape mismatch with config.json" if "mismatched_sizes" in first or "size mismatch" in first else "does not load"
        raise CheckpointFileError(generator_dir, f"{problem} ({first})") from None


def attach_prompt(generator: ReplyGenerator, recommender: KGTextRecommender, link: Callable[[str], list]) -> None:
    """Give a generator's KG-conditioned prompt what it reads: the recommender's entity embeddings,
    and the entities linked in a context (its last ``rec.max_context_entities``, as the recommender
    takes them)."""
    table = recommender.entity_embeddings()
    if table is None:
        raise ValueError("the generator's prompt reads KG entity embeddings, but this recommender has no KG side (rec.use_kg)")
    generator.prompt.attach(table)
    limit = recommender.config.rec.max_context_entities
    generator.entity_source = lambda text: [e.entity for e in link(text)][-limit:]


class TopicCandidates:
    """Row i's candidate topics, ``candidates(i)`` (names), and their features,
    ``candidates.features(i)`` (one row per name), each row worked out once."""

    def __init__(self, build: Callable[[int], tuple[list[str], np.ndarray]]):
        self._build, self._rows = build, {}

    def _row(self, row: int) -> tuple[list[str], np.ndarray]:
        if row not in self._rows:
            self._rows[row] = self._build(row)
        return self._rows[row]

    def __call__(self, row: int) -> list[str]:
        return list(self._row(row)[0])

    def features(self, row: int) -> np.ndarray:
        return self._row(row)[1]


class CRS:
    """Recommender + optional generator, loaded from one checkpoint folder."""

    def __init__(self, recommender: KGTextRecommender, generator: ReplyGenerator | None = None, generator_note: str = ""):
        self.recommender = recommender
        self.generator: ReplyGenerator | None = generator
        # Why there is no generator when serving wanted one (missing or broken generator/): the chat
        # then writes template replies, and the UI and /chat say so.
        self.generator_note = generator_note
        # Text -> its linked entities: a conversation's earlier turns are linked once, not on every turn.
        self._link_memo: OrderedDict[str, list[LinkedEntity]] = OrderedDict()
        if generator is not None and getattr(generator, "conditioned", False):
            attach_prompt(generator, recommender, self.link)

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
        generator's ``[REC]`` state or its KG prompt's state, which it then reads from this generator. ``encoders`` shares
        sentence encoders between checkpoints (see :meth:`KGTextRecommender.from_pretrained`).
        """
        folder = Path(folder)
        recommender = KGTextRecommender.from_pretrained(folder, encoders=encoders)
        takes_state = bool(recommender.config.rec.rec_state_dim)
        generator, note = None, ""
        if takes_state:
            if not ReplyGenerator.present(folder):
                raise FileNotFoundError(f"checkpoint {folder} is incomplete: missing generator/ "
                                        "(the recommender takes its [REC] state)")
            generator = load_generator(folder, device)
            catalogue = recommender.catalogue
            if recommender.config.rec.rec_state_source == "prompt":  # the KG prompt's state (prompt.rec_input)
                if not generator.conditioned:
                    raise CheckpointFileError(folder / "config.json", "the recommender takes the KG prompt's state "
                                              "(rec.rec_state_source prompt) but the generator has no KG-conditioned prompt/")
                recommender.state_source = lambda contexts: generator.prompt_state(contexts, catalogue)
            else:
                recommender.state_source = lambda contexts: generator.rec_state(contexts, catalogue)
        elif with_generator:
            try:
                generator = load_generator(folder, device)
            except (OSError, ValueError) as error:  # the recommender keeps serving; replies become templates
                note = f"The reply generator could not be loaded ({error}), so replies are short templates."
                logger.error("checkpoint %s: %s", folder, note)
        return cls(recommender, generator, note)

    def warm_up(self) -> float:
        """Build what the first turn would otherwise build (the KG facts by movie, the request reader,
        the explanation index, the kernels of each model's first call) with one turn about a movie,
        then the buffers and kernels of a batch with one batch of turns (:data:`WARM_UP_BATCH`);
        returns the seconds it took. The server calls it before it serves, so the first user does
        not wait for it."""
        started = time.perf_counter()
        self.respond([{"role": "user", "content": WARM_UP_MESSAGE}])  # builds the facts and the reader
        self.respond_batch([TurnRequest([{"role": "user", "content": message}], []) for message in WARM_UP_BATCH])
        self.graph_index  # noqa: B018 (built on first use; the reasoning panel reads it)
        return time.perf_counter() - started

    def movie(self, movie_id: int) -> Movie:
        return self.catalogue.by_id(movie_id)

    def context(self, history: Iterable[dict]) -> tuple[DialogueContext, list[LinkedEntity]]:
        turns, linked = history_turns(history, self.link)
        mentioned = list(dict.fromkeys(m for turn in turns for m in turn.movies))
        # Each turn's entities go down with the context, so the recommender does not link it again.
        return DialogueContext(turns=turns, mentioned_movies=mentioned, linked=[self.link(t.text) for t in turns]), linked

    @cached_property
    def facts(self) -> MovieFacts:
        """Each catalogue movie's people by role, genres, year and franchise (built on first use)."""
        return MovieFacts(self.kg, self.catalogue)

    @cached_property
    def reader(self) -> RequestReader:
        return RequestReader(self.facts, self.link)

    def request_state(self, context: DialogueContext, rejected: Iterable[int] = ()) -> RequestState:
        """What the user asked for in the conversation so far (:mod:`crs.rec.request`)."""
        user_turns, named = [], []  # named: the movies named so far, by either side, the latest first
        for i, turn in enumerate(context.turns):
            named = list(dict.fromkeys([*reversed(turn.movies), *named]))
            if turn.role == SEEKER:
                linked = context.linked[i] if context.linked is not None else self.link(turn.text)
                user_turns.append((turn.text, linked, named[0] if named else None, named))
        return self.reader.read(user_turns, rejected)

    def rank(self, context: DialogueContext, rejected: Iterable[int] = (), k: int = TOP_K,
             state: RequestState | None = None) -> list[tuple[int, float]]:
        """The recommender's k best movies, mentioned and rejected ones left out; with ``state``,
        ordered to honour the user's request (:func:`crs.rec.request.honour`)."""
        return self.rank_request(context, state, rejected, k)[0]

    def rank_request(self, context: DialogueContext, state: RequestState | None, rejected: Iterable[int] = (),
                     k: int = TOP_K) -> tuple[list[tuple[int, float]], RequestState | None]:
        """:meth:`rank` and the state with the constraints it had to relax."""
        return self.rank_requests([context], [state], [rejected], k)[0]

    @cached_property
    def untitled(self) -> list[int]:
        """Catalogue indices of the movies with no title (ReDial lists two as " (2007)" and " (2015)"):
        the chat cannot name them, so it never suggests them."""
        return [i for i, movie in enumerate(self.catalogue.movies) if not movie.title.strip()]

    def rank_requests(self, contexts: Sequence[DialogueContext], states: Sequence[RequestState | None],
                      rejected: Sequence[Iterable[int]], k: int = TOP_K) -> list[tuple[list[tuple[int, float]], RequestState | None]]:
        """:meth:`rank_request` of each row, the catalogue scored for all rows in one batch."""
        rejected = [list(r) for r in rejected]
        scores, excluded = self.recommender.scores_and_excluded_batch(list(contexts), rejected)
        results = []
        for row, state in enumerate(states):
            if state is None or state.empty:
                results.append((self.recommender.best_of(scores[row], list(excluded[row]) + self.untitled, k), state))
            else:  # untitled movies scored out rather than excluded: excluded ones count as named in the chat
                row_scores = np.array(scores[row], dtype=np.float64)
                row_scores[self.untitled] = -np.inf
                results.append(honour_scores(self.facts, row_scores, excluded[row], state, k))
        return results

    def meets_as_well(self, state: RequestState | None) -> Callable[[int, int], bool]:
        """Whether a movie may stand in for another (a film's main entry for a stray listing of it):
        it meets every wanted constraint of ``state`` the other meets, and no unwanted one keeps it out."""
        def allowed(movie_id: int, instead_of: int) -> bool:
            if state is None:
                return True
            index = self.catalogue.index(movie_id)
            return (movie_id not in state.rejected and not any(self.facts.refused_mask(c)[index] for c in state.unwanted)
                    and all(self.facts.satisfies(movie_id, c) for c in state.wanted if self.facts.satisfies(instead_of, c)))
        return allowed

    def respond(self, history: Iterable[dict], rejected: Iterable[int] = (),
                context: tuple[DialogueContext, list[LinkedEntity]] | None = None, wants_movie: bool = False) -> Reply:
        """The next recommender turn after ``history`` (whose last message is the user's);
        ``context``: :meth:`context` of ``history`` when the caller has it already; ``wants_movie``:
        the user asked for another movie (turned the last one down), so the reply recommends one."""
        return self.respond_batch([TurnRequest(list(history), list(rejected), context, wants_movie)])[0]

    def respond_batch(self, requests: Sequence["TurnRequest"]) -> list[Reply]:
        """:meth:`respond` for several conversations at once (concurrent chat turns): the catalogue is
        scored for all of them in one recommender batch and the replies decoded in one generator
        batch per decoding pass; each reply is the one :meth:`respond` gives alone."""
        rows = []
        for request in requests:
            context, linked = request.context or self.context(list(request.history))
            rejected = list(request.rejected)
            rows.append(_Row(context, linked, rejected, request.wants_movie, self.request_state(context, rejected)))
        ranked = self.rank_requests([r.context for r in rows], [r.state for r in rows], [r.rejected for r in rows])
        for row, (ranking, state) in zip(rows, ranked):
            row.ranking, row.state = without_duplicates(self.catalogue, ranking, self.meets_as_well(state)), state
            row.answer = self.answer(row.context)
            if row.answer is not None and not (row.wants_movie or state.asked or row.answer.follow
                                               or (explicit_request(row.context) and row.answer.asked != "which")):
                # A question about a movie, and nothing else asked: the answer from KG facts is the reply
                # ("which one would you recommend?" chooses among the movies suggested: no new one).
                row.reply = row.done(row.answer.text, "discuss", answer=row.answer.text)
                continue
            row.wants_movie = row.wants_movie or state.asked or row.answer is not None
            if not row.wants_movie and closes(row.context):
                row.kind = "farewell"  # thanks and goodbyes get a farewell, never one more movie
            elif self.generator is not None:
                row.kind = "generate"
        self._decode(rows)
        for row in rows:
            if row.reply is None:
                row.reply = self._finish(row)
        return [row.reply for row in rows]

    def _decode(self, rows: list["_Row"]) -> None:
        """The generator's replies of the rows that need one: a farewell, a forced recommendation (the
        user asked for a movie), or free decoding; then, for a reply that did not recommend although
        the user asked or named a movie, a second pass with the goal forced to recommend."""
        todo = [row for row in rows if row.kind in ("farewell", "generate")]
        if not todo:
            return
        if self.generator is None:  # only farewells get here: the fixed one
            for row in todo:
                row.reply = row.done(farewell(row.context), "farewell")
            return
        forced: list[Steps | None] = []
        for row in todo:
            if row.kind == "farewell":
                forced.append(Steps("farewell", [], ""))
            elif row.wants_movie and row.ranking:
                # The reply must recommend: the topics are what the user asked for that the movie has
                # (KG facts of it, so the reply may name them).
                forced.append(Steps("recommend", self.request_topics(row.state, row.ranking[0][0]),
                                    self.catalogue.by_id(row.ranking[0][0]).display_name))
            else:
                forced.append(None)
        contexts, rankings = [r.context for r in todo], [r.ranking for r in todo]
        for row, generated in zip(todo, self.generator.generate(contexts, rankings, self.catalogue, forced=forced,
                                                                topic_filter=self.topic_filter(contexts, rankings),
                                                                reply_filter=self.claim_filter(contexts, rankings),
                                                                topic_candidates=self.topic_candidates(contexts, rankings))):
            row.generated = generated
        # The user asked, or named a movie: answer with a recommendation whatever goal the generator
        # predicted (ReDial's first recommender turns are mostly greetings).
        again = [row for row in todo if row.kind == "generate" and row.generated.goal != "recommend" and row.ranking
                 and asks_for_recommendation(row.context)]
        if again:
            steps = [Steps("recommend", row.generated.topics, self.catalogue.by_id(row.ranking[0][0]).display_name) for row in again]
            contexts, rankings = [r.context for r in again], [r.ranking for r in again]
            for row, generated in zip(again, self.generator.generate(contexts, rankings, self.catalogue, forced=steps,
                                                                     reply_filter=self.claim_filter(contexts, rankings))):
                row.generated = generated
        for row in todo:
            if row.kind == "farewell":
                text = polish_template(row.generated.reply, keep_greeting=False, keep_wellbeing=asked_wellbeing(row.context))
                ok = has_words(text) and REC_TOKEN not in text and not self.link(text)
                row.reply = row.done(text if ok else farewell(row.context), "farewell")

    def _finish(self, row: "_Row") -> Reply:
        """The reply of a row from its generated text (or none): cleaned up, slots filled, grounded in
        the KG, with the fixed sentences where the generator failed, the answer and the relaxed
        constraints said first."""
        context, ranking, state, answer = row.context, row.ranking, row.state, row.answer
        generated_text = ""
        if row.generated is not None:
            generated = row.generated
            goal, topics, generated_text = generated.goal, generated.topics, generated.reply
            template = polish_template(generated_text, keep_greeting=may_greet(context), keep_wellbeing=asked_wellbeing(context))
            if not has_words(template) or (REC_TOKEN in template and not ranking):
                template = None  # an untrained or derailed generator, a bare greeting or title, no movie left
            elif goal == "recommend" and ranking and REC_TOKEN not in template:
                template = join_sentences(template, FALLBACK_RECOMMEND)
        else:
            goal, topics, template = "", [], None
        text, items = fill_slots(template, ranking, self.catalogue) if template else ("", [])
        if template:
            text, items = self.ground(text, items, context, goal, state)
        if not has_words(text):
            goal = "recommend" if ranking else "ask_preference"
            template = FALLBACK_RECOMMEND if ranking else FALLBACK_NOTHING
            text, items = fill_slots(template, ranking, self.catalogue)
        elif row.wants_movie and ranking and not items:  # asked for a movie, and the reply named none
            again, items = fill_slots(FALLBACK_RECOMMEND, ranking, self.catalogue)
            text, goal = join_sentences(text, again), "recommend"
        if items and (state.asked or row.wants_movie or explicit_request(context) or user_named_movie(context)):
            text = drop_preference_questions(text, title_spans(text, [self.movie(m).display_name for m in items]))
        relaxed = relaxation_sentence(state) if items else ""
        prefix = " ".join(part for part in (answer.text if answer else "", relaxed) if part)
        if prefix:
            text = join_sentences(prefix, strip_greeting(text))
        return Reply(text=text, items=items, goal=goal, topics=topics, linked=row.linked[::-1], ranking=ranking,
                     template=template, mentioned=list(context.mentioned_movies), generated=generated_text, request=state,
                     answer=answer.text if answer else "")

    def request_topics(self, state: RequestState, movie_id: int) -> list[str]:
        """The people and genres the user asked for that ``movie_id`` has, as topic names."""
        return [self.kg.entity_names[c.value] if c.kind == "person" else c.label.split(": ", 1)[-1].lower()
                for c in state.wanted if c.kind in ("person", "genre") and self.facts.satisfies(movie_id, c)][:2]

    def answer(self, context: DialogueContext):
        """The answer to a factual question in the user's last turn (:mod:`crs.serve.answers`), or None."""
        if (last := user_turn(context)) is None:
            return None
        linked = context.linked[-1] if context.linked is not None else self.link(last.text)
        recommended = next((turn.movies for turn in reversed(context.turns[:-1]) if turn.role == RECOMMENDER and turn.movies), [])
        listed = next((turn.movies for turn in reversed(context.turns[:-1]) if turn.role == RECOMMENDER and len(set(turn.movies)) > 1), [])
        return answer_question(last.text, linked, self.facts, recommended, listed)

    def topic_filter(self, contexts: list[DialogueContext], rankings: list[list[tuple[int, float]]]):
        """For :meth:`ReplyGenerator.generate`: the topics of row i that are KG neighbours of its best
        movie or entities the seeker named (None when ``conv.kg_topics`` is off)."""
        config = getattr(self.generator, "config", None)
        if config is None or not getattr(config, "kg_topics", False):
            return None

        speakable = self.speakable_rows(contexts, rankings)

        def allowed(row: int, topics: list[str]) -> list[str]:
            ok = speakable(row)
            keep = []
            for name in topics:
                found = [e for e in self.link(name) if e.kind != "movie"]
                if found and found[0].entity in ok:
                    keep.append(name)
            return keep

        return allowed

    def claim_filter(self, contexts: list[DialogueContext], rankings: list[list[tuple[int, float]]]):
        """For :meth:`ReplyGenerator.generate` (hybrid decoding): whether a retrieved training reply
        may answer row i, i.e. it names no movie (its movies are ``[REC]`` slots), no person or
        genre beyond the KG neighbours of the row's best movie and what the seeker named, no
        genre by a plain word ("a kids movie", "so scary") that the best movie does not have,
        no time ("a recent one", "from the 80s", "an old classic") that the best movie's year is not
        in, no studio, country or series its facts do not hold (:meth:`fits_origin`: "a Pixar
        movie", "the prequel to [REC]"), no people shared between movies that share none
        (:meth:`shares_people`: "by the same director"), no award, rating or box-office claim
        (:data:`UNCHECKABLE_RE`), no talk about the crowd-sourcing task (:data:`TASK_TALK_RE`: "this HIT
        is done", "should we submit?"), nothing a seeker says (:data:`SEEKER_SPEECH_RE`: "I'm looking for
        a good movie"), no leave-taking (:data:`FAREWELL_RE`: "have a good night") unless the user's
        last turn takes leave or thanks (:func:`user_leaving`) and does not still ask a question or
        for a movie (:func:`still_asking`), no answer to "how are
        you?" (:data:`WELLBEING_ANSWER_RE`: "Hi, I am great.") unless the user's last turn asked it
        (:func:`asked_wellbeing`), and no opening that
        continues an earlier suggestion ("Or ...", "Also ...", "Another ...", :data:`_CONTINUES_RE`)
        before the recommender has suggested a movie (in the ReDial training dialogues 0.2% of the
        recommender's first turns with a movie open so, against 10.9% of the later ones), nor one that
        mirrors a statement ("So was [REC]", :data:`_MIRRORS_RE`) unless the user's last turn names a
        movie and does not ask for anything (:func:`still_asking`), nor one that opens with the answer
        to a question ("Very!", :data:`_ANSWER_OPENING_RE`) unless the user asked one
        (:func:`user_asked_question`), nor one that
        opens with praise of a movie ("That's a great one", :data:`PRAISE_OPENING_RE`) when the last
        two turns name none (:func:`movie_just_named`) or the user just said they did not like one
        (:func:`user_disliked`), nor one that takes a movie for a suggestion
        to itself ("I'll have to check it out", :func:`new_to_me`) unless the user's last turn
        names one (:func:`user_named_movie`), nor one that calls a movie of another time "the new
        [REC]" (:data:`NEW_MOVIE_RE`), nor one that tells what a movie is about
        (:func:`crs.gen.reply.describes_plot`: the plot of the movie it was written for), nor one
        that names someone the linker leaves alone ("Jim Carey", "Gogo Yubari": :meth:`unlinked_people`)
        or credits in lower case ("staring leo decaprio": :meth:`lowercase_credits`)
        who is not, spelt close enough, a person it may name (:meth:`names_speakable_person`), or by
        a bare surname someone it may not name ("If you like Pacino, …": :meth:`surnamed_people`), nor one
        that speaks of someone by pronoun ("He was great in [REC]", :data:`_PERSON_PRONOUN_RE`) naming
        no one itself when the last two turns speak of no person, nor one
        that calls its movie similar (:data:`SIMILAR_CLAIM_RE`) before the user named a movie, nor
        one that praises several movies (:data:`PLURAL_PRAISE_RE`: "they were all good ones") with
        fewer than two to praise, nor one that wishes the user joy of several (:data:`ENJOY_THEM_RE`:
        "hope you enjoy them") after fewer than two, nor one that answers thanks (:data:`WELCOME_RE`) unless the user
        thanked, says the user likes the movie in its slot (:data:`LIKED_SLOT_RE`: "as you like
        [REC]"), or goes on with an answer or a correction after its first words
        (:data:`TAIL_ANSWER_RE`: "… should be good Yes, …", "… Sorry I mean …") or corrects what its
        own dialogue said (:data:`CORRECTION_RE`: "oops [REC] is what I meant"), nor one that agrees
        about its slot's movie ("Yes [REC] was great", :data:`AFFIRMED_SLOT_RE`) unless the user asked
        a question naming no movie, nor one that says the user has seen a movie (:data:`YOU_SAW_RE`: "oh,
        you've seen it") unless the user's last turn says they saw one (:func:`user_said_seen`)."""

        speakable = self.speakable_rows(contexts, rankings)
        known: dict[tuple, bool] = {}  # (test, row) -> the test on row's context, asked once a row

        def person_in_talk(context: DialogueContext) -> bool:
            """Whether the last two turns speak of a person: name one, or the user's says "he", "my son"."""
            turns = context.turns[-2:]
            if any(e.kind == "person" for turn in turns for e in self.link(turn.text)):
                return True
            turn = user_turn(context)
            return turn is not None and bool(_PERSON_PRONOUN_RE.search(turn.text) or _PERSON_NOUN_RE.search(turn.text))

        def holds(test, row: int) -> bool:
            if (test, row) not in known:
                known[(test, row)] = test(contexts[row])
            return known[(test, row)]

        def allowed(row: int, reply: str) -> bool:
            if _CONTINUES_RE.match(reply) and not holds(recommender_suggested, row):
                return False
            if _ALSO_RE.match(reply) and not holds(recommender_suggested, row) and not holds(user_named_movie, row):
                return False
            if _MIRRORS_RE.match(reply) and (not holds(user_named_movie, row) or holds(still_asking, row)):
                return False
            if _ANSWER_OPENING_RE.match(reply) and not holds(user_asked_question, row):
                return False
            if PRAISE_OPENING_RE.match(reply) and (not holds(movie_just_named, row) or holds(user_disliked, row)
                                                   or not holds(user_spoke_of_movie, row)):
                return False
            text = reply.replace(REC_TOKEN, " ")
            if new_to_me(text) and not holds(user_named_movie, row):
                return False
            if SEEKER_SPEECH_RE.search(text) or UNCHECKABLE_RE.search(text) or TASK_TALK_RE.search(text) or describes_plot(reply):
                return False
            if SIMILAR_CLAIM_RE.search(reply) and not holds(seeker_named_movie, row):
                return False
            if PLURAL_PRAISE_RE.search(text) and reply.count(REC_TOKEN) < 2 and not holds(two_movies_just_named, row):
                return False
            if ENJOY_THEM_RE.search(text) and reply.count(REC_TOKEN) < 2 and not holds(recommender_named_two, row):
                return False
            if WELLBEING_ANSWER_RE.search(text) and not holds(asked_wellbeing, row):
                return False
            if FAREWELL_RE.search(text) and (holds(still_asking, row) or not holds(user_leaving, row)):
                return False
            if RETURNED_WISH_RE.match(text) and not holds(user_wished, row):
                return False
            if AGREEMENT_RE.search(reply.replace(REC_TOKEN, ".")) and not holds(user_stated_taste, row):
                return False
            if ANOTHER_GOOD_RE.search(text) and (not holds(movie_mentioned, row) or holds(user_disliked, row)):
                return False
            if WELCOME_RE.search(text) and not holds(user_thanked, row):
                return False
            if LIKED_SLOT_RE.search(reply) or TAIL_ANSWER_RE.search(reply.strip()) or CORRECTION_RE.search(reply):
                return False
            if AFFIRMED_SLOT_RE.search(reply) and (holds(user_named_movie, row) or not holds(still_asking, row)):
                return False
            if USER_NAMED_RE.search(text) and not holds(seeker_named_movie, row):
                return False
            if YOU_SAW_RE.search(text) and not holds(user_said_seen, row):
                return False
            named = self.link(text)
            if any(e.kind == "movie" for e in named):
                return False
            unlinked = self.unlinked_people(text, named)
            if _PERSON_PRONOUN_RE.search(text) and not _PERSON_NOUN_RE.search(text) and not unlinked \
                    and not any(e.kind == "person" for e in named) and not holds(person_in_talk, row):
                return False
            if named and not all(e.entity in speakable(row) for e in named):
                return False
            if not all(self.names_speakable_person(name, speakable(row)) for name in unlinked + self.lowercase_credits(text, named)):
                return False
            if any(person not in speakable(row) for person in self.surnamed_people(text, named)):
                return False
            genres = self.reader.genre_words(text)
            movie = rankings[row][0][0] if rankings[row] else None
            if genres and (movie is None or not all(self.facts.has_genre(movie, g) for g in genres)):
                return False
            if not self.fits_origin(movie, text):
                return False
            shared = SAME_PEOPLE_CLAIM_RE.search(text)
            if shared and not self.shares_people(contexts[row], rankings[row], reply.count(REC_TOKEN), shared):
                return False
            showing = [self.reader.showing_years()] if NEW_MOVIE_RE.search(reply) else []  # "the new [REC]"
            return self.fits_times(movie, self.reader.year_claims(text) + showing)

        return allowed

    def topic_candidates(self, contexts: list[DialogueContext], rankings: list[list[tuple[int, float]]]) -> TopicCandidates:
        """For :meth:`ReplyGenerator.generate` (``conv.topic_choice`` "scored"): the topics row i may
        name (``candidates(i)``): the people and genres the seeker named (latest first), then the best
        movie's genres; and ``candidates.features(i)``, their :data:`crs.gen.topic_head.CANDIDATE_FEATURES`
        (what the topic classifier reads)."""

        def build(row: int) -> tuple[list[str], np.ndarray]:
            context, ranking = contexts[row], rankings[row]
            seeker_turns: dict[str, list[int]] = {}  # name -> positions of the seeker turns naming it, 0 = the last
            kinds: dict[str, str] = {}
            said_by_recommender: set[str] = set()
            seeker_position = 0
            for position in range(len(context.turns) - 1, -1, -1):
                turn = context.turns[position]
                linked = context.linked[position] if context.linked is not None else self.link(turn.text)
                for entity in linked:
                    if entity.kind == "movie":
                        continue
                    if turn.role == SEEKER:
                        kinds.setdefault(entity.name, entity.kind)
                        turns = seeker_turns.setdefault(entity.name, [])
                        if seeker_position not in turns:
                            turns.append(seeker_position)
                    else:
                        said_by_recommender.add(entity.name)
                seeker_position += turn.role == SEEKER
            genres = sorted(self.kg.entity_names[g] for g in self.facts.genres.get(ranking[0][0], ())) if ranking else []
            names = list(dict.fromkeys(list(seeker_turns) + genres))
            recommender_turns = sum(turn.role == RECOMMENDER for turn in context.turns)
            features = np.stack([candidate_features(seeker_turns.get(name, []), name in said_by_recommender, name in genres,
                                                    kinds.get(name, "genre"), len(names), recommender_turns) for name in names]) \
                if names else np.zeros((0, len(CANDIDATE_FEATURES)), dtype=np.float32)
            return names, features

        return TopicCandidates(build)

    def seeker_named(self, context: DialogueContext) -> list[LinkedEntity]:
        """The people and genres the seeker named in ``context``, latest turn first."""
        named = []
        for position in range(len(context.turns) - 1, -1, -1):
            if context.turns[position].role == SEEKER:
                linked = context.linked[position] if context.linked is not None else self.link(context.turns[position].text)
                named += [e for e in linked if e.kind != "movie"]
        return named

    def speakable(self, context: DialogueContext, ranking: list[tuple[int, float]]) -> set[int]:
        """The non-movie entities a reply may name: KG neighbours of the best movie of ``ranking`` and
        the entities the seeker named in ``context``."""
        entity = self.kg.movie_to_entity.get(ranking[0][0]) if ranking else None
        ok = kg_neighbours(self.graph_index, [entity]) if entity is not None else set()
        return ok | {e.entity for e in self.seeker_named(context)}

    @cached_property
    def person_names(self) -> list[str]:
        """Every KG person's name in lower case (what :meth:`unlinked_people` compares against)."""
        return [name.lower() for name, kind in zip(self.kg.entity_names, self.kg.entity_types) if kind == "person"]

    def unlinked_people(self, text: str, linked: Sequence[LinkedEntity]) -> list[str]:
        """The names in ``text`` that the linker left alone (:func:`unlinked_names`): those with two
        words or more outside the common words, and those with one (a common first name: "Will
        Farrell") that are spelt within :data:`NAME_SIMILARITY` of a KG person's name."""
        return [name for name, rare in unlinked_names(text, linked)
                if rare >= 2 or process.extractOne(name.lower(), self.person_names, scorer=fuzz.ratio,
                                                   score_cutoff=NAME_SIMILARITY) is not None]

    def lowercase_credits(self, text: str, linked: Sequence[LinkedEntity]) -> list[str]:
        """The names ``text`` credits in lower case that the linker left alone ("staring leo
        decaprio"): the two words after "starring", "featuring", "directed by", "written by"."""
        return [m.group(1) for m in _LOWERCASE_CREDIT_RE.finditer(text)
                if not any(e.start < m.end(1) and m.start(1) < e.end for e in linked)]

    def surnamed_people(self, text: str, linked: Sequence[LinkedEntity]) -> list[int]:
        """The people ``text`` names by a bare surname the linker left alone ("If you like Pacino, …"):
        one capitalised word that stands for one person (:meth:`crs.rec.request.MovieFacts.person_by_surname`)."""
        runs = [m.span() for m in _NAME_RUN_RE.finditer(text)]  # names of two words or more: unlinked_people's
        found = []
        for match in _CAPITALISED_WORD_RE.finditer(text):
            start, end = match.span()
            if any(e.start < end and start < e.end for e in linked) or any(a <= start and end <= b for a, b in runs):
                continue
            word = match.group(0).removesuffix("'s").removesuffix("’s")
            if word.lower() not in COMMON_WORDS and (person := self.facts.person_by_surname(word)) is not None:
                found.append(person)
        return found

    def names_speakable_person(self, name: str, speakable: set[int]) -> bool:
        """Whether ``name`` (a name the linker left alone, often misspelt: "Jim Carey", "Nicholas
        Cage") is one of the ``speakable`` people's, spelt within :data:`NAME_SIMILARITY` (rapidfuzz's
        normalised Indel similarity, in percent)."""
        key = " ".join(name.lower().replace("’", "'").removesuffix("'s").split())
        return any(self.kg.entity_types[e] == "person" and (fuzz.ratio(key, self.kg.entity_names[e].lower()) >= NAME_SIMILARITY
                                                            or short_first_name(key, self.kg.entity_names[e].lower()))
                   for e in speakable)

    def speakable_rows(self, contexts: list[DialogueContext], rankings: list[list[tuple[int, float]]]) -> Callable[[int], set[int]]:
        """:meth:`speakable` of row i, worked out once per row (a filter asks about many candidates)."""
        memo: dict[int, set[int]] = {}

        def of(row: int) -> set[int]:
            if row not in memo:
                memo[row] = self.speakable(contexts[row], rankings[row])
            return memo[row]

        return of

    def ground(self, text: str, items: list[int], context: DialogueContext, goal: str,
               state: RequestState | None = None) -> tuple[str, list[int]]:
        """``text`` (slots filled with ``items``) without the sentences that name a person or genre
        that is neither a KG neighbour of a recommended movie nor said by the user in this
        conversation; the movies still named. A recommendation whose sentence went is made again
        with :data:`FALLBACK_RECOMMEND` (the movie was fine, the claim about it was not)."""
        names = {m: self.movie(m).display_name for m in items}
        user_turns = [i for i, turn in enumerate(context.turns) if turn.role == SEEKER]
        said = {e.entity for i in user_turns
                for e in (context.linked[i] if context.linked else self.link(context.turns[i].text))}
        if state is not None:  # what the user turned down is no reason to talk about it
            said -= {c.value for c in state.unwanted if c.kind in ("person", "genre")}
        movie_entities = [self.kg.movie_to_entity[m] for m in items if m in self.kg.movie_to_entity]
        allowed = said | kg_neighbours(self.graph_index, movie_entities)
        text = drop_seeker_speech(self.drop_false_times(text, items, names), names.values())
        for _ in range(3):  # re-link what is left: dropping a sentence can change what the linker sees
            grounded = drop_ungrounded(text, self.link(text), allowed, title_spans(text, names.values()))
            if grounded == text:
                break
            text = grounded
        kept = [m for m in items if names[m] in text]
        if goal == "recommend" and items and not kept and has_words(text):
            again, kept = fill_slots(FALLBACK_RECOMMEND, [(items[0], 0.0)], self.catalogue)
            text = join_sentences(text, again)
        return text, kept


    def fits_origin(self, movie: int | None, text: str) -> bool:
        """Whether ``movie`` holds the studio, country and theme ``text`` speaks of ("a Pixar movie", "a
        French one", "in the zombie genre": :func:`crs.rec.request.studio_and_country_words`,
        :func:`crs.rec.request.theme_words`) and, when ``text`` calls it a
        sequel, prequel, remake or part of a series, has a series of its own (of two titles or more,
        but for "remake" and "the original")."""
        claims = [(kind, key) for kind, key, _, _ in studio_and_country_words(text)] + [("theme", key) for key in theme_words(text)]
        if claims and (movie is None or not all(self.facts.satisfies(movie, Constraint(kind, key, "")) for kind, key in claims)):
            return False
        found = [m.group(0) for m in _SERIES_CLAIM_RE.finditer(text)]
        if not found:
            return True
        titles = self.facts.series_titles(movie) if movie is not None else 0
        # films that only share a title (Heist, 2001 and 2015) may be a remake and its original, not a series
        return titles > 1 or (titles == 1 and all(_REMAKE_CLAIM_RE.fullmatch(claim) for claim in found))

    def shares_people(self, context: DialogueContext, ranking: list[tuple[int, float]], slots: int, claim: re.Match) -> bool:
        """Whether a reply with ``slots`` movie slots (filled from ``ranking`` in order) may say that
        movies share people (:data:`SAME_PEOPLE_CLAIM_RE`: "by the same director", "the same actor"):
        one of its movies and another of them or of the conversation's movies have a person in common,
        in the role the claim names (director, writer, actor; any for "the same people")."""
        named = claim.lastgroup or {"directed": "director", "written": "writer"}.get(claim.group(0).split()[0].lower(), "")
        roles = {"director": ("director",), "writer": ("writer",), "actor": ("actor",)}.get(named, PERSON_ROLES)
        ours = [m for m, _ in ranking[: max(slots, 1)]]
        others = list(dict.fromkeys([*context.mentioned_movies, *(m for turn in context.turns for m in turn.movies), *ours]))

        def people(movie: int) -> set[int]:
            return {p for role in roles for p in self.facts.people.get(movie, {}).get(role, ())}

        return any(other != movie and people(movie) & people(other) for movie in ours for other in others)

    def fits_times(self, movie: int | None, claims: list[tuple[int | None, int | None]]) -> bool:
        """Whether ``movie``'s year lies in every year range ``claims`` (:meth:`RequestReader.year_claims`);
        with claims and no movie, no."""
        return not claims or (movie is not None and all(self.facts.satisfies(movie, Constraint("years", span, "")) for span in claims))

    def drop_false_times(self, text: str, items: list[int], names: dict[int, str]) -> str:
        """``text`` without the statements whose time ("a little old but a classic", "from the 80s",
        "in theaters now": :meth:`RequestReader.year_claims`) the movie they speak of does not fit:
        the movie named in the sentence, else the first of ``items``. Questions stay ("Do you like
        older movies?" asks, it claims nothing); years inside titles are not read."""
        titles = title_spans(text, names.values())
        kept, changed = [], False
        for start, end in sentence_spans(text, titles):
            sentence = text[start:end]
            inside = [(max(a, start) - start, min(b, end) - start) for a, b in titles if a < end and start < b]
            plain = "".join(" " if any(a <= i < b for a, b in inside) else ch for i, ch in enumerate(sentence))
            claims = [] if sentence.rstrip().endswith("?") else self.reader.year_claims(plain)
            if not self.fits_times(next((m for m in items if names[m] in sentence), items[0] if items else None), claims):
                changed = True
                continue
            kept.append(sentence.strip())
        return " ".join(s for s in kept if s) if changed else text


# What a seeker says, not a recommender ("I'm looking for a good movie", "can you recommend one?",
# "any suggestions?"): ReDial's recommender replies hold a few, and the generator learned them; the
# chat's replies may not ask the user for recommendations (claim_filter, CRS.ground).
SEEKER_SPEECH_RE = re.compile(
    r"\b(?:i'?m|i\s+am|im)\s+(?:just\s+|currently\s+|also\s+|really\s+|still\s+)?(?:looking|searching)\s+for\s+"
    r"(?:a|an|some|any)?\s*(?:good|great|new|nice|fun|funny|few)?\s*(?:movies?|films?|recommendations?|suggestions?)\b|"
    r"\b(?:can|could|would)\s+you\s+(?:please\s+)?(?:recommend|suggest)\b|"
    r"\b(?:do\s+you\s+have|have\s+you\s+got|got)\s+any\s+(?:other\s+|more\s+|good\s+)?(?:suggestions?|recommendations?|ideas)\b|"
    r"(?:^|[.!?]\s*)any\s+(?:other\s+|more\s+|good\s+)?(?:suggestions?|recommendations?)\b|"
    r"\bwhat\s+(?:\w+\s+){0,3}(?:would|do|can|could)\s+you\s+(?:recommend|suggest)\b|"
    r"\bi\s+(?:think\s+i\s+)?(?:can|could|will|'ll|'d|would)\s+(?:probably\s+)?pass\s+on\b", re.IGNORECASE)


def drop_seeker_speech(text: str, titles: Iterable[str]) -> str:
    """``text`` without its sentences that speak as a seeker (:data:`SEEKER_SPEECH_RE`) or tell what
    a movie is about (:func:`crs.gen.reply.describes_plot`: a generated plot is invented); a movie
    title's own words are not read."""
    spans = title_spans(text, titles)
    kept, changed = [], False
    for start, end in sentence_spans(text, spans):
        sentence = text[start:end]
        plain = "".join(" " if any(a <= start + i < b for a, b in spans) else ch for i, ch in enumerate(sentence))
        if SEEKER_SPEECH_RE.search(plain) or describes_plot(plain):
            changed = True
            continue
        kept.append(sentence.strip())
    return " ".join(s for s in kept if s) if changed else text


# Leave-taking in a reply ("have a good night", "goodbye"), and a user turn that still asks for
# something, which such a reply would leave unanswered (claim_filter).
FAREWELL_RE = re.compile(r"\b(?:good\s*-?\s*bye|bye|have\s+a\s+(?:good|great|nice|wonderful|lovely|fun)\s+(?:day|night|evening|weekend|time)|"
                         r"good\s*night|see\s+you|see\s+ya|take\s+care)\b", re.IGNORECASE)
_ASKING_RE = re.compile(r"\?|\b(?:something|anything|another|any\s+others?|more|else|instead|rather|want|need|looking\s+for|"
                        r"help\s+me|don'?t\s+know\s+what|in\s+the\s+mood)\b", re.IGNORECASE)
_LEAVING_RE = re.compile(r"\b(?:thanks?|thank\s+you|thx|bye|good\s*-?\s*bye|good\s*night|see\s+you|take\s+care|"
                         r"(?:i'?ll|i\s+will|i'?m\s+going\s+to|gonna)\s+(?:\w+\s+)?(?:watch|check|try|look|see|give))\b", re.IGNORECASE)


# A reply returning a wish ("You too, bye", "Same to you!"): it answers only a user turn that wished
# something ("have a good night", "enjoy your evening", "take care"; :func:`user_wished`).
RETURNED_WISH_RE = re.compile(r"^\W*(?:(?:and|ok(?:ay)?|thanks?|thank\s+you)\W+)?(?:you\s+too|u\s+too|same\s+to\s+(?:you|u)|likewise)\b",
                              re.IGNORECASE)
_WISH_RE = re.compile(r"\b(?:have\s+a\s+\w+|enjoy\s+(?:your|the\s+rest)|take\s+care|good\s*night|you\s+too|same\s+to\s+you|"
                      r"happy\s+\w+ing|merry|happy\s+(?:holidays|new\s+year|birthday))\b", re.IGNORECASE)


# A sentence agreeing with the user ("Me too!", "Mine too.", "Same here", "So do I", "Yes they do"):
# it answers only a user turn that says something of the user's own taste and neither asks nor
# thanks (:func:`user_stated_taste`): "Any good documentaries?" got "… is another good one. Me too."
AGREEMENT_RE = re.compile(r"(?:^|[.!?,]\s*)\W*(?:(?:oh|yes|yeah|haha|lol)\W+)?(?:me\s+too|mine\s+too|same\s+here|same|i\s+agree|so\s+do\s+i|"
                          r"me\s+neither|nor\s+do\s+i|yes\s+(?:they|it)\s+(?:do|does|is|are)|i\s+know\s+right|i\s+feel\s+the\s+same)\s*(?:[.!?,]|$)",
                          re.IGNORECASE)
_OWN_TASTE_RE = re.compile(r"\b(?:i|i'm|im|i've|ive|my|me)\b", re.IGNORECASE)


# "… is another good one", "another great movie": it ranks a movie beside one the conversation
# named and nobody ran down: not after "I hated Titanic" (:func:`user_disliked`), nor before any movie.
ANOTHER_GOOD_RE = re.compile(r"\banother\s+(?:really\s+|very\s+|pretty\s+)?(?:good|great|awesome|fun|funny|classic|excellent|fantastic|amazing|solid)\s+"
                             r"(?:one|movie|film|pick|choice|classic)\b", re.IGNORECASE)


# "You're welcome", "my pleasure", "glad I could help": an answer to thanks, only after thanks
# (:func:`user_thanked`); "Another good movie would be [REC]! Your welcome" answered "I've seen it".
WELCOME_RE = re.compile(r"\b(?:(?:you'?re|your|you\s+are|ur|u\s+r|yw)\s+(?:very\s+|so\s+|most\s+)?welcome|my\s+pleasure|"
                        r"glad\s+(?:i\s+could|i\s+was\s+able\s+to|to\s+(?:be\s+of\s+)?)\s*help)\b", re.IGNORECASE)
# "As you like [REC]", "since you loved [REC]", "you said you liked [REC]": the slot takes a movie the
# recommender brings up, which the user never named, so the claim is never true of it.
LIKED_SLOT_RE = re.compile(r"\b(?:(?:as|since|because|cause|cuz|seeing\s+as)\s+you|you\s+(?:said|mentioned|told\s+me)\s+(?:that\s+)?you)\s+"
                           r"(?:(?:seem\s+to|really|also|both)\s+)?(?:like|liked|love|loved|enjoy|enjoyed)\s+" + re.escape(REC_TOKEN), re.IGNORECASE)
# "Yes [REC] was great", "oh yeah, [REC] is a classic": agreeing about the movie in the slot, as
# about one the user just named or asked about ("have you seen Titanic?"). The slot takes a movie
# the user never named, so it answers only a question that names none ("any good thrillers?" "Yes!
# [REC] is an amazing thriller"): :func:`user_named_movie` false, :func:`still_asking` true.
AFFIRMED_SLOT_RE = re.compile(r"^\W*(?:oh\s+)?(?:yes|yeah|yea|yep|yup|definitely|absolutely|i\s+agree|agreed)\b[\s,.!]*"
                              + re.escape(REC_TOKEN) + r"\s*(?:was|is|'s|are|were)\b", re.IGNORECASE)
# A later sentence that answers or corrects something ("… should be good Yes, wasn't violent to me.",
# "… Sorry I mean …"): a reply retrieved from another dialogue answering that dialogue's last turn.
TAIL_ANSWER_RE = re.compile(r"(?:[.!?]+\s*|[,;]\s*|\s)(?:(?i:yes|yeah|yep|yup|nope|nah|sorry|oops)|No|I\s+mean)\b(?![\w'])")
# A reply that corrects what its own dialogue said before ("oops [REC] is what I meant", "Sorry, I
# meant [REC]", "typo", "[REC] that's what I meant") or asks which movie it meant ("are you talking
# about [REC]?"): nothing in this conversation needs the correction or the question.
CORRECTION_RE = re.compile(r"^\W*(?:oops|whoops|my\s+bad|typo)\b|\b(?:is|was)\s+what\s+i\s+meant\b|^\W*(?:sorry\W+)?i\s+meant\b|"
                           r"\bthat'?s\s+(?:what|the\s+one)\s+i\s+meant\b|\b(?:are|were)\s+you\s+talking\s+about\b|"
                           r"\byou\s+talking\s+about\b", re.IGNORECASE)


def user_leaving(context: DialogueContext) -> bool:
    """Whether the user's last turn thanks, says goodbye or that they will watch something
    (:data:`_LEAVING_RE`), or only closes ("ok", "sounds good": :func:`closes`): what a reply that
    takes leave ("goodbye", "have a good night") answers. "I've seen it" got "… I hope you enjoy
    [REC] goodbye." before."""
    turn = user_turn(context)
    return turn is not None and (bool(_LEAVING_RE.search(_plain(turn.text))) or closes(context))


# A reply that speaks of movies the user named ("I like the two you mentioned as well", "the ones
# you listed"): only after the user named one.
USER_NAMED_RE = re.compile(r"\b(?:you|u)\s+(?:just\s+)?(?:mentioned|named|listed|brought\s+up)\b|"
                           r"\bthe\s+(?:two|three|ones?|movies?|films?)\s+you\s+(?:said|picked|like|liked|love|loved)\b", re.IGNORECASE)


# A claim that the user has seen a movie ("oh, you've seen it, awesome"; not "have you seen it?"): it
# answers only a user turn that says they saw one (claim_filter).
YOU_SAW_RE = re.compile(r"(?<!have\s)(?<!had\s)(?<!did\s)\b(?:you'?ve|you\s+have|you|u)\s+(?:already\s+|also\s+)?(?:seen|watched|saw)\s+"
                        r"(?:it|that|this|them|those|both|all)\b", re.IGNORECASE)
_SAW_RE = re.compile(r"\b(?:seen|watched|saw)\b", re.IGNORECASE)


def user_said_seen(context: DialogueContext) -> bool:
    """Whether the user's last turn says they saw something ("I've seen it", "watched that one"; not
    "I haven't seen it": the spans of :data:`NEW_TO_ME_RE` left out)."""
    turn = user_turn(context)
    return turn is not None and bool(_SAW_RE.search(NEW_TO_ME_RE.sub(" ", _plain(turn.text))))


def movie_mentioned(context: DialogueContext) -> bool:
    """Whether any turn so far names a movie."""
    return any(turn.movies for turn in context.turns)


def user_stated_taste(context: DialogueContext) -> bool:
    """Whether the user's last turn speaks of the user ("I love horror", "my favorite is …") and
    neither asks nor only thanks: what "Me too" can agree with."""
    turn = user_turn(context)
    if turn is None or closes(context) or still_asking(context):  # a "?" is asking
        return False
    return bool(_OWN_TASTE_RE.search(_plain(turn.text)))


def user_wished(context: DialogueContext) -> bool:
    """Whether the user's last turn wished the recommender something (:data:`_WISH_RE`)."""
    turn = user_turn(context)
    return turn is not None and bool(_WISH_RE.search(turn.text))


def recommender_suggested(context: DialogueContext) -> bool:
    """Whether the recommender has suggested a movie in the conversation so far."""
    return any(turn.role == RECOMMENDER and turn.movies for turn in context.turns)


def movie_just_named(context: DialogueContext) -> bool:
    """Whether the conversation's last two turns name a movie (the user's turn names one, or the
    recommender's turn it answers suggested one): what a reply opening "That's a great one" praises."""
    return any(turn.movies for turn in context.turns[-2:])


def user_named_movie(context: DialogueContext) -> bool:
    """Whether the user's last turn names a movie: what a reply such as "I'll have to check it out"
    (:data:`NEW_TO_ME_RE`) answers."""
    turn = user_turn(context)
    return turn is not None and bool(turn.movies)


def user_turn(context: DialogueContext) -> Turn | None:
    """The user's last turn, when the conversation ends with one (else None)."""
    return context.turns[-1] if context.turns and context.turns[-1].role == SEEKER else None


def _plain(text: str) -> str:
    """``text`` with typographic apostrophes made plain ("I’m" → "I'm"), as the turn readers below match it."""
    return text.replace("’", "'")


def still_asking(context: DialogueContext) -> bool:
    """Whether the user's last turn asks a question or for a movie ("something from the last 10
    years", "another one?", "I don't know what I want to watch") and neither thanks nor takes
    leave: a reply may not take leave then."""
    if (turn := user_turn(context)) is None:
        return False
    text = _plain(turn.text)
    if closes(context) or (_LEAVING_RE.search(text) and not _REQUEST_RE.search(text) and "?" not in text):
        return False
    return bool(_ASKING_RE.search(text) or _REQUEST_RE.search(text))


# A reply opening with the answer to a question ("Very!", "Definitely.", "Not really,"; not "Definitely,
# [REC] is worth it", which agrees with a request): it answers
# only a user turn that asks one (claim_filter).
_ANSWER_OPENING_RE = re.compile(r"^\W*(?:(?:very(?:\s+much)?|definitely|absolutely|totally|indeed|for\s+sure)\s*[!.]|"
                                r"(?:not\s+really|nope)\s*[!.,])", re.IGNORECASE)
_QUESTION_START_RE = re.compile(r"^\W*(?:is|are|was|were|do|does|did|have|has|had|how|what|which|who|would|could|can|will|should)\b",
                                re.IGNORECASE)


def user_asked_question(context: DialogueContext) -> bool:
    """Whether the user's last turn asks a question ("?", or a question's first word)."""
    turn = user_turn(context)
    return turn is not None and ("?" in turn.text or bool(_QUESTION_START_RE.match(turn.text)))


# An answer to "how are you?" opening a reply ("Hi, I am great.", "I'm doing well, thanks for asking"),
# and a user turn that asks it: a retrieved reply may answer the question only when it was asked
# (claim_filter; 211 of the 24,730 training replies open so or thank for the asking).
WELLBEING_ANSWER_RE = re.compile(
    r"^\W*(?:(?:hi|hello|hey|hiya)(?:\s+there)?\W+)?(?:(?:i'?m|i\s+am|im)\s+(?:doing\s+)?|doing\s+)"
    r"(?:great|good|fine|well|ok|okay|alright|excellent|wonderful|pretty\s+good|very\s+well)\b|\bthanks?\s+for\s+asking\b",
    re.IGNORECASE)
_WELLBEING_ASKED_RE = re.compile(
    r"\bhow\s+(?:are|r)\s+(?:you|u|ya)\b|\bhow'?re\s+you\b|\bhow\s+(?:is|'s)\s+(?:it\s+going|your\s+(?:day|night|evening)|everything|life)\b|"
    r"\bhow'?s\s+(?:it\s+going|your\s+(?:day|night|evening)|everything|life)\b|\bhow\s+(?:have\s+you\s+been|are\s+things|(?:are\s+)?you\s+doing)\b|"
    r"\b(?:and|how\s+about|what\s+about)\s+(?:you|yourself|u)\b\s*\?|\bhope\s+you'?re\s+(?:well|good|doing)|\byou\s*\?\s*$", re.IGNORECASE)


def asked_wellbeing(context: DialogueContext) -> bool:
    """Whether the user's last turn asks how the recommender is ("hi, how are you?", "good, and you?")."""
    turn = user_turn(context)
    return turn is not None and bool(_WELLBEING_ASKED_RE.search(_plain(turn.text)))


# Claims no fact in the catalogue or the KG can check (awards, ratings, box office, links, age
# ratings, running times): a retrieved reply making one does not answer (83 of the 24,730 training
# replies; 64 before age ratings and running times were added).
UNCHECKABLE_RE = re.compile(r"\b(?:oscars?|academy\s+awards?|golden\s+globes?|awards?|emmys?|nominated|nominee|nominations?|"
                            r"box\s+office|highest[-\s]grossing|critically\s+acclaimed|rotten\s+tomatoes|imdb|https?|"
                            r"pg(?:-?13)?|rated\s+(?:g|r|pg)|r[-\s]rated|\d+\s*(?:min(?:ute)?s|hours?|hrs)\s+long|"
                            r"(?:runs?|running\s+time\s+of|runtime\s+of)\s+(?:about\s+|over\s+|under\s+|just\s+)?\d+\s*(?:min(?:ute)?s|hours?|hrs))\b",
                            re.IGNORECASE)

# Talk about the crowd-sourcing task the ReDial dialogues were collected in, not about movies ("this
# HIT is done", "should we submit?", "fill the movie forms", "i love mturk"), or a pointer elsewhere
# instead of an answer ("you can google it"): a retrieved reply saying so does not answer (16 of the
# 24,730 training replies).
TASK_TALK_RE = re.compile(
    r"\b(?:m-?turk|turkers?|requesters?|survey|questionnaires?|submit(?:ted|ting)?|fill\s+(?:in\s+|out\s+)?(?:the\s+)?movie\s+forms?|hide/show|next\s+round|"
    r"google\s+(?:it|that|them)|(?:this|these|next|my|our|\d+\s+(?:of\s+)?(?:these|those))\s+hits?\b(?!\s+(?:movies?|films?|songs?|shows?))|"
    r"hits?\s+(?:is|are|was)\s+(?:done|complete|over|finished))\b", re.IGNORECASE)

# A reply opening with praise of a movie just named ("That's a great one", "Good choice!", "I loved
# that movie"): it answers only a turn that names a movie or responds to one just suggested
# (:func:`movie_just_named`; 510 of the 24,730 training replies open so).
_PRAISE_ADJ = (r"(?:really\s+|very\s+|so\s+|pretty\s+|super\s+)?(?:good|great|awesome|excellent|classic|fantastic|amazing|fun|funny|"
               r"favou?rite|wonderful|cool|solid|scary|cute|sweet|terrific|brilliant)")
PRAISE_OPENING_RE = re.compile(
    r"^\W*(?:(?:oh|ah|yes|yeah|yep|ok|okay|wow|awesome|cool|nice|great|well|haha|lol)\W+)*(?:"
    rf"that(?:'s|’s|s|\s+is|\s+was)\s+(?:a\s+|such\s+a\s+|one\s+of\s+my\s+)?(?:{_PRAISE_ADJ}\s+)+(?:ones?|movies?|films?|flick|pick|choice|classic)\b|"
    rf"that\s+(?:one|movie|film)(?:'s|\s+is|\s+was)\s+{_PRAISE_ADJ}\b|such\s+a\s+(?:{_PRAISE_ADJ}\s+)+(?:ones?|movies?|films?|classic|pick|choice)\b|"
    rf"{_PRAISE_ADJ}\s+(?:choice|pick|one|movie|film)s?(?=\s*(?:[!.,;:)]|$|too\b|indeed\b))|"
    r"i\s+(?:really\s+|also\s+)?(?:love|loved|like|liked|enjoyed|adore)\s+(?:(?:that|this)\s+(?:one|movie|film)\b|it\b(?!\s+(?:when|if)\b))|"
    r"it(?:'s|’s|s|\s+is|\s+was)\s+(?:one\s+of\s+my\s+(?:all[-\s]time\s+)?favou?rites|(?:a\s+)?(?:really\s+|very\s+|so\s+)?(?:great|good|awesome|fantastic)\s+(?:one|movie|film)\b|"
    r"(?:really\s+|very\s+|so\s+)?(?:great|good|awesome|amazing|fantastic)\b(?!\s+(?:to|that|for|if|when|idea|talking|chatting|speaking|meeting|helping)\b)))",
    re.IGNORECASE)

# A user turn that says the user did not like a movie ("I didn't like it much", "it was boring",
# "hated that one"): no reply opens by praising it then.
_DISLIKED_RE = re.compile(r"\b(?:didn'?t|did\s+not|don'?t|do\s+not)\s+(?:really\s+|much\s+)?(?:like|love|enjoy|care\s+for)\b|\bhated?\b|"
                          r"\bnot\s+(?:a\s+|really\s+a\s+)?(?:big\s+)?fan\b|\b(?:was|is|it'?s|found\s+it)\s+(?:so\s+|really\s+|pretty\s+|kind\s+of\s+)?"
                          r"(?:boring|terrible|awful|overrated|bad|dull|meh|stupid)\b|\bwasn'?t\s+(?:good|great|for\s+me|my\s+thing)\b",
                          re.IGNORECASE)


# A user turn that speaks of a movie without naming it ("yes, I've seen it", "loved that one", "it
# was great"): with a movie named in the last two turns, what a praising reply opening answers.
_SPOKE_OF_MOVIE_RE = re.compile(r"\b(?:yes|yeah|yep|yup|seen|watched|saw|love[ds]?|liked?|enjoy(?:ed)?|great|good|awesome|amazing|"
                                r"favou?rite|fun|funny|classic|cool|best|heard|it|that\s+one|this\s+one)\b", re.IGNORECASE)


def user_spoke_of_movie(context: DialogueContext) -> bool:
    """Whether the user's last turn names a movie or speaks of one (:data:`_SPOKE_OF_MOVIE_RE`),
    not only asks for another kind ("maybe an action one"): then a reply may open praising it."""
    turn = user_turn(context)
    return turn is None or bool(turn.movies) or bool(_SPOKE_OF_MOVIE_RE.search(_plain(turn.text)))


def user_disliked(context: DialogueContext) -> bool:
    """Whether the user's last turn says they did not like a movie (:data:`_DISLIKED_RE`)."""
    turn = user_turn(context)
    return turn is not None and bool(_DISLIKED_RE.search(_plain(turn.text)))


# A reply that calls its movie similar to something ("That seems similar", "along the same lines",
# "kind of like that one"): it needs a movie the user named in the conversation to be similar to
# (:func:`seeker_named_movie`; 46 of the 24,730 training replies say so). "Similar to [REC]" names
# its own.
SIMILAR_CLAIM_RE = re.compile(
    r"\b(?:(?:that|this|it|those|these|they)(?:'s|\s+is|\s+was|\s+are)?\s+(?:seems?|sounds?|looks?|feels?|is|are|was|were|be|pretty|very|"
    r"really|kind\s+of|kinda|quite)?\s*(?:pretty\s+|very\s+|really\s+|quite\s+)?similar\b(?!\s+to\s+\[REC\])|"
    r"similar\s+to\s+(?:that|this|it|those|these|what\s+you|the\s+ones?\s+you|yours?)\b|along\s+the\s+same\s+lines|in\s+the\s+same\s+vein|"
    r"(?:kind\s+of|sort\s+of|kinda|a\s+lot|just)\s+like\s+(?:that|this|it|those|them|the\s+ones?\s+you)\b|"
    r"same\s+(?:kind|type|sort|style|genre)\s+(?:of\s+movie\s+)?as\s+(?:that|this|it|those|yours?|the\s+ones?)\b)", re.IGNORECASE)

# A reply that praises several movies at once ("They were all good ones", "both are great", "I
# loved them both"): it needs two movies to praise, its own [REC] slots or the movies of the last
# two turns (:func:`two_movies_just_named`; 397 of the 24,730 training replies say so).
_PLURAL_ADJ = r"(?:good|great|awesome|excellent|fantastic|amazing|fun|funny|classics?|favou?rites?|wonderful|cool|solid|scary|terrific|brilliant|cute)"
PLURAL_PRAISE_RE = re.compile(
    rf"\b(?:they|those|these|both)\s+(?:were|are|r)\s+(?:all\s+|both\s+)?(?:\w+\s+){{0,2}}?{_PLURAL_ADJ}\b|"
    rf"\b(?:both|all)\s+(?:of\s+(?:them|those|these)\s+)?(?:were|are)\s+(?:\w+\s+)?{_PLURAL_ADJ}\b|"
    r"\b(?:love|loved|like|liked|enjoyed)\s+(?:them\s+)?(?:both|all\s+of\s+them|those)\b", re.IGNORECASE)


# "I hope you enjoy them", "you'll love both": movies of the recommender's, so it needs two of them
# (:func:`recommender_named_two`) or two slots in the reply.
ENJOY_THEM_RE = re.compile(r"\b(?:enjoy|like|love)\s+(?:them|those|these|both|all\s+of\s+them)\b", re.IGNORECASE)


def recommender_named_two(context: DialogueContext) -> bool:
    """Whether the recommender's turns so far name two movies or more."""
    return len({m for turn in context.turns if turn.role != SEEKER for m in turn.movies}) >= 2


def seeker_named_movie(context: DialogueContext) -> bool:
    """Whether the user named a movie in any turn so far: what "that seems similar" is similar to."""
    return any(turn.role == SEEKER and turn.movies for turn in context.turns)


def two_movies_just_named(context: DialogueContext) -> bool:
    """Whether the conversation's last two turns name two movies or more: what "they were all good" praises."""
    return len({m for turn in context.turns[-2:] for m in turn.movies}) >= 2


# A recommender answering a movie the user brought up as if it were a suggestion to itself ("I'll
# have to check it out", "I haven't seen that one", "thanks for the recommendation"): ReDial's
# recommenders say so when the seeker names a movie they do not know. Such a reply answers only a
# user turn that names a movie (:func:`user_named_movie`).
_THAT = r"(?:it|that|that\s+one|this|this\s+one|them|those|those\s+ones|either(?:\s+of\s+(?:them|those))?)"
NEW_TO_ME_RE = re.compile(
    r"(?:\bi\b|\bi'll\b|\bi'd\b|\bi'm\b|\bim\b|(?<!\byou\s)\bwill\b|\bgonna\b)(?:(?!\byou\b)[^.!?\[]){0,30}?"
    rf"\b(?:check|look)\s+{_THAT}\s+(?:out|up)\b|"
    r"\b(?:i\s*)?(?:have(?:n'?t|\s+not|\s+never)|haven;?t|havent|never|did(?:n'?t|\s+not)|'ve\s+(?:never|not))\s+(?:seen|watched|heard\s+of)\b|"
    rf"\bi\s+have\s+(?:seen|watched)\s+{_THAT}\s+yet\b|\bi\s*(?:haven'?t|havent|have\s+not)\s*(?:[.!]|$)|"
    r"\b(?:never|not)\s+heard\s+of\s+(?:it|that|that\s+one|this\s+one)\b|"
    r"\bthanks?\s+(?:you\s+)?(?:so\s+much\s+|very\s+much\s+)?for\s+the\s+(?:recommendations?|suggestions?|recs?)\b",
    re.IGNORECASE,
)

# A reply that calls its movie new ("Have you seen the new [REC]?", "the latest [REC]"): a claim that
# it is showing now, checked as "in theaters" is (:meth:`RequestReader.showing_years`).
NEW_MOVIE_RE = re.compile(r"\b(?:the|that|this)\s+(?:new|newest|latest|newer)\s+(?:one\s*,?\s*)?\[REC\]", re.IGNORECASE)

_SAID_OF_YOU_RE = re.compile(r"\b(?:you|you've|you'd|you'll|u)\s*(?:have\s+|'ve\s+)?$", re.IGNORECASE)


def new_to_me(text: str) -> bool:
    """Whether ``text`` takes a movie for a suggestion to the recommender (:data:`NEW_TO_ME_RE`),
    said of itself ("I haven't seen it"), not of the user ("if you haven't seen it, ...")."""
    text = _plain(text)
    return any(not _SAID_OF_YOU_RE.search(text[max(0, m.start() - 24):m.start()]) for m in NEW_TO_ME_RE.finditer(text))


# A reply that places its movie in a series ("the sequel", "a remake of", "the trilogy").
_SERIES_CLAIM_RE = re.compile(r"\b(?:sequels?|prequels?|remakes?|remade|trilogy|franchise|series|installments?|part\s+(?:2|3|two|three|ii|iii)|"
                              r"the\s+original(?!\s+(?:story|idea|plot|script|screenplay|music|score|soundtrack|cast|book|novel))|"
                              r"the\s+(?:first|second|third|1st|2nd|3rd)\s+(?:one|movie|film|part)(?!\s+(?:you|i|we)\b)|"
                              r"(?:more|better)\s+than\s+the\s+first)\b",
                              re.IGNORECASE)

# The series claims a film that shares only its title with another may make (a remake, the original).
_REMAKE_CLAIM_RE = re.compile(r"remakes?|remade|the\s+original", re.IGNORECASE)

# A reply saying that movies share people ("by the same director", "the same actor is in it", "from
# the same people"): it answers only where they do (CRS.shares_people). The group named for the role.
SAME_PEOPLE_CLAIM_RE = re.compile(
    r"\b(?:same\s+(?:(?P<director>directors?|filmmakers?)|(?P<writer>writers?|screenwriters?|authors?)|"
    r"(?P<actor>actors?|actress(?:es)?|stars?|leads?|cast)|(?:guys?|people|person|team|creators?|makers?|crew))\b|"
    r"(?:directed|written|made)\s+by\s+the\s+same\b)", re.IGNORECASE)

# A name in a retrieved reply that the linker leaves alone: two or more capitalised words
# (Title Case, not shouting) of which at least two are not common words ("Jim Carey", "Gogo Yubari",
# "Marky Mark", "Winston Churchill"). Most are misspelt or nicknamed actors and characters of the
# movie the reply was written for; one stays only when it is, spelt close enough, a person the
# reply may name (CRS.names_speakable_person).
_NAME_RUN_RE = re.compile(r"\b[A-Z][a-z][\w'’-]*(?:\s+(?:[A-Z][a-z][\w'’-]*|[A-Z]\.|Mc[A-Z][a-z]+))+")
NAME_SIMILARITY = 85
_CAPITALISED_WORD_RE = re.compile(r"\b[A-Z][a-z][\w'’-]*")
# A credit typed in lower case ("staring leo decaprio", "directed by james cameron"): the two words
# after it name someone, unless they are a pronoun, an article or another function word.
_LOWERCASE_CREDIT_RE = re.compile(r"\b(?:[Ss]tarr?ing|[Cc]o-?starr?ing|[Ff]eaturing|[Dd]irected\s+by|[Ww]ritten\s+by)\s+"
                                  r"(?!(?:him|her|them|the|a|an|that|this|those|these|some|one|his|their|my|your|you|me|us|it|"
                                  r"same|who|whoever|lots?|many|great|good|an?other)\b)([a-z][\w'’-]*\s+[a-z][\w'’-]*)")


def short_first_name(written: str, name: str) -> bool:
    """Whether ``written`` ("leo decaprio") is ``name`` ("leonardo dicaprio") with a short first name
    (a prefix of at least three letters) and the surname spelt within :data:`NAME_SIMILARITY`."""
    words, parts = written.split(), name.split()
    return (len(words) == 2 and len(parts) >= 2 and len(words[0]) >= 3 and parts[0].startswith(words[0])
            and fuzz.ratio(words[1], parts[-1]) >= NAME_SIMILARITY)


def unlinked_names(text: str, linked: Sequence[LinkedEntity]) -> list[tuple[str, int]]:
    """The :data:`_NAME_RUN_RE` runs of ``text`` that no ``linked`` entity overlaps and that hold a
    word outside :data:`kg.lexicon.COMMON_WORDS`, each with how many such words it holds."""
    found = []
    for match in _NAME_RUN_RE.finditer(text):
        if any(e.start < match.end() and match.start() < e.end for e in linked):
            continue
        words = [w.strip(".'’-").lower().removesuffix("'s") for w in match.group(0).split()]
        rare = sum(w not in COMMON_WORDS for w in words)
        if rare:
            found.append((match.group(0), rare))
    return found


# A person spoken of by pronoun ("He was great in [REC]", "I love her movies"), and the words that
# give such a pronoun someone to stand for in the reply itself ("my son", "the director", "a guy"):
# a retrieved reply with one answers only where the talk has a person (CRS.claim_filter).
_PERSON_PRONOUN_RE = re.compile(r"\b(?:he|she|his|her|him|himself|herself|he's|she's|he'd|she'd|he'll|she'll)\b", re.IGNORECASE)
_PERSON_NOUN_RE = re.compile(r"\b(?:(?:my|our)\s+(?:son|daughter|husband|wife|dad|father|mom|mum|mother|brother|sister|boyfriend|girlfriend|"
                             r"friend|kid|niece|nephew|grandma|grandpa|grandmother|grandfather|cousin|uncle|aunt|bf|gf|hubby|partner)|"
                             r"guy|girl|man|woman|boy|lady|kid|character|actor|actress|director|hero|heroine|villain)\b", re.IGNORECASE)


# A reply opening that continues an earlier suggestion (claim_filter).
_CONTINUES_RE = re.compile(r"\s*(?:or|also|and|another|plus|too)\b", re.IGNORECASE)
# "I also liked [REC]": adds to a movie someone named, so it answers only after one was named.
_ALSO_RE = re.compile(r"\s*(?:i|we)\s+(?:would\s+|'d\s+|really\s+)?also\b", re.IGNORECASE)
# A reply opening that mirrors what the other speaker just said of a movie ("So was [REC]", "Neither
# did [REC]"): it answers only a user turn that names a movie and does not ask (claim_filter).
_MIRRORS_RE = re.compile(r"\W*(?:so|neither|nor)\s+(?:was|is|were|are|did|does|do|has|have|had)\b", re.IGNORECASE)
_REQUEST_RE = re.compile(
    r"\b(recommend|recommendations?|suggest|suggestions?|similar|something like|anything like|movies? like|"
    r"what should i (watch|see)|any ideas|looking for|in the mood for|"
    r"(any|some|good|great|a) (movies?|films?) (with|starring|by|about|from|that|which|where|for|to)|what(?:'s| is) a (?:good )?(?:movie|film)|"
    r"what (should|can|could) i (watch|see)|(something|what) to (watch|see)|surprise me|you (pick|choose)|your (pick|choice|call)|"
    r"anything (is fine|will do|goes)|i'?m (so )?bored|your (?:all[- ]time )?(?:favou?rite|fave|top) (?:movies?|films?|picks?)|"
    r"(?:best|favou?rite) (?:movies?|films?) (?:you'?ve|you have|you) (?:ever )?(?:seen|watched)|"
    r"nothing (good )?(on|to watch)|(?:can'?t|cannot) (find|decide on|pick) (a|an|any|anything|something)|"
    r"(want|need|wanna|would like|[’']d like)( to (watch|see))? (a|an|some|something))\b", re.I)


_CLOSING_RE = re.compile(
    r"^\W*(?:(?:ok(?:ay)?|great|cool|nice|perfect|awesome|excellent|wonderful|sounds\s+(?:good|great)|good|alright|all\s+right|"
    r"sure|yes|yeah|yep|thanks?|thank\s+you|thx|ty|bye|goodbye|good\s*bye|see\s+you|later|cheers|"
    r"have\s+a\s+(?:good|great|nice)\s+(?:one|day|night|evening)|i(?:'?ll|\s+will)\s+(?:try|watch|check|see)\s+(?:it|that|them|those|this)(?:\s+one)?(?:\s+out)?|"
    r"i(?:'?ll|\s+will)\s+(?:try|watch|check)\s+(?:it|that)\s+(?:one\s+)?(?:out\s+)?(?:tonight|later)|will\s+do|that'?s\s+all|"
    r"that\s+(?:helps|works|is\s+all)|(?:you'?ve|you\s+have)\s+been\s+(?:very\s+|so\s+)?helpful|"
    r"(?:that|this|it)(?:'?s|\s+is|\s+sounds|\s+looks)\s+(?:(?:really|so|very|pretty)\s+)?(?:great|perfect|awesome|good|cool|nice|helpful|fine|fantastic|"
    r"excellent|wonderful|amazing))"
    r"(?:\s+(?:a\s+lot|so\s+much|very\s+much|again|then|for\s+(?:the|your)\s+\w+|for\s+(?:the\s+)?help))?[\s\W]*)+$",
    re.IGNORECASE)


def closes(context: DialogueContext) -> bool:
    """Whether the user's last turn only thanks or says goodbye ("Great, I'll try that. Thanks!")."""
    turn = user_turn(context)
    return turn is not None and not turn.movies and bool(_CLOSING_RE.match(_plain(turn.text)))


_THANKED_RE = re.compile(r"\b(?:thanks?|thank\s+(?:you|u)|thx|ty|appreciate)\b", re.IGNORECASE)


def user_thanked(context: DialogueContext) -> bool:
    """Whether the user's last turn thanks ("thanks", "thank you", "I appreciate it")."""
    turn = user_turn(context)
    return turn is not None and bool(_THANKED_RE.search(turn.text))


def farewell(context: DialogueContext) -> str:
    """The fixed farewell: "You're welcome!" only when the user's last turn thanked."""
    return FAREWELL if user_thanked(context) else FAREWELL_UNTHANKED


def explicit_request(context: DialogueContext) -> bool:
    """Whether the user's last turn asks for a movie in words ("recommend", "something like", …)."""
    turn = user_turn(context)
    return turn is not None and bool(_REQUEST_RE.search(turn.text))


def asks_for_recommendation(context: DialogueContext) -> bool:
    """Whether the user's last turn asks for a movie or names one (a linked movie)."""
    turn = user_turn(context)
    return turn is not None and (bool(turn.movies) or bool(_REQUEST_RE.search(turn.text)))


def fill_slots(template: str, ranking: list[tuple[int, float]], catalogue: Catalogue) -> tuple[str, list[int]]:
    """Each ``[REC]`` in ``template`` replaced by the next movie of ``ranking`` (display name).

    A slot with no movie left is dropped with the space before it; an article right before a slot
    whose title starts with one goes ("the The Avengers"). Returns the text and the movies used.
    """
    parts = template.split(REC_TOKEN)
    out, items = [parts[0]], []
    for part in parts[1:]:
        if len(items) < len(ranking):
            movie_id = ranking[len(items)][0]
            items.append(movie_id)
            name = catalogue.by_id(movie_id).display_name
            if re.match(r"(?:the|a|an)\s", name, re.IGNORECASE):  # "the [REC]" with "The Avengers": one article
                out[-1] = _ARTICLE_BEFORE_SLOT_RE.sub("", out[-1])
            out.append(name)
        else:
            out[-1] = out[-1].rstrip()
        out.append(part)
    return "".join(out).strip(), items


_ARTICLE_BEFORE_SLOT_RE = re.compile(r"(?:(?<=\s)|^)(?:the|a|an)\s+$", re.IGNORECASE)

# ---------------------------------------------------------------------- cleaning up a generated reply

_GREETING = r"(?:hi|hello|hey|hiya|howdy|good\s+(?:morning|afternoon|evening))(?:\s+there)?"
# A reply's opening greeting and the punctuation and spaces after it ("Hi there! ", "Hey, ").
_LEADING_GREETING_RE = re.compile(rf"\s*{_GREETING}(?=[\s,.!?;:~\-–—]|$)[\s,.!?;:~\-–—]*", re.IGNORECASE)
# A user's greeting: at the start of the message or of a sentence or clause in it.
_USER_GREETING_RE = re.compile(rf"(?:^|[.!?,;:]\s*)\s*(?:{_GREETING}|greetings|good\s+day)(?![\w'’])", re.IGNORECASE)
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+(?=[,.!?;:](?:\W|$))")
_LEADING_PUNCT_RE = re.compile(r"^[\s,.!?;:~\-–—]+")
_COMMA_RUN_RE = re.compile(r",(?:\s*,)+")
_COMMA_BEFORE_END_RE = re.compile(r",+(?=[.!?])")
# A sentence that opens in lower case after another one ends ("Sure! have you seen [REC]").
_LOWER_OPENING_RE = re.compile(r"(?:(?<=[!?])|(?<=[^.]\.))(\s+)([a-z])")  # not after "...": "Wait... what?"
# A question about a movie that ends in a full stop ("have you seen [REC]." as a small generator or
# a hurried person writes it): it gets its question mark.
_QUESTION_AS_STATEMENT_RE = re.compile(
    r"(^|[.!?]\s+|\[REC\]\s+(?=(?-i:[A-Z])))((?:(?:so|ok|okay|oh|well|sure|hmm|yes|yeah)[,!]?\s+)?(?:have\s+you|have\s+u|did\s+you|do\s+you|would\s+you|are\s+you|"
    r"what\s+about|how\s+about)\b[^.!?\[]{0,40}\[REC\](?:\s*(?:,|or|and)\s*\[REC\])*(?:\s+(?:yet|before|too|then|instead|either|already))?)\.(?=\s|$)", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"[.!?]+(?=\s|$)")
# A question run on after a word with no stop ("Yup, it was great How about [REC]"): a new sentence.
_RUN_ON_QUESTION_RE = re.compile(r"(?<=[a-z])\s+(?=(?:How|What)\s+about\b|Have\s+you\b|Did\s+you\b|Do\s+you\b|Are\s+you\b|Would\s+you\b)")
# A slot standing alone as a later sentence ("What kind of movies do you like? [REC]."): said as a suggestion.
_BARE_SLOT_SENTENCE_RE = re.compile(r"([.!?]\s+)(\[REC\](?:\s*(?:,|or|and)\s*\[REC\])*)\s*[.!]?(?=\s+(?-i:[A-Z])|\s*$)")


def strip_greeting(text: str) -> str:
    """``text`` without the greeting it opens with ("Hi there! How about…" → "How about…"),
    the rest capitalised; ``text`` itself when it does not open with one; "" when it is all greeting."""
    rest = text
    while (match := _LEADING_GREETING_RE.match(rest)) and match.end():
        rest = rest[match.end():]
    if rest is text:
        return text
    rest = rest.strip()
    return rest[:1].upper() + rest[1:]


def greets(text: str) -> bool:
    """Whether a message greets ("Hi!", "hello there, …", "Thanks. Good morning")."""
    return bool(_USER_GREETING_RE.search(text.strip()))


def may_greet(context: DialogueContext) -> bool:
    """A reply may open with a greeting in the conversation's first reply or when the user greets."""
    first_reply = not any(turn.role == RECOMMENDER for turn in context.turns)
    user = user_turn(context)
    return first_reply or (user is not None and greets(user.text))


# A phrase of three words or more said twice in a row.
_REPEATED_PHRASE_RE = re.compile(r"\b((?:[\w'’]+[\s,]+){2,7}[\w'’]+)(?:[\s,]+\1\b)+", re.IGNORECASE)


def polish_template(template: str, keep_greeting: bool = True, keep_wellbeing: bool = True) -> str:
    """A generated reply (with ``[REC]`` slots) as tidy text: one space between words, none before
    punctuation, no leading greeting unless ``keep_greeting``, no answer to "how are you?" unless
    ``keep_wellbeing`` (:func:`drop_wellbeing`), no leading punctuation, a capital first (and
    after each sentence's end), a full stop last where the reply ends in a word, a question mark
    where a question ("have you seen [REC]", "how about [REC]") ends in a full stop; a sentence that repeats an earlier one of the
    reply ("Bye! Bye! Bye.") is said once, and so is a phrase of three words or more said twice in a
    row; a run of commas is one comma; a capitalised question run on after a word starts a sentence
    ("it was great How about [REC]" → "it was great. How about [REC]?"); a slot standing alone after the first sentence is a suggestion
    ("… do you like? [REC]." → "… do you like? How about [REC]?")."""
    text = _SPACE_BEFORE_PUNCT_RE.sub("", " ".join(template.split()))
    text = _COMMA_RUN_RE.sub(",", text)  # ",," or ", ," as a small generator writes it: one comma
    text = _COMMA_BEFORE_END_RE.sub("", text)  # "fun,." -> "fun."
    if not keep_wellbeing:
        text = drop_wellbeing(text, keep_greeting)
    if not keep_greeting:
        text = strip_greeting(text)
    text = _LEADING_PUNCT_RE.sub("", drop_repeated_sentences(text))
    text = _REPEATED_PHRASE_RE.sub(r"\1", text)  # "not too cerebral though not too cerebral though": once
    text = _TRAILING_ACK_RE.sub("", text)  # "How about [REC]? Ok.": an acknowledgement after the reply's point goes
    text = _RUN_ON_QUESTION_RE.sub(". ", text)
    if text and (text[-1].isalnum() or text.endswith((")", REC_TOKEN))):
        text += "."
    text = _QUESTION_AS_STATEMENT_RE.sub(r"\1\2?", text)
    text = _LOWER_OPENING_RE.sub(lambda m: m.group(1) + m.group(2).upper(), text)
    text = join_adjacent_slots(text)
    text = _PLURAL_SUBJECT_RE.sub(lambda m: f"{m.group(1)} {'were' if m.group(2).lower() == 'was' else 'are'}", text)
    text = _OBJECT_THEN_VERB_RE.sub(lambda m: f"{m.group(1)}, {'they' if m.group(2) else 'it'} {m.group(3) or m.group(4)}", text)
    text = _BARE_SLOT_SENTENCE_RE.sub(lambda m: f"{m.group(1)}How about {m.group(2).replace(' and ', ' or ')}?", text)
    return text[:1].upper() + text[1:]


def drop_wellbeing(text: str, keep_greeting: bool = True) -> str:
    """``text`` without its sentences that answer "how are you?" (:data:`WELLBEING_ANSWER_RE`: "Hi, I am
    great.", "Good, thanks for asking!"), a greeting opening such a sentence kept when
    ``keep_greeting`` ("Hi!"); ``text`` itself when nothing else would be left."""
    kept, changed = [], False
    for a, b in sentence_spans(text):
        sentence = text[a:b].strip()
        if WELLBEING_ANSWER_RE.search(sentence):
            changed = True
            greeting = _LEADING_GREETING_RE.match(sentence)
            if keep_greeting and not kept and greeting and greeting.end():
                kept.append(sentence[: greeting.end()].strip(" ,;:~-–—") + "!")
            continue
        kept.append(sentence)
    rest = " ".join(kept)
    return rest if changed and has_words(strip_greeting(rest)) else text


# A last sentence that only acknowledges ("Ok.", "Alright!") after another sentence.
_TRAILING_ACK_RE = re.compile(r"(?<=[.!?])\s+(?:ok(?:ay)?|alright|all\s+right|k|cool)\s*[.!]*\s*$", re.IGNORECASE)
# Two movies or more as the subject of a singular verb before an adjective ("[REC] and [REC] was good
# too"): the verb agrees ("were"); "[REC] and [REC] is a good one" (a noun after it) is left alone.
_PLURAL_SUBJECT_RE = re.compile("(" + re.escape(REC_TOKEN) + r"(?:\s*,\s*" + re.escape(REC_TOKEN) + r")*,?\s+and\s+" + re.escape(REC_TOKEN)
                                + r")\s+(was|is)(?=\s+(?:(?:really|pretty|very|so|both|also|all)\s+)?(?:good|great|awesome|fun|funny|amazing|"
                                r"excellent|hilarious|scary|fantastic|wonderful|cute|classics|favou?rites)\b)", re.IGNORECASE)
# Movies as the object of "I recommend" and then the subject of a verb ("I recommend [REC], [REC] and
# [REC] are great movies", as slots joined into a list read): the verb gets its own subject
# ("..., they are great movies").
_OBJECT_THEN_VERB_RE = re.compile(r"\b(I\s+(?:would\s+|'d\s+|really\s+|also\s+)?(?:recommend|suggest|love|like|loved|liked|enjoyed)\s+"
                                  + re.escape(REC_TOKEN) + r"((?:\s*,\s*" + re.escape(REC_TOKEN) + r")*,?\s+and\s+" + re.escape(REC_TOKEN)
                                  + r")?)\s+(?(2)(are|were)|(is|was))\b")
_SLOT_RUN_RE = re.compile(re.escape(REC_TOKEN) + r"(?:\s+" + re.escape(REC_TOKEN) + r")+")
_LIST_GOES_ON_RE = re.compile(r"\s*,?\s+(?:and|or)\s+" + re.escape(REC_TOKEN))


def join_adjacent_slots(text: str) -> str:
    """Movie slots the generator wrote one after the other ("I recommend [REC] [REC] and [REC]", "Have
    you seen [REC] [REC]?") as a list: commas between them, and "or" (in a question) or "and" before
    the last one unless the reply goes on with "and [REC]" itself."""
    def joined(match: re.Match) -> str:
        count = match.group(0).count(REC_TOKEN)
        rest = text[match.end():]
        if _LIST_GOES_ON_RE.match(rest):
            return ", ".join([REC_TOKEN] * count)
        end = re.search(r"[.!?]", rest)
        word = "or" if end is not None and end.group(0) == "?" else "and"
        return ", ".join([REC_TOKEN] * (count - 1)) + f" {word} {REC_TOKEN}"

    return _SLOT_RUN_RE.sub(joined, text)


def drop_repeated_sentences(text: str) -> str:
    """``text`` without the sentences whose words repeat an earlier sentence's (case and punctuation aside)."""
    seen, kept = set(), []
    for a, b in sentence_spans(text):
        sentence = text[a:b].strip()
        key = " ".join(re.findall(r"[\w\[\]]+", sentence.lower()))
        if key and key in seen:
            continue
        seen.add(key)
        kept.append(sentence)
    return " ".join(kept)


def has_words(text: str | None) -> bool:
    """Whether ``text`` says something besides ``[REC]`` slots, spaces and punctuation."""
    return bool(text) and any(ch.isalnum() for ch in text.replace(REC_TOKEN, ""))


def join_sentences(first: str, second: str) -> str:
    """Two pieces of text as consecutive sentences (a full stop added where the first lacks one)."""
    first = first.rstrip()
    if first and first[-1] not in ".!?":
        first += "."
    return f"{first} {second}".strip()


_PREFERENCE_QUESTION_RE = re.compile(
    r"\bwhat\s+(?:kind|kinds|type|types|sort|genre|genres)\s+of\b|\bwhat\s+(?:are\s+you|do\s+you)\s+(?:looking\s+for|like|enjoy|want)\b|"
    r"\bwhat\s+(?:can|could)\s+i\s+(?:help|do)\b|\bhow\s+can\s+i\s+help\b|"
    r"\b(?:can|may|could|shall)\s+i\s+(?:recommend|suggest|help\s+you\s+find)\s+(?:you\s+)?(?:a|some|any)\s+(?:good\s+)?(?:movies?|films?)\b|"
    r"\bwould\s+you\s+like\s+(?:a|some|me\s+to\s+(?:recommend|suggest))\b", re.IGNORECASE)


def drop_preference_questions(text: str, protected: Iterable[tuple[int, int]] = ()) -> str:
    """``text`` without sentences asking what the user likes ("What kind of movies do you like?"): the
    user has just said it, and the reply recommends. A sentence that also names a movie of
    ``protected`` (title spans) keeps its part up to the last title ("Have you seen Groundhog Day
    (1993) What type of comedies do you like?" → "Have you seen Groundhog Day (1993)?")."""
    protected = list(protected)
    spans = sentence_spans(text, protected)
    kept = []
    for a, b in spans:
        sentence = text[a:b].strip()
        question = _PREFERENCE_QUESTION_RE.search(text[a:b])
        if question is None or not sentence.endswith("?"):
            kept.append(sentence)
            continue
        last_title = max((end for start, end in protected if a <= start and end <= b), default=None)
        if last_title is not None:  # the question after the titles goes; before them, the sentence stays whole
            kept.append(text[a:last_title].strip() + "?" if question.start() >= last_title - a else sentence)
    result = " ".join(k for k in kept if k)
    return result if has_words(result) else text


def kg_neighbours(index: GraphIndex, entities: Iterable[int]) -> set[int]:
    """The entities that share a triple with any of ``entities`` (their KG facts' other ends)."""
    return {fact.other(entity) for entity in entities for fact in index.incident.get(entity, ())}


def title_spans(text: str, titles: Iterable[str]) -> list[tuple[int, int]]:
    """Where each title occurs in ``text`` (character spans)."""
    spans = []
    for title in set(titles):
        start = text.find(title) if title else -1
        while start >= 0:
            spans.append((start, start + len(title)))
            start = text.find(title, start + len(title))
    return spans


def sentence_spans(text: str, protected: Iterable[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """``text`` split after each run of . ! ? followed by a space or the end, never inside a
    ``protected`` span (a movie title such as "Airplane! (1980)")."""
    protected = list(protected)
    spans, start = [], 0
    for match in _SENTENCE_END_RE.finditer(text):
        if any(a <= match.start() < b for a, b in protected):
            continue
        spans.append((start, match.end()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def drop_ungrounded(text: str, named: Iterable[LinkedEntity], allowed: set[int],
                    protected: Iterable[tuple[int, int]] = ()) -> str:
    """``text`` without the sentences that name a person or genre (``named``: the entities linked in
    ``text``) not in ``allowed``; entities inside a ``protected`` span (a movie title) do not count."""
    protected = list(protected)
    offending = [e.start for e in named if e.kind != "movie" and e.entity not in allowed
                 and not any(a <= e.start < b for a, b in protected)]
    if not offending:
        return text
    kept = [text[a:b].strip() for a, b in sentence_spans(text, protected)
            if not any(a <= position < b for position in offending)]
    return " ".join(sentence for sentence in kept if sentence)
