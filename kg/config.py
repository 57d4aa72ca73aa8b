"""Typed configuration of the knowledge-graph package: the graph's metadata extension and entity linking.

``crs.config`` makes these dataclasses fields of its root config (keys ``kg.*`` and ``linking.*``),
so YAML files and ``key.sub=value`` overrides reach them there; kg itself imports nothing from crs.
:class:`ConfigError` is defined here and re-exported by ``crs.config``: one error type for every key.
"""

from __future__ import annotations

from dataclasses import dataclass


class ConfigError(ValueError):
    """A configuration key is unknown, mistyped or out of range."""


def _check(condition: bool, key: str, message: str, value: object) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message} (got {value!r})")


@dataclass
class KGConfig:
    # Give every catalogue movie metadata edges (genre, director, writer, star) from
    # movie_info.json, not only the movies missing from the DBpedia subgraph.
    enrich_linked_movies: bool = True
    # False: movies missing from DBpedia still get a node, but no metadata edges at all
    # (the "without the metadata-extended KG" ablation).
    metadata_edges: bool = True


@dataclass
class LinkingConfig:
    # rapidfuzz score (0-100) a fuzzy title/name match must reach.
    fuzzy_cutoff: float = 90.0
    # Spans shorter than this (characters) are only linked on an exact, case-sensitive match
    # (or with a year or quotes around them); they are never fuzzy-matched.
    min_fuzzy_chars: int = 6
    # Fuzzy matching tries word n-grams up to this many words long.
    max_fuzzy_words: int = 6
    # A title of at least this many words, one of them not a common word, links in any case
    # ("the matrix", "black panther"); shorter or all-common titles need evidence (case, year, quotes).
    caseless_min_words: int = 2
    # Titles made of common words only ("It", "Up", "Get Out", "Love Actually") need a year or quotes,
    # or Title Case if they have at least this many words ("Get Out" but not "It").
    common_title_case_min_words: int = 2
    # A word used in at least this many catalogue plot synopses is ordinary English ("american",
    # "game"): titles made of such words ("The American") need Title Case, a year or quotes.
    common_word_min_plots: int = 20
    # A one-word title that is the first name of at least this many people in the graph ("Jack",
    # "Amy", "Ted") needs a year or quotes, like a common word.
    first_name_min_people: int = 10
    # A one-word title of at least this many characters that fewer than ``cued_title_max_lowercase_plots``
    # plot synopses write in lower case (a name, not a word: "Inception", "Jumanji", "Titanic") also
    # links in lower case after a movie cue ("I loved inception", "have you seen titanic?").
    cued_title_min_chars: int = 4
    cued_title_max_lowercase_plots: int = 2
    # A year after a title picks the movie of that year, or one at most this many years off.
    year_tolerance: int = 1
    # People link by their full name; names with fewer words than this are not linked.
    person_min_words: int = 2
    # A person's name beats a movie of the same title (without a year or quotes) when the person has
    # at least this many graph edges ("Emma Stone"); some DBpedia "people" are works ("Star Wars").
    person_over_title_min_edges: int = 10
    # Ambiguous genre words ("family", "war", "funny") link only with a movie word ("movie", "genre",
    # "something", ...) or another genre at most this many words away.
    genre_context_window: int = 2
    # search_titles drops titles scoring below this (rapidfuzz ratio against a title or its prefix, 0-100).
    search_cutoff: float = 60.0

    def __post_init__(self) -> None:
        _check(0.0 <= self.fuzzy_cutoff <= 100.0, "linking.fuzzy_cutoff", "must lie in [0, 100]", self.fuzzy_cutoff)
        _check(self.min_fuzzy_chars >= 1, "linking.min_fuzzy_chars", "must be >= 1", self.min_fuzzy_chars)
        _check(self.max_fuzzy_words >= 1, "linking.max_fuzzy_words", "must be >= 1", self.max_fuzzy_words)
        _check(self.caseless_min_words >= 1, "linking.caseless_min_words", "must be >= 1", self.caseless_min_words)
        _check(self.common_title_case_min_words >= 1, "linking.common_title_case_min_words", "must be >= 1",
               self.common_title_case_min_words)
        _check(self.common_word_min_plots >= 1, "linking.common_word_min_plots", "must be >= 1", self.common_word_min_plots)
        _check(self.first_name_min_people >= 1, "linking.first_name_min_people", "must be >= 1", self.first_name_min_people)
        _check(self.cued_title_min_chars >= 1, "linking.cued_title_min_chars", "must be >= 1", self.cued_title_min_chars)
        _check(self.cued_title_max_lowercase_plots >= 1, "linking.cued_title_max_lowercase_plots", "must be >= 1",
               self.cued_title_max_lowercase_plots)
        _check(self.year_tolerance >= 0, "linking.year_tolerance", "must be >= 0", self.year_tolerance)
        _check(self.person_min_words >= 1, "linking.person_min_words", "must be >= 1", self.person_min_words)
        _check(self.person_over_title_min_edges >= 0, "linking.person_over_title_min_edges", "must be >= 0",
               self.person_over_title_min_edges)
        _check(self.genre_context_window >= 0, "linking.genre_context_window", "must be >= 0", self.genre_context_window)
        _check(0.0 <= self.search_cutoff <= 100.0, "linking.search_cutoff", "must lie in [0, 100]", self.search_cutoff)
