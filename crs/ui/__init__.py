"""The UI's tasks beside the chat, each a pure function of the loaded models (no Gradio imports).

* :mod:`crs.ui.explain` — knowledge-graph paths between what the user mentioned and a movie,
  and a grounded explanation sentence;
* :mod:`crs.ui.next_movie` — sequential recommendation from liked movies, the recommender beside
  the tuning-free language-model ranking;
* :mod:`crs.ui.zero_shot` — the language model's ranking under an editable hard prompt;
* :mod:`crs.ui.liked` — did the seeker like a movie? (also ``python -m crs.ui.liked``);
* :mod:`crs.ui.evaluation` — the scripted evaluation on the first N test dialogues.

:class:`Models` is what the handlers share: the chat pipeline and the optional zero-shot ranker,
each ``None`` with a note when it is not there.
"""

from __future__ import annotations

from crs.serve.models import Models, resolve_movie, resolve_movies

__all__ = ["Models", "resolve_movie", "resolve_movies"]
