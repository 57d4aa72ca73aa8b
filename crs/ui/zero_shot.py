"""Tuning-free prompting: the pre-trained language model ranks movies under an editable hard prompt.

The template (``{liked}`` is where the liked movies go) is scored by ``crs.gen.ranker.ZeroShotRanker``
for each candidate, the recommender's top :data:`crs.ui.next_movie.CANDIDATES` for those liked
movies; no weight is tuned for the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crs.serve.models import NO_LM_NOTE, resolve_movies
from crs.ui.next_movie import PICK_ONE, candidates, clamp_k, lm_ranking

if TYPE_CHECKING:
    from crs.serve.pipeline import CRS

MAX_TEMPLATE_CHARS = 2000


@dataclass
class ZeroShotResult:
    liked: list[int]
    template: str
    ranking: list[tuple[int, float]] | None = None  # (movie id, log-likelihood), best first
    candidates: int = 0  # how many movies the LM ranked
    note: str = ""


def named_templates() -> dict[str, str]:
    """The templates of prompts/zero_shot.yaml by name ({} when the zero-shot code or file is missing)."""
    try:
        from crs.gen.ranker import load_templates

        return load_templates()
    except (ImportError, FileNotFoundError, ValueError):
        return {}


def default_template(ranker: Any) -> str:
    """The ranker's own template, or "" without a ranker."""
    return getattr(ranker, "default_template", "") if ranker is not None else ""


def zero_shot(pipeline: "CRS", ranker: Any, liked: object, template: object = None, k: object = 10,
              ranker_note: str = NO_LM_NOTE) -> ZeroShotResult:
    """The LM's top ``k`` of the recommender's candidates under ``template`` (the default when blank)."""
    text = template if isinstance(template, str) else ""
    text = text.strip() or default_template(ranker)
    ids, unknown = resolve_movies(pipeline, liked)
    notes = [f"Not found in the catalogue: {', '.join(unknown)}."] if unknown else []
    if ranker is None:
        return ZeroShotResult(liked=ids, template=text, note=" ".join(notes + [ranker_note]))
    if len(text) > MAX_TEMPLATE_CHARS:
        return ZeroShotResult(liked=ids, template=text[:MAX_TEMPLATE_CHARS],
                              note=f"The template is longer than {MAX_TEMPLATE_CHARS:,} characters; shorten it.")
    if not ids:
        return ZeroShotResult(liked=[], template=text, note=" ".join(notes + [PICK_ONE]))
    pool = [movie for movie, _ in candidates(pipeline, ids)]
    ranking, note = lm_ranking(ranker, ids, pool, text, clamp_k(k))
    return ZeroShotResult(liked=ids, template=text, ranking=ranking, candidates=len(pool), note=" ".join(notes + ([note] if note else [])))
