"""Entity linking: free text → knowledge-graph entities (movies, people, genres).

:meth:`EntityLinker.link` works in five steps:

1. ``@<movieId>`` placeholders (ReDial's way of writing a movie) link straight to their movie.
2. The text is normalised (accents and case folded, apostrophes dropped, other punctuation turned
   into spaces) with a map back to the original characters, and one pass of a pyahocorasick
   automaton finds every alias of every movie, person and genre at word boundaries.
3. Each match must bring the evidence its alias needs (the rules of :mod:`kg.evidence`); movies sharing
   an alias are told apart by a year written after the title, else by how often ReDial mentions them.
4. rapidfuzz scores the word n-grams left over that contain an unknown word (a likely misspelling)
   against the aliases of compatible length and the same first letter; matches scoring at least
   ``fuzzy_cutoff`` join the candidates and need the same evidence as exact ones.
5. Overlaps are resolved greedily: placeholders, then longer spans, then exact before fuzzy matches.

:meth:`EntityLinker.search_titles` ranks titles for autocomplete. Word lists are in :mod:`kg.lexicon`,
text folding in :mod:`kg.text`, thresholds in :class:`kg.config.LinkingConfig`. The evaluation on ReDial
dialogues and the command line (``python -m crs.eval.linking eval|link``) are in ``crs.eval.linking``.
"""

from __future__ import annotations

import bisect
import logging
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterator

import ahocorasick
import numpy as np
from rapidfuzz import fuzz, process
from tqdm import tqdm

from kg.config import LinkingConfig
from kg.evidence import (
    CASED,
    COMMON,
    CUED,
    DISTINCTIVE,
    PlotWords,
    asked_about,
    inside_compound,
    is_capitalised,
    is_quoted,
    is_shouting,
    is_title_cased,
    movie_cue_before,
    name_strength,
    place_cue_before,
    praise_after,
    title_strength,
    year_after,
)
from kg.graph import GENRE, GENRE_ALIASES, GENRE_RELATION, MOVIE, PERSON, KnowledgeGraph, base_name, name_key
from kg.lexicon import (
    AMBIGUOUS_GENRE_WORDS,
    ARABIC_TO_ROMAN,
    ARTICLES,
    COMMON_WORDS,
    GENRE_CONTEXT_WORDS,
    GENRE_WORDS,
    ROMAN_TO_ARABIC,
)
from kg.text import MENTION_RE, normalise_key, normalise_with_offsets
from kg.types import CatalogueLike

logger = logging.getLogger(__name__)

# Between two movies of a list: "Deadpool and logan", "coco, moana or zootopia".
_LIST_GAP_RE = re.compile(r"\s*(?:,|&|/|\band\b|\bor\b|,\s*and\b|,\s*or\b)\s*", re.IGNORECASE)

# search_titles: weight of a prefix match ("the godf" → "the godfather") against a whole-title match.
PREFIX_WEIGHT = 0.95


def title_variants(title: str) -> dict[str, int]:
    """Aliases of one title, each with its rank: 0 the title, 1 a variant, 2 a partial title.

    Variants drop a leading article ("matrix"), join hyphenated words ("spiderman"), swap Roman and
    Arabic sequel numbers ("toy story iii"), drop "part" ("the godfather 2"); partial titles are
    the part before a colon or dash ("borat") and the title without a final "movie" ("lego batman").
    """
    variants: dict[str, int] = {}

    def add(alias: str, rank: int) -> None:
        if alias and rank < variants.get(alias, 3):
            variants[alias] = rank

    add(normalise_key(title), 0)
    if "-" in title:
        add(normalise_key(title.replace("-", "")), 1)
    head = re.split(r"\s*(?::|\s[-–—]\s)\s*", title, maxsplit=1)
    if len(head) == 2:
        prefix = normalise_key(head[0])
        if len(prefix.split()) >= 2 or len(prefix) >= 6:
            add(prefix, 2)
    for alias, rank in list(variants.items()):
        words = alias.split()
        if len(words) > 1 and words[-1] == "movie":
            add(" ".join(words[:-1]), 2)
    for alias, rank in list(variants.items()):
        words = alias.split()
        if len(words) > 1 and words[0] in ARTICLES:
            add(" ".join(words[1:]), max(rank, 1))
    for alias, rank in list(variants.items()):
        words = alias.split()
        if "part" in words[1:]:
            add(" ".join(w for i, w in enumerate(words) if i == 0 or w != "part"), max(rank, 1))
    for alias, rank in list(variants.items()):
        words = alias.split()
        swapped = [words[0]] + [ROMAN_TO_ARABIC.get(w) or ARABIC_TO_ROMAN.get(w) or w for w in words[1:]]
        add(" ".join(swapped), max(rank, 1))
    return variants


@dataclass(frozen=True)
class LinkedEntity:
    """One entity found in a text."""

    start: int  # character span in the input text
    end: int
    surface: str  # the text matched: text[start:end]
    entity: int  # KG entity id
    kind: str  # "movie" | "person" | "genre"
    name: str  # readable KG name
    movie_id: int | None  # ReDial movie id for movies, else None
    score: float  # 100 for exact matches, the rapidfuzz score for fuzzy ones


@dataclass(frozen=True)
class _Target:
    """One thing an alias can stand for."""

    entity: int
    kind: str
    name: str
    popularity: int  # movies: ReDial mentions; people and genres: edges in the graph
    movie_id: int | None = None
    year: int | None = None
    rank: int = 0  # see title_variants; 0 for people and genres
    title: str = ""  # movies: the title this alias comes from, as the catalogue or KG spells it


@dataclass
class _Alias:
    """Everything one normalised alias stands for, and the evidence each kind of target needs."""

    movies: list[_Target]
    people: list[_Target]
    genres: list[_Target]
    movie_strength: str = DISTINCTIVE
    person_strength: str = DISTINCTIVE
    genre_needs_context: bool = False


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    target: _Target
    score: float
    exact: bool
    placeholder: bool = False

    def overlaps(self, other: "_Candidate") -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class _Match:
    """Where an alias sits in the text: token range in the normalised text, character span in the original."""

    key: str
    first_token: int
    last_token: int  # inclusive
    start: int
    end: int


class EntityLinker:
    """Links free text to the movies, people and genres of a knowledge graph; make one with :meth:`build`."""

    def __init__(self, aliases: dict[str, _Alias], movies: dict[int, _Target], config: LinkingConfig,
                 plot_words: PlotWords | None = None):
        self.config = config
        self.plot_words = plot_words  # the word lists the aliases were graded with (a checkpoint ships them)
        self._aliases = aliases
        self._movies = movies  # ReDial movie id → its target, for placeholders
        self._automaton = ahocorasick.Automaton()
        for key in aliases:
            self._automaton.add_word(f" {key} ", key)
        self._automaton.make_automaton()
        self._vocabulary = frozenset(word for key in aliases for word in key.split())
        # Fuzzy choices, blocked by first character and sorted by length (a ratio cutoff bounds the length).
        blocks: dict[str, list[str]] = defaultdict(list)
        for key, alias in aliases.items():
            if self._fuzzy_choice(alias):
                blocks[key[0]].append(key)
        self._fuzzy_blocks = {first: sorted(keys, key=len) for first, keys in blocks.items()}
        self._fuzzy_lengths = {first: [len(key) for key in keys] for first, keys in self._fuzzy_blocks.items()}
        # Title search: every title alias (and "title year") of every movie.
        search_keys, owners = [], []
        order = {movie_id: i for i, movie_id in enumerate(movies)}
        for key, alias in aliases.items():
            for target in alias.movies:
                if target.rank <= 1:
                    search_keys.append(key)
                    owners.append(order[target.movie_id])
                    if target.rank == 0 and target.year:
                        search_keys.append(f"{key} {target.year}")
                        owners.append(order[target.movie_id])
        self._search_keys = search_keys
        self._search_owners = np.asarray(owners, dtype=np.int64)
        self._search_movie_ids = np.asarray(list(movies), dtype=np.int64)
        self._search_popularity = np.asarray([target.popularity for target in movies.values()], dtype=np.int64)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, kg: KnowledgeGraph, catalogue: CatalogueLike, config: LinkingConfig | None = None,
              plot_words: PlotWords | None = None) -> "EntityLinker":
        """Collect the aliases of every catalogue movie, KG person and genre, and index them.

        Pass the extended graph (:func:`kg.graph.load_extended_kg`) so that every catalogue movie has
        an entity; movies without one are skipped with a warning. ``plot_words``: what the plots say
        about words (:class:`kg.evidence.PlotWords`), read from the catalogue's plots when not given
        (a checkpoint's catalogue has none, so it passes the lists it ships).
        """
        config = config or LinkingConfig()
        plot_words = plot_words or PlotWords.of(catalogue, config)
        started = time.perf_counter()
        movie_aliases: dict[str, dict[int, _Target]] = defaultdict(dict)
        movies: dict[int, _Target] = {}
        for movie in tqdm(catalogue.movies, desc="movie aliases", leave=False, disable=None):
            entity = kg.movie_to_entity.get(movie.movie_id)
            if entity is None:
                continue
            name = kg.entity_names[entity]
            movies[movie.movie_id] = _Target(entity, MOVIE, name, movie.mentions, movie.movie_id, movie.year, 0)
            titles = {movie.title: 0}
            if kg.entity_uris[entity] is not None:  # a DBpedia resource: its name may differ from ReDial's
                titles.setdefault(base_name(name), 1)
            for title, title_rank in titles.items():
                for key, rank in title_variants(title).items():
                    rank = max(rank, title_rank)
                    known = movie_aliases[key].get(movie.movie_id)
                    if known is None or rank < known.rank:
                        movie_aliases[key][movie.movie_id] = _Target(
                            entity, MOVIE, name, movie.mentions, movie.movie_id, movie.year, rank, title
                        )
        if len(movies) < len(catalogue):
            logger.warning("%d catalogue movies have no KG entity and cannot be linked (use load_extended_kg)",
                           len(catalogue) - len(movies))

        aliases: dict[str, _Alias] = {}

        def entry(key: str) -> _Alias:
            return aliases.setdefault(key, _Alias(movies=[], people=[], genres=[]))

        for key, targets in movie_aliases.items():
            entry(key).movies.extend(targets.values())

        degree = _degrees(kg)
        first_names: Counter[str] = Counter()
        for entity, (name, kind) in enumerate(zip(kg.entity_names, kg.entity_types)):
            if kind != PERSON:
                continue
            key = normalise_key(base_name(name))
            if len(key.split()) >= config.person_min_words:
                entry(key).people.append(_Target(entity, PERSON, name, int(degree[entity])))
                first_names[key.split()[0]] += 1

        for key, (target, ambiguous) in _genre_aliases(kg, degree).items():
            alias = entry(key)
            alias.genres.append(target)
            alias.genre_needs_context = ambiguous

        plain_words = plot_words.plain if plot_words else set()
        lowercase_words = plot_words.lowercase if plot_words else None
        common_first_names = {word for word, count in first_names.items() if count >= config.first_name_min_people}
        for key, alias in aliases.items():
            alias.movie_strength = title_strength(key, config, plain_words, common_first_names, lowercase_words)
            if alias.movie_strength == CUED and (alias.genres or alias.people):
                alias.movie_strength = CASED  # a genre's or a person's word is no cue's movie
            alias.person_strength = name_strength(key, config)
        linker = cls(aliases, movies, config, plot_words)
        logger.info(
            "entity linker: %d aliases (%d movies, %d people, %d genres) in %.1fs",
            len(aliases), len(movies), sum(bool(a.people) for a in aliases.values()),
            len({t.entity for a in aliases.values() for t in a.genres}), time.perf_counter() - started,
        )
        return linker

    # ------------------------------------------------------------------ linking

    def link(self, text: str) -> list[LinkedEntity]:
        """Entities in ``text``: non-overlapping, in text order."""
        candidates = self._placeholder_candidates(text)
        norm, offsets = normalise_with_offsets(text)
        if norm:
            tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", norm)]
            spans = [(offsets[start], offsets[end - 1] + 1) for start, end in tokens]
            words = [norm[start:end] for start, end in tokens]
            shouting = is_shouting(text)
            matches = list(self._exact_matches(norm, offsets, tokens))
            candidates += self._accept_exact(text, matches, words, shouting)
            covered = [any(start < c.end and c.start < end for c in candidates) for start, end in spans]
            candidates += self._fuzzy_candidates(text, norm, tokens, spans, words, covered, shouting)
        return [
            LinkedEntity(
                start=c.start,
                end=c.end,
                surface=text[c.start:c.end],
                entity=c.target.entity,
                kind=c.target.kind,
                name=c.target.name,
                movie_id=c.target.movie_id,
                score=c.score,
            )
            for c in _resolve(candidates)
        ]

    def link_movies(self, text: str) -> list[int]:
        """ReDial movie ids linked in ``text``, in order, without repeats."""
        return list(dict.fromkeys(e.movie_id for e in self.link(text) if e.movie_id is not None))

    def search_titles(self, query: str, limit: int = 10) -> list[tuple[int, float]]:
        """(movie id, score) of the titles closest to ``query``, best first (for autocomplete).

        A title scores the best rapidfuzz ratio of the query against any of its aliases (and "title
        year"), or 0.95 × the ratio against an alias's first ``len(query)`` characters, so that a
        typed prefix ("the godf") finds its titles; equal scores go to the movie ReDial mentions
        most. Titles below ``search_cutoff`` are left out.
        """
        key = normalise_key(query)
        if not key or limit <= 0 or not self._search_keys:
            return []
        cutoff = self.config.search_cutoff
        whole = process.cdist([key], self._search_keys, scorer=fuzz.ratio, score_cutoff=cutoff)[0]
        prefixes = [alias[: len(key)] for alias in self._search_keys]
        prefix = PREFIX_WEIGHT * process.cdist([key], prefixes, scorer=fuzz.ratio, score_cutoff=cutoff / PREFIX_WEIGHT)[0]
        scores = np.maximum(whole, prefix)
        scores[scores < cutoff] = 0
        best = np.zeros(len(self._search_movie_ids), dtype=np.float64)
        np.maximum.at(best, self._search_owners, scores.astype(np.float64))
        order = np.lexsort((-self._search_popularity, -best))
        return [(int(self._search_movie_ids[i]), round(float(best[i]), 2)) for i in order[:limit] if best[i] > 0]

    # ------------------------------------------------------------------ steps of link()

    def _placeholder_candidates(self, text: str) -> list[_Candidate]:
        candidates = []
        for match in MENTION_RE.finditer(text):
            target = self._movies.get(int(match.group(1)))
            if target is None:
                logger.debug("placeholder %s is not a catalogue movie with an entity", match.group(0))
                continue
            candidates.append(_Candidate(match.start(), match.end(), target, 100.0, exact=True, placeholder=True))
        return candidates

    def _exact_matches(self, norm: str, offsets: list[int], tokens: list[tuple[int, int]]) -> Iterator[_Match]:
        """Every alias occurrence at word boundaries (overlapping ones included)."""
        token_starts = [start for start, _ in tokens]
        for last_char, key in self._automaton.iter(f" {norm} "):
            start = last_char - len(key) - 1  # in norm: the padded key is " key ", the text " norm "
            end = start + len(key)
            first_token = bisect.bisect_left(token_starts, start)
            yield _Match(key, first_token, first_token + key.count(" "), offsets[start], offsets[end - 1] + 1)

    def _accept_exact(self, text: str, matches: list[_Match], words: list[str], shouting: bool) -> list[_Candidate]:
        """Candidates from the exact matches that bring the evidence their alias needs."""
        accepted: list[_Candidate] = []
        ambiguous_genres: list[tuple[_Match, _Target]] = []
        genre_matches: list[_Match] = []
        unproven: list[_Match] = []  # titles with no evidence yet: a place in a list may give it
        for match in matches:
            alias = self._aliases[match.key]
            candidate = self._alias_candidate(text, match.start, match.end, alias, 100.0, True, shouting)
            if candidate is not None:
                accepted.append(candidate)
            elif alias.movie_strength in (CUED, CASED) and alias.movies and not alias.genres:
                unproven.append(match)
            elif alias.genres:
                genre_matches.append(match)
                target = max(alias.genres, key=lambda t: t.popularity)
                if alias.genre_needs_context:
                    ambiguous_genres.append((match, target))
                else:
                    accepted.append(_Candidate(match.start, match.end, target, 100.0, exact=True))
        window = self.config.genre_context_window
        for match, target in ambiguous_genres:
            low, high = match.first_token - window, match.last_token + window
            context = any(word in GENRE_CONTEXT_WORDS for word in words[max(low, 0):high + 1])
            context = context or any(
                other is not match and low <= other.first_token <= high and other.key != match.key
                for other in genre_matches
            )
            if context:
                accepted.append(_Candidate(match.start, match.end, target, 100.0, exact=True))
        waiting = sorted(unproven, key=lambda m: m.start)
        # Two name-like titles joined as a list ("deadpool and logan") vouch for each other.
        paired = {id(m) for a, b in zip(waiting, waiting[1:]) if self._aliases[a.key].movie_strength == CUED
                  and self._aliases[b.key].movie_strength == CUED and a.end <= b.start
                  and _LIST_GAP_RE.fullmatch(text[a.end:b.start]) for m in (a, b)}
        for match in waiting:  # in text order: "coco, moana and logan" chains
            listed = id(match) in paired or any(
                c.target.kind == MOVIE and c.end <= match.start and _LIST_GAP_RE.fullmatch(text[c.end:match.start]) for c in accepted)
            if listed:
                candidate = self._movie_candidate(text, match.start, match.end, self._aliases[match.key], 100.0, True, shouting,
                                                  listed=True)
                if candidate is not None:
                    accepted.append(candidate)
        return accepted

    def _alias_candidate(
        self, text: str, start: int, end: int, alias: _Alias, score: float, exact: bool, shouting: bool
    ) -> _Candidate | None:
        """The movie or person ``text[start:end]`` names, if the text brings the evidence the alias needs.

        Where the alias is also the name of a person with at least ``person_over_title_min_edges`` edges
        (or the movies' title is only partial), the movie needs a year or quotes to win.
        """
        if inside_compound(text, start, end):
            return None
        person = max(alias.people, key=lambda t: t.popularity) if alias.people else None
        if person is None or (
            person.popularity < self.config.person_over_title_min_edges and any(m.rank <= 1 for m in alias.movies)
        ):
            return (self._movie_candidate(text, start, end, alias, score, exact, shouting)
                    or person and self._person_candidate(text, start, end, alias, score, exact, shouting))
        return (
            self._movie_candidate(text, start, end, alias, score, exact, shouting, marked_only=True)
            or self._person_candidate(text, start, end, alias, score, exact, shouting)
            or self._movie_candidate(text, start, end, alias, score, exact, shouting)
        )

    def _movie_candidate(
        self,
        text: str,
        start: int,
        end: int,
        alias: _Alias,
        score: float,
        exact: bool,
        shouting: bool,
        marked_only: bool = False,
        listed: bool = False,
    ) -> _Candidate | None:
        """The movie ``text[start:end]`` names, if the alias has movies and the text brings enough evidence.

        ``marked_only``: only a year or quotes count as evidence. ``listed``: the span follows a linked
        movie in a list ("deadpool and logan", "the matrix and alien"), evidence for a
        :data:`kg.evidence.CUED` or :data:`kg.evidence.CASED` title.
        """
        if not alias.movies:
            return None
        year, year_end = year_after(text, end)
        if year is not None and not any(
            m.year is not None and abs(m.year - year) <= self.config.year_tolerance for m in alias.movies
        ):
            year, year_end = None, end  # a number that is no year of these movies
        strength = alias.movie_strength
        written_words = text[start:end].split()
        marked = year is not None or is_quoted(text, start, (end, year_end))
        if not marked and (
            marked_only
            or strength == COMMON and len(written_words) < self.config.common_title_case_min_words
            or strength != DISTINCTIVE and not is_title_cased(text, start, end, shouting)
            and not self._cued(text, start, end, alias, written_words, shouting, listed)
            or place_cue_before(text, start)  # "a movie set in Chicago": the city
        ):
            return None
        return _Candidate(start, year_end, self._pick_movie(alias.movies, year, text[start:end]), score, exact)

    def _cued(self, text: str, start: int, end: int, alias: _Alias, written_words: list[str], shouting: bool,
              listed: bool) -> bool:
        """Whether the words around a title that lacks case evidence say a movie is meant
        (:mod:`kg.evidence`): for a :data:`CUED` title any movie cue or a capital; for any other (not a
        genre's word, and for a :data:`COMMON` one of enough words besides articles) a strong cue,
        praise after it, or a place in a list of movies (``listed``)."""
        strength = alias.movie_strength
        if strength == CUED and (movie_cue_before(text, start) or is_capitalised(text, start, shouting)):
            return True
        if alias.genres or strength == COMMON and sum(w.casefold() not in ARTICLES for w in written_words) \
                < self.config.common_title_case_min_words:
            return False
        return listed or movie_cue_before(text, start, strong=True) or praise_after(text, end) or asked_about(text, start, end)

    def _person_candidate(
        self, text: str, start: int, end: int, alias: _Alias, score: float, exact: bool, shouting: bool
    ) -> _Candidate | None:
        if alias.person_strength != DISTINCTIVE and not (
            is_quoted(text, start, (end,)) or is_title_cased(text, start, end, shouting)
        ):
            return None
        return _Candidate(start, end, max(alias.people, key=lambda t: t.popularity), score, exact)

    def _pick_movie(self, movies: list[_Target], year: int | None, surface: str) -> _Target:
        """Among movies sharing an alias: that year's (else within tolerance), the same spelling, the lowest
        rank, the most mentioned."""
        pool = movies
        if year is not None:
            tolerance = self.config.year_tolerance
            pool = ([m for m in movies if m.year == year]
                    or [m for m in movies if m.year is not None and abs(m.year - year) <= tolerance]
                    or movies)
        spelled = surface.casefold()
        pool = [m for m in pool if m.title.casefold() == spelled] or pool
        best_rank = min(m.rank for m in pool)
        return max((m for m in pool if m.rank == best_rank), key=lambda m: (m.popularity, -m.entity))

    def _fuzzy_choice(self, alias: _Alias) -> bool:
        """Whether fuzzy matching may map text onto this alias."""
        return bool(
            any(t.rank <= 1 for t in alias.movies) and alias.movie_strength != COMMON
            or alias.people and alias.person_strength != COMMON
            or alias.genres and not alias.genre_needs_context
        )

    def _fuzzy_candidates(
        self,
        text: str,
        norm: str,
        tokens: list[tuple[int, int]],
        spans: list[tuple[int, int]],
        words: list[str],
        covered: list[bool],
        shouting: bool,
    ) -> list[_Candidate]:
        """Fuzzy matches of the word n-grams that hold an unknown word and no linked one."""
        unknown = [
            not covered[i] and word.isalpha() and len(word) >= 3
            and word not in self._vocabulary and word not in COMMON_WORDS
            for i, word in enumerate(words)
        ]
        if not any(unknown):
            return []
        candidates = []
        tried: set[tuple[int, int]] = set()
        for i in (i for i, flag in enumerate(unknown) if flag):
            for size in range(1, self.config.max_fuzzy_words + 1):
                for first in range(max(0, i - size + 1), min(i, len(words) - size) + 1):
                    last = first + size - 1
                    if (first, last) in tried or any(covered[first:last + 1]):
                        continue
                    tried.add((first, last))
                    query = norm[tokens[first][0]:tokens[last][1]]
                    if len(query) < self.config.min_fuzzy_chars:
                        continue
                    for key, score in self._fuzzy_lookup(query):
                        alias = self._aliases[key]
                        start, end = spans[first][0], spans[last][1]
                        candidate = self._alias_candidate(text, start, end, alias, score, False, shouting)
                        if candidate is None and alias.genres and not alias.genre_needs_context:
                            target = max(alias.genres, key=lambda t: t.popularity)
                            candidate = _Candidate(start, end, target, score, exact=False)
                        if candidate is not None:
                            candidates.append(candidate)
                            break  # the best-scoring alias that links wins this n-gram
        return candidates

    def _fuzzy_lookup(self, query: str, limit: int = 3) -> list[tuple[str, float]]:
        """Aliases (same first character, compatible length) scoring at least ``fuzzy_cutoff``, best first."""
        keys = self._fuzzy_blocks.get(query[0])
        if not keys:
            return []
        cutoff = self.config.fuzzy_cutoff / 100.0
        lengths = self._fuzzy_lengths[query[0]]
        if cutoff > 0:  # ratio = 2·common / (len a + len b) ≥ cutoff bounds len b
            low = bisect.bisect_left(lengths, len(query) * cutoff / (2 - cutoff) - 1e-9)
            high = bisect.bisect_right(lengths, len(query) * (2 - cutoff) / cutoff + 1e-9)
            keys = keys[low:high]
        found = process.extract(query, keys, scorer=fuzz.ratio, score_cutoff=self.config.fuzzy_cutoff, limit=limit)
        return [(key, float(score)) for key, score, _ in found]


# ---------------------------------------------------------------------- helpers


def _degrees(kg: KnowledgeGraph) -> np.ndarray:
    """Edges per entity, self-loops left out."""
    heads, tails = kg.edge_index
    keep = kg.edge_type != kg.self_loop_relation if kg.self_loop_relation is not None else slice(None)
    ends = np.concatenate([heads[keep].numpy(), tails[keep].numpy()])
    return np.bincount(ends, minlength=kg.num_entities)


def _genre_aliases(kg: KnowledgeGraph, degree: np.ndarray) -> dict[str, tuple[_Target, bool]]:
    """Normalised genre word → (its genre target, whether the word is ambiguous).

    Each genre of GENRE_WORDS resolves to the graph's genre entity with the most movies, looked up
    under the genre's name, its GENRE_ALIASES name and "<name> film"/"<name> fiction". Genres with
    movies that GENRE_WORDS does not cover link by their multi-word names ("comedy drama").
    """
    genre_rel = kg.relation_id(GENRE_RELATION) if GENRE_RELATION in kg.relation_names else -1
    heads, tails = kg.edge_index.numpy()
    is_movie = np.zeros(kg.num_entities, dtype=bool)
    is_movie[list(kg.movie_to_entity.values())] = True
    genre_edges = (kg.edge_type.numpy() == genre_rel) & is_movie[heads]
    movie_count = np.bincount(tails[genre_edges], minlength=kg.num_entities)

    by_key: dict[str, list[int]] = defaultdict(list)
    for entity, (name, kind) in enumerate(zip(kg.entity_names, kg.entity_types)):
        if kind == GENRE:
            by_key[name_key(name)].append(entity)

    def target(entity: int) -> _Target:
        return _Target(entity, GENRE, kg.entity_names[entity], int(movie_count[entity]) or int(degree[entity]))

    aliases: dict[str, tuple[_Target, bool]] = {}
    covered: set[int] = set()
    for genre, words in GENRE_WORDS.items():
        names = dict.fromkeys([GENRE_ALIASES.get(genre, genre), genre, f"{genre} film", f"{genre} fiction"])
        entities = [entity for name in names for entity in by_key.get(name, [])]
        if not entities:
            logger.warning("no genre entity for %r: its words will not link", genre)
            continue
        best = max(entities, key=lambda e: (movie_count[e], degree[e]))
        covered.update(entities)
        for word in words:
            aliases[normalise_key(word)] = (target(best), word in AMBIGUOUS_GENRE_WORDS)
    for entity in np.flatnonzero(movie_count).tolist():
        key = normalise_key(base_name(kg.entity_names[entity]))
        if entity not in covered and len(key.split()) >= 2 and key not in aliases:
            head = re.sub(r" (film|films|fiction)$", "", key)
            if head not in aliases:
                aliases[key] = (target(entity), False)
    return aliases


def _resolve(candidates: list[_Candidate]) -> list[_Candidate]:
    """Non-overlapping candidates in text order: placeholders, then longer spans, exact ones, higher scores."""
    chosen: list[_Candidate] = []
    for candidate in sorted(candidates, key=lambda c: (not c.placeholder, c.start - c.end, not c.exact, -c.score, c.start)):
        if not any(candidate.overlaps(other) for other in chosen):
            chosen.append(candidate)
    return sorted(chosen, key=lambda c: c.start)
