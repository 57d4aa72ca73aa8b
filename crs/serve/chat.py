"""A chat turn as pure functions: no Gradio imports, so the UI, the API and the evaluation share them.

One conversation's state (:class:`ChatState`) holds the raw messages, the movies the user turned
down and the thumbs given; the UI keeps one per browser session (``gr.State``), API clients send
the history back. A turn:

1. :func:`clean_message` makes the input safe plain text (control characters dropped, length capped);
   an empty message gets a notice and changes nothing.
2. A message such as "I've seen that" or "something else" (:func:`is_rejection`) rejects the movies
   of the last reply: they are never recommended again in this conversation.
3. :meth:`crs.serve.pipeline.CRS.respond` ranks the catalogue (mentioned, rejected and duplicate entries
   of those films left out) and writes the reply; the conversation is linked once for both.
4. ``reasoning`` (the UI's :func:`crs.ui.chat.reasoning_markdown`) renders what is shown with the reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from crs.data.catalogue import Movie, duplicates, namesakes
from crs.paths import PROJECT_ROOT

if TYPE_CHECKING:
    from crs.serve.pipeline import CRS, Reply


DEFAULT_CHECKPOINT = PROJECT_ROOT / "checkpoints" / "default"


MAX_MESSAGE_CHARS = 2000


MAX_HISTORY_MESSAGES = 40  # the API reads at most this many earlier messages


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


@dataclass
class ChatRequest:
    """One user message to answer: the conversation so far (``state``) and how to render the
    reasoning panel kept with the reply (``reasoning(pipeline, reply, history, rejected)``, or none)."""

    message: object
    state: ChatState | None = None
    reasoning: Callable[["CRS", "Reply", list[dict], list[int]], str] | None = None
    # An API client's history (clean messages) instead of ``state``: its state (:func:`api_state`)
    # is worked out with the turn, where the pipeline is held, so a handler never waits for it.
    api_history: list[dict] | None = None


def chat_turn(pipeline: "CRS | None", message: object, state: ChatState | None = None,
              checkpoint: Path = DEFAULT_CHECKPOINT,
              reasoning: Callable[["CRS", "Reply", list[dict], list[int]], str] | None = None, note: str = "") -> ChatResult:
    """The next turn of the conversation in ``state`` after the user says ``message``;
    ``reasoning(pipeline, reply, history, rejected)`` renders the panel kept with the reply; ``note``:
    why ``pipeline`` is None (a broken checkpoint, named), said instead of "no model is installed".
    A pipeline serving without its generator says why on the conversation's first turn (``notice``)."""
    return chat_turns(pipeline, [ChatRequest(message, state, reasoning)], checkpoint, note)[0]


def chat_turns(pipeline: "CRS | None", requests: Sequence[ChatRequest], checkpoint: Path = DEFAULT_CHECKPOINT,
               note: str = "") -> list[ChatResult]:
    """:func:`chat_turn` of several conversations at once (concurrent users): their replies are
    computed in one :meth:`CRS.respond_batch`; each result is the one :func:`chat_turn` gives alone."""
    results: list[ChatResult | None] = [None] * len(requests)
    pending = []  # (position, request, state, history, rejected, turned down, notice)
    for position, request in enumerate(requests):
        state = request.state or (api_state(pipeline, request.api_history) if request.api_history is not None else ChatState())
        raw = request.message if isinstance(request.message, str) else ("" if request.message is None else str(request.message))
        text = clean_message(raw)
        if not text:
            results[position] = ChatResult(state=state, reply="", items=[], notice=EMPTY_NOTICE)
            continue
        notice = TRUNCATED_NOTICE if len(raw.strip()) > MAX_MESSAGE_CHARS else ""
        history = state.history + [{"role": "user", "content": text}]
        if pipeline is None:
            reply = note or NO_MODEL_MESSAGE.format(checkpoint=checkpoint)
            new = replace(state, history=history + [{"role": "assistant", "content": reply}], last_items=[],
                          turns=state.turns + [TurnInfo([], "")])
            results[position] = ChatResult(state=new, reply=reply, items=[], notice=notice)
            continue
        if pipeline.generator_note and not state.history:
            notice = " ".join(part for part in (notice, pipeline.generator_note) if part)
        turned_down = is_rejection(text)
        rejected = list(dict.fromkeys(state.rejected + (state.last_items if turned_down else [])))
        pending.append((position, request, state, history, rejected, turned_down, notice))
    if pending:
        replies = respond_batch(pipeline, [(history, rejected, turned_down) for _, _, _, history, rejected, turned_down, _ in pending])
        for (position, request, state, history, rejected, _, notice), details in zip(pending, replies):
            reasoning = request.reasoning(pipeline, details, history, rejected) if request.reasoning else ""
            new = replace(
                state,
                history=history + [{"role": "assistant", "content": details.text}],
                rejected=rejected,
                last_items=list(details.items),
                turns=state.turns + [TurnInfo(list(details.items), reasoning)],
                feedback=dict(state.feedback),
            )
            results[position] = ChatResult(state=new, reply=details.text, items=list(details.items), notice=notice, details=details)
    return results  # type: ignore[return-value]


def respond(pipeline: "CRS", history: list[dict], rejected: list[int], wants_movie: bool = False) -> "Reply":
    """:meth:`CRS.respond`, with the other catalogue entries of mentioned and rejected films left out too;
    ``wants_movie``: the user turned the last suggestion down, so the reply suggests another."""
    return respond_batch(pipeline, [(history, rejected, wants_movie)])[0]


def respond_batch(pipeline: "CRS", turns: Sequence[tuple[list[dict], list[int], bool]]) -> list["Reply"]:
    """:func:`respond` of each (history, rejected, wants_movie), computed in one :meth:`CRS.respond_batch`;
    the other entries of mentioned and rejected films are left out, and so are other films with a
    mentioned film's title (:func:`crs.data.catalogue.namesakes`)."""
    from crs.serve.pipeline import TurnRequest

    requests = []
    for history, rejected, wants_movie in turns:
        context = pipeline.context(history)
        mentioned = list(context[0].mentioned_movies)
        excluded = list(dict.fromkeys(rejected + duplicates(pipeline.catalogue, mentioned + rejected)
                                      + namesakes(pipeline.catalogue, mentioned)))
        requests.append(TurnRequest(history, excluded, context, wants_movie))
    return pipeline.respond_batch(requests)


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
            rejected += [x.movie_id for x in pipeline.link(previous["content"]) if x.movie_id is not None]
    return list(dict.fromkeys(rejected))


def api_state(pipeline: "CRS | None", messages: list[dict]) -> ChatState:
    """The conversation state an API client's history stands for: the movies its user messages turned
    down, and the last reply's movies (what a rejection in the next message would turn down)."""
    if pipeline is None or not messages:
        return ChatState(history=messages)
    last_items = []
    if messages[-1]["role"] == "assistant":
        last_items = [x.movie_id for x in pipeline.link(messages[-1]["content"]) if x.movie_id is not None]
    return ChatState(history=messages, rejected=rejected_in_history(pipeline, messages), last_items=last_items)


def chat_api(pipeline: "CRS | None", message: object, history: object = None, checkpoint: Path = DEFAULT_CHECKPOINT,
             note: str = "", run: Callable[[ChatRequest], ChatResult] | None = None) -> dict:
    """One turn for API clients, with no server-side state: the client sends the history back.

    Returns ``{"reply", "history", "movies", "notice"}``: the reply text, the history with the new
    user message and reply appended, the recommended movies' catalogue facts, and a note about the
    input (empty, too long) or the model (a broken checkpoint named by ``note``; a generator that
    could not be loaded, on the first turn), or "". ``run`` computes the turn (default:
    :func:`chat_turn`; the app's batcher, :class:`crs.serve.batching.TurnBatcher`). The history's
    state (turned-down movies, the last reply's movies) is read with the turn, where the pipeline is
    held (its memos are not thread-safe), so a handler waits for nothing before it queues its turn.
    """
    request = ChatRequest(message, api_history=history_messages(history))
    result = run(request) if run is not None else chat_turns(pipeline, [request], checkpoint, note)[0]
    movies = [movie_card(pipeline.movie(m)) for m in result.items] if pipeline is not None else []
    reply = result.reply or result.notice
    return {"reply": reply, "history": result.state.history, "movies": movies, "notice": result.notice}
