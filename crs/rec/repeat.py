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


class GateLikelihood:
    """The mean negative log-likelihood of the gold movies of ``rows`` (scores, mentioned items,
    mention values, turns, gold items) under a gate, as :meth:`RepeatGate.log_probs` gives it, computed
    without the whole catalogue: the recommender's scores are fixed, so a new gold movie's ``p_new``
    (its score less the log-sum-exp of the scores of the movies not mentioned) is worked out once, and
    each call only recomputes the gates and the softmax over the few mentioned movies, all rows at once."""

    def __init__(self, rows: list[tuple[np.ndarray, list[int], list[list[float]], int, list[int]]]):
        self.count = sum(len(golds) for *_, golds in rows)
        width = max((len(items) for _, items, *_ in rows), default=0) or 1
        features, mentioned, values_pad, present = [], [], [], []
        self.constant = 0.0  # gold log-probabilities of rows without a mentioned movie: no parameter touches them
        new_rows, new_terms, old_rows, old_slots = [], [], [], []
        for scores, items, values, turns, golds in rows:
            scores = torch.as_tensor(scores, dtype=torch.float32)
            if not items:
                self.constant += float(torch.log_softmax(scores, 0)[golds].sum())
                continue
            row = len(features)
            features.append(gate_features(values, turns))
            mask = torch.zeros(scores.shape[0], dtype=torch.bool)
            mask[items] = True
            rest = torch.logsumexp(scores.masked_fill(mask, -1e9), 0)
            slot = {item: j for j, item in enumerate(items)}
            for gold in golds:
                if gold in slot:
                    old_rows.append(row)
                    old_slots.append(slot[gold])
                else:
                    new_rows.append(row)
                    new_terms.append(float(scores[gold] - rest))
            mention = np.zeros((width, NUM_MENTION_FEATURES), dtype=np.float32)
            mention[: len(items)] = np.asarray(values, dtype=np.float32).reshape(-1, NUM_MENTION_FEATURES)
            values_pad.append(mention)
            mentioned.append(np.pad(scores[items].numpy(), (0, width - len(items))))
            present.append([j < len(items) for j in range(width)])
        self.any = bool(features)
        if self.any:
            self.features = torch.tensor(features, dtype=torch.float32)
            self.mentioned = torch.from_numpy(np.stack(mentioned))
            self.values = torch.from_numpy(np.stack(values_pad))
            self.padding = ~torch.tensor(present)
            self.new_rows, self.new_terms = torch.tensor(new_rows, dtype=torch.long), torch.tensor(new_terms, dtype=torch.float32)
            self.old_rows, self.old_slots = torch.tensor(old_rows, dtype=torch.long), torch.tensor(old_slots, dtype=torch.long)

    def __call__(self, gate: RepeatGate) -> torch.Tensor:
        total = torch.tensor(self.constant)
        if self.any:
            g = gate.gate(self.features)[:, 0]
            repeat = gate.mix[0] * self.mentioned + (self.values * gate.mix[1:]).sum(-1)
            repeat = torch.log_softmax(repeat.masked_fill(self.padding, -math.inf), 1)
            total = total + (self.new_terms + nn.functional.logsigmoid(-g[self.new_rows])).sum()
            total = total + (repeat[self.old_rows, self.old_slots] + nn.functional.logsigmoid(g[self.old_rows])).sum()
        return -total / max(self.count, 1)


def fit_gate(rows: list[tuple[np.ndarray, list[int], list[list[float]], int, list[int]]], iterations: int = 3) -> tuple[RepeatGate, float]:
    """Fit a gate on ``rows`` of (scores, mentioned items, mention values, turns, gold items) by maximum
    likelihood (:class:`GateLikelihood`, L-BFGS); returns the gate and the final mean negative log-likelihood."""
    gate = RepeatGate()
    likelihood = GateLikelihood(rows)
    optimiser = torch.optim.LBFGS(gate.parameters(), max_iter=50)

    def closure():
        optimiser.zero_grad()
        loss = likelihood(gate)
        loss.backward()
        return loss

    loss = None
    for _ in range(iterations):
        loss = optimiser.step(closure)
    return gate, float(loss.detach()) if loss is not None else float("nan")
