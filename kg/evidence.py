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
* A one-word title that is a name rather than a word — fewer than ``cued_title_max_lowercase_plots``
  plot synopses write it in lower case ("Inception", "Jumanji", "Titanic"), at least
  ``cued_title_min_chars`` letters, no genre's or request's word (:func:`request_word`: "italian",
  "christmas") — also links in lower case after a movie cue
  ("I loved inception", "have you seen titanic?", "something like jaws": :func:`movie_cue_before`),
  after a linked movie in a list ("the matrix and logan") or joined to another such title ("deadpool
  and logan"), or capitalised even as a sentence's first
  word ("Inception was amazing").
  Words the plots use in lower case ("frozen", "alien", "speed"), and titles of two or more common
  words ("get out", "mean girls"), keep needing Title Case, a strong cue right before them (a watching
  verb, "the movie", "what about", "something like": "have you seen frozen?", "I watched split",
  "anything like mean girls"), praise right
  after them ("Interstellar was amazing", "gladiator is so good": :func:`praise_after`), or a linked
  movie right before them in a list ("the matrix and alien").
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
from dataclasses import dataclass

from kg.config import LinkingConfig
from kg.lexicon import (
    COMMON_WORDS,
    COUNTRY_NAMES,
    COUNTRY_WORDS,
    MINOR_WORDS,
    PLACE_WORDS,
    QUOTES,
    SENTENCE_END,
    STUDIO_WORDS,
    THEMES,
)
from kg.types import CatalogueLike

# How much evidence an alias needs.
DISTINCTIVE = "distinctive"  # links in any case
CASED = "cased"  # needs Title Case, a year or quotes
COMMON = "common"  # needs a year or quotes (or Title Case, for titles of common_title_case_min_words words)
CUED = "cued"  # needs what CASED needs, or a movie cue before it (a one-word title no plot writes in lower case)

# A movie cue right before a lower-case one-word title: a verb of watching or liking ("seen",
# "loved", "watching"), "like" / "such as" / "than" / "favorite is", maybe with an adverb or "the movie".
# Watching verbs, "the movie", "what about" and "something like" are strong cues: a title plots also
# use as a word ("frozen", "split", "mean girls", "get out") links after them ("have you seen
# frozen?", "anything like mean girls"), not after the verb "like" ("I like speed").
_CUE_ADVERB = r"(?:(?:really|also|just|totally|absolutely|already|ever|never|finally|recently|the movie|the film)\s+)?"
_STRONG_CUE_RE = re.compile(
    r"(?:\b(?:seen|saw|watched|watching|rewatched|re-watched)\s+" + _CUE_ADVERB
    + r"|\b(?:the movie|the film|what about|how about|similar to|such as|(?:something|anything|movies?|films?|ones?|stuff) like)\s+)$"
)
_MOVIE_CUE_RE = re.compile(
    r"\b(?:seen|saw|see|watched|watch|watching|rewatched|re-watched|loved|love|liked|like|enjoyed|enjoy|hated|"
    r"adored|recommend|recommended|including|especially|than|such as|similar to|favou?rite(?: movie| film)? (?:is|was)|"
    r"what about|how about|think of|thoughts on|opinion of|directed|not|except|besides|other than|instead of)"
    r"\s+" + _CUE_ADVERB + "$"
)

# "(1995)" after a title, maybe after its final punctuation ("Airplane! (1980)"), or a bare "1995".
_YEAR_AFTER_RE = re.compile(
    r"(?:[.!?…]*\s*[(\[]\s*(?P<paren>(?:18|19|20)\d\d)\s*[)\]]|\s*(?P<bare>(?:19|20)\d\d)\b)"
)


def title_strength(key: str, config: LinkingConfig, plain_words: set[str], first_names: set[str],
                   lowercase_words: frozenset[str] | None = None) -> str:
    """How much evidence a movie alias needs (see the module docstring). ``lowercase_words``: the
    words plots write in lower case (:class:`PlotWords`); None when no plot is known (no title is cued).

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
        if (lowercase_words is not None and len(words) == 1 and words[0].isalpha()
                and len(words[0]) >= config.cued_title_min_chars and words[0] not in lowercase_words
                and not request_word(words[0])):
            return CUED
        return CASED
    return DISTINCTIVE


_THEME_WORD_RE = re.compile("|".join(f"(?:{request})" for request, _, _ in THEMES.values()))


def request_word(word: str) -> bool:
    """Whether ``word`` is what a request says for something else than a title: a nationality
    ("italian"), a studio ("pixar"), a place word or a theme ("christmas", "zombies")."""
    return (word in COUNTRY_WORDS or word in COUNTRY_NAMES or word in STUDIO_WORDS or word in PLACE_WORDS
            or bool(_THEME_WORD_RE.fullmatch(word)))


# Praise right after a title ("Interstellar was amazing", "gladiator is so good"): what one says of a movie.
_PRAISE_AFTER_RE = re.compile(
    r"\s+(?:was|is|'s)\s+(?:so\s+|really\s+|very\s+|pretty\s+|just\s+|absolutely\s+|such\s+|truly\s+)?"
    r"(?:amazing|awesome|great|good|fantastic|excellent|brilliant|incredible|wonderful|hilarious|terrifying|"
    r"a\s+(?:great|good|classic|masterpiece|fantastic|fun)|one\s+of\s+my|my\s+(?:fav|all[-\s]time))\b"
)


# A question about a movie ("is frozen good for kids?", "was alien scary", "how was dunkirk?"): a
# sentence opening with "is"/"was"/"how is" right before the title, and a judgement right after it.
_ASKED_BEFORE_RE = re.compile(r"(?:^|[.!?]\s*|\b(?:so|and|but|hey|also)\s+)(?:is|was|isn't|wasn't|how\s+(?:is|was))\s+$")
_ASKED_AFTER_RE = re.compile(
    r"(?:\s+(?:any\s+|really\s+|too\s+|very\s+|that\s+|a\s+)?(?:good|bad|scary|funny|sad|violent|gory|worth|ok|okay|"
    r"appropriate|suitable|kid[-\s]friendly|family[-\s]friendly|for\s+kids|for\s+children|for\s+a\s+date|"
    r"a\s+(?:good|kids?|family|horror|comedy|sequel|remake)|any\s+good|like)\b|\s*\?)"
)


def praise_after(text: str, end: int) -> bool:
    """Whether praise follows ``end`` right away ("… was amazing", "… is one of my favorites")."""
    return bool(_PRAISE_AFTER_RE.match(text[end:end + 60].casefold()))


# Where a story happens, right before a name ("a movie set in Chicago", "takes place in Paris",
# "I live in Chicago"): a place, not the film of that name, unless a year or quotes mark it.
_PLACE_CUE_RE = re.compile(
    r"\b(?:set|takes?\s+place|took\s+place|taking\s+place|located|lives?|living|lived|moved|trip|"
    r"vacation|holiday|visit|visiting|visited|born|grew\s+up)\s+(?:in|to|at)\s+(?:the\s+city\s+of\s+)?$"
)


def place_cue_before(text: str, start: int) -> bool:
    """Whether a place cue ("set in", "takes place in", "live in") ends right before ``start``."""
    return bool(_PLACE_CUE_RE.search(text[max(0, start - 40):start].casefold()))


def asked_about(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is what a question asks about: "is frozen good for kids?",
    "was alien scary?", "how was dunkirk?"."""
    return bool(_ASKED_BEFORE_RE.search(text[max(0, start - 20):start].casefold())) and bool(_ASKED_AFTER_RE.match(text[end:end + 40].casefold()))


def movie_cue_before(text: str, start: int, strong: bool = False) -> bool:
    """Whether a movie cue ("seen", "loved", "something like", "favorite is") ends right before
    ``start``; ``strong``: a watching verb, "the movie", "what about" or "something like" ("have you
    seen", "I watched", "anything like")."""
    return bool((_STRONG_CUE_RE if strong else _MOVIE_CUE_RE).search(text[max(0, start - 40):start].casefold()))


@dataclass(frozen=True)
class PlotWords:
    """What the catalogue's plot synopses say about words, kept without the synopses (a checkpoint
    ships these lists, not the plots): ``plain`` are used in at least ``common_word_min_plots`` plots
    (ordinary English); ``lowercase`` are written in lower case in at least
    ``cued_title_max_lowercase_plots`` plots (words, not names)."""

    plain: frozenset[str]
    lowercase: frozenset[str]

    @classmethod
    def of(cls, catalogue: CatalogueLike, config: LinkingConfig) -> PlotWords | None:
        """The lists of ``catalogue``'s plots (one pass over them); None when no movie has a plot (a
        checkpoint's catalogue)."""
        if not any(movie.plot for movie in catalogue.movies):
            return None
        folded, lowercase = _plot_word_counts(catalogue)
        return cls(frozenset(w for w, n in folded.items() if n >= config.common_word_min_plots),
                   frozenset(w for w, n in lowercase.items() if n >= config.cued_title_max_lowercase_plots))

    def to_dict(self) -> dict:
        return {"plain": sorted(self.plain), "lowercase": sorted(self.lowercase)}

    @classmethod
    def from_dict(cls, data: dict) -> PlotWords:
        if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("plain", "lowercase")):
            raise ValueError("expected {'plain': [...], 'lowercase': [...]}")
        return cls(frozenset(map(str, data["plain"])), frozenset(map(str, data["lowercase"])))


def plot_words(catalogue: CatalogueLike, min_plots: int) -> set[str]:
    """Words used in at least ``min_plots`` plot synopses of the catalogue: ordinary words, not names."""
    return {word for word, count in _plot_word_counts(catalogue)[0].items() if count >= min_plots}


def _plot_word_counts(catalogue: CatalogueLike) -> tuple[Counter[str], Counter[str]]:
    """In how many plots each word occurs, case folded, and in how many it is written in lower case."""
    folded: Counter[str] = Counter()
    lowercase: Counter[str] = Counter()
    for movie in catalogue.movies:
        if movie.plot:
            plot = movie.plot.replace("'", "").replace("’", "")
            folded.update(set(re.findall(r"[^\W_]+", plot.casefold())))
            lowercase.update({word for word in re.findall(r"[^\W_]+", plot) if word.islower()})
    return folded, lowercase


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


def is_capitalised(text: str, start: int, shouting: bool) -> bool:
    """Whether the word at ``start`` starts with a capital (the sentence's first word too), in a text
    that is not shouted: a :data:`CUED` title's spelling as a name ("Inception was amazing")."""
    return not shouting and start < len(text) and text[start].isupper()


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
