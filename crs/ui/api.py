"""What the named API endpoints return: plain JSON-able dicts, one function per endpoint.

Each takes the loaded :class:`~crs.serve.models.Models` and the client's arguments as they came
(strings, ids, lists or junk): bad input gives a dict whose ``note`` says what was wrong, never an
exception. Without a model every endpoint answers with ``note`` saying no model is installed.
Each holds ``models.lock`` while it runs (see :class:`~crs.serve.models.Models`); ``/chat`` holds it
only while it reads the history, its turn going through the chat batcher.
"""

from __future__ import annotations

from functools import wraps
from typing import Callable

from crs.serve.chat import chat_api
from crs.serve.models import Models, resolve_movie, resolve_movies
from crs.ui.explain import explain_movie
from crs.ui.liked import predict_liked
from crs.ui.next_movie import next_movie, ranking_json
from crs.ui.zero_shot import zero_shot
from kg.paths import path_text


def titles(models: Models, ids: list[int]) -> list[dict]:
    return [{"id": m, "title": models.pipeline.movie(m).title, "year": models.pipeline.movie(m).year} for m in ids]


def locked(function: Callable[..., dict]) -> Callable[..., dict]:
    """``function(models, ...)`` run while holding ``models.lock``."""

    @wraps(function)
    def run(models: Models, *args, **kwargs) -> dict:
        with models.lock:
            return function(models, *args, **kwargs)

    return run


def chat(models: Models, message: object, history: object = None) -> dict:
    """``{"reply", "history", "movies", "notice"}`` (see :func:`crs.serve.chat.chat_api`); the turn is
    computed with those of other users arriving at the same time (:meth:`Models.chat_turn`)."""
    if models.pipeline is None:
        return chat_api(None, message, history, models.checkpoint, note=models.note)
    return chat_api(models.pipeline, message, history, models.checkpoint, run=models.chat_turn)


@locked
def next_movie_json(models: Models, liked: object, k: object = 10) -> dict:
    if models.pipeline is None:
        return {"liked": [], "recommender": [], "language_model": None, "note": models.note}
    result = next_movie(models.pipeline, models.ranker, liked, k, ranker_note=models.ranker_note)
    return {"liked": titles(models, result.liked), "recommender": ranking_json(models.pipeline, result.recommender),
            "language_model": ranking_json(models.pipeline, result.language_model), "note": result.note}


@locked
def zero_shot_json(models: Models, liked: object, template: object = "", k: object = 10) -> dict:
    if models.pipeline is None:
        return {"liked": [], "template": "", "ranking": None, "note": models.note}
    result = zero_shot(models.pipeline, models.ranker, liked, template, k, ranker_note=models.ranker_note)
    return {"liked": titles(models, result.liked), "template": result.template,
            "ranking": ranking_json(models.pipeline, result.ranking), "candidates": result.candidates, "note": result.note}


@locked
def explain_json(models: Models, movie: object, liked: object = None) -> dict:
    empty = {"movie": None, "liked": [], "sentence": "", "source": "", "facts": [], "paths": []}
    if models.pipeline is None:
        return empty | {"note": models.note}
    pipeline = models.pipeline
    movie_id = resolve_movie(pipeline, movie)
    if movie_id is None:
        return empty | {"note": "Name the movie to explain (a catalogue title or id)."}
    liked_ids, unknown = resolve_movies(pipeline, liked)
    result = explain_movie(pipeline, movie_id, liked_ids)
    index = pipeline.graph_index
    facts = [{"head": result.labels[f.head], "relation": pipeline.kg.relation_names[f.relation], "tail": result.labels[f.tail],
              "text": text} for f, text in zip(result.facts, result.fact_texts)]
    note = " ".join(([f"Not found in the catalogue: {', '.join(unknown)}."] if unknown else []) + ([result.note] if result.note else []))
    return {"movie": titles(models, [movie_id])[0], "liked": titles(models, result.liked), "sentence": result.sentence,
            "source": result.source, "facts": facts, "paths": [path_text(index, p, verb="liked") for p in result.paths], "note": note}


@locked
def liked_json(models: Models, dialogue: object, movie: object) -> dict:
    if models.pipeline is None:
        return {"movie": None, "probability": None, "liked": None, "evidence": "", "note": models.note}
    result = predict_liked(models.pipeline, dialogue, movie)
    return {"movie": titles(models, [result.movie_id])[0] if result.movie_id is not None else None,
            "probability": None if result.probability is None else round(result.probability, 4),
            "liked": result.liked, "evidence": result.evidence, "note": result.note}
