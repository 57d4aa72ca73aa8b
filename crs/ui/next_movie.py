"""Sequential recommendation: movies someone liked in, the next movie out.

The liked movies become a one-turn dialogue ("I liked @id and @id."), which the recommender ranks
the catalogue for; its top :data:`CANDIDATES` are also ranked by the checkpoint's pre-trained
language model under a hard prompt, with no task tuning (``crs.gen.ranker.ZeroShotRanker``), so
the two columns compare a trained ranker with tuning-free prompting on the same candidates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crs.data.catalogue import duplicates
from crs.serve.models import NO_LM_NOTE, liked_context, resolve_movies

if TYPE_CHECKING:
    from crs.serve.pipeline import CRS

logger = logging.getLogger(__name__)

CANDIDATES = 100
MAX_K = 50
PICK_ONE = "Pick at least one movie you liked."


@dataclass
class NextMovieResult:
    liked: list[int]  # the liked movies understood, in order
    unknown: list[str] = field(default_factory=list)  # inputs that matched no movie
    recommender: list[tuple[int, float]] = field(default_factory=list)  # (movie id, score), best first
    language_model: list[tuple[int, float]] | None = None  # (movie id, log-likelihood); None: no LM
    note: str = ""  # why a column is empty, or what was not understood


def candidates(pipeline: "CRS", liked: list[int], count: int = CANDIDATES) -> list[tuple[int, float]]:
    """The recommender's best ``count`` movies for someone who liked ``liked`` (those films and
    their duplicate catalogue entries left out)."""
    return pipeline.rank(liked_context(liked), rejected=duplicates(pipeline.catalogue, liked), k=count)


def clamp_k(k: object, default: int = 10) -> int:
    try:
        return max(1, min(MAX_K, int(k)))
    except (TypeError, ValueError):
        return default


def lm_ranking(ranker: Any, liked: list[int], pool: list[int], template: str | None, k: int) -> tuple[list[tuple[int, float]] | None, str]:
    """The language model's top ``k`` of ``pool``, or None and why not (never raises). ``template``
    is a text with ``{liked}``, the name of a template in prompts/zero_shot.yaml, or None (the default)."""
    try:
        ranking = ranker.rank(liked, pool, template=template, k=k)
    except ValueError as error:  # the ranker's template check
        return None, f"The prompt template cannot be used: {error}"
    except Exception as error:  # a model failure is reported, the app keeps serving
        logger.exception("zero-shot ranking failed")
        return None, f"The language model could not rank the candidates: {type(error).__name__}: {error}"
    return [(int(movie), float(score)) for movie, score in ranking], ""


def next_movie(pipeline: "CRS", ranker: Any, liked: object, k: object = 10, template: str | None = None,
               ranker_note: str = NO_LM_NOTE) -> NextMovieResult:
    """Top ``k`` next movies from the recommender and from the tuning-free LM ranking of its top 100."""
    ids, unknown = resolve_movies(pipeline, liked)
    k = clamp_k(k)
    notes = [f"Not found in the catalogue: {', '.join(unknown)}."] if unknown else []
    if not ids:
        return NextMovieResult(liked=[], unknown=unknown, note=" ".join(notes + [PICK_ONE]))
    pool = candidates(pipeline, ids)
    result = NextMovieResult(liked=ids, unknown=unknown, recommender=pool[:k])
    if ranker is None:
        notes.append(ranker_note)
    else:
        result.language_model, lm_note = lm_ranking(ranker, ids, [m for m, _ in pool], template, k)
        notes += [lm_note] if lm_note else []
    result.note = " ".join(notes)
    return result


def ranking_rows(pipeline: "CRS", ranking: list[tuple[int, float]] | None) -> list[list]:
    """A ranking as table rows: rank, movie, year, genres, score."""
    rows = []
    for rank, (movie_id, score) in enumerate(ranking or [], 1):
        movie = pipeline.movie(movie_id)
        rows.append([rank, movie.title, movie.year or "", ", ".join(movie.genres), round(float(score), 3)])
    return rows


def ranking_json(pipeline: "CRS", ranking: list[tuple[int, float]] | None) -> list[dict] | None:
    """A ranking for API clients: id, title, year and score per movie (None stays None)."""
    if ranking is None:
        return None
    return [{"id": m, "title": pipeline.movie(m).title, "year": pipeline.movie(m).year, "score": round(float(s), 4)} for m, s in ranking]
