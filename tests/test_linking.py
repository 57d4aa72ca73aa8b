"""Tests for entity linking (kg.text, kg.lexicon, kg.evidence, kg.linker) and its evaluation (crs.eval.linking).

Without data: the text folding, the word lists and evidence rules one by one, then a linker built on a
hand-made catalogue of seven movies and a thirteen-node graph. On the shared data (marked ``data``; the
fixtures of tests/conftest.py skip them without $CRS_DATA_DIR, or fail them when $CI is set): behaviour
on the real catalogue and KG, and the evaluation command line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import crs.config
import crs.data.redial
from crs.config import ConfigError, load_config
from crs.data.catalogue import Catalogue, Movie
from crs.eval.linking import evaluate, iter_messages, main, render_message
from kg import config as kg_config
from kg import text as kg_text
from kg.config import LinkingConfig
from kg.evidence import (
    CASED,
    COMMON,
    CUED,
    DISTINCTIVE,
    PlotWords,
    inside_compound,
    is_quoted,
    is_sentence_start,
    is_shouting,
    is_title_cased,
    movie_cue_before,
    name_strength,
    request_word,
    plot_words,
    title_strength,
    year_after,
)
from kg.graph import GENRE, MOVIE, PERSON, KnowledgeGraph
from kg.lexicon import (
    AMBIGUOUS_GENRE_WORDS,
    ARABIC_TO_ROMAN,
    COMMON_WORDS,
    GENRE_CONTEXT_WORDS,
    GENRE_WORDS,
    MINOR_WORDS,
    ROMAN_TO_ARABIC,
)
from kg.linker import EntityLinker, LinkedEntity, title_variants
from kg.text import MENTION_RE, normalise_key, normalise_with_offsets

REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- #
# Without data: text folding, word lists, evidence rules
# --------------------------------------------------------------------------- #


def test_kg_imports_nothing_from_crs() -> None:
    code = ("import sys, kg.config, kg.text, kg.types, kg.lexicon, kg.evidence, kg.graph, kg.linker, kg.rgcn; "
            "print(sorted(m for m in sys.modules if m == 'crs' or m.startswith('crs.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_crs_shares_kgs_definitions() -> None:
    assert crs.config.LinkingConfig is kg_config.LinkingConfig and crs.config.KGConfig is kg_config.KGConfig
    assert crs.config.ConfigError is kg_config.ConfigError
    assert crs.data.redial.MENTION_RE is kg_text.MENTION_RE
    assert [m.group(1) for m in MENTION_RE.finditer("@12 and @345, not @ or x@")] == ["12", "345"]


def test_normalise_folds_case_accents_apostrophes_and_keeps_offsets() -> None:
    text = "Amélie & Schindler's  List!"
    norm, offsets = normalise_with_offsets(text)
    assert norm == "amelie and schindlers list"
    assert len(offsets) == len(norm)
    # Every folded letter points back at the character it came from ("é" → "e", "&" → "and").
    for char, offset in zip(norm, offsets):
        if char != " ":
            assert text[offset].casefold() == char or text[offset] in "é&"
    assert {text[offsets[i]] for i in range(norm.index(" and ") + 1, norm.index(" and ") + 4)} == {"&"}
    start = norm.index("schindlers")
    assert text[offsets[start]:offsets[start + len("schindlers list") - 1] + 1] == "Schindler's  List"


def test_normalise_empty_and_punctuation_only() -> None:
    assert normalise_with_offsets("") == ("", [])
    assert normalise_with_offsets(" ... !? ") == ("", [])


def test_title_variants_ranks() -> None:
    variants = title_variants("The Godfather: Part II")
    assert variants["the godfather part ii"] == 0
    assert variants["godfather part ii"] == 1  # article dropped
    assert variants["the godfather 2"] == 1  # "part" dropped, Roman numeral swapped
    assert variants["the godfather"] == 2  # only the part before the colon
    assert title_variants("Spider-Man")["spiderman"] == 1
    assert title_variants("The Lego Batman Movie")["lego batman"] == 2


def test_linking_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="linking.year_tolerance"):
        load_config(overrides=["linking.year_tolerance=-1"])
    with pytest.raises(ConfigError, match="linking.fuzzy_cutoff"):
        load_config(overrides=["linking.fuzzy_cutoff=120"])


def test_linking_config_checks_its_own_values() -> None:
    with pytest.raises(ConfigError, match="linking.min_fuzzy_chars"):
        LinkingConfig(min_fuzzy_chars=0)
    assert load_config(overrides=["linking.fuzzy_cutoff=92"]).linking == LinkingConfig(fuzzy_cutoff=92.0)


def test_normalise_key_folds_punctuation() -> None:
    assert normalise_key("Spider-Man: Homecoming") == "spider man homecoming"
    assert normalise_key("  Amélie & the  Café!! ") == "amelie and the cafe"


def test_lexicon_tables() -> None:
    assert {"it", "up", "her", "movie", "get", "out", "funny", "scary"} <= COMMON_WORDS
    assert not {"matrix", "halloween", "heat", "keanu"} & COMMON_WORDS
    assert all(word == word.casefold() and word.isalnum() for word in COMMON_WORDS)
    assert {"the", "of", "and"} <= MINOR_WORDS
    assert {ROMAN_TO_ARABIC[roman]: roman for roman in ROMAN_TO_ARABIC} == ARABIC_TO_ROMAN
    every_genre_word = {word for words in GENRE_WORDS.values() for word in words}
    assert AMBIGUOUS_GENRE_WORDS <= every_genre_word  # ambiguity is a property of genre words only
    assert not GENRE_CONTEXT_WORDS & every_genre_word
    assert "sci fi" in GENRE_WORDS["sci-fi"] and "comedies" in GENRE_WORDS["comedy"]


@pytest.mark.parametrize(
    "key, plain, first_names, strength",
    [
        ("the matrix", set(), set(), DISTINCTIVE),  # two words, one of them not common
        ("jurassic park", set(), set(), DISTINCTIVE),
        ("up", set(), set(), COMMON),  # common words only
        ("get out", set(), set(), COMMON),
        ("2012", set(), set(), COMMON),  # digits and lone letters count as common
        ("g", set(), set(), COMMON),
        ("heat", set(), set(), CASED),  # one word
        ("halloween", set(), set(), CASED),
        ("x men", set(), set(), CASED),  # "x men" reads as the one word "xmen"
        ("the american", {"american"}, set(), CASED),  # plain words only
        ("jack", set(), {"jack"}, COMMON),  # a common first name
    ],
)
def test_title_strength(key: str, plain: set[str], first_names: set[str], strength: str) -> None:
    assert title_strength(key, LinkingConfig(), plain, first_names) == strength


def test_one_word_names_are_cued_when_the_plots_are_known() -> None:
    config = LinkingConfig()
    # Plots never write "inception" or "jaws" in lower case: a name, linked after a movie cue.
    assert title_strength("inception", config, set(), set(), frozenset({"frozen"})) == CUED
    assert title_strength("jaws", config, set(), set(), frozenset()) == CUED  # cued_title_min_chars (4)
    assert title_strength("frozen", config, set(), set(), frozenset({"frozen"})) == CASED  # a word plots use
    assert title_strength("inception", config, set(), set(), None) == CASED  # no plots known: as before
    assert title_strength("italian", config, set(), set(), frozenset()) == CASED  # a request's word
    assert title_strength("zombies", config, set(), set(), frozenset()) == CASED
    assert title_strength("elf", config, set(), set(), frozenset()) == CASED  # too short
    assert title_strength("the matrix", config, set(), set(), frozenset()) == DISTINCTIVE
    assert title_strength("jack", config, set(), {"jack"}, frozenset()) == COMMON
    assert request_word("pixar") and request_word("zombies") and not request_word("inception")


@pytest.mark.parametrize(
    "text, cued",
    [("i loved ", True), ("have you seen ", True), ("something like ", True), ("I really enjoyed the movie ", True),
     ("my favorite movie is ", True), ("better than ", True), ("the ", False), ("since its ", False), ("", False),
     ("I'd like to ", False)],
)
def test_movie_cue_before(text: str, cued: bool) -> None:
    assert movie_cue_before(text + "inception", len(text)) is cued


def test_strong_movie_cues_are_watching_verbs_and_the_movie() -> None:
    for text in ("have you seen ", "I watched ", "we finally saw ", "i loved the movie ", "what about ", "anything like "):
        assert movie_cue_before(text + "frozen", len(text), strong=True), text
    for text in ("I like ", "I loved ", "than ", ""):
        assert not movie_cue_before(text + "frozen", len(text), strong=True), text


def test_plot_words_of_a_catalogue_and_back() -> None:
    movies = [Movie(1, "A", None, 0, plot="Jaws eats a frozen fish. Inception of a frozen plan."),
              Movie(2, "B", None, 0, plot="A frozen lake near Inception Bay."),
              Movie(3, "C", None, 0)]
    words = PlotWords.of(Catalogue(movies), LinkingConfig(common_word_min_plots=2, cued_title_max_lowercase_plots=2))
    assert words.plain == {"a", "frozen", "inception"}  # case folded, in two plots
    assert words.lowercase == {"frozen"}  # "a" starts plot 2 with a capital
    assert "inception" not in words.lowercase and "jaws" not in words.lowercase  # lower case in one plot only, or none
    assert PlotWords.from_dict(words.to_dict()) == words
    assert PlotWords.of(Catalogue([Movie(1, "A", None, 0)]), LinkingConfig()) is None  # no plot: nothing known
    with pytest.raises(ValueError, match="plain"):
        PlotWords.from_dict({"lowercase": []})


def test_name_strength() -> None:
    config = LinkingConfig()
    assert name_strength("keanu reeves", config) == DISTINCTIVE
    assert name_strength("will smith", config) == DISTINCTIVE  # one common word is not enough
    assert name_strength("the one", config) == COMMON
    assert name_strength("jo li", config) == CASED  # shorter than min_fuzzy_chars
    assert name_strength("jo li", LinkingConfig(min_fuzzy_chars=3)) == DISTINCTIVE


def test_plot_words_counts_plots_not_titles() -> None:
    movies = [Movie(1, "A", None, 0, plot="An American President's game."),
              Movie(2, "B", None, 0, plot="american GAME"),
              Movie(3, "C", None, 0, plot="a president"),
              Movie(4, "D", None, 0)]
    assert plot_words(Catalogue(movies), 2) == {"american", "game"}  # case folded, counted once per plot
    assert plot_words(Catalogue(movies), 1) == {"an", "american", "presidents", "game", "a", "president"}
    assert plot_words(Catalogue(movies), 3) == set()


@pytest.mark.parametrize(
    "text, end, found",
    [
        ("Heat (1995) rocks", 4, (1995, 11)),
        ("Heat [1995]", 4, (1995, 11)),
        ("Heat 1995 rocks", 4, (1995, 9)),
        ("Airplane! (1980)", 8, (1980, 16)),  # after the title's own punctuation
        ("Heat (1850)", 4, (1850, 11)),  # a year in brackets may be older than a bare one
        ("Heat 1850", 4, (None, 4)),
        ("Heat 123", 4, (None, 4)),
        ("Heat 19955", 4, (None, 4)),
        ("Heat is (1995)", 4, (None, 4)),
    ],
)
def test_year_after(text: str, end: int, found: tuple[int | None, int]) -> None:
    assert year_after(text, end) == found


def test_quotes_compounds_and_sentence_starts() -> None:
    assert is_quoted('I saw "Up" today', 7, (9,))
    assert is_quoted("I saw “Up (2009)” today", 7, (9, 16))  # the quote may close after the year
    assert not is_quoted("I saw Up today", 6, (8,))
    assert not is_quoted('"Up', 1, (3,))  # quote at the end of the text missing
    assert inside_compound("X-Men", 2, 5) and inside_compound("X-Men", 0, 1)
    assert not inside_compound("Men in Black", 0, 3) and not inside_compound("a - Men", 4, 7)
    assert is_sentence_start("Heat", 0) and is_sentence_start("Hi. Heat", 4) and is_sentence_start('"Heat', 1)
    assert not is_sentence_start("I saw Heat", 6)


def test_title_case_evidence() -> None:
    assert is_title_cased("I watched Heat", 10, 14, False)
    assert not is_title_cased("Heat was good", 0, 4, False)  # the capital only starts the sentence
    assert is_title_cased("Get Out was good", 0, 7, False)  # a second capitalised word does not start it
    assert not is_title_cased("I watched heat", 10, 14, False)
    assert is_title_cased("I like The Lord of the Rings", 7, 28, False)  # minor words may stay lower case
    assert not is_title_cased("I like The lord of the Rings", 7, 28, False)
    assert not is_title_cased("I WATCHED HEAT", 10, 14, True)  # shouting gives no case evidence
    assert is_shouting("I WATCHED HEAT LAST NIGHT") and not is_shouting("OK FINE") and not is_shouting("I watched Heat")


# --------------------------------------------------------------------------- #
# Without data: a linker on a hand-made catalogue and graph
# --------------------------------------------------------------------------- #

MATRIX, HALLOWEEN_1978, HALLOWEEN_2007, UP, GET_OUT, HEAT, RELOADED = 1, 2, 3, 4, 5, 6, 7
TINY_MOVIES = [
    # (movie id, title, year, ReDial mentions, entity name in the graph)
    (MATRIX, "The Matrix", 1999, 50, "The Matrix"),
    (HALLOWEEN_1978, "Halloween", 1978, 30, "Halloween (1978 film)"),
    (HALLOWEEN_2007, "Halloween", 2007, 10, "Halloween (2007 film)"),
    (UP, "Up", 2009, 20, "Up (2009 film)"),
    (GET_OUT, "Get Out", 2017, 20, "Get Out"),
    (HEAT, "Heat", 1995, 15, "Heat (1995 film)"),
    (RELOADED, "The Matrix Reloaded", 2003, 5, "The Matrix Reloaded"),
]
KEANU, CURTIS, COMEDY, HORROR, FAMILY, SCIFI = 7, 8, 9, 10, 11, 12  # entity ids after the seven movies
STARRING, GENRE_REL, SELF_LOOP = 0, 1, 2


def tiny_catalogue() -> Catalogue:
    return Catalogue([Movie(movie_id, title, year, mentions) for movie_id, title, year, mentions, _ in TINY_MOVIES])


def tiny_graph() -> KnowledgeGraph:
    """Movie i (id i + 1) is entity i; two people, four genres, starring and genre edges, movie self-loops."""
    names = [name for *_, name in TINY_MOVIES] + ["Keanu Reeves", "Jamie Lee Curtis", "Comedy", "Horror fiction",
                                                  "Family", "Science fiction"]
    types = [MOVIE] * len(TINY_MOVIES) + [PERSON, PERSON, GENRE, GENRE, GENRE, GENRE]
    movie = {movie_id: entity for entity, (movie_id, *_) in enumerate(TINY_MOVIES)}
    triples = [(movie[MATRIX], STARRING, KEANU), (movie[RELOADED], STARRING, KEANU),
               (movie[HALLOWEEN_1978], STARRING, CURTIS), (movie[HALLOWEEN_2007], STARRING, CURTIS),
               (movie[MATRIX], GENRE_REL, SCIFI), (movie[RELOADED], GENRE_REL, SCIFI),
               (movie[HALLOWEEN_1978], GENRE_REL, HORROR), (movie[HALLOWEEN_2007], GENRE_REL, HORROR),
               (movie[GET_OUT], GENRE_REL, HORROR), (movie[UP], GENRE_REL, COMEDY), (movie[UP], GENRE_REL, FAMILY)]
    triples += [(entity, SELF_LOOP, entity) for entity in movie.values()]
    return KnowledgeGraph(
        entity_names=names,
        entity_uris=[None] * len(names),
        entity_types=types,
        relation_names=["starring", "genre", "self_loop"],
        edge_index=torch.tensor([[h for h, _, _ in triples], [t for _, _, t in triples]]),
        edge_type=torch.tensor([r for _, r, _ in triples]),
        movie_to_entity=movie,
        self_loop_relation=SELF_LOOP,
    )


@pytest.fixture(scope="module")
def tiny_linker() -> EntityLinker:
    return EntityLinker.build(tiny_graph(), tiny_catalogue(), LinkingConfig())


def assert_well_formed(text: str, entities: list[LinkedEntity]) -> None:
    """Spans in order, not overlapping, each surface the text slice it claims."""
    for entity in entities:
        assert 0 <= entity.start < entity.end <= len(text)
        assert entity.surface == text[entity.start:entity.end]
    for before, after in zip(entities, entities[1:]):
        assert before.end <= after.start


def spans(linker: EntityLinker, text: str) -> list[tuple[str, str, int | None]]:
    """(surface, kind, movie id) of every entity linked in ``text``, after checking the spans."""
    entities = linker.link(text)
    assert_well_formed(text, entities)
    return [(e.surface, e.kind, e.movie_id) for e in entities]


def test_tiny_exact_title_in_any_case(tiny_linker: EntityLinker) -> None:
    text = "I loved The Matrix, anything similar?"
    assert tiny_linker.link(text) == [
        LinkedEntity(start=8, end=18, surface="The Matrix", entity=0, kind="movie", name="The Matrix",
                     movie_id=MATRIX, score=100.0)
    ]
    assert spans(tiny_linker, "i loved the matrix") == [("the matrix", "movie", MATRIX)]
    # Without its article the title is one word, which needs Title Case (or a year, or quotes).
    assert spans(tiny_linker, "I loved Matrix") == [("Matrix", "movie", MATRIX)]
    assert spans(tiny_linker, "i loved matrix") == []
    assert spans(tiny_linker, "the matrix reloaded was long") == [("the matrix reloaded", "movie", RELOADED)]


def test_tiny_year_picks_the_movie(tiny_linker: EntityLinker) -> None:
    assert spans(tiny_linker, "Halloween (2007) was gory") == [("Halloween (2007)", "movie", HALLOWEEN_2007)]
    assert tiny_linker.link_movies("I prefer Halloween (1978) to the remake") == [HALLOWEEN_1978]
    assert tiny_linker.link_movies("Halloween 2007 or Halloween 1978?") == [HALLOWEEN_2007, HALLOWEEN_1978]
    assert tiny_linker.link_movies("I watched Halloween (2008)") == [HALLOWEEN_2007]  # within year_tolerance
    assert tiny_linker.link_movies("I watched Halloween yesterday") == [HALLOWEEN_1978]  # the most mentioned
    assert tiny_linker.link_movies("halloween (2007) was gory") == [HALLOWEEN_2007]  # a year is evidence enough
    assert tiny_linker.link_movies("i think halloween is overrated") == []  # one word: needs case, year or quotes
    assert tiny_linker.link_movies("i watched halloween yesterday") == [HALLOWEEN_1978]  # ... or a watching verb
    strict = EntityLinker.build(tiny_graph(), tiny_catalogue(), LinkingConfig(year_tolerance=0))
    assert strict.link_movies("I watched Halloween (2008)") == [HALLOWEEN_1978]  # 2008 is no year of these movies
    assert [e.surface for e in strict.link("I watched Halloween (2008)")] == ["Halloween"]


@pytest.mark.parametrize(
    "text, movies",
    [
        ("I grew up watching cartoons", []),
        ("I loved Up", []),  # a one-word common title: Title Case is not enough
        ("Up (2009) is sad", [UP]),
        ('I watched "Up" yesterday', [UP]),
        ("I watched “Up” yesterday", [UP]),
        ("I want to get out of the house", []),
        ("Have you seen Get Out? It is creepy", [GET_OUT]),  # two common words in Title Case
        ("I watched Heat last night", [HEAT]),  # a short title in Title Case
        ("the heat is unbearable", []),
        ("Heat was on all day", []),  # the capital only starts the sentence
        ("Heat was great", [HEAT]),  # ... but praise follows: what one says of a movie
        ("heat is one of my favorites", [HEAT]),
        ("Heat (1995) was great", [HEAT]),
        ("I LOVED HEAT SO MUCH, IT IS GREAT", []),  # shouting: no case evidence
        ("I WATCHED HEAT LAST NIGHT WITH FRIENDS", [HEAT]),  # ... but a watching verb is a cue
    ],
)
def test_tiny_common_and_short_titles_need_evidence(tiny_linker: EntityLinker, text: str, movies: list[int]) -> None:
    assert tiny_linker.link_movies(text) == movies


@pytest.mark.parametrize(
    "text, movies",
    [
        ("i watched halloween yesterday", [HALLOWEEN_1978]),  # a movie cue before a name-like title
        ("have you seen halloween?", [HALLOWEEN_1978]),
        ("Halloween was great", [HALLOWEEN_1978]),  # capitalised, even as the sentence's first word
        ("halloween is in october", []),  # no cue
        ("i loved heat", []),  # plots write "heat" in lower case: Title Case, a year, quotes or a strong cue
        ("i watched heat yesterday", [HEAT]),
        ("Heat was great", [HEAT]),  # praise after it
        ("Heat came back", []),
        ("I loved the matrix and heat", [MATRIX, HEAT]),  # after a linked movie in a list
        ("the matrix, heat or halloween", [MATRIX, HEAT, HALLOWEEN_1978]),
        ("the matrix and heat waves", [MATRIX, HEAT]),
        ("it was hot and heat is bad", []),
    ],
)
def test_tiny_name_like_titles_link_with_a_cue(text: str, movies: list[int]) -> None:
    words = PlotWords(plain=frozenset(), lowercase=frozenset({"heat", "the", "was"}))
    linker = EntityLinker.build(tiny_graph(), tiny_catalogue(), LinkingConfig(), words)
    assert linker.plot_words == words
    assert linker.link_movies(text) == movies


def test_tiny_typos_link_fuzzily(tiny_linker: EntityLinker) -> None:
    (matrix,) = tiny_linker.link("i loved the matrx")
    assert (matrix.surface, matrix.movie_id, matrix.kind) == ("the matrx", MATRIX, "movie")
    assert 90.0 <= matrix.score < 100.0
    (keanu,) = tiny_linker.link("anything with keanu reves")
    assert (keanu.surface, keanu.entity, keanu.kind, keanu.movie_id) == ("keanu reves", KEANU, "person", None)
    assert 90.0 <= keanu.score < 100.0
    strict = EntityLinker.build(tiny_graph(), tiny_catalogue(), LinkingConfig(fuzzy_cutoff=100.0))
    assert strict.link("i loved the matrx") == []


def test_tiny_people_and_genres(tiny_linker: EntityLinker) -> None:
    text = "Anything with keanu reeves or Jamie Lee Curtis? I like horror and comedies, also sci-fi."
    found = [(e.surface, e.kind, e.entity) for e in tiny_linker.link(text)]
    assert found == [("keanu reeves", "person", KEANU), ("Jamie Lee Curtis", "person", CURTIS),
                     ("horror", "genre", HORROR), ("comedies", "genre", COMEDY), ("sci-fi", "genre", SCIFI)]
    assert [e.name for e in tiny_linker.link(text) if e.kind == "genre"] == ["Horror fiction", "Comedy",
                                                                            "Science fiction"]


@pytest.mark.parametrize(
    "text, found",
    [
        ("my family is visiting", []),
        ("that was funny", []),
        ("I like family movies", [("family", "genre", None)]),  # a movie word next to it
        ("something funny please", [("funny", "genre", None)]),
        ("family or horror", [("family", "genre", None), ("horror", "genre", None)]),  # another genre next to it
    ],
)
def test_tiny_ambiguous_genre_words_need_context(tiny_linker: EntityLinker, text: str, found: list) -> None:
    assert spans(tiny_linker, text) == found


def test_tiny_placeholders(tiny_linker: EntityLinker) -> None:
    text = f"I liked @{MATRIX} and @{UP}, and @{MATRIX} again, not @999"
    assert [(e.surface, e.movie_id, e.entity, e.score) for e in tiny_linker.link(text)] == [
        (f"@{MATRIX}", MATRIX, 0, 100.0), (f"@{UP}", UP, 3, 100.0), (f"@{MATRIX}", MATRIX, 0, 100.0)
    ]
    assert tiny_linker.link_movies(text) == [MATRIX, UP]  # in order, no repeats
    assert tiny_linker.link_movies("@999") == []  # not a catalogue movie
    assert tiny_linker.link_movies(f"@{HEAT} or Heat (1995)") == [HEAT]


def test_tiny_search_titles(tiny_linker: EntityLinker) -> None:
    assert [movie for movie, _ in tiny_linker.search_titles("the matr", limit=2)] == [MATRIX, RELOADED]
    assert tiny_linker.search_titles("halloween 2007", limit=1)[0][0] == HALLOWEEN_2007
    assert tiny_linker.search_titles("halloween", limit=2) == [(HALLOWEEN_1978, 100.0), (HALLOWEEN_2007, 100.0)]
    assert tiny_linker.search_titles("") == [] and tiny_linker.search_titles("zzzz") == []


def test_linker_takes_any_catalogue_like_object(tiny_linker: EntityLinker) -> None:
    """kg reads only the attributes of kg.types.CatalogueLike: plain objects work as well as crs's Catalogue."""

    class Movies(list):
        @property
        def movies(self) -> list:
            return self

    plain = Movies(SimpleNamespace(movie_id=movie_id, title=title, year=year, mentions=mentions, plot="")
                   for movie_id, title, year, mentions, _ in TINY_MOVIES)
    linker = EntityLinker.build(tiny_graph(), plain, LinkingConfig())
    for text in ["I loved The Matrix", "Halloween (2007)", "I watched Heat", "keanu reves and horror", "@4 and Up"]:
        assert linker.link(text) == tiny_linker.link(text)


def test_render_message_replaces_placeholders_and_reports_gold() -> None:
    titles = {1: "Heat (1995)", 2: ""}
    assert render_message("I liked @1 and @2", titles) == ("I liked Heat (1995) and ", {1})
    assert render_message("I liked @1", titles, with_year=False) == ("I liked Heat", {1})


def test_evaluate_in_lower_case(tiny_linker: EntityLinker) -> None:
    messages = [(f"We liked @{HEAT} a lot", {HEAT: "Heat (1995)"}), (f"I loved @{MATRIX}", {MATRIX: "The Matrix (1999)"})]
    cased = evaluate(tiny_linker, messages, with_year=False)
    lower = evaluate(tiny_linker, messages, with_year=False, lower=True)  # "we liked heat a lot": no evidence left
    assert (cased.gold, cased.correct) == (2, 2) and (lower.gold, lower.correct) == (2, 1)


# --------------------------------------------------------------------------- #
# On the shared data (fixtures data_dir, catalogue and extended_kg: tests/conftest.py)
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def linker(extended_kg, catalogue: Catalogue) -> EntityLinker:
    return EntityLinker.build(extended_kg, catalogue, LinkingConfig())


def movie_id(catalogue: Catalogue, title: str, year: int | None) -> int:
    """The one catalogue movie with this title and year."""
    found = [m.movie_id for m in catalogue.movies if m.title == title and m.year == year]
    assert len(found) == 1, f"{title} ({year}): {found}"
    return found[0]


def linked_titles(linker: EntityLinker, catalogue: Catalogue, text: str) -> list[str]:
    return [catalogue.by_id(i).title for i in linker.link_movies(text)]


@pytest.mark.data
def test_links_title_in_a_sentence(linker: EntityLinker, catalogue: Catalogue) -> None:
    text = "I loved The Matrix, anything similar?"
    entities = linker.link(text)
    movies = [e for e in entities if e.kind == "movie"]
    assert [e.movie_id for e in movies] == [movie_id(catalogue, "The Matrix", 1999)]
    assert movies[0].surface == "The Matrix" and movies[0].score == 100.0
    assert_well_formed(text, entities)


@pytest.mark.data
@pytest.mark.parametrize(
    "text, title",
    [
        ("i loved the matrx, anything similar?", "The Matrix"),
        ("Have you seen Jurasic Park?", "Jurassic Park"),
        ("I want something like Jurasic Park (1993)", "Jurassic Park"),
    ],
)
def test_misspelled_titles_link_fuzzily(linker: EntityLinker, catalogue: Catalogue, text: str, title: str) -> None:
    entities = [e for e in linker.link(text) if e.kind == "movie"]
    assert [catalogue.by_id(e.movie_id).title for e in entities] == [title]
    assert linker.config.fuzzy_cutoff <= entities[0].score < 100.0


@pytest.mark.data
def test_fuzzy_cutoff_is_respected(extended_kg, catalogue: Catalogue) -> None:
    strict = EntityLinker.build(extended_kg, catalogue, LinkingConfig(fuzzy_cutoff=100.0))
    assert strict.link_movies("i loved the matrx") == []
    assert strict.link_movies("I loved The Matrix") == [movie_id(catalogue, "The Matrix", 1999)]


@pytest.mark.data
def test_year_after_title_picks_the_movie_of_that_year(linker: EntityLinker, catalogue: Catalogue) -> None:
    remake, original = movie_id(catalogue, "Halloween", 2007), movie_id(catalogue, "Halloween", 1978)
    assert linker.link_movies("Halloween (2007) was gory") == [remake]
    assert linker.link_movies("I prefer Halloween (1978) to the remake") == [original]
    assert linker.link_movies("Halloween 2007 or Halloween 1978?") == [remake, original]
    # The year is part of the span.
    assert linker.link("Halloween (2007) was gory")[0].surface == "Halloween (2007)"


@pytest.mark.data
def test_without_a_year_the_most_mentioned_movie_wins(linker: EntityLinker, catalogue: Catalogue) -> None:
    halloweens = [m for m in catalogue.movies if m.title == "Halloween"]
    most_mentioned = max(halloweens, key=lambda m: m.mentions).movie_id
    assert linker.link_movies("Have you seen Halloween?") == [most_mentioned]


@pytest.mark.data
@pytest.mark.parametrize(
    "text",
    ["it was fun", "It was fun.", "I grew up watching cartoons", "I love her acting", "What a great movie!",
     "I want to get out of the house", "my family loves it"],
)
def test_common_words_do_not_link_movies(linker: EntityLinker, text: str) -> None:
    assert linker.link_movies(text) == []


@pytest.mark.data
@pytest.mark.parametrize(
    "text, title",
    [("i loved inception", "Inception"), ("have you seen titanic?", "Titanic"), ("something like jaws", "Jaws"),
     ("i watched the movie goodfellas", "Goodfellas"), ("Zootopia was so cute", "Zootopia"),
     ("i saw the matrix and alien", "Alien"), ("have you seen frozen?", "Frozen"), ("deadpool and logan are my favorites", "Logan"),
     ("deadpool and logan are my favorites", "Deadpool"), ("Interstellar was amazing.", "Interstellar"),
     ("gladiator is so good", "Gladiator"), ("have you seen get out?", "Get Out"), ("anything like mean girls", "Mean Girls"),
     ("what about frozen?", "Frozen"), ("who directed jaws?", "Jaws"), ("not titanic please", "Titanic"), ("i watched split last night", "Split"),
     ("is frozen good for kids?", "Frozen"), ("so was gravity any good", "Gravity"), ("how was dunkirk?", "Dunkirk")],
)
def test_lower_case_one_word_titles_link_after_a_cue(linker: EntityLinker, catalogue: Catalogue, text: str, title: str) -> None:
    assert title in linked_titles(linker, catalogue, text)


@pytest.mark.data
@pytest.mark.parametrize("text", ["i really enjoyed up", "something for christmas", "i like italian films",
                                  "i loved frozen pizza", "the inception of the project", "i watched her last night",
                                  "i like speed", "i saw a ghost", "I watched the news", "have you seen the end",
                                  "what about action movies", "i want to get out of here", "Sigh.", "Sigh, ok then", "Yay!",
                                  "is frozen food good?", "it was split in two", "a movie set in Chicago", "I live in Chicago"])
def test_words_and_uncued_names_do_not_link(linker: EntityLinker, text: str) -> None:
    assert linker.link_movies(text) == []


@pytest.mark.data
def test_the_checkpoint_links_with_its_shipped_plot_words(pipeline, linker: EntityLinker) -> None:
    # A checkpoint's catalogue has no plots; it ships the word lists, so serving grades titles as training did.
    assert pipeline.linker.plot_words == linker.plot_words
    for text in ("i liked the american", "I liked The American", "i loved inception", "i watched heat"):
        assert pipeline.linker.link_movies(text) == linker.link_movies(text)


@pytest.mark.data
def test_short_common_titles_link_with_evidence(linker: EntityLinker, catalogue: Catalogue) -> None:
    it_2017, up = movie_id(catalogue, "It", 2017), movie_id(catalogue, "Up", 2009)
    assert linker.link_movies("Up (2009) and It (2017) are both great") == [up, it_2017]
    assert linker.link_movies('I watched "Up" yesterday') == [up]
    get_out = movie_id(catalogue, "Get Out", 2017)
    assert linker.link_movies("Have you seen Get Out? It is creepy") == [get_out]


@pytest.mark.data
def test_people_and_genres(linker: EntityLinker, extended_kg) -> None:
    kg = extended_kg
    text = "Anything with Keanu Reeves? I like horror and comedy, also sci-fi and romantic comedies."
    entities = linker.link(text)
    assert_well_formed(text, entities)
    people = [e for e in entities if e.kind == "person"]
    assert [e.name for e in people] == ["Keanu Reeves"]
    assert kg.entity_types[people[0].entity] == PERSON and people[0].movie_id is None
    genres = {e.surface: e for e in entities if e.kind == "genre"}
    assert set(genres) == {"horror", "comedy", "sci-fi", "romantic", "comedies"}
    assert all(kg.entity_types[e.entity] == GENRE for e in genres.values())
    assert genres["comedy"].entity == genres["comedies"].entity
    # The genre nodes the movies are linked to, not stray DBpedia genres.
    assert genres["horror"].name == "Horror fiction"
    assert genres["sci-fi"].name == "Science fiction"


@pytest.mark.data
def test_lowercase_and_misspelled_person_names(linker: EntityLinker) -> None:
    assert [e.name for e in linker.link("anything with keanu reeves") if e.kind == "person"] == ["Keanu Reeves"]
    assert [e.name for e in linker.link("anything with keanu reves") if e.kind == "person"] == ["Keanu Reeves"]


@pytest.mark.data
def test_ambiguous_genre_words_need_context(linker: EntityLinker) -> None:
    assert [e.kind for e in linker.link("I like family movies")] == ["genre"]
    assert linker.link("my family is visiting") == []


@pytest.mark.data
def test_placeholders_link_directly(linker: EntityLinker, catalogue: Catalogue) -> None:
    matrix, it_2017 = movie_id(catalogue, "The Matrix", 1999), movie_id(catalogue, "It", 2017)
    text = f"I liked @{matrix} and @{it_2017}, and @{matrix} again"
    entities = linker.link(text)
    assert_well_formed(text, entities)
    assert [(e.surface, e.movie_id, e.score) for e in entities] == [
        (f"@{matrix}", matrix, 100.0), (f"@{it_2017}", it_2017, 100.0), (f"@{matrix}", matrix, 100.0)
    ]
    assert linker.link_movies(text) == [matrix, it_2017]  # in order, no repeats
    assert linker.link_movies("@999999999") == []  # not a catalogue movie


@pytest.mark.data
@pytest.mark.parametrize(
    "text",
    [
        "The Lord of the Rings: The Fellowship of the Ring (2001) and The Lord of the Rings",
        "I loved The Dark Knight Rises (2012), The Dark Knight and Batman Begins with Christian Bale",
        "Star Wars: Episode VIII – The Last Jedi (2017) vs Star Wars (1977), sci-fi comedy horror",
        "@85036 The Matrix the matrx Matrix Reloaded X-Men Spider-Man action-packed",
        "ÉLAN Amélie naïve café — “Heat” ‘Signs’ (1995)",
        "",
    ],
)
def test_spans_are_ordered_disjoint_and_match_the_text(linker: EntityLinker, text: str) -> None:
    assert_well_formed(text, linker.link(text))


@pytest.mark.data
def test_longest_match_wins(linker: EntityLinker, catalogue: Catalogue) -> None:
    rises = movie_id(catalogue, "The Dark Knight Rises", 2012)
    entities = linker.link("The Dark Knight Rises (2012) was long")
    assert [(e.surface, e.movie_id) for e in entities] == [("The Dark Knight Rises (2012)", rises)]


@pytest.mark.data
def test_search_titles(linker: EntityLinker, catalogue: Catalogue) -> None:
    results = linker.search_titles("godfather")
    assert results[0][0] == movie_id(catalogue, "The Godfather", 1972)
    assert [score for _, score in results] == sorted((score for _, score in results), reverse=True)
    assert len(results) <= 10
    assert linker.search_titles("the godf", limit=3)[0][0] == movie_id(catalogue, "The Godfather", 1972)
    assert linker.search_titles("halloween 2007", limit=1)[0][0] == movie_id(catalogue, "Halloween", 2007)
    assert linker.search_titles("") == []


@pytest.mark.data
def test_eval_on_first_test_dialogues(linker: EntityLinker, data_dir: Path) -> None:
    data = load_config(overrides=[f"data.data_dir={data_dir}"]).data
    messages = list(iter_messages(data, "test", limit=50))
    assert len(messages) > 500  # ~17 messages a dialogue
    with_year = evaluate(linker, messages, with_year=True)
    assert with_year.gold > 300
    assert with_year.recall >= 0.95 and with_year.precision >= 0.85, with_year
    no_year = evaluate(linker, messages, with_year=False)
    assert no_year.recall >= 0.80 and no_year.precision >= 0.80, no_year


@pytest.mark.data
def test_cli_link_prints_entities(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["link", "I loved The Matrix and Keanu Reeves", "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    assert "| The Matrix | movie |" in out and "| Keanu Reeves | person |" in out
