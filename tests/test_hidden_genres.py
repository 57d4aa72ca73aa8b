"""Genres a cut genre list may hide (crs.rec.hidden_genres): learned from plots, kept out when turned down."""

from __future__ import annotations

import numpy as np

from crs.data.catalogue import Catalogue, Movie
from crs.rec.hidden_genres import fit, unknown_genres
from crs.rec.request import Constraint, RequestState, honour_scores

GENRES = ["action", "comedy", "drama", "thriller"]


def test_only_genres_a_cut_list_may_have_lost_are_unknown():
    assert unknown_genres(("action", "drama"), GENRES) == []  # a short list is whole
    assert unknown_genres(("action", "comedy", "drama"), GENRES) == ["thriller"]  # cut alphabetically: only later genres
    assert unknown_genres(("comedy", "action", "drama"), GENRES) == ["thriller"]  # another order: anything not listed
    assert unknown_genres(("drama", "comedy", "thriller"), GENRES) == ["action"]


def test_a_genre_cut_from_the_list_is_found_from_the_plot_embedding():
    # Each movie's embedding carries its true genres (plus noise); its list keeps the first three
    # of the alphabet, as movie_info.json's do. Movies with all four genres lose "thriller".
    rng = np.random.default_rng(0)
    movies, rows, whole = [], [], {}
    for i in range(800):
        true = [g for g in GENRES if rng.random() < 0.5] or ["drama"]
        whole[i] = true
        movies.append(Movie(i, f"Movie {i}", 2000, 1, genres=tuple(sorted(true)[:3])))
        rows.append(np.concatenate([[1.0 if g in true else 0.0 for g in GENRES], rng.normal(0, 0.3, 8)]))
    flagged, metrics = fit(movies, np.asarray(rows, dtype=np.float32))
    assert metrics["threshold"] in [float(t) for t in metrics["by_threshold"]]
    cut = [i for i, true in whole.items() if len(true) == 4]
    kept_three = [i for i, true in whole.items() if sorted(true) == ["action", "comedy", "drama"]]
    assert cut and kept_three
    assert sum("thriller" in flagged.get(i, ()) for i in cut) >= 0.9 * len(cut)
    assert sum("thriller" in flagged.get(i, ()) for i in kept_three) <= 0.2 * len(kept_three)
    # Only genres the list may have lost are ever flagged.
    for i, found in flagged.items():
        assert set(found) <= set(unknown_genres(movies[i].genres, GENRES))


def test_a_turned_down_genre_keeps_out_the_movies_whose_list_may_hide_it(pipeline):
    facts = pipeline.facts
    flagged = [m for m in pipeline.catalogue.movies if m.maybe_genres]
    assert flagged, "the bundled catalogue carries the flags (python -m crs.rec.hidden_genres --write)"
    genre = next(g for g in facts.maybe_by_genre if len(facts.maybe_by_genre[g]) >= 5)
    name = facts.kg.entity_names[genre]
    unwanted = Constraint("genre", genre, f"genre: {name}")
    hidden = {pipeline.catalogue.index(m) for m in facts.maybe_by_genre[genre]}
    refused = facts.refused_mask(unwanted)
    assert refused[facts.mask(unwanted)].all() and all(refused[i] for i in hidden)
    assert not facts.mask(unwanted)[sorted(hidden)].all()  # their lists do not have it
    # Scores that put the flagged movies first: none of them is recommended once the genre is turned down.
    scores = np.zeros(len(pipeline.catalogue))
    scores[sorted(hidden)] = 10.0
    best, _ = honour_scores(facts, scores, (), RequestState(unwanted=[unwanted]), 10)
    assert best and not any(pipeline.catalogue.index(m) in hidden for m, _ in best)
    best, _ = honour_scores(facts, scores, (), RequestState(), 10)
    assert all(pipeline.catalogue.index(m) in hidden for m, _ in best)  # without the refusal they lead
    # The flags are facts read from the checkpoint: a catalogue without them reads as before.
    assert Catalogue([Movie(1, "A", 2000, 1, genres=("drama",))]).movies[0].maybe_genres == ()


def test_a_genre_of_another_movie_of_the_series_is_kept_out_where_the_list_may_hide_it(pipeline):
    facts, catalogue = pipeline.facts, pipeline.catalogue
    found = 0
    for members in facts.franchise_members.values():
        movies = [catalogue.by_id(m) for m in members if m in catalogue]
        for movie in movies:
            if len(movie.genres) != 3 or list(movie.genres) != sorted(movie.genres):
                continue
            for sibling in movies:
                for word in set(sibling.genres) - set(movie.genres):
                    genre = next((e.entity for e in pipeline.link(f"a {word} movie") if e.kind == "genre"), None)
                    if word <= movie.genres[-1] or genre is None or facts.has_genre(movie.movie_id, genre):
                        continue
                    assert any(movie.movie_id in facts.maybe_by_genre.get(g, ()) for g in facts.genre_members(genre)), (movie, word)
                    found += 1
        if found >= 20:
            break
    assert found


def test_a_genre_the_plot_states_is_a_fact_for_requests(pipeline):
    from crs.rec.hidden_genres import stated_genres

    assert stated_genres(Movie(1, "Sky Guy", 2000, 1, plot="A teenager gains superpowers and fights crime.")) == ("superhero",)
    assert stated_genres(Movie(2, "Spider-Man 2", 2004, 1)) == ("superhero",)
    assert stated_genres(Movie(3, "Notting Hill", 1999, 1, plot="A bookshop owner falls for a film star.")) == ()
    # "mutants" state it only in an action movie that is no horror movie
    mutants = "In a future where mutants are nearly extinct, a weary hero leads a quiet life."
    assert stated_genres(Movie(4, "Claws", 2017, 1, genres=("action", "drama"), plot=mutants)) == ("superhero",)
    assert stated_genres(Movie(5, "Goo", 2006, 1, genres=("action", "horror"), plot="Mutants take over a town.")) == ()
    assert stated_genres(Movie(6, "Goo", 2006, 1, genres=("sci-fi",), plot="Mutants take over a town.")) == ()
    facts, catalogue = pipeline.facts, pipeline.catalogue
    stated = {m.movie_id for m in catalogue.movies if "superhero" in m.plot_genres}
    assert len(stated) >= 50, "the bundled catalogue carries them (python -m crs.rec.hidden_genres --write)"
    genre = next(e.entity for e in pipeline.link("a superhero movie") if e.kind == "genre")
    assert all(facts.has_genre(m, genre) for m in stated)
    superhero = Constraint("genre", genre, "genre: Superhero")
    scores = np.zeros(len(catalogue))
    scores[[catalogue.index(m) for m in stated]] = 10.0
    best, _ = honour_scores(facts, scores, (), RequestState(unwanted=[superhero]), 10)
    assert best and not stated & {m for m, _ in best}
    best, state = honour_scores(facts, -scores, (), RequestState(wanted=[superhero]), 10)
    assert best[0][0] in stated and not state.relaxed  # wanted: met first, although scored last


def test_a_series_the_plot_names_is_kept_out_when_the_series_is_turned_down(pipeline):
    from crs.rec.hidden_genres import series_vocabulary, stated_series

    movies = [Movie(1, "Gadget Man", 1990, 1), Movie(2, "Gadget Man Returns", 1992, 1), Movie(3, "Paris", 1990, 1),
              Movie(4, "Paris", 2003, 1), Movie(5, "Super", 2010, 1), Movie(6, "Super 8", 2011, 1)]
    vocabulary = series_vocabulary(movies)
    assert vocabulary == {"gadget man"}  # a stem two titles share as a series; not two "Paris", not a common word
    knight = Movie(7, "The Night Rider", 2008, 1, plot="When a gang takes the harbour, Gadget Man must stop it.")
    assert stated_series(knight, vocabulary) == ("gadget man",)
    # the first word of a sentence is capitalised anyway; lower case is no name; the movie's own series is not repeated
    assert stated_series(Movie(8, "Toys", 2001, 1, plot="Gadget man sells toys. Gadget Man is a shop."), vocabulary) == ()
    assert stated_series(Movie(9, "Gadget Man 3", 1995, 1, plot="Again, Gadget Man is back."), vocabulary) == ()
    # the bundled catalogue: The Dark Knight's plot names Batman, so "not another Batman movie" keeps it out
    facts, catalogue = pipeline.facts, pipeline.catalogue
    dark = max((m for m in catalogue.movies if m.title == "The Dark Knight"), key=lambda m: m.mentions)
    assert "batman" in dark.plot_series, "the bundled catalogue carries them (python -m crs.rec.hidden_genres --write)"
    batman = max((m for m in catalogue.movies if m.title == "Batman"), key=lambda m: m.mentions)
    franchise = facts.franchise_constraint(batman.movie_id, "Batman")
    assert not facts.satisfies(dark.movie_id, franchise) and facts.refused_mask(franchise)[catalogue.index(dark.movie_id)]
    scores = np.zeros(len(catalogue))
    scores[catalogue.index(dark.movie_id)] = 10.0
    best, _ = honour_scores(facts, scores, (), RequestState(unwanted=[franchise]), 10)
    assert best and dark.movie_id not in {m for m, _ in best}


def test_a_character_two_plots_name_ties_their_series(pipeline):
    # Return of the Jedi and Star Wars share no title stem; their plots name Darth Vader and they share stars
    from crs.rec.hidden_genres import character_names, character_series

    crew = dict(stars=("Ann Lee", "Bo Park", "Cy Fox"), writers=("Dee Moss",))
    first = Movie(1, "Sky Battle", 1977, 10, imdb_id="tt1", plot="Farm boy Kel Vantor fights the tyrant Lord Drask.", **crew)
    second = Movie(2, "The Iron Throne", 1980, 5, imdb_id="tt2", plot="Kel Vantor trains while Lord Drask hunts his friends.", **crew)
    stranger = Movie(3, "Harbour Nights", 1981, 5, imdb_id="tt3", stars=("Ed Roe",), writers=("Fay Wu",),
                     plot="A sailor meets Kel Vantor on a ship.")  # the same name, no crew in common
    places = Movie(4, "Coast Road", 1990, 5, imdb_id="tt4", plot="Two friends drive to Southern California.", **crew)
    places2 = Movie(5, "Inland", 1991, 5, imdb_id="tt5", plot="A family moves to Southern California.", **crew)
    copied = Movie(6, "Sky Battle Kid", None, 50, imdb_id="tt1", plot=first.plot, **crew)  # another film's metadata
    assert {"kel vantor", "lord drask"} <= character_names(first) and not character_names(places)
    series = character_series([first, second, stranger, places, places2, copied])
    assert series == {1: ("iron throne",), 2: ("sky battle",)}
    # the bundled catalogue: "not Star Wars" keeps out Return of the Jedi and The Empire Strikes Back
    facts, catalogue = pipeline.facts, pipeline.catalogue
    star_wars = max((m for m in catalogue.movies if m.title == "Star Wars"), key=lambda m: m.mentions)
    franchise = facts.franchise_constraint(star_wars.movie_id, "Star Wars")
    for title in ("Return of the Jedi", "The Empire Strikes Back"):
        movie = max((m for m in catalogue.movies if m.title == title), key=lambda m: m.mentions)
        assert "star wars" in movie.plot_series, "the bundled catalogue carries them (python -m crs.rec.hidden_genres --write)"
        assert facts.refused_mask(franchise)[catalogue.index(movie.movie_id)], title


def test_a_theme_the_plot_states_is_a_fact_for_requests(pipeline):
    # "a zombie movie", "no Christmas movies": themes no genre list carries, read from titles and plots
    from crs.rec.hidden_genres import stated_themes

    assert stated_themes(Movie(1, "Dead Town", 2004, 1, plot="Survivors hide in a mall from hordes of zombies.")) == ("zombies",)
    assert stated_themes(Movie(2, "A Merry Christmas Tale", 1999, 1)) == ("christmas",)
    assert stated_themes(Movie(3, "Deep Water", 1999, 1, plot="Scientists fight genetically engineered sharks.")) == ("sharks",)
    assert stated_themes(Movie(4, "The Gambler", 2014, 1, plot="A professor borrows from a loan shark.")) == ()
    assert stated_themes(Movie(5, "Notting Hill", 1999, 1, plot="A bookshop owner falls for a film star.")) == ()
    assert stated_themes(Movie(6, "Beach Day", 1998, 1, plot="Soldiers land at Normandy.")) == ("world war ii",)
    assert stated_themes(Movie(7, "Diner", 1982, 1, plot="Friends meet at a diner; one sells hot dogs.")) == ()
    assert stated_themes(Movie(8, "Good Boy", 2009, 1, plot="A boy and his dog cross the country.")) == ("dogs",)
    facts, catalogue, reader = pipeline.facts, pipeline.catalogue, pipeline.reader
    zombies = {m.movie_id for m in catalogue.movies if "zombies" in m.plot_themes}
    assert len(zombies) >= 20, "the bundled catalogue carries them (python -m crs.rec.hidden_genres --write)"
    for text, wanted, unwanted in (("any good zombie movies?", {"theme: zombies"}, set()),
                                   ("something with dinosaurs for my son", {"theme: dinosaurs"}, set()),
                                   ("no Christmas movies please, a comedy", {"genre: Comedy"}, {"theme: Christmas"}),
                                   ("I loved Shark Tale", set(), set()),  # a title, not a theme
                                   ("a movie about time travel", {"theme: time travel"}, set())):
        turn = reader.read_turn(text, pipeline.link(text))
        assert ({c.label for c in turn.wanted}, {c.label for c in turn.unwanted}) == (wanted, unwanted), text
    # a title that is just a theme's name ("James Bond", an obscure 2015 film) is the theme when the
    # turn asks for the kind or turns it down
    bond = reader.read_turn("a James Bond movie please", pipeline.link("a James Bond movie please"))
    assert "theme: James Bond" in {c.label for c in bond.wanted}
    spy = reader.read_turn("A spy movie, but not James Bond", pipeline.link("A spy movie, but not James Bond"))
    assert "theme: spies" in {c.label for c in spy.wanted} and "theme: James Bond" in {c.label for c in spy.unwanted}
    bonds = {m.movie_id for m in catalogue.movies if "james bond" in m.plot_themes}
    assert {"Goldfinger", "Skyfall"} <= {pipeline.movie(m).title for m in bonds}
    theme = Constraint("theme", "zombies", "theme: zombies")
    assert theme.phrase == "about zombies"
    scores = np.zeros(len(catalogue))
    scores[[catalogue.index(m) for m in zombies]] = 10.0
    best, _ = honour_scores(facts, scores, (), RequestState(unwanted=[theme]), 10)
    assert best and not zombies & {m for m, _ in best}
    best, state = honour_scores(facts, -scores, (), RequestState(wanted=[theme]), 10)
    assert best[0][0] in zombies and not state.relaxed
