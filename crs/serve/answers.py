"""Questions about a movie answered from knowledge-graph facts, never invented.

A user turn that asks who directed, wrote or stars in a movie, what genre it is, when it came
out, how long it runs or how it is rated (the catalogue has neither running times nor age
ratings: the answer says so), and names (links) the movie or refers to the last recommended one
("who directed it?", "tell me about the second one"), is answered from the catalogue metadata and
the KG's edges (:class:`crs.rec.request.MovieFacts`). When neither holds the fact, the answer says
so; metadata that ``movie_info.json`` shares between two different films
(:func:`crs.rec.request.suspect_metadata`) is believed only for a movie that DBpedia itself links;
for the other the answer says it does not know. The turn's other words decide what follows: a
request for a recommendation gets one after the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Sequence

from crs.rec.request import _ATTRIBUTE_RE, _BARE_GENRE_RE, ATTRIBUTE_GENRES, WHICH_RE, YES_NO_RE, Constraint, MovieFacts, RequestReader
from kg.graph import MOVIE, base_name
from kg.lexicon import GENRE_WORDS
from kg.linker import LinkedEntity

# What is asked → the pattern that asks it (matched on the user's text, apostrophes folded).
QUESTIONS = {
    "director": re.compile(r"\bwho\s+(?:directed|direct|made|was\s+the\s+director|is\s+the\s+director|were\s+the\s+directors)\b|"
                           r"\b(?:director|directors)\s+of\b|\bwho'?s\s+the\s+director\b|\bdirected\s+by\s+(?:who|whom)\b", re.I),
    "writer": re.compile(r"\bwho\s+(?:wrote|penned|was\s+the\s+writer|is\s+the\s+writer)\b|\b(?:writer|writers|screenwriter)\s+of\b|"
                         r"\bwritten\s+by\s+(?:who|whom)\b", re.I),
    "cast": re.compile(r"\bwho\s+(?:else\s+)?(?:is|was|are|were|stars|starred|plays|played|acts|acted)\s+in\b|\bwho'?s\s+(?:else\s+)?in\b|"
                       r"\b(?:any|which|what)\s+(?:famous\s+|big\s+|well\s+known\s+)?(?:actors|actresses|stars)\b|"
                       r"\b(?:cast|actors|actresses|stars)\s+(?:of|in)\b|\bwho\s+(?:stars|starred)\b|\bwho\s+is\s+the\s+(?:lead|star)\b", re.I),
    "genre": re.compile(r"\bwhat\s+(?:genre|kind\s+of\s+(?:movie|film)|type\s+of\s+(?:movie|film))\b|\bgenre\s+of\b|"
                        r"\bwhich\s+genre\b", re.I),
    # The catalogue holds no running times: asked, the answer says so rather than guess.
    "length": re.compile(r"\bhow\s+long\s+(?:is|was)\b|\b(?:is|was)\s+(?:it|that|this|that\s+one|this\s+one|the\s+(?:movie|film))\s+"
                         r"(?:too\s+|very\s+|really\s+|pretty\s+|kind\s+of\s+)?(?:long|short)\b|\b(?:run\s*time|running\s+time)\b|"
                         r"\bhow\s+many\s+(?:hours|minutes)\b", re.I),
    # Nor age ratings: the answer says so and gives the genres, which the catalogue holds.
    "rating": re.compile(r"\bwhat(?:'s|\s+is|\s+was)\s+(?:it|that|this)(?:\s+one|\s+movie|\s+film)?\s+rated\b|"
                         r"\bwhat(?:'s|\s+is)\s+(?:the|its)\s+(?:age\s+|mpaa\s+)?rating\b|\b(?:is|was)\s+(?:it|that|this)(?:\s+one)?\s+rated\b|"
                         r"\b(?:age|mpaa)\s+rating\b", re.I),
    "year": re.compile(r"\bwhen\s+(?:was|did|is)\b.*\b(?:come\s+out|came\s+out|released|release|made|out)\b|\bwhat\s+year\b|"
                       r"\b(?:release\s+date|release\s+year)\b|\bhow\s+old\s+is\b", re.I),
}


# Asking for an opinion of a movie named in the turn ("what do you think of X?", "is X any good?",
# "have you seen X?", "tell me about X"): answered with what the movie is (genres, director, stars),
# never with an invented opinion, and a recommendation follows. Of the movie just suggested ("is it
# any good?", "is that one worth watching?"): the same answer, and no other movie follows unasked.
OPINION_RE = re.compile(
    r"\bwhat\s+(?:do|did|would)\s+you\s+think\s+(?:of|about)\b|\bhow\s+(?:good\s+)?(?:is|was)\b|\bany\s+good\s*\?|"
    r"(?:^|[.!?,;]\s*)(?:so\s+|and\s+|but\s+)?is\b[^.!?]*\b(?:any\s+good|good|great|worth\s+(?:it|watching|seeing|a\s+watch|the\s+time))\b[^.!?]*\?|"
    r"\bworth\s+(?:watching|seeing|a\s+watch|the\s+time)\b|\bhave\s+you\s+(?:ever\s+)?(?:seen|watched|heard\s+of)\b|"
    r"\btell\s+me\s+(?:more\s+)?about\b|\bwhat\s+is\b.*\babout\s*\?|\bwhat'?s\b.*\babout\s*\?|\byour\s+(?:opinion|thoughts)\b|"
    r"\bwhy\s+(?:do|did|would)\s+you\s+(?:like|love|enjoy|recommend|suggest|pick|choose)\b", re.I)


# "What's it about?", "tell me more about that one": a question about the movie recommended last,
# answered like an opinion question (what the movie is); no other movie follows unasked.
# "The second one", "the first one you said", "the latter": one of the movies recommended last, by its place.
_ORDINAL_INDEX = {"first": 0, "1st": 0, "former": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "last": -1, "latter": -1}
_ORDINAL_RE = re.compile(r"\bthe\s+(" + "|".join(_ORDINAL_INDEX) + r")\b", re.I)
_ORDINAL = r"the\s+(?:" + "|".join(_ORDINAL_INDEX) + r")(?:\s+(?:one|movie|film))?"
_REFERRED = (r"(?:" + _ORDINAL + r"|it|that|this|that\s+one|this\s+one|the\s+(?:movie|film)|that\s+(?:movie|film)|"
             r"this\s+(?:movie|film))")
ABOUT_RE = re.compile(rf"\bwhat(?:'s|\s+is|\s+was|s)\s+{_REFERRED}\s+about\b|\btell\s+me\s+(?:a\s+(?:bit|little)\s+|more\s+)?about\s+{_REFERRED}\b|"
                      rf"\bwhat\s+happens\s+in\s+{_REFERRED}\b|\bwhat(?:'s|\s+is)\s+the\s+(?:plot|story|premise)\b|\bplot\s*\?", re.I)


@dataclass
class Answer:
    movie: int  # ReDial id of the movie asked about
    asked: str  # one of QUESTIONS, "genre_check" ("is X scary?"), "time_check" ("is it from the 90s?"), "opinion"
    # ("is X any good?"), "about" ("what's it about?") or "which" ("which one is the funniest?")
    text: str  # the answer sentence
    known: bool  # whether the facts held the answer
    follow: bool = False  # a recommendation follows the answer even when none was asked for (opinions)


def join_names(names: Sequence[str]) -> str:
    names = list(dict.fromkeys(n for n in names if n))
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# "it", "that one", "the movie", or the asked part with "the" ("who is the director?", "what's the
# genre?"): the question is about the movie recommended last.
_REFERENCE_RE = re.compile(rf"\b(?:{_REFERRED}|"
                           r"the\s+(?:director|directors|writer|writers|screenwriter|cast|actors|actresses|stars|lead|genre|release\s+date|plot|story|premise|"
                           r"running\s+time|run\s*time|length|(?:age\s+|mpaa\s+)?rating))\b", re.I)


def answer_question(text: str, linked: Sequence[LinkedEntity], facts: MovieFacts, last_recommended: Sequence[int] = (),
                    last_list: Sequence[int] = ()) -> Answer | None:
    """The answer to a factual question about a movie named in ``text`` (or, when it names none and
    says "it" or "that one", the first of ``last_recommended``; "the second one", "the last one":
    that one of ``last_list``, the latest recommender turn that named several, else of
    ``last_recommended``), None when it asks none."""
    plain = text.replace("’", "'")
    asked = [kind for kind, pattern in QUESTIONS.items() if pattern.search(plain)]
    movies = [e.movie_id for e in linked if e.kind == MOVIE and e.movie_id is not None]
    if not asked and WHICH_RE.search(plain):
        among = list(dict.fromkeys(movies)) if len(set(movies)) >= 2 else [m for m in dict.fromkeys(last_recommended) if m in facts.catalogue]
        if len(among) >= 2:
            return which_answer(among, genre_asked(plain), facts, least=bool(_LEAST_RE.search(plain)))
    named = bool(movies)
    if not movies and last_recommended and _REFERENCE_RE.search(plain):
        known = [m for m in dict.fromkeys(last_recommended) if m in facts.catalogue]
        ordinal = _ORDINAL_RE.search(plain)
        if ordinal is None:
            movies = known[:1]
        else:  # "the second one": that place in the latest list of suggestions
            listed = [m for m in dict.fromkeys(last_list) if m in facts.catalogue] or known
            index = _ORDINAL_INDEX[ordinal.group(1).lower()]
            movies = [listed[index]] if -len(listed) <= index < len(listed) else []
    if not movies:
        return None
    if not asked:
        if YES_NO_RE.match(plain):
            asked_genre = genre_asked(plain)  # "is X scary?": from X's genres
            if asked_genre is not None:
                return genre_check(movies[-1], asked_genre, facts)
            asked_years = RequestReader(facts).year_claims(plain)  # "is it from the 90s?": from X's year
            if asked_years:
                return time_check(movies[-1], asked_years, facts)
        if named and OPINION_RE.search(plain):
            return opinion_answer(movies[-1], facts)
        if not named and ABOUT_RE.search(plain):
            return replace(opinion_answer(movies[-1], facts), asked="about", follow=False)
        if not named and OPINION_RE.search(plain):  # "is it any good?" about the movie just suggested: what it is, no other movie
            return replace(opinion_answer(movies[-1], facts), follow=False)
        return None
    movie_id, kind = movies[-1], asked[0]
    movie = facts.catalogue.by_id(movie_id)
    title = movie.display_name
    if kind == "director":
        names = credits(movie_id, "director", facts)
        sentence = f"{title} was directed by {join_names(names)}." if names else f"I don't know who directed {title}."
    elif kind == "writer":
        names = credits(movie_id, "writer", facts)
        sentence = f"{title} was written by {join_names(names)}." if names else f"I don't know who wrote {title}."
    elif kind == "cast":
        names = credits(movie_id, "actor", facts)
        sentence = f"{title} stars {join_names(names[:4])}." if names else f"I don't know who stars in {title}."
    elif kind == "genre":
        genres = movie_genres(movie_id, facts)
        sentence = f"{title} is {article(genres[0])} {join_names(genres)} movie." if genres else f"I don't know the genre of {title}."
    elif kind == "rating":
        genres = movie_genres(movie_id, facts)
        kinds = f"; it is {article(genres[0])} {join_names(genres)} movie" if genres else ""
        sentence = f"I don't know the age rating of {title}: my catalogue has no ratings{kinds}."
    elif kind == "length":
        sentence = f"I don't know how long {title} runs: my catalogue has no running times."
    else:
        sentence = f"{movie.title} came out in {movie.year}." if movie.year else f"I don't know when {movie.title} came out."
    known = not sentence.startswith("I don't know")
    return Answer(movie=movie_id, asked=kind, text=sentence, known=known)


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


_METADATA_ROLES = {"director": "directors", "writer": "writers", "actor": "stars"}


def credits(movie_id: int, role: str, facts: MovieFacts) -> list[str]:
    """The names credited in ``role`` (director, writer, actor) on a movie: the metadata's (stars in
    billing order), else the KG's (directors and writers all, actors the first four by name); none
    for untrusted metadata."""
    if not facts.trusted(movie_id):
        return []
    listed = list(getattr(facts.catalogue.by_id(movie_id), _METADATA_ROLES[role]))
    if listed:
        return listed
    names = sorted(base_name(facts.kg.entity_names[e]) for e in facts.people.get(movie_id, {}).get(role, ()))
    return names[:4] if role == "actor" else names


def movie_genres(movie_id: int, facts: MovieFacts) -> list[str]:
    """The movie's genres in lower case: the metadata's, else the KG's (none for untrusted metadata)."""
    if not facts.trusted(movie_id):
        return []
    genres = [g.lower() for g in facts.catalogue.by_id(movie_id).genres]
    return genres or sorted({base_name(facts.kg.entity_names[g]).lower() for g in facts.genres.get(movie_id, ())})


def genre_asked(text: str) -> str | None:
    """The genre a yes/no question asks about ("scary" → horror, "a comedy" → comedy), or None."""
    found = _ATTRIBUTE_RE.search(text)
    if found:
        return ATTRIBUTE_GENRES[" ".join(found.group(1).lower().split())]
    found = _BARE_GENRE_RE.search(text)
    if found:
        word = found.group(1).lower()
        return next((genre for genre, words in GENRE_WORDS.items() if word in words), word)
    return None


def genre_check(movie_id: int, genre: str, facts: MovieFacts) -> Answer:
    """"Is X scary?": yes or no from the movie's genres, which the answer names."""
    title = facts.catalogue.by_id(movie_id).display_name
    genres = movie_genres(movie_id, facts)
    if not genres:
        return Answer(movie_id, "genre_check", f"I don't know the genre of {title}.", False)
    has = has_genre(genres, genre)
    kinds = f"{article(genres[0])} {join_names(genres)} movie"
    if has:
        text = f"Yes, {title} is {kinds}."
    elif genre == "family" and has_genre(genres, "animation"):  # "is frozen good for kids?": not listed as family, but animated
        text = f"{title} is {kinds}: animated, though my catalogue does not list it as a family movie."
    else:
        text = f"Not really: {title} is {kinds}, not {article(genre)} {genre} movie."
    return Answer(movie_id, "genre_check", text, True)


def time_check(movie_id: int, spans: Sequence[tuple[int | None, int | None]], facts: MovieFacts) -> Answer:
    """"Is it from the 90s?": yes or no from the movie's year, which the answer names."""
    movie = facts.catalogue.by_id(movie_id)
    if not movie.year:
        return Answer(movie_id, "time_check", f"I don't know when {movie.title} came out.", False)
    fits = all(facts.satisfies(movie_id, Constraint("years", span, "")) for span in spans)
    return Answer(movie_id, "time_check", f"{'Yes' if fits else 'No'}, {movie.title} came out in {movie.year}.", True)


def opinion_answer(movie_id: int, facts: MovieFacts) -> Answer:
    """"What do you think of X?": what the movie is (genres, director, stars) from its facts, said
    as facts; a recommendation follows (:attr:`Answer.follow`)."""
    movie = facts.catalogue.by_id(movie_id)
    genres = movie_genres(movie_id, facts)
    directors = credits(movie_id, "director", facts)
    stars = list(movie.stars)[:3] if facts.trusted(movie_id) else []
    parts = [f"{movie.display_name} is {article(genres[0])} {join_names(genres)} movie" if genres else f"{movie.display_name} is a movie"]
    if directors:
        parts.append(f"directed by {join_names(directors[:2])}")
    if stars:
        parts.append(f"starring {join_names(stars)}")
    known = bool(genres or directors or stars)
    text = (", ".join(parts) + ".") if known else f"I don't know much about {movie.display_name}."
    return Answer(movie_id, "opinion", text, known, follow=True)


# "Which one is the least scary?": the genre is what the user wants less of.
_LEAST_RE = re.compile(r"\b(?:least|less|not\s+(?:as|so|too))\b", re.IGNORECASE)


def which_answer(movies: Sequence[int], genre: str | None, facts: MovieFacts, least: bool = False) -> Answer:
    """"Which one is the funniest?" about two or more movies (the ones just suggested, in the order
    suggested, or those the question names): the first that has the genre the question names
    ("funniest": comedy; with ``least``, "the least scary", the first that does not), said with its
    genres; with no genre ("which is better?"), the first, the recommender's own pick. When none
    (or, with ``least``, every one) has the genre, the answer says so; nothing is invented."""
    titles = [facts.catalogue.by_id(m).display_name for m in movies]
    if genre is None:
        genres = movie_genres(movies[0], facts)
        kinds = f", {article(genres[0])} {join_names(genres)} movie" if genres else ""
        return Answer(movies[0], "which", f"I'd go with {titles[0]}{kinds}.", True)
    having = [m for m in movies if has_genre(movie_genres(m, facts), genre)]
    if least and 0 < len(having) < len(movies):
        chosen = next(m for m in movies if m not in having)
        genres = movie_genres(chosen, facts)
        kinds = f"{article(genres[0])} {join_names(genres)} movie" if genres else "a movie"
        return Answer(chosen, "which", f"{facts.catalogue.by_id(chosen).display_name}: it is {kinds}, not {article(genre)} {genre} movie.", True)
    if not having:
        none = "Neither is" if len(movies) == 2 else "None of them is"
        return Answer(movies[0], "which", f"{none} {article(genre)} {genre} movie: {join_names(titles)}.", True)
    chosen = having[0]
    genres = movie_genres(chosen, facts)
    others = "Both are" if len(having) == 2 == len(movies) else ("All of them are" if len(having) == len(movies) else "")
    if others:
        text = f"{others} {genre} movies; I'd go with {facts.catalogue.by_id(chosen).display_name}."
    else:
        text = f"{facts.catalogue.by_id(chosen).display_name}: it is {article(genres[0])} {join_names(genres)} movie."
    return Answer(chosen, "which", text, True)


def has_genre(genres: Sequence[str], genre: str) -> bool:
    """Whether the genre words ``genres`` (lower case) hold ``genre`` ("sci-fi" and "science fiction" alike)."""
    return any(g == genre or g.startswith(genre) or genre.startswith(g) for g in genres)
