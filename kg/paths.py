"""Knowledge-graph paths from what a user mentioned to a movie, and the facts as English.

A path is one or two real triples of the graph (``KnowledgeGraph.edge_index``):

* direct: the mentioned entity and the movie share a triple ("John Wick" —starring→ "Keanu Reeves");
* two hops through a shared entity: mentioned —r1— X —r2— movie ("The Matrix" and "John Wick"
  share the star Keanu Reeves).

Paths through specific entities rank first: relations that say something about taste (director,
writer, star, sequel) before production details, and among those the entity with the fewest edges
(a director of five films says more than the genre "drama").
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping

from kg.graph import KnowledgeGraph, base_name

MAX_PATHS = 3
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

    def __init__(self, kg: KnowledgeGraph, movie_names: Mapping[int, str] | None = None):
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
        self.movie_names: dict[int, str] = dict(movie_names or {})  # entity → a readable movie name

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
