"""What the user asked for, kept for the whole conversation, and a ranking that honours it.

Each user turn updates a :class:`RequestState` (:meth:`RequestReader.update`):

* **wanted** constraints: people by role (actor, director, writer, or any role when the text gives
  none and the person's catalogue credits do not settle it), genres, and year ranges (decades such
  as "80s" or "the nineties", "before 2000", "after 2010", "between 1990 and 1995", "recent",
  "from the last 10 years" / "the past decade", "older" / "classic"), and the franchise of the movie
  being talked about ("what about the sequels?");
* **unwanted** constraints: the same kinds under a negation ("not a comedy", "no horror",
  "nothing with Tom Cruise", "anything but the 80s"), plus movies the user dislikes ("I hated
  Titanic", "Titanic was boring") and franchises turned down ("not Star Wars either"): a disliked or
  negated movie excludes its whole franchise (:class:`MovieFacts` groups movies by title stem and by
  DBpedia's previousWork / subsequentWork links);
* **rejected** movies: those the chat's rejection reading ("seen it", "something else") turned down.

Rules, all in this module and tested in ``tests/test_request.py``:

* A negation cue (:data:`NEGATION_RE`) covers the entities after it up to the end of its clause: a
  sentence end, a semicolon, a contrast word ("but", "instead", "rather", "though"), a comma or
  "and" followed by a fresh request ("…, something with …", "and I want …"), or a comma followed by
  "a"/"an" ("not sci-fi, a thriller maybe"). Phrases that only look negative ("I don't mind",
  "never seen", "nothing but", "not only") are masked first.
* A movie followed in its clause by a verdict such as "was terrible" is disliked; "seen all the <movie>
  movies" turns its franchise down.
* A capitalised surname alone ("Tarantino movies") names the one prolific person of that surname,
  when one stands out and the word is not a common one.
* A pronoun for a person ("more with him", "what else is she in?", "his other movies", "anything
  else she directed?") means the person the user named last (:data:`_PRONOUN_REFERENCE_RES`), kept
  in the state until a later user turn names a movie or another person; for "directed"/"by him"
  only a person asked for as a director (or in no role) counts, for "with her"/"is she in" only one
  asked for as an actor (or in no role). With no such person, the pronoun means the director or the
  star of the movie being talked about, as "the same actor" and "the director" always do.
* A person's role comes from the words around the name ("directed by", "starring", "with", "written
  by", "<name> is in"), else from their catalogue credits: the role holding at least two thirds of
  them, else any role.
* Themes no genre list carries (:data:`kg.lexicon.THEMES`: "a zombie movie", "anything with
  dinosaurs", "no Christmas movies") are constraints of their own, met by the movies whose title
  or plot states them (``Movie.plot_themes``). So are settings (:data:`kg.lexicon.SETTINGS`), read
  only after a cue that says where the story happens ("set in Paris", "takes place in New York", "a
  comedy in London"; "not set in Texas") and met by the movies whose title or plot names the place.
* Comparatives and attribute words that the linker does not treat as genres map to one
  (:data:`ATTRIBUTE_GENRES`: "funnier" → comedy, "gory" → horror, …); violence turned down ("nothing
  too violent") tones down :data:`VIOLENT_GENRES`.
* Wanted constraints of one kind in a new turn replace the earlier wanted ones of that kind, unless
  the turn says "also", "too", "as well" or "and"; a wanted constraint the user later negates moves
  to unwanted (and back), unless the later turn only tones it down ("something less gory" after a
  horror request keeps horror wanted). Unwanted ones stay for the rest of the conversation.

:func:`honour` orders a ranking: movies violating an unwanted constraint, and rejected ones, are
dropped; the rest are sorted by how many wanted constraints they meet, then by the recommender's
score. When no movie meets every wanted constraint, the ones the best movie misses are reported as
relaxed, so the reply can say so.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np

from crs.data.catalogue import Catalogue
from crs.rec.hidden_genres import franchise_key, joined, name_words, title_key, unknown_genres  # noqa: F401 (franchise_key: re-exported)
from kg.graph import GENRE, GENRE_ALIASES, MOVIE, KnowledgeGraph, base_name, name_key
from kg.lexicon import ANIMATION_DISTRIBUTORS, COMIC_GENRES, COMIC_SERIES, COMMON_WORDS, COUNTRY_NAMES, COUNTRY_WORDS, ENGLISH_SPEAKING, GENRE_WORDS, STUDIO_COUNTRIES, STUDIO_FILMS, STUDIO_NAMES, STUDIO_WORDS, SETTINGS, THEMES
from kg.linker import LinkedEntity
from kg.text import normalise_key

ROLES = ("actor", "director", "writer")
ROLE_RELATIONS = {"actor": ("starring",), "director": ("director",), "writer": ("writer", "author")}
DOMINANT_ROLE_SHARE = 2 / 3  # a person with no role word gets the role holding this share of their credits
RECENT_YEARS = 6  # "recent" means the catalogue's last six years
# "in theaters", "comes out this weekend", "came out this year": said of a movie new when the
# dialogue took place. ReDial's dialogues were written in 2017-2018; of the dated movies its
# recommenders said so of in train_subset, 79 of 95 came out in 2017-2018 (the catalogue's last
# three years: 2017-2019).
SHOWING_YEARS = 3
OLDER_BEFORE = 1990  # "older", "classic", "old" mean released before this year

# ------------------------------------------------------------------------------------ the constraints


@dataclass(frozen=True)
class Constraint:
    """One thing a movie should (or should not) be.

    ``kind`` is "person" (``value`` an entity id, ``role`` one of :data:`ROLES` or None for any),
    "genre" (``value`` an entity id), "years" (``value`` a (first, last) pair, either end None for
    open), "movie" (``value`` a ReDial id), "franchise" (``value`` a (franchise key, title prefix) pair:
    the movies of that franchise, and those whose title starts with the prefix), "studio" or
    "country" (a lexicon key), "theme" (a :data:`kg.lexicon.THEMES` key) or "sequel".
    """

    kind: str
    value: object
    label: str
    role: str | None = None

    @property
    def phrase(self) -> str:
        """The constraint in words after "a movie …": "directed by Christopher Nolan", "from the 1980s"."""
        name = self.label.split(": ", 1)[-1]
        if self.kind == "person":
            return {"director": f"directed by {name}", "writer": f"written by {name}"}.get(self.role or "", f"with {name}")
        if self.kind == "years":
            return "from " + name.replace("or earlier", "or before")
        if self.kind == "genre":
            return f"in the {name.lower()} genre"
        if self.kind == "franchise":
            return f"from the {name} series"
        if self.kind in ("studio", "country"):
            return f"from {name}"
        if self.kind == "theme":
            return f"set in {name}" if self.label.startswith("setting:") else f"about {name}"
        if self.kind == "sequel":
            return "a sequel"
        return name


@dataclass
class RequestState:
    """The request kept for a whole conversation (see the module docstring)."""

    wanted: list[Constraint] = field(default_factory=list)
    unwanted: list[Constraint] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)  # movies turned down in the chat
    asked: bool = False  # the last user turn asked for movies by attribute (a wanted constraint)
    relaxed: list[Constraint] = field(default_factory=list)  # wanted constraints the ranking could not meet
    # A movie meeting every wanted constraint exists but was named already or turned down (so the
    # reply says "no other …").
    relaxed_spent: bool = False
    # The people the user named last (wanted or unwanted), whom "him", "her", "his movies" refer
    # to; forgotten when a later user turn names a movie and no person.
    people: list[Constraint] = field(default_factory=list)
    # What the last user turn asked by that the catalogue does not hold (UNKNOWABLE keys): the reply says so.
    unknowable: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.wanted or self.unwanted or self.rejected)

    def as_dict(self) -> dict:
        return {
            "wanted": [c.label for c in self.wanted],
            "unwanted": [c.label for c in self.unwanted],
            "rejected": list(self.rejected),
            "relaxed": [c.label for c in self.relaxed],
        }


# ---------------------------------------------------------------------------------- facts per movie



MIN_PREFIX_CHARS = 4
MASK_MEMO_SIZE = 4096  # constraint masks a MovieFacts remembers
SURNAME_MIN_CREDITS = 6  # a bare surname links to a person only with this many catalogue credits
# A director counts as a studio's own (MovieFacts.studio_by_director) with this many catalogue movies
# credited to the studio, making at least this share of the movies they directed.
STUDIO_DIRECTOR_MIN_MOVIES = 2
STUDIO_DIRECTOR_SHARE = 0.5


def suspect_metadata(catalogue: Catalogue) -> set[int]:
    """Movies whose ``movie_info.json`` entry shares its IMDb id with a movie of another title or year
    (one of them carries the other's facts: "A Nightmare on Elm Street (1984)" with the 2010 remake's
    director); their metadata is not trusted for answers."""
    by_imdb: dict[str, list] = defaultdict(list)
    for movie in catalogue.movies:
        if movie.imdb_id:
            by_imdb[movie.imdb_id].append(movie)
    suspect = set()
    for movies in by_imdb.values():
        titles = {title_key(m.title) for m in movies}
        years = {m.year for m in movies if m.year}
        if len(titles) > 1 or len(years) > 1:
            suspect.update(m.movie_id for m in movies)
    return suspect


def _standing_out(people: list[tuple[int, int]]) -> int | None:
    """Of (credits, person) pairs, most credits first, the person with at least
    :data:`SURNAME_MIN_CREDITS` credits and three times those of the next; None when none stands out."""
    if not people or people[0][0] < SURNAME_MIN_CREDITS or (len(people) > 1 and people[0][0] < 3 * people[1][0]):
        return None
    return people[0][1]


def studio_films() -> dict[str, list[tuple[int, list[str]]]]:
    """:data:`kg.lexicon.STUDIO_FILMS` by folded title: title key → [(year, the studio keys)]."""
    films: dict[str, list[tuple[int, list[str]]]] = defaultdict(list)
    for studio, (also, features) in STUDIO_FILMS.items():
        for title, year in features:
            films[title_key(title)].append((year, [studio, *also]))
    return films


def films_studios(movie, films: dict[str, list[tuple[int, list[str]]]]) -> list[str]:
    """The studios whose feature (:func:`studio_films`) the movie is: the same folded title and year,
    or undated and listed as animation or with no metadata (a namesake of another year is not)."""
    found: list[str] = []
    for year, studios in films.get(title_key(movie.title), ()):
        if movie.year == year or (movie.year is None and ("animation" in movie.genres or not movie.has_metadata)):
            found += [s for s in studios if s not in found]
    return found


def comic_publishers(movie, creators: bool = True) -> list[str]:
    """The comic publishers (:data:`kg.lexicon.COMIC_SERIES` keys) whose characters the movie is
    about: its title stem is one of their series (or begins with one of two or more words: "Justice
    League Dark"), else it credits one of their creators as a writer; and it is listed as a genre
    such films have (:data:`kg.lexicon.COMIC_GENRES`). ``creators=False``: by title stem only."""
    if not COMIC_GENRES & set(movie.genres):
        return []
    stem = franchise_key(movie.title)
    by_stem = [studio for studio, (stems, _) in COMIC_SERIES.items()
               if stem in stems or any(" " in s and stem.startswith(f"{s} ") for s in stems)]
    if by_stem or not creators:
        return by_stem
    writers = {name_key(w) for w in movie.writers}
    return [studio for studio, (_, creators) in COMIC_SERIES.items() if writers & set(creators)]


class MovieFacts:
    """Per catalogue movie: people by role, genres, year and franchise, from the knowledge graph
    (DBpedia plus the catalogue metadata the extended graph carries)."""

    def __init__(self, kg: KnowledgeGraph, catalogue: Catalogue):
        self.kg, self.catalogue = kg, catalogue
        relation = {name: i for i, name in enumerate(kg.relation_names)}
        role_of = {relation[r]: role for role, names in ROLE_RELATIONS.items() for r in names if r in relation}
        genre_rel = relation.get("genre", -1)
        sequel_rels = {relation[r] for r in ("previousWork", "subsequentWork") if r in relation}
        movies_of_entity: dict[int, list[int]] = defaultdict(list)
        for movie_id, entity in kg.movie_to_entity.items():
            if movie_id in catalogue:
                movies_of_entity[entity].append(movie_id)
        self.people: dict[int, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
        self.genres: dict[int, set[int]] = defaultdict(set)
        self.credits: dict[int, Counter] = defaultdict(Counter)  # person → role → movies
        self.by_person: dict[int, set[int]] = defaultdict(set)
        self.by_genre: dict[int, set[int]] = defaultdict(set)
        # Studios and countries: (relation, entity) → the lexicon keys an edge to it stands for.
        studio_tags, animation_tags = self._studio_tags(relation)
        tags = {**studio_tags, **self._origin_tags(relation)}
        self.studios: dict[int, set[str]] = defaultdict(set)
        self.origins: dict[int, set[str]] = defaultdict(set)
        self.by_studio: dict[str, set[int]] = defaultdict(set)
        self.by_origin: dict[str, set[int]] = defaultdict(set)
        studio_rels = {relation[r] for r in ("productionCompany", "company", "distributor") if r in relation}
        animated = {m.movie_id for m in catalogue.movies if any(name_key(g) in ("animation", "animated") for g in m.genres)}
        sequel_pairs = []
        origin_rels = {relation[r] for r in ("country", "language") if r in relation}
        origin_edges: dict[int, list[tuple[int, int]]] = defaultdict(list)  # movie entity → its (relation, place or language)
        heads, tails = kg.edge_index.tolist()
        for head, rel, tail in zip(heads, kg.edge_type.tolist(), tails):
            if head not in movies_of_entity:
                continue
            if rel in origin_rels:
                origin_edges[head].append((rel, tail))
            tagged = tags.get((rel, tail), ())
            of_movie, members = (self.studios, self.by_studio) if rel in studio_rels else (self.origins, self.by_origin)
            for movie_id in movies_of_entity[head]:
                for tag in (set(tagged) | animation_tags.get((rel, tail), set()) if movie_id in animated else tagged):
                    of_movie[movie_id].add(tag)
                    members[tag].add(movie_id)
                if rel in role_of:
                    role = role_of[rel]
                    if tail not in self.people[movie_id][role]:
                        self.people[movie_id][role].add(tail)
                        self.credits[tail][role] += 1
                    self.by_person[tail].add(movie_id)
                elif rel == genre_rel:
                    self.genres[movie_id].add(tail)
                    self.by_genre[tail].add(movie_id)
            if rel in sequel_rels and tail in movies_of_entity:
                sequel_pairs.append((movies_of_entity[head][0], movies_of_entity[tail][0]))
        # The derived genre words of crs.rec.hidden_genres (stated by the plot, or maybe cut from the
        # list) as genre entities.
        genre_by_key: dict[str, int] = {}
        for entity, (name, kind) in enumerate(zip(kg.entity_names, kg.entity_types)):
            if kind == GENRE:
                genre_by_key.setdefault(name_key(name), entity)

        def genre_entity(word: str) -> int | None:
            key = name_key(word)
            for candidate in (GENRE_ALIASES.get(key, key), key, f"{key} film", f"{key} fiction"):
                if candidate in genre_by_key:
                    return genre_by_key[candidate]
            return None

        # Genres a movie's title or plot states ("superhero"): facts like its listed genres.
        for movie in catalogue.movies:
            for word in movie.plot_genres:
                entity = genre_entity(word)
                if entity is not None:
                    self.genres[movie.movie_id].add(entity)
                    self.by_genre[entity].add(movie.movie_id)
        # Series a movie's plot names though its title does not, and themes its title or plot states
        # (crs.rec.hidden_genres.stated_series, stated_themes).
        self.by_plot_series: dict[str, set[int]] = defaultdict(set)
        self.by_theme: dict[str, set[int]] = defaultdict(set)
        for movie in catalogue.movies:
            for key in movie.plot_series:
                self.by_plot_series[key].add(movie.movie_id)
            for theme in movie.plot_themes:
                self.by_theme[theme].add(movie.movie_id)
        self.years = {m.movie_id: m.year for m in catalogue.movies}
        self.suspect = suspect_metadata(catalogue)
        films = studio_films()
        for movie_id in self._foreign(relation, origin_edges, movies_of_entity):
            self.origins[movie_id].add("foreign")
            self.by_origin["foreign"].add(movie_id)
        for movie in catalogue.movies:  # comic adaptations (by creator only on the movie's own metadata); studio features
            for studio in comic_publishers(movie, creators=self.trusted(movie.movie_id)) + films_studios(movie, films):
                self.studios[movie.movie_id].add(studio)
                self.by_studio[studio].add(movie.movie_id)
        for studio, country in STUDIO_COUNTRIES.items():  # Studio Ghibli's films are Japanese
            for movie_id in self.by_studio.get(studio, ()):
                self.origins[movie_id].add(country)
                self.by_origin[country].add(movie_id)
        known = [y for y in self.years.values() if y]
        self.latest_year = max(known) if known else None
        self.genre_family = self._genre_families()
        self.franchise = self._franchises(sequel_pairs)
        self.franchise_members: dict[str, set[int]] = defaultdict(set)
        for movie_id, key in self.franchise.items():
            self.franchise_members[key].add(movie_id)
        # A genre that another movie of the series has (listed or flagged) is flagged too where the
        # movie's own cut list may hide it (the second of a trilogy whose plot did not give it away).
        series_words: dict[str, set[str]] = defaultdict(set)
        for movie in catalogue.movies:
            if len(self.franchise_members[self.franchise[movie.movie_id]]) > 1:
                series_words[self.franchise[movie.movie_id]].update(movie.genres + movie.maybe_genres)
        vocabulary = sorted({g for m in catalogue.movies for g in m.genres})
        self.maybe_by_genre: dict[int, set[int]] = defaultdict(set)
        for movie in catalogue.movies:
            series = series_words.get(self.franchise[movie.movie_id], set())
            words = set(movie.maybe_genres) | (series & set(unknown_genres(movie.genres, vocabulary)) if series else set())
            for word in words:
                entity = genre_entity(word)
                if entity is not None:
                    self.maybe_by_genre[entity].add(movie.movie_id)
        self.title_keys = {m.movie_id: title_key(m.title) for m in catalogue.movies}
        # Sequels: movies of a series with an earlier movie in it.
        first_year: dict[str, int] = {}
        for movie_id, key in self.franchise.items():
            if len(self.franchise_members[key]) > 1 and self.years.get(movie_id):
                first_year[key] = min(first_year.get(key, 9999), self.years[movie_id])
        self.sequels = frozenset(m for m, key in self.franchise.items() if key in first_year and (self.years.get(m) or 0) > first_year[key])
        self._year_array = np.array([m.year if m.year else np.nan for m in catalogue.movies], dtype=np.float64)
        self._masks: dict[Constraint, np.ndarray] = {}
        self._maybe_masks: dict[tuple[str, object], np.ndarray] = {}  # (kind, value) -> movies that may hold it unlisted
        self._genre_unknown: np.ndarray | None = None
        self._surnames: dict[str, list[tuple[int, int]]] | None = None
        self._prefixed: dict[str, frozenset[int]] = {}

    def _studio_tags(self, relation: dict[str, int]) -> tuple[dict[tuple[int, int], set[str]], dict[tuple[int, int], set[str]]]:
        """(relation, company entity) → the :data:`STUDIO_WORDS` keys it stands for; and (distributor
        relation, company entity) → the :data:`ANIMATION_DISTRIBUTORS` keys it stands for (a studio's
        own distribution arm, which counts for the studio's animated movies only)."""
        own = [relation[r] for r in ("productionCompany", "company") if r in relation]
        distributor = relation.get("distributor")
        tags: dict[tuple[int, int], set[str]] = defaultdict(set)
        animation: dict[tuple[int, int], set[str]] = defaultdict(set)
        for entity, name in enumerate(self.kg.entity_names):
            key = f" {name_key(base_name(name))} "
            for word, (needles, distributed) in STUDIO_WORDS.items():
                if any(f" {n} " in key for n in needles):
                    for rel in own + ([distributor] if distributed and distributor is not None else []):
                        tags[(rel, entity)].add(word)
            if distributor is not None:
                for word, needles in ANIMATION_DISTRIBUTORS.items():
                    if any(f" {n} " in key for n in needles):
                        animation[(distributor, entity)].add(word)
        return tags, animation

    def _foreign(self, relation: dict[str, int], origin_edges: dict[int, list[tuple[int, int]]],
                 movies_of_entity: dict[int, list[int]]) -> set[int]:
        """The movies made outside the English-speaking world ("a foreign film"): both country and
        language edges, and none to an English-speaking country or to English
        (:data:`kg.lexicon.ENGLISH_SPEAKING`, or a name with the word "English"). The subgraph holds
        these edges for few movies, and one alone often wrongly (Blade Runner's only country is Hong
        Kong, Braveheart's only language England): a movie without both is not known to be foreign."""
        country, language = relation.get("country"), relation.get("language")
        english_countries, english_languages = ENGLISH_SPEAKING
        foreign = set()
        for entity, edges in origin_edges.items():
            english: dict[int, set[bool]] = defaultdict(set)
            for rel, tail in edges:
                name = name_key(base_name(self.kg.entity_names[tail]))
                english[rel].add(name in english_languages or name in english_countries or "english" in name.split())
            if english.get(country) == {False} and english.get(language) == {False}:
                foreign.update(movies_of_entity[entity])
        return foreign

    def _origin_tags(self, relation: dict[str, int]) -> dict[tuple[int, int], set[str]]:
        """(relation, country or language entity) → the :data:`COUNTRY_WORDS` keys it stands for."""
        country, language = relation.get("country"), relation.get("language")
        tags: dict[tuple[int, int], set[str]] = defaultdict(set)
        for entity, name in enumerate(self.kg.entity_names):
            key = name_key(base_name(name))
            for word, (countries, languages) in COUNTRY_WORDS.items():
                if country is not None and key in countries:
                    tags[(country, entity)].add(word)
                if language is not None and key in languages:
                    tags[(language, entity)].add(word)
        return tags

    def _genre_families(self) -> dict[int, frozenset[int]]:
        """Genre entity → the entities that name the same genre ("Comedy", "Comedy film")."""
        by_key: dict[str, list[int]] = defaultdict(list)
        for entity, (name, kind) in enumerate(zip(self.kg.entity_names, self.kg.entity_types)):
            if kind == GENRE:
                by_key[name_key(name)].append(entity)
        family: dict[int, frozenset[int]] = {}
        for genre in GENRE_WORDS:
            names = {GENRE_ALIASES.get(genre, genre), genre, f"{genre} film", f"{genre} fiction", f"{genre} (genre)"}
            members = frozenset(e for n in names for e in by_key.get(n, []))
            for entity in members:
                family[entity] = members
        return family

    def _franchises(self, sequel_pairs: list[tuple[int, int]]) -> dict[int, str]:
        """Movie → franchise key: movies sharing a title stem, joined through sequel links."""
        first_of_stem: dict[str, int] = {}
        stem_pairs = [(movie.movie_id, first_of_stem.setdefault(stem, movie.movie_id))
                      for movie in self.catalogue.movies if (stem := franchise_key(movie.title))]
        roots = joined((m.movie_id for m in self.catalogue.movies), [*stem_pairs, *sequel_pairs, *self._numbered_pairs(first_of_stem)])
        # A franchise is named by the stem of its most mentioned movie.
        best: dict[int, tuple[int, str]] = {}
        for movie in self.catalogue.movies:
            root = roots[movie.movie_id]
            if root not in best or movie.mentions > best[root][0]:
                best[root] = (movie.mentions, franchise_key(movie.title) or name_key(movie.title))
        return {movie_id: best[root][1] for movie_id, root in roots.items()}

    def _numbered_pairs(self, first_of_stem: dict[str, int]) -> list[tuple[int, int]]:
        """Sequels numbered in words, joined to their series: a title ending in a number word whose
        stem another title ends with the next or the previous number ("Ocean's Eleven", "Ocean's
        Twelve", "Ocean's 8" joined through "Ocean's 11"), or, for "Two", that is the stem alone ("The
        Ring Two" and "The Ring"). Titles that only share a number's neighbourhood stay apart: "The
        Magnificent Seven" and "The Magnificent Nine", "The Deep Six" and "The Deep"."""
        numbered: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for movie in self.catalogue.movies:
            match = _NUMBERED_TITLE_RE.match(name_words(movie.title))
            if match:
                number = _NUMBER_VALUES.get(match.group(2)) or int(match.group(2))
                numbered[match.group(1).strip()][number].append(movie.movie_id)
        pairs = []
        for stem, by_number in numbered.items():
            for number, movies in by_number.items():
                partners = [m for n in (number - 1, number + 1) for m in by_number.get(n, ())]
                if number == 2 and stem in first_of_stem:
                    partners.append(first_of_stem[stem])
                pairs += [(movie, partner) for movie in movies for partner in partners[:1]]
        return pairs

    # -- questions about one movie or one person

    def genre_members(self, genre: int) -> frozenset[int]:
        return self.genre_family.get(genre, frozenset((genre,)))

    def has_genre(self, movie_id: int, genre: int) -> bool:
        return bool(self.genres.get(movie_id, set()) & self.genre_members(genre))

    def trusted(self, movie_id: int) -> bool:
        """Whether the movie's metadata may be believed: metadata that ``movie_info.json`` shares with
        another film (:func:`suspect_metadata`) is believed only for a movie DBpedia itself links (its
        node has a URI, disambiguated by year there)."""
        entity = self.kg.movie_to_entity.get(movie_id)
        return movie_id not in self.suspect or (entity is not None and self.kg.entity_uris[entity] is not None)

    def genre_unknown(self) -> np.ndarray:
        """Which catalogue items (by catalogue index) no genre is known for (none at all, or only
        untrusted metadata's), memoised: such a movie cannot be shown to avoid a genre the user
        turned down."""
        if self._genre_unknown is None:
            self._genre_unknown = np.array([not self.genres.get(m.movie_id) or not self.trusted(m.movie_id)
                                            for m in self.catalogue.movies], dtype=bool)
        return self._genre_unknown

    def has_person(self, movie_id: int, person: int, role: str | None) -> bool:
        roles = self.people.get(movie_id)
        if not roles:
            return False
        return any(person in roles.get(r, ()) for r in ((role,) if role else ROLES))

    def credited(self, movie_id: int, role: str) -> list[tuple[int, str]]:
        """The KG people (entity, name) credited in ``role`` on the movie: every director or
        writer; for "actor", the first-billed star (the first of ``movie_info.json``'s stars the KG
        credits, else the KG's first by name). Empty when the KG credits nobody."""
        people = self.people.get(movie_id, {}).get(role, set())
        if not people:
            return []
        names = {e: base_name(self.kg.entity_names[e]) for e in people}
        ordered = sorted(people, key=lambda e: names[e])
        if role == "actor":
            by_key = {name_key(names[e]): e for e in ordered}
            billed = [by_key[name_key(n)] for n in self.catalogue.by_id(movie_id).stars if name_key(n) in by_key]
            ordered = (billed or ordered)[:1]
        return [(e, names[e]) for e in ordered]

    def dominant_role(self, person: int) -> str | None:
        counts = self.credits.get(person)
        if not counts:
            return None
        role, count = counts.most_common(1)[0]
        return role if count >= DOMINANT_ROLE_SHARE * sum(counts.values()) else None

    def person_by_surname(self, word: str) -> int | None:
        """The person a bare surname stands for ("Tarantino"): the one with that surname and at least
        :data:`SURNAME_MIN_CREDITS` catalogue credits, with three times the credits of any other
        person of that surname; None when no such person stands out."""
        return _standing_out(self._surname_index().get(normalise_key(word), []))

    def _surname_index(self) -> dict[str, list[tuple[int, int]]]:
        """Folded surname → (catalogue credits, person) of everyone with it, most credits first; memoised."""
        if self._surnames is None:
            index: dict[str, list[tuple[int, int]]] = defaultdict(list)
            for person, counts in self.credits.items():
                parts = base_name(self.kg.entity_names[person]).split()
                if len(parts) >= 2:
                    index[normalise_key(parts[-1])].append((sum(counts.values()), person))
            self._surnames = {key: sorted(people, reverse=True) for key, people in index.items()}
        return self._surnames

    def person_by_short_name(self, first: str, last: str) -> int | None:
        """The person "Leo DiCaprio" or "Sam Jackson" stands for: of the people with that surname
        whose first name starts with ``first`` (and is longer), the one with at least
        :data:`SURNAME_MIN_CREDITS` credits and three times the credits of any other."""
        short = normalise_key(first)
        return _standing_out([(credits, person) for credits, person in self._surname_index().get(normalise_key(last), [])
                              if (given := normalise_key(base_name(self.kg.entity_names[person]).split()[0])) != short
                              and given.startswith(short)])

    def franchise_size(self, movie_id: int) -> int:
        return len(self.franchise_members.get(self.franchise.get(movie_id, ""), ()))

    def titled(self, prefix: str) -> frozenset[int]:
        """Movies whose title (article dropped, punctuation folded) is ``prefix`` or starts with it as
        whole words (holds it anywhere, for a prefix of two words or more); nothing for prefixes under
        :data:`MIN_PREFIX_CHARS` characters."""
        if len(prefix) < MIN_PREFIX_CHARS:
            return frozenset()
        if prefix not in self._prefixed:
            if " " in prefix:  # a name of two words or more counts anywhere in a title ("Rogue One: A Star Wars Story")
                found = (m for m, key in self.title_keys.items() if f" {prefix} " in f" {key} ")
            else:
                found = (m for m, key in self.title_keys.items() if key == prefix or key.startswith(prefix + " "))
            self._prefixed[prefix] = frozenset(found)
        return self._prefixed[prefix]

    def distinct_films(self, movies: Iterable[int]) -> int:
        """How many films ``movies`` are: entries of one title count once unless their known years
        differ (ReDial lists some films twice, once without a year: "Groundhog Day" and
        "Groundhog Day (1993)"; "Halloween (1978)" and "Halloween (2007)" are two)."""
        years: dict[str, set[int | None]] = defaultdict(set)
        for movie in movies:
            years[self.title_keys.get(movie, str(movie))].add(self.years.get(movie))
        return sum(max(len({y for y in found if y}), 1) for found in years.values())

    def franchise_constraint(self, movie_id: int, surface: str = "", strict: bool = False) -> Constraint | None:
        """The franchise of ``movie_id`` as a constraint, the title prefix taken from what the user
        typed ("Harry Potter" for any Harry Potter movie) when it starts the title; None for a movie
        with no sequel or namesake. ``strict``: the franchise's own movies only (title stem and sequel
        links), no other title that starts alike ("Alien Nation" is no sequel of "Alien"): what a
        request for the sequels wants."""
        key = self.franchise.get(movie_id, "")
        if strict:
            members = self.franchise_members.get(key, set())
            return Constraint("franchise", (key, ""), f"franchise: {_series_name(key)}") if self.distinct_films(members) > 1 else None
        typed = title_key(surface)
        prefix = typed if typed and self.title_keys.get(movie_id, "").startswith(typed) else title_key(key)
        members = self.franchise_members.get(key, set()) | self.titled(prefix)
        if len(members) <= 1:
            return None
        name = surface.strip() if typed == prefix and surface.strip() else _series_name(key)
        return Constraint("franchise", (key, prefix), f"franchise: {name}")

    def series_titles(self, movie_id: int) -> int:
        """How many titles the movie's own series (:meth:`franchise_constraint`, strict) holds: 0 for
        a movie with none, 1 for films that only share a title (Heist, 2001 and 2015)."""
        if self.franchise_constraint(movie_id, strict=True) is None:
            return 0
        return len({self.title_keys.get(m) for m in self.franchise_members[self.franchise[movie_id]]})

    def satisfies(self, movie_id: int, constraint: Constraint) -> bool:
        kind, value = constraint.kind, constraint.value
        if kind == "person":
            return self.has_person(movie_id, value, constraint.role)
        if kind == "genre":
            return self.has_genre(movie_id, value)
        if kind == "years":
            year = self.years.get(movie_id)
            first, last = value
            return year is not None and (first is None or year >= first) and (last is None or year <= last)
        if kind == "movie":
            return movie_id == value
        if kind == "sequel":
            return movie_id in self.sequels
        if kind == "studio":
            return value in self.studios.get(movie_id, ())
        if kind == "country":
            return value in self.origins.get(movie_id, ())
        if kind == "theme":
            return movie_id in self.by_theme.get(value, ())
        if kind == "franchise":
            key, prefix = value
            return self.franchise.get(movie_id) == key or (bool(prefix) and movie_id in self.titled(prefix))
        raise ValueError(f"unknown constraint kind {kind!r}")

    def mask(self, constraint: Constraint) -> np.ndarray:
        """Which catalogue items (by catalogue index) meet ``constraint``, memoised."""
        found = self._masks.get(constraint)
        if found is None:
            if constraint.kind == "years":
                first, last = constraint.value
                years = self._year_array
                found = ~np.isnan(years)
                if first is not None:
                    found &= years >= first
                if last is not None:
                    found &= years <= last
            else:
                found = self._catalogue_mask(self._members(constraint))
            self._masks[constraint] = found
            if len(self._masks) > MASK_MEMO_SIZE:
                self._masks.pop(next(iter(self._masks)))
        return found

    def refused_mask(self, constraint: Constraint) -> np.ndarray:
        """Which catalogue items an unwanted ``constraint`` keeps out: those that meet it and, for a
        genre, those whose cut genre list may hide it (``Movie.maybe_genres``, :mod:`crs.rec.hidden_genres`);
        for a studio, the other movies of their series too (DBpedia credits Pixar with Toy Story 3
        and not with Toy Story or Toy Story 2) and the uncredited movies of its own directors
        (:meth:`studio_by_director`); for a series, the movies whose plot names it
        (``Movie.plot_series``: The Dark Knight for Batman)."""
        found = self.mask(constraint)
        if constraint.kind not in ("genre", "studio", "franchise"):
            return found
        key = (constraint.kind, constraint.value)
        if key not in self._maybe_masks:  # memoised: what may hold a genre, a studio or a series does not change
            if constraint.kind == "genre":
                members = set().union(*(self.maybe_by_genre.get(g, set()) for g in self.genre_members(constraint.value)))
            elif constraint.kind == "franchise":
                stem, prefix = constraint.value
                members = self.by_plot_series.get(stem, set()) | (self.by_plot_series.get(prefix, set()) if prefix else set())
            else:
                keys = {self.franchise[m] for m in self._members(constraint) if m in self.franchise}
                members = {m for k in keys if len(self.franchise_members[k]) > 1 for m in self.franchise_members[k]}
                members |= self.studio_by_director(constraint.value)
            self._maybe_masks[key] = self._catalogue_mask(members)
        return found | self._maybe_masks[key]

    def studio_by_director(self, studio: str) -> set[int]:
        """Movies the KG credits to no studio at all whose director is one of ``studio``'s own: at
        least :data:`STUDIO_DIRECTOR_MIN_MOVIES` of their catalogue movies credited to it, and at least
        :data:`STUDIO_DIRECTOR_SHARE` of all they directed (Toy Story, Up and WALL-E for Pixar, which
        the subgraph lacks or holds without a company). Only for studios that make their movies
        (not those known as distributors, whose directors work anywhere) and whose features
        :data:`kg.lexicon.STUDIO_FILMS` does not list."""
        if STUDIO_WORDS.get(studio, ((), True))[1] or studio in STUDIO_FILMS:  # (a listed filmography needs no guess)
            return set()
        tagged = self.by_studio.get(studio, set())
        counts = Counter(d for m in tagged for d in self.people.get(m, {}).get("director", ()))
        found: set[int] = set()
        for director, count in counts.items():
            directed = {m for m in self.by_person.get(director, ()) if director in self.people[m].get("director", ())}
            if count >= STUDIO_DIRECTOR_MIN_MOVIES and count >= STUDIO_DIRECTOR_SHARE * len(directed):
                found |= {m for m in directed if not self.studios.get(m)}
        return found

    def _catalogue_mask(self, movies: Iterable[int]) -> np.ndarray:
        """A boolean vector over the catalogue, true at ``movies`` (ids outside the catalogue ignored)."""
        found = np.zeros(len(self.catalogue), dtype=bool)
        found[[self.catalogue.index(m) for m in movies if m in self.catalogue]] = True
        return found

    def _members(self, constraint: Constraint) -> set[int]:
        """The catalogue movies meeting a person, genre, movie or franchise constraint."""
        if constraint.kind == "person":
            return {m for m in self.by_person.get(constraint.value, ()) if self.has_person(m, constraint.value, constraint.role)}
        if constraint.kind == "genre":
            return set().union(*(self.by_genre.get(g, set()) for g in self.genre_members(constraint.value)))
        if constraint.kind == "movie":
            return {constraint.value}
        if constraint.kind == "sequel":
            return set(self.sequels)
        if constraint.kind == "studio":
            return set(self.by_studio.get(constraint.value, ()))
        if constraint.kind == "country":
            return set(self.by_origin.get(constraint.value, ()))
        if constraint.kind == "theme":
            return set(self.by_theme.get(constraint.value, ()))
        if constraint.kind == "franchise":
            key, prefix = constraint.value
            return set(self.franchise_members.get(key, ())) | (set(self.titled(prefix)) if prefix else set())
        raise ValueError(f"unknown constraint kind {constraint.kind!r}")


# ------------------------------------------------------------------------------------ reading a turn

# Phrases that look negative but are not a negation of what follows; masked before cues are read.
_NOT_NEGATION_RE = re.compile(
    r"\b(?:(?:do|does|did|would|wouldn't|wouldnt|don't|dont|do\s+not)\s*n?'?t?\s+mind|don'?t\s+(?:know|care|really\s+care|have)|"
    r"doesn'?t\s+(?:matter|have\s+to)|no\s+matter|not\s+(?:only|just|sure|bad|necessarily|too\s+picky|picky)|"
    r"nothing\s+but|never\s+(?:seen|watched|saw)|(?:haven'?t|have\s+not|hadn'?t|didn'?t|did\s+not)\s+(?:seen|watched|saw|see|watch)|"
    r"no\s+(?:problem|worries|preference)|not\s+yet|can'?t\s+wait|couldn'?t\s+(?:stop|help)|"
    r"doesn'?t\s+have\s+to\s+be|need\s+not\s+be)\b",
    re.IGNORECASE,
)

NEGATION_RE = re.compile(
    r"\b(?:not|no(?!\s*[,.!?])|nothing|none|never|without|except|excluding|avoid|skip|minus|nor|neither|"
    r"anything\s+but|other\s+than|rather\s+than|instead\s+of|no\s+more|"
    r"(?:do|does|did|would|will|could|ca|wo|is|are|was|were)n'?t|(?:do|does|did|would|will|could|can)\s+not|cannot|"
    r"hate[sd]?|hating|dislike[sd]?|disliking|loathe[sd]?|detest(?:ed|s)?|sick\s+of|tired\s+of|"
    r"had\s+enough(?:\s+of)?|can'?t\s+stand|not\s+(?:a\s+)?(?:big\s+|huge\s+)?fan\s+of|not\s+into)\b",
    re.IGNORECASE,
)

# Where a negation's scope ends.
_SCOPE_END_RE = re.compile(
    r"[.!?;\n]|\b(?:but|though|although|however|instead|rather|prefer(?:ably)?|except\s+for\s+that)\b|"
    r"(?:,|\band\b)\s*(?:i|i'm|im|i'd|id|my|we|we're|our|she|he|they|something|anything|everything|whatever|maybe|perhaps|just|preferably|how|what|more|any|some|also|ideally|"
    r"give|show|recommend|suggest|looking|want|need|would|could|please)\b|"
    r",\s*(?:a|an)\b",  # "not sci-fi this time, a thriller maybe": a comma, then what is wanted instead
    re.IGNORECASE,
)

# A verdict after a movie's name that says the user disliked it.
_VERDICT_RE = re.compile(
    r"^\W*(?:\w+\W+){0,3}?(?:was|is|were|are|seemed|felt|looked)\s+(?:really\s+|so\s+|pretty\s+|kind\s+of\s+|too\s+)?"
    r"(?:terrible|awful|bad|boring|horrible|dull|stupid|the\s+worst|overrated|garbage|trash|lame|meh|"
    r"disappointing|a\s+disappointment|not\s+(?:good|great|for\s+me|my\s+thing))\b",
    re.IGNORECASE,
)

_ROLE_BEFORE = {
    "director": re.compile(r"(?:directed\s+by|director|directors|direction\s+of|directed|by|from)\W*$", re.IGNORECASE),
    "writer": re.compile(r"(?:written\s+by|writer|screenplay\s+by|scripted\s+by|script\s+by|penned\s+by)\W*$", re.IGNORECASE),
    "actor": re.compile(r"(?:starring|stars?|with|featuring|actor|actress|played\s+by|acted\s+by|lead(?:ing)?|cast(?:ing)?|has|have)\W*$",
                        re.IGNORECASE),
}
_ROLE_AFTER = {
    "director": re.compile(r"^\W*(?:directed|directs|direct|as\s+(?:the\s+)?director|'?s\s+directing)", re.IGNORECASE),
    "writer": re.compile(r"^\W*(?:wrote|writes|as\s+(?:the\s+)?writer)", re.IGNORECASE),
    "actor": re.compile(r"^\W*(?:is\s+in|was\s+in|are\s+in|in\s+it|stars|starred|plays|played|acts|acted|as\s+(?:an?\s+)?(?:actor|actress|lead))",
                        re.IGNORECASE),
}

# Words for a genre that the linker does not read as one, and the genre word they stand for.
ATTRIBUTE_GENRES = {
    "funnier": "comedy", "funniest": "comedy", "hilarious": "comedy", "laugh": "comedy", "lighthearted": "comedy",
    "scarier": "horror", "scariest": "horror", "creepy": "horror", "gory": "horror", "gore": "horror", "bloody": "horror",
    "slasher": "horror", "spooky": "horror", "frightening": "horror", "terrifying": "horror", "scare": "horror",
    "scares": "horror", "frighten": "horror",
    "romantic": "romance", "love story": "romance", "sappy": "romance", "chick flick": "romance",
    "action packed": "action", "explosions": "action", "shoot em up": "action",
    "sad": "drama", "sadder": "drama", "saddest": "drama", "tearjerker": "drama", "tear jerker": "drama", "depressing": "drama",
    "lighter": "comedy", "feel good": "comedy", "feel-good": "comedy", "uplifting": "comedy",
    "date night": "romance", "first date": "romance",
    "kids": "family", "children": "family", "kid friendly": "family",
    "cartoon": "animation", "animated": "animation", "anime": "animation",
    "superhero": "action", "space": "sci-fi", "aliens": "sci-fi", "futuristic": "sci-fi",
    "suspenseful": "thriller", "suspense": "thriller", "tense": "thriller",
    "whodunit": "mystery", "detective": "crime", "gangster": "crime", "heist": "crime", "mob": "crime",
    "true story": "biography", "based on a true story": "biography", "true stories": "biography", "true events": "biography",
    "real events": "biography", "real story": "biography",
    "singing": "musical", "songs": "musical", "sing along": "musical", "sing-along": "musical",
    "world war": "war", "ww1": "war", "ww2": "war", "wwi": "war", "wwii": "war", "vietnam war": "war", "civil war": "war",
}
# A child's age ("for a 5 year old", "my toddler") asks for a family movie; "realistic" ("something
# realistic", "real life stuff") turns fantasy and science fiction down.
_CHILD_RE = re.compile(r"\b(?:(?:[1-9]|1[0-2]|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)[\s-]?(?:years?|yrs?)[\s-]?olds?|"
                       r"toddlers?|preschoolers?|little\s+ones)\b", re.IGNORECASE)
_REALISTIC_RE = re.compile(r"\b(?:realistic|real[\s-]life|grounded|true\s+to\s+life|down\s+to\s+earth)\b", re.IGNORECASE)
UNREALISTIC_GENRES = ("fantasy", "sci-fi")
# Violence turned down ("nothing too violent", "no violence", "less brutal") tones down the genres
# whose movies show it most; wanted ("something violent") it is not read: no one genre stands for it.
_VIOLENT_RE = re.compile(r"\b(?:violent|violence|brutal|brutality)\b", re.IGNORECASE)
VIOLENT_GENRES = ("horror", "war", "crime", "action")
# Crude content turned down ("nothing with swearing", "no nudity", "not too raunchy") asks for a
# family movie: the catalogue has no age ratings, and family is the genre made to hold none of it.
# Wanted ("I like raunchy comedies") or not minded ("I don't mind swearing") it is not read.
_CRUDE_RE = re.compile(r"\b(?:swearing|swear\s*words?|curs(?:ing|e\s*words?)|cuss(?:ing|\s*words?)|(?:bad|foul|strong|crude)\s+language|"
                       r"profanity|profanities|nudity|nude|naked(?:ness)?|sex|sexual|sex\s+scenes?|sexy\s+stuff|raunchy|crude|smut|smutty|"
                       r"dirty\s+jokes|explicit|r[\s-]?rated|rated\s+r|inappropriate)\b", re.IGNORECASE)
_NOT_MINDED_BEFORE_RE = re.compile(r"\b(?:don'?t|do\s+not|doesn'?t|does\s+not|wouldn'?t|won'?t)\s+(?:really\s+|even\s+)?mind\s+(?:\w+\s+){0,3}$",
                                   re.IGNORECASE)
# Themes by the words a request names them by ("a zombie movie", "anything with dinosaurs").
_THEME_RE = re.compile(r"\b(?:" + "|".join(f"(?P<t{i}>{words})" for i, (words, _, _) in enumerate(THEMES.values())) + r")\b", re.IGNORECASE)
_THEME_KEYS = list(THEMES)
# Settings (kg.lexicon.SETTINGS) after a cue that says where the story happens ("set in Paris",
# "takes place in New York", "a comedy in London", "a movie about Boston"); the bare name is no request.
_SETTING_CUE = (r"(?:(?:set|takes?\s+place|taking\s+place|located)\s+(?:somewhere\s+)?(?:in|on|at|around)|"
                r"(?:movies?|films?|flicks?|something|anything|ones?|stuff|stories|story|comed(?:y|ies)|dramas?|thrillers?|"
                r"romances?|rom-?coms?|horrors?|westerns?|musicals?|animations?|documentar(?:y|ies)|myster(?:y|ies)|adventures?)"
                r"\s+(?:that\s+(?:is|are|was)\s+)?(?:in|about|around))\s+(?:the\s+)?(?:city\s+of\s+|state\s+of\s+)?")
_SETTING_RE = re.compile(r"\b" + _SETTING_CUE + r"(?:" + "|".join(f"(?P<s{i}>{words})" for i, (words, _, _) in enumerate(SETTINGS.values()))
                         + r")\b", re.IGNORECASE)
_SETTING_KEYS = list(SETTINGS)
_ABOUT_BEFORE_RE = re.compile(r"\b(?:about|with|involving|featuring)\s+$", re.IGNORECASE)  # "a movie about aliens", not Aliens (1986)
_KIND_AFTER_RE = re.compile(r"\s+(?:movies?|films?|flicks?|ones|franchise|series)\b", re.IGNORECASE)
# A series asked for by one movie's title: "a Batman movie", "another Harry Potter film", "Star Wars
# movies" (not "the Batman movie", which is that one).
_ONE_OF_BEFORE_RE = re.compile(r"\b(?:a|an|any|another|other|more|some|good|great|new|best|favou?rite)\s+$", re.IGNORECASE)
_SERIES_PLURAL_AFTER_RE = re.compile(r"\s+(?:movies|films|flicks)\b", re.IGNORECASE)
_THE_BEFORE_RE = re.compile(r"\b(?:the|those|these|both)\s+$", re.IGNORECASE)
_NOT_REQUIRED_BEFORE_RE = re.compile(r"(?:n'?t|\bnot)\s+(?:have|need)\s+to\s+be\s+(?:\w+\s+)?$|\bneed\s+not\s+be\s+(?:\w+\s+)?$", re.IGNORECASE)

# A war by name asks for the war genre; refused ("nothing about World War 2"), it is not read: the
# user turns down one war, not every war movie (after "a good war movie?" that would undo the request).
WANTED_ONLY_ATTRIBUTES = frozenset({"world war", "ww1", "ww2", "wwi", "wwii", "vietnam war", "civil war"})
# Attribute words a request reads but a reply's genre check does not: a movie with songs ("Frozen has
# great songs") need not be listed as a musical.
REQUEST_ONLY_ATTRIBUTES = frozenset({"singing", "songs", "sing along", "sing-along"})
_ATTRIBUTE_RE = re.compile(r"\b(" + "|".join(sorted((re.escape(w).replace(r"\ ", r"\s+") for w in ATTRIBUTE_GENRES),
                                                     key=len, reverse=True)) + r")\b", re.IGNORECASE)

_BARE_GENRE_RE = re.compile(r"\b(" + "|".join(sorted({re.escape(w).replace(r"\ ", r"\s+") for words in GENRE_WORDS.values()
                                                       for w in words}, key=len, reverse=True)) + r")\b", re.IGNORECASE)
# A negation of degree right before a word ("not too gory", "nothing too scary", "not overly sad"):
# the user tones the genre down. When the same turn asks for that genre by another word ("a scary
# movie but not too gory"), the genre stays wanted instead of being turned down.
# "Something less sad", "a bit less scary", and the complaint "that one is too sad", "way too scary":
# the word right after "less", "too" or "overly" is toned down as "not too" does.
_TONING_DOWN = r"less|too|overly"
_DEGREE_BEFORE_RE = re.compile(rf"\b(?:(?:not|nothing|none|isn'?t|aren'?t|wasn'?t)\s+(?:too|overly|that|very|super|so|excessively|as)|{_TONING_DOWN})\s+$",
                               re.IGNORECASE)
_LESS_BEFORE_RE = re.compile(rf"\b(?:{_TONING_DOWN})\s+$", re.IGNORECASE)
_NEGATED_WORD_RE = re.compile(r"(?:" + NEGATION_RE.pattern + r")\s+(?:(?:a|an|any|more|some|of|with|about|in|too\s+much|too|overly|that|so|very)\s+)?$",
                              re.IGNORECASE)
# "I've seen all the Toy Story movies": every movie of the franchise is turned down.
# A person named by their part in the movie being talked about ("what else did the director make?",
# "more with the same actor", "anything else by that director"): the movie's director(s) or its
# first-billed star. Read only with a request word (else, more, other, same, anything, ...), so
# "who is the director?" stays a question (crs.serve.answers).
_PEOPLE_REFERENCE_RES = {
    "director": re.compile(
        r"\b(?:(?:same|that|this|the|its|his|her|their)\s+(?:director|filmmaker)s?"
        r"|directed\s+by\s+(?:the\s+same|that|this)\s+(?:person|guy|man|woman|one|people)"
        r"|(?:by|from)\s+the\s+same\s+(?:guy|person|people|man|woman)|(?:directed\s+)?(?:by|from)\s+(?:him|her|them)\b"
        r"|what\s+else\s+(?:did|has|have)\s+(?:he|she|they)\s+(?:directed|direct|made|make|done)\b)", re.IGNORECASE),
    "actor": re.compile(
        r"\b(?:(?:same|that|this|the)\s+(?:actor|actress|lead\s+actor|lead\s+actress|star|lead)"
        r"|(?:with|starring)\s+(?:him|her|the\s+same\s+(?:guy|person|man|woman))\b"
        r"|what\s+else\s+(?:was|is|has|have)\s+(?:he|she)\s+(?:been\s+)?(?:in|starred\s+in|acted\s+in)\b)", re.IGNORECASE),
}
# A pronoun for a person the user named earlier ("more with him", "what else is she in?", "his
# other movies"), by the role it implies; "any" fits a person asked for in any role.
_PRONOUN_REFERENCE_RES = {
    "director": re.compile(
        r"\b(?:(?:directed\s+)?(?:by|from)\s+(?:him|her)\b"
        r"|(?:did|has|have)\s+(?:he|she)\s+(?:directed|direct)\b|(?:he|she)(?:\s+has|'s)?\s+directed\b)", re.IGNORECASE),
    "actor": re.compile(
        r"\b(?:(?:with|starring|featuring)\s+(?:him|her)\b"
        r"|(?:was|is|has|have)\s+(?:he|she)\s+(?:been\s+)?(?:in|starred\s+in|acted\s+in)\b"
        r"|(?:he|she)\s+(?:is|was|has\s+been|'s\s+been|'s)\s+in\b|(?:he|she)\s+(?:starred|acted|stars|acts)\s+in\b)", re.IGNORECASE),
    "any": re.compile(
        r"\b(?:(?:his|her)\s+(?:other\s+|older\s+|newer\s+|earlier\s+|later\s+)?(?:movies|films|work|stuff|ones)\b"
        r"|more\s+(?:of|from)\s+(?:him|her)\b|(?:else|other|others)\s+(?:of|from|by)\s+(?:him|her)\b"
        r"|(?:did|has|have)\s+(?:he|she)\s+(?:made|make|done|do)\b)", re.IGNORECASE),
}
# A question that compares the movies just suggested ("which one is the funniest?", "which of them
# would you pick?", "which is better?"): it asks to choose among them (crs.serve.answers), not for
# another movie with the genre it names. "Which genre ...", "which actors ..." ask other things.
WHICH_RE = re.compile(r"(?:^|[.!?,;]\s*)(?:so\s+|and\s+|ok(?:ay)?\s+|but\s+|well\s+)?which\b(?!\s+(?:genre|kind|type|sort|actors?|actresses|"
                      r"stars?|director|year|decade)s?\b)(?:\s+(?:one|ones|of\s+(?:them|those|these|the\s+\w+)|movie|film))?\s+"
                      r"(?:is|was|would|should|do|does|did|'s|will|of|you|are)\b", re.IGNORECASE)
# A yes/no question about a movie ("is The Shining scary?", "was it made in the 80s?"): it asks about
# that movie, it does not ask for one (crs.serve.answers answers it); "is there anything ..." asks.
YES_NO_RE = re.compile(r"^\s*(?:so\s+|and\s+|but\s+)?(?:is|was|isn't|wasn't)\b(?!\s+(?:there|anything|something|any)\b)", re.IGNORECASE)
_MORE_RE = re.compile(r"\b(?:else|more|other|others|another|same|anything|something|similar|movies|films|ones|recommend|suggest)\b",
                      re.IGNORECASE)
# A studio by name; a country by adjective before a movie word ("a French comedy", "Korean films"),
# "Bollywood" alone, or a language after "in" ("something in Spanish"). "Washington DC" is a place.
_STUDIO_RE = re.compile(r"\b(?<!washington )(?:studio\s+)?(" + "|".join(STUDIO_WORDS) + r")\b", re.IGNORECASE)
_ANIME_RE = re.compile(r"\banime\b", re.IGNORECASE)
_COUNTRY_ADJECTIVES = "|".join(w for w in COUNTRY_WORDS if w != "bollywood")
_COUNTRY_RE = re.compile(r"\b(" + _COUNTRY_ADJECTIVES + r")\b(?=(?:\s+[\w-]+)?\s+(?:movies?|films?|cinema|flicks?|"
                         r"ones?|stuff|comed(?:y|ies)|dramas?|horrors?|thrillers?|animations?|anime|romances?|action|musicals?|"
                         r"westerns?|documentar(?:y|ies)|classics?)\b)|\b(bollywood)\b|"
                         r"\b(?:in|spoken\s+in|subtitled\s+from)\s+(french|hindi|japanese|korean|italian|german|spanish|chinese|swedish|danish|russian)\b"
                         r"(?!\s+(?:accent|style|restaurant|food))|"
                         r"\b(?:something|anything|movies?|films?|one)\s+(?:that'?s\s+|that\s+is\s+|more\s+)?("
                         + _COUNTRY_ADJECTIVES + r")\b(?=\s*(?:$|[.,!?;]|please\b|maybe\b|perhaps\b|instead\b|then\b|too\b|or\b|this\s+time\b))",
                         re.IGNORECASE)


def theme_words(text: str) -> list[str]:
    """The :data:`kg.lexicon.THEMES` keys ``text`` names (as requests name them: "zombie", "in space")."""
    return list(dict.fromkeys(theme_of(m) for m in _THEME_RE.finditer(text)))


def theme_of(match: re.Match) -> str:
    """The :data:`kg.lexicon.THEMES` key a match of :data:`_THEME_RE` names (its named group's index)."""
    return _THEME_KEYS[int(match.lastgroup[1:])]


def studio_and_country_words(text: str) -> list[tuple[str, str, int, int]]:
    """The studios and countries ``text`` names: (kind, key, start, end) each."""
    found = [("studio", m.group(1).lower(), m.start(), m.end()) for m in _STUDIO_RE.finditer(text)]
    for m in _COUNTRY_RE.finditer(text):
        group = next(g for g in (1, 2, 3, 4) if m.group(g))
        found.append(("country", m.group(group).lower(), m.start(group), m.end(group)))
    return found


# The other movies of the franchise of the movie being talked about.
_SEQUELS_ASKED_RE = re.compile(r"\b(?:sequels?|prequels?|follow[\s-]?ups?|(?:the\s+)?(?:next|other)\s+(?:ones?|parts?|movies?|films?|installments?)"
                        r"\s+(?:in|of)\s+(?:the|that|this)\s+(?:series|franchise|saga|trilogy)|"
                        r"(?:rest|others?)\s+(?:of|in)\s+(?:the|that|this)\s+(?:series|franchise|saga|trilogy)|"
                        r"(?:same|that|this)\s+(?:series|franchise|saga|trilogy))\b", re.IGNORECASE)
def _series_name(key: str) -> str:
    """A franchise key as a name: "ocean's eleven" → "Ocean's Eleven", "x-men" → "X-Men"."""
    return re.sub(r"(?<=\w)'S\b", "'s", key.title())


# A title ending in a number, in digits or words ("Ocean's 11", "Ocean's Eleven"): stem and number.
_NUMBER_VALUES = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
                  "eleven": 11, "twelve": 12, "thirteen": 13}
_NUMBERED_TITLE_RE = re.compile(r"^(.+?)\s+(" + "|".join(_NUMBER_VALUES) + r"|\d{1,2})$")
# Having seen all of a person's movies ("I love Nolan but I've seen all of them"): that person's
# movies are turned down.
_SEEN_THEM_ALL_RE = re.compile(r"(?:\b(?:i'?ve|i\s+have|i|we'?ve|we\s+have|already|he'?s|he\s+has|she'?s|she\s+has|they'?ve|"
                               r"they\s+have|(?:my|our)\s+\w+(?:'s|\s+has))\s+|^\W*)(?:already\s+|probably\s+)?(?:seen|watched|saw)\s+(?:them\s+all|all\s+(?:of\s+)?(?:them|those|his|hers|her|their)\b|"
                               r"every\s+(?:one|single\s+one)\s+of\s+(?:them|his|hers|her|their)\b|"
                               r"everything\s+(?:by|from|with|of)\s+(?:him|her|them)\b)", re.IGNORECASE)
# Another person than the one asked for ("someone else", "a different actor", "other directors").
_SOMEONE_ELSE_RE = re.compile(r"\b(?:someone|somebody|anyone|anybody)\s+else\b|\b(?:a\s+)?(?:different|another|other)\s+"
                              r"(?:actors?|actress(?:es)?|directors?|star|stars|person|people|guy|lead)\b", re.IGNORECASE)
_SEEN_ALL_BEFORE_RE = re.compile(r"\b(?:seen|watched|saw)\s+(?:all|every|each)\s+(?:of\s+)?(?:the\s+)?$", re.IGNORECASE)
# A turn that asks for a movie; before a genre word, words that list what it should be ("light and
# funny", "something funny", "that's also funny"); after it, what narrows it ("a musical from the
# 2000s", "funny with a twist"); and an exclamation about what was said ("That's funny", "so funny").
_ASKING_RE = re.compile(r"\b(?:want|wanna|need|looking\s+for|recommend|suggest|mood|something|anything|movies?|films?|watch|"
                        r"show\s+me|give\s+me|any|what\s+about|how\s+about)\b", re.IGNORECASE)
_DESCRIBED_BEFORE_RE = re.compile(r"(?:\b(?:and|or|but|also|really|very|more|something|anything|somewhat|bit|little|pretty|"
                                  r"super|light|lighthearted|fun|kinda|just|nice|good|plain)|,)\s*$", re.IGNORECASE)
_QUALIFIER_AFTER_RE = re.compile(r"\s+(?:and|or|but|with|from|set|about|that|for|like|in|from|starring|by)\b", re.IGNORECASE)
_INTERJECTION_BEFORE_RE = re.compile(r"(?:^|[.!?]\s*)(?:that'?s|that\s+is|it'?s|it\s+is|so|how|lol|haha)\s+(?:\w+\s+)?$",
                                     re.IGNORECASE)
_ARTICLE_END_RE = re.compile(r"(?:^|\b(?:a|an|some|any|good)\s+)$", re.IGNORECASE)
_REQUEST_END_RE = re.compile(r"\s*(?:[,.!?;]|$|please\b|tonight\b|maybe\b|though\b|or\b|and\b|for\b)", re.IGNORECASE)
_SHORT_NAME_RE = re.compile(r"\b([A-Za-z][a-z]{1,5})\s+([A-Za-z][A-Za-z'’-]{3,})\b")
_SURNAME_RE = re.compile(r"(?<![\w'’])([A-Z][a-z]+(?:[A-Z][a-z]+)?)(?=(?:'s|’s)?\b)")
# A capitalised word before a surname makes it part of a longer name, unless that word only opens
# the sentence ("Any Kubrick?").
_CAPITALISED_BEFORE_RE = re.compile(r"(?<![.!?]\s)(?<![.!?])(?<!^)\b(?<!^)[A-Z][\w'’.-]*\s+$")
_CAPITALISED_AFTER_RE = re.compile(r"\s+[A-Z]")
_KEEP_OUT_BEFORE_RE = re.compile(r"\b(?:keep|leave)\s+$", re.IGNORECASE)
_KEEP_OUT_AFTER_RE = re.compile(r"\s+(?:out|off)\b", re.IGNORECASE)

_DECADE_WORDS = {"twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
                 "seventies": 1970, "eighties": 1980, "nineties": 1990}
_YEAR = r"((?:19|20)\d\d)"
# "the last few years": how many years a word counts ("decade" is ten).
_NUMBER_WORDS = {"couple of": 2, "couple": 2, "few": 3, **{word: n for word, n in _NUMBER_VALUES.items() if n <= 10},
                 "fifteen": 15, "twenty": 20, "decade": 10}
_YEARS_RES = [
    ("between", re.compile(rf"\b(?:between|from)\s+{_YEAR}\s*(?:and|to|-|–)\s*{_YEAR}\b", re.IGNORECASE)),
    ("before", re.compile(rf"\b(?:before|pre|older\s+than|earlier\s+than|prior\s+to|until)\s*-?\s*{_YEAR}\b", re.IGNORECASE)),
    ("after", re.compile(rf"\b(?:after|since|post|newer\s+than|later\s+than)\s*-?\s*{_YEAR}\b", re.IGNORECASE)),
    ("decade", re.compile(r"(?<![\w@])(?:the\s+)?'?((?:19|20)?\d0)'?s\b", re.IGNORECASE)),
    ("decade_word", re.compile(r"\b(?:the\s+)?(" + "|".join(_DECADE_WORDS) + r")\b", re.IGNORECASE)),
    ("year", re.compile(rf"\b(?:from|in|released\s+in|made\s+in|came\s+out\s+in|of)\s+{_YEAR}\b", re.IGNORECASE)),
    ("last_n", re.compile(r"\b(?:the\s+)?(?:last|past)\s+(\d{1,2}|" + "|".join(_NUMBER_WORDS) + r")\s+(?:years|yrs)\b|"
                          r"\b(?:the\s+)?(?:last|past)\s+(decade)\b", re.IGNORECASE)),
    ("recent", re.compile(r"\b(?:recent|newer|latest|modern|new\s+(?:movies?|films?|releases?|ones?|stuff)|"
                          r"(?:recently|just)\s+(?:released|came\s+out)|current|this\s+decade|lately|of\s+late)\b", re.IGNORECASE)),
    ("older", re.compile(r"(?<!year\s)(?<!year-)(?<!years\s)\b(?:old(?:er)?|classic|vintage)(?=\s+(?:[a-z-]+\s+)?(?:movies?|films?|ones?|stuff|flicks?|"
                         r"classics?|hollywood|musicals?|westerns?|comedies|dramas|romances|thrillers|cartoons)\b)|"
                         r"\b(?:something|anything|a\s+bit|bit|little|much)\s+older\b|\boldies\b|\bgolden\s+age\b|"
                         r"(?:^|[,.!?;]\s*)older(?:\s+(?:ones?|please|pls))?\s*(?:[,.!?]|please|pls|$)|"
                         r"\bblack\s+and\s+white\b", re.IGNORECASE)),
]
# Before a decade, words that make it an age ("in their 70s", "in my late twenties", "a man in his 40s").
_AGE_BEFORE_RE = re.compile(r"\bin\s+(?:their|his|her|my|our|your)\s+(?:(?:early|mid|late)[\s-]+)?$", re.IGNORECASE)
_VAGUE_YEARS = ("recent", "older")  # kinds of _YEARS_RES that give no years ("newer", "older")

# What the user has been doing ("I've been watching a lot of horror lately"): "lately" then says when
# they watched, not which movies they want.
_OWN_DOINGS_RE = re.compile(r"\b(?:i'?ve|i\s+have|we'?ve|we\s+have)\s+(?:been|watched|seen|gotten|got)\b|\bi\s+(?:watched|saw|was)\b|"
                            r"\bi'?m\s+(?:on|into|obsessed|hooked)\b", re.IGNORECASE)
# Claims that a movie is new now (only checked in what a reply claims: :meth:`RequestReader.year_claims`).
_SHOWING_RE = re.compile(
    r"\b(?:(?:still\s+|now\s+)?(?:in|at\s+the)\s+(?:movie\s+)?(?:theat(?:er|re)s?|cinemas?)|now\s+playing|"
    r"(?:is|are|still|now|currently)\s+(?:\w+\s+)?in\s+the\s+(?:movie\s+)?(?:theat(?:er|re)s?|cinemas?)|"
    r"in\s+the\s+(?:movie\s+)?(?:theat(?:er|re)s?|cinemas?)\s+(?:now|right\s+now|currently)|"
    r"(?:comes|coming|come)\s+out|will\s+be\s+(?:out|released)|(?:out|opens?|opening)\s+(?:this|next)\s+(?:week|weekend|month|friday)|"
    r"(?:came\s+out|released|was\s+out)\s+(?:this|last)\s+(?:year|month|week|weekend)|new\s+release|just\s+came\s+out|"
    r"(?:(?:is|are)\b|(?:it|that|which|who)'?s)\s+(?:out|playing)\s+(?:right\s+)?now|"
    r"(?:is|'s|was)\s+(?:a\s+)?(?:brand\s+|pretty\s+|fairly\s+|really\s+|very\s+)?newe?r?\s+(?:one|movie|film)\b(?!\s+(?:to|for)\s+me))\b",
    re.IGNORECASE)
# Claims that a movie is old, beyond the "older" of requests ("a little old but a classic", "an old
# classic", "an oldie"; only checked in what a reply claims).
_OLD_CLAIM_RE = re.compile(r"\b(?:(?:a\s+)?(?:little|bit|kind\s+of|kinda|pretty|really|very)\s+old\b(?!\s+(?:to|for|enough))|"
                           r"(?:it'?s|it\s+is|its)\s+old\b(?!\s+(?:to|for|enough|school|fashioned))|an\s+old\s+(?:one|film|movie)\b|"
                           r"(?:it'?s|it\s+is|its|it\s+was|that'?s|that\s+is|this\s+is)\s+(?:a\s+(?:bit|little)\s+|kind\s+of\s+|kinda\s+)?older\b(?!\s+than)|"
                           r"old\s+classics?|an?\s+oldie|old\s+but\s+(?:good|gold|great)|oldie\s+but\s+goodie|a\s+bit\s+dated)", re.IGNORECASE)
_ADDITIVE_RE = re.compile(r"\b(?:also|too|as\s+well|and|plus|both)\b", re.IGNORECASE)
# A true story can be of any genre: asked for after one ("a war movie" ... "something based on a true
# story"), it narrows that request instead of replacing it.
_TRUE_STORY_RE = re.compile(r"\b(?:true|real)\s+(?:stor(?:y|ies)|events)\b", re.IGNORECASE)

_GENRE_SHORT = {alias: genre for genre, alias in GENRE_ALIASES.items()}


def _mask(text: str, pattern: re.Pattern) -> str:
    """``text`` with every match of ``pattern`` blanked out (offsets kept)."""
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


@dataclass
class TurnRequest:
    """What one user turn asks for."""

    wanted: list[Constraint] = field(default_factory=list)
    unwanted: list[Constraint] = field(default_factory=list)
    liked: list[int] = field(default_factory=list)
    additive: bool = False  # the turn adds to earlier wanted constraints ("also", "too")
    people: list[Constraint] = field(default_factory=list)  # the people the turn names (or a pronoun resolves to)
    movies: bool = False  # the turn names a catalogue movie
    toned_down: list[Constraint] = field(default_factory=list)  # unwanted only by degree ("less gory", "not too scary")
    unknowable: list[str] = field(default_factory=list)  # asked by what the catalogue does not hold (UNKNOWABLE keys)


# Themes whose movies are mostly of one genre: after "a zombie movie", "not too scary" tones horror
# down (the zombie comedies stay) instead of turning every horror movie down.
THEME_GENRES = {"zombies": "horror", "vampires": "horror", "werewolves": "horror", "ghosts": "horror", "serial killers": "horror"}

# Requests by what the catalogue does not hold: running times ("under 90 minutes", "something
# short"), age ratings ("rated PG-13", "nothing R-rated" aside: that asks for a family movie) and the
# people's gender ("directed by a woman"). The reply says it cannot check and still recommends.
UNKNOWABLE = {
    "length": (re.compile(r"\b(?:under|less\s+than|shorter\s+than|no\s+(?:longer|more)\s+than|at\s+most|over|more\s+than|longer\s+than)\s+"
                          r"(?:an?\s+|one\s+|two\s+|\d+(?:\.\d+)?\s*)(?:and\s+a\s+half\s+)?(?:min(?:ute)?s?|hours?|hrs?)\b|"
                          r"\b(?:short|quick|long|lengthy)\s+(?:one|movie|film|flick)s?\b|\bsomething\s+(?:short|quick)\b|"
                          r"\b(?:running\s+time|runtime|run\s+time)\b", re.IGNORECASE),
               "My catalogue has no running times, so I can't choose by length."),
    "rating": (re.compile(r"\brated\s+(?:g|pg|pg-?13|r)\b|\b(?:pg|pg-?13)\b(?!\s*-?\s*rated\s+nothing)", re.IGNORECASE),
               "My catalogue has no age ratings, so I can't choose by rating."),
    "gender": (re.compile(r"\b(?:directed|written|made)\s+by\s+(?:a\s+)?(?:women|woman|female|females)\b|"
                          r"\b(?:female|woman|women)\s+(?:directors?|filmmakers?|writers?)\b", re.IGNORECASE),
               "My catalogue doesn't say who is a woman, so I can't choose by that."),
}


class RequestReader:
    """Reads user turns into a :class:`RequestState` (rules in the module docstring)."""

    def __init__(self, facts: MovieFacts, link=None):
        self.facts = facts
        self.link = link  # text → linked entities, for attribute words (the chat's memoised linker)
        self._genre_entity: dict[str, int | None] = {}

    def genre_words(self, text: str) -> set[int]:
        """The genres ``text`` names by a genre word the linker leaves alone ("crime", "mystery") or
        an attribute word ("scary", "kids"): every occurrence, negated or not (for checking what a
        sentence claims, not for reading a request)."""
        plain = text.replace("’", "'").replace("‘", "'")
        words = [m.group(1).lower() for m in _BARE_GENRE_RE.finditer(plain)]
        said = (" ".join(m.group(1).lower().split()) for m in _ATTRIBUTE_RE.finditer(plain))
        words += [ATTRIBUTE_GENRES[w] for w in said if w not in REQUEST_ONLY_ATTRIBUTES]
        return {genre for genre in map(self._genre, words) if genre is not None}

    def showing_years(self) -> tuple[int, None]:
        """The years of a movie "in theaters now" (or "the new [REC]"): the catalogue's last :data:`SHOWING_YEARS`."""
        return ((self.facts.latest_year or 2018) - SHOWING_YEARS + 1, None)

    def year_claims(self, text: str) -> list[tuple[int | None, int | None]]:
        """The years ``text`` speaks of ("from the 80s", "a recent one", "an old classic", "in 1994"),
        each a (first, last) range read as in a request, either end None for open, the claim
        that a movie is new now ("in theaters", "comes out this weekend", "came out this year":
        the catalogue's last :data:`SHOWING_YEARS` years) and that it is old ("a little old", "an
        oldie": before :data:`OLDER_BEFORE`); negated or not (for checking what a
        sentence claims, not for reading a request)."""
        plain = text.replace("’", "'").replace("‘", "'")
        claims = [years for _, years, _ in self._years(plain, [])]
        if _SHOWING_RE.search(plain):
            claims.append(self.showing_years())
        if _OLD_CLAIM_RE.search(plain) and not any(first is None and last is not None for first, last in claims):
            claims.append((None, OLDER_BEFORE - 1))
        return claims

    # -- one turn

    def read_turn(self, text: str, linked: Sequence[LinkedEntity], focus: int | None = None,
                  named: Sequence[int] = (), people: Sequence[Constraint] = ()) -> TurnRequest:
        """What one user turn asks for; ``focus``: the movie being talked about (the last one named
        in this turn or before it), whose people "the director", "the same actor" refer to;
        ``named``: the movies named so far, the latest first, whose series "the sequels" asks for
        when the focus has none; ``people``: the people the user named last
        (:attr:`RequestState.people`), whom "him", "her", "his movies" refer to."""
        plain = text.replace("’", "'").replace("‘", "'")
        masked = _mask(plain, _NOT_NEGATION_RE)
        cues = [m.span() for m in NEGATION_RE.finditer(masked)]
        ends = [m.start() for m in _SCOPE_END_RE.finditer(masked)]

        def negated(position: int) -> bool:
            return bool(_LESS_BEFORE_RE.search(masked[:position])) or any(
                start < position and not any(end_of_cue <= end < position for end in ends) for start, end_of_cue in cues)

        def clause_after(position: int) -> str:
            stop = min([e for e in ends if e > position] + [len(plain)])
            return plain[position:stop]

        request = TurnRequest(additive=bool(_ADDITIVE_RE.search(plain) or _TRUE_STORY_RE.search(plain)))
        toned_down: list[Constraint] = []  # genres negated by degree ("not too gory")
        refused: list[Constraint] = []  # genres negated outright ("no horror")

        def said_genre(constraint: Constraint, start: int, neg: bool, side_word: bool = False) -> None:
            """A genre named at ``start``: wanted, or unwanted (toned down or refused) when ``neg``.
            ``side_word``: named by a word for one side of it, which turned down only tones it down
            ("I like horror but not gore", "no gory ones"): still wanted when the turn asks for it by name."""
            (request.unwanted if neg else request.wanted).append(constraint)
            if neg:
                (toned_down if side_word or _DEGREE_BEFORE_RE.search(masked[:start]) else refused).append(constraint)

        taken: list[tuple[int, int]] = []  # spans already read as something

        def is_taken(start: int, end: int) -> bool:
            return any(a < end and start < b for a, b in taken)
        linked = list(linked) + self._surnames(plain, linked)
        for entity in linked:
            taken.append((entity.start, entity.end))
            neg = negated(entity.start) or bool(_KEEP_OUT_BEFORE_RE.search(plain[:entity.start])
                                                 and _KEEP_OUT_AFTER_RE.match(plain[entity.end:]))
            if entity.kind == MOVIE and entity.movie_id is not None:
                movie = entity.movie_id
                disliked = neg or bool(_VERDICT_RE.match(clause_after(entity.end))) \
                    or bool(_SEEN_ALL_BEFORE_RE.search(plain[:entity.start]))
                if disliked:
                    request.unwanted.append(Constraint("movie", movie, f"movie: {self.facts.catalogue.by_id(movie).display_name}"))
                    franchise = self.facts.franchise_constraint(movie, entity.surface)
                    if franchise is not None:
                        request.unwanted.append(franchise)
                else:
                    request.liked.append(movie)
                    # "a Batman movie", "any Star Wars films?", "I love Harry Potter movies": one of the series
                    after, before = plain[entity.end:], plain[:entity.start]
                    if not _THEME_RE.fullmatch(entity.surface) and (
                            _SERIES_PLURAL_AFTER_RE.match(after) and not _THE_BEFORE_RE.search(before)
                            or _KIND_AFTER_RE.match(after) and _ONE_OF_BEFORE_RE.search(before)):  # (a theme's name: the theme)
                        franchise = self.facts.franchise_constraint(movie, entity.surface)
                        if franchise is not None:
                            request.wanted.append(franchise)
            elif entity.kind == "person":
                role = self._role(plain, entity)
                label = f"{role or 'with'}: {entity.name}" if role else f"with: {entity.name}"
                seen_all = _SEEN_THEM_ALL_RE.search(plain, entity.end)  # "I love Nolan but I've seen all of his movies"
                (request.unwanted if neg or seen_all else request.wanted).append(Constraint("person", entity.entity, label, role))
            elif entity.kind == GENRE:
                label = f"genre: {self._genre_label(entity)}"
                said_genre(Constraint("genre", entity.entity, label), entity.start, neg)
        asking = bool(_ASKING_RE.search(plain))
        for match in _BARE_GENRE_RE.finditer(plain):
            # A genre word the linker leaves alone without a word such as "movie" after it ("crime",
            # "family", "mystery"), read as a genre right after a negation ("not crime") or as a whole
            # request ("a mystery, please").
            if is_taken(*match.span()):
                continue
            before, after = masked[:match.start()], plain[match.end():]
            right_after_negation = _NEGATED_WORD_RE.search(before) or _LESS_BEFORE_RE.search(before)
            alone = _ARTICLE_END_RE.search(before) and _REQUEST_END_RE.match(after)
            # In a turn that asks for a movie, a word that describes it: "light and funny", "a
            # space movie that's also funny", "a musical from the 2000s" (not "that's funny!").
            described = asking and not _INTERJECTION_BEFORE_RE.search(before) and (
                _DESCRIBED_BEFORE_RE.search(before) and (_REQUEST_END_RE.match(after) or _QUALIFIER_AFTER_RE.match(after))
                or _ARTICLE_END_RE.search(before) and _QUALIFIER_AFTER_RE.match(after))
            genre = self._genre(match.group(1).lower()) if (right_after_negation or alone or described) else None
            if genre is None:
                continue
            taken.append(match.span())
            said_genre(Constraint("genre", genre, f"genre: {self._genre_label_of(genre)}"), match.start(), negated(match.start()))
        for match in _THEME_RE.finditer(plain):
            key = theme_of(match)
            constraint = Constraint("theme", key, f"theme: {THEMES[key][1]}")
            neg = negated(match.start())
            # Part of a title ("Shark Tale") it is not read, unless the title is just the theme's name
            # and the turn asks for (or turns down) the kind: "a James Bond movie", "no James Bond",
            # "a movie about aliens" (an obscure film is called "James Bond"; the user means the
            # series). Not taken: its words may also name a genre ("heist": crime).
            if is_taken(*match.span()) and not (any(e.kind == MOVIE and (e.start, e.end) == match.span() for e in linked)
                                                and (neg or _KIND_AFTER_RE.match(plain[match.end():])
                                                     or _ABOUT_BEFORE_RE.search(plain[:match.start()]))):
                continue
            (request.unwanted if neg else request.wanted).append(constraint)
        for match in _SETTING_RE.finditer(plain):
            key = _SETTING_KEYS[int(match.lastgroup[1:])]
            place = match.span(match.lastgroup)
            if is_taken(*place):
                continue
            taken.append(place)
            constraint = Constraint("theme", key, f"setting: {SETTINGS[key][1]}")
            (request.unwanted if negated(match.start()) else request.wanted).append(constraint)
        for match in _ATTRIBUTE_RE.finditer(plain):
            if is_taken(*match.span()):
                continue
            word = " ".join(match.group(1).lower().split())
            genre = self._genre(ATTRIBUTE_GENRES[word])
            if genre is None or (word in WANTED_ONLY_ATTRIBUTES and negated(match.start())):
                continue
            taken.append(match.span())
            said_genre(Constraint("genre", genre, f"genre: {self._genre_label_of(genre)}"), match.start(), negated(match.start()),
                       side_word=True)
        for match in _CHILD_RE.finditer(plain):
            genre = self._genre("family")
            if genre is not None and not is_taken(*match.span()):
                taken.append(match.span())
                (request.unwanted if negated(match.start()) else request.wanted).append(
                    Constraint("genre", genre, f"genre: {self._genre_label_of(genre)}"))
        for match in _REALISTIC_RE.finditer(plain):
            if negated(match.start()) or is_taken(*match.span()) \
                    or _NOT_REQUIRED_BEFORE_RE.search(plain[:match.start()]):  # "it doesn't have to be realistic"
                continue
            taken.append(match.span())
            for word in UNREALISTIC_GENRES:
                if (genre := self._genre(word)) is not None:
                    constraint = Constraint("genre", genre, f"genre: {self._genre_label_of(genre)}")
                    request.unwanted.append(constraint)
                    refused.append(constraint)
        for match in _VIOLENT_RE.finditer(plain):
            if not negated(match.start()) or is_taken(*match.span()):
                continue
            taken.append(match.span())
            for word in VIOLENT_GENRES:
                if (genre := self._genre(word)) is not None:
                    said_genre(Constraint("genre", genre, f"genre: {self._genre_label_of(genre)}"), match.start(), True, side_word=True)
        for match in _CRUDE_RE.finditer(plain):
            if not negated(match.start()) or is_taken(*match.span()) or _NOT_MINDED_BEFORE_RE.search(plain[:match.start()]):
                continue
            taken.append(match.span())
            if (genre := self._genre("family")) is not None:
                request.wanted.append(Constraint("genre", genre, f"genre: {self._genre_label_of(genre)}"))
        for kind, key, start, end in studio_and_country_words(plain):
            if is_taken(start, end):
                continue  # part of a linked name ("French Kiss")
            taken.append((start, end))
            constraint = Constraint(kind, key, f"{kind}: {(STUDIO_NAMES if kind == 'studio' else COUNTRY_NAMES)[key]}")
            (request.unwanted if negated(start) else request.wanted).append(constraint)
        if any(not negated(m.start()) for m in _ANIME_RE.finditer(plain)):  # anime is Japanese animation (turned down: the animation only)
            request.wanted.append(Constraint("country", "japanese", f"country: {COUNTRY_NAMES['japanese']}"))
        found = self._years(plain, taken)
        given = any(not negated(start) and kind not in _VAGUE_YEARS for (start, _), _, kind in found)
        for (start, _), years, kind in found:
            if given and not negated(start) and kind in _VAGUE_YEARS:
                continue  # "something newer, after 2010 please": the years given say what "newer" means
            (request.unwanted if negated(start) else request.wanted).append(Constraint("years", years, years_label(years)))
        referred = False  # a pronoun resolved to a person the user named before
        names_person = any(e.kind == "person" for e in linked)
        if people and not names_person and (_MORE_RE.search(plain) or cues):
            for role, pattern in _PRONOUN_REFERENCE_RES.items():
                match = pattern.search(masked)
                fitting = [p for p in people if role == "any" or p.role in (role, None)] if match else []
                for person in fitting:
                    referred = True
                    if role != "any" and person.role is None:  # "what else did she direct?" of someone named in no role
                        person = replace(person, role=role, label=f"{role}: {person.label.split(': ', 1)[-1]}")
                    away = negated(match.start()) or bool(_SEEN_THEM_ALL_RE.search(plain))
                    (request.unwanted if away else request.wanted).append(person)
        if focus is not None and not referred and not names_person and _MORE_RE.search(plain):
            for role, pattern in _PEOPLE_REFERENCE_RES.items():
                match = pattern.search(masked)
                if match is None:
                    continue
                for person, name in self.facts.credited(focus, role):
                    constraint = Constraint("person", person, f"{role}: {name}", role)
                    (request.unwanted if negated(match.start()) else request.wanted).append(constraint)
        sequel = _SEQUELS_ASKED_RE.search(masked)
        if sequel is not None:  # "what about the sequels?": the rest of the series of the focus (else of a movie named before)
            series = (self.facts.franchise_constraint(m, strict=True) for m in dict.fromkeys([focus, *named]) if m is not None)
            franchise = next((c for c in series if c is not None), None)
            if franchise is not None:
                (request.unwanted if negated(sequel.start()) else request.wanted).append(franchise)
            elif negated(sequel.start()):  # "any Pixar movies that aren't sequels?": no movie that follows another
                request.unwanted.append(Constraint("sequel", True, "sequels"))
        if YES_NO_RE.match(plain) or WHICH_RE.search(plain):  # the genre, years or person it names are asked about, not asked for
            request.wanted = [c for c in request.wanted if c.kind in ("movie", "franchise")]
        # "A scary movie but not too gory": a genre only toned down stays wanted when asked for by another word.
        request.unwanted = [u for u in request.unwanted if not (u in toned_down and u not in refused
                                                                and any(same_target(w, u) for w in request.wanted))]
        request.unwanted = list(dict.fromkeys(request.unwanted))
        request.toned_down = [u for u in request.unwanted if u in toned_down and u not in refused]
        # Said both ways in one turn ("no horror … something scary"): the negation is the more specific.
        request.wanted = [c for c in dict.fromkeys(request.wanted) if not any(same_target(c, u) for u in request.unwanted)]
        request.people = [c for c in [*request.wanted, *request.unwanted] if c.kind == "person"]
        request.movies = any(e.kind == MOVIE and e.movie_id is not None for e in linked)
        request.unknowable = [key for key, (pattern, _) in UNKNOWABLE.items() if pattern.search(plain)]
        return request

    def _surnames(self, text: str, linked: Sequence[LinkedEntity]) -> list[LinkedEntity]:
        """People named by a capitalised surname alone ("Tarantino movies", "anything by Spielberg"),
        or after a short form of their first name ("leo dicaprio"), which the linker leaves out; only
        surnames that are not common words and that one prolific person stands out for
        (:meth:`MovieFacts.person_by_surname`)."""
        found = []
        for match in _SURNAME_RE.finditer(text):
            word = match.group(1)
            if len(word) < 4 or word.lower() in COMMON_WORDS or any(e.start < match.end() and match.start() < e.end for e in linked):
                continue
            if _CAPITALISED_BEFORE_RE.search(text[:match.start(1)]) or _CAPITALISED_AFTER_RE.match(text[match.end(1):]):
                continue  # part of a longer name the linker did not know ("Will Farrell"): not a bare surname
            person = self.facts.person_by_surname(word)
            if person is not None:
                name = base_name(self.facts.kg.entity_names[person])
                found.append(LinkedEntity(match.start(1), match.end(1), word, person, "person", name, None, 90.0))
        # A short form of the first name before the surname, in any case ("Leo DiCaprio", "leo
        # dicaprio", "Arnie Schwarzenegger" does not: "Arnie" is no start of "Arnold").
        for match in _SHORT_NAME_RE.finditer(text):
            first, last = match.group(1), match.group(2)
            if {first.lower(), last.lower()} & COMMON_WORDS or any(e.start < match.end() and match.start() < e.end for e in [*linked, *found]):
                continue
            person = self.facts.person_by_short_name(first, last)
            if person is not None:
                name = base_name(self.facts.kg.entity_names[person])
                found.append(LinkedEntity(match.start(), match.end(), match.group(0), person, "person", name, None, 90.0))
        return found

    def _role(self, text: str, entity: LinkedEntity) -> str | None:
        before, after = text[max(0, entity.start - 40):entity.start], text[entity.end:entity.end + 30]
        for role in ("writer", "director", "actor"):
            if _ROLE_BEFORE[role].search(before) or _ROLE_AFTER[role].search(after):
                if role == "director" and re.search(r"(?<!directed )\b(?:by|from)\W*$", before, re.IGNORECASE):
                    # "a movie by X": the director, unless X only ever wrote or acted
                    return self.facts.dominant_role(entity.entity) or "director"
                return role
        return self.facts.dominant_role(entity.entity)

    def _genre(self, word: str) -> int | None:
        if word not in self._genre_entity:
            found = [e.entity for e in (self.link(f"{word} movies") if self.link else []) if e.kind == GENRE]
            self._genre_entity[word] = found[0] if found else None
        return self._genre_entity[word]

    def _genre_label_of(self, entity: int) -> str:
        name = re.sub(r"\s*\((?:genre|film genre)\)$", "", self.facts.kg.entity_names[entity], flags=re.IGNORECASE)
        key = name_key(name)
        short = _GENRE_SHORT.get(key) or re.sub(r"\s+film$", "", key)
        return short[:1].upper() + short[1:]

    def _genre_label(self, entity: LinkedEntity) -> str:
        return self._genre_label_of(entity.entity)

    def _years(self, text: str, taken: list[tuple[int, int]]) -> list[tuple[tuple[int, int], tuple[int | None, int | None], str]]:
        """The year ranges ``text`` names outside ``taken`` spans: (span, (first, last), kind of :data:`_YEARS_RES`), in order."""
        found = []
        used: list[tuple[int, int]] = list(taken)
        latest = self.facts.latest_year
        for kind, pattern in _YEARS_RES:
            for match in pattern.finditer(text):
                if any(a < match.end() and match.start() < b for a, b in used):
                    continue
                if kind in ("decade", "decade_word") and _AGE_BEFORE_RE.search(text[: match.start()]):
                    continue  # "my parents, they're in their 70s": an age, not when the movies came out
                years = self._years_of(kind, match, latest)
                if years is None or (kind == "recent" and match.group(0).lower() in ("lately", "of late")
                                     and _OWN_DOINGS_RE.search(text[:match.start()])):
                    continue  # "I've been on a Tarantino kick lately": when the user watched, not when the movies came out
                used.append(match.span())
                found.append((match.span(), years, kind))
        return sorted(found)

    @staticmethod
    def _years_of(kind: str, match: re.Match, latest: int | None) -> tuple[int | None, int | None] | None:
        if kind == "between":
            a, b = sorted((int(match.group(1)), int(match.group(2))))
            return (a, b)
        if kind == "before":
            return (None, int(match.group(1)) - 1)
        if kind == "after":
            return (int(match.group(1)) + (1 if match.group(0).lower().startswith(("after", "post", "newer", "later")) else 0), None)
        if kind == "decade":
            digits = match.group(1)
            if len(digits) == 2:
                start = (2000 if digits[0] in "01" else 1900) + int(digits)
            elif len(digits) == 4:
                start = int(digits)
            else:
                return None
            return (start, start + 9)
        if kind == "decade_word":
            start = _DECADE_WORDS[match.group(1).lower()]
            return (start, start + 9)
        if kind == "year":
            year = int(match.group(1))
            return (year, year)
        if kind == "last_n":
            word = " ".join((match.group(1) or match.group(2)).lower().split())
            count = int(word) if word.isdigit() else _NUMBER_WORDS[word]
            return ((latest or 2018) - count + 1, None) if count >= 1 else None
        if kind == "recent":
            return ((latest or 2018) - RECENT_YEARS + 1, None)
        if kind == "older":
            return (None, OLDER_BEFORE - 1)
        return None

    # -- the whole conversation

    def update(self, state: RequestState, text: str, linked: Sequence[LinkedEntity], focus: int | None = None,
               named: Sequence[int] = ()) -> RequestState:
        """The state after one more user turn (``focus``, ``named``: as for :meth:`read_turn`)."""
        turn = self.read_turn(text, linked, focus, named, state.people)
        wanted, unwanted = list(state.wanted), list(state.unwanted)
        seen_all = not (turn.wanted or turn.unwanted) and _SEEN_THEM_ALL_RE.search(text)
        if seen_all or not any(c.kind == "person" for c in turn.wanted) and _SOMEONE_ELSE_RE.search(text):
            # "any Star Wars movies?" ... "I've seen all of them": the series asked for is turned down;
            # with none, the people asked for ("westerns with Clint Eastwood" ... "he's seen all of
            # those", "someone else"), the rest of the request kept
            series = [c for c in wanted if c.kind == "franchise"] if seen_all else []
            for constraint in series or [c for c in wanted if c.kind == "person"]:
                wanted.remove(constraint)
                unwanted.append(constraint)
        if _SEEN_THEM_ALL_RE.search(text):  # "not Ocean's Eleven, seen all those": the series of a movie turned down
            for constraint in [c for c in turn.unwanted if c.kind == "movie"]:
                series = self.facts.franchise_constraint(constraint.value, strict=True)
                if series is not None and series not in turn.unwanted:
                    turn.unwanted.append(series)
        implied = {self._genre(THEME_GENRES[c.value]) for c in wanted if c.kind == "theme" and c.value in THEME_GENRES}
        for constraint in turn.unwanted:
            if constraint in turn.toned_down and (any(same_target(c, constraint) for c in wanted)
                                                  or constraint.kind == "genre" and constraint.value in implied):
                continue  # "something less gory" after a horror (or zombie) request: still that, only milder
            wanted = [c for c in wanted if not same_target(c, constraint)]
            if constraint not in unwanted:
                unwanted.append(constraint)
        if turn.wanted:
            kinds = {c.kind for c in turn.wanted}
            if not turn.additive:
                wanted = [c for c in wanted if c.kind not in kinds]
            for constraint in turn.wanted:
                unwanted = [c for c in unwanted if not same_target(c, constraint)]
                if constraint not in wanted:
                    wanted.append(constraint)
        asked = bool(turn.wanted or turn.unwanted or turn.unknowable)  # a request by attribute, or against one, wants a movie
        people = turn.people or ([] if turn.movies else state.people)
        return replace(state, wanted=wanted, unwanted=unwanted, asked=asked, relaxed=[], people=people, unknowable=turn.unknowable)

    def read(self, user_turns: Iterable[tuple], rejected: Iterable[int] = ()) -> RequestState:
        """The state after every user turn of a conversation, in order: (text, linked entities),
        (text, linked entities, the movie in focus) or (text, linked entities, focus, the movies
        named so far, latest first) each."""
        state = RequestState()
        for text, linked, *more in user_turns:
            state = self.update(state, text, linked, *more[:2])
        state.rejected = list(dict.fromkeys(rejected))
        return state


def same_target(a: Constraint, b: Constraint) -> bool:
    """Whether two constraints are about the same thing (a role aside)."""
    return a.kind == b.kind and a.value == b.value


def years_label(years: tuple[int | None, int | None]) -> str:
    first, last = years
    if first is not None and last is not None:
        if last - first == 9 and first % 10 == 0:
            return f"years: the {first}s"
        return f"years: {first}" if first == last else f"years: {first}–{last}"
    if first is not None:
        return f"years: {first} or later"
    return f"years: {last} or earlier"


# ------------------------------------------------------------------------------------ the ranking


def honour(facts: MovieFacts, ranking: Sequence[tuple[int, float]], state: RequestState, k: int) -> tuple[list[tuple[int, float]], RequestState]:
    """:func:`honour_scores` on a ranking (every candidate, best first) instead of a score vector:
    movies keep their place in ``ranking`` among those meeting as many wanted constraints."""
    catalogue = facts.catalogue
    order = np.full(len(catalogue), -np.inf)
    given = {}
    for place, (movie_id, score) in enumerate(ranking):
        order[catalogue.index(movie_id)] = -place
        given[movie_id] = score
    best, state = honour_scores(facts, order, (), state, k)
    return [(movie_id, given[movie_id]) for movie_id, _ in best], state


def honour_scores(facts: MovieFacts, scores: np.ndarray, excluded: Iterable[int], state: RequestState,
                  k: int) -> tuple[list[tuple[int, float]], RequestState]:
    """The ``k`` best catalogue movies under ``state``, from a score vector over the catalogue.

    Movies in ``excluded`` (catalogue indices), rejected ones, those meeting an unwanted constraint
    (or whose cut genre list may hide an unwanted genre, :meth:`MovieFacts.refused_mask`), those of
    unknown genre when a genre is unwanted, and those scored -inf go; the rest are ordered by the number of wanted constraints they meet, then by
    score. Returns them and the state with ``relaxed`` set (the wanted constraints the first misses)
    and ``relaxed_spent`` (a movie in ``excluded`` or rejected met them all)."""
    catalogue = facts.catalogue
    scores = np.asarray(scores, dtype=np.float64)
    allowed = np.isfinite(scores)
    named = np.zeros(len(catalogue), dtype=bool)  # named in the chat already, or turned down
    named[list(excluded)] = True
    named[[catalogue.index(m) for m in state.rejected if m in catalogue]] = True
    wanted_studios = [facts.mask(c) for c in state.wanted if c.kind == "studio"]
    for constraint in state.unwanted:
        if constraint.kind == "studio" and wanted_studios:  # "Pixar, not Disney": a co-production asked for stays
            allowed &= ~(facts.mask(constraint) & ~np.logical_or.reduce(wanted_studios))
            continue
        allowed &= ~facts.refused_mask(constraint)
    if any(c.kind == "genre" for c in state.unwanted) and (allowed & ~named & ~facts.genre_unknown()).any():
        allowed &= ~facts.genre_unknown()  # a movie of unknown genre may be the genre turned down
    met = np.zeros(len(catalogue), dtype=np.int64)  # wanted constraints met, named movies counted too
    for constraint in state.wanted:
        met += facts.mask(constraint) & allowed
    allowed &= ~named
    candidates = np.flatnonzero(allowed)
    order = candidates[np.lexsort((candidates, -scores[candidates], -met[candidates]))[:k]]
    best = [(catalogue[i].movie_id, float(scores[i])) for i in order]
    relaxed = [c for c in state.wanted if best and not facts.satisfies(best[0][0], c)]
    spent = bool(relaxed) and bool((met[named] == len(state.wanted)).any())
    return best, replace(state, relaxed=relaxed, relaxed_spent=spent)


def join_phrases(phrases: Sequence[str]) -> str:
    phrases = list(phrases)
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def describe_movies(constraints: Sequence[Constraint]) -> str:
    """Wanted constraints as a noun phrase: "horror movie from the 1980s with Tom Hanks"."""
    genres = [c.label.split(": ", 1)[-1].lower() for c in constraints if c.kind == "genre"]
    rest = [c.phrase for c in constraints if c.kind != "genre"]
    head = f"{join_phrases(genres)} movie" if genres else "movie"
    return f"{head} {join_phrases(rest)}" if rest else head


def relaxation_sentence(state: RequestState) -> str:
    """What the reply says when the ranking could not meet every wanted constraint ("" when it could),
    after what the last turn asked by that the catalogue cannot check (:data:`UNKNOWABLE`):
    "I found no horror movie from the 1980s with Tom Hanks, so I let go of "from the 1980s"."; "no
    other …" when the one movie that met them was named in the chat already or turned down."""
    cannot = " ".join(UNKNOWABLE[key][1] for key in state.unknowable if key in UNKNOWABLE)
    if not state.relaxed:
        return cannot
    dropped = join_phrases([f"“{c.phrase}”" for c in state.relaxed])
    avoided = [c.phrase for c in state.unwanted if c.kind in ("person", "genre", "years", "studio", "country", "theme")]
    unless = f" that is not {join_phrases(avoided)}" if avoided else ""
    other = "no other" if state.relaxed_spent else "no"
    relaxed = f"I found {other} {describe_movies(state.wanted)}{unless} in my catalogue, so I let go of {dropped}."
    return f"{cannot} {relaxed}" if cannot else relaxed
