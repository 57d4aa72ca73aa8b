"""The request state (crs.rec.request): what a user asks for, read from every turn and honoured by
the ranking; questions about a movie answered from KG facts (crs.serve.answers). Real KG and catalogue."""

from __future__ import annotations

import numpy as np
import pytest

from crs.data.catalogue import Movie
from crs.data.context import DialogueContext
from crs.data.redial import RECOMMENDER, SEEKER, Turn
from crs.rec.request import UNKNOWABLE, Constraint, MovieFacts, RequestReader, RequestState, franchise_key, honour, honour_scores, relaxation_sentence
from crs.serve.answers import answer_question
from crs.serve.chat import ChatState, chat_turn
from crs.ui.chat import reasoning_markdown


@pytest.fixture(scope="module")
def facts(pipeline):
    return pipeline.facts


@pytest.fixture(scope="module")
def reader(pipeline):
    return pipeline.reader


def read(pipeline, reader, text):
    turn = reader.read_turn(text, pipeline.link(text))
    return {c.label for c in turn.wanted}, {c.label for c in turn.unwanted}, turn


def reply_allowed(pipeline):
    """allowed(history, reply): whether ``CRS.claim_filter`` lets a retrieved reply answer the
    conversation ``history`` (chat messages), ranked by the bundled recommender."""
    def allowed(history, reply):
        context, _ = pipeline.context(history)
        ranking = pipeline.recommender.top_k_batch([context], 5)[0]
        return pipeline.claim_filter([context], [ranking])(0, reply)
    return allowed


def movie_named(pipeline, title):
    return max((m for m in pipeline.catalogue.movies if m.title == title), key=lambda m: m.mentions)


# ------------------------------------------------------------------------------------ reading turns


@pytest.mark.parametrize("text, wanted, unwanted", [
    ("any movies directed by Christopher Nolan?", {"director: Christopher Nolan"}, set()),
    # A genre toned down ("not too gory") stays wanted when asked for by another word; alone, or
    # with an outright refusal, it is turned down.
    ("I want a scary movie but not too gory", {"genre: Horror"}, set()),
    ("Something without singing", set(), {"genre: Musical"}),
    ("nothing too gory please", set(), {"genre: Horror"}),
    # A word for one side of a genre, refused, only tones the genre down; "too" and "less" tone down
    # as "not too" does ("that one is too sad" asked for dramas).
    ("I like horror but not gore", {"genre: Horror"}, set()),
    ("that one is too sad", set(), {"genre: Drama"}),
    ("not too scary please", set(), {"genre: Horror"}),
    ("I like comedies too", {"genre: Comedy"}, set()),
    ("no horror, something scary, nothing too gory", set(), {"genre: Horror"}),
    ("a film by Quentin Tarantino", {"director: Quentin Tarantino"}, set()),
    ("movies written by Aaron Sorkin", {"writer: Aaron Sorkin"}, set()),
    ("something starring Meryl Streep", {"actor: Meryl Streep"}, set()),
    ("I love Tom Hanks movies", {"actor: Tom Hanks"}, set()),  # no role word: his credits say actor
    ("I want a horror movie from the 80s", {"genre: Horror", "years: the 1980s"}, set()),
    ("something not a comedy please", set(), {"genre: Comedy"}),
    ("anything but drama", set(), {"genre: Drama"}),
    ("nothing too gory", set(), {"genre: Horror"}),
    ("No, I don't like horror, I want something with Jim Carrey", {"actor: Jim Carrey"}, {"genre: Horror"}),
    ("Something from the nineties without Tom Cruise", {"years: the 1990s"}, {"actor: Tom Cruise"}),
    ("I don't mind horror", {"genre: Horror"}, set()),  # looks negative, is not
    ("a scary movie", {"genre: Horror"}, set()),
    ("released between 1990 and 1995", {"years: 1990–1995"}, set()),
    ("made before 2000", {"years: 1999 or earlier"}, set()),
    ("something after 2010", {"years: 2011 or later"}, set()),
    ("not from the 1970s", set(), {"years: the 1970s"}),
    ("An action movie, but not crime.", {"genre: Action"}, {"genre: Crime"}),  # "crime" alone, read after a negation
    ("a mystery, please", {"genre: Mystery"}, set()),
    ("Keep Tom Cruise out of it, I want an action movie", {"genre: Action"}, {"actor: Tom Cruise"}),
    ("Any movies directed by Lawrence Kasdan?", {"director: Lawrence Kasdan"}, set()),  # a writer first, asked as director
    ("the war on drugs is bad, tell me about a movie", set(), set()),  # an ambiguous genre word in passing
    ("anything by Spielberg?", {"director: Steven Spielberg"}, set()),  # a bare surname of a prolific person
    ("Any Kubrick?", {"with: Stanley Kubrick"}, set()),
    ("Something with Streep, but no Sandler", {"actor: Meryl Streep"}, {"actor: Adam Sandler"}),
    ("my fav Will Farrell movie", set(), set()),  # part of a misspelt full name: not a bare surname
    ("Will you recommend something? Stone cold classics", set(), set()),  # common words are no surnames
    ("she likes old musicals", {"genre: Musical", "years: 1989 or earlier"}, set()),
    ("older, please", {"years: 1989 or earlier"}, set()),
    ("my 8 year old loves cartoons", {"genre: Animation", "genre: Family"}, set()),  # a child's age is no year range
    ("Whats a good movie for a 5 year old", {"genre: Family"}, set()),  # but asks for a family movie
    ("no more fantasy please, something realistic", set(), {"genre: Fantasy", "genre: Sci-fi"}),
    ("it doesn't have to be realistic, a comedy", {"genre: Comedy"}, set()),
    ("ok something lighter with him", {"genre: Comedy"}, set()),
    ("I need a movie for a first date", {"genre: Romance"}, set()),
    ("something sadder", {"genre: Drama"}, set()),
    ("I love Christopher Nolan movies but I've seen all of them", set(), {"with: Christopher Nolan"}),
    ("I like Tom Hanks, have you seen all of his?", {"actor: Tom Hanks"}, set()),  # asks the recommender
    ("Not sci-fi this time, a thriller maybe", {"genre: Thriller"}, {"genre: Sci-fi"}),  # the comma ends the negation
    ("Not sci-fi though, I've had enough space movies.", set(), {"genre: Sci-fi", "theme: space"}),  # "had enough" refuses
    ("no horror, comedy or drama", set(), {"genre: Horror", "genre: Comedy", "genre: Drama"}),  # a list stays negated
    # ", anything ..." starts what is wanted: the negation before the comma does not reach it
    ("I don't want a comedy, anything with Tom Hanks?", {"actor: Tom Hanks"}, {"genre: Comedy"}),
    ("no horror, or anything scary", set(), {"genre: Horror"}),  # ", or anything" goes on refusing
    ("a good WWII movie", {"genre: War", "theme: World War II"}, set()),  # a war by name asks for the war genre and the war
    ("nothing about World War 2", set(), {"theme: World War II"}),  # refused, that war, not every war movie
    ("I want a war movie, but nothing about Vietnam", {"genre: War"}, {"theme: the Vietnam War"}),
    ("a movie about dogs for my son", {"theme: dogs"}, set()),
    ("A Disney movie but not a princess one", {"studio: Disney"}, {"theme: princesses"}),
    ("a movie about aliens", {"theme: aliens", "genre: Sci-fi"}, set()),  # not the film Aliens
    ("I loved Aliens", set(), set()),  # the film
    ("no mafia movies please", set(), {"theme: the mafia"}),
    ("we ate hot dogs, now what should we watch", set(), set()),
    ("I'm into sci-fi but not space stuff", {"genre: Sci-fi"}, {"theme: space"}),
    # in a turn that asks for a movie, a genre word that describes it; not an exclamation
    ("I need something for a rainy Sunday, light and funny", {"genre: Comedy"}, set()),
    ("what about a musical from the 2000s?", {"genre: Musical", "years: the 2000s"}, set()),
    ("That's funny! Anyway, what should I watch?", set(), set()),
    ("I had a funny day, recommend a movie", set(), set()),
    # a series asked for by one movie's title; "the Batman movie" is that one
    ("A good Batman movie?", {"franchise: Batman"}, set()),
    ("I love Harry Potter movies", {"franchise: Harry Potter"}, set()),
    ("I've been on a Tarantino kick lately", {"with: Quentin Tarantino"}, set()),  # "lately": when they watched
    ("any good flicks w/ leo dicaprio", {"actor: Leonardo DiCaprio"}, set()),  # a short first name, any case
    ("i want a sam jackson movie", {"actor: Samuel L. Jackson"}, set()),
    ("any good movies lately?", {"years: 2014 or later"}, set()),
    ("I liked the Batman movie with Heath Ledger", {"actor: Heath Ledger"}, set()),
    ("I want to watch a James Bond movie", {"theme: James Bond"}, set()),  # the theme, not an obscure film's series
    ("A foreign film please, with subtitles is fine", {"country: a non-English-speaking country"}, set()),
    ("I loved World War Z", set(), set()),  # a title, not a war
    ("Something less sad please", set(), {"genre: Drama"}),  # "less" tones a genre down as "not too" does
    ("a scary movie, but a bit less gory", {"genre: Horror"}, set()),
    ("more or less a comedy", {"genre: Comedy"}, set()),
    ("Recommend me an anime film", {"genre: Animation", "country: Japan"}, set()),  # Japanese animation
    ("no anime please, a comedy", {"genre: Comedy"}, {"genre: Animation"}),
    # ", my ..." starts anew; violence turned down tones down the genres that show it most
    ("I dont want anything with violence, my kids are watching", {"genre: Family"}, {"genre: Horror", "genre: War", "genre: Crime", "genre: Action"}),
    ("something with a female lead, nothing too violent", set(), {"genre: Horror", "genre: War", "genre: Crime", "genre: Action"}),
    ("an action movie but not too violent", {"genre: Action"}, {"genre: Horror", "genre: War", "genre: Crime"}),
    ("I love violent movies", set(), set()),  # wanted, violence names no one genre
    # crude content turned down asks for a family movie; not minded or wanted, it is not read
    ("Something to watch with my grandma, nothing with swearing or violence", {"genre: Family"},
     {"genre: Horror", "genre: War", "genre: Crime", "genre: Action"}),
    ("a comedy without too much swearing", {"genre: Comedy", "genre: Family"}, set()),
    ("no nudity please", {"genre: Family"}, set()),
    ("I don't mind swearing", set(), set()),
    ("I like raunchy comedies", {"genre: Comedy"}, set()),
    ("Can u recomend a scary movi?", set(), set()),  # read as typed; the chat corrects the words first
    # years given say what a vague "newer" or "older" means in the same turn; refused, they do not
    ("something newer, after 2010 please", {"years: 2011 or later"}, set()),
    ("something to watch with my parents, they're in their 70s", set(), set()),  # an age, not a decade
    ("a comedy for a guy in his late twenties, maybe from the 90s", {"genre: Comedy", "years: the 1990s"}, set()),
    ("an older one, from the 70s", {"years: the 1970s"}, set()),
    ("a nature documentary, or something with martial arts", {"genre: Documentary", "theme: animals", "genre: Martial arts"}, set()),
])
def test_read_turn(pipeline, reader, text, wanted, unwanted):
    got_wanted, got_unwanted, _ = read(pipeline, reader, text)
    assert (got_wanted, got_unwanted) == (wanted, unwanted)


def test_recent_and_older_are_relative_to_the_catalogue(pipeline, reader, facts):
    _, _, recent = read(pipeline, reader, "recent sci-fi please")
    years = [c.value for c in recent.wanted if c.kind == "years"]
    assert years == [(facts.latest_year - 5, None)]
    _, _, older = read(pipeline, reader, "I'd like an older movie")
    assert [c.value for c in older.wanted if c.kind == "years"] == [(None, 1989)]
    _, _, kid = read(pipeline, reader, "my 10 year old son likes cartoons")  # "old" alone is not a year range
    assert not [c for c in kid.wanted if c.kind == "years"]


def test_disliked_movies_exclude_their_franchise(pipeline, reader, facts):
    _, unwanted, turn = read(pipeline, reader, "not Star Wars either")
    assert "franchise: Star Wars" in unwanted
    franchise = next(c for c in turn.unwanted if c.kind == "franchise")
    members = {m.movie_id for m in pipeline.catalogue.movies if facts.satisfies(m.movie_id, franchise)}
    titles = {pipeline.movie(m).title for m in members}
    assert {"Star Wars", "Star Wars: The Force Awakens", "Star Wars: Episode VIII – The Last Jedi", "Rogue One: A Star Wars Story"} <= titles
    assert not any("Star Trek" in t for t in titles)
    # a franchise named by part of a title covers every movie whose title starts with it
    _, unwanted, turn = read(pipeline, reader, "no more Harry Potter please")
    franchise = next(c for c in turn.unwanted if c.kind == "franchise")
    potter = {m.title for m in pipeline.catalogue.movies if facts.satisfies(m.movie_id, franchise)}
    assert len(potter) >= 5 and all(t.startswith("Harry Potter") for t in potter)
    _, unwanted, _ = read(pipeline, reader, "I hated Titanic")
    assert "movie: Titanic (1997)" in unwanted
    _, unwanted, liked = read(pipeline, reader, "I haven't seen Titanic yet")
    assert not unwanted and liked.liked  # not having seen it says nothing against it


@pytest.mark.parametrize("title, key", [("Toy Story 3", "toy story"), ("Star Wars: The Force Awakens", "star wars"),
                                        ("The Godfather Part II", "godfather"), ("Rocky IV", "rocky"), ("Heat", "heat")])
def test_franchise_key(title, key):
    assert franchise_key(title) == key


def test_state_over_turns(pipeline, reader):
    def state_after(*turns):
        return reader.read([(t, pipeline.link(t)) for t in turns])

    state = state_after("I want a comedy", "not a comedy, actually")
    assert [c.label for c in state.wanted] == [] and [c.label for c in state.unwanted] == ["genre: Comedy"]
    state = state_after("I want a comedy", "something with Jim Carrey")
    assert {c.label for c in state.wanted} == {"genre: Comedy", "actor: Jim Carrey"}
    state = state_after("I want a comedy", "a horror movie instead")  # a new genre replaces the old one
    assert [c.label for c in state.wanted] == ["genre: Horror"]
    state = state_after("I want a comedy", "a horror movie too")  # ... unless the user adds it
    assert {c.label for c in state.wanted} == {"genre: Comedy", "genre: Horror"}
    # toning down a genre asked for earlier keeps it wanted; refusing it outright does not
    state = state_after("I'd like a horror movie", "hmm, something less gory")
    assert [c.label for c in state.wanted] == ["genre: Horror"] and not state.unwanted
    state = state_after("a scary movie please", "not too scary though")
    assert [c.label for c in state.wanted] == ["genre: Horror"] and not state.unwanted
    state = state_after("I'd like a horror movie", "actually no horror")
    assert not state.wanted and [c.label for c in state.unwanted] == ["genre: Horror"]
    state = state_after("hi", "nothing too gory please")  # toned down with nothing asked: turned down
    assert [c.label for c in state.unwanted] == ["genre: Horror"]
    state = state_after("no horror please", "something with Tom Hanks")  # unwanted stays for good
    assert [c.label for c in state.unwanted] == ["genre: Horror"] and state.asked
    # a true story can be of any genre: it narrows the genre asked for instead of replacing it
    state = state_after("I'm in the mood for a war movie", "something based on a true story")
    assert {c.label for c in state.wanted} == {"genre: War", "genre: Biography"}
    state = state_after("a recent movie please", "something newer, not from the 2010s")  # refused years leave "newer" alone
    assert [c.kind for c in state.wanted] == ["years"] and [c.label for c in state.unwanted] == ["years: the 2010s"]


def test_a_movie_turned_down_with_seen_them_all_turns_down_its_series(pipeline, facts):
    first, second = chat(pipeline, "I need a good heist movie", "not Ocean's Eleven, seen all those")
    request = second.details.request
    series = [c for c in request.unwanted if c.kind == "franchise"]
    assert series and any(c.kind == "movie" for c in request.unwanted)
    ocean = [m.movie_id for m in pipeline.catalogue.movies if m.title.startswith("Ocean's")]
    assert len(ocean) >= 3 and all(facts.satisfies(m, series[0]) for m in ocean)
    assert second.items and not set(second.items) & set(ocean), second.reply


# ------------------------------------------------------------------------------------ the ranking


def test_honour_orders_and_excludes(pipeline, facts):
    comedy = next(e.entity for e in pipeline.link("a comedy movie") if e.kind == "genre")
    hanks = next(e.entity for e in pipeline.link("Tom Hanks") if e.kind == "person")
    ranking = [(m.movie_id, 0.0) for m in sorted(pipeline.catalogue.movies, key=lambda m: -m.mentions)]
    state = RequestState(wanted=[Constraint("person", hanks, "actor: Tom Hanks", "actor")],
                         unwanted=[Constraint("genre", comedy, "genre: Comedy")])
    best, state = honour(facts, ranking, state, 10)
    assert best and not state.relaxed
    for movie_id, _ in best[:3]:
        assert facts.has_person(movie_id, hanks, "actor") and not facts.has_genre(movie_id, comedy)
    assert all(not facts.has_genre(m, comedy) for m, _ in best)
    # popular order kept among the movies that meet the request
    places = [ranking.index((m, 0.0)) for m, _ in best if facts.has_person(m, hanks, "actor")]
    assert places == sorted(places)


def test_unsatisfiable_request_is_relaxed_and_said(pipeline, facts):
    nolan = next(e.entity for e in pipeline.link("Christopher Nolan") if e.kind == "person")
    hanks = next(e.entity for e in pipeline.link("Tom Hanks") if e.kind == "person")
    wanted = [Constraint("person", hanks, "actor: Tom Hanks", "actor"), Constraint("person", nolan, "director: Christopher Nolan", "director")]
    assert not any(facts.has_person(m, hanks, "actor") and facts.has_person(m, nolan, "director") for m in facts.years)
    ranking = [(m.movie_id, 0.0) for m in pipeline.catalogue.movies]
    best, state = honour(facts, ranking, RequestState(wanted=wanted), 5)
    assert len(state.relaxed) == 1 and best
    sentence = relaxation_sentence(state)
    assert "with Tom Hanks" in sentence and "directed by Christopher Nolan" in sentence and "let go of" in sentence
    assert sentence.startswith("I found no ") and not state.relaxed_spent  # no such movie at all


def test_relaxation_says_no_other_when_the_movies_that_fit_were_named_or_turned_down(pipeline, facts):
    hanks = next(e.entity for e in pipeline.link("Tom Hanks") if e.kind == "person")
    wanted = [Constraint("person", hanks, "actor: Tom Hanks", "actor")]
    his = [m for m in facts.years if facts.has_person(m, hanks, "actor")]
    assert len(his) > 2
    catalogue = pipeline.catalogue
    scores = np.zeros(len(catalogue))
    named, turned_down = his[:-1], his[-1:]  # every one of his movies named in the chat or turned down
    best, state = honour_scores(facts, scores, [catalogue.index(m) for m in named], RequestState(wanted=wanted, rejected=turned_down), 3)
    assert best and not set(m for m, _ in best) & set(his)
    assert state.relaxed == wanted and state.relaxed_spent
    assert relaxation_sentence(state).startswith("I found no other movie with Tom Hanks in my catalogue")
    # one of his movies left: it comes first and nothing is relaxed
    best, state = honour_scores(facts, scores, [catalogue.index(m) for m in his[1:]], RequestState(wanted=wanted), 3)
    assert best[0][0] == his[0] and not state.relaxed and not state.relaxed_spent and relaxation_sentence(state) == ""


# ------------------------------------------------------------------------------------ the chat


def chat(pipeline, *messages):
    state, results = ChatState(), []
    for message in messages:
        result = chat_turn(pipeline, message, state)
        state = result.state
        results.append(result)
    return results


def test_attribute_request_gets_a_movie_that_meets_it(pipeline, facts):
    for text, check in [
        ("any movies directed by Christopher Nolan?", lambda m, p: "Christopher Nolan" in p.movie(m).directors),
        ("I want a horror movie from the 80s", lambda m, p: "horror" in p.movie(m).genres and 1980 <= p.movie(m).year <= 1989),
        ("Tom Hanks", lambda m, p: any(s == "Tom Hanks" for s in p.movie(m).stars)),
    ]:
        result = chat(pipeline, text)[0]
        assert result.items, (text, result.reply)
        assert check(result.items[0], pipeline), (text, result.reply)
        assert not result.reply.lower().startswith(("hi!", "hello!")) or result.items


def test_negated_genre_is_never_recommended(pipeline, facts):
    results = chat(pipeline, "I love Tom Hanks", "not a comedy though", "another one please")
    comedy = next(e.entity for e in pipeline.link("a comedy movie") if e.kind == "genre")
    for result in results[1:]:
        assert result.items
        top3 = [m for m, _ in result.details.ranking[:3]]
        assert not any(facts.has_genre(m, comedy) for m in top3), result.reply


def test_turned_down_franchise_stays_out(pipeline, facts):
    results = chat(pipeline, "I like Star Wars", "not Star Wars either, something different", "and another")
    key = facts.franchise[movie_named(pipeline, "Star Wars").movie_id]
    for result in results[1:]:
        assert result.items
        assert all(facts.franchise.get(m) != key for m, _ in result.details.ranking), result.reply


def test_questions_are_answered_from_facts(pipeline, facts):
    matrix = movie_named(pipeline, "The Matrix")
    reply = chat(pipeline, "who directed The Matrix?")[0]
    assert reply.reply.startswith(f"{matrix.display_name} was directed by")
    assert all(name in reply.reply for name in matrix.directors) and not reply.items
    jaws = movie_named(pipeline, "Jaws")
    assert chat(pipeline, "when did Jaws come out?")[0].reply == f"Jaws came out in {jaws.year}."
    both = chat(pipeline, "who stars in The Matrix? recommend me something similar")[0]
    assert both.reply.startswith(f"{matrix.display_name} stars") and both.items
    # a movie with no director in the data: the answer says so instead of inventing one
    unknown = next((m for m in pipeline.catalogue.movies if not m.directors and not facts.people.get(m.movie_id, {}).get("director")
                    and m.mentions > 0 and len(m.title.split()) >= 3 and "(" not in m.title), None)
    if unknown is not None:
        text = f"who directed {unknown.title} ({unknown.year})?" if unknown.year else f"who directed {unknown.title}?"
        answer = answer_question(text, pipeline.link(text), facts)
        if answer is not None and answer.movie == unknown.movie_id:
            assert answer.text.startswith("I don't know") and not answer.known


def test_reasoning_panel_shows_the_request(pipeline):
    history = []
    results = chat(pipeline, "something with Tom Hanks, but no comedy")
    result = results[0]
    history = result.state.history[:-1]
    panel = reasoning_markdown(pipeline, result.details, history, [])
    assert "What you asked for" in panel and "Tom Hanks" in panel and "Comedy" in panel


def test_questions_about_it_mean_the_last_recommended_movie(pipeline):
    results = chat(pipeline, "Any good movies with Sandra Bullock?", "Who directed it?", "When did that come out?")
    movie = pipeline.movie(results[0].items[0])
    assert results[1].reply == f"{movie.display_name} was directed by {' and '.join(movie.directors)}." if len(movie.directors) <= 2 \
        else results[1].reply.startswith(f"{movie.display_name} was directed by")
    assert results[2].reply == f"{movie.title} came out in {movie.year}."
    assert not results[1].items and not results[2].items


def test_the_director_or_the_star_of_the_movie_talked_about(pipeline, reader, facts):
    # "what else did the director make?", "more with the same actor": the people of the movie in
    # focus (the one named last), wanted, or unwanted when negated; a question alone asks for nothing.
    pulp = movie_named(pipeline, "Pulp Fiction").movie_id
    directors = {f"director: {name}" for _, name in facts.credited(pulp, "director")}
    assert directors == {"director: Quentin Tarantino"}

    def labels(text, focus):
        turn = reader.read_turn(text, pipeline.link(text), focus)
        return {c.label for c in turn.wanted}, {c.label for c in turn.unwanted}

    for text in ("what else did the director make?", "anything else from that director?", "more by the same director please",
                 "any other movies by him?", "anything else by them?"):
        assert labels(text, pulp) == (directors, set()), text
    assert labels("nothing from that director, something different", pulp) == (set(), directors)
    assert labels("who is the director?", pulp) == (set(), set())  # a question, answered elsewhere
    assert labels("what else did the director make?", None) == (set(), set())  # no movie talked about yet
    gump = movie_named(pipeline, "Forrest Gump").movie_id
    assert labels("what else has he been in?", gump) == ({"actor: Tom Hanks"}, set())
    assert labels("more with the same actor", gump) == ({"actor: Tom Hanks"}, set())
    # In a chat the movie in focus is the last one named, by the user or in the answer.
    results = chat(pipeline, "Who starred in Pulp Fiction?", "what else did the director make?")
    assert results[1].items and all(facts.satisfies(m, Constraint("person", next(iter(facts.people[pulp]["director"])), "", "director"))
                                    for m in results[1].items[:1])


def test_a_pronoun_means_the_person_the_user_named_last(pipeline, reader, facts):
    # "more with her", "what else is she in?", "his other movies": the person the user named, not
    # the star of the movie talked about; "did he direct" only of someone asked for as a director
    # (or in no role); with no such person the movie in focus decides, as before.
    pulp = movie_named(pipeline, "Pulp Fiction").movie_id
    star, director = facts.credited(pulp, "actor")[0], facts.credited(pulp, "director")[0]
    state = reader.read([("Any movies with Meg Ryan?", pipeline.link("Any movies with Meg Ryan?"))])
    assert [c.label for c in state.people] == ["actor: Meg Ryan"]
    meg = state.people

    def labels(text, focus, people):
        turn = reader.read_turn(text, pipeline.link(text), focus, (), people)
        return {c.label for c in turn.wanted}, {c.label for c in turn.unwanted}

    assert star[1] != "Meg Ryan"
    for text in ("anything else with her?", "what else is she in?", "more of her movies please", "something else starring her"):
        assert labels(text, pulp, meg) == ({"actor: Meg Ryan"}, set()), text
    assert labels("nothing with her, a comedy instead", pulp, meg) == ({"genre: Comedy"}, {"actor: Meg Ryan"})
    assert labels("I've seen all her movies, something else", pulp, meg) == (set(), {"actor: Meg Ryan"})
    # an actor is not taken for a director: "what else did he direct?" is the focus's director
    assert labels("what else did he direct?", pulp, meg) == ({f"director: {director[1]}"}, set())
    # a person named in no role becomes the role the pronoun asks for
    anyone = [Constraint("person", star[0], f"with: {star[1]}")]
    assert labels("what else has he directed?", None, anyone) == ({f"director: {star[1]}"}, set())
    assert labels("more of his movies", None, anyone) == ({f"with: {star[1]}"}, set())
    # no person named before: the pronoun means the focus's star, as "the same actor" does
    assert labels("anything else with him?", pulp, []) == ({f"actor: {star[1]}"}, set())
    # the state keeps the person through turns without one, and forgets them when a movie is named
    turns = ["Any movies with Meg Ryan?", "something from the 90s", "I loved Heat"]
    states = [reader.read([(t, pipeline.link(t)) for t in turns[: i + 1]]) for i in range(len(turns))]
    assert [[c.label for c in s.people] for s in states] == [["actor: Meg Ryan"], ["actor: Meg Ryan"], []]
    # in a chat: what the user turned down stays out
    results = chat(pipeline, "Show me movies with Denzel Washington", "I have seen all his movies, something else")
    denzel = results[0].details.request.wanted[0]
    assert denzel.label == "actor: Denzel Washington" and denzel in results[1].details.request.unwanted
    assert results[1].items and not any(facts.satisfies(m, denzel) for m in results[1].items)


def test_opinion_questions_get_what_the_movie_is_and_a_recommendation(pipeline, facts):
    # "What do you think of X?" is answered with X's facts (never an invented opinion), then a
    # recommendation of another movie; "is X scary?" with yes or no from X's genres.
    knight = movie_named(pipeline, "The Dark Knight")
    for text in ("what do you think of The Dark Knight?", "Is The Dark Knight worth watching?", "Have you seen The Dark Knight?"):
        result = chat(pipeline, text)[0]
        assert result.reply.startswith(f"{knight.display_name} is ") and "directed by Christopher Nolan" in result.reply, text
        assert result.items and knight.movie_id not in result.items, text
    shining = movie_named(pipeline, "The Shining")
    assert "horror" in [g.lower() for g in shining.genres]
    assert chat(pipeline, "is The Shining scary?")[0].reply.startswith(f"Yes, {shining.display_name} is ")
    toy = movie_named(pipeline, "Toy Story")
    assert "horror" not in [g.lower() for g in toy.genres]
    toy_answer = chat(pipeline, "Is Toy Story scary?")[0]
    assert toy_answer.reply.startswith(f"Not really: {toy.display_name} is ")
    frozen = movie_named(pipeline, "Frozen")  # animated, not listed as a family movie: no "Not really"
    assert "family" not in [g.lower() for g in frozen.genres] and "animation" in [g.lower() for g in frozen.genres]
    assert chat(pipeline, "is frozen good for kids?")[0].reply.startswith(f"{frozen.display_name} is an animation")
    # the genre was asked about, not asked for: no horror movie follows, none is wanted later
    assert not toy_answer.items and not toy_answer.details.request.wanted
    # "Is it from the 90s?" about the movie in focus: yes or no from its year, no decade wanted after.
    year = toy.year
    decade = f"{str(year // 10 * 10)[2:]}s"
    other = "70s" if decade != "70s" else "80s"
    results = chat(pipeline, "Is Toy Story scary?", f"Is it from the {decade}?", f"was it made in the {other}?")
    assert results[1].reply.startswith(f"Yes, {toy.title} came out in {year}.") and not results[1].details.request.wanted
    assert results[2].reply.startswith(f"No, {toy.title} came out in {year}.")
    # A request that starts like a question is still a request, not a yes/no about the movie.
    text = "Is there anything like The Matrix but funnier?"
    assert answer_question(text, pipeline.link(text), facts) is None
    assert answer_question("Any good movies with Sandra Bullock?", pipeline.link("Any good movies with Sandra Bullock?"), facts) is None
    # saying one liked a movie is not asking about it
    text = "I think The Matrix is great, anything similar?"
    assert answer_question(text, pipeline.link(text), facts) is None


def test_who_is_the_director_means_the_last_recommended_movie(pipeline):
    results = chat(pipeline, "Any good movies with Sandra Bullock?", "who is the director?")
    movie = pipeline.movie(results[0].items[0])
    assert results[1].reply.startswith(f"{movie.display_name} was directed by") and not results[1].items


@pytest.mark.parametrize("closing", ["Thanks!", "great, bye", "Great, I'll try that.", "Sounds good, thank you so much", "Bye!", "perfect, thanks for the help", "thanks, I'll try that one",
                                     "that's great, thanks!", "This sounds perfect"])
def test_thanks_and_goodbye_get_a_farewell_not_a_movie(pipeline, closing):
    from crs.serve.pipeline import WELLBEING_ANSWER_RE

    results = chat(pipeline, "I want a horror movie from the 80s", closing)
    assert results[0].items and not results[1].items and results[1].details.goal == "farewell"
    assert results[1].reply and not pipeline.link(results[1].reply)
    assert not WELLBEING_ANSWER_RE.search(results[1].reply)  # no "I am great." unless asked how it is


def test_not_a_closing():
    from crs.data.context import DialogueContext
    from crs.data.redial import SEEKER, Turn
    from crs.serve.pipeline import closes

    for text in ("Thanks, but something older please", "ok, what about comedies?", "great, another one like that",
                 "that's great but I've seen it"):
        assert not closes(DialogueContext(turns=[Turn(SEEKER, text, [])])), text


def test_seen_all_of_a_franchise_turns_it_down(pipeline, reader, facts):
    _, unwanted, turn = read(pipeline, reader, "My kid has seen all the Toy Story movies")
    franchise = next(c for c in turn.unwanted if c.kind == "franchise")
    toy = {m.title for m in pipeline.catalogue.movies if facts.satisfies(m.movie_id, franchise)}
    assert {"Toy Story", "Toy Story 2", "Toy Story 3"} <= toy


def test_a_series_asked_for_then_seen_them_all_is_turned_down(pipeline, facts):
    first, second = chat(pipeline, "any Star Wars movies you like?", "I've seen all of those")
    star_wars = next(c for c in first.details.request.wanted if c.kind == "franchise")
    assert first.items and facts.satisfies(first.items[0], star_wars), first.reply
    assert star_wars in second.details.request.unwanted and star_wars not in second.details.request.wanted
    assert second.items and not any(facts.refused_mask(star_wars)[pipeline.catalogue.index(m)] for m in second.items), second.reply


def test_a_horror_theme_then_not_too_scary_keeps_the_theme(pipeline, facts):
    # after "a zombie movie", "not too scary" tones horror down: the zombie comedies stay
    first, second = chat(pipeline, "I'm looking for a good zombie movie", "not too scary though")
    zombies = Constraint("theme", "zombies", "theme: zombies")
    assert not any(c.kind == "genre" for c in second.details.request.unwanted)
    assert second.items and facts.satisfies(second.items[0], zombies) and not second.details.request.relaxed, second.reply
    alone = chat(pipeline, "a comedy, nothing too scary")[0]  # with no theme asked, it is turned down as before
    assert any(c.label == "genre: Horror" for c in alone.details.request.unwanted)


def test_one_film_listed_twice_is_recommended_once(pipeline):
    from crs.data.catalogue import without_duplicates

    catalogue = pipeline.catalogue
    klowns = [m.movie_id for m in catalogue.movies if m.year == 1988 and "from outer space" in m.title.casefold()
              and m.title.casefold().startswith("killer")]
    assert len(klowns) == 2  # "Killer Klowns ..." and "Killer Clowns ..."
    other = movie_named(pipeline, "Airplane II: The Sequel").movie_id
    kept = without_duplicates(catalogue, [(klowns[0], 3.0), (other, 2.0), (klowns[1], 1.0)])
    assert [m for m, _ in kept] == [klowns[0], other]
    titanic = [m.movie_id for m in catalogue.movies if m.title == "Titanic" and m.year in (1997, 2012)]
    assert len(without_duplicates(catalogue, [(m, 1.0) for m in titanic])) == 2  # namesakes of other years stay
    # a stray listing (Bridesmaids (1989): 3 mentions, Bridesmaids (2011)'s IMDb id) gives way to the
    # film's own entry where that meets the request as well, else it goes
    stray = [m for m in catalogue.movies if m.title == "Bridesmaids" and m.year == 1989][0].movie_id
    main = [m for m in catalogue.movies if m.title == "Bridesmaids" and m.year == 2011][0].movie_id
    assert without_duplicates(catalogue, [(stray, 1.0)], lambda m, instead: True) == [(main, 1.0)]
    assert without_duplicates(catalogue, [(stray, 1.0)], lambda m, instead: False) == []
    eighties = chat(pipeline, "Something like Mean Girls", "but from the 80s")[1]
    assert stray not in eighties.items and main not in eighties.items and eighties.items, eighties.reply


def test_foreign_films_and_anime(pipeline, facts):
    # "a foreign film": made outside the English-speaking world by both the KG's country and language
    # edges; anime: Japanese animation, Studio Ghibli's films Japanese
    foreign = Constraint("country", "foreign", "country: a non-English-speaking country")
    members = {pipeline.movie(m).display_name for m in facts._members(foreign)}
    assert "The Wailing (2016)" in members and "Let the Right One In (2008)" in members
    assert not {"Blade Runner (1982)", "Braveheart (1995)", "10 Things I Hate About You (1999)"} & members  # one stray edge each
    japan = Constraint("country", "japanese", "country: Japan")
    assert facts.satisfies(movie_named(pipeline, "Spirited Away").movie_id, japan)
    result = chat(pipeline, "Any good anime films?")[0]
    assert result.items and facts.satisfies(result.items[0], japan), result.reply
    result = chat(pipeline, "I want a war movie, but nothing about World War II")[0]
    wwii = Constraint("theme", "world war ii", "theme: World War II")
    assert result.items and not any(facts.satisfies(m, wwii) for m in result.items), result.reply
    assert facts.satisfies(movie_named(pipeline, "Saving Private Ryan").movie_id, wwii)


def test_requests_by_what_the_catalogue_lacks_are_said_and_still_answered(pipeline, reader):
    # running times, age ratings and gender are in no catalogue field: the reply says so and recommends
    for text, key in (("what's a movie under 90 minutes", "length"), ("something short and funny", "length"),
                      ("a comedy rated PG-13 please", "rating"), ("a movie directed by a woman", "gender")):
        assert read(pipeline, reader, text)[2].unknowable == [key], text
        result = chat(pipeline, text)[0]
        assert result.items and result.reply.startswith(UNKNOWABLE[key][1]), result.reply
    assert read(pipeline, reader, "I loved The Shining, a long time ago")[2].unknowable == []
    later = chat(pipeline, "something short and funny", "another one")[1]
    assert "running times" not in later.reply  # said once, for the turn that asked


def test_a_request_is_not_answered_with_what_do_you_like(pipeline):
    from crs.serve.pipeline import drop_preference_questions

    assert drop_preference_questions("Hi, what kind of movies do you like? How about Up (2009)?") == "How about Up (2009)?"
    assert drop_preference_questions("What kind of movies do you like?") == "What kind of movies do you like?"  # nothing left otherwise
    # an offer to recommend, when the user has asked for a movie, goes too
    assert drop_preference_questions("Hello there can I recommend a movie for you? How about Up (2009)?") == "How about Up (2009)?"
    # a sentence that also names the recommended movie keeps it: the part up to the title stays
    text = "Awesome! Have you ever seen Groundhog Day (1993) What type of comedies do you like?"
    spans = [(text.index("Groundhog"), text.index("(1993)") + 6)]
    assert drop_preference_questions(text, spans) == "Awesome! Have you ever seen Groundhog Day (1993)?"
    reply = pipeline.respond([{"role": "user", "content": "I want a comedy"}])
    assert reply.items and all(pipeline.movie(m).display_name in reply.text for m in reply.items), reply.text
    for result in chat(pipeline, "any movies directed by Christopher Nolan?", "something from the 90s with Tom Hanks"):
        assert result.items and "what kind of" not in result.reply.lower(), result.reply
    for opener in ("Something like Mean Girls", "I'm bored. Surprise me.", "you pick, anything is fine",
                   "Sigh. Nothing good on tonight.", "I can't find anything to watch"):  # asked in words
        result = chat(pipeline, opener)[0]
        assert result.items and "what kind of" not in result.reply.lower(), result.reply


def test_constraint_suite_through_the_harness(pipeline, data_dir, tmp_path, checkpoint_dir):
    import json

    from crs.config import CRSConfig
    from crs.eval.constraints import Judge, generate_cases, load_cases
    from crs.eval.harness import run

    cases = generate_cases(pipeline.kg, pipeline.catalogue)
    assert len(cases) >= 300 and cases == generate_cases(pipeline.kg, pipeline.catalogue)  # seeded
    assert len(load_cases()) >= 40
    from crs.data.catalogue import Catalogue

    judge = Judge(pipeline.kg, Catalogue.load(data_dir))  # as the harness judges: the data's catalogue, with the plots
    ids = [m.movie_id for m in pipeline.catalogue.movies]
    for case in cases[::10] + load_cases():  # every wanted constraint can be met by some catalogue movie
        assert all(any(judge.meets(m, spec) for m in ids) for spec in case.wanted), case
    pixar = {pipeline.movie(m).title for m in ids if judge.meets(m, {"kind": "studio", "name": "Pixar"})}
    assert "Finding Nemo" in pixar and "Shrek" not in pixar  # the judge's studios and countries, by DBpedia's names
    french = {pipeline.movie(m).title for m in ids if judge.meets(m, {"kind": "country", "names": ["France", "French language"]})}
    assert french and "Toy Story" not in french
    paris = {pipeline.movie(m).title for m in ids if judge.meets(m, {"kind": "setting", "names": ["Paris"]})}
    assert "Ratatouille" in paris and "Toy Story" not in paris  # settings by the plots' words

    config = CRSConfig()
    config.data.data_dir = str(data_dir)
    out = tmp_path / "report"
    run(config, [f"crs={checkpoint_dir}", "popularity"], "valid", ["constraints"], out, progress=False, constraint_cases=24)
    metrics = json.loads((out / "metrics.json").read_text())["constraints"]
    assert set(metrics) == {"crs", "popularity", "kg-filter"}
    assert metrics["crs"]["all"]["cases"] == 24
    # the chat follows the requests; popularity, which ignores them, does not
    assert metrics["crs"]["all"]["satisfaction@1"] >= 0.8 > metrics["popularity"]["all"]["satisfaction@1"]
    assert metrics["crs"]["all"]["no_movie"] == 0.0
    assert "## Constraint suite" in (out / "report.md").read_text()
    rows = [json.loads(line) for line in (out / "constraint_cases.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * 24 and all({"id", "turns", "top", "sat1", "viol3"} <= set(row) for row in rows)


def test_broken_paraphrase_file_is_named(tmp_path):
    from crs.eval.constraints import load_cases

    bad = tmp_path / "cases.jsonl"
    bad.write_text('{"id": "x", "turns": ["hi"]}\n{not json\n')
    with pytest.raises(ValueError, match=r"cases\.jsonl, line 2"):
        load_cases(bad)


def test_metadata_shared_by_two_films_is_not_believed(pipeline, facts):
    # movie_info.json gives the 1984 film the 2010 remake's director (both share one IMDb id): the
    # answer must not repeat it; the remake, which DBpedia links, is answered from DBpedia.
    old, remake = [max((m for m in pipeline.catalogue.movies if m.title == "A Nightmare on Elm Street" and m.year == y),
                       key=lambda m: m.mentions) for y in (1984, 2010)]
    assert old.movie_id in facts.suspect and remake.movie_id in facts.suspect
    text = "who directed A Nightmare on Elm Street (1984)?"
    answer = answer_question(text, pipeline.link(text), facts)
    assert answer.movie == old.movie_id and "Samuel Bayer" not in answer.text and not answer.known
    text = "who directed A Nightmare on Elm Street (2010)?"
    answer = answer_question(text, pipeline.link(text), facts)
    assert answer.movie == remake.movie_id and answer.text.endswith("directed by Samuel Bayer.")
    assert len(facts.suspect) < 0.1 * len(pipeline.catalogue)


def test_vectorised_ranking_matches_the_reference(pipeline, facts):
    from crs.rec.request import honour_scores

    rng = np.random.default_rng(7)
    scores = rng.normal(size=len(pipeline.catalogue))
    comedy = next(e.entity for e in pipeline.link("a comedy movie") if e.kind == "genre")
    hanks = next(e.entity for e in pipeline.link("Tom Hanks") if e.kind == "person")
    excluded = [3, 10, 200]
    for state in (RequestState(wanted=[Constraint("person", hanks, "actor: Tom Hanks", "actor"), Constraint("years", (1990, 1999), "years: the 1990s")],
                               unwanted=[Constraint("genre", comedy, "genre: Comedy")], rejected=[pipeline.catalogue[5].movie_id]),
                  RequestState(unwanted=[Constraint("years", (None, 1979), "years: 1979 or earlier")])):
        order = np.lexsort((np.arange(len(scores)), -scores))
        ranking = [(pipeline.catalogue[i].movie_id, float(scores[i])) for i in order if i not in excluded]
        reference, ref_state = honour(facts, ranking, state, 10)
        fast, fast_state = honour_scores(facts, scores, excluded, state, 10)
        assert fast == reference and fast_state.relaxed == ref_state.relaxed


def test_dislike_reading_table(pipeline, data_dir):
    from crs.config import CRSConfig
    from crs.data.splits import load_splits
    from crs.eval.dislike import dislike_table

    config = CRSConfig()
    config.data.data_dir = str(data_dir)
    head, *rows = dislike_table(pipeline, load_splits(config.data, with_test=False).valid[:150])
    assert head["examples"] > 0 and rows[0]["reading"].startswith("rules")
    assert len(rows) == 7 and all(0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 for r in rows)
    flagged = [r["flagged"] for r in rows[1:]]
    assert flagged == sorted(flagged)  # a higher threshold flags at least as many


@pytest.mark.parametrize("raw, clean", [
    ("Bye! Bye! Bye.", "Bye!"),
    ("Bye... Bye.", "Bye..."),
    ("[REC] is good. [REC] is good!", "[REC] is good."),
    ("I liked it. You will like it.", "I liked it. You will like it."),
    ("[REC] wasn't bad not too cerebral though not too cerebral though", "[REC] wasn't bad not too cerebral though."),
    ("New York, New York is great", "New York, New York is great."),  # two words said twice may be a name
])
def test_repeated_sentences_are_said_once(raw, clean):
    from crs.serve.pipeline import polish_template

    assert polish_template(raw) == clean


def test_the_last_n_years(pipeline, reader, facts):
    latest = facts.latest_year
    for text, years in (("something from the last 10 years", 10), ("a horror movie from the past decade", 10),
                        ("anything from the last few years?", 3), ("released in the past 5 years", 5),
                        ("a comedy from the last couple of years", 2)):
        _, _, turn = read(pipeline, reader, text)
        assert [c.value for c in turn.wanted if c.kind == "years"] == [(latest - years + 1, None)], text
    for text in ("a thriller that came out lately", "anything good released of late?"):
        _, _, turn = read(pipeline, reader, text)
        assert [c.value for c in turn.wanted if c.kind == "years"] == [(latest - 5, None)], text
    # the negation of the first clause stops at ", anything": the years stay wanted
    _, _, turn = read(pipeline, reader, "I do not like superhero movies, anything good from the last few years?")
    assert [c.value for c in turn.wanted if c.kind == "years"] == [(latest - 2, None)]
    assert [c.label for c in turn.unwanted] == ["genre: Superhero"]
    _, _, turn = read(pipeline, reader, "nothing from the last 10 years, I like older stuff")
    assert (latest - 9, None) in [c.value for c in turn.unwanted if c.kind == "years"]


def test_the_sequels_of_the_movie_talked_about(pipeline, reader, facts):
    # "what about the sequels?": the focus movie's series (its own movies, not every title that
    # starts alike), else that of a movie named before; turned down when negated.
    alien = movie_named(pipeline, "Alien").movie_id
    turn = reader.read_turn("what about the sequels?", [], alien, [alien])
    series = next(c for c in turn.wanted if c.kind == "franchise")
    members = {pipeline.movie(m).title for m in facts._members(series)}
    assert {"Alien", "Alien 3"} <= members and "Alien Nation" not in members
    assert facts.satisfies(movie_named(pipeline, "Alien 3").movie_id, series)
    assert not facts.satisfies(movie_named(pipeline, "Alien Nation").movie_id, series)
    lonely = next(m.movie_id for m in pipeline.catalogue.movies if facts.franchise_constraint(m.movie_id, strict=True) is None)
    assert reader.read_turn("any sequels?", [], lonely, [lonely, alien]).wanted == [series]  # the focus has none: the one before
    toy = movie_named(pipeline, "Toy Story").movie_id
    turn = reader.read_turn("no sequels please", [], toy, [toy])
    assert [c.kind for c in turn.unwanted] == ["franchise"] and not turn.wanted
    assert not reader.read_turn("what about the sequels?", [], None, []).wanted  # nothing talked about yet
    # "no sequels" with no movie talked about: no movie that follows another of its series
    turn = reader.read_turn("any Pixar movies that aren't sequels?", pipeline.link("any Pixar movies that aren't sequels?"))
    sequels = next(c for c in turn.unwanted if c.kind == "sequel")
    assert facts.satisfies(movie_named(pipeline, "Toy Story 3").movie_id, sequels) and not facts.satisfies(toy, sequels)
    assert not facts.satisfies(movie_named(pipeline, "Alien").movie_id, sequels) and facts.satisfies(movie_named(pipeline, "Alien 3").movie_id, sequels)
    for result in chat(pipeline, "any Pixar movies that aren't sequels?", "another one"):
        assert result.items and not any(facts.satisfies(m, sequels) for m, _ in result.details.ranking[:3]), result.reply
    results = chat(pipeline, "I loved Toy Story", "are there any sequels?")
    focus = results[0].items[0]  # the movie named last: the answer's, when it has a series, else Toy Story
    expected = facts.franchise[focus if facts.franchise_constraint(focus, strict=True) else toy]
    assert results[1].items and facts.franchise.get(results[1].items[0]) == expected, results[1].reply


def test_a_turned_down_genre_keeps_out_movies_of_unknown_genre(pipeline, facts):
    horror = next(e.entity for e in pipeline.link("a horror movie") if e.kind == "genre")
    unknown = facts.genre_unknown()
    assert 0 < unknown.sum() < len(unknown) // 10
    ranking = [(m.movie_id, 0.0) for m in sorted(pipeline.catalogue.movies, key=lambda m: -m.mentions)]
    first_unknown = next(m for m, _ in ranking if unknown[pipeline.catalogue.index(m)])
    best, _ = honour(facts, ranking, RequestState(unwanted=[Constraint("genre", horror, "genre: Horror")]), 50)
    assert best and not any(unknown[pipeline.catalogue.index(m)] or facts.has_genre(m, horror) for m, _ in best)
    best, _ = honour(facts, ranking, RequestState(), 10_000)  # without the constraint they stay
    assert first_unknown in [m for m, _ in best]


def test_what_is_it_about_describes_the_last_recommended_movie(pipeline, facts):
    results = chat(pipeline, "can you recommend a movie starring Tom Hanks?", "what's it about?")
    movie = pipeline.movie(results[0].items[0])
    assert results[1].reply.startswith(f"{movie.display_name} is ") and not results[1].items
    assert answer_question("what's the plot?", [], facts, [movie.movie_id]).asked == "about"
    assert answer_question("what's it about?", [], facts, []) is None  # nothing recommended yet


def test_replies_never_speak_as_the_seeker_or_take_leave_unasked(pipeline):
    from crs.serve.pipeline import SEEKER_SPEECH_RE, WELLBEING_ANSWER_RE, drop_seeker_speech, still_asking

    for text in ("Hi, I am looking for a good movie.", "Can you recommend a comedy?", "Do you have any suggestions?",
                 "Any recommendations?", "What would you recommend?", "I'm looking for movie recommendations",
                 "OH WOW I think I can pass on that one too lol thanks"):
        assert SEEKER_SPEECH_RE.search(text), text
    for text in ("Would you like a few suggestions?", "What are you looking for?", "I recommend Up", "Are you looking for a comedy?"):
        assert not SEEKER_SPEECH_RE.search(text), text
    assert drop_seeker_speech("Hi, I am looking for a movie. Have you seen Up (2009)?", ["Up (2009)"]) == "Have you seen Up (2009)?"
    assert drop_seeker_speech("Have you seen Looking for Alaska (2019)?", ["Looking for Alaska (2019)"]) == "Have you seen Looking for Alaska (2019)?"
    for text, asking in (("Thanks, I'll watch it tonight", False), ("you too!", False), ("too old, something from the last 10 years", True),
                         ("thanks! can you recommend another?", True), ("Is it scary?", True), ("I don't know what I want to watch", True),
                         ("ok great, I'll check it out", False)):
        assert still_asking(DialogueContext(turns=[Turn(SEEKER, text, [])])) == asking, text
    for result in chat(pipeline, "Hello there! I'm looking for an action movie for tonight", "I'm into heist movies",
                       "something from the last 10 years"):
        assert not SEEKER_SPEECH_RE.search(result.reply) and "bye" not in result.reply.lower(), result.reply
        assert not WELLBEING_ANSWER_RE.search(result.reply), result.reply  # nobody asked how it is


def test_replies_answer_how_are_you_only_when_asked(pipeline):
    from crs.serve.pipeline import WELLBEING_ANSWER_RE, asked_wellbeing, drop_wellbeing

    for text in ("Hi, I am great. Have you seen Up?", "I'm doing well, and you?", "Im good ty", "Good, thanks for asking!",
                 "Hey there! Doing great. What do you like?"):
        assert WELLBEING_ANSWER_RE.search(text), text
    for text in ("I'm looking at comedies", "Have you seen Good Will Hunting?", "That one is great", "I'm not sure"):
        assert not WELLBEING_ANSWER_RE.search(text), text
    for text, asked in (("Hi, how are you?", True), ("hello! how's it going", True), ("good, and you?", True),
                        ("how are you doing today?", True), ("Hello there! I'm looking for an action movie", False),
                        ("I'm in the mood for a comedy", False)):
        assert asked_wellbeing(DialogueContext(turns=[Turn(SEEKER, text, [])])) == asked, text
    allowed = pipeline.claim_filter([DialogueContext(turns=[Turn(SEEKER, "I want a comedy", [])]),
                                     DialogueContext(turns=[Turn(SEEKER, "hi, how are you?", [])])], [[], []])
    assert not allowed(0, "I am great! What kind of movies do you like?")
    assert allowed(1, "I am great! What kind of movies do you like?")
    # A generated reply loses the answer nobody asked for; a greeting opening it stays when greeting is allowed.
    assert drop_wellbeing("Hi, I am great. Have you seen [REC]?") == "Hi! Have you seen [REC]?"
    assert drop_wellbeing("Hi, I am great. Have you seen [REC]?", keep_greeting=False) == "Have you seen [REC]?"
    assert drop_wellbeing("Good, thanks for asking! [REC] is fun.") == "[REC] is fun."
    assert drop_wellbeing("I am great!") == "I am great!"  # nothing else to say: kept
    assert drop_wellbeing("Hi! How are you?") == "Hi! How are you?"


def test_studios_and_countries(pipeline, reader, facts):
    # "a Pixar movie", "no Marvel", "a French comedy", "Bollywood", "something in Korean": the KG's
    # production companies and countries / languages, as constraints like the others.
    for text, wanted, unwanted in (("what's the best Pixar movie?", {"studio: Pixar"}, set()),
                                   ("I meant Pixar, not Disney", {"studio: Pixar"}, {"studio: Disney"}),
                                   ("no Marvel movies please", set(), {"studio: Marvel"}),
                                   ("a French comedy please", {"country: France", "genre: Comedy"}, set()),
                                   ("recommend me a bollywood movie", {"country: India (Bollywood)"}, set()),
                                   ("something in Korean", {"country: South Korea"}, set()),
                                   ("Maybe something Japanese", {"country: Japan"}, set()),  # the adjective ends the request
                                   ("I want something Korean, maybe a thriller", {"country: South Korea", "genre: Thriller"}, set()),
                                   ("I like Japanese food", set(), set()),
                                   ("I liked French Kiss", set(), set()),  # a title, not a country
                                   ("I love french fries and a good action movie", {"genre: Action"}, set())):
        got_wanted, got_unwanted, _ = read(pipeline, reader, text)
        assert (got_wanted, got_unwanted) == (wanted, unwanted), text
    pixar = Constraint("studio", "pixar", "studio: Pixar")
    members = {pipeline.movie(m).title for m in facts._members(pixar)}
    assert {"Finding Nemo", "Inside Out"} <= members and "Shrek" not in members
    assert facts.satisfies(movie_named(pipeline, "Finding Nemo").movie_id, pixar)
    results = chat(pipeline, "what's the best Pixar movie?", "I meant Pixar, not Disney")
    for result in results:  # a Pixar movie that Disney co-produced is still a Pixar movie
        assert result.items and facts.satisfies(result.items[0], pixar), result.reply
    french = chat(pipeline, "a French comedy please")[0]
    assert french.items and facts.satisfies(french.items[0], Constraint("country", "french", "country: France")), french.reply
    assert Constraint("country", "french", "country: France").phrase == "from France"
    # Pixar's and Ghibli's features are theirs although the KG credits them to Disney or to no one
    # (kg.lexicon.STUDIO_FILMS; Pixar's are Disney releases too); a namesake of another year is not
    ghibli = Constraint("studio", "ghibli", "studio: Studio Ghibli")
    for title, studios in (("The Incredibles", (pixar, disney := Constraint("studio", "disney", "studio: Disney"))),
                           ("Ratatouille", (pixar, disney)), ("Up", (pixar, disney)), ("Spirited Away", (ghibli,))):
        assert all(facts.satisfies(movie_named(pipeline, title).movie_id, c) for c in studios), title
    inside_out_2011 = [m for m in pipeline.catalogue.movies if m.title == "Inside Out" and m.year == 2011]
    assert inside_out_2011 and not facts.satisfies(inside_out_2011[0].movie_id, pixar)
    # refused, a studio keeps out the rest of its movies' series, which the KG may not credit to it
    # (Cars 3 of 2009 is a namesake in Cars' series), and the movies the KG credits to no studio
    # whose director makes the studio's movies (DreamWorks' Megamind: Tom McGrath)
    dreamworks = Constraint("studio", "dreamworks", "studio: DreamWorks")
    cars_2009 = [m for m in pipeline.catalogue.movies if m.title == "Cars 3" and m.year == 2009][0].movie_id
    assert not facts.satisfies(cars_2009, pixar) and facts.refused_mask(pixar)[pipeline.catalogue.index(cars_2009)]
    assert not facts.refused_mask(pixar)[pipeline.catalogue.index(movie_named(pipeline, "Shrek").movie_id)]
    megamind = movie_named(pipeline, "Megamind").movie_id
    assert not facts.studios.get(megamind) and megamind in facts.studio_by_director("dreamworks")
    assert facts.refused_mask(dreamworks)[pipeline.catalogue.index(megamind)]
    inferred = facts.studio_by_director("dreamworks")
    assert all(not facts.studios.get(m) for m in inferred)
    assert not facts.studio_by_director("lionsgate")  # a distributor's directors work anywhere
    assert not facts.studio_by_director("pixar")  # a listed filmography needs no guess
    # an animated movie the KG credits only to Disney's distribution arm is Disney's (Moana); a
    # live-action one that arm released is not (Pretty Woman, a Touchstone film)
    for title in ("Moana", "Ratatouille"):
        assert facts.satisfies(movie_named(pipeline, title).movie_id, disney), title
    assert not facts.satisfies(movie_named(pipeline, "Pretty Woman").movie_id, disney)
    assert not facts.satisfies(movie_named(pipeline, "Moana").movie_id, pixar)
    top = [m for m, _ in chat(pipeline, "I want an animated movie, but not Disney or Pixar")[0].details.ranking[:10]]
    assert top and not any(facts.refused_mask(c)[pipeline.catalogue.index(m)] for m in top for c in (pixar, disney))
    assert movie_named(pipeline, "Moana").movie_id not in top
    top = [m for m, _ in chat(pipeline, "I want an animated movie, but nothing from Pixar")[0].details.ranking[:3]]
    assert top and not any(facts.refused_mask(pixar)[pipeline.catalogue.index(m)] for m in top)


def test_comic_adaptations_are_their_publishers(pipeline, reader, facts):
    # DBpedia credits Black Panther, Thor: Ragnarok and The Dark Knight to no Marvel or DC company:
    # their series stems and the comics' creators among the writers make them the publisher's
    from crs.rec.request import comic_publishers

    assert comic_publishers(Movie(1, "Thor: Ragnarok", 2017, 1, genres=("action", "adventure", "comedy"))) == ["marvel"]
    assert comic_publishers(Movie(2, "Justice League Dark", 2017, 1, genres=("action",), writers=("Jack Kirby",))) == ["dc"]
    assert comic_publishers(Movie(3, "Ant Kingdom", 2019, 1, genres=("animation",), writers=("Stan Lee",))) == ["marvel"]
    assert comic_publishers(Movie(3, "Ant Kingdom", 2019, 1, genres=("animation",), writers=("Stan Lee",)), creators=False) == []
    assert comic_publishers(Movie(4, "The Black Panther", 1977, 1, genres=("crime", "thriller"))) == []  # a namesake
    assert comic_publishers(Movie(5, "Blade Runner", 1982, 1, genres=("sci-fi",))) == []  # not the Blade series
    marvel, dc = Constraint("studio", "marvel", "studio: Marvel"), Constraint("studio", "dc", "studio: DC")
    for title, studio in (("Black Panther", marvel), ("Thor: Ragnarok", marvel), ("Logan", marvel), ("The Dark Knight", dc),
                          ("Wonder Woman", dc)):
        assert facts.satisfies(movie_named(pipeline, title).movie_id, studio), title
    for text, wanted, unwanted in (("any good DC movies?", {"studio: DC"}, set()),
                                   ("a superhero movie but not Marvel or DC", {"genre: Superhero"}, {"studio: Marvel", "studio: DC"}),
                                   ("a thriller set in Washington DC", {"genre: Thriller", "setting: Washington, D.C."}, set())):  # a place, no studio
        got_wanted, got_unwanted, _ = read(pipeline, reader, text)
        assert (got_wanted, got_unwanted) == (wanted, unwanted), text
    top = [m for m, _ in chat(pipeline, "I want a superhero movie, but nothing from Marvel")[0].details.ranking[:5]]
    assert top and not any(facts.refused_mask(marvel)[pipeline.catalogue.index(m)] for m in top)


def test_retrieved_replies_claim_only_what_the_facts_hold(pipeline, facts):
    # A studio, country or series named in a retrieved reply must be the recommended movie's; awards,
    # ratings and box office cannot be checked, so such replies never answer.
    from crs.serve.pipeline import UNCHECKABLE_RE

    nemo = movie_named(pipeline, "Finding Nemo").movie_id
    zootopia = movie_named(pipeline, "Zootopia").movie_id
    assert pipeline.fits_origin(nemo, "I love Pixar movies like [REC]") and not pipeline.fits_origin(zootopia, "Pixar movies like [REC]")
    toy3 = movie_named(pipeline, "Toy Story 3").movie_id
    lonely = next(m.movie_id for m in pipeline.catalogue.movies if facts.franchise_constraint(m.movie_id, strict=True) is None)
    assert pipeline.fits_origin(toy3, "the sequel [REC] is great") and not pipeline.fits_origin(lonely, "It is the prequel to [REC]")
    assert pipeline.fits_origin(lonely, "[REC] is great")
    assert not pipeline.fits_origin(lonely, "Have you seen [REC] or any of that series?")
    assert pipeline.fits_origin(toy3, "Have you seen [REC] or any of that series?")
    assert not pipeline.fits_origin(lonely, "Then go check out the first one [REC].") and pipeline.fits_origin(toy3, "the first one [REC] too")
    assert pipeline.fits_origin(lonely, "[REC] was the first one I thought of")
    # two films that share only a title are a remake and its original, not a series
    heist = max((m for m in pipeline.catalogue.movies if m.title == "Heist"), key=lambda m: m.mentions).movie_id
    assert facts.franchise_constraint(heist, strict=True) is not None
    assert not pipeline.fits_origin(heist, "Have you seen [REC] or any of that series?")
    assert pipeline.fits_origin(heist, "[REC] is a remake, but a good one")
    for text in ("It won the Oscar for Best Picture", "Rotten Tomatoes gives it 92%", "an academy award winner", "top box office sales",
                 "A favorite of mine that is pg-13", "no it is rated pg13", "good choice and 4 hours long too", "it runs about 90 minutes"):
        assert UNCHECKABLE_RE.search(text), text
    assert not UNCHECKABLE_RE.search("It is a great movie, I loved the ending")
    assert not UNCHECKABLE_RE.search("I watched it in 2 hours with my page open")
    filter_ = pipeline.claim_filter([DialogueContext(turns=[Turn(SEEKER, "any animated movie?", [])])], [[(zootopia, 1.0)]])
    assert filter_(0, "How about [REC]?") and not filter_(0, "Pixar movies such as [REC]") and not filter_(0, "[REC] won an Oscar")
    assert not filter_(0, "[REC] is good. I like the two you mentioned as well.")  # the user named no movie
    named = pipeline.claim_filter([DialogueContext(turns=[Turn(SEEKER, "I loved @1 and @2", [1, 2])])], [[(zootopia, 1.0)]])
    assert named(0, "[REC] is good. I like the two you mentioned as well.")
    # a theme must be the movie's: Zootopia is no zombie movie; Dawn of the Dead is one
    assert not filter_(0, "actually in the zombie genre [REC] wasn't bad")
    dawn = movie_named(pipeline, "Dawn of the Dead").movie_id
    assert "zombies" in pipeline.movie(dawn).plot_themes and pipeline.fits_origin(dawn, "in the zombie genre [REC] wasn't bad")



def test_retrieved_replies_claim_shared_people_and_series_only_where_they_hold(pipeline, facts):
    # "by the same director" only where a movie of the reply shares a director with another of the
    # reply or of the conversation; "the franchise" not for a film ReDial merely lists twice.
    from crs.serve.pipeline import SAME_PEOPLE_CLAIM_RE

    inception, prestige = movie_named(pipeline, "Inception").movie_id, movie_named(pipeline, "The Prestige").movie_id
    notting = movie_named(pipeline, "Notting Hill").movie_id
    claim = SAME_PEOPLE_CLAIM_RE.search("You might like [REC], by the same director.")
    assert claim is not None and claim.lastgroup == "director"
    talked = DialogueContext(turns=[Turn(SEEKER, "I loved Inception", [inception])], mentioned_movies=[inception])
    assert pipeline.shares_people(talked, [(prestige, 1.0)], 1, claim)
    assert not pipeline.shares_people(talked, [(notting, 1.0)], 1, claim)
    assert pipeline.shares_people(DialogueContext(turns=[]), [(inception, 1.0), (prestige, 0.5)], 2, claim)  # within the reply
    actor = SAME_PEOPLE_CLAIM_RE.search("the same actor is in [REC]")
    both = bool(facts.people[inception]["actor"] & facts.people[prestige]["actor"])  # Michael Caine
    assert actor.lastgroup == "actor" and pipeline.shares_people(talked, [(prestige, 1.0)], 1, actor) == both
    assert SAME_PEOPLE_CLAIM_RE.search("it is not the same thing") is None
    groundhog = [m.movie_id for m in pipeline.catalogue.movies if m.title == "Groundhog Day"]
    assert len(groundhog) == 2 and facts.distinct_films(groundhog) == 1  # listed with and without its year
    assert not pipeline.fits_origin(groundhog[0], "Do you like the [REC] franchise?")
    assert facts.franchise_constraint(movie_named(pipeline, "Toy Story").movie_id, strict=True) is not None


def test_retrieved_replies_never_talk_about_the_crowd_task(pipeline):
    # ReDial's recommenders were crowd workers: a stored reply about the task ("this HIT is done",
    # "should we submit?") or pointing elsewhere ("you can google it") never answers a user.
    from crs.serve.pipeline import TASK_TALK_RE

    for text in ("gotta go this hit is done", "I'll tell you next round. This HITs complete.", "i have done 50 of these hits",
                 "It won't let me submit.. lol", "just fill in the movie forms on the right", "i love MTURK!!",
                 "first time with this survey", "It was a movie you can google it"):
        assert TASK_TALK_RE.search(text), text
    for text in ("That movie was a big hit", "It was a box office hit", "This hit movie from 2010 is great", "It is hit or miss",
                 "See it when it hits theaters", "I hope to see your comics in movie form", "He submits to the villain in the end"):
        assert not TASK_TALK_RE.search(text), text
    nemo = movie_named(pipeline, "Finding Nemo").movie_id
    filter_ = pipeline.claim_filter([DialogueContext(turns=[Turn(SEEKER, "any animated movie?", [])])], [[(nemo, 1.0)]])
    assert filter_(0, "How about [REC]? I loved it") and not filter_(0, "How about [REC]? gotta submit now")

def test_a_movie_that_is_a_request():
    from crs.serve.pipeline import explicit_request

    for text in ("what's a movie that will make me think?", "a film that makes me cry", "what is a good movie for tonight"):
        assert explicit_request(DialogueContext(turns=[Turn(SEEKER, text, [])])), text


def test_a_movie_without_a_title_is_never_suggested(pipeline):
    # ReDial lists two movies with no name (" (2007)", " (2015)"): the chat cannot name them.
    untitled = pipeline.untitled
    assert untitled and all(not pipeline.catalogue.movies[i].title.strip() for i in untitled)
    ids = {pipeline.catalogue.movies[i].movie_id for i in untitled}
    results = chat(pipeline, "What are some movies with Scarlett Johansson?", "another one", "more please")
    for result in results:
        assert result.items and not ids & {m for m, _ in result.details.ranking}, result.reply
        assert " (20" not in result.reply[:4] and "  (" not in result.reply


def test_retrieved_praise_of_a_movie_needs_a_movie_to_praise(pipeline):
    # "That's a good one" praises the movie just named: it may open a reply to a turn that names a
    # movie or answers one the recommender suggested, never one that names none.
    from crs.serve.pipeline import PRAISE_OPENING_RE, movie_just_named

    for text in ("That is a good one. I also recommend [REC]", "Good choice!", "oh I love that movie! Have you seen [REC]?",
                 "Yes, that was a great movie.", "That one is pretty good. what about [REC]?"):
        assert PRAISE_OPENING_RE.match(text), text
    for text in ("How about [REC]?", "That's great, enjoy!", "Great, have you seen [REC]?", "Great movies like [REC] are rare"):
        assert not PRAISE_OPENING_RE.match(text), text
    nemo = movie_named(pipeline, "Finding Nemo").movie_id
    coco = movie_named(pipeline, "Coco").movie_id
    none_named = DialogueContext(turns=[Turn(SEEKER, "I love animated movies but I've seen them all", [])])
    user_named = DialogueContext(turns=[Turn(SEEKER, "I liked Coco", [coco])])
    answers_one = DialogueContext(turns=[Turn(RECOMMENDER, "Have you seen Coco?", [coco]), Turn(SEEKER, "yes, loved it", [])])
    assert not movie_just_named(none_named) and movie_just_named(user_named) and movie_just_named(answers_one)
    filter_ = pipeline.claim_filter([none_named, user_named, answers_one], [[(nemo, 1.0)]] * 3)
    assert not filter_(0, "That is a good one. Have you seen [REC]?") and filter_(0, "Have you seen [REC]?")
    assert filter_(1, "That is a good one. Have you seen [REC]?") and filter_(2, "That is a good one. Have you seen [REC]?")


def test_retrieved_replies_take_a_movie_for_a_suggestion_only_when_the_user_named_one(pipeline):
    # "I'll have to check it out" / "I haven't seen that one" answer a movie the user brought up;
    # after a turn that names none (or only the recommender's own suggestion) they make no sense.
    from crs.serve.pipeline import new_to_me, user_named_movie

    for text in ("Cool! I will have to check it out.", "i have not seen that one. have you seen [REC]", "Ok. Will check that one out",
                 "I haven't seen either of those.", "Thanks for the recommendation!", "Never heard of it, sorry",
                 "I have seen that one yet. I love the original though.", "No, haven't heard of [REC] ...", "Never seen it"):
        assert new_to_me(text), text
    for text in ("You should check it out!", "I think you should check it out", "You will have to check it out",
                 "I have seen it, it is great", "Have you seen [REC]?", "Thanks for chatting!",
                 "If you haven't seen [REC], you should", "You have never seen it? It is great", "Haven't you seen [REC]?"):
        assert not new_to_me(text), text
    nemo = movie_named(pipeline, "Finding Nemo").movie_id
    coco = movie_named(pipeline, "Coco").movie_id
    user_named = DialogueContext(turns=[Turn(SEEKER, "Have you seen Coco?", [coco])])
    suggested = DialogueContext(turns=[Turn(RECOMMENDER, "Have you seen Coco?", [coco]), Turn(SEEKER, "I don't like Pixar", [])])
    assert user_named_movie(user_named) and not user_named_movie(suggested)
    filter_ = pipeline.claim_filter([user_named, suggested], [[(nemo, 1.0)]] * 2)
    reply = "I haven't seen that one. I will check it out. How about [REC]?"
    assert filter_(0, reply) and not filter_(1, reply) and filter_(1, "How about [REC]?")


def test_retrieved_replies_call_only_a_recent_movie_the_new_one(pipeline):
    from crs.serve.pipeline import NEW_MOVIE_RE

    assert NEW_MOVIE_RE.search("Have you seen the new [REC]?") and NEW_MOVIE_RE.search("What about the latest [REC]")
    assert not NEW_MOVIE_RE.search("Have you seen [REC]? It's new to me") and not NEW_MOVIE_RE.search("a new favorite, [REC]")
    memento = movie_named(pipeline, "Memento").movie_id  # 2000
    recent = max(pipeline.catalogue.movies, key=lambda m: m.year or 0).movie_id
    context = DialogueContext(turns=[Turn(SEEKER, "a thriller please", [])])
    filter_ = pipeline.claim_filter([context, context], [[(memento, 1.0)], [(recent, 1.0)]])
    assert not filter_(0, "Have you seen the new [REC]?") and filter_(0, "Have you seen [REC]?")
    assert filter_(1, "Have you seen the new [REC]?")


def test_who_else_is_in_it_asks_for_the_cast(pipeline, facts):
    movie = movie_named(pipeline, "Liar Liar")
    for text in ("Who else is in it?", "who else stars in it?", "Who's in it?"):
        answer = answer_question(text, pipeline.link(text), facts, [movie.movie_id])
        assert answer is not None and answer.asked == "cast" and answer.text.startswith(f"{movie.display_name} stars "), text


def test_which_one_chooses_among_the_movies_just_suggested(pipeline, facts, reader):
    # "Which one is the funniest?" asks to choose among the suggestions, not for another comedy: the
    # answer names one of them by its facts (the first with the genre; "least", the first without),
    # says so when none has it, and no new movie follows.
    hangover, jaws, alien = (movie_named(pipeline, t) for t in ("The Hangover", "Jaws", "Alien"))
    assert "comedy" in hangover.genres and "comedy" not in jaws.genres + alien.genres
    suggested = [jaws.movie_id, hangover.movie_id]
    for text in ("which one is the funniest?", "Which of them is funnier?", "ok which one would make me laugh?"):
        answer = answer_question(text, pipeline.link(text), facts, suggested)
        assert answer is not None and answer.asked == "which" and answer.movie == hangover.movie_id, text
        assert hangover.display_name in answer.text, text
        assert not reader.read_turn(text, pipeline.link(text)).wanted, text  # no request for a comedy
    answer = answer_question("which one is the least funny?", [], facts, suggested)
    assert answer.movie == jaws.movie_id and "not a comedy movie" in answer.text
    answer = answer_question("which is funnier?", [], facts, [jaws.movie_id, alien.movie_id])
    assert answer.text.startswith("Neither is a comedy movie")
    answer = answer_question("which one would you pick?", [], facts, suggested)
    assert answer.movie == jaws.movie_id and answer.text.startswith(f"I'd go with {jaws.display_name}")
    # a question naming two movies chooses between them
    text = "I love Jaws and The Hangover, which one is funnier?"
    assert answer_question(text, pipeline.link(text), facts).movie == hangover.movie_id
    # other "which" questions are not comparisons
    assert answer_question("which genre is it?", [], facts, suggested).asked == "genre"
    assert answer_question("which one is the funniest?", [], facts, [jaws.movie_id]) is None  # one movie: nothing to choose
    # in a chat: the reply is the choice, no new movie
    history = [{"role": "user", "content": "Suggest a couple of movies"},
               {"role": "assistant", "content": f"Have you seen {jaws.display_name}? Or {hangover.display_name}?"},
               {"role": "user", "content": "which one is the funniest?"}]
    reply = pipeline.respond(history)
    assert reply.text.startswith(hangover.display_name) and not reply.items


def test_retrieved_replies_call_a_movie_similar_only_to_one_the_user_named(pipeline):
    # "That seems similar" needs a movie the user named; "they were all good ones" needs two movies
    # (the reply's own slots or the last two turns'); "the original" needs a movie with a series.
    allowed = reply_allowed(pipeline)

    no_movie = [{"role": "user", "content": "Anything by Christopher Nolan?"}]
    named = [{"role": "user", "content": "I loved The Matrix and Inception, anything else?"}]
    for reply in ("How about [REC] ? That seems similar.", "[REC] is along the same lines", "Try [REC], it's kind of like that one"):
        assert not allowed(no_movie, reply) and allowed(named, reply), reply
    assert allowed(no_movie, "[REC] is similar to [REC] .")  # names both
    for reply in ("How about [REC] ? They were all good ones.", "[REC] , both are really great!", "I loved them both. Try [REC]"):
        assert not allowed(no_movie, reply) and allowed(named, reply), reply
    assert allowed(no_movie, "Have you seen [REC] or [REC] ? Both are really great!")


def test_no_praise_right_after_the_user_disliked_a_movie(pipeline):
    allowed = reply_allowed(pipeline)

    titanic = movie_named(pipeline, "Titanic").display_name
    base = [{"role": "user", "content": "What do you think of Titanic?"}, {"role": "assistant", "content": f"{titanic} is a drama."}]
    liked = base + [{"role": "user", "content": "I loved it! Something else?"}]
    disliked = base + [{"role": "user", "content": "I didn't like it much. Something else?"}]
    for reply in ("Such a great movie. [REC] is another good one.", "It's one of my favorites. What about [REC] ?",
                  "That's a great one! Have you seen [REC] ?", "It was great, also [REC] was really good"):
        assert allowed(liked, reply) and not allowed(disliked, reply), reply
    assert allowed(disliked, "What about [REC] ?")


def test_how_long_is_it_is_not_guessed(pipeline, facts):
    movie = movie_named(pipeline, "Good Will Hunting")
    for text in ("Is that one long?", "how long is it?", "what's the running time?"):
        answer = answer_question(text, pipeline.link(text), facts, [movie.movie_id])
        assert answer is not None and answer.asked == "length" and not answer.known, text
        assert answer.text == f"I don't know how long {movie.display_name} runs: my catalogue has no running times."


def test_the_second_one_means_that_one_of_the_movies_suggested(pipeline, facts):
    # "tell me about the second one", "who directed the first one?": the movie at that place in the
    # latest recommender turn that suggested several, even after an answer about one of them.
    pretty, wedding = movie_named(pipeline, "Pretty Woman"), movie_named(pipeline, "My Best Friend's Wedding")
    history = [{"role": "user", "content": "I like romantic comedies with Julia Roberts"},
               {"role": "assistant", "content": f"Have you seen {pretty.display_name} or {wedding.display_name}?"},
               {"role": "user", "content": "tell me about the second one"}]
    reply = pipeline.respond(history)
    assert reply.text.startswith(f"{wedding.display_name} is ") and not reply.items
    history += [{"role": "assistant", "content": reply.text}, {"role": "user", "content": "who directed the first one?"}]
    assert pipeline.respond(history).text.startswith(f"{pretty.display_name} was directed by")
    for text, movie in (("what year is the last one from?", wedding), ("who stars in the former?", pretty)):
        answer = answer_question(text, pipeline.link(text), facts, [pretty.movie_id, wedding.movie_id])
        assert answer is not None and answer.movie == movie.movie_id, text
    assert answer_question("tell me about the third one", [], facts, [pretty.movie_id, wedding.movie_id]) is None


def test_age_ratings_are_not_guessed(pipeline, facts):
    coco = movie_named(pipeline, "Coco")
    for text in ("what's it rated?", "what is the age rating?", "Is that one rated R?"):
        answer = answer_question(text, pipeline.link(text), facts, [coco.movie_id])
        assert answer is not None and answer.asked == "rating" and not answer.known, text
        assert answer.text.startswith(f"I don't know the age rating of {coco.display_name}: my catalogue has no ratings; it is an animation")


def test_misspelt_requests_in_the_chat(pipeline, facts):
    horror = next(e.entity for e in pipeline.link("a horror movie") if e.kind == "genre")
    reply = pipeline.respond([{"role": "user", "content": "Can u recomend a scary movi?"}])
    assert reply.items and facts.has_genre(reply.items[0], horror), reply.text


def test_is_it_any_good_describes_the_movie_just_suggested(pipeline):
    movie = movie_named(pipeline, "Groundhog Day")
    history = [{"role": "user", "content": "I want a comedy"},
               {"role": "assistant", "content": f"Have you ever seen {movie.display_name}?"}]
    for question in ("is it any good?", "is that one worth watching?", "why do you like it?"):
        reply = pipeline.respond(history + [{"role": "user", "content": question}])
        assert reply.text.startswith(f"{movie.display_name} is a comedy") and not reply.items, question


def test_retrieved_replies_agree_wish_and_praise_only_what_the_user_said(pipeline):
    allowed = reply_allowed(pipeline)

    gump = movie_named(pipeline, "Forrest Gump").display_name
    asked = [{"role": "user", "content": "Any good documentaries?"}]
    taste = [{"role": "user", "content": "I love horror movies"}]
    for reply in ("[REC] is a good one. Me too.", "Yes they do. Have you seen [REC]?", "Same here! [REC] is scary"):
        assert not allowed(asked, reply) and allowed(taste, reply), reply
    thanked = [{"role": "user", "content": "Something funny"}, {"role": "assistant", "content": f"Have you seen {gump}?"},
               {"role": "user", "content": "thanks, I will watch it"}]
    wished = thanked[:2] + [{"role": "user", "content": "Thanks, have a good night!"}]
    assert not allowed(thanked, "You too, bye!") and allowed(wished, "You too, bye!")
    # "another good one" ranks a movie beside one named and not run down.
    hated = [{"role": "user", "content": "I hated Titanic. Suggest something better"}]
    loved = [{"role": "user", "content": "I loved Titanic. Suggest something else"}]
    assert not allowed(hated, "[REC] is another good one.") and allowed(loved, "[REC] is another good one.")
    assert not allowed([{"role": "user", "content": "Suggest a movie"}], "[REC] is another good one.")
    # Praise of the movie just suggested answers a turn that speaks of it, not a request for another kind.
    other_kind = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": f"Have you seen {gump}?"},
                  {"role": "user", "content": "maybe an action one"}]
    seen = other_kind[:2] + [{"role": "user", "content": "yes, loved it"}]
    for reply in ("I really liked it. I also really like [REC]", "That's a great one! How about [REC]?", "Thats a great movie. Try [REC]"):
        assert not allowed(other_kind, reply) and allowed(seen, reply), reply
    # "You've seen it" answers a user who said they saw it; "have you seen it?" asks.
    said_seen = other_kind[:2] + [{"role": "user", "content": "I've seen that one, anything else?"}]
    reply = "[REC] is very different. Oh, you've seen it, awesome."
    assert not allowed(other_kind, reply) and allowed(said_seen, reply)
    assert not allowed(other_kind[:2] + [{"role": "user", "content": "I haven't seen that one, anything else?"}], reply)
    assert allowed(other_kind, "How about [REC]? Have you seen it?")
    # An opening that answers a question ("Very!") answers a turn that asks one.
    asked_good = other_kind[:2] + [{"role": "user", "content": "is it scary?"}]
    for reply in ("Very! How about [REC]?", "Definitely. [REC] is another one"):
        assert not allowed(other_kind, reply) and allowed(asked_good, reply), reply


def test_retrieved_replies_answer_thanks_only_after_thanks_and_never_claim_the_user_likes_a_new_movie(pipeline):
    allowed = reply_allowed(pipeline)
    gump = movie_named(pipeline, "Forrest Gump").display_name
    seen = [{"role": "user", "content": "Something funny"}, {"role": "assistant", "content": f"Have you seen {gump}?"},
            {"role": "user", "content": "I've seen it"}]
    thanked = seen[:2] + [{"role": "user", "content": "Thanks! Anything else like it?"}]
    for reply in ("Another good movie would be [REC]! Your welcome thank you!", "You're very welcome, try [REC]"):
        assert not allowed(seen, reply) and allowed(thanked, reply), reply
    # The slot takes a movie the user never named: "as you like [REC]" is never true; "if you like" is no claim.
    request = [{"role": "user", "content": "I want a sci-fi movie"}]
    assert not allowed(request, "And as you like [REC] you can check it out")
    assert not allowed(request, "You said you loved [REC], so try it")
    assert allowed(request, "If you like space, [REC] is great")
    # An answer or a correction after the first words answers another dialogue's turn.
    for reply in ("[REC] should be good Yes, wasn't violent to me.", "[REC] is great. No, it is not long",
                  "[REC] is good. Sorry I mean [REC]"):
        assert not allowed(request, reply), reply
    assert allowed(request, "Yes, [REC] is a great one")
    # "Yes [REC] was great" agrees about the slot's movie: not after the user named one or asked nothing.
    named_one = [{"role": "user", "content": f"have you seen {gump}? i want something as good"}]
    told = [{"role": "user", "content": "Something funny"}, {"role": "assistant", "content": f"Have you seen {gump}?"},
            {"role": "user", "content": "no I have not"}]
    for reply in ("Yes [REC] was great have you seen it?", "Yes! [REC] is really good", "Definitely, [REC] is worth it"):
        assert not allowed(named_one, reply) and not allowed(told, reply) and allowed(request, reply), reply
    # Joy of several movies after one.
    matrix = movie_named(pipeline, "The Matrix").display_name
    one = [{"role": "user", "content": "Something funny"}, {"role": "assistant", "content": f"Have you seen {gump}?"},
           {"role": "user", "content": "thanks!"}]
    two = [one[0], {"role": "assistant", "content": f"Have you seen {gump} or {matrix}?"}, one[2]]
    assert not allowed(one, "I hope you enjoy them!") and allowed(two, "I hope you enjoy them!")
    # Leave-taking answers a user who takes leave or thanks, not "I've seen it".
    assert not allowed(seen, "I hope you enjoy [REC] goodbye.") and allowed(thanked[:2] + [{"role": "user", "content": "thanks, bye"}],
                                                                              "I hope you enjoy it, goodbye.")


def test_farewells_thank_only_when_thanked_and_retrieved_ones_take_leave(pipeline):
    from crs.gen.reply import fits_turn
    from crs.serve.pipeline import FAREWELL, FAREWELL_UNTHANKED, farewell

    def context(text):
        return pipeline.context([{"role": "user", "content": text}])[0]

    assert farewell(context("perfect, thanks!")) == FAREWELL and farewell(context("sounds good")) == FAREWELL_UNTHANKED
    assert "welcome" not in FAREWELL_UNTHANKED.lower()
    assert not fits_turn("Yeah that's true", recommends=False, goal="farewell")
    assert fits_turn("Have a good day! Bye", recommends=False, goal="farewell")
    assert fits_turn("Yeah that's true", recommends=False, goal="chat")
    # "thanks, I will watch it" closes the chat: no more movies.
    first = chat_turn(pipeline, "Something scary please", ChatState())
    result = chat_turn(pipeline, "thanks, I will watch it", first.state)
    assert result.details.goal == "farewell" and not result.items, result.reply


def test_a_reply_calls_a_movie_older_only_when_it_is(pipeline, reader):
    from crs.rec.request import OLDER_BEFORE

    assert reader.year_claims("It's older but it was really good") == [(None, OLDER_BEFORE - 1)]
    assert reader.year_claims("it's older than that one") == []


@pytest.mark.parametrize("text, key", [("Can you recommend a movie set in Paris?", "paris"),
                                       ("I want a comedy that takes place in New York", "new york"),
                                       ("something set in Chicago please", "chicago"),
                                       ("any horror movies set in a small town?", "small towns"),
                                       ("a thriller in London", "london")])
def test_a_setting_asked_for_is_met_by_the_plot(pipeline, reader, facts, text, key):
    _, _, turn = read(pipeline, reader, text)
    wanted = turn.wanted
    setting = next(c for c in wanted if c.kind == "theme")
    assert setting.value == key and setting.label.startswith("setting: ") and setting.phrase.startswith("set in ")
    assert not turn.liked  # "set in Chicago": the city, not Chicago (2002)
    result = chat(pipeline, text)[0]
    assert result.items and all(facts.satisfies(m, setting) for m in result.items), result.reply
    assert not result.details.request.relaxed


def test_a_setting_needs_a_cue_and_can_be_turned_down(pipeline, reader, facts):
    wanted, _, _ = read(pipeline, reader, "I went to Paris last year, any good action movies?")
    assert wanted == {"genre: Action"}  # a place the user went to is no request
    first, second = chat(pipeline, "a thriller set in London", "not set in London, somewhere else")
    london = next(c for c in second.details.request.unwanted if c.kind == "theme")
    assert london.value == "london" and second.items
    assert not any(facts.satisfies(m, london) for m in second.items), second.reply


@pytest.mark.parametrize("second", ["he's seen all of those, someone else", "Something with a different actor please",
                                    "my dad has seen all of them"])
def test_the_person_asked_for_is_turned_down_after_seen_them_all_or_someone_else(pipeline, facts, second):
    first, then = chat(pipeline, "my dad loves westerns with clint eastwood", second)
    eastwood = next(c for c in first.details.request.wanted if c.kind == "person")
    assert first.items and facts.satisfies(first.items[0], eastwood)
    request = then.details.request
    assert eastwood in request.unwanted and eastwood not in request.wanted
    assert any(c.label == "genre: Western" for c in request.wanted)  # the rest of the request stands
    assert then.items and not any(facts.satisfies(m, eastwood) for m in then.items), then.reply


@pytest.mark.parametrize("text", ["There's also [REC] that's out right now.", "[REC], which's playing now", "[REC] is out now"])
def test_a_reply_calls_a_movie_showing_now_only_when_it_is_new(pipeline, reader, text):
    assert reader.year_claims(text) == [reader.showing_years()]
    assert reader.year_claims("I'd check out [REC] now") == []


@pytest.mark.parametrize("question", ["what's your favorite movie?", "What is the best film you've ever seen?"])
def test_asked_for_its_own_favourite_the_chat_names_a_movie(pipeline, question):
    result = chat(pipeline, question)[0]
    assert result.items and pipeline.movie(result.items[0]).display_name in result.reply, result.reply
    assert "what kind of" not in result.reply.lower(), result.reply
