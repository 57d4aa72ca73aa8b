"""The chat turn as a pure function: no Gradio imports, so tests and the UI share it."""

from __future__ import annotations

from pathlib import Path

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "default"
MAX_MESSAGE_CHARS = 2000

NO_MODEL_MESSAGE = (
    "No trained model is installed yet ({checkpoint} is missing), so I cannot recommend movies. "
    "The README explains how to train one."
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
