"""The constraint suite: does a recommendation honour what the user asked for?

    python -m crs.evaluate --model crs=checkpoints/default,popularity --tasks constraints

Cases (:func:`generate_cases`, a fixed seed) are built from the knowledge graph and the catalogue:
actors and directors with several catalogue movies, genres, decades, and their negated forms, each
in several phrasings, single-turn and multi-turn (a request then a negation, a franchise turned
down, a request narrowed by a decade). The hand-written paraphrases of
``tests/data/constraint_paraphrases.jsonl`` come on top (:func:`load_cases`).

Every case is played as a chat from scratch. The judge (:class:`Judge`) checks the movies against
the catalogue metadata (``movie_info.json``: stars, directors, genres, the year in the title) and the
DBpedia edges of the movie's node, by name, independently of the reader the product uses (a studio
also by the features :data:`kg.lexicon.STUDIO_FILMS` lists, which DBpedia holds only in part, and a
country by those of a studio of :data:`kg.lexicon.STUDIO_COUNTRIES`):

* satisfaction@1 / @3: share of the top-1 / top-3 movies meeting every wanted constraint (cases
  with a wanted constraint; a reply with no movie counts as unsatisfied);
* violation@3: share of the top-3 movies meeting an unwanted constraint (cases with one);
* no movie: share of cases whose last reply recommends nothing.

Systems: a checkpoint through the chat's own turn (:func:`crs.serve.chat.chat_turn`, top-1 the
reply's first movie, top-3 the ranking it drew from); ``popularity`` (the request ignored); and
``kg-filter``, always added: popularity order filtered by the request state of
:mod:`crs.rec.request`, with no learned recommender.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from crs.data.catalogue import Catalogue, Movie
from crs.data.context import DialogueContext
from crs.data.redial import RECOMMENDER, SEEKER, Turn
from crs.paths import PROJECT_ROOT
from crs.rec.request import MovieFacts, RequestReader, films_studios, franchise_key, honour_scores, studio_films
from kg.graph import GENRE_ALIASES, KnowledgeGraph, base_name, name_key
from kg.lexicon import COUNTRY_WORDS, STUDIO_COUNTRIES

SEED = 20261130
PARAPHRASES = PROJECT_ROOT / "tests" / "data" / "constraint_paraphrases.jsonl"
TOP = 3
MIN_PERSON_MOVIES = 4  # people sampled for requests have at least this many catalogue movies in the role
MIN_GENRE_MOVIES = 80
MIN_DECADE_MOVIES = 40
GENRE_WORDS_FOR_CASES = {"sci-fi": "sci-fi", "animation": "animated"}  # how users name a genre in a request

ACTOR_TEMPLATES = ["Any good movies with {name}?", "I'd like to watch something starring {name}.",
                   "Can you recommend a movie {name} is in?", "I'm a big fan of {name}, what should I watch?"]
DIRECTOR_TEMPLATES = ["Any movies directed by {name}?", "I want to see a film by {name}.",
                      "What's a good movie from director {name}?", "Recommend me something {name} directed."]
GENRE_TEMPLATES = ["I'm in the mood for {a_genre} movie.", "Can you suggest a good {genre} film?",
                   "Looking for {genre} movies, any ideas?", "Something {genre} please."]
DECADE_TEMPLATES = ["A movie from the {short} please.", "Something from the {decade}?",
                    "Any good films from the {word}?", "I want to watch a movie made in the {decade}."]
NOT_GENRE_TEMPLATES = ["Anything but {genre}, please.", "I don't want {a_genre} movie tonight.",
                       "No {genre} please, I want something good.", "Please recommend a movie that is not {genre}."]
GENRE_NOT_GENRE_TEMPLATES = ["{A_genre} movie, but not {other}.", "I want {genre}, no {other} though."]
NOT_ACTOR_TEMPLATES = ["Recommend a good movie, but nothing with {name}.", "I can't stand {name}, suggest something else."]
NOT_DECADE_TEMPLATES = ["A good movie, but not from the {short}.", "Nothing from the {decade}, please."]
GENRE_DECADE_TEMPLATES = ["{A_genre} movie from the {short}?", "I'd like {genre} films from the {decade}."]
MULTI = {
    "actor_then_not_genre": (["I like {name}.", "Not {a_genre} though."]),
    "franchise_turned_down": (["I'm a fan of {title}.", "Not {franchise} either, something different."]),
    "genre_then_decade": (["{A_genre} movie please.", "Preferably from the {short}."]),
}
DECADE_WORDS = {1950: "fifties", 1960: "sixties", 1970: "seventies", 1980: "eighties", 1990: "nineties",
                2000: "2000s", 2010: "2010s"}

# How many generated cases of each group.
COUNTS = {"actor": 40, "director": 40, "genre": 40, "decade": 28, "genre+decade": 20, "not_genre": 40,
          "genre+not_genre": 20, "not_actor": 20, "not_decade": 14, "actor_then_not_genre": 25,
          "franchise_turned_down": 20, "genre_then_decade": 20}


@dataclass
class Case:
    id: str
    group: str
    turns: list[str]
    wanted: list[dict] = field(default_factory=list)  # {"kind": "person", "name", "role"} | {"kind": "genre", "name"} | {"kind": "years", "first", "last"} | {"kind": "setting" or "plot", "names"}
    unwanted: list[dict] = field(default_factory=list)  # the same, or {"kind": "franchise", "title"}
    source: str = "generated"


# ------------------------------------------------------------------------------------ the judge


class Judge:
    """Checks movies against the catalogue metadata and the DBpedia edges, by name."""

    def __init__(self, kg: KnowledgeGraph, catalogue: Catalogue):
        self.catalogue = catalogue
        self.films = studio_films()
        relation = {name: i for i, name in enumerate(kg.relation_names)}
        roles = {relation.get("starring"): "actor", relation.get("director"): "director", relation.get("genre"): "genre",
                 relation.get("productionCompany"): "studio", relation.get("company"): "studio", relation.get("distributor"): "studio",
                 relation.get("country"): "country", relation.get("language"): "country"}
        roles.pop(None, None)
        entity_movies: dict[int, list[int]] = defaultdict(list)
        for movie_id, entity in kg.movie_to_entity.items():
            entity_movies[entity].append(movie_id)
        self.names: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        heads, tails = kg.edge_index.tolist()
        for head, rel, tail in zip(heads, kg.edge_type.tolist(), tails):
            if rel in roles and head in entity_movies and kg.entity_uris[tail] is not None:  # DBpedia's own edges
                for movie_id in entity_movies[head]:
                    self.names[movie_id][roles[rel]].add(genre_key(kg.entity_names[tail]) if roles[rel] == "genre"
                                                         else name_key(kg.entity_names[tail]))
        for movie in catalogue.movies:
            facts = self.names[movie.movie_id]
            facts["actor"].update(name_key(n) for n in movie.stars)
            facts["director"].update(name_key(n) for n in movie.directors)
            facts["genre"].update(genre_key(g) for g in movie.genres)

    def meets(self, movie_id: int, spec: dict) -> bool:
        movie = self.catalogue.by_id(movie_id)
        kind = spec["kind"]
        if kind == "person":
            roles = [spec["role"]] if spec.get("role") else ["actor", "director"]
            return any(name_key(spec["name"]) in self.names[movie_id][role] for role in roles)
        if kind == "genre":
            return genre_key(spec["name"]) in self.names[movie_id]["genre"]
        if kind == "years":
            first, last = spec.get("first"), spec.get("last")
            return movie.year is not None and (first is None or movie.year >= first) and (last is None or movie.year <= last)
        if kind == "franchise":
            return spec["title"].casefold() in movie.title.casefold()
        if kind == "studio":  # any production company or distributor whose name holds the studio's, or its listed features
            return (any(name_key(spec["name"]) in company for company in self.names[movie_id]["studio"])
                    or name_key(spec["name"]) in films_studios(movie, self.films))
        if kind == "country":  # a country or language edge naming one of ``names``, or a listed feature of a studio there
            names = {name_key(n) for n in spec["names"]}
            studio_countries = {c for s in films_studios(movie, self.films) if s in STUDIO_COUNTRIES
                                for c in COUNTRY_WORDS[STUDIO_COUNTRIES[s]][0]}
            return bool(names & (self.names[movie_id]["country"] | studio_countries))
        if kind in ("setting", "plot"):  # the title or the plot synopsis names one of ``names`` (a word match, any case)
            text = f"{movie.title}. {movie.plot}"
            return any(re.search(rf"\b{re.escape(n)}\b", text, re.IGNORECASE) for n in spec["names"])
        raise ValueError(f"unknown constraint kind {kind!r} in a constraint case")


def genre_key(name: str) -> str:
    """A genre name as the judge compares it: "Horror fiction", "horror", "Horror film" → "horror"."""
    key = name_key(base_name(name).replace("(genre)", ""))
    inverse = {alias: genre for genre, alias in GENRE_ALIASES.items()}
    key = inverse.get(key, key)
    for suffix in (" film", " films", " fiction", " movie"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    return inverse.get(key, key)


# ------------------------------------------------------------------------------------ the cases


def generate_cases(kg: KnowledgeGraph, catalogue: Catalogue, seed: int = SEED) -> list[Case]:
    """The generated cases (:data:`COUNTS` per group), the same for the same data and seed."""
    rng = random.Random(seed)
    movies = [m for m in catalogue.movies if m.has_metadata]
    by_star, by_director, by_genre, by_decade = defaultdict(set), defaultdict(set), defaultdict(set), defaultdict(set)
    for movie in movies:
        for name in movie.stars:
            by_star[name].add(movie.movie_id)
        for name in movie.directors:
            by_director[name].add(movie.movie_id)
        for genre in movie.genres:
            by_genre[genre].add(movie.movie_id)
        if movie.year:
            by_decade[movie.year // 10 * 10].add(movie.movie_id)
    actors = sorted(n for n, ms in by_star.items() if len(ms) >= MIN_PERSON_MOVIES and len(n.split()) >= 2)
    directors = sorted(n for n, ms in by_director.items() if len(ms) >= MIN_PERSON_MOVIES - 1 and len(n.split()) >= 2
                       and len(by_star.get(n, ())) < len(ms))
    genres = sorted(g for g, ms in by_genre.items() if len(ms) >= MIN_GENRE_MOVIES)
    decades = sorted(d for d, ms in by_decade.items() if len(ms) >= MIN_DECADE_MOVIES and d >= 1950)
    franchises = franchise_titles(catalogue)

    def word(genre: str) -> str:
        return GENRE_WORDS_FOR_CASES.get(genre, genre)

    def g(genre: str) -> dict:
        """Template slots for a genre: the word, and the word with its article ("an action")."""
        w = word(genre)
        a = f"{'an' if w[0] in 'aeiou' else 'a'} {w}"
        return {"genre": w, "a_genre": a, "A_genre": a[0].upper() + a[1:]}

    def decade_slots(decade: int) -> dict:
        return {"decade": f"{decade}s", "short": f"{str(decade)[2:]}s" if decade < 2000 else f"{decade}s",
                "word": DECADE_WORDS.get(decade, f"{decade}s")}

    def person(name: str, role: str) -> dict:
        return {"kind": "person", "name": name, "role": role}

    def genre_spec(genre: str) -> dict:
        return {"kind": "genre", "name": genre}

    def years(decade: int) -> dict:
        return {"kind": "years", "first": decade, "last": decade + 9}

    cases: list[Case] = []

    def add(group: str, turns: list[str], wanted=(), unwanted=()) -> None:
        cases.append(Case(f"{group}-{sum(c.group == group for c in cases):03d}", group, turns, list(wanted), list(unwanted)))

    def template(templates: list[str], i: int) -> str:
        return templates[i % len(templates)]

    for i, name in enumerate(rng.sample(actors, min(COUNTS["actor"], len(actors)))):
        add("actor", [template(ACTOR_TEMPLATES, i).format(name=name)], [person(name, "actor")])
    for i, name in enumerate(rng.sample(directors, min(COUNTS["director"], len(directors)))):
        add("director", [template(DIRECTOR_TEMPLATES, i).format(name=name)], [person(name, "director")])
    for i in range(COUNTS["genre"]):
        genre = genres[i % len(genres)]
        add("genre", [template(GENRE_TEMPLATES, i // len(genres) + i).format(**g(genre))], [genre_spec(genre)])
    for i in range(COUNTS["decade"]):
        decade = decades[i % len(decades)]
        add("decade", [template(DECADE_TEMPLATES, i // len(decades) + i).format(**decade_slots(decade))], [years(decade)])
    for i in range(COUNTS["genre+decade"]):
        genre, decade = rng.choice(genres), rng.choice(decades)
        add("genre+decade", [template(GENRE_DECADE_TEMPLATES, i).format(**g(genre), **decade_slots(decade))],
            [genre_spec(genre), years(decade)])
    for i in range(COUNTS["not_genre"]):
        genre = genres[i % len(genres)]
        add("not_genre", [template(NOT_GENRE_TEMPLATES, i // len(genres) + i).format(**g(genre))], unwanted=[genre_spec(genre)])
    for i in range(COUNTS["genre+not_genre"]):
        genre, other = rng.sample(genres, 2)
        add("genre+not_genre", [template(GENRE_NOT_GENRE_TEMPLATES, i).format(**g(genre), other=word(other))],
            [genre_spec(genre)], [genre_spec(other)])
    for i, name in enumerate(rng.sample(actors, min(COUNTS["not_actor"], len(actors)))):
        add("not_actor", [template(NOT_ACTOR_TEMPLATES, i).format(name=name)], unwanted=[person(name, None)])
    for i in range(COUNTS["not_decade"]):
        decade = decades[i % len(decades)]
        add("not_decade", [template(NOT_DECADE_TEMPLATES, i // len(decades) + i).format(**decade_slots(decade))], unwanted=[years(decade)])
    for i, name in enumerate(rng.sample(actors, min(COUNTS["actor_then_not_genre"], len(actors)))):
        # a genre some of the actor's movies have and some do not: the request can be met
        counts = Counter(g for m in by_star[name] for g in catalogue.by_id(m).genres)
        present = sorted(g for g in genres if 0 < counts[g] < len(by_star[name]))
        genre = rng.choice(present) if present else rng.choice(sorted(set(genres) - set(counts)))
        turns = [t.format(name=name, **g(genre)) for t in MULTI["actor_then_not_genre"]]
        add("actor_then_not_genre", turns, [person(name, "actor")], [genre_spec(genre)])
    for title, franchise in rng.sample(franchises, min(COUNTS["franchise_turned_down"], len(franchises))):
        turns = [t.format(title=title, franchise=franchise) for t in MULTI["franchise_turned_down"]]
        add("franchise_turned_down", turns, unwanted=[{"kind": "franchise", "title": franchise}])
    for i in range(COUNTS["genre_then_decade"]):
        genre, decade = rng.choice(genres), rng.choice(decades)
        turns = [t.format(**g(genre), **decade_slots(decade)) for t in MULTI["genre_then_decade"]]
        add("genre_then_decade", turns, [genre_spec(genre), years(decade)])
    return cases


def franchise_titles(catalogue: Catalogue) -> list[tuple[str, str]]:
    """(a movie's title, its franchise's name) for franchises of three or more catalogue movies whose
    titles all start with the franchise name ("Toy Story 2", "Toy Story")."""
    stems: dict[str, list[Movie]] = defaultdict(list)
    for movie in catalogue.movies:
        stems[franchise_key(movie.title)].append(movie)
    out = []
    for stem, movies in sorted(stems.items()):
        shortest = min(movies, key=lambda m: (len(m.title), -m.mentions))
        name = shortest.title
        if len({m.title for m in movies}) >= 3 and len(stem) >= 4 and all(m.title.casefold().startswith(name.casefold()) for m in movies):
            best = max(movies, key=lambda m: m.mentions)
            out.append((best.display_name, name))
    return out


def load_cases(path: str | Path = PARAPHRASES) -> list[Case]:
    """Hand-written cases, one JSON object per line (``id, group, turns, wanted, unwanted``)."""
    path = Path(path)
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            cases.append(Case(row["id"], row.get("group", "paraphrase"), list(row["turns"]), row.get("wanted", []),
                              row.get("unwanted", []), source="paraphrase"))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path}, line {number}: not a constraint case ({error})") from error
    return cases


# ------------------------------------------------------------------------------------ the systems


@dataclass
class Outcome:
    top: list[int]  # the top-3 movies after the last user turn
    first: int | None  # the movie the reply recommends first (None: no movie)
    reply: str = ""


class ChatSystem:
    """A checkpoint through the chat's own turn."""

    def __init__(self, pipeline, name: str):
        self.pipeline, self.name = pipeline, name

    def play(self, turns: list[str]) -> Outcome:
        from crs.serve.chat import ChatState, chat_turn

        state, result = ChatState(), None
        for text in turns:
            result = chat_turn(self.pipeline, text, state)
            state = result.state
        ranking = [m for m, _ in result.details.ranking[:TOP]] if result.details else []
        return Outcome(top=ranking, first=result.items[0] if result.items else None, reply=result.reply)


class PopularitySystem:
    """Most mentioned movies first; with ``reader``, filtered by the request state (``kg-filter``)."""

    def __init__(self, popularity, link: Callable, reader: RequestReader | None, name: str):
        self.popularity, self.link, self.reader, self.name = popularity, link, reader, name

    def play(self, turns: list[str]) -> Outcome:
        history: list[Turn] = []
        mentioned: list[int] = []
        top: list[int] = []
        for text in turns:
            linked = self.link(text)
            mentioned += [e.movie_id for e in linked if e.movie_id is not None]
            history.append(Turn(SEEKER, text, []))
            context = DialogueContext(turns=list(history), mentioned_movies=list(dict.fromkeys(mentioned)))
            if self.reader is None:
                ranking = self.popularity.top_k(context, TOP)
            else:
                user = [(t.text, self.link(t.text)) for t in history if t.role == SEEKER]
                state = self.reader.read(user)
                ranking, _ = honour_scores(self.reader.facts, self.popularity.score_items(context),
                                           self.popularity.mentioned_items(context), state, TOP)
            top = [m for m, _ in ranking]
            last = top[:1]
            title = self.popularity.catalogue.by_id(last[0]).display_name if last else ""
            history.append(Turn(RECOMMENDER, f"How about {title}?" if title else "Tell me more.", list(last)))
            mentioned += last
        return Outcome(top=top, first=top[0] if top else None)


# ------------------------------------------------------------------------------------ running


@dataclass
class ConstraintResult:
    model: str
    rows: list[dict]

    def summary(self) -> dict:
        groups: dict[str, list[dict]] = defaultdict(list)
        for row in self.rows:
            groups[row["group"]].append(row)
            groups["all generated" if row["source"] == "generated" else "all paraphrases"].append(row)
        groups["all"] = list(self.rows)
        return {group: summarise(rows) for group, rows in sorted(groups.items())}


def summarise(rows: list[dict]) -> dict:
    wanted = [r for r in rows if r["has_wanted"]]
    unwanted = [r for r in rows if r["has_unwanted"]]
    mean = lambda values: round(sum(values) / len(values), 4) if values else None  # noqa: E731
    return {
        "cases": len(rows),
        "satisfaction@1": mean([float(r["sat1"]) for r in wanted]),
        "satisfaction@3": mean([r["sat3"] for r in wanted]),
        "violation@3": mean([r["viol3"] for r in unwanted]),
        "no_movie": mean([float(r["no_movie"]) for r in rows]),
    }


def evaluate_constraints(system, cases: list[Case], judge: Judge, progress: bool = True) -> ConstraintResult:
    rows = []
    for case in tqdm(cases, desc=f"constraints {system.name}", unit="case", disable=not progress):
        outcome = system.play(case.turns)
        top = outcome.top[:TOP]
        meets_all = lambda m: all(judge.meets(m, spec) for spec in case.wanted)  # noqa: E731
        breaks = lambda m: any(judge.meets(m, spec) for spec in case.unwanted)  # noqa: E731
        rows.append({
            "id": case.id, "group": case.group, "source": case.source, "turns": case.turns,
            "has_wanted": bool(case.wanted), "has_unwanted": bool(case.unwanted),
            "first": outcome.first, "top": top, "reply": outcome.reply,
            "sat1": outcome.first is not None and meets_all(outcome.first),
            "sat3": sum(meets_all(m) for m in top) / TOP,
            "viol3": sum(breaks(m) for m in top) / TOP,
            "no_movie": outcome.first is None,
        })
    return ConstraintResult(system.name, rows)


def constraints_markdown(results: list[ConstraintResult], cases: list[Case]) -> str:
    generated = sum(c.source == "generated" for c in cases)
    lines = ["## Constraint suite", "",
             f"{generated} cases generated from the KG and the catalogue (seed {SEED}) and {len(cases) - generated} hand-written "
             "paraphrases; each played as a new chat. satisfaction@k: share of the top-k movies meeting every wanted "
             "constraint (cases with one); violation@3: share of the top-3 meeting an unwanted one (cases with one); "
             "no movie: share of cases whose last reply names no movie. Judged on movie_info.json and DBpedia edges.", ""]
    groups = list(results[0].summary()) if results else []
    order = ["all", "all generated", "all paraphrases"] + [g for g in groups if not g.startswith("all")]
    lines += ["| group | model | cases | sat@1 | sat@3 | viol@3 | no movie |", "|---|---|---|---|---|---|---|"]
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    for group in order:
        for result in results:
            s = result.summary().get(group)
            if s:
                lines.append(f"| {group} | {result.model} | {s['cases']} | {fmt(s['satisfaction@1'])} | {fmt(s['satisfaction@3'])} | "
                             f"{fmt(s['violation@3'])} | {fmt(s['no_movie'])} |")
    return "\n".join(lines) + "\n"


def constraint_systems(loaded: list[tuple[object, object]], catalogue: Catalogue, train_dialogues, config,
                       limit: int | None = None) -> tuple[list, Judge, list]:
    """The systems to play (checkpoints and popularity among ``loaded``, plus ``kg-filter``), the judge,
    and the cases (``limit``: that many, spread evenly over the suite)."""
    from crs.rec.baselines import PopularityRecommender

    pipeline = next((p for _, p in loaded if p is not None), None)
    if pipeline is not None:
        kg, link, reader = pipeline.kg, pipeline.link, pipeline.reader
    else:
        from kg.graph import load_extended_kg
        from kg.linker import EntityLinker

        kg = load_extended_kg(config.data.resolve_data_dir(), catalogue, config.kg.enrich_linked_movies, config.kg.metadata_edges)
        linker = EntityLinker.build(kg, catalogue, config.linking)
        link = linker.link
        reader = RequestReader(MovieFacts(kg, catalogue), link)
    systems = []
    for model, p in loaded:
        if p is not None:
            systems.append(ChatSystem(p, model.name))
        elif getattr(model, "name", "") == "popularity":
            systems.append(PopularitySystem(model, link, None, "popularity"))
    popularity = next((m for m, _ in loaded if getattr(m, "name", "") == "popularity"), None) \
        or PopularityRecommender.fit(train_dialogues, catalogue)
    systems.append(PopularitySystem(popularity, link, reader, "kg-filter"))
    cases = generate_cases(kg, catalogue) + (load_cases() if PARAPHRASES.is_file() else [])
    if limit is not None and 0 < limit < len(cases):
        cases = [cases[i * len(cases) // limit] for i in range(limit)]
    return systems, Judge(kg, catalogue), cases
