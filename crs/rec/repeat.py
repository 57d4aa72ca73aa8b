"""Repeat or new? A gate that lets the recommender name an already mentioned movie again.

ReDial recommenders often name the seeker's movie again ("Oh, <movie> is great!"), and the
standard Recall protocol counts those turns. The recommender's scores rank every movie in one
softmax, where the few mentioned movies compete with thousands of new ones. The gate splits the
prediction in two, as copy mechanisms do:

    p(movie) = π · p_repeat(movie)        for the movies mentioned so far
             = (1 − π) · p_new(movie)     for every other movie

* ``p_new`` is the recommender's softmax over the movies not mentioned, so the order of new movies,
  and with it the new-items protocol and the chat (which never repeats a movie), is unchanged;
* ``p_repeat`` is a softmax over the mentioned movies of a learned mix of the recommender's score
  and the mention features (by seeker, by recommender, recency, seeker sentiment);
* ``π`` is a logistic function of the conversation: how many movies were mentioned, by whom, how
  recently, and how long the conversation is.

Twelve parameters, fitted by maximum likelihood (L-BFGS) on validation turns after the
recommender is trained (:func:`fit_gate`): training turns would not do, since the recommender's
scores on them are over-confident. Stored as ``repeat_gate.safetensors`` in the checkpoint; a
checkpoint without it scores as before.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from crs.rec.features import NUM_MENTION_FEATURES

GATE_FILE = "repeat_gate.safetensors"
NUM_GATE_FEATURES = 7


def gate_features(mention_values: list[list[float]], num_turns: int) -> list[float]:
    """What π reads: bias, log(1 + movies mentioned), any mentioned, latest recency, movies the seeker
    and the recommender mentioned, log(1 + turns)."""
    values = np.asarray(mention_values, dtype=np.float32).reshape(-1, NUM_MENTION_FEATURES)
    n = len(values)
    return [1.0, math.log1p(n), float(n > 0), float(values[:, 2].max()) if n else 0.0,
            float(values[:, 0].sum()) if n else 0.0, float(values[:, 1].sum()) if n else 0.0, math.log1p(num_turns)]


class RepeatGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = nn.Linear(NUM_GATE_FEATURES, 1, bias=False)
        self.mix = nn.Parameter(torch.tensor([1.0] + [0.0] * NUM_MENTION_FEATURES))  # score weight, then mention features
        nn.init.zeros_(self.gate.weight)

    def log_probs(self, scores: torch.Tensor, items: list[int], values: list[list[float]], num_turns: int) -> torch.Tensor:
        """Log-probabilities over the catalogue for one context (``scores``: (N,) recommender scores)."""
        if not items:
            return torch.log_softmax(scores, 0)
        g = self.gate(torch.tensor(gate_features(values, num_turns)))[0]
        mask = torch.zeros(scores.shape[0], dtype=torch.bool)
        mask[items] = True
        out = torch.log_softmax(scores.masked_fill(mask, -1e9), 0) + nn.functional.logsigmoid(-g)
        mention = torch.tensor(values, dtype=torch.float32).reshape(-1, NUM_MENTION_FEATURES)
        repeat = self.mix[0] * scores[items] + (mention * self.mix[1:]).sum(1)
        out = out.clone()
        out[items] = torch.log_softmax(repeat, 0) + nn.functional.logsigmoid(g)
        return out

    @torch.no_grad()
    def apply(self, scores: np.ndarray, features: list, num_turns: list[int]) -> np.ndarray:
        """Scores (B, N) → gated log-probabilities (B, N); ``features``: the rows' ContextFeatures."""
        out = np.empty_like(scores, dtype=np.float32)
        for row, (f, turns) in enumerate(zip(features, num_turns)):
            out[row] = self.log_probs(torch.as_tensor(scores[row], dtype=torch.float32), list(f.mention_items),
                                      f.mention_values, turns).numpy()
        return out

    def save(self, path: str | Path) -> None:
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> "RepeatGate":
        gate = cls()
        try:
            gate.load_state_dict(load_file(str(path)))
        except Exception as error:  # a truncated or foreign file
            raise ValueError(f"{path}: not a repeat gate ({error})") from error
        return gate


def fit_gate(rows: list[tuple[np.ndarray, list[int], list[list[float]], int, list[int]]], iterations: int = 3) -> tuple[RepeatGate, float]:
    """Fit a gate on ``rows`` of (scores, mentioned items, mention values, turns, gold items) by maximum
    likelihood; returns the gate and the final mean negative log-likelihood."""
    gate = RepeatGate()
    optimiser = torch.optim.LBFGS(gate.parameters(), max_iter=50)
    tensors = [(torch.as_tensor(s, dtype=torch.float32), items, values, turns, golds) for s, items, values, turns, golds in rows]
    count = sum(len(golds) for *_, golds in rows)

    def closure():
        optimiser.zero_grad()
        loss = -sum(gate.log_probs(s, items, values, turns)[golds].sum() for s, items, values, turns, golds in tensors) / max(count, 1)
        loss.backward()
        return loss

    loss = None
    for _ in range(iterations):
        loss = optimiser.step(closure)
    return gate, float(loss.detach()) if loss is not None else float("nan")
