"""What the UI tabs show: the API's answers (:mod:`crs.ui.api`) as escaped Markdown and table rows.

No Gradio imports: ``app.py`` only puts these values into components.
"""

from __future__ import annotations

from crs.serve.models import Models
from crs.ui import api
from crs.ui.chat import plain_markdown
from crs.ui.evaluation import HEADERS, evaluate_first, metrics_rows, no_data_message, recall_figure

RANKING_HEADERS = ["#", "title", "year", "score"]
FACT_HEADERS = ["head", "relation", "tail"]


def note_markdown(note: str) -> str:
    return f"**Note:** {plain_markdown(note)}" if note else ""


def ranking_rows(ranking: list[dict] | None) -> list[list]:
    return [[rank, item["title"], item["year"] or "", item["score"]] for rank, item in enumerate(ranking or [], 1)]


def movie_names(movies: list[dict]) -> str:
    return ", ".join(f"{m['title']} ({m['year']})" if m["year"] else m["title"] for m in movies)


def next_movie_view(models: Models, liked: object, k: object) -> tuple[str, list[list], list[list]]:
    """(note, recommender rows, language-model rows)."""
    answer = api.next_movie_json(models, liked, k)
    header = f"Because you liked **{plain_markdown(movie_names(answer['liked']))}**:" if answer["liked"] else ""
    text = "\n\n".join(part for part in (header, note_markdown(answer["note"])) if part)
    return text, ranking_rows(answer["recommender"]), ranking_rows(answer["language_model"])


def zero_shot_view(models: Models, liked: object, template: object, k: object) -> tuple[str, list[list]]:
    """(note, rows of the LM's ranking)."""
    answer = api.zero_shot_json(models, liked, template, k)
    header = (f"The language model ranked the recommender's top {answer['candidates']} candidates for "
              f"**{plain_markdown(movie_names(answer['liked']))}**." if answer.get("ranking") else "")
    return "\n\n".join(part for part in (header, note_markdown(answer["note"])) if part), ranking_rows(answer["ranking"])


def explain_view(models: Models, movie: object, liked: object) -> tuple[str, list[list], str]:
    """(the sentence and where it comes from, fact rows, the paths in words)."""
    answer = api.explain_json(models, movie, liked)
    if answer["movie"] is None:
        return note_markdown(answer["note"]), [], ""
    source = "generated from these facts" if answer["source"] == "generator" else "built from these facts"
    text = f"> {plain_markdown(answer['sentence'])}\n\n*({source})*"
    if answer["note"]:
        text += "\n\n" + note_markdown(answer["note"])
    rows = [[f["head"], f["relation"], f["tail"]] for f in answer["facts"]]
    paths = "\n".join(f"- {plain_markdown(p)}" for p in answer["paths"]) or "No path connects it to the movies you liked."
    return text, rows, paths


def liked_view(models: Models, dialogue: object, movie: object) -> tuple[dict, str]:
    """(label confidences, evidence and notes)."""
    answer = api.liked_json(models, dialogue, movie)
    if answer["probability"] is None:
        return {}, note_markdown(answer["note"])
    p = answer["probability"]
    text = f"**Evidence read:** {plain_markdown(answer['evidence'])}"
    if answer["note"]:
        text += "\n\n" + note_markdown(answer["note"])
    return {"liked": p, "did not like": round(1 - p, 4)}, text


def evaluate_view(models: Models, dialogues: object, progress: bool = True) -> tuple[str, list[list], object]:
    """(summary, metrics rows, Recall@k figure or None)."""
    if models.pipeline is None:
        return note_markdown(models.note), [], None
    try:
        count = int(dialogues)
    except (TypeError, ValueError):
        return note_markdown("Give the number of test dialogues to evaluate."), [], None
    try:
        run = evaluate_first(models.pipeline.recommender, count, progress=progress, lock=models.lock)
    except FileNotFoundError as error:
        return note_markdown(no_data_message(error)), [], None
    summary = (f"Replayed the first **{run.dialogues:,}** test dialogues: {run.turns:,} recommender turns that mention a movie, "
               f"each ranked against the {len(models.pipeline.catalogue):,}-movie catalogue.")
    return summary, metrics_rows(run.result), recall_figure(run.result)


__all__ = ["HEADERS", "RANKING_HEADERS", "FACT_HEADERS", "next_movie_view", "zero_shot_view", "explain_view", "liked_view", "evaluate_view"]
