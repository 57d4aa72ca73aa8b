"""Why this movie? Knowledge-graph paths from what the user mentioned to it, and a grounded sentence.

A path is one or two real triples of the checkpoint's graph (``KnowledgeGraph.edge_index``):

* direct: the mentioned entity and the movie share a triple ("John Wick" —starring→ "Keanu Reeves");
* two hops through a shared entity: mentioned —r1— X —r2— movie ("The Matrix" and "John Wick"
  share the star Keanu Reeves).

Paths through specific entities rank first: relations that say something about taste (director,
writer, star, sequel) before production details, and among those the entity with the fewest edges
(a director of five films says more than the genre "drama"). The explanation tab turns the facts
of the best paths into a sentence: the generator's, forced to talk about those facts, when it names
nothing the facts do not hold, else a template built from the facts.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from crs.data.catalogue import Catalogue
from crs.serve.models import duplicates, liked_context
from kg.graph import KnowledgeGraph, base_name

if TYPE_CHECKING:
    from crs.serve.pipeline import CRS

logger = logging.getLogger(__name__)

MAX_PATHS = 3
NO_PATH_NOTE = "No path of one or two facts connects it to the movies you liked; these are facts about the movie itself."
# Lower is more telling; relations not listed get DEFAULT_PRIORITY.
RELATION_PRIORITY = {
    "subsequentWork": 0, "previousWork": 0, "director": 0, "writer": 1, "author": 1, "starring": 1,
    "narrator": 2, "musicComposer": 3, "composer": 3, "producer": 3, "executiveProducer": 3,
    "cinematography": 3, "editing": 3, "editor": 3, "genre": 4,
}
DEFAULT_PRIORITY = 5
HUB_RELATIONS = frozenset({"distributor", "productionCompany", "company", "country", "language", "network", "format", "location"})
HUB_PRIORITY = 6
# How a triple (movie, relation, entity) reads; {h} is the head, {t} the tail.
FACT_PHRASES = {
    "starring": "{h} stars {t}",
    "director": "{h} is directed by {t}",
    "writer": "{h} is written by {t}",
    "author": "{h} is based on a work by {t}",
    "producer": "{h} is produced by {t}",
    "executiveProducer": "{h} is executive-produced by {t}",
    "musicComposer": "{h} has music by {t}",
    "composer": "{h} has music by {t}",
    "cinematography": "{h} is shot by {t}",
    "editing": "{h} is edited by {t}",
    "editor": "{h} is edited by {t}",
    "narrator": "{h} is narrated by {t}",
    "genre": "{h} is in the genre {t}",
    "subsequentWork": "{h} is followed by {t}",
    "previousWork": "{h} follows {t}",
    "distributor": "{h} is distributed by {t}",
    "productionCompany": "{h} is made by {t}",
    "country": "{h} comes from {t}",
    "language": "{h} is in {t}",
}
# What two movies with the same relation to X share: "the director X".
SHARED_NOUNS = {
    "starring": "the star", "director": "the director", "writer": "the writer", "author": "the author",
    "producer": "the producer", "executiveProducer": "the executive producer", "musicComposer": "the composer",
    "composer": "the composer", "cinematography": "the cinematographer", "editing": "the editor", "editor": "the editor",
    "narrator": "the narrator", "genre": "the genre", "distributor": "the distributor",
    "productionCompany": "the production company", "country": "the country", "language": "the language",
}
_CAMEL_RE = re.compile(r"(?<=[a-z])(?=[A-Z])")


@dataclass(frozen=True)
class Fact:
    """One triple of the graph: ``head`` —``relation``→ ``tail`` (entity and relation ids)."""

    head: int
    relation: int
    tail: int

    def other(self, entity: int) -> int:
        return self.tail if self.head == entity else self.head


@dataclass(frozen=True)
class KGPath:
    """One or two facts leading from ``source`` (what the user mentioned) to ``target`` (a movie)."""

    source: int
    target: int
    facts: tuple[Fact, ...]

    @property
    def via(self) -> int | None:
        """The entity the two facts share (None for a direct path)."""
        return self.facts[0].other(self.source) if len(self.facts) == 2 else None


class GraphIndex:
    """Each entity's triples and degree, built once per graph (one pass over the edges)."""

    _cache: dict[int, tuple[KnowledgeGraph, "GraphIndex"]] = {}

    def __init__(self, kg: KnowledgeGraph, catalogue: Catalogue | None = None):
        self.kg = kg
        self.incident: dict[int, list[Fact]] = defaultdict(list)
        heads, tails = kg.edge_index.tolist()
        for head, relation, tail in zip(heads, kg.edge_type.tolist(), tails):
            if relation == kg.self_loop_relation or head == tail:
                continue
            fact = Fact(head, relation, tail)
            self.incident[head].append(fact)
            self.incident[tail].append(fact)
        self.triples = {fact for facts in self.incident.values() for fact in facts}
        self.movie_names: dict[int, str] = {}  # entity → catalogue display name (the most mentioned entry)
        if catalogue is not None:
            for movie in sorted(catalogue.movies, key=lambda m: m.mentions):
                entity = kg.movie_to_entity.get(movie.movie_id)
                if entity is not None:
                    self.movie_names[entity] = movie.display_name

    @classmethod
    def for_graph(cls, kg: KnowledgeGraph, catalogue: Catalogue | None = None) -> "GraphIndex":
        """The index of ``kg``, built on first use (the cache keeps the graph, so its id stays unique)."""
        cached = cls._cache.get(id(kg))
        if cached is None or cached[0] is not kg:
            cached = (kg, cls(kg, catalogue))
            cls._cache[id(kg)] = cached
        return cached[1]

    def degree(self, entity: int) -> int:
        return len(self.incident.get(entity, ()))

    def label(self, entity: int) -> str:
        """A readable name: a movie's catalogue name, else the KG name without its disambiguation."""
        if entity in self.movie_names:
            return self.movie_names[entity]
        name = self.kg.entity_names[entity] if 0 <= entity < self.kg.num_entities else f"entity {entity}"
        return base_name(name) or name

    def relation(self, fact: Fact) -> str:
        return self.kg.relation_names[fact.relation]

    def priority(self, fact: Fact) -> int:
        name = self.relation(fact)
        return HUB_PRIORITY if name in HUB_RELATIONS else RELATION_PRIORITY.get(name, DEFAULT_PRIORITY)


def find_paths(index: GraphIndex, sources: Iterable[int], target: int, limit: int = MAX_PATHS) -> list[KGPath]:
    """The best ``limit`` paths of one or two triples from any source entity to ``target``.

    Sources earlier in ``sources`` win ties (pass the latest mention first); a source equal to the
    target is skipped; each source gives at most one path per kind of link (relations used), so
    that three paths are three different reasons.
    """
    by_neighbour: dict[int, list[Fact]] = defaultdict(list)
    for fact in index.incident.get(target, ()):
        by_neighbour[fact.other(target)].append(fact)
    ranked: list[tuple[tuple, KGPath]] = []
    for position, source in enumerate(dict.fromkeys(sources)):
        if source == target:
            continue
        for fact in by_neighbour.get(source, ()):
            ranked.append(((index.priority(fact), 0, 0, position), KGPath(source, target, (fact,))))
        for first in index.incident.get(source, ()):
            via = first.other(source)
            if via in (source, target):
                continue
            for second in by_neighbour.get(via, ()):
                key = (max(index.priority(first), index.priority(second)), 1, index.degree(via), position)
                ranked.append((key, KGPath(source, target, (first, second))))
    ranked.sort(key=lambda item: item[0])
    paths, seen = [], set()
    for _, path in ranked:
        key = (path.source, tuple(fact.relation for fact in path.facts))
        if key not in seen:
            seen.add(key)
            paths.append(path)
        if len(paths) >= limit:
            break
    return paths


def shares_relation(path: KGPath) -> bool:
    """Whether a two-fact path says "source and target have the same X" (same relation, both heads)."""
    if len(path.facts) != 2:
        return False
    first, second = path.facts
    return first.relation == second.relation and first.head == path.source and second.head == path.target


def relation_words(name: str) -> str:
    return _CAMEL_RE.sub(" ", name).lower()


def fact_text(index: GraphIndex, fact: Fact) -> str:
    """One triple as an English clause ("The Matrix is directed by Lana Wachowski")."""
    relation = index.relation(fact)
    head, tail = index.label(fact.head), index.label(fact.tail)
    phrase = FACT_PHRASES.get(relation)
    return phrase.format(h=head, t=tail) if phrase else f"{head} has {relation_words(relation)} {tail}"


def path_text(index: GraphIndex, path: KGPath, verb: str = "mentioned") -> str:
    """"you mentioned A; A and B share the director D" (or the facts one after the other)."""
    source = index.label(path.source)
    if len(path.facts) == 2:
        first, second = path.facts
        if shares_relation(path):
            noun = SHARED_NOUNS.get(index.relation(first), f"the {relation_words(index.relation(first))}")
            return f"you {verb} {source}; {source} and {index.label(path.target)} share {noun} {index.label(path.via)}"
        return f"you {verb} {source}; {fact_text(index, first)}, and {fact_text(index, second)}"
    return f"you {verb} {source}; {fact_text(index, path.facts[0])}"


def movie_facts(index: GraphIndex, entity: int, limit: int = 4) -> list[Fact]:
    """The most telling triples about one movie (for when no path connects it to the user's movies)."""
    facts = sorted(index.incident.get(entity, ()), key=lambda f: (index.priority(f), index.degree(f.other(entity))))
    return facts[:limit]


def path_facts(paths: list[KGPath]) -> list[Fact]:
    return list(dict.fromkeys(fact for path in paths for fact in path.facts))


# ---------------------------------------------------------------------- the explanation tab


@dataclass
class Explanation:
    """The facts connecting a movie to the user's liked movies, and a sentence built on them."""

    movie_id: int
    liked: list[int]
    paths: list[KGPath]
    facts: list[Fact]  # triples of the graph, the only things ``sentence`` may state
    fact_texts: list[str]
    sentence: str
    source: str  # "generator" or "template"
    note: str = ""
    labels: dict[int, str] = field(default_factory=dict)  # entity → readable name, for every fact entity


def template_sentence(index: GraphIndex, movie_label: str, paths: list[KGPath], facts: list[Fact]) -> str:
    """An explanation that states nothing but the given facts, one clause per liked movie."""
    if not paths and not facts:
        return f"The knowledge graph holds no facts about {movie_label}, so I cannot say why."
    if not paths:
        return f"I suggest {movie_label}: " + "; ".join(fact_text(index, f) for f in facts) + "."
    shared: dict[int, list[str]] = defaultdict(list)
    other: dict[int, list[str]] = defaultdict(list)
    for path in paths:
        first = path.facts[0]
        if shares_relation(path):
            noun = SHARED_NOUNS.get(index.relation(first), f"the {relation_words(index.relation(first))}")
            shared[path.source].append(f"{noun} {index.label(path.via)}")
        else:
            other[path.source].append(", and ".join(fact_text(index, f) for f in path.facts))
    clauses = []
    for source in dict.fromkeys(path.source for path in paths):
        name = index.label(source)
        parts = [f"{name} and {movie_label} share " + " and ".join(shared[source])] if shared[source] else []
        clauses.append(f"you liked {name}: " + "; ".join(parts + other[source]))
    sentence = f"I suggest {movie_label} because " + "; and ".join(clauses) + "."
    return sentence[0].upper() + sentence[1:]


def unsupported_entities(pipeline: "CRS", sentence: str, allowed_entities: set[int], allowed_movies: set[int]) -> list[str]:
    """Names linked in ``sentence`` that are neither among the allowed entities nor the allowed movies."""
    bad = []
    for entity in pipeline.linker.link(sentence):
        if entity.entity in allowed_entities or (entity.movie_id is not None and entity.movie_id in allowed_movies):
            continue
        bad.append(entity.name)
    return bad


def generated_sentence(pipeline: "CRS", movie_id: int, liked: list[int], topics: list[str]) -> str | None:
    """The generator's reply recommending ``movie_id`` after the user liked ``liked``, its
    ``[topic]`` step forced to the facts' entities; None without a generator or on empty output."""
    if pipeline.generator is None:
        return None
    from crs.gen.conversation import Steps
    from crs.serve.pipeline import fill_slots

    movie = pipeline.movie(movie_id)
    steps = Steps(goal="recommend", topics=topics, item=movie.display_name)
    generated = pipeline.generator.generate([liked_context(liked)], [[(movie_id, 0.0)]], pipeline.catalogue, forced=[steps])[0]
    text, _ = fill_slots(generated.reply, [(movie_id, 0.0)], pipeline.catalogue)
    return text.strip() or None


def explain_movie(pipeline: "CRS", movie_id: int, liked: list[int], max_paths: int = MAX_PATHS) -> Explanation:
    """Why ``movie_id`` suits someone who liked ``liked``: KG facts, and a sentence stating only them."""
    kg, catalogue = pipeline.kg, pipeline.catalogue
    index = GraphIndex.for_graph(kg, catalogue)
    movie = catalogue.by_id(movie_id)
    target = kg.movie_to_entity.get(movie_id)
    liked = [m for m in liked if m != movie_id]
    sources = [kg.movie_to_entity[m] for m in liked if m in kg.movie_to_entity]
    paths = find_paths(index, sources, target, max_paths) if target is not None else []
    facts = path_facts(paths) if paths else (movie_facts(index, target) if target is not None else [])
    note = "" if paths or not liked else NO_PATH_NOTE
    fact_entities = {e for f in facts for e in (f.head, f.tail)}
    template = template_sentence(index, movie.display_name, paths, facts)
    sentence, source = template, "template"
    topics = [index.label(e) for e in dict.fromkeys(e for f in facts for e in (f.head, f.tail)) if e not in index.movie_names]
    try:
        generated = generated_sentence(pipeline, movie_id, liked, topics)
    except Exception:  # the template is always a correct answer; a generator failure is logged, not shown
        logger.exception("generating the explanation of movie %s failed", movie_id)
        generated = None
    if generated:
        allowed_movies = {movie_id, *liked, *duplicates(catalogue, [movie_id, *liked])}
        allowed_entities = fact_entities | set(sources) | ({target} if target is not None else set())
        bad = unsupported_entities(pipeline, generated, allowed_entities, allowed_movies)
        stated = {e.entity for e in pipeline.linker.link(generated)} & (fact_entities - {target})
        if not bad and not stated:
            note = f"{note} The generated sentence stated none of the facts; a sentence built from them is shown instead.".strip()
        elif bad:
            rejected = (f"The generated sentence named {', '.join(bad)}, which these facts do not support; "
                        "a sentence built from the facts is shown instead.")
            note = f"{note} {rejected}".strip()
        else:
            sentence, source = generated, "generator"
    return Explanation(movie_id=movie_id, liked=liked, paths=paths, facts=facts,
                       fact_texts=[fact_text(index, f) for f in facts], sentence=sentence, source=source, note=note,
                       labels={e: index.label(e) for e in fact_entities})
