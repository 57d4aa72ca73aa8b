"""Reading ReDial dialogues (Li et al., NeurIPS 2018, "Towards Deep Conversational Recommendations").

One JSON record per line, in the raw release format (see the data README). Loading never crashes
on a bad line: the line is skipped, counted, and the reason kept in a :class:`LoadReport`.

Texts are normalised (HTML entities, white space) but keep ReDial's ``@<movieId>`` placeholders,
so every mention stays resolvable to a catalogue movie; :func:`render_mentions` swaps titles in.
Consecutive messages of one speaker are merged into one :class:`Turn`.
"""

from __future__ import annotations

import html
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from kg.text import MENTION_RE  # defined in kg (kg imports nothing from crs); re-exported here

logger = logging.getLogger(__name__)

SEEKER = "seeker"  # ReDial's initiator
RECOMMENDER = "recommender"  # ReDial's respondent

_SPACE_RE = re.compile(r"\s+")
_MAX_REPORTED_ERRORS = 20


def normalise_text(text: str) -> str:
    """Unescape HTML entities (``&quot;`` → ``"``), fold white space, strip."""
    return _SPACE_RE.sub(" ", html.unescape(text)).strip()


def movie_ids_in(text: str) -> list[int]:
    """ReDial movie ids mentioned as ``@<id>`` in ``text``, in order, without repeats."""
    seen: dict[int, None] = {}
    for match in MENTION_RE.finditer(text):
        seen.setdefault(int(match.group(1)), None)
    return list(seen)


def render_mentions(text: str, titles: Mapping[int, str]) -> str:
    """Replace each ``@<id>`` by its title; ids without a title stay as they are."""

    def title(match: re.Match[str]) -> str:
        return titles.get(int(match.group(1)), match.group(0))

    return MENTION_RE.sub(title, text)


@dataclass(frozen=True)
class MovieFeedback:
    """One worker's questionnaire answers about one movie.

    suggested: 0/1 (was it suggested by the recommender); seen and liked: 0 no, 1 yes, 2 did not say.
    """

    suggested: int
    seen: int
    liked: int


@dataclass
class Turn:
    role: str  # SEEKER or RECOMMENDER
    text: str  # normalised, with @<movieId> placeholders
    movies: list[int]  # movie ids mentioned in this turn, in order, without repeats
    num_messages: int = 1


@dataclass
class Dialogue:
    conversation_id: str
    seeker_id: int
    recommender_id: int
    movie_mentions: dict[int, str]  # movie id → title as the record gives it
    seeker_feedback: dict[int, MovieFeedback]  # initiatorQuestions
    recommender_feedback: dict[int, MovieFeedback]  # respondentQuestions
    turns: list[Turn]
    num_messages: int
    source: str = ""  # file the dialogue came from

    @property
    def movies(self) -> set[int]:
        return set(self.movie_mentions)


@dataclass
class LoadReport:
    """What happened while reading one file."""

    path: str
    lines: int = 0
    loaded: int = 0
    malformed: int = 0
    errors: list[str] = field(default_factory=list)  # "line N: reason", the first few only

    def add_error(self, line_no: int, reason: str) -> None:
        self.malformed += 1
        if len(self.errors) < _MAX_REPORTED_ERRORS:
            self.errors.append(f"line {line_no}: {reason}")

    def summary(self) -> str:
        text = f"{self.path}: {self.loaded} dialogues from {self.lines} lines"
        if self.malformed:
            text += f", {self.malformed} malformed lines skipped ({'; '.join(self.errors[:3])})"
        return text


class MalformedRecord(ValueError):
    pass


def _feedback(raw: object, what: str) -> dict[int, MovieFeedback]:
    if raw is None or raw == []:  # the release writes an empty questionnaire as []; train_approx has nulls
        return {}
    if not isinstance(raw, dict):
        raise MalformedRecord(f"{what} is not an object")
    answers = {}
    for movie_id, entry in raw.items():
        try:
            answers[int(movie_id)] = MovieFeedback(int(entry["suggested"]), int(entry["seen"]), int(entry["liked"]))
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedRecord(f"{what}[{movie_id!r}] is not a questionnaire entry ({error})") from None
    return answers


def merge_turns(messages: Iterable[tuple[str, str]]) -> list[Turn]:
    """Join consecutive ``(role, normalised text)`` messages of one speaker into turns."""
    turns: list[Turn] = []
    for role, text in messages:
        if not text:
            continue
        if turns and turns[-1].role == role:
            last = turns[-1]
            last.text = f"{last.text} {text}"
            last.movies = movie_ids_in(last.text)
            last.num_messages += 1
        else:
            turns.append(Turn(role=role, text=text, movies=movie_ids_in(text)))
    return turns


def parse_dialogue(record: object, source: str = "") -> Dialogue:
    """One raw ReDial record → :class:`Dialogue`; raises MalformedRecord saying what is wrong."""
    if not isinstance(record, dict):
        raise MalformedRecord("record is not a JSON object")
    missing = [key for key in ("conversationId", "initiatorWorkerId", "respondentWorkerId", "messages") if key not in record]
    if missing:
        raise MalformedRecord(f"missing keys {missing}")
    try:
        seeker_id, recommender_id = int(record["initiatorWorkerId"]), int(record["respondentWorkerId"])
    except (TypeError, ValueError):
        raise MalformedRecord("worker ids are not integers") from None
    mentions_raw = record.get("movieMentions") or {}  # [] in the release when nothing was mentioned
    if not isinstance(mentions_raw, dict):
        raise MalformedRecord("movieMentions is not an object")
    try:
        mentions = {int(k): normalise_text(str(v or "")) for k, v in mentions_raw.items()}
    except ValueError:
        raise MalformedRecord("movieMentions has a non-numeric movie id") from None
    raw_messages = record["messages"]
    if not isinstance(raw_messages, list) or not raw_messages:
        raise MalformedRecord("messages is not a non-empty list")
    roles = {seeker_id: SEEKER, recommender_id: RECOMMENDER}
    messages = []
    for position, message in enumerate(raw_messages):
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            raise MalformedRecord(f"message {position} has no text")
        role = roles.get(message.get("senderWorkerId"))
        if role is None:
            raise MalformedRecord(f"message {position} comes from worker {message.get('senderWorkerId')!r}, neither party")
        messages.append((role, normalise_text(message["text"])))
    return Dialogue(
        conversation_id=str(record["conversationId"]),
        seeker_id=seeker_id,
        recommender_id=recommender_id,
        movie_mentions=mentions,
        seeker_feedback=_feedback(record.get("initiatorQuestions"), "initiatorQuestions"),
        recommender_feedback=_feedback(record.get("respondentQuestions"), "respondentQuestions"),
        turns=merge_turns(messages),
        num_messages=len(raw_messages),
        source=source,
    )


def load_dialogues(path: str | Path) -> tuple[list[Dialogue], LoadReport]:
    """Read a ReDial ``.jsonl`` file; malformed lines are skipped and counted, never fatal."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ReDial file {path} does not exist")
    report = LoadReport(path=str(path))
    dialogues = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            report.lines += 1
            try:
                dialogues.append(parse_dialogue(json.loads(line), source=path.name))
            except json.JSONDecodeError as error:
                report.add_error(line_no, f"not JSON ({error.msg})")
            except MalformedRecord as error:
                report.add_error(line_no, str(error))
    report.loaded = len(dialogues)
    if report.malformed:
        logger.warning(report.summary())
    return dialogues, report
