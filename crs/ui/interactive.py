"""The Evaluate tab's interactive mode: one test dialogue played by a simulated seeker against the chat.

The seeker (:mod:`crs.eval.simulator`) gets the dialogue's targets and preferences, the chat is the
product's own turn (:class:`crs.eval.simulator.ChatSystem`); the conversation is shown message by
message, and the targets are revealed only when it ends. The learned seeker loads from
``checkpoints/seeker`` (the folder named ``seeker`` beside the served checkpoint).
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from crs.config import DataConfig
from crs.data.catalogue import Catalogue, duplicates
from crs.data.splits import load_split
from crs.eval.simulator import (
    MAX_TURNS,
    SIMULATORS,
    ChatSystem,
    Conversation,
    Profile,
    make_seekers,
    play_steps,
    profiles,
)
from crs.serve.models import Models
from crs.ui.chat import plain_markdown
from crs.ui.evaluation import no_data_message

SEEKER_DIR = "seeker"
_SEEKERS: dict[tuple[int, str], object] = {}


@lru_cache(maxsize=2)
def test_profiles(catalogue: Catalogue, data_dir: str = "") -> dict[str, Profile]:
    """The simulated seekers' profiles of the official test split, by conversation id."""
    dialogues = load_split(DataConfig(data_dir=data_dir), "test")
    return {p.conversation_id: p for p in profiles(dialogues, catalogue, lambda ids: duplicates(catalogue, ids))}


def seeker_folder(models: Models) -> Path:
    return Path(models.checkpoint).parent / SEEKER_DIR


def _seeker(models: Models, name: str):
    key = (id(models.pipeline), name)
    if key not in _SEEKERS:
        pipeline = models.pipeline
        same_film = lambda ids: duplicates(pipeline.catalogue, ids)  # noqa: E731
        _SEEKERS[key] = make_seekers([name], pipeline.catalogue, pipeline.link, same_film, seeker_folder(models))[0]
    return _SEEKERS[key]


def _messages(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": plain_markdown(m["content"])} for m in messages]


def outcome_markdown(conversation: Conversation, catalogue: Catalogue) -> str:
    targets = ", ".join(plain_markdown(catalogue.by_id(t).display_name) for t in conversation.targets if t in catalogue)
    if conversation.success_turn:
        found = next(m for m in conversation.messages[::-1] if m["role"] == "assistant")
        hit = [catalogue.by_id(i).display_name for i in found.get("items", []) if i in catalogue]
        head = (f"**Success** at system turn {conversation.success_turn}: the chat recommended "
                f"{plain_markdown(', '.join(hit))}.")
    else:
        head = f"**No success** within {len(conversation.recall['recall@1'])} system turns."
    return f"{head}\n\nThe seeker's targets (revealed now): {targets}."


def interactive_steps(models: Models, dialogue: object = "", simulator: object = "rule", max_turns: int = MAX_TURNS,
                      seed: int | None = None, data_dir: str = "") -> Iterator[tuple[list[dict], str]]:
    """(chat messages so far, summary Markdown) after each message of the simulated conversation.

    ``dialogue``: a test conversation id, or empty for a random one (``seed`` fixes the choice)."""
    if models.pipeline is None:
        yield [], f"**Note:** {plain_markdown(models.note)}"
        return
    name = str(simulator or "rule").strip()
    if name not in SIMULATORS:
        yield [], f"**Note:** choose a simulator: {', '.join(SIMULATORS)}."
        return
    catalogue = models.pipeline.catalogue
    try:
        people = test_profiles(catalogue, data_dir)
    except FileNotFoundError as error:
        yield [], f"**Note:** {plain_markdown(no_data_message(error))}"
        return
    wanted = str(dialogue or "").strip()
    if wanted and wanted not in people:
        yield [], (f"**Note:** {plain_markdown(wanted)} is not a test dialogue with a target movie; give one of the "
                   f"{len(people):,} (for example {min(people)}), or leave the field empty for a random one.")
        return
    profile = people[wanted] if wanted else people[random.Random(seed).choice(sorted(people))]
    try:
        seeker = _seeker(models, name)
    except FileNotFoundError as error:
        yield [], f"**Note:** {plain_markdown(str(error))}"
        return
    playing = f"Dialogue **{profile.conversation_id}**, {name} seeker: playing…"
    system = ChatSystem(models.pipeline, "crs")
    for step in play_steps(system, seeker, profile, max_turns, lock=models.lock):
        if isinstance(step, Conversation):
            yield _messages(step.messages), f"Dialogue **{profile.conversation_id}**, {name} seeker. " + outcome_markdown(step, catalogue)
        else:
            yield _messages(step), playing
