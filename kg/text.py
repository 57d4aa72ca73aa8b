"""Text helpers kg and crs.data share: ReDial's ``@<movieId>`` placeholders, and the folding that
aliases are matched under."""

from __future__ import annotations

import re
import unicodedata

# ReDial writes a movie as "@<movieId>" in its dialogues.
MENTION_RE = re.compile(r"@(\d+)")
_APOSTROPHES = frozenset("'’‘`´")


def normalise_with_offsets(text: str) -> tuple[str, list[int]]:
    """Fold ``text`` for matching, keeping for each output character the index it came from.

    Accents are stripped and case folded, apostrophes dropped ("Schindler's" → "schindlers"), "&"
    becomes "and", every other non-alphanumeric run becomes one space; no space at either end.
    """
    chars: list[str] = []
    offsets: list[int] = []
    for index, char in enumerate(text):
        if char in _APOSTROPHES:
            continue
        if char == "&":
            pieces = " and "
        else:
            decomposed = unicodedata.normalize("NFKD", char)
            pieces = "".join(piece for piece in decomposed if not unicodedata.combining(piece)).casefold()
        for piece in pieces:
            if piece.isalnum():
                chars.append(piece)
                offsets.append(index)
            elif chars and chars[-1] != " ":
                chars.append(" ")
                offsets.append(index)
    if chars and chars[-1] == " ":
        chars.pop()
        offsets.pop()
    return "".join(chars), offsets


def normalise_key(text: str) -> str:
    """The folded form aliases are stored and matched under: ``"Spider-Man: Homecoming"`` → ``"spider man homecoming"``."""
    return normalise_with_offsets(text)[0]
