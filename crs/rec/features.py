"""From dialogue contexts to the tensors the recommender model reads.

For one context:

* ``entities`` — KG entities linked in the turns (movies from ``@id`` placeholders or free-text
  titles, people, genres), the most recent ``max_context_entities``, oldest first;
* ``text`` — the dialogue rendered as plain text ("Seeker: ... Recommender: ..."), movie
  placeholders replaced by titles, for the sentence encoder (truncated from the left);
* ``mentions`` — for every catalogue movie mentioned so far: mentioned by the seeker, by the
  recommender, how recently (1 for the latest mention, decaying by half per later movie), and
  the seeker's inferred sentiment towards it (2 p(liked) - 1, see :mod:`crs.text.sentiment`; 0 when
  nothing the seeker said is about it);
* ``entity_sentiment`` — the same sentiment for the movie entities among ``entities``, 0 for others;
* ``co-occurrence`` — for every catalogue movie, log(1 + the number of training dialogues that
  mention it together with each context movie), summed over context movies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from crs.data.catalogue import Catalogue, Movie
from crs.data.context import DialogueContext
from crs.data.redial import RECOMMENDER, SEEKER, Dialogue, Turn
from crs.text.render import render_turns
from crs.text.sentiment import evidence_text, evidence_turns
from kg.graph import KnowledgeGraph
from kg.linker import EntityLinker

NUM_MENTION_FEATURES = 4  # by seeker, by recommender, recency, seeker sentiment
RECENCY_DECAY = 0.5


def movie_text(movie: Movie) -> str:
    """Facts only (a bundled model never ships plot synopses): title, year, genres, people."""
    parts = [movie.display_name + "."]
    if movie.genres:
        parts.append("Genres: " + ", ".join(movie.genres) + ".")
    if movie.directors:
        parts.append("Directed by " + ", ".join(movie.directors[:2]) + ".")
    if movie.stars:
        parts.append("Starring " + ", ".join(movie.stars[:3]) + ".")
    return " ".join(parts)


def cooccurrence_matrix(dialogues: list[Dialogue], catalogue: Catalogue) -> torch.Tensor:
    """Sparse (N, N) counts of training dialogues mentioning both movies (diagonal zero), coalesced."""
    pairs: dict[tuple[int, int], int] = {}
    for dialogue in dialogues:
        items = sorted({catalogue.index(m) for m in dialogue.movies if m in catalogue})
        for a in items:
            for b in items:
                if a != b:
                    pairs[(a, b)] = pairs.get((a, b), 0) + 1
    if not pairs:
        return torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), (len(catalogue), len(catalogue)), check_invariants=True).coalesce()
    index = torch.tensor(list(pairs), dtype=torch.long).T  # (2, P)
    values = torch.tensor(list(pairs.values()), dtype=torch.float32)
    return torch.sparse_coo_tensor(index, values, (len(catalogue), len(catalogue)), check_invariants=True).coalesce()


@dataclass
class ContextFeatures:
    entities: list[int]
    text: str
    mention_items: list[int]
    mention_values: list[list[float]]  # (len(mention_items), NUM_MENTION_FEATURES)
    entity_sentiment: list[float]  # aligned with entities


class Featurizer:
    """Turns contexts into features; links each distinct turn text once (cached)."""

    def __init__(self, catalogue: Catalogue, kg: KnowledgeGraph, linker: EntityLinker, cooccurrence: torch.Tensor,
                 max_context_entities: int = 32, sentiment: Callable[[list[str]], list[float]] | None = None):
        self.catalogue = catalogue
        self.sentiment = sentiment
        self.kg = kg
        self.linker = linker
        self.cooccurrence = cooccurrence.coalesce()
        self.log_cooccurrence = torch.sparse_coo_tensor(self.cooccurrence.indices(), torch.log1p(self.cooccurrence.values()), self.cooccurrence.shape, check_invariants=True).coalesce()
        self.max_context_entities = max_context_entities
        self.titles = catalogue.titles
        self._turn_cache: dict[str, tuple[list[int], list[int]]] = {}

    def _link_turn(self, turn: Turn) -> tuple[list[int], list[int]]:
        """(entities, catalogue movie ids) of one turn, in text order."""
        cached = self._turn_cache.get(turn.text)
        if cached is None:
            cached = self._from_linked(self.linker.link(turn.text))
            if len(self._turn_cache) > 200_000:
                self._turn_cache.clear()
            self._turn_cache[turn.text] = cached
        return cached

    def _from_linked(self, linked: list) -> tuple[list[int], list[int]]:
        """(entities, catalogue movie ids) of a turn its caller linked already."""
        return [e.entity for e in linked], [e.movie_id for e in linked if e.movie_id is not None and e.movie_id in self.catalogue]

    def features(self, context: DialogueContext) -> ContextFeatures:
        entities: list[int] = []
        by_role: dict[int, set[str]] = {}
        order: list[int] = []  # catalogue item indices in order of mention (repeats kept)
        for position, turn in enumerate(context.turns):
            if context.linked is not None:
                turn_entities, turn_movies = self._from_linked(context.linked[position])
            else:
                turn_entities, turn_movies = self._link_turn(turn)
            entities.extend(turn_entities)
            for movie in turn_movies:
                item = self.catalogue.index(movie)
                by_role.setdefault(item, set()).add(turn.role)
                order.append(item)
        for movie in context.mentioned_movies:  # movies known to the caller but not in the text
            if movie in self.catalogue and self.catalogue.index(movie) not in by_role:
                item = self.catalogue.index(movie)
                by_role[item] = {SEEKER}
                order.append(item)
        recency: dict[int, float] = {}
        for age, item in enumerate(reversed(order)):
            recency.setdefault(item, RECENCY_DECAY**age)
        items = list(by_role)
        polarity = self._polarity(context.turns)
        values = [[float(SEEKER in by_role[i]), float(RECOMMENDER in by_role[i]), recency[i], polarity.get(i, 0.0)] for i in items]
        text = render_turns(context.turns, self.titles, "plain")
        entities = entities[-self.max_context_entities :]
        entity_polarity = {self.kg.movie_to_entity[self.catalogue[i].movie_id]: p for i, p in polarity.items()}
        return ContextFeatures(entities, text, items, values, [entity_polarity.get(e, 0.0) for e in entities])

    def features_batch(self, contexts: list[DialogueContext]) -> list[ContextFeatures]:
        """:meth:`features` of each context, the sentiment of all their evidence texts scored in one batch."""
        if self.sentiment is not None and len(contexts) > 1:
            texts = [text for context in contexts for text in self._evidence(context.turns)[1]]
            if texts:
                self.sentiment(texts)  # memoised: each context's features then read the scores
        return [self.features(context) for context in contexts]

    def _evidence(self, turns: list[Turn]) -> tuple[list[int], list[str]]:
        """The catalogue movies the seeker said something about, and the text that says it of each."""
        linked = [self._link_turn(turn)[1] for turn in turns]
        evidence = {m: i for m, i in evidence_turns(turns, linked).items() if m in self.catalogue}
        movies = list(evidence)
        return movies, [evidence_text(self.titles[m], turns[evidence[m]], self.titles) for m in movies]

    def _polarity(self, turns: list[Turn]) -> dict[int, float]:
        """Catalogue index → 2 p(liked) - 1 for the movies the seeker said something about."""
        if self.sentiment is None:
            return {}
        movies, texts = self._evidence(turns)
        if not movies:
            return {}
        return {self.catalogue.index(m): 2.0 * p - 1.0 for m, p in zip(movies, self.sentiment(texts))}

    def collate(self, features: list[ContextFeatures], text_embeddings: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """A batch: entity ids (B, E) padded with -1, mention features (B, N, F), co-occurrence (B, N), text (B, H)."""
        batch_size, num_items = len(features), len(self.catalogue)
        width = max([len(f.entities) for f in features] + [1])
        entities = torch.full((batch_size, width), -1, dtype=torch.long)
        entity_sentiment = torch.zeros(batch_size, width)
        mentions = torch.zeros(batch_size, num_items, NUM_MENTION_FEATURES)
        context_items = torch.zeros(batch_size, num_items)
        for row, f in enumerate(features):
            if f.entities:
                entities[row, : len(f.entities)] = torch.tensor(f.entities)
                entity_sentiment[row, : len(f.entities)] = torch.tensor(f.entity_sentiment)
            if f.mention_items:
                mentions[row, f.mention_items] = torch.tensor(f.mention_values)
                context_items[row, f.mention_items] = 1.0
        cooccurrence = torch.sparse.mm(self.log_cooccurrence, context_items.T).T  # (B, N): C is symmetric
        batch = {"entities": entities, "entity_sentiment": entity_sentiment, "mentions": mentions, "cooccurrence": cooccurrence}
        if text_embeddings is not None:
            batch["text"] = text_embeddings
        return batch
