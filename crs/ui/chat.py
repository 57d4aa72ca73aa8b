"""The chat turn as pure functions: no Gradio imports, so tests, the UI and the API share them.

One conversation's state (:class:`ChatState`) holds the raw messages, the movies the user turned
down and the thumbs given; the UI keeps one per browser session (``gr.State``). A turn:

1. :func:`clean_message` makes the input safe plain text (control characters dropped, length capped);
   an empty message gets a notice and changes nothing.
2. A message such as "I've seen that" or "something else" (:func:`is_rejection`) rejects the movies
   of the last reply: they are never recommended again in this conversation.
3. :meth:`crs.serve.pipeline.CRS.respond` ranks the catalogue (mentioned, rejected and duplicate entries
   of those films left out) and writes the reply.
4. The reasoning shown with the reply: goal, topics, linked entities, the top ten with scores, and a
   knowledge-graph path to the top movie (:mod:`crs.ui.explain`).

Everything shown in the chat goes through :func:`plain_markdown`, so no message is ever rendered as
HTML or Markdown markup; the reply's template never contains control tokens typed by the user
(the pipeline escapes them before the generator sees the text).
"""

from __future__ import annotations

import html
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, ContextManager, Iterator

from crs.data.catalogue import Catalogue, Movie
from crs.ui.explain import GraphIndex, find_paths, path_text
from crs.serve.models import duplicates
from crs.text.tokenizer import escape_control_tokens

if TYPE_CHECKING:
    from crs.serve.pipeline import CRS, Reply

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "default"
MAX_MESSAGE_CHARS = 2000
MAX_HISTORY_MESSAGES = 40  # the API reads at most this many earlier messages
STREAM_DELAY = 0.02  # seconds between streamed words
REASONING_TITLE = "Why these movies?"

NO_MODEL_MESSAGE = (
    "No trained model is installed yet ({checkpoint} is missing), so I cannot recommend movies. "
    "The README explains how to train one."
)
EMPTY_NOTICE = "Your message is empty: tell me about a movie you liked, or what you are in the mood for."
TRUNCATED_NOTICE = f"Your message was longer than {MAX_MESSAGE_CHARS:,} characters; I read the first {MAX_MESSAGE_CHARS:,}."

_OBJECT = r"(?:that|it|this|those|them|both|all\s+of\s+them)"
_REJECTION_RE = re.compile(
    r"\b(?:"
    rf"(?:seen|watched|saw)\s+{_OBJECT}"
    r"|already\s+(?:seen|watched|saw)"
    r"|not\s+(?:that|this|those|these)\s+ones?"
    r"|not\s+(?:that|this)(?=\s*(?:[.!,;]|$))"
    r"|(?:something|anything|someone|somethin)\s+else"
    r"|something\s+different"
    r"|(?:another|a\s+different)\s+(?:one|movie|film|suggestion|recommendation|option)s?"
    r"|no,?\s+thanks?|no\s+thank\s+you"
    r"|not\s+(?:for\s+me|interested|my\s+(?:thing|type|taste|cup\s+of\s+tea))"
    rf"|(?:didn'?t|did\s+not|don'?t|do\s+not)\s+(?:like|enjoy|want|care\s+for)\s+{_OBJECT}"
    rf"|(?:hated|disliked|hate|dislike)\s+{_OBJECT}"
    r"|nope|nah"
    r")(?!\w)",
    re.IGNORECASE,
)
# "I haven't seen it" says the opposite: such spans are removed before matching.
_NOT_SEEN_RE = re.compile(
    r"\b(?:haven'?t|have\s+not|hadn'?t|had\s+not|never|not\s+yet|didn'?t|did\s+not)\s+"
    rf"(?:already\s+)?(?:seen|watched|saw|see|watch)(?:\s+{_OBJECT})?",
    re.IGNORECASE,
)
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+-.!|~=:$^\"'/")


def clean_message(message: object) -> str:
    """User input as safe plain text: a string, control characters dropped, length capped."""
    text = message if isinstance(message, str) else ("" if message is None else str(message))
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
    return text.strip()[:MAX_MESSAGE_CHARS]


def respond_without_model(message: object, history: list[dict] | None, checkpoint: Path = DEFAULT_CHECKPOINT) -> list[dict]:
    """What the chat answers while no checkpoint exists: the history plus a clear notice."""
    history = list(history or [])
    text = clean_message(message)
    if not text:
        return history
    return history + [
        {"role": "user", "content": text},
        {"role": "assistant", "content": NO_MODEL_MESSAGE.format(checkpoint=checkpoint)},
    ]


def is_rejection(text: str) -> bool:
    """Whether a message turns down the last suggestion ("I've seen that", "not that one", "something else")."""
    text = text.replace("’", "'").replace("‘", "'")
    return bool(_REJECTION_RE.search(_NOT_SEEN_RE.sub(" ", text)))


def plain_markdown(text: str) -> str:
    """``text`` escaped so that a Markdown renderer shows it literally: HTML special characters as
    entities, Markdown punctuation backslash-escaped, line breaks kept."""
    out = []
    for ch in text:
        if ch in "<>&":
            out.append(html.escape(ch))
        elif ch in _MARKDOWN_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


# ---------------------------------------------------------------------- state


@dataclass
class TurnInfo:
    """What the UI shows with one assistant reply."""

    items: list[int]  # movies recommended in the reply
    reasoning: str  # Markdown, already escaped


@dataclass
class ChatState:
    """One conversation: raw messages, the movies turned down, thumbs (in memory only)."""

    history: list[dict] = field(default_factory=list)  # {"role": "user"|"assistant", "content": str}
    rejected: list[int] = field(default_factory=list)
    last_items: list[int] = field(default_factory=list)  # movies of the last reply
    turns: list[TurnInfo] = field(default_factory=list)  # one per assistant message
    feedback: dict[int, bool | str] = field(default_factory=dict)  # chat message index → thumbs up? (or other feedback)


@dataclass
class ChatResult:
    """One turn's outcome; ``state`` is a new object, the old one is left as it was."""

    state: ChatState
    reply: str  # "" when the message added nothing
    items: list[int]
    notice: str = ""  # something to tell the user about their input
    details: "Reply | None" = None


def chat_turn(pipeline: "CRS | None", message: object, state: ChatState | None = None,
              checkpoint: Path = DEFAULT_CHECKPOINT) -> ChatResult:
    """The next turn of the conversation in ``state`` after the user says ``message``."""
    state = state or ChatState()
    raw = message if isinstance(message, str) else ("" if message is None else str(message))
    text = clean_message(raw)
    if not text:
        return ChatResult(state=state, reply="", items=[], notice=EMPTY_NOTICE)
    notice = TRUNCATED_NOTICE if len(raw.strip()) > MAX_MESSAGE_CHARS else ""
    history = state.history + [{"role": "user", "content": text}]
    if pipeline is None:
        reply = NO_MODEL_MESSAGE.format(checkpoint=checkpoint)
        new = replace(state, history=history + [{"role": "assistant", "content": reply}], last_items=[],
                      turns=state.turns + [TurnInfo([], "")])
        return ChatResult(state=new, reply=reply, items=[], notice=notice)
    rejected = list(dict.fromkeys(state.rejected + (state.last_items if is_rejection(text) else [])))
    details = respond(pipeline, history, rejected)
    new = replace(
        state,
        history=history + [{"role": "assistant", "content": details.text}],
        rejected=rejected,
        last_items=list(details.items),
        turns=state.turns + [TurnInfo(list(details.items), reasoning_markdown(pipeline, details, history, rejected))],
        feedback=dict(state.feedback),
    )
    return ChatResult(state=new, reply=details.text, items=list(details.items), notice=notice, details=details)


def respond(pipeline: "CRS", history: list[dict], rejected: list[int]) -> "Reply":
    """:meth:`CRS.respond`, with the other catalogue entries of mentioned and rejected films left out too."""
    context, _ = pipeline.context(history)
    excluded = list(dict.fromkeys(rejected + duplicates(pipeline.catalogue, list(context.mentioned_movies) + rejected)))
    return pipeline.respond(history, rejected=excluded)


def record_feedback(state: ChatState, index: object, liked: bool | str | None) -> ChatState:
    """The state with a thumbs up (True), down (False) or other feedback (its label) on chat message
    ``index``; None clears it."""
    position = index[0] if isinstance(index, (list, tuple)) else index
    feedback = dict(state.feedback)
    if isinstance(position, int):
        if liked is None:
            feedback.pop(position, None)
        else:
            feedback[position] = liked if isinstance(liked, str) else bool(liked)
    return replace(state, feedback=feedback)


# ---------------------------------------------------------------------- what the UI shows


def movie_card(movie: Movie) -> dict:
    """A movie's catalogue facts for display (never its plot: third-party text we may not ship)."""
    return {
        "id": movie.movie_id,
        "title": movie.title,
        "year": movie.year,
        "genres": list(movie.genres),
        "directors": list(movie.directors),
        "stars": list(movie.stars),
    }


def card_markdown(movie: Movie) -> str:
    """A movie as a quoted block in the chat (escaped)."""
    lines = [f"**{plain_markdown(movie.display_name)}**"]
    facts = []
    if movie.genres:
        facts.append(plain_markdown(", ".join(movie.genres)))
    if movie.directors:
        facts.append("directed by " + plain_markdown(", ".join(movie.directors)))
    if movie.stars:
        facts.append("with " + plain_markdown(", ".join(movie.stars[:3])))
    if facts:
        lines.append(" · ".join(facts))
    return "> " + "  \n> ".join(lines)


def cards_html(catalogue: Catalogue, items: list[int]) -> str:
    """The movie cards of one reply as HTML (every value escaped)."""
    if not items:
        return '<div class="movie-cards empty">No movie recommended yet.</div>'
    cards = []
    for movie_id in items:
        movie = catalogue.by_id(movie_id)
        rows = [f'<div class="movie-title">{html.escape(movie.title)}'
                + (f' <span class="movie-year">({movie.year})</span>' if movie.year else "") + "</div>"]
        for label, values in (("Genres", movie.genres), ("Director", movie.directors), ("Stars", movie.stars[:4])):
            if values:
                rows.append(f'<div class="movie-{label.lower()}"><b>{label}:</b> {html.escape(", ".join(values))}</div>')
        cards.append(f'<div class="movie-card" data-movie-id="{movie.movie_id}">' + "".join(rows) + "</div>")
    return '<div class="movie-cards">' + "".join(cards) + "</div>"


def reasoning_markdown(pipeline: "CRS", reply: "Reply", history: list[dict], rejected: list[int] = ()) -> str:
    """The reasoning behind a reply, as escaped Markdown: goal, topics, linked entities, the top ten
    with scores, and a knowledge-graph path from what the user said to the top movie."""
    e = plain_markdown
    lines = [f"**Goal:** {e(reply.goal or '–')}", "", f"**Topics:** {e(', '.join(reply.topics)) if reply.topics else '–'}", ""]
    linked = list({(x.surface, x.kind, x.name): x for x in reply.linked}.values())
    if linked:
        lines.append("**Linked entities:** " + "; ".join(f"“{e(x.surface)}” → {e(x.name)} ({e(x.kind)})" for x in linked[:12]))
    else:
        lines.append("**Linked entities:** none found")
    if reply.ranking:
        lines += ["", "**Top 10:**", "", "| # | movie | score |", "|---|---|---|"]
        for rank, (movie_id, score) in enumerate(reply.ranking[:10], 1):
            lines.append(f"| {rank} | {e(pipeline.movie(movie_id).display_name)} | {score:.2f} |")
    top = reply.items[0] if reply.items else (reply.ranking[0][0] if reply.ranking else None)
    if top is not None:
        lines += ["", f"**Why {e(pipeline.movie(top).display_name)}:** {e(why_text(pipeline, history, top, rejected))}"]
    return "\n".join(lines)


def why_text(pipeline: "CRS", history: list[dict], movie_id: int, rejected: list[int] = ()) -> str:
    """A knowledge-graph path from something the user said (latest first; movies they turned down
    left out) to ``movie_id``, in words."""
    index = GraphIndex.for_graph(pipeline.kg, pipeline.catalogue)
    target = pipeline.kg.movie_to_entity.get(movie_id)
    turned_down = {pipeline.kg.movie_to_entity.get(m) for m in rejected}
    sources = [x.entity for message in reversed(history) if message["role"] == "user"
               for x in pipeline.linker.link(escape_control_tokens(message["content"])) if x.entity not in turned_down]
    paths = find_paths(index, sources, target, limit=1) if target is not None else []
    if not paths:
        return "no short knowledge-graph path links it to what you mentioned; it comes from the recommender's scores."
    return path_text(index, paths[0])


def display_messages(state: ChatState, partial: str | None = None) -> list[dict]:
    """The chat as Gradio messages: every text escaped, movie cards under each reply, a collapsed
    reasoning panel after it. ``partial`` is a reply still being streamed (added last)."""
    messages: list[dict] = []
    turn = 0
    for message in state.history:
        if message["role"] == "user":
            messages.append({"role": "user", "content": plain_markdown(message["content"])})
            continue
        info = state.turns[turn] if turn < len(state.turns) else TurnInfo([], "")
        turn += 1
        messages.append({"role": "assistant", "content": plain_markdown(message["content"])})
        if info.reasoning:
            messages.append({"role": "assistant", "content": info.reasoning, "metadata": {"title": REASONING_TITLE, "status": "done"}})
    if partial is not None:
        messages.append({"role": "assistant", "content": plain_markdown(partial)})
    return messages


def with_cards(messages: list[dict], state: ChatState, catalogue: Catalogue | None) -> list[dict]:
    """``messages`` with each reply's movie cards appended to its text."""
    if catalogue is None:
        return messages
    out, turn = [], 0
    for message in messages:
        message = dict(message)
        if message["role"] == "assistant" and "metadata" not in message and turn < len(state.turns):
            items = state.turns[turn].items
            turn += 1
            if items:
                message["content"] += "\n\n" + "\n\n".join(card_markdown(catalogue.by_id(m)) for m in items)
        out.append(message)
    return out


@dataclass
class ChatView:
    """What the UI shows after (part of) a turn."""

    messages: list[dict]
    cards: str  # HTML of the latest reply's movie cards
    state: ChatState
    notice: str = ""


def stream_turn(pipeline: "CRS | None", message: object, state: ChatState | None, delay: float = STREAM_DELAY,
                checkpoint: Path = DEFAULT_CHECKPOINT, lock: ContextManager | None = None) -> Iterator[ChatView]:
    """The turn as views for the UI: the reply word by word, then with its cards and reasoning.
    ``lock`` is held while the turn is computed, not while it streams."""
    state = state or ChatState()
    catalogue = pipeline.catalogue if pipeline is not None else None
    with lock if lock is not None else nullcontext():
        result = chat_turn(pipeline, message, state, checkpoint)
    if not result.reply:
        yield ChatView(with_cards(display_messages(state), state, catalogue), latest_cards(catalogue, state), state, result.notice)
        return
    shown = replace(state, history=result.state.history[:-1], turns=state.turns)
    words = result.reply.split(" ")
    for count in range(1, len(words)):
        yield ChatView(with_cards(display_messages(shown, " ".join(words[:count])), shown, catalogue),
                       latest_cards(catalogue, state), state, result.notice if count == 1 else "")
        if delay:
            time.sleep(delay)
    yield ChatView(with_cards(display_messages(result.state), result.state, catalogue), latest_cards(catalogue, result.state),
                   result.state, result.notice if len(words) == 1 else "")


def latest_cards(catalogue: Catalogue | None, state: ChatState) -> str:
    return cards_html(catalogue, state.last_items) if catalogue is not None else ""


# ---------------------------------------------------------------------- the stateless API


def history_messages(history: object) -> list[dict]:
    """An API client's history as clean ``{"role", "content"}`` text messages (the last
    :data:`MAX_HISTORY_MESSAGES`); anything else in it is dropped."""
    messages = []
    for message in history if isinstance(history, list) else []:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        if isinstance(message.get("metadata"), dict) and message["metadata"].get("title"):
            continue  # a reasoning panel, not part of the dialogue
        content = message.get("content")
        if isinstance(content, list):  # Gradio's [{"type": "text", "text": ...}] form
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
        text = clean_message(content) if isinstance(content, str) else ""
        if text:
            messages.append({"role": message["role"], "content": text})
    return messages[-MAX_HISTORY_MESSAGES:]


def rejected_in_history(pipeline: "CRS", history: list[dict]) -> list[int]:
    """Movies of assistant messages that the next user message turned down."""
    rejected: list[int] = []
    for previous, message in zip(history, history[1:]):
        if previous["role"] == "assistant" and message["role"] == "user" and is_rejection(message["content"]):
            rejected += [x.movie_id for x in pipeline.linker.link(previous["content"]) if x.movie_id is not None]
    return list(dict.fromkeys(rejected))


def chat_api(pipeline: "CRS | None", message: object, history: object = None, checkpoint: Path = DEFAULT_CHECKPOINT) -> dict:
    """One turn for API clients, with no server-side state: the client sends the history back.

    Returns ``{"reply", "history", "movies", "notice"}``: the reply text, the history with the new
    user message and reply appended, the recommended movies' catalogue facts, and a note about the
    input (empty, too long) or "".
    """
    messages = history_messages(history)
    state = ChatState(history=messages)
    if pipeline is not None and messages:
        last_items = []
        if messages[-1]["role"] == "assistant":
            last_items = [x.movie_id for x in pipeline.linker.link(messages[-1]["content"]) if x.movie_id is not None]
        state = ChatState(history=messages, rejected=rejected_in_history(pipeline, messages), last_items=last_items)
    result = chat_turn(pipeline, message, state, checkpoint)
    movies = [movie_card(pipeline.movie(m)) for m in result.items] if pipeline is not None else []
    reply = result.reply or result.notice
    return {"reply": reply, "history": result.state.history, "movies": movies, "notice": result.notice}
