"""Entity linking: free text → knowledge-graph entities (movies, people, genres).

:meth:`EntityLinker.link` works in five steps:

1. ``@<movieId>`` placeholders (ReDial's way of writing a movie) link straight to their movie.
2. The text is normalised (accents and case folded, apostrophes dropped, other punctuation turned
   into spaces) with a map back to the original characters, and one pass of a pyahocorasick
   automaton finds every alias of every movie, person and genre at word boundaries.
3. Each match must bring the evidence its alias needs (see below); movies sharing an alias are told
   apart by a year written after the title, else by how often ReDial mentions them.
4. rapidfuzz scores the word n-grams left over that contain an unknown word (a likely misspelling)
   against the aliases of compatible length and the same first letter; matches scoring at least
   ``fuzzy_cutoff`` join the candidates and need the same evidence as exact ones.
5. Overlaps are resolved greedily: placeholders, then longer spans, then exact before fuzzy matches.

:meth:`EntityLinker.search_titles` ranks titles for autocomplete. Command line (tune with
``--split train``, report on the default official test split)::

    python -m kg.linking eval [--data-dir DIR] [--split train|valid|test] [--limit N] [--no-year | --both]
                              [--show-errors N] [--set linking.KEY=VALUE ...]
    python -m kg.linking link "I loved The Matrix, anything with Keanu Reeves?"

Evidence rules (thresholds in :class:`crs.config.LinkingConfig`). A word is *common* when it is in
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
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import re
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterator

import ahocorasick
import numpy as np
from rapidfuzz import fuzz, process
from tqdm import tqdm

from crs.config import DataConfig, LinkingConfig, add_config_arguments, config_from_args
from crs.data.catalogue import Catalogue, split_title
from crs.data.redial import MENTION_RE, normalise_text
from crs.data.splits import APPROX_TRAIN_FILE, SPLITS, TEST_FILE, load_split, train_path
from kg.graph import (
    GENRE,
    GENRE_ALIASES,
    GENRE_RELATION,
    MOVIE,
    PERSON,
    KnowledgeGraph,
    base_name,
    load_extended_kg,
    name_key,
)

logger = logging.getLogger(__name__)

# English function words and the ~600 most frequent words of ReDial train_subset.jsonl messages
# (placeholders removed, names of people and franchises taken out). Tuned on train only.
COMMON_WORDS = frozenset(
    """
    80s 90s a able about above absolutely action actor actors actually add adult adults adventure after afternoon
    again against ago agree ah all almost along alot already alright also although always am amazing an and animated
    animation another any anything appreciate are arent around as asking at awesome back bad based be because been
    before being believe below best bet better between big bit black book books both boy british bro but by bye
    called came can cant care catch chance chat chatting check children childrens choice choices choose christmas
    classic classics come comedies comedy comes comic coming consider cool could couldnt couple course crazy creepy
    crime cry cute d dark date daughter day days decent definitely did didnt different director do documentary does
    doesnt doing don done dont down drama dramas during each either else end enjoy enjoyed enough entertaining
    especially even evening ever every everyone everything exactly excellent except excited familiar family fan
    fantastic fantasy far fav favorite favorites feel few fi fiction film films find fine first flick flicks for
    forget forgot forward found franchise friend friendly friends from full fun funny further gave genre genres get
    gets getting girl girls give glad go goes going good goodbye gory got great guess guy guys ha had haha hahaha
    happy hard has hasnt have havent having he hear heard hello help helped helpful her here hero hers herself hes
    hey hi high highly hilarious him himself his historical hmm hmmm home honestly hope hopefully hoping horror how
    hows huge humor husband i id idea ideas if ill im in intense interest interested interesting into is isnt it its
    itself ive job just keep kid kids kind kinda kinds king know last lately later laugh least let lets life like
    liked likes line lines list little live lol long look looking looks lot lots love loved loves made main make
    makes man many may maybe me mean meant mentioned might mind mine modern mood more morning most movie movies much
    music musical musicals must my myself mystery name need never new newer next nice night no nope nor not nothing
    now of off oh ohh ok okay old older on once one ones only ooh open opinion or original other others our ours
    ourselves out over own packed part particular past people perfect perhaps pick plays please plot popular prefer
    pretty probably problem psychological put quite rated re read real really recent recently recommend
    recommendation recommendations related remake remember reminds rent rest reviews rewatch right rock romance
    romantic s sad said same saw say scary scenes school sci science second see seeing seem seems seen sequel
    sequels series serious set she shes should shouldnt show silly similar since so some something son soon sorry
    sort sound sounds space specific sports star starring stars start still stories story stuff style such suggest
    suggestion suggestions super superhero supposed sure suspense sweet t take talking taste teens tell than thank
    thanks that thats the theater theaters their theirs them themselves then there theres these they theyre thing
    things think thinking this those though thought three thriller thrillers through time times to today together
    tonight too top totally trailer true try trying twist two type types u under until up us used usually version
    very wait want wanted wanting war was wasnt watch watched watching way we week weekend weird welcome well were
    werent western weve what whats when where which while who whole whom why will with won wonderful wont work world
    worth would wouldnt wow wrong ya yea yeah year years yep yes yet you youd youll young your youre yours yourself
    yourselves youve yup
    monday tuesday wednesday thursday friday saturday sunday january february march april june july august
    september october november december holiday holidays
    """.split()
)
# Words Title Case leaves in lower case ("The Lord of the Rings").
MINOR_WORDS = frozenset("a an and as at but by for from in nor of on or the to vs with".split())
ARTICLES = frozenset({"the", "a", "an"})
QUOTES = frozenset("\"'“”‘’«»")
SENTENCE_END = frozenset(".!?:;\n")
ROMAN_TO_ARABIC = {"ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9"}
ARABIC_TO_ROMAN = {arabic: roman for roman, arabic in ROMAN_TO_ARABIC.items()}
_APOSTROPHES = frozenset("'’‘`´")
# "(1995)" after a title, maybe after its final punctuation ("Airplane! (1980)"), or a bare "1995".
_YEAR_AFTER_RE = re.compile(
    r"(?:[.!?…]*\s*[(\[]\s*(?P<paren>(?:18|19|20)\d\d)\s*[)\]]|\s*(?P<bare>(?:19|20)\d\d)\b)"
)

# Genre words in text, keyed by the genre they mean: a ReDial (IMDb) genre, looked up in the graph as
# kg.graph's metadata extension does (GENRE_ALIASES, "<genre> (genre)" nodes), or another KG genre.
GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "action": ("action",),
    "adventure": ("adventure", "adventures"),
    "animation": ("animation", "animated", "cartoon", "cartoons"),
    "biography": ("biography", "biographies", "biographical", "biopic", "biopics"),
    "comedy": ("comedy", "comedies", "comedic", "funny"),
    "crime": ("crime",),
    "documentary": ("documentary", "documentaries"),
    "drama": ("drama", "dramas", "dramatic"),
    "family": ("family", "family friendly"),
    "fantasy": ("fantasy", "fantasies"),
    "film-noir": ("film noir", "noir"),
    "history": ("history", "historical"),
    "horror": ("horror", "horrors", "scary", "slasher", "slashers"),
    "music": ("music",),
    "musical": ("musical", "musicals"),
    "mystery": ("mystery", "mysteries"),
    "romance": ("romance", "romances", "romantic", "romcom", "romcoms", "rom com", "rom coms"),
    "sci-fi": ("sci fi", "scifi", "science fiction"),
    "sport": ("sport", "sports"),
    "thriller": ("thriller", "thrillers", "suspense", "suspenseful"),
    "war": ("war",),
    "western": ("western", "westerns"),
    "superhero": ("superhero", "superheroes", "super hero", "super heroes"),
    "martial arts": ("martial arts", "kung fu"),
}
# Genre words that are often not about a genre ("my family", "that's funny").
AMBIGUOUS_GENRE_WORDS = frozenset(
    "family history historical music sport sports war funny scary dramatic musical western crime mystery".split()
)
# Words that make a nearby ambiguous genre word mean the genre ("family movies", "something scary").
GENRE_CONTEXT_WORDS = frozenset(
    "movie movies film films flick flicks genre genres show shows series something anything stuff kind kinds "
    "type types ones fan fans".split()
)

# search_titles: weight of a prefix match ("the godf" → "the godfather") against a whole-title match.
PREFIX_WEIGHT = 0.95

# How much evidence an alias needs.
DISTINCTIVE = "distinctive"  # links in any case
CASED = "cased"  # needs Title Case, a year or quotes
COMMON = "common"  # needs a year or quotes (or Title Case, for titles of common_title_case_min_words words)


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

    def __init__(self, aliases: dict[str, _Alias], movies: dict[int, _Target], config: LinkingConfig):
        self.config = config
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
    def build(cls, kg: KnowledgeGraph, catalogue: Catalogue, config: LinkingConfig | None = None) -> "EntityLinker":
        """Collect the aliases of every catalogue movie, KG person and genre, and index them.

        Pass the extended graph (:func:`kg.graph.load_extended_kg`) so that every catalogue movie has
        an entity; movies without one are skipped with a warning.
        """
        config = config or LinkingConfig()
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

        plain_words = _plot_words(catalogue, config.common_word_min_plots)
        common_first_names = {word for word, count in first_names.items() if count >= config.first_name_min_people}
        for key, alias in aliases.items():
            alias.movie_strength = _title_strength(key, config, plain_words, common_first_names)
            alias.person_strength = _name_strength(key, config)
        linker = cls(aliases, movies, config)
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
            shouting = _is_shouting(text)
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
        for match in matches:
            alias = self._aliases[match.key]
            candidate = self._alias_candidate(text, match.start, match.end, alias, 100.0, True, shouting)
            if candidate is not None:
                accepted.append(candidate)
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
        return accepted

    def _alias_candidate(
        self, text: str, start: int, end: int, alias: _Alias, score: float, exact: bool, shouting: bool
    ) -> _Candidate | None:
        """The movie or person ``text[start:end]`` names, if the text brings the evidence the alias needs.

        Where the alias is also the name of a person with at least ``person_over_title_min_edges`` edges
        (or the movies' title is only partial), the movie needs a year or quotes to win.
        """
        if _inside_compound(text, start, end):
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
    ) -> _Candidate | None:
        """The movie ``text[start:end]`` names, if the alias has movies and the text brings enough evidence.

        ``marked_only``: only a year or quotes count as evidence.
        """
        if not alias.movies:
            return None
        year, year_end = _year_after(text, end)
        if year is not None and not any(
            m.year is not None and abs(m.year - year) <= self.config.year_tolerance for m in alias.movies
        ):
            year, year_end = None, end  # a number that is no year of these movies
        strength = alias.movie_strength
        written_words = text[start:end].split()
        marked = year is not None or _is_quoted(text, start, (end, year_end))
        if not marked and (
            marked_only
            or strength == COMMON and len(written_words) < self.config.common_title_case_min_words
            or strength != DISTINCTIVE and not _is_title_cased(text, start, end, shouting)
        ):
            return None
        return _Candidate(start, year_end, self._pick_movie(alias.movies, year, text[start:end]), score, exact)

    def _person_candidate(
        self, text: str, start: int, end: int, alias: _Alias, score: float, exact: bool, shouting: bool
    ) -> _Candidate | None:
        if alias.person_strength != DISTINCTIVE and not (
            _is_quoted(text, start, (end,)) or _is_title_cased(text, start, end, shouting)
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


def _title_strength(key: str, config: LinkingConfig, plain_words: set[str], first_names: set[str]) -> str:
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


def _plot_words(catalogue: Catalogue, min_plots: int) -> set[str]:
    """Words used in at least ``min_plots`` plot synopses of the catalogue: ordinary words, not names."""
    counts: Counter[str] = Counter()
    for movie in catalogue.movies:
        if movie.plot:
            counts.update(set(re.findall(r"[^\W_]+", movie.plot.casefold().replace("'", "").replace("’", ""))))
    return {word for word, count in counts.items() if count >= min_plots}


def _name_strength(key: str, config: LinkingConfig) -> str:
    """How much evidence a person's name needs: none, unless it is short or made of common words."""
    if all(word in COMMON_WORDS for word in key.split()):
        return COMMON
    return CASED if len(key) < config.min_fuzzy_chars else DISTINCTIVE


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


def _year_after(text: str, end: int) -> tuple[int | None, int]:
    """A year written right after position ``end`` ("Heat (1995)", "Heat 1995"), and where it ends."""
    match = _YEAR_AFTER_RE.match(text, end)
    if match is None:
        return None, end
    return int(match.group("paren") or match.group("bare")), match.end()


def _is_quoted(text: str, start: int, ends: tuple[int, ...]) -> bool:
    """Whether a quote mark sits right before ``start`` and right after one of ``ends``."""
    if start == 0 or text[start - 1] not in QUOTES:
        return False
    return any(end < len(text) and text[end] in QUOTES for end in ends)


def _inside_compound(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is only part of a hyphenated word ("Men" in "X-Men")."""
    before = start >= 2 and text[start - 1] in "-‐" and text[start - 2].isalnum()
    after = end + 1 < len(text) and text[end] in "-‐" and text[end + 1].isalnum()
    return before or after


def _is_sentence_start(text: str, start: int) -> bool:
    prefix = text[:start].rstrip(" \t\"'“”‘’«»*_([")
    return not prefix or prefix[-1] in SENTENCE_END


def _is_shouting(text: str) -> bool:
    """Mostly upper-case text, whose capitals say nothing about titles."""
    letters = [char for char in text if char.isalpha()]
    return len(letters) >= 12 and sum(char.isupper() for char in letters) >= 0.7 * len(letters)


def _is_title_cased(text: str, start: int, end: int, shouting: bool) -> bool:
    """Whether ``text[start:end]`` is written in Title Case, with a capital that does not start the sentence."""
    if shouting:
        return False
    sentence_start = _is_sentence_start(text, start)
    evidence = False
    for position, chunk in enumerate(text[start:end].split()):
        letters = [char for char in chunk if char.isalnum()]
        if not letters or letters[0].isdigit() or "".join(letters).casefold() in MINOR_WORDS:
            continue
        if not letters[0].isupper():
            return False
        evidence = evidence or position > 0 or not sentence_start
    return evidence


# ---------------------------------------------------------------------- evaluation


@dataclass
class LinkingScores:
    """Movie-linking counts over a set of messages (micro-averaged)."""

    messages: int = 0
    gold: int = 0  # movies mentioned, summed over messages
    linked: int = 0  # movies linked, summed over messages
    correct: int = 0
    seconds: float = 0.0  # time spent in EntityLinker.link_movies

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def precision(self) -> float:
        return self.correct / self.linked if self.linked else 0.0

    @property
    def f1(self) -> float:
        total = self.recall + self.precision
        return 2 * self.recall * self.precision / total if total else 0.0

    @property
    def ms_per_message(self) -> float:
        return 1000 * self.seconds / self.messages if self.messages else 0.0


def iter_messages(data: DataConfig, split: str, limit: int = 0) -> Iterator[tuple[str, dict[int, str]]]:
    """(normalised text with ``@<movieId>`` placeholders, the dialogue's movieMentions) for every message.

    Messages are read one by one from the raw file (the loader merges a speaker's consecutive
    messages into turns); ``limit`` keeps the first N dialogues of the split.
    """
    dialogues = load_split(data, split)
    if limit:
        dialogues = dialogues[:limit]
    pending = {dialogue.conversation_id: dialogue.movie_mentions for dialogue in dialogues}
    redial = data.resolve_data_dir() / "redial"
    paths = [redial / TEST_FILE] if split == "test" else [train_path(data)]
    if split != "test" and data.use_approx:
        paths.append(redial / APPROX_TRAIN_FILE)
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                titles = pending.pop(str(record.get("conversationId")), None) if isinstance(record, dict) else None
                if titles is None:
                    continue
                for message in record.get("messages") or []:
                    text = message.get("text") if isinstance(message, dict) else None
                    if isinstance(text, str) and text.strip():
                        yield normalise_text(text), titles


def render_message(text: str, titles: dict[int, str], with_year: bool = True) -> tuple[str, set[int]]:
    """``text`` with each ``@<movieId>`` replaced by its title, and the ids replaced (the gold movies).

    Titles are the dialogue's movieMentions ("Title (Year)"); ``with_year=False`` drops the year.
    A placeholder without a title is removed, so it can be neither found nor missed.
    """
    gold: set[int] = set()

    def title(match: re.Match[str]) -> str:
        movie_id = int(match.group(1))
        name = titles.get(movie_id, "")
        if not name:
            return ""
        gold.add(movie_id)
        return name if with_year else split_title(name)[0]

    return MENTION_RE.sub(title, text), gold


def evaluate(
    linker: EntityLinker,
    messages: list[tuple[str, dict[int, str]]],
    with_year: bool = True,
    errors: list[str] | None = None,
) -> LinkingScores:
    """Recall and precision of :meth:`EntityLinker.link_movies` on rendered messages.

    Gold movies are those whose placeholder was in the message; any other linked movie is a false
    positive. With ``errors`` given, a line per missed or wrongly linked movie is appended to it.
    """
    scores = LinkingScores()
    for text, titles in tqdm(messages, desc="linking", unit="msg", leave=False, disable=None):
        rendered, gold = render_message(text, titles, with_year)
        started = time.perf_counter()
        linked = set(linker.link_movies(rendered))
        scores.seconds += time.perf_counter() - started
        scores.messages += 1
        scores.gold += len(gold)
        scores.linked += len(linked)
        scores.correct += len(gold & linked)
        if errors is not None and gold != linked:
            errors.append(f"missed {sorted(gold - linked)} wrong {sorted(linked - gold)} | {rendered}")
    return scores


def scores_table(rows: dict[str, LinkingScores]) -> str:
    lines = [
        "| setting | messages | gold movies | linked movies | recall | precision | F1 | ms/message |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in rows.items():
        lines.append(
            f"| {name} | {s.messages:,} | {s.gold:,} | {s.linked:,} | {s.recall:.3f} | {s.precision:.3f} "
            f"| {s.f1:.3f} | {s.ms_per_message:.2f} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m kg.linking",
        description="eval: movie-linking recall/precision on a ReDial split; link: print the entities of a text.",
    )
    parser.add_argument("command", choices=["eval", "link"])
    parser.add_argument("text", nargs="?", default="", help="text to link (link command)")
    add_config_arguments(parser, overrides=False)
    parser.add_argument("--split", default="test", choices=SPLITS, help="eval split (default: the official test split)")
    parser.add_argument("--limit", type=int, default=0, help="evaluate the first N dialogues only")
    parser.add_argument("--no-year", action="store_true", help="render titles without their year")
    parser.add_argument("--both", action="store_true", help="evaluate with and without years")
    parser.add_argument("--show-errors", type=int, default=0, metavar="N", help="print N misses / false positives")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set linking.fuzzy_cutoff=92 (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    config = config_from_args(args)
    data_dir = config.data.resolve_data_dir()
    started = time.perf_counter()
    catalogue = Catalogue.load(data_dir)
    kg = load_extended_kg(data_dir, catalogue, config.kg.enrich_linked_movies, config.kg.metadata_edges)
    loaded = time.perf_counter()
    linker = EntityLinker.build(kg, catalogue, config.linking)
    built = time.perf_counter()
    print(f"catalogue + extended KG loaded in {loaded - started:.1f}s, linker built in {built - loaded:.1f}s")

    if args.command == "link":
        print("| span | surface | kind | name | movie id | score |\n|---|---|---|---|---:|---:|")
        for e in linker.link(args.text):
            print(f"| {e.start}-{e.end} | {e.surface} | {e.kind} | {e.name} | {e.movie_id or ''} | {e.score:.1f} |")
        return

    messages = list(iter_messages(config.data, args.split, args.limit))
    settings = [True, False] if args.both else [not args.no_year]
    rows: dict[str, LinkingScores] = {}
    for with_year in settings:
        errors: list[str] | None = [] if args.show_errors else None
        name = f"{args.split}, {'with year' if with_year else 'no year'}"
        rows[name] = evaluate(linker, messages, with_year, errors)
        for line in (errors or [])[: args.show_errors]:
            print(line)
    dialogues = args.limit or "all"
    print(f"\nsplit {args.split} ({dialogues} dialogues), {len(messages):,} messages; build {built - loaded:.1f}s")
    print(scores_table(rows))


if __name__ == "__main__":
    main()
