"""Interactive evaluation: a simulated seeker talks to a system, whole conversations from scratch.

    python -m crs.evaluate --model crs=checkpoints/default,popularity --split test --tasks interactive \
        [--limit N] [--max-turns 5] [--simulator rule|learned|both] [--seeker-model checkpoints/seeker]

**Targets** (:func:`profiles`). For each test dialogue, the movies the seeker liked among those the
recommender suggested (the seeker's questionnaire, ``suggested`` and ``liked``; the recommender's
questionnaire when the seeker's is empty). The seeker's preferences are the facts of its first
target (catalogue genres, director, stars, decade) and the movies it named as liked without them
being suggested. Dialogues without a target are skipped.

**Simulators**, one interface (:class:`RuleSeeker`, :class:`LearnedSeeker`). Each opens with a liked
movie or a target's genre; answers a reply without a movie with a fact it has not revealed yet;
turns a recommended non-target down with a reason from the facts ("not a fan of horror movies",
"I'd rather have something with Tom Hanks"); accepts when a target (or another catalogue entry of
the same film) is recommended, which ends the conversation. The rule-based seeker writes templates;
the learned one writes with the seeker generator (``python -m train seeker``: the conv stage's code
on the seeker side of ReDial), prompted with the act's steps — ``[goal]`` and the fact as
``[topic]`` — while the accept / reject decision stays the rule-based policy's.

**Leakage.** A seeker turn never names a target: every candidate sentence is screened (the target's
titles as whole words, and the product's entity linker) and the next candidate is taken when one
leaks; :func:`leaks` checks every simulated turn again, independently, and the harness reports the
count over the run.

**Systems** (:class:`ChatSystem`, :class:`RankerSystem`): a checkpoint through the chat's own turn
(:func:`crs.serve.chat.chat_turn`: rejections, the request state, KG answers), and any recommender
(popularity, repeat-context, the tuning-free ranker) behind a one-line template that recommends its
best movie not mentioned yet.

Metrics: success@t (a target recommended within t system turns), turns to success (successful
conversations), and Recall@1/10 of the system's ranking after each system turn (share of the
targets in its top k; a finished conversation keeps its last ranking). Everything is seeded by the
dialogue id: the same run gives the same transcripts.
"""

from __future__ import annotations

import random
import re
import zlib
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterable, Iterator, Sequence

from tqdm.auto import tqdm

from crs.data.catalogue import Catalogue, Movie, duplicates
from crs.data.context import DialogueContext
from crs.data.redial import RECOMMENDER, SEEKER, Dialogue, Turn
from crs.gen.reply import ReplyGenerator
from crs.gen.steps import NONE, Steps
from crs.serve.chat import ChatState, chat_turn, is_rejection
from crs.text.render import render_turns
from crs.text.tokens import REC_TOKEN

MAX_TURNS = 5
SIMULATORS = ("rule", "learned")
KS = (1, 10)

# ------------------------------------------------------------------------------------ targets


@dataclass(frozen=True)
class Fact:
    kind: str  # "genre" | "director" | "actor" | "decade"
    value: str  # "comedy", "Tom Hanks", "1990s"


@dataclass
class Profile:
    """What a simulated seeker wants and knows, from one test dialogue."""

    conversation_id: str
    targets: list[int]  # ReDial ids, in order of mention in the dialogue
    liked: list[int]  # movies the seeker named as liked (never a target)
    facts: list[Fact]  # of the first target, in the order the seeker reveals them


def decade(year: int | None) -> str:
    return f"{year // 10 * 10}s" if year else ""


def movie_facts(movie: Movie) -> list[Fact]:
    """A movie's facts as the seeker may say them: genres, director, two stars, decade."""
    facts = [Fact("genre", g) for g in movie.genres]
    facts += [Fact("director", d) for d in movie.directors[:1]]
    facts += [Fact("actor", s) for s in movie.stars[:2]]
    if movie.year:
        facts.append(Fact("decade", decade(movie.year)))
    return facts


def profiles(dialogues: Iterable[Dialogue], catalogue: Catalogue, same_film: Callable[[list[int]], list[int]] | None = None,
             seed: int = 0) -> list[Profile]:
    """The profile of every dialogue with a target (see the module docstring); ``same_film(ids)``:
    the other catalogue entries of those films (a target's twin is never a liked movie)."""
    out = []
    for dialogue in dialogues:
        answers = dialogue.seeker_feedback or dialogue.recommender_feedback
        order = {m: i for i, m in enumerate(m for t in dialogue.turns for m in t.movies)}
        ranked = sorted(answers, key=lambda m: order.get(m, len(order)))
        targets = [m for m in ranked if answers[m].suggested == 1 and answers[m].liked == 1 and m in catalogue]
        if not targets:
            continue
        blocked = set(targets) | set(same_film(targets) if same_film else ())
        liked = [m for m in ranked if answers[m].suggested == 0 and answers[m].liked == 1 and m in catalogue and m not in blocked]
        rng = random.Random(seed_of(dialogue.conversation_id, salt(seed)))
        facts = movie_facts(catalogue.by_id(targets[0]))
        genres = [f for f in facts if f.kind == "genre"]
        rest = [f for f in facts if f.kind != "genre"]
        rng.shuffle(rest)
        facts = genres[:1] + rest + genres[1:]  # a genre first: what people say first
        out.append(Profile(dialogue.conversation_id, targets, liked, facts))
    return out


def seed_of(text: str, salt: str = "") -> int:
    return zlib.crc32(f"{salt}:{text}".encode("utf-8"))


def salt(seed: int, name: str = "") -> str:
    """The salt of a run's random choices: the seeker's name, and the run's seed when it is not 0."""
    return f"{name}:{seed}" if seed else name


# ------------------------------------------------------------------------------------ leakage


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))) + " "


SHORT_TITLE = 4  # letters: a one-word title this short ("It", "Up", "Her", "Big") is also a common word


class LeakCheck:
    """Whether a seeker turn names one of the targets: a target's title (any catalogue entry of the
    film, without the year) as whole words, case-insensitively; a one-word title of at most
    :data:`SHORT_TITLE` letters only as written with its capital, not opening a sentence ("It" the
    film, not "it" the pronoun); or a target that the product's entity linker finds in the text."""

    def __init__(self, catalogue: Catalogue, targets: Sequence[int], link: Callable | None = None,
                 same_film: Callable[[list[int]], list[int]] | None = None):
        # Each target with the ids of its other catalogue entries.
        self.films = {t: {t, *(same_film([t]) if same_film else ())} for t in targets}
        self.ids = {m for film in self.films.values() for m in film}
        titles = {catalogue.by_id(m).title.strip() for m in self.ids if m in catalogue}
        self.short = [re.compile(rf"(?<![.!?]\s)(?<!^)\b{re.escape(t)}\b") for t in titles
                      if len(_words(t).split()) == 1 and len(_words(t).strip()) <= SHORT_TITLE]
        self.titles = sorted({_words(t).strip() for t in titles if len(_words(t).split()) > 1 or len(_words(t).strip()) > SHORT_TITLE} - {""})
        self.link = link

    def __call__(self, text: str) -> bool:
        words = _words(text)
        if any(f" {title} " in words for title in self.titles) or any(p.search(text.strip()) for p in self.short):
            return True
        return self.link is not None and any(e.movie_id in self.ids for e in self.link(text))


# ------------------------------------------------------------------------------------ simulators


@dataclass
class SeekerTurn:
    text: str
    act: str  # "open" | "inform" | "reject" | "accept"
    fact: Fact | None = None  # the fact the turn reveals or gives as a reason
    item: int | None = None  # a liked movie the turn names
    fallback: bool = False  # the learned seeker's text was unusable: the rule-based sentence was said


@dataclass
class SeekerState:
    profile: Profile
    rng: random.Random
    check: LeakCheck
    revealed: list[Fact] = field(default_factory=list)
    named: list[int] = field(default_factory=list)  # liked movies named so far
    history: list[dict] = field(default_factory=list)  # {"role": "user"|"assistant", "content"}

    def unrevealed(self) -> list[Fact]:
        return [f for f in self.profile.facts if f not in self.revealed]

    def unnamed(self) -> list[int]:
        return [m for m in self.profile.liked if m not in self.named]


def a_or_an(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


FACT_TEMPLATES = {
    "genre": ["I like {value} movies.", "I'm in the mood for {a} {value} movie.", "Something {value} would be great."],
    "director": ["I'm a fan of {value}'s films.", "Something directed by {value} would be nice."],
    "actor": ["I like movies with {value}.", "Something starring {value} would be great."],
    "decade": ["Something from the {value} would be nice.", "I like movies from the {value}."],
}
REASON_TEMPLATES = {
    "genre": ["I'm more into {value} movies.", "I'd prefer something {value}."],
    "director": ["I'd rather have something by {value}.", "Something directed by {value} would be better."],
    "actor": ["I'd rather have something with {value}.", "I'd prefer something starring {value}."],
    "decade": ["I'd prefer something from the {value}.", "Something from the {value} would be better."],
}
DISLIKED_GENRE = ["Not a fan of {value} movies, though.", "I don't really like {value} movies."]
REJECT_OPENERS = ["Hmm, not that one.", "No thanks.", "I've already seen that one.", "Nah, something else."]
ACCEPT = ["That sounds great, I'll watch that one. Thanks!", "Perfect, I'll check that out. Thank you!",
          "Yes, that's the one I was hoping for. Thanks!"]
ASK = ["Any suggestions?", "What would you recommend?", "Can you recommend something?"]
OPEN_LIKED = ["Hi! I really liked {title}. Can you recommend something similar?",
              "Hello, I loved {title}. What else should I watch?"]
OPEN_FACT = ["Hi! {fact} Any suggestions?", "Hello! {fact} What would you recommend?"]
SAFE_LAST = ["Something else, please.", "Next, please.", "Hmm."]
_LIKED_QUESTION = re.compile(r"\b(favou?rite|liked?|enjoyed|loved?|seen)\b", re.I)


class RuleSeeker:
    """The rule-based simulated seeker (see the module docstring)."""

    name = "rule"

    def __init__(self, catalogue: Catalogue, link: Callable | None = None, same_film: Callable | None = None, seed: int = 0):
        self.catalogue, self.link, self.same_film, self.seed = catalogue, link, same_film, seed

    def start(self, profile: Profile) -> SeekerState:
        check = LeakCheck(self.catalogue, profile.targets, self.link, self.same_film)
        return SeekerState(profile, random.Random(seed_of(profile.conversation_id, salt(self.seed, self.name))), check)

    # --------------------------------------------------------------- the policy

    def is_target(self, state: SeekerState, items: Sequence[int]) -> bool:
        return any(m in state.check.ids for m in items)

    def plan_open(self, state: SeekerState) -> SeekerTurn:
        facts = state.unrevealed()
        if state.unnamed() and (not facts or state.rng.random() < 0.5):
            return SeekerTurn("", "open", item=state.unnamed()[0])
        return SeekerTurn("", "open", fact=facts[0] if facts else None)

    def plan(self, state: SeekerState, reply: str, items: Sequence[int]) -> SeekerTurn:
        if items and self.is_target(state, items):
            return SeekerTurn("", "accept")
        if items:
            return SeekerTurn("", "reject", fact=self.reason(state, items[0]))
        if state.unnamed() and _LIKED_QUESTION.search(reply) and "?" in reply:
            return SeekerTurn("", "inform", item=state.unnamed()[0])
        facts = state.unrevealed()
        return SeekerTurn("", "inform", fact=facts[0] if facts else None)

    def reason(self, state: SeekerState, movie_id: int) -> Fact | None:
        """Why the seeker turns ``movie_id`` down: a genre of it no target has (kind "not-genre"),
        else the next fact not revealed yet, else none."""
        movie = self.catalogue.by_id(movie_id) if movie_id in self.catalogue else None
        target_genres = {g for t in state.profile.targets if t in self.catalogue for g in self.catalogue.by_id(t).genres}
        disliked = [g for g in (movie.genres if movie else ()) if g not in target_genres]
        if disliked and state.rng.random() < 0.5:
            return Fact("not-genre", disliked[0])
        facts = state.unrevealed()
        return facts[0] if facts else (Fact("not-genre", disliked[0]) if disliked else None)

    # --------------------------------------------------------------- the words

    def candidates(self, state: SeekerState, turn: SeekerTurn) -> list[str]:
        """The rule-based sentences for ``turn``, best first."""
        rng = state.rng
        pick = lambda options: options[rng.randrange(len(options))]  # noqa: E731
        fact = turn.fact
        title = self.catalogue.by_id(turn.item).display_name if turn.item is not None else ""
        if turn.act == "accept":
            return [pick(ACCEPT)] + ACCEPT
        if turn.act == "open":
            if title:
                return [pick(OPEN_LIKED).format(title=title)]
            if fact:
                return [pick(OPEN_FACT).format(fact=phrase(pick(FACT_TEMPLATES[fact.kind]), fact))]
            return ["Hi! Can you recommend a movie?"]
        if turn.act == "reject":
            opener = pick(REJECT_OPENERS)
            if fact is None:
                reasons = [""]
            elif fact.kind == "not-genre":
                reasons = [phrase(t, fact) for t in DISLIKED_GENRE]
            else:
                reasons = [phrase(t, fact) for t in REASON_TEMPLATES[fact.kind]]
            return [f"{opener} {r}".strip() for r in reasons] + [f"{o} {reasons[0]}".strip() for o in REJECT_OPENERS]
        if title:
            return [f"I really liked {title}. {pick(ASK)}"]
        if fact:
            return [f"{phrase(t, fact)} {pick(ASK)}" for t in FACT_TEMPLATES[fact.kind]]
        return list(ASK)

    def fact_sentence(self, state: SeekerState, fact: Fact, act: str) -> str:
        """One sentence saying ``fact``: as a reason when turning a movie down, else as a taste."""
        if fact.kind == "not-genre":
            options = DISLIKED_GENRE
        else:
            options = REASON_TEMPLATES[fact.kind] if act == "reject" else FACT_TEMPLATES[fact.kind]
        return phrase(options[state.rng.randrange(len(options))], fact)

    def words(self, state: SeekerState, turn: SeekerTurn) -> SeekerTurn:
        turn.text = self.safe(state, self.candidates(state, turn))
        return turn

    def safe(self, state: SeekerState, candidates: Iterable[str]) -> str:
        for text in list(candidates) + SAFE_LAST:
            if text and not state.check(text):
                return text
        return "..."

    # --------------------------------------------------------------- one turn

    def say(self, state: SeekerState, turn: SeekerTurn) -> SeekerTurn:
        turn = self.words(state, turn)
        if turn.fact is not None and turn.fact.kind != "not-genre" and turn.fact not in state.revealed:
            state.revealed.append(turn.fact)
        if turn.item is not None:
            state.named.append(turn.item)
        state.history.append({"role": "user", "content": turn.text})
        return turn

    def open(self, state: SeekerState) -> SeekerTurn:
        return self.say(state, self.plan_open(state))

    def respond(self, state: SeekerState, reply: str, items: Sequence[int]) -> SeekerTurn:
        state.history.append({"role": "assistant", "content": reply})
        return self.say(state, self.plan(state, reply, items))


def phrase(template: str, fact: Fact) -> str:
    text = template.format(value=fact.value, a=a_or_an(fact.value))
    return text.replace("..", ".")  # a name ending in a full stop ("Robert Downey Jr.")


class LearnedSeeker(RuleSeeker):
    """The rule-based policy, the words from the seeker generator (:mod:`train.seeker`).

    Each act becomes forced prompt steps: the opening with a liked movie ``[goal] recommend [item]
    <title>``, otherwise ``[goal] greet`` (opening) or ``chat`` with the fact as ``[topic]``; a turn
    down is ``chat`` with the reason as topic, after a short rejection phrase when the generated text
    does not turn the movie down itself (the system must know the movie was refused); acceptance is
    ``farewell``. The greedy reply is tried first, then nucleus samples (:meth:`finish` says what a
    usable one is); when none is usable — it leaks a target, leaves the fact unsaid, asks a question —
    the rule-based sentence is said instead (counted as a fallback)."""

    name = "learned"
    samples = 6  # nucleus samples tried after the greedy reply before falling back

    def __init__(self, catalogue: Catalogue, generator, link: Callable | None = None, same_film: Callable | None = None,
                 seed: int = 0):
        super().__init__(catalogue, link, same_film, seed)
        self.generator = generator

    def words(self, state: SeekerState, turn: SeekerTurn) -> SeekerTurn:

        fact = turn.fact
        spoken = fact is not None and fact.kind in PROMPTED_FACTS  # a KG entity the [topic] step can carry
        title = self.catalogue.by_id(turn.item).display_name if turn.item is not None else ""
        goal = {"accept": "farewell", "open": "recommend" if title else "greet"}.get(turn.act, "recommend" if title else "chat")
        steps = Steps(goal, [fact.value] if spoken else [], title or NONE)
        # The seeker generator reads the dialogue with the speakers swapped: the seeker in the recommender's place.
        swapped = [Turn(RECOMMENDER if m["role"] == "user" else SEEKER, m["content"], []) for m in state.history]
        context, seed = render_turns(swapped, {}, "prompt"), state.rng.randrange(2**31)
        # The greedy reply first; the samples are drawn only when it does not do the job.
        for samples, greedy in ((0, True), (self.samples, False)):
            for text in self.generator.reply_candidates(context, steps, samples, seed, greedy=greedy):
                text = self.finish(state, turn, text, title)
                if text is not None:
                    turn.text = text
                    return turn
        turn.fallback = True
        return super().words(state, turn)

    def finish(self, state: SeekerState, turn: SeekerTurn, text: str, title: str) -> str | None:
        """A generated candidate made ready to say, or None when it does not do the act's job: a liked
        movie's ``[REC]`` slot filled; a fact with no KG entity (a decade, a genre turned down that the
        text does not turn down) said by the rule-based sentence after it; a turn-down opened with a
        short rejection when the text does not read as one."""

        fact = turn.fact
        if title:
            text = text.replace(REC_TOKEN, title, 1)
        text = " ".join(text.split())
        lowered = text.lower()
        if not text or REC_TOKEN in text or "?" in text and turn.act != "open" or (title and title not in text) \
                or _DANGLING.search(text):
            return None
        if turn.act == "accept":
            return text if _ACCEPTING.search(text) and not is_rejection(text) else None
        if fact is not None and fact.kind in PROMPTED_FACTS and fact.value.lower() not in lowered:
            return None
        if fact is not None and fact.kind == "not-genre" and not (fact.value.lower() in lowered and _NEGATION.search(text)):
            text = f"{text} {self.fact_sentence(state, fact, turn.act)}"
        elif fact is not None and fact.kind == "decade":
            text = f"{text} {self.fact_sentence(state, fact, turn.act)}"
        if turn.act == "reject" and not is_rejection(text):
            text = f"{state.rng.choice(REJECT_OPENERS)} {text}"
        return None if state.check(text) else text


_DANGLING = re.compile(r"\b(like|with|about|a|an|the|for|of|and|as|to|by|is)\W*$", re.I)  # a sentence cut short
_ACCEPTING = re.compile(r"\b(thanks?|thank you|bye|great|perfect|check (it|that|those|them) out|watch)\b", re.I)
_NEGATION = re.compile(r"\b(not|don'?t|doesn'?t|never|no|hate|dislike|isn'?t)\b", re.I)
PROMPTED_FACTS = ("genre", "director", "actor")


# ------------------------------------------------------------------------------------ systems


@dataclass
class SystemTurn:
    reply: str
    items: list[int]  # movies the reply recommends
    ranking: list[int]  # the system's top movies after this turn


class ChatSystem:
    """A checkpoint through the chat's own turn (:func:`crs.serve.chat.chat_turn`)."""

    def __init__(self, pipeline, name: str):
        self.pipeline, self.name = pipeline, name

    def new(self):

        return ChatState()

    def turn(self, state, text: str) -> tuple[object, SystemTurn]:

        result = chat_turn(self.pipeline, text, state)
        ranking = [m for m, _ in result.details.ranking] if result.details else []
        return result.state, SystemTurn(result.reply, list(result.items), ranking)


@dataclass
class _RankerState:
    turns: list[Turn] = field(default_factory=list)
    mentioned: list[int] = field(default_factory=list)


class RankerSystem:
    """A recommender behind a template: each turn recommends its best movie not mentioned yet."""

    def __init__(self, model, link: Callable, name: str, same_film: Callable | None = None, k: int = max(KS)):
        self.model, self.link, self.name, self.same_film, self.k = model, link, name, same_film, k

    def new(self) -> _RankerState:
        return _RankerState()

    def turn(self, state: _RankerState, text: str) -> tuple[_RankerState, SystemTurn]:
        catalogue = self.model.catalogue
        movies = [e.movie_id for e in self.link(text) if e.movie_id is not None]
        turns = state.turns + [Turn(SEEKER, text, movies)]
        mentioned = list(dict.fromkeys(state.mentioned + movies))
        context = DialogueContext(turns=turns, mentioned_movies=mentioned)
        scores = self.model.score_items(context)
        left_out = mentioned + (self.same_film(mentioned) if self.same_film else [])
        ranking = [m for m, _ in self.model.best_of(scores, [catalogue.index(m) for m in left_out if m in catalogue], self.k)]
        items = ranking[:1]
        reply = f"How about {catalogue.by_id(items[0]).display_name}?" if items else "Tell me more about what you like."
        state = _RankerState(turns + [Turn(RECOMMENDER, reply, items)], list(dict.fromkeys(mentioned + items)))
        return state, SystemTurn(reply, items, ranking)


# ------------------------------------------------------------------------------------ playing


@dataclass
class Conversation:
    conversation_id: str
    system: str
    simulator: str
    targets: list[int]
    messages: list[dict]  # {"role": "user"|"assistant", "content", "act"?, "items"?}
    success_turn: int | None  # system turn (1-based) whose reply recommended a target; None: none did
    recall: dict[str, list[float]]  # "recall@k" → one value per system turn (after success: the last)
    leaked: int  # seeker turns that name a target (the harness's own check)

    @property
    def fallbacks(self) -> int:
        """Learned seeker turns said with the rule-based sentence."""
        return sum(bool(m.get("fallback")) for m in self.messages)


def play(system, seeker: RuleSeeker, profile: Profile, max_turns: int = MAX_TURNS, check: LeakCheck | None = None
         ) -> Conversation:
    """One simulated conversation of at most ``max_turns`` system turns; ``check``: the harness's own
    leak check of every seeker turn (default: one built like the seeker's)."""
    for step in play_steps(system, seeker, profile, max_turns, check):
        pass
    return step  # type: ignore[return-value]


def play_steps(system, seeker: RuleSeeker, profile: Profile, max_turns: int = MAX_TURNS, check: LeakCheck | None = None,
               lock: ContextManager | None = None) -> Iterator[list[dict] | Conversation]:
    """:func:`play` message by message: the messages so far after each one, then the :class:`Conversation`;
    ``lock`` is held while the system or the seeker computes (the UI's model lock), never between messages."""
    lock = lock or nullcontext()
    with lock:
        state = seeker.start(profile)
        system_state = system.new()
        turn = seeker.open(state)
    check = check or LeakCheck(seeker.catalogue, profile.targets, seeker.link, seeker.same_film)
    messages = [{"role": "user", "content": turn.text, "act": turn.act, "fallback": turn.fallback}]
    yield list(messages)
    recall: dict[str, list[float]] = {f"recall@{k}": [] for k in KS}
    success, leaked = None, int(check(turn.text))
    for number in range(1, max_turns + 1):
        with lock:
            system_state, answer = system.turn(system_state, turn.text)
        messages.append({"role": "assistant", "content": answer.reply, "items": answer.items})
        yield list(messages)
        for k in KS:
            top = set(answer.ranking[:k])
            recall[f"recall@{k}"].append(sum(bool(film & top) for film in state.check.films.values()) / len(state.check.films))
        with lock:
            turn = seeker.respond(state, answer.reply, answer.items)
        messages.append({"role": "user", "content": turn.text, "act": turn.act, "fallback": turn.fallback})
        yield list(messages)
        leaked += int(check(turn.text))
        if turn.act == "accept":
            success = number
            break
    for values in recall.values():
        values += [values[-1] if values else 0.0] * (max_turns - len(values))
    yield Conversation(profile.conversation_id, system.name, seeker.name, list(profile.targets), messages, success, recall, leaked)


@dataclass
class InteractiveResult:
    system: str
    simulator: str
    max_turns: int
    conversations: list[Conversation]

    def summary(self) -> dict:
        n = len(self.conversations)
        mean = lambda values: round(sum(values) / len(values), 4) if values else None  # noqa: E731
        out: dict = {"conversations": n}
        for t in range(1, self.max_turns + 1):
            out[f"success@{t}"] = mean([float(c.success_turn is not None and c.success_turn <= t) for c in self.conversations])
        out["turns_to_success"] = mean([float(c.success_turn) for c in self.conversations if c.success_turn is not None])
        for k in KS:
            out[f"recall@{k}_by_turn"] = [mean([c.recall[f"recall@{k}"][t] for c in self.conversations]) for t in range(self.max_turns)]
        out["leaked_turns"] = sum(c.leaked for c in self.conversations)
        out["seeker_turns"] = sum(sum(m["role"] == "user" for m in c.messages) for c in self.conversations)
        out["fallback_turns"] = sum(c.fallbacks for c in self.conversations)
        by_act: dict[str, list[int]] = {}
        for c in self.conversations:
            for m in c.messages:
                if m["role"] == "user":
                    by_act.setdefault(m["act"], []).append(int(bool(m.get("fallback"))))
        out["fallback_share_by_act"] = {act: mean(flags) for act, flags in sorted(by_act.items())}
        return out


def evaluate_interactive(system, seeker: RuleSeeker, people: Sequence[Profile], max_turns: int = MAX_TURNS,
                         progress: bool = True) -> InteractiveResult:
    """Every profile played against ``system``, each seeker turn checked for leaks by :func:`play`'s own check."""
    conversations = [play(system, seeker, p, max_turns)
                     for p in tqdm(people, desc=f"interactive {system.name} / {seeker.name}", unit="dialogue", disable=not progress)]
    return InteractiveResult(system.name, seeker.name, max_turns, conversations)


# ------------------------------------------------------------------------------------ reporting


def agreement(results: Sequence[InteractiveResult]) -> dict[str, float]:
    """For each system played by both simulators: the share of dialogues where they agree on success."""
    by_system: dict[str, dict[str, InteractiveResult]] = {}
    for result in results:
        by_system.setdefault(result.system, {})[result.simulator] = result
    out = {}
    for system, runs in by_system.items():
        if len(runs) == 2:
            a, b = (runs[name] for name in SIMULATORS)
            other = {c.conversation_id: c.success_turn is not None for c in b.conversations}
            same = [(c.success_turn is not None) == other[c.conversation_id] for c in a.conversations if c.conversation_id in other]
            out[system] = round(sum(same) / len(same), 4) if same else None
    return out


def transcript_markdown(conversation: Conversation, catalogue: Catalogue) -> str:
    targets = ", ".join(catalogue.by_id(t).display_name for t in conversation.targets if t in catalogue)
    outcome = f"success at system turn {conversation.success_turn}" if conversation.success_turn else "no success"
    lines = [f"**{conversation.conversation_id}** ({conversation.system}, {conversation.simulator} seeker; {outcome}; "
             f"targets revealed at the end: {targets})", ""]
    for message in conversation.messages:
        who = "seeker" if message["role"] == "user" else "system"
        act = f" *({message['act']})*" if message.get("act") else ""
        lines.append(f"- {who}{act}: {message['content']}")
    return "\n".join(lines)


def interactive_markdown(results: Sequence[InteractiveResult], catalogue: Catalogue, transcripts: int = 5, seed: int = 0) -> str:
    if not results:
        return ""
    max_turns = results[0].max_turns
    lines = ["## Interactive evaluation (simulated seeker)", "",
             "Each test dialogue with a target (a movie the seeker liked among those suggested) is played from scratch "
             f"for at most {max_turns} system turns against a simulated seeker that never names a target. success@t: share of "
             "conversations where a target was recommended within t system turns; turns: mean system turns to success; "
             "R@k by turn: share of the targets in the system's top k after each system turn.", ""]
    success = " | ".join(f"success@{t}" for t in range(1, max_turns + 1))
    lines += [f"| system | seeker | conversations | {success} | turns | R@1 by turn | R@10 by turn | leaked turns | fallback turns |",
              "|---" * (max_turns + 8) + "|"]
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    for result in results:
        s = result.summary()
        values = " | ".join(fmt(s[f"success@{t}"]) for t in range(1, max_turns + 1))
        by_turn = lambda key: " / ".join(fmt(v) for v in s[key])  # noqa: E731
        turns = "–" if s["turns_to_success"] is None else f"{s['turns_to_success']:.2f}"
        lines.append(f"| {result.system} | {result.simulator} | {s['conversations']:,} | {values} | {turns} | "
                     f"{by_turn('recall@1_by_turn')} | {by_turn('recall@10_by_turn')} | {s['leaked_turns']} of {s['seeker_turns']:,} | "
                     f"{s['fallback_turns']} |")
    agree = agreement(results)
    if agree:
        lines += ["", "Agreement of the two simulators on success (share of dialogues): "
                  + "; ".join(f"{system} {fmt(value)}" for system, value in agree.items()) + "."]
    first = results[0].system
    for result in (r for r in results if r.system == first):
        picked = random.Random(seed).sample(range(len(result.conversations)), min(transcripts, len(result.conversations)))
        lines += ["", f"### Transcripts: {first}, {result.simulator} seeker (seed {seed})", ""]
        lines += ["\n\n".join(transcript_markdown(result.conversations[i], catalogue) for i in sorted(picked))]
    return "\n".join(lines) + "\n"


def interactive_systems(loaded: list[tuple[object, object]], catalogue: Catalogue, config) -> tuple[list, Callable, Callable]:
    """The systems to play (a chat per checkpoint, a template around every other recommender), the
    entity linker and the same-film lookup."""

    pipeline = next((p for _, p in loaded if p is not None), None)
    if pipeline is not None:
        link = pipeline.link
    else:
        from kg.graph import load_extended_kg
        from kg.linker import EntityLinker

        kg = load_extended_kg(config.data.resolve_data_dir(), catalogue, config.kg.enrich_linked_movies, config.kg.metadata_edges)
        link = EntityLinker.build(kg, catalogue, config.linking).link
    same_film = lambda ids: duplicates(catalogue, ids)  # noqa: E731
    systems = [ChatSystem(p, model.name) if p is not None else RankerSystem(model, link, model.name, same_film) for model, p in loaded]
    return systems, link, same_film


def make_seekers(names: Sequence[str], catalogue: Catalogue, link: Callable, same_film: Callable, seeker_model=None,
                 seed: int = 0) -> list[RuleSeeker]:
    seekers: list[RuleSeeker] = []
    for name in names:
        if name == "rule":
            seekers.append(RuleSeeker(catalogue, link, same_film, seed))
        elif name == "learned":

            if seeker_model is None or not ReplyGenerator.present(seeker_model):
                raise FileNotFoundError(f"the learned simulator needs a seeker generator: {seeker_model} has no generator/ "
                                        "(train one with `python -m train seeker`)")
            generator = ReplyGenerator.from_pretrained(seeker_model)
            seekers.append(LearnedSeeker(catalogue, generator, link, same_film, seed))
        else:
            raise ValueError(f"unknown simulator {name!r}; choose from {SIMULATORS}")
    return seekers
