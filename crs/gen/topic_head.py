"""The topic step as a classifier: which of the candidate topics, if any, the reply should name.

With ``conv.topic_choice: scored`` the topic step is a choice among candidates: the people and
genres the seeker named and the recommended movie's genres (:meth:`crs.serve.pipeline.CRS.topic_candidates`).
The generator scores each candidate's words after ``[goal] g [topic]`` against "none"; alone, it
names a topic far more often than people do, so a fixed bias on "none" was chosen on validation.
Whether a reply names a topic also follows from where the candidate came from (the seeker's last
turn, earlier turns, the recommender's own words, the movie's genres), what kind of entity it is
and which goal the turn has. :class:`TopicHead` is a logistic regression (scikit-learn's
``LogisticRegression``) over, per candidate, the generator's score margin over "none", the
:data:`CANDIDATE_FEATURES` and the goal, standardised; the reply names the most probable candidate
when its probability passes the head's threshold, else no topic. It is fitted on training turns
(labels: the non-movie entities the human reply names, :func:`crs.gen.steps.turn_topics`), with
the regularisation and the threshold chosen by topic F1 on validation turns
(:func:`crs.eval.topics.fit_topic_head`), and stored as the checkpoint's ``topic_head.json``::

    python -m crs.eval.topics --checkpoint checkpoints/default [--write]

Every input is known when the chat decides (the turns so far, the ranking's best movie), so the
chat, the harness and the other tabs choose topics the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crs.gen.steps import GOALS
from crs.io import write_json

TOPIC_HEAD_FILE = "topic_head.json"  # a checkpoint's topic classifier (crs.eval.topics --write)

CANDIDATE_FEATURES = (
    "seeker_last_turn",  # named in the seeker's last turn
    "seeker_named",  # named by the seeker in any turn so far
    "seeker_mentions_scaled",  # how many seeker turns named it (up to 3), / 3
    "recommender_named",  # the recommender named it earlier
    "movie_genre",  # a genre of the recommended movie
    "is_genre",
    "is_person",
    "candidates_scaled",  # how many candidates the turn has (up to 6), / 6
    "recommender_turns_scaled",  # recommender turns so far (up to 15), / 15
)
INPUTS = (("score_margin",) + CANDIDATE_FEATURES + tuple(f"goal_{g}" for g in GOALS)
          + ("movie_genre_and_seeker_named", "recommend_and_seeker_last_turn"))  # a head's inputs, in order


def candidate_features(seeker_turns: Sequence[int], recommender_named: bool, movie_genre: bool, kind: str,
                       candidates: int, recommender_turns: int) -> np.ndarray:
    """The :data:`CANDIDATE_FEATURES` of one candidate: ``seeker_turns`` are the positions (0 = the
    seeker's last turn, 1 = the one before, ...) of the seeker turns that named it."""
    values = [0 in seeker_turns, bool(seeker_turns), min(len(seeker_turns), 3) / 3, recommender_named, movie_genre,
              kind == "genre", kind == "person", min(candidates, 6) / 6, min(recommender_turns, 15) / 15]
    return np.asarray(values, dtype=np.float32)


def head_inputs(margins: np.ndarray, features: np.ndarray, goal: str) -> np.ndarray:
    """(n, len(INPUTS)) for the n candidates of one turn: their score margins over "none" (n,),
    their :data:`CANDIDATE_FEATURES` (n, F) and the turn's goal."""
    margins, features = np.asarray(margins, dtype=np.float64).reshape(-1), np.asarray(features, dtype=np.float64)
    if features.shape != (len(margins), len(CANDIDATE_FEATURES)):
        raise ValueError(f"topic head inputs: expected ({len(margins)}, {len(CANDIDATE_FEATURES)}) candidate features, got {features.shape}")
    if goal not in GOALS:
        raise ValueError(f"topic head inputs: unknown goal {goal!r}")
    n = len(margins)
    goals = np.zeros((n, len(GOALS)))
    goals[:, GOALS.index(goal)] = 1.0
    names = CANDIDATE_FEATURES
    seeker, movie, last = features[:, names.index("seeker_named")], features[:, names.index("movie_genre")], features[:, names.index("seeker_last_turn")]
    crossed = np.stack([movie * seeker, float(goal == "recommend") * last], axis=1) if n else np.zeros((0, 2))
    return np.hstack([margins[:, None], features, goals, crossed])


@dataclass
class TopicHead:
    """p(candidate named) = sigmoid(coef @ ((x - mean) / scale) + intercept), x = :func:`head_inputs`;
    a turn names its most probable candidate when p reaches ``threshold``."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (len(INPUTS),)
    intercept: float
    threshold: float
    info: dict = field(default_factory=dict)  # how it was fitted (C, turns, validation F1)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        z = ((np.asarray(inputs, dtype=np.float64) - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def choose(self, names: Sequence[str], margins: np.ndarray, features: np.ndarray, goal: str) -> list[str]:
        """[the most probable of ``names``] when its probability reaches the threshold, else []."""
        if not len(names):
            return []
        p = self.probabilities(head_inputs(margins, features, goal))
        best = int(p.argmax())
        return [names[best]] if p[best] >= self.threshold else []

    @classmethod
    def fit(cls, inputs: np.ndarray, labels: Sequence[bool], c: float, threshold: float = 0.5, seed: int = 0) -> TopicHead:
        """A logistic regression (L2, inverse strength ``c``) on standardised :func:`head_inputs` rows."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        x, y = np.asarray(inputs, dtype=np.float64), np.asarray(labels, dtype=bool)
        if x.ndim != 2 or x.shape[1] != len(INPUTS) or len(x) != len(y):
            raise ValueError(f"topic head fit: expected (n, {len(INPUTS)}) inputs and n labels, got {x.shape} and {y.shape}")
        if y.all() or not y.any():
            raise ValueError("topic head fit: the training candidates need both named and unnamed ones")
        scaler = StandardScaler().fit(x)
        model = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit(scaler.transform(x), y)
        scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        return cls(scaler.mean_, scale, model.coef_[0].copy(), float(model.intercept_[0]), threshold, {"C": c, "train_candidates": len(x)})

    def save(self, path: str | Path) -> None:
        write_json(Path(path), {"goals": list(GOALS), "inputs": list(INPUTS), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                                "coef": self.coef.tolist(), "intercept": self.intercept, "threshold": self.threshold, "info": self.info})

    @classmethod
    def load(cls, path: str | Path) -> TopicHead:
        """A saved head; a ValueError naming ``path`` when it is unreadable or fitted for other
        inputs (refit it with ``python -m crs.eval.topics --checkpoint DIR --write``)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            head = cls(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["scale"], dtype=np.float64),
                       np.asarray(data["coef"], dtype=np.float64), float(data["intercept"]), float(data["threshold"]), dict(data.get("info", {})))
            inputs = data["inputs"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a topic head file ({error!r})") from error
        if data.get("goals") != list(GOALS) or inputs != list(INPUTS):
            raise ValueError(f"{path}: fitted for other goals or inputs than this version's; refit it with "
                             f"python -m crs.eval.topics --checkpoint {path.parent} --write")
        width = len(INPUTS)
        if head.mean.shape != (width,) or head.scale.shape != (width,) or head.coef.shape != (width,) or not 0.0 <= head.threshold <= 1.0:
            raise ValueError(f"{path}: corrupt topic head (array shapes do not match {width} inputs, or a threshold outside [0, 1])")
        return head
