"""The models the UI serves, loaded once, and the movie look-ups every task needs."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crs.data.catalogue import Catalogue

if TYPE_CHECKING:
    from crs.data.context import DialogueContext
    from crs.serve.chat import ChatRequest, ChatResult
    from crs.serve.pipeline import CRS

logger = logging.getLogger(__name__)

NO_MODEL_NOTE = "No trained model is installed: {checkpoint} has no config.json. The README explains how to train one."
NO_LM_NOTE = "No language model in this checkpoint (it has no lm/ folder), so there is no tuning-free ranking."
NO_ZERO_SHOT_CODE_NOTE = "No language model in this checkpoint: the zero-shot ranker (crs.gen.ranker) is not part of this installation."


def load_pipeline(checkpoint: str | Path) -> "CRS":
    """:meth:`CRS.from_pretrained` (a checkpoint without ``generator/`` chats with template replies)."""
    from crs.serve.pipeline import CRS

    return CRS.from_pretrained(checkpoint)


def load_ranker(checkpoint: str | Path) -> tuple[Any, str]:
    """The checkpoint's tuning-free ranker (``crs.gen.ranker.ZeroShotRanker``), or None and why not."""
    try:
        from crs.gen.ranker import ZeroShotRanker
    except ImportError:
        return None, NO_ZERO_SHOT_CODE_NOTE
    if not ZeroShotRanker.present(checkpoint):
        return None, NO_LM_NOTE
    try:
        return ZeroShotRanker.from_pretrained(checkpoint), ""
    except Exception as error:  # a broken lm/ folder must not take the other tabs down
        logger.exception("could not load the language model of %s", checkpoint)
        return None, f"The language model in {checkpoint}/lm could not be loaded: {error}"


@dataclass
class Models:
    """The chat pipeline and the zero-shot ranker of one checkpoint; ``None`` parts carry a note.

    ``lock`` serialises model calls from the server's worker threads: the models' memos and the
    fast tokenizers are not thread-safe. Handlers hold it while they compute, never while they
    stream (and the evaluation takes it batch by batch), so one user's long job cannot stall the chat.
    Chat turns go through :meth:`chat_turn`, which batches the turns of concurrent users.
    """

    checkpoint: Path
    pipeline: "CRS | None" = None
    ranker: Any = None  # crs.gen.ranker.ZeroShotRanker
    note: str = ""  # why ``pipeline`` is None
    ranker_note: str = NO_LM_NOTE  # why ``ranker`` is None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    _batcher: Any = field(default=None, repr=False, compare=False)
    _batcher_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def chat_turn(self, request: "ChatRequest") -> "ChatResult":
        """One chat turn (:class:`crs.serve.chat.ChatRequest`), computed with the turns of the other
        users that arrive at the same time (:class:`crs.serve.batching.TurnBatcher`, holding ``lock``)."""
        from crs.serve.batching import TurnBatcher
        from crs.serve.chat import chat_turns

        # not ``lock``: the batcher holds that while a batch computes, and the turns that arrive
        # meanwhile must queue up for the next batch instead of waiting to be submitted
        with self._batcher_lock:
            if self._batcher is None:
                self._batcher = TurnBatcher(lambda requests: chat_turns(self.pipeline, requests, self.checkpoint), lock=self.lock)
        return self._batcher(request)

    @property
    def batch_sizes(self) -> list[int]:
        """The size of every batch of chat turns computed so far."""
        return list(self._batcher.batch_sizes) if self._batcher is not None else []

    @classmethod
    def load(cls, checkpoint: str | Path, with_ranker: bool = True, warm_up: bool = True) -> "Models":
        """Everything the checkpoint holds. A missing checkpoint gives a model-less instance whose
        note says so; a broken one is logged and named in the note (the UI still starts). With
        ``warm_up``, one turn is computed before it returns (:meth:`CRS.warm_up`)."""
        checkpoint = Path(checkpoint)
        if not (checkpoint / "config.json").is_file():
            return cls(checkpoint, note=NO_MODEL_NOTE.format(checkpoint=checkpoint))
        try:
            pipeline = load_pipeline(checkpoint)
        except Exception as error:
            logger.exception("could not load the checkpoint %s", checkpoint)
            return cls(checkpoint, note=f"The model in {checkpoint} could not be loaded: {error}")
        ranker, ranker_note = load_ranker(checkpoint) if with_ranker else (None, NO_LM_NOTE)
        if warm_up:
            try:
                logger.info("%s: warmed up in %.1f s", checkpoint, pipeline.warm_up())
            except Exception:  # the first user's turn will say what is wrong; serving goes on
                logger.exception("could not warm up the model of %s", checkpoint)
        return cls(checkpoint, pipeline, ranker, "", ranker_note)


@lru_cache(maxsize=8)
def _names(catalogue: Catalogue) -> dict[str, int]:
    """Case-folded display name and bare title → movie id; a name shared by several entries goes
    to the one ReDial mentions most ("the matrix" is The Matrix (1999), not its year-less duplicate)."""
    index: dict[str, int] = {}
    for movie in sorted(catalogue.movies, key=lambda m: -m.mentions):
        index.setdefault(movie.display_name.casefold(), movie.movie_id)
        index.setdefault(movie.title.casefold(), movie.movie_id)
    return index


def resolve_movie(pipeline: "CRS", value: object) -> int | None:
    """A movie id from what a user or API client gave: an id, a display name ("Heat (1995)") or a
    title to search for (the closest title wins). None when nothing matches."""
    catalogue = pipeline.catalogue
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value) if int(value) == value and int(value) in catalogue else None
    text = " ".join(str(value).split())
    if not text:
        return None
    if text.isdigit() and int(text) in catalogue:
        return int(text)
    exact = _names(catalogue).get(text.casefold())
    if exact is not None:
        return exact
    found = pipeline.linker.search_titles(text[:200], limit=1)
    return found[0][0] if found else None


def resolve_movies(pipeline: "CRS", values: object) -> tuple[list[int], list[str]]:
    """Movie ids for a list of values (or one string, movies separated by ";" or new lines; titles
    may hold commas), without repeats, and the values that matched no movie."""
    if values is None:
        values = []
    elif isinstance(values, str):
        values = re.split(r"[;\n]", values)
    elif not isinstance(values, (list, tuple)):
        values = [values]
    ids: list[int] = []
    unknown: list[str] = []
    for value in values:
        movie = resolve_movie(pipeline, value)
        if movie is None:
            if str(value).strip():
                unknown.append(str(value).strip())
        elif movie not in ids:
            ids.append(movie)
    return ids, unknown


def liked_context(liked: list[int], text: str = "I liked {movies}. What should I watch next?") -> "DialogueContext":
    """A one-turn dialogue in which the seeker says they liked these movies (ReDial's ``@id`` form,
    which the entity linker reads back exactly), with the movies marked as mentioned."""
    from crs.data.context import DialogueContext
    from crs.data.redial import SEEKER, Turn

    placeholders = [f"@{m}" for m in liked]
    movies = " and ".join([", ".join(placeholders[:-1]), placeholders[-1]]) if len(placeholders) > 1 else "".join(placeholders)
    return DialogueContext(turns=[Turn(SEEKER, text.format(movies=movies or "movies"), list(liked))], mentioned_movies=list(liked))
