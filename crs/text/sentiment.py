"""Did the seeker like a movie? Inferred from what the seeker says about it.

The evidence for a movie is the seeker's turn that mentions it, or, for a movie the recommender
brought up, the seeker's next turn (their reaction). It is written as ``"<title> | <turn>"`` with
movie placeholders rendered as titles, encoded by the sentence encoder, and scored by a logistic
regression trained on ReDial's questionnaire answers (``liked`` 0/1; "did not say" is left out),
with the classes weighted by inverse frequency since about 95% of answers are "liked".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from crs.data.redial import RECOMMENDER, SEEKER, Dialogue, Turn, render_mentions

logger = logging.getLogger(__name__)

UNKNOWN = 2  # questionnaire value for "did not say"


def evidence_turns(turns: list[Turn], movies: list[list[int]] | None = None) -> dict[int, int]:
    """Movie id → index of the seeker turn that speaks about it (latest such turn).

    ``movies`` gives each turn's movies when they come from entity linking rather than from
    ReDial's ``@id`` placeholders (``Turn.movies``).
    """
    movies = movies if movies is not None else [turn.movies for turn in turns]
    evidence: dict[int, int] = {}
    for index, turn in enumerate(turns):
        if turn.role == SEEKER:
            for movie in movies[index]:
                evidence[movie] = index
        elif turn.role == RECOMMENDER and index + 1 < len(turns) and turns[index + 1].role == SEEKER:
            for movie in movies[index]:
                if movie not in movies[index + 1]:
                    evidence.setdefault(movie, index + 1)
    return evidence


def evidence_text(title: str, turn: Turn, titles: dict[int, str]) -> str:
    return f"{title} | {render_mentions(turn.text, titles)}"


@dataclass
class LikedExample:
    conversation_id: str
    movie_id: int
    text: str
    liked: int  # 0 or 1


def liked_examples(dialogues: list[Dialogue], titles: dict[int, str]) -> list[LikedExample]:
    """One example per (dialogue, movie) with a seeker answer of 0/1 and a seeker turn about it."""
    examples = []
    for dialogue in dialogues:
        evidence = evidence_turns(dialogue.turns)
        for movie, feedback in sorted(dialogue.seeker_feedback.items()):
            if feedback.liked == UNKNOWN or movie not in evidence:
                continue
            title = titles.get(movie, dialogue.movie_mentions.get(movie, "this movie"))
            examples.append(LikedExample(dialogue.conversation_id, movie, evidence_text(title, dialogue.turns[evidence[movie]], titles), feedback.liked))
    return examples


class LikedClassifier(nn.Module):
    """Logistic regression over sentence embeddings: p(liked | evidence text)."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, 1)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(embeddings).squeeze(-1))  # (B,)

    def fit(self, embeddings: np.ndarray, labels: np.ndarray, epochs: int = 300, lr: float = 0.05, weight_decay: float = 1e-4) -> list[float]:
        """Full-batch Adam on class-weighted binary cross-entropy; returns the loss per epoch."""
        x = torch.as_tensor(embeddings, dtype=torch.float32)
        y = torch.as_tensor(labels, dtype=torch.float32)
        positive = float(y.mean()) if len(y) else 0.5
        weights = torch.where(y > 0.5, 0.5 / max(positive, 1e-6), 0.5 / max(1 - positive, 1e-6))
        optimizer = torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay)
        losses = []
        for _ in range(epochs):
            logits = self.linear(x).squeeze(-1)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, y, weight=weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses

    @torch.no_grad()
    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        return self(torch.as_tensor(embeddings, dtype=torch.float32)).numpy()

    def save(self, path: str | Path) -> None:
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> "LikedClassifier":
        weights = load_file(str(path))
        model = cls(int(weights["linear.weight"].shape[1]))
        model.load_state_dict(weights)
        return model


def classification_report(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, per-class and macro F1, and the majority-class accuracy to compare with."""
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(probabilities) >= threshold).astype(int)
    report = {"count": int(len(labels)), "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0}
    f1s = []
    for cls in (0, 1):
        tp = int(((predicted == cls) & (labels == cls)).sum())
        precision = tp / max(int((predicted == cls).sum()), 1)
        recall = tp / max(int((labels == cls).sum()), 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[f"f1_{'liked' if cls else 'disliked'}"] = f1
        f1s.append(f1)
    report["macro_f1"] = float(np.mean(f1s))
    majority = int(labels.mean() >= 0.5) if len(labels) else 1
    report["majority_accuracy"] = float((labels == majority).mean()) if len(labels) else 0.0
    report["majority_macro_f1"] = float(2 * report["majority_accuracy"] / (1 + report["majority_accuracy"]) / 2) if len(labels) else 0.0
    return report


class SentimentScorer:
    """p(liked) for evidence texts: sentence encoder + :class:`LikedClassifier`, memoised."""

    def __init__(self, encoder, classifier: LikedClassifier, memo_size: int = 200_000):
        self.encoder, self.classifier, self.memo_size = encoder, classifier, memo_size
        self._memo: dict[str, float] = {}

    def prime(self, texts: list[str], embeddings: np.ndarray) -> None:
        """Fill the memo from embeddings computed elsewhere (training encodes them in bulk)."""
        self._memo.update(zip(texts, self.classifier.predict(embeddings).tolist()))

    def __call__(self, texts: list[str]) -> list[float]:
        todo = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if todo:
            if len(self._memo) > self.memo_size:
                self._memo.clear()
            self.prime(todo, self.encoder.encode(todo))
        return [self._memo[t] for t in texts]


def all_evidence_texts(dialogues: list[Dialogue], titles: dict[int, str]) -> list[str]:
    """Every evidence text a context of these dialogues can produce (for bulk encoding)."""
    texts: dict[str, None] = {}
    for dialogue in dialogues:
        for index, turn in enumerate(dialogue.turns):
            if turn.role == SEEKER:
                for movie in turn.movies:
                    texts.setdefault(evidence_text(titles.get(movie, "this movie"), turn, titles))
            elif index + 1 < len(dialogue.turns) and dialogue.turns[index + 1].role == SEEKER:
                for movie in turn.movies:
                    texts.setdefault(evidence_text(titles.get(movie, "this movie"), dialogue.turns[index + 1], titles))
    return list(texts)
