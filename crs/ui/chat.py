"""What the chat UI shows: escaped messages, movie cards, the reasoning panel, the streamed turn.

The turn itself is :func:`crs.serve.chat.chat_turn`. Everything shown in the chat goes through
:func:`plain_markdown`, so no message is ever rendered as HTML or Markdown markup; the reply's
template never contains control tokens typed by the user (the pipeline escapes them before the
generator sees the text). The reasoning panel: goal, topics, linked entities, the top ten with
scores, and a knowledge-graph path to the top movie (:mod:`kg.paths`).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from crs.data.catalogue import Catalogue, Movie
from crs.serve.chat import DEFAULT_CHECKPOINT, ChatRequest, ChatResult, ChatState, TurnInfo, chat_turn
from crs.text.tokenizer import escape_control_tokens
from kg.paths import find_paths, path_text

if TYPE_CHECKING:
    from crs.serve.pipeline import CRS, Reply


STREAM_DELAY = 0.02  # seconds between streamed words


REASONING_TITLE = "Why these movies?"


_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+-.!|~=:$^\"'/")


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
    """The reasoning behind a reply, as escaped Markdown: goal, topics, linked entities, the request
    state (wanted, not wanted, turned down, relaxed), the top ten with scores, and a knowledge-graph
    path from what the user said to the top movie."""
    e = plain_markdown
    lines = [f"**Goal:** {e(reply.goal or '–')}", "", f"**Topics:** {e(', '.join(reply.topics)) if reply.topics else '–'}", ""]
    linked = list({(x.surface, x.kind, x.name): x for x in reply.linked}.values())
    if linked:
        lines.append("**Linked entities:** " + "; ".join(f"“{e(x.surface)}” → {e(x.name)} ({e(x.kind)})" for x in linked[:12]))
    else:
        lines.append("**Linked entities:** none found")
    request = getattr(reply, "request", None)
    if request is not None:
        lines += ["", "**What you asked for:**", ""]
        lines.append("- wanted: " + (e("; ".join(c.label for c in request.wanted)) if request.wanted else "–"))
        lines.append("- not wanted: " + (e("; ".join(c.label for c in request.unwanted)) if request.unwanted else "–"))
        turned_down = [pipeline.movie(m).display_name for m in request.rejected if m in pipeline.catalogue]
        lines.append("- turned down: " + (e("; ".join(turned_down)) if turned_down else "–"))
        if request.relaxed:
            lines.append("- relaxed (no movie meets them all): " + e("; ".join(c.label for c in request.relaxed)))
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
    index = pipeline.graph_index
    target = pipeline.kg.movie_to_entity.get(movie_id)
    turned_down = {pipeline.kg.movie_to_entity.get(m) for m in rejected}
    sources = [x.entity for message in reversed(history) if message["role"] == "user"
               for x in pipeline.link(escape_control_tokens(message["content"])) if x.entity not in turned_down]
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
                checkpoint: Path = DEFAULT_CHECKPOINT, run: Callable[[ChatRequest], ChatResult] | None = None,
                note: str = "") -> Iterator[ChatView]:
    """The turn as views for the UI: the reply word by word, then with its cards and reasoning.
    ``run`` computes the turn (default :func:`chat_turn`; the app's batcher, which holds the models'
    lock while it computes, never while the reply streams)."""
    state = state or ChatState()
    catalogue = pipeline.catalogue if pipeline is not None else None
    if run is not None and pipeline is not None:
        result = run(ChatRequest(message, state, reasoning_markdown))
    else:
        result = chat_turn(pipeline, message, state, checkpoint, reasoning=reasoning_markdown, note=note)
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
