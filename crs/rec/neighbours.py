"""Context neighbours: the movies recommended after the most similar training contexts.

A collaborative signal the recommender's own features miss: for a context, the ``k`` training
contexts whose sentence embeddings (the recommender's MiniLM encoder) are closest by cosine, each
weighted by ``exp((similarity - best) / temperature)``, vote for the movies the recommender named
after them. The votes, normalised to sum to one, join the recommender's scores by late fusion:

    score(movie) = recommender score + weight · log(ε + votes(movie))

``k``, the temperature and the weight are chosen on validation turns (new-items Recall@10 + @50, the
rec stage's criterion) by :func:`train.rec.choose`. The index (training-context embeddings in fp16 and the
movies after each) is stored as ``neighbours.safetensors`` in the checkpoint; a checkpoint without
it scores as before. The recommender replies stored are movie ids of ReDial (CC BY 4.0) dialogues.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

NEIGHBOURS_FILE = "neighbours.safetensors"
EPSILON = 1e-3


@dataclass
class NeighbourIndex:
    embeddings: np.ndarray  # (M, H) float32, rows L2-normalised
    indptr: np.ndarray  # (M + 1,) CSR offsets into ``items``
    items: np.ndarray  # catalogue indices of the movies after each training context
    num_items: int
    k: int = 50
    temperature: float = 0.05
    weight: float = 0.1

    @classmethod
    def build(cls, embeddings: np.ndarray, items: list[list[int]], num_items: int) -> "NeighbourIndex":
        embeddings = np.asarray(embeddings, dtype=np.float32)
        embeddings = embeddings / (np.linalg.norm(embeddings, axis=1, keepdims=True) + 1e-8)
        indptr = np.zeros(len(items) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(row) for row in items])
        flat = np.asarray([i for row in items for i in row], dtype=np.int64)
        return cls(embeddings, indptr, flat, num_items)

    def votes(self, queries: np.ndarray, k: int | None = None, temperature: float | None = None) -> np.ndarray:
        """(B, num_items) normalised votes of each query's ``k`` nearest training contexts."""
        k, temperature = min(k or self.k, len(self.embeddings)), temperature or self.temperature
        queries = np.asarray(queries, dtype=np.float32)
        queries = queries / (np.linalg.norm(queries, axis=1, keepdims=True) + 1e-8)
        similarity = queries @ self.embeddings.T  # (B, M)
        out = np.zeros((len(queries), self.num_items), dtype=np.float32)
        counts = np.diff(self.indptr)
        for row, sims in enumerate(similarity):
            nearest = np.argpartition(-sims, k - 1)[:k]
            weights = np.exp((sims[nearest] - sims[nearest].max()) / temperature)
            items = np.concatenate([self.items[self.indptr[j] : self.indptr[j + 1]] for j in nearest])
            out[row] = np.bincount(items, weights=np.repeat(weights, counts[nearest]), minlength=self.num_items) / weights.sum()
        return out

    def fuse(self, scores: np.ndarray, queries: np.ndarray, votes: np.ndarray | None = None) -> np.ndarray:
        votes = self.votes(queries) if votes is None else votes
        return (scores + self.weight * np.log(EPSILON + votes)).astype(np.float32)

    def save(self, path: str | Path) -> None:
        save_file({"embeddings": torch.from_numpy(self.embeddings).half().contiguous(),
                   "indptr": torch.from_numpy(self.indptr), "items": torch.from_numpy(self.items),
                   "params": torch.tensor([self.num_items, self.k, self.temperature, self.weight], dtype=torch.float64)},
                  str(path))

    @classmethod
    def load(cls, path: str | Path) -> "NeighbourIndex":
        try:
            tensors = load_file(str(path))
            num_items, k, temperature, weight = tensors["params"].tolist()
            return cls(tensors["embeddings"].float().numpy(), tensors["indptr"].numpy(), tensors["items"].numpy(),
                       int(num_items), int(k), float(temperature), float(weight))
        except Exception as error:  # a truncated or foreign file
            raise ValueError(f"{path}: not a neighbour index ({error})") from error
