"""When a matched span counts as an entity: the evidence (case, year, quotes) each alias needs.

Evidence rules (thresholds in :class:`kg.config.LinkingConfig`). A word is *common* when it is in
``COMMON_WORDS``: English function words plus the most frequent words of ReDial's training messages
("it", "up", "her", "fun", "date", "night", "scary", "movie", ...). A word is *plain* when it is
common or used in at least ``common_word_min_plots`` of the catalogue's plot synopses ("american",
"president", "game").

* Titles made of common words only ("It", "Up", "Her", "Get Out", "Date Night", "Scary Movie"), and
  one-word titles that are the first name of at least ``first_name_min_people`` people in the graph
  ("Jack", "Amy", "Ted") link only with a year after them ("Up (2009)") or in quotes, or, if they
  have at least ``common_title_case_min_words`` words, in Title Case ("Get Out", not "It").
* Titles of one word, shorter than ``min_fuzzy_chars`` or made of plain words ("Heat", "Signs",
  "Frozen", "The American") need a year, quotes or Title Case (a capitalised word that does not
  start the sentence; a shouted, mostly upper-case message gives no case evidence).
* Other titles of at least ``caseless_min_words`` words ("the matrix", "black panther") link in any case.
* Movies sharing the alias: a year after the title picks that year's movie (within
  ``year_tolerance``); then a title spelled exactly as written; then the lowest alias rank (title,
  variant, partial title); then the most ReDial mentions.
* People link by full name (at least ``person_min_words`` words) in any case, unless every word is
  common. The full name of a person with at least ``person_over_title_min_edges`` graph edges beats
  a movie of the same name ("Emma Stone"), as does any person's name a partial title ("Kevin Hart"
  for "Kevin Hart: Laugh at My Pain"), unless a year or quotes mark the movie. (Some DBpedia
  "people" are works, "Star Wars" among them: they rarely have many edges.)
* Genres link by their words ("comedy", "comedies", "sci-fi", "romantic"); ambiguous ones
  ("family", "war", "funny") need a movie word ("movies", "genre", "something") or another genre
  within ``genre_context_window`` words.

:func:`title_strength` and :func:`name_strength` grade an alias once, when the linker is built;
:func:`year_after`, :func:`is_quoted`, :func:`is_title_cased` and :func:`inside_compound` read the
evidence a text brings around one span.
"""

from __future__ import annotations

import re
from collections import Counter

from kg.config import LinkingConfig
from kg.lexicon import COMMON_WORDS, MINOR_WORDS, QUOTES, SENTENCE_END
from kg.types import CatalogueLike

# How much evidence an alias needs.
DISTINCTIVE = "distinctive"  # links in any case
CASED = "cased"  # needs Title Case, a year or quotes
COMMON = "common"  # needs a year or quotes (or Title Case, for titles of common_title_case_min_words words)

# "(1995)" after a title, maybe after its final punctuation ("Airplane! (1980)"), or a bare "1995".
_YEAR_AFTER_RE = re.compile(
    r"(?:[.!?…]*\s*[(\[]\s*(?P<paren>(?:18|19|20)\d\d)\s*[)\]]|\s*(?P<bare>(?:19|20)\d\d)\b)"
)


def title_strength(key: str, config: LinkingConfig, plain_words: set[str], first_names: set[str]) -> str:
    """How much evidence a movie alias needs (see the module docstring).

    A lone letter is read with the next word ("x men" is one word, "xmen"), and counts as common
    when it stands alone ("G", "M").
    """
    words: list[str] = []
    for word in reversed(key.split()):
        if len(word) == 1 and word.isalpha() and word not in COMMON_WORDS and words:
            words[-1] = word + words[-1]
        else:
            words.append(word)
    if all(word in COMMON_WORDS or word.isdigit() or len(word) == 1 for word in words):
        return COMMON
    if len(words) == 1 and words[0] in first_names:
        return COMMON
    if all(word in COMMON_WORDS or word in plain_words or word.isdigit() for word in words):
        return CASED
    if len(words) < config.caseless_min_words or len(key) < config.min_fuzzy_chars:
        return CASED
    return DISTINCTIVE


def plot_words(catalogue: CatalogueLike, min_plots: int) -> set[str]:
    """Words used in at least ``min_plots`` plot synopses of the catalogue: ordinary words, not names."""
    counts: Counter[str] = Counter()
    for movie in catalogue.movies:
        if movie.plot:
            counts.update(set(re.findall(r"[^\W_]+", movie.plot.casefold().replace("'", "").replace("’", ""))))
    return {word for word, count in counts.items() if count >= min_plots}


def name_strength(key: str, config: LinkingConfig) -> str:
    """How much evidence a person's name needs: none, unless it is short or made of common words."""
    if all(word in COMMON_WORDS for word in key.split()):
        return COMMON
    return CASED if len(key) < config.min_fuzzy_chars else DISTINCTIVE


def year_after(text: str, end: int) -> tuple[int | None, int]:
    """A year written right after position ``end`` ("Heat (1995)", "Heat 1995"), and where it ends."""
    match = _YEAR_AFTER_RE.match(text, end)
    if match is None:
        return None, end
    return int(match.group("paren") or match.group("bare")), match.end()


def is_quoted(text: str, start: int, ends: tuple[int, ...]) -> bool:
    """Whether a quote mark sits right before ``start`` and right after one of ``ends``."""
    if start == 0 or text[start - 1] not in QUOTES:
        return False
    return any(end < len(text) and text[end] in QUOTES for end in ends)


def inside_compound(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is only part of a hyphenated word ("Men" in "X-Men")."""
    before = start >= 2 and text[start - 1] in "-‐" and text[start - 2].isalnum()
    after = end + 1 < len(text) and text[end] in "-‐" and text[end + 1].isalnum()
    return before or after


def is_sentence_start(text: str, start: int) -> bool:
    prefix = text[:start].rstrip(" \t\"'“”‘’«»*_([")
    return not prefix or prefix[-1] in SENTENCE_END


def is_shouting(text: str) -> bool:
    """Mostly upper-case text, whose capitals say nothing about titles."""
    letters = [char for char in text if char.isalpha()]
    return len(letters) >= 12 and sum(char.isupper() for char in letters) >= 0.7 * len(letters)


def is_title_cased(text: str, start: int, end: int, shouting: bool) -> bool:
    """Whether ``text[start:end]`` is written in Title Case, with a capital that does not start the sentence."""
    if shouting:
        return False
    sentence_start = is_sentence_start(text, start)
    evidence = False
    for position, chunk in enumerate(text[start:end].split()):
        letters = [char for char in chunk if char.isalnum()]
        if not letters or letters[0].isdigit() or "".join(letters).casefold() in MINOR_WORDS:
            continue
        if not letters[0].isupper():
            return False
        evidence = evidence or position > 0 or not sentence_start
    return evidence
