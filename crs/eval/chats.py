"""Fixed chats for the record: play scripted user turns through the chat and write the transcripts.

``python -m crs.eval.chats --checkpoint DIR [--openers prompts/chat_openers.txt] [--turns 2] [--out FILE.md]``

The openers file has one chat a line: the first user message, then each later user message after
`` || ``; blank lines and lines starting with ``#`` are skipped. Each chat plays its first ``--turns``
messages through :func:`crs.serve.chat.chat_turn` (so rejections such as "I've seen that" count, as
in the UI) and the transcripts, with the movies each reply recommends, are printed as Markdown and,
with ``--out``, written to that file.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from crs.paths import PROJECT_ROOT
from crs.serve.chat import ChatState, chat_turn

DEFAULT_OPENERS = PROJECT_ROOT / "prompts" / "chat_openers.txt"
SEPARATOR = " || "


@dataclass
class ChatLine:
    """One exchange: what the user said and what the assistant answered."""

    user: str
    reply: str
    items: list[int]  # ReDial ids of the movies recommended in the reply
    titles: list[str]  # their display names
    goal: str = ""
    notice: str = ""


def load_openers(path: str | Path = DEFAULT_OPENERS) -> list[list[str]]:
    """The scripted chats of an openers file: each a list of user messages (the opener first)."""
    chats = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        messages = [part.strip() for part in line.split(SEPARATOR.strip())]
        chats.append([m for m in messages if m])
    return chats


def play(pipeline, messages: list[str], turns: int | None = None) -> list[ChatLine]:
    """The first ``turns`` messages (all when None) said one after the other in one conversation."""
    state, lines = ChatState(), []
    for message in messages[:turns]:
        result = chat_turn(pipeline, message, state)
        state = result.state
        lines.append(ChatLine(message, result.reply, list(result.items),
                              [pipeline.movie(m).display_name for m in result.items],
                              result.details.goal if result.details else "", result.notice))
    return lines


def transcript_markdown(chats: list[list[ChatLine]], title: str = "Chats") -> str:
    """The transcripts as Markdown: one section a chat, one line a message, the movies recommended."""
    out = [f"# {title}", ""]
    for number, lines in enumerate(chats, 1):
        out += [f"## {number}. {lines[0].user if lines else ''}", ""]
        for line in lines:
            out.append(f"- **User:** {line.user}")
            out.append(f"- **Assistant:** {line.reply or line.notice}")
            movies = ", ".join(f"{t} (id {m})" for m, t in zip(line.items, line.titles)) or "none"
            out.append(f"  - *recommended:* {movies}; *goal:* {line.goal or '–'}")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crs.eval.chats", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint folder (config.json, generator/, ...)")
    parser.add_argument("--openers", default=str(DEFAULT_OPENERS), help="one chat a line, user turns separated by ' || '")
    parser.add_argument("--turns", type=int, default=2, help="user turns played per chat (at most those written)")
    parser.add_argument("--out", help="also write the Markdown here")
    args = parser.parse_args(argv)
    if args.turns < 1:
        parser.error("--turns must be at least 1")
    from crs.serve.models import load_pipeline

    pipeline = load_pipeline(args.checkpoint)
    chats = [play(pipeline, messages, args.turns) for messages in load_openers(args.openers)]
    markdown = transcript_markdown(chats, f"Chats with {args.checkpoint}")
    print(markdown)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(markdown + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
