"""The chat path's clean-up of generated replies (crs.serve.pipeline) and the scripted chats (crs.eval.chats).

Pure functions are tested on hand-made strings and a tiny graph; the rest on the bundled checkpoint,
once with a scripted generator (deterministic replies, the real recommender, linker and KG) and once
with the real generator on the ten openers of prompts/chat_openers.txt.
"""

from __future__ import annotations

import re

import pytest
import torch

from crs.data.context import DialogueContext
from crs.data.redial import RECOMMENDER, SEEKER, Turn
from crs.eval.chats import DEFAULT_OPENERS, ChatLine, load_openers, play, transcript_markdown
from crs.gen.reply import Generated
from crs.rec.request import OLDER_BEFORE, RECENT_YEARS, SHOWING_YEARS
from crs.serve.pipeline import (
    CRS,
    FALLBACK_NOTHING,
    FALLBACK_RECOMMEND,
    drop_ungrounded,
    greets,
    has_words,
    join_sentences,
    kg_neighbours,
    may_greet,
    polish_template,
    sentence_spans,
    strip_greeting,
    title_spans,
)
from kg.graph import GENRE, MOVIE, PERSON, KnowledgeGraph
from kg.linker import LinkedEntity
from kg.paths import GraphIndex

# ---------------------------------------------------------------------- greetings


@pytest.mark.parametrize("text, expected", [
    ("Hi, how about [REC]?", "How about [REC]?"),
    ("Hello there! Have you seen [REC]?", "Have you seen [REC]?"),
    ("hey there, i think you would like it", "I think you would like it"),
    ("Hiya!! [REC] is great.", "[REC] is great."),
    ("Good evening. What do you like?", "What do you like?"),
    ("HEY - what kind of movies?", "What kind of movies?"),
    ("Hi! Hello! ", ""),
    ("Howdy", ""),
    ("Highlander is great.", "Highlander is great."),
    ("History buffs love [REC].", "History buffs love [REC]."),
    ("Good movies are rare.", "Good movies are rare."),
    ("Heyday of westerns.", "Heyday of westerns."),
    ("Oh hi, [REC]!", "Oh hi, [REC]!"),  # only an opening greeting goes
])
def test_strip_greeting(text, expected):
    assert strip_greeting(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Hi!", True), ("hello there, any comedies?", True), ("Thanks. Good morning!", True), ("hey", True),
    ("Hey! I liked Hitch", True), ("I liked Hitch", False), ("This is it", False), ("", False),
    ("Say hello to my little friend", False), ("I love The Shining", False), ("something else?", False),
])
def test_greets(text, expected):
    assert greets(text) is expected


def test_a_greeting_is_allowed_in_the_first_reply_or_after_a_greeting():
    first = [Turn(SEEKER, "I like comedies", [])]
    later = [Turn(SEEKER, "hi", []), Turn(RECOMMENDER, "Hi! What do you like?", []), Turn(SEEKER, "I like comedies", [])]
    greeted = later[:2] + [Turn(SEEKER, "Hello again, I like comedies", [])]
    assert may_greet(DialogueContext(first)) and may_greet(DialogueContext([]))
    assert not may_greet(DialogueContext(later))
    assert may_greet(DialogueContext(greeted))


# ---------------------------------------------------------------------- fluent text


@pytest.mark.parametrize("template, keep, expected", [
    ("Hi, how about [REC] ?", False, "How about [REC]?"),
    ("  hi ,  how   about [REC] ?  ", True, "Hi, how about [REC]?"),
    ("inception is also a good one", True, "Inception is also a good one."),
    (", [REC] maybe", True, "[REC] maybe."),
    ("How about [REC]", True, "How about [REC]?"),  # a question about a movie gets its question mark
    ("sure! have you seen [REC] yet.", True, "Sure! Have you seen [REC] yet?"),  # and each sentence a capital
    ("how about [REC] or [REC].", True, "How about [REC] or [REC]?"),
    ("Have you seen [REC] It was really good.", True, "Have you seen [REC] It was really good."),  # run on: left alone
    ("I am sorry [REC] is not a comedy.", True, "I am sorry [REC] is not a comedy."),
    ("wait ... what ?", True, "Wait... what?"),
    ("a movie [REC] with,, and [REC] is a good one", True, "A movie [REC] with, and [REC] is a good one."),
    ("so funny , , and sweet,.", True, "So funny, and sweet."),
    ("Hi!", False, ""),
    ("Hi!", True, "Hi!"),
    # slots written one after the other become a list
    ("Have you seen [REC] [REC] ?", True, "Have you seen [REC] or [REC]?"),
    ("I recommend [REC] [REC] and [REC] is a good one", True, "I recommend [REC], [REC] and [REC] is a good one."),
    ("I liked [REC] [REC] [REC]. What about you?", True, "I liked [REC], [REC] and [REC]. What about you?"),
    # movies as the object of "I recommend" and the subject of the next verb: the verb gets its own
    ("Hi, I recommend [REC] [REC] [REC] are great movies", True, "Hi, I recommend [REC], [REC] and [REC], they are great movies."),
    ("I would recommend [REC] is a classic", True, "I would recommend [REC], it is a classic."),
    ("I think [REC] is a classic", True, "I think [REC] is a classic."),
    # two movies or more before a singular verb and an adjective: the verb agrees
    ("[REC] and [REC] was good too", True, "[REC] and [REC] were good too."),
    ("Also [REC], [REC] and [REC] is really funny", True, "Also [REC], [REC] and [REC] are really funny."),
    ("I recommend [REC] and [REC] is great", True, "I recommend [REC] and [REC], they are great."),
    # an acknowledgement after the reply's point goes; alone or first, it stays
    ("How about [REC]? Ok.", True, "How about [REC]?"),
    ("Ok. How about [REC]?", True, "Ok. How about [REC]?"),
    ("Okay!", True, "Okay!"),
    # a capitalised question run on after a word starts a sentence
    ("Yup, it was great How about [REC]", True, "Yup, it was great. How about [REC]?"),
    ("Yes How about [REC] or [REC]", True, "Yes. How about [REC] or [REC]?"),
    ("I wonder how about [REC]", True, "I wonder how about [REC]."),
    # a slot standing alone after the first sentence is a suggestion
    ("Hi, what kind of movies do you like? [REC]", True, "Hi, what kind of movies do you like? How about [REC]?"),
    ("Great choice! [REC] [REC]!", True, "Great choice! How about [REC] or [REC]?"),
    ("Sure. [REC]. It is fun", True, "Sure. How about [REC]? It is fun."),
    ("[REC]. It is fun", True, "[REC]. It is fun."),  # the first sentence: left to the checks for a bare title
    ("", True, ""),
])
def test_polish_template(template, keep, expected):
    assert polish_template(template, keep_greeting=keep) == expected


def test_has_words_and_join_sentences():
    assert not has_words("") and not has_words(None) and not has_words(" ?! ") and not has_words("[REC] [REC]!")
    assert has_words("[REC] is fun") and has_words("Hi")
    assert join_sentences("I can help you find a movie", "How about X?") == "I can help you find a movie. How about X?"
    assert join_sentences("Great!", "How about X?") == "Great! How about X?"
    assert join_sentences("", "How about X?") == "How about X?"


def test_fallback_sentences_read_as_english():
    for sentence in (FALLBACK_RECOMMEND.replace("[REC]", "Heat (1995)"), FALLBACK_NOTHING):
        assert sentence[0].isupper() and sentence.endswith((".", "?", "!")) and "  " not in sentence
        assert polish_template(sentence, keep_greeting=False) == sentence


# ---------------------------------------------------------------------- topics grounded in the KG


def tiny_index() -> GraphIndex:
    # 0 movie "Sunny Days", 1 person "Pat Smith", 2 genre comedy, 3 person "Quinn Jones", 4 genre horror,
    # 5 movie "Dark Night"; Sunny Days stars Pat Smith and is a comedy, Dark Night stars Quinn Jones.
    kg = KnowledgeGraph(
        entity_names=["Sunny Days (film)", "Pat Smith", "Comedy", "Quinn Jones", "Horror", "Dark Night (film)"],
        entity_uris=[None] * 6,
        entity_types=[MOVIE, PERSON, GENRE, PERSON, GENRE, MOVIE],
        relation_names=["starring", "genre", "self_loop"],
        edge_index=torch.tensor([[0, 0, 0, 5, 5, 5], [0, 1, 2, 3, 4, 5]]),
        edge_type=torch.tensor([2, 0, 1, 0, 1, 2]),
        movie_to_entity={10: 0, 11: 5},
        self_loop_relation=2,
    )
    return GraphIndex(kg, {0: "Sunny Days (2000)", 5: "Dark Night (2001)"})


KINDS = {1: "person", 2: "genre", 3: "person", 4: "genre", 5: "movie"}


def linked(text: str, surfaces: dict[str, int]) -> list[LinkedEntity]:
    """Every occurrence of each surface in ``text`` as a linked entity (the linker stubbed)."""
    out = []
    for surface, entity in surfaces.items():
        for match in re.finditer(re.escape(surface), text):
            out.append(LinkedEntity(match.start(), match.end(), surface, entity, KINDS[entity], surface, None, 100.0))
    return out


SURFACES = {"Pat Smith": 1, "comedy": 2, "Quinn Jones": 3, "horror": 4, "Horror": 4, "Dark Night": 5}


def test_kg_neighbours_are_the_other_ends_of_a_movies_triples():
    index = tiny_index()
    assert kg_neighbours(index, [0]) == {1, 2}
    assert kg_neighbours(index, [0, 5]) == {1, 2, 3, 4}
    assert kg_neighbours(index, []) == set()


def test_sentences_naming_what_the_movie_lacks_are_dropped():
    index = tiny_index()
    text = ("Sunny Days (2000) is a fun comedy. It also stars Pat Smith. Quinn Jones is in it too! "
            "Is it horror? Better than Dark Night. Enjoy")
    allowed = kg_neighbours(index, [0])
    protected = title_spans(text, ["Sunny Days (2000)"])
    assert drop_ungrounded(text, linked(text, SURFACES), allowed, protected) == (
        "Sunny Days (2000) is a fun comedy. It also stars Pat Smith. Better than Dark Night. Enjoy")
    # What the user said may be named, whatever the movie's facts.
    assert drop_ungrounded(text, linked(text, SURFACES), allowed | {4}, protected) == (
        "Sunny Days (2000) is a fun comedy. It also stars Pat Smith. Is it horror? Better than Dark Night. Enjoy")
    # Nothing grounded: nothing left (the pipeline then uses the fallback).
    assert drop_ungrounded("Quinn Jones rocks.", linked("Quinn Jones rocks.", SURFACES), allowed) == ""
    assert drop_ungrounded("Nothing named here.", [], set()) == "Nothing named here."


def test_a_title_is_never_split_nor_its_words_counted():
    text = "Try Horror Show! (2001). It stars Pat Smith."
    protected = title_spans(text, ["Horror Show! (2001)"])
    assert protected == [(4, 23)]
    assert [text[a:b].strip() for a, b in sentence_spans(text, protected)] == ["Try Horror Show! (2001).", "It stars Pat Smith."]
    assert drop_ungrounded(text, linked(text, SURFACES), {1}, protected) == text  # "Horror" is part of the title
    assert drop_ungrounded(text, linked(text, SURFACES), set(), protected) == "Try Horror Show! (2001)."


# ---------------------------------------------------------------------- the scripted chats


def test_openers_file_holds_ten_varied_chats_with_a_follow_up():
    chats = load_openers(DEFAULT_OPENERS)
    assert len(chats) == 10 and len({c[0] for c in chats}) == 10
    assert all(len(c) == 2 for c in chats)
    assert sum(greets(c[0]) for c in chats) >= 1  # one opener only greets
    assert not any(greets(c[1]) for c in chats)  # the follow-ups never greet


def test_load_openers_and_markdown(tmp_path):
    path = tmp_path / "openers.txt"
    path.write_text("# a comment\n\nHi ||  seen it \nJust one\n", encoding="utf-8")
    assert load_openers(path) == [["Hi", "seen it"], ["Just one"]]
    markdown = transcript_markdown([[ChatLine("I like Heat", "How about Ronin (1998)?", [7], ["Ronin (1998)"], "recommend")]], "T")
    assert markdown.startswith("# T") and "## 1. I like Heat" in markdown
    assert "- **User:** I like Heat" in markdown and "- **Assistant:** How about Ronin (1998)?" in markdown
    assert "Ronin (1998) (id 7)" in markdown


# ---------------------------------------------------------------------- the real checkpoint, scripted generator


class ScriptedGenerator:
    """Writes the same reply (with its goal) whatever the context."""

    def __init__(self, reply: str, goal: str = "recommend"):
        self.reply, self.goal = reply, goal

    def generate(self, contexts, rankings, catalogue, forced=None, batch_size=64, topic_filter=None, reply_filter=None, topic_candidates=None):
        forced = forced or [None] * len(contexts)
        return [Generated(steps.goal if steps is not None else self.goal, [], "none", self.reply) for steps in forced]


def scripted(pipeline: CRS, reply: str, goal: str = "recommend") -> CRS:
    crs = CRS(pipeline.recommender, ScriptedGenerator(reply, goal))
    crs.__dict__["graph_index"] = pipeline.graph_index  # built once per session
    crs._link_memo = pipeline._link_memo
    return crs


MATRIX = [{"role": "user", "content": "I loved The Matrix, anything similar?"}]
SECOND = MATRIX + [{"role": "assistant", "content": "Sure!"}, {"role": "user", "content": "I like Keanu Reeves."}]


def title_of(pipeline, history, position=0):
    context, _ = pipeline.context(history)
    ranking = pipeline.rank(context, state=pipeline.request_state(context))  # as respond() ranks: honouring the request
    return ranking[position][0], pipeline.movie(ranking[position][0]).display_name


def test_scripted_replies_are_cleaned_up(pipeline):
    movie, title = title_of(pipeline, SECOND)
    fallback = FALLBACK_RECOMMEND.replace("[REC]", title)

    def say(reply, history=SECOND, goal="recommend"):
        return scripted(pipeline, reply, goal).respond(history)

    assert say("Hi there! How about [REC] ?").text == f"How about {title}?"
    greeted = say("Hello!", goal="greet")
    assert greeted.text == fallback and greeted.items == [movie] and greeted.goal == "recommend"
    first_title = title_of(pipeline, MATRIX)[1]
    assert say("Hi! How about [REC] ?", MATRIX).text == f"Hi! How about {first_title}?"  # the first reply may greet
    hello = SECOND[:-1] + [{"role": "user", "content": "Hello again! I like Keanu Reeves."}]
    assert say("Hi! [REC] is fun", hello).text.startswith("Hi! ")  # so may a reply to a greeting
    assert say("I can help you find a movie").text == f"I can help you find a movie. {fallback}"
    for derailed in ("", "  ", "?!", "[REC]", "[REC] !", "Hi!"):
        reply = say(derailed)
        assert reply.text == fallback and reply.items == [movie], derailed


def stranger_and_star(pipeline, movie: int) -> tuple[str, str]:
    """A well-known actor who is not in ``movie`` (no KG fact of it) and one who stars in it."""
    index, entity = pipeline.graph_index, pipeline.kg.movie_to_entity[movie]
    neighbours = kg_neighbours(index, [entity])

    def links(name: str) -> set[int]:
        return {e.entity for e in pipeline.link(f"It stars {name}.")}

    stranger = next(name for name in ("Meryl Streep", "Tom Hanks", "Julia Roberts") if links(name) and not links(name) & neighbours)
    star = next(index.label(f.tail) for f in index.incident[entity]
                if f.head == entity and index.relation(f) == "starring" and links(index.label(f.tail)) == {f.tail})
    return stranger, star


def test_scripted_claims_must_be_kg_facts_of_the_movie(pipeline):
    movie, title = title_of(pipeline, MATRIX)
    stranger, star = stranger_and_star(pipeline, movie)
    fallback = FALLBACK_RECOMMEND.replace("[REC]", title)

    def say(reply, history=MATRIX):
        return scripted(pipeline, reply).respond(history)

    assert say(f"[REC] is great. It also stars {stranger}. It also stars {star}!").text == f"{title} is great. It also stars {star}!"
    assert say(f"Great choice! [REC] stars {stranger}.").text == f"Great choice! {fallback}"
    only = say(f"[REC] stars {stranger}.")
    assert only.text == fallback and only.items == [movie]
    # A person the user named may be named back.
    asked = [{"role": "user", "content": f"I loved The Matrix. Anything similar, maybe with {stranger}?"}]
    asked_title = title_of(pipeline, asked)[1]
    assert say(f"[REC] is great. {stranger} fans love it too.", asked).text == f"{asked_title} is great. {stranger} fans love it too."


def test_a_retrieved_reply_may_name_only_facts_of_the_movie_and_no_other_title(pipeline):
    # Hybrid decoding asks claim_filter whether a training reply may answer: the same grounding as
    # the generated replies get, and no movie title of another dialogue.
    movie, _ = title_of(pipeline, MATRIX)
    context, _ = pipeline.context(MATRIX)
    stranger, star = stranger_and_star(pipeline, movie)
    allowed = pipeline.claim_filter([context], [[(movie, 1.0)]])
    assert allowed(0, "You should see [REC], it is a great ride!")
    assert allowed(0, f"[REC] is great, it stars {star}.")
    assert not allowed(0, f"[REC] is great, it stars {stranger}.")
    assert not allowed(0, "[REC] is great, and so is Titanic (1997).")
    # A name the linker leaves alone (misspelt, a nickname, a character) must be, spelt close
    # enough, one of the people the reply may name: the star with a letter doubled, not "Jim Carey".
    assert not allowed(0, "[REC] is so funny, Jim Carey at his best")
    assert not allowed(0, "[REC] is great, Will Farrell is hilarious in it")
    assert not allowed(0, "You would like [REC], Gogo Yubari is my favorite")
    assert not pipeline.link("Jim Carey") and pipeline.unlinked_people("Jim Carey at his best", []) == ["Jim Carey"]
    mask = pipeline.catalogue.index(next(m.movie_id for m in pipeline.catalogue.movies
                                         if m.title == "The Mask" and "Jim Carrey" in m.stars))
    mask_id = pipeline.catalogue.movies[mask].movie_id
    assert pipeline.claim_filter([context], [[(mask_id, 1.0)]])(0, "[REC] is so funny, Jim Carey at his best")
    assert allowed(0, "[REC] is a great one. What do you think?")  # capitalised sentence openings are no names
    # A bare surname that stands for one person ("Pacino") must be a person the reply may name too.
    pacino = pipeline.facts.person_by_surname("Pacino")
    assert pipeline.kg.entity_names[pacino] == "Al Pacino" and pacino not in pipeline.speakable(context, [(movie, 1.0)])
    assert not allowed(0, "If you like Pacino, you might like [REC]")
    godfather = max((m for m in pipeline.catalogue.movies if m.title == "The Godfather"), key=lambda m: m.mentions).movie_id
    assert pipeline.claim_filter([context], [[(godfather, 1.0)]])(0, "If you like Pacino, you might like [REC]")
    # So must a name credited in lower case ("staring leo decaprio"): not a star of this movie.
    assert not allowed(0, "You might like [REC] staring leo decaprio.")
    assert allowed(0, f"You might like [REC] starring {star.lower()}.") and allowed(0, "[REC] starring the same guy")
    revenant = max((m for m in pipeline.catalogue.movies if m.title == "The Revenant"), key=lambda m: m.mentions).movie_id
    assert pipeline.claim_filter([context], [[(revenant, 1.0)]])(0, "You might like [REC] staring leo decaprio.")
    # A genre said in plain words must be one of the movie's too.
    assert allowed(0, "[REC] is a great sci-fi action movie")
    assert not allowed(0, "[REC] is a kids movie but really cute and funny!")
    assert not allowed(0, "[REC] is a romantic comedy")
    assert allowed(0, "[REC] has great songs, you will love it")  # songs are no claim that it is a musical
    # So must a time it speaks of: the movie's year has to lie in it.
    year = pipeline.facts.years[movie]
    other_decade = 1970 if year // 10 * 10 != 1970 else 1980
    assert allowed(0, f"[REC] came out in {year} and is still great")
    assert allowed(0, f"[REC] is from the {str(year // 10 * 10)[2:]}s, a great one")
    assert not allowed(0, f"[REC] is from the {str(other_decade)[2:]}s, a great one")
    recent = year > pipeline.facts.latest_year - RECENT_YEARS
    assert allowed(0, "[REC] is a recent one, it just came out") == recent
    assert allowed(0, "[REC] is an old classic movie") == (year < OLDER_BEFORE)
    # "In theaters", "comes out this weekend": only of a movie new when the dialogues were written.
    latest = pipeline.facts.latest_year
    new = next(m.movie_id for m in pipeline.catalogue.movies if m.year == latest - 1 and m.movie_id in pipeline.facts.years)
    of_new = pipeline.claim_filter([context], [[(new, 1.0)]])
    assert year <= latest - SHOWING_YEARS  # The Matrix is not
    for claim in ("[REC] is in theaters right now", "[REC] will be out this weekend, I want to see it",
                  "[REC] came out this year", "I think [REC] is still at the movie theater", "[REC] is now playing",
                  "[REC] is in the theater now", "[REC] is a new one, you should see it.", "[REC] just came out",
                  "[REC] is out now, I enjoyed it"):
        assert not allowed(0, claim), claim
        assert of_new(0, claim), claim
    assert allowed(0, "I saw [REC] in the theater with my dad years ago")  # a memory, not a claim that it is showing
    assert allowed(0, "My favorite was [REC] it's old, but great.") == (year < OLDER_BEFORE)
    assert allowed(0, "[REC] is an old one but I love it") == (year < OLDER_BEFORE)
    # A reply that continues an earlier suggestion waits until the recommender has made one.
    assert not allowed(0, "Or [REC], it is a great ride!") and not allowed(0, "Also [REC] is a great ride")
    assert allowed(0, "Oh, [REC] is a great ride!")
    later, _ = pipeline.context(MATRIX + [{"role": "assistant", "content": f"Have you seen {pipeline.catalogue.by_id(movie).display_name}?"},
                                          {"role": "user", "content": "Yes, something else?"}])
    assert any(t.role == RECOMMENDER and t.movies for t in later.turns)
    assert pipeline.claim_filter([later], [[(movie, 1.0)]])(0, "Or [REC], it is a great ride!")
    # "I also liked [REC]" adds to a movie named before: after "I loved The Matrix", not as a first answer to a bare request
    assert allowed(0, "I also liked [REC].")
    bare, _ = pipeline.context([{"role": "user", "content": "Sigh. Nothing good on tonight."}])
    assert not pipeline.claim_filter([bare], [[(movie, 1.0)]])(0, "I also liked [REC].")
    assert pipeline.claim_filter([bare], [[(movie, 1.0)]])(0, "I liked [REC].")
    # a correction of what another dialogue said before
    assert not allowed(0, "oops [REC] is what I meant That was good") and not allowed(0, "Sorry, I meant [REC]")
    assert not allowed(0, "[REC] that's what I meant.") and not allowed(0, "Oh i don't think so you talking about like [REC]?")
    # a person spoken of by pronoun needs one in the talk: none in "I loved The Matrix, anything similar?"
    assert not allowed(0, "He was amazing in [REC]") and not allowed(0, "[REC] was another one of his")
    assert allowed(0, "My son loved [REC], he watched it twice")
    assert allowed(0, f"You would like [REC], {star} is great, I love his acting")  # the reply names them itself
    with_person, _ = pipeline.context([{"role": "user", "content": f"I love {star}, any movies with them?"}])
    assert pipeline.claim_filter([with_person], [[(movie, 1.0)]])(0, "She was in [REC] too")
    # "So was [REC]" mirrors a statement about a movie the user named; it answers no request
    assert not pipeline.claim_filter([later], [[(movie, 1.0)]])(0, "So was [REC], and it is a great ride")
    stated, _ = pipeline.context([{"role": "user", "content": "The Matrix (1999) was amazing."}])
    assert pipeline.claim_filter([stated], [[(movie, 1.0)]])(0, "So was [REC], and it is a great ride")
    # A training reply's plot is that of the movie it was written for: never another movie's.
    assert not allowed(0, "[REC] is about a linguist who learns to talk to aliens.")
    assert not allowed(0, "You would like [REC]. It's about two cops who are put together as partners")
    assert allowed(0, "[REC] is great. What's it about? You'll see!")


def test_topic_candidates_are_what_the_seeker_named_then_the_movies_genres(pipeline):
    history = [{"role": "user", "content": "I love comedies with Jim Carrey, like The Mask"}]
    context, _ = pipeline.context(history)
    movie, _ = title_of(pipeline, history)
    names = pipeline.topic_candidates([context], [[(movie, 1.0)]])(0)
    said = [e.name for e in pipeline.link(history[0]["content"]) if e.kind != "movie"]
    genres = sorted(pipeline.kg.entity_names[g] for g in pipeline.facts.genres[movie])
    assert said and names[: len(said)] == list(dict.fromkeys(said))
    assert set(genres) <= set(names) and len(names) == len(set(names))
    assert pipeline.topic_candidates([context], [[]])(0) == list(dict.fromkeys(said))  # no movie: only what was said


def test_topic_candidate_features_say_where_each_candidate_came_from(pipeline):
    from crs.gen.topic_head import CANDIDATE_FEATURES

    history = [{"role": "user", "content": "I love comedies with Jim Carrey, like The Mask"},
               {"role": "assistant", "content": "Then you might like Liar Liar (1997)"},
               {"role": "user", "content": "Yes! Anything with Jim Carrey is fine"}]
    context, _ = pipeline.context(history)
    movie, _ = title_of(pipeline, history[:1])
    candidates = pipeline.topic_candidates([context], [[(movie, 1.0)]])
    names, features = candidates(0), candidates.features(0)
    assert features.shape == (len(names), len(CANDIDATE_FEATURES))
    column = {name: features[:, j] for j, name in enumerate(CANDIDATE_FEATURES)}
    said_last = {e.name for e in pipeline.link(history[2]["content"]) if e.kind != "movie"}
    said_first = {e.name for e in pipeline.link(history[0]["content"]) if e.kind != "movie"}
    genres = {pipeline.kg.entity_names[g] for g in pipeline.facts.genres[movie]}
    assert said_last and said_first - said_last
    for i, name in enumerate(names):
        assert column["seeker_last_turn"][i] == (name in said_last)
        assert column["seeker_named"][i] == (name in said_last | said_first)
        assert column["movie_genre"][i] == (name in genres)
        assert column["recommender_turns_scaled"][i] == pytest.approx(1 / 15)
    both = [i for i, name in enumerate(names) if name in said_last and name in said_first]
    assert both and all(column["seeker_mentions_scaled"][i] == pytest.approx(2 / 3) for i in both)


# ---------------------------------------------------------------------- the real checkpoint, real generator


@pytest.fixture(scope="module")
def transcripts(pipeline):
    """The ten scripted chats of prompts/chat_openers.txt, two user turns each."""
    return [play(pipeline, messages, 2) for messages in load_openers(DEFAULT_OPENERS)]


def test_no_greeting_after_the_first_reply_unless_the_user_greets(pipeline, transcripts):
    histories = [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hi! What kind of movies do you like?"},
         {"role": "user", "content": text}]
        for text in ("I like comedies", "not sure, something fun", "I loved The Matrix")
    ]
    replies = [pipeline.respond(history).text for history in histories]
    replies += [lines[1].reply for lines in transcripts]
    for reply in replies:
        assert strip_greeting(reply) == reply, reply


def test_every_reply_is_clean_text(transcripts):
    for lines in transcripts:
        for line in lines:
            reply = line.reply
            assert reply.strip() and has_words(reply), line
            starts_with_title = any(reply.startswith(t) for t in line.titles)
            assert starts_with_title or not re.match(r"[\s,.;:!?]", reply), reply
            assert "  " not in reply and not any(token in reply for token in ("[REC]", "</s>", "<pad>")), reply
            assert all(t in reply for t in line.titles)


def test_named_people_and_genres_are_facts_of_the_recommended_movie_or_said_by_the_user(pipeline, transcripts):
    for lines in transcripts:
        said: set[int] = set()
        for line in lines:
            named = pipeline.link(line.user)
            said |= {e.entity for e in named}
            # facts of the recommended movies, or of a movie the user asks about in this turn (an answer)
            asked = [e.movie_id for e in named if e.kind == "movie" and e.movie_id is not None]
            movies = [pipeline.kg.movie_to_entity[m] for m in list(line.items) + asked if m in pipeline.kg.movie_to_entity]
            allowed = said | kg_neighbours(pipeline.graph_index, movies)
            titles = title_spans(line.reply, line.titles)
            for entity in pipeline.link(line.reply):
                inside_title = any(a <= entity.start < b for a, b in titles)
                if entity.kind != "movie" and not inside_title:
                    assert entity.entity in allowed, (line.reply, entity.surface)


def test_a_reply_claims_no_time_the_movie_it_speaks_of_does_not_fit(pipeline):
    # "What about Black Panther (2018)? A little old but a classic." loses its second sentence; the
    # same sentence after an old movie stays, and so do questions and years inside titles.
    latest = pipeline.facts.latest_year
    catalogue = pipeline.catalogue
    new = next(m for m in catalogue.movies if m.year == latest - 1 and m.movie_id in pipeline.facts.years)
    old = next(m for m in sorted(catalogue.movies, key=lambda m: -m.mentions) if m.year and m.year < 1970)
    context, _ = pipeline.context([{"role": "user", "content": "Any good movie?"}])
    for movie, holds in ((new, False), (old, True)):
        text = f"What about {movie.display_name}? A little old but a classic."
        grounded, kept = pipeline.ground(text, [movie.movie_id], context, "recommend")
        assert ("classic" in grounded) == holds and kept == [movie.movie_id]
    text = f"What about {new.display_name}? It is in theaters now. Do you like older movies?"
    grounded, _ = pipeline.ground(text, [new.movie_id], context, "recommend")
    assert grounded == text
    text = f"What about {old.display_name}? It is in theaters now."
    assert pipeline.ground(text, [old.movie_id], context, "recommend")[0] == f"What about {old.display_name}?"
    # Nor a plot: the checkpoint holds none, so a generated one is invented.
    text = f"Oh, {old.display_name} is excellent! It's about a little girl who is very gifted. Have you seen it?"
    assert pipeline.ground(text, [old.movie_id], context, "recommend")[0] == f"Oh, {old.display_name} is excellent! Have you seen it?"
    assert pipeline.ground("It's about a s a boxing", [], context, "chat")[0] == ""


def test_a_film_with_the_title_the_user_named_is_not_suggested(pipeline):
    # "I liked Titanic" must not be answered with another film called Titanic.
    from crs.data.catalogue import namesakes
    from crs.serve.chat import ChatState, chat_turn

    catalogue = pipeline.catalogue
    titles = {}
    for movie in catalogue.movies:
        titles.setdefault(movie.title.casefold(), []).append(movie)
    shared = sorted((ms for ms in titles.values() if len(ms) > 1 and len({m.imdb_id for m in ms}) > 1),
                    key=lambda ms: -max(m.mentions for m in ms))[0]
    named = max(shared, key=lambda m: m.mentions)
    assert set(namesakes(catalogue, [named.movie_id])) == {m.movie_id for m in shared} - {named.movie_id}
    result = chat_turn(pipeline, f"I liked {named.display_name}, what else?", ChatState())
    assert result.items and not any(catalogue.by_id(m).title.casefold() == named.title.casefold() for m in result.items)
