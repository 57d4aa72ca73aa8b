"""The goal step as a classifier: the generator's goal scores and the dialogue's shape, combined.

The generator alone predicts the next recommender turn's goal from its ``[goal]`` step; the words of
each goal get a log-probability (:meth:`crs.gen.reply.ReplyGenerator.goal_log_probs`). Whether a
recommender speaks again with a greeting, a question or a movie also follows from things the
generator sees only as tokens: how many recommender turns came before, whether the seeker just
said goodbye, thanked, asked or named a movie. :class:`GoalHead` is a multinomial logistic
regression (scikit-learn's ``LogisticRegression``) over the six goal log-probabilities and the
:data:`FEATURES` of :func:`goal_features`, standardised; it is fitted on training turns with the
regularisation chosen by validation accuracy (:func:`crs.eval.goals.fit_goal_head`) and stored as
the checkpoint's ``goal_head.json``, which the generator then uses to choose the goal step::

    python -m crs.eval.goals --checkpoint checkpoints/default --head [--write]

The features read only what a chat has at that point (the turns so far), so the chat, the harness
and the other tabs choose goals the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crs.data.context import DialogueContext
from crs.data.redial import RECOMMENDER
from crs.gen.steps import _FAREWELL_RE, _GREETING_RE, _PREFERENCE_RE, GOALS
from crs.io import write_json

GOAL_HEAD_FILE = "goal_head.json"  # a checkpoint's goal classifier (crs.eval.goals --head)

_THANKS_RE = re.compile(r"\b(thanks|thank you|thx|ty)\b", re.IGNORECASE)
_ASKS_RE = re.compile(r"\b(recommend|suggest|suggestions?|looking for|any (ideas|suggestions)|what (else|other)|something|another)\b", re.IGNORECASE)

FEATURES = (
    "recommender_turns_0", "recommender_turns_1", "recommender_turns_2", "recommender_turns_3", "recommender_turns_4_or_more",
    "recommender_turns_scaled", "start_of_dialogue",
    "seeker_question", "seeker_greets", "seeker_farewell", "seeker_thanks", "seeker_asks", "seeker_names_movie",
    "movies_mentioned_scaled", "recommending_turns_scaled", "recommender_asked", "recommender_named_movie",
    "seeker_words_scaled", "seeker_preference_words",
)
INPUTS = tuple(f"log_prob_{g}" for g in GOALS) + FEATURES  # what a head reads, in order (named in its file)


def goal_features(context: DialogueContext) -> np.ndarray:
    """The :data:`FEATURES` of the turn after ``context`` (floats in [0, 1]): the number of
    recommender turns so far, what the seeker's last turn does (asks, greets, says goodbye, thanks,
    names a movie) and what the recommender's last turn did."""
    turns = context.turns
    mine = [t for t in turns if t.role == RECOMMENDER]
    theirs = [t for t in turns if t.role != RECOMMENDER]
    seeker = theirs[-1].text if theirs else ""
    r = len(mine)
    values = [
        r == 0, r == 1, r == 2, r == 3, r >= 4, min(r, 15) / 15, not turns,
        "?" in seeker, bool(_GREETING_RE.search(seeker)), bool(_FAREWELL_RE.search(seeker)), bool(_THANKS_RE.search(seeker)),
        bool(_ASKS_RE.search(seeker)), bool(theirs and theirs[-1].movies),
        min(len(context.mentioned_movies), 10) / 10, min(sum(bool(t.movies) for t in mine), 5) / 5,
        bool(mine and "?" in mine[-1].text), bool(mine and mine[-1].movies),
        min(len(seeker.split()), 40) / 40, bool(_PREFERENCE_RE.search(seeker)),
    ]
    return np.asarray(values, dtype=np.float32)


@dataclass
class GoalHead:
    """``argmax(coef @ ((x - mean) / scale) + intercept)`` over ``x`` = [goal log-probabilities
    (:data:`GOALS` order), :func:`goal_features`]."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (len(GOALS), inputs)
    intercept: np.ndarray  # (len(GOALS),)
    info: dict = field(default_factory=dict)  # how it was fitted (C, turns, validation accuracy)

    @staticmethod
    def inputs(log_probs: np.ndarray, features: np.ndarray) -> np.ndarray:
        log_probs, features = np.asarray(log_probs, dtype=np.float64), np.asarray(features, dtype=np.float64)
        if log_probs.ndim != 2 or log_probs.shape[1] != len(GOALS) or features.shape != (len(log_probs), len(FEATURES)):
            raise ValueError(f"goal head inputs: expected ({len(log_probs)}, {len(GOALS)}) log-probabilities and "
                             f"({len(log_probs)}, {len(FEATURES)}) features, got {log_probs.shape} and {features.shape}")
        return np.hstack([log_probs, features])

    def logits(self, log_probs: np.ndarray, features: np.ndarray) -> np.ndarray:
        x = (self.inputs(log_probs, features) - self.mean) / self.scale
        return x @ self.coef.T + self.intercept

    def choose(self, log_probs: np.ndarray, features: np.ndarray) -> list[str]:
        return [GOALS[int(j)] for j in self.logits(log_probs, features).argmax(1)]

    @classmethod
    def fit(cls, log_probs: np.ndarray, features: np.ndarray, gold: Sequence[int], c: float, seed: int = 0) -> GoalHead:
        """A multinomial logistic regression (L2, inverse strength ``c``) on standardised inputs."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        x = cls.inputs(log_probs, features)
        scaler = StandardScaler().fit(x)
        model = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit(scaler.transform(x), np.asarray(gold))
        coef = np.zeros((len(GOALS), x.shape[1]))
        intercept = np.full(len(GOALS), -1e4)  # a goal no training turn had is never chosen
        coef[model.classes_] = model.coef_ if len(model.classes_) > 2 else np.vstack([-model.coef_, model.coef_])
        intercept[model.classes_] = model.intercept_ if len(model.classes_) > 2 else np.array([-model.intercept_[0], model.intercept_[0]])
        scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        return cls(scaler.mean_, scale, coef, intercept, {"C": c, "train_turns": len(x)})

    def save(self, path: str | Path) -> None:
        write_json(Path(path), {"goals": list(GOALS), "inputs": list(INPUTS),
                                "mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                                "intercept": self.intercept.tolist(), "info": self.info})

    @classmethod
    def load(cls, path: str | Path) -> GoalHead:
        """A saved head; a ValueError naming ``path`` when it is unreadable or fitted for other
        goals or features (refit it with ``python -m crs.eval.goals --checkpoint DIR --head --write``)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            head = cls(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["scale"], dtype=np.float64),
                       np.asarray(data["coef"], dtype=np.float64), np.asarray(data["intercept"], dtype=np.float64), dict(data.get("info", {})))
            inputs = data["inputs"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a goal head file ({error!r})") from error
        if data.get("goals") != list(GOALS) or inputs != list(INPUTS):
            raise ValueError(f"{path}: fitted for other goals or features than this version's; refit it with "
                             f"python -m crs.eval.goals --checkpoint {path.parent} --head --write")
        width = len(INPUTS)
        if head.mean.shape != (width,) or head.scale.shape != (width,) or head.coef.shape != (len(GOALS), width) \
                or head.intercept.shape != (len(GOALS),):
            raise ValueError(f"{path}: corrupt goal head (array shapes do not match {len(GOALS)} goals x {width} inputs)")
        return head
