"""Why this movie? Knowledge-graph paths from what the user mentioned to it, and a grounded sentence.

The paths are those of :mod:`kg.paths` (one or two real triples of the checkpoint's graph,
the most telling first). The explanation tab turns the facts of the best paths into a sentence: the generator's, forced to talk about those facts, when it names
nothing the facts do not hold, else a template built from the facts.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crs.data.catalogue import duplicates
from crs.serve.models import liked_context
from kg.paths import (
    MAX_PATHS,
    SHARED_NOUNS,
    Fact,
    GraphIndex,
    KGPath,
    fact_text,
    find_paths,
    movie_facts,
    path_facts,
    relation_words,
    shares_relation,
)

if TYPE_CHECKING:
    from crs.serve.pipeline import CRS

logger = logging.getLogger(__name__)

NO_PATH_NOTE = "No path of one or two facts connects it to the movies you liked; these are facts about the movie itself."


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
    from crs.gen.steps import Steps
    from crs.serve.pipeline import fill_slots

    movie = pipeline.movie(movie_id)
    steps = Steps(goal="recommend", topics=topics, item=movie.display_name)
    generated = pipeline.generator.generate([liked_context(liked)], [[(movie_id, 0.0)]], pipeline.catalogue, forced=[steps])[0]
    text, _ = fill_slots(generated.reply, [(movie_id, 0.0)], pipeline.catalogue)
    return text.strip() or None


def explain_movie(pipeline: "CRS", movie_id: int, liked: list[int], max_paths: int = MAX_PATHS) -> Explanation:
    """Why ``movie_id`` suits someone who liked ``liked``: KG facts, and a sentence stating only them."""
    kg, catalogue = pipeline.kg, pipeline.catalogue
    index = pipeline.graph_index
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
