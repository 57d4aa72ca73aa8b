"""Retrieved exemplars: training replies after contexts like this one, as a prompt segment.

Prompt augmentation with demonstrations (DCRS, Dao et al., SIGIR 2024, does it for DialoGPT): the
generator reads, after the dialogue context, ``[exemplar] reply`` for each of the k training
recommender turns whose context is most similar to this one, then writes its own steps and reply.
Similarity is TF-IDF cosine over the last two turns of the context (scikit-learn's
``TfidfVectorizer``: word unigrams and bigrams, sublinear term frequency), measured against the
MiniLM alternative in the README. Every movie an exemplar mentions is written ``[REC]``, so no
title of another dialogue is copied. A context with nothing in common with any training context
(the first turn, an empty one) gets no exemplar, in training as in serving.

The index ships in a checkpoint's ``exemplars/``: ``index.json`` (the vocabulary, the replies and
their dialogues) and ``index.safetensors`` (idf weights and the L2-normalised key matrix in CSR
form). The stored replies are ReDial's (CC BY 4.0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from crs.data.redial import Turn, render_mentions

INDEX_DIR = "exemplars"
KEY_TURNS = 2  # the context's last turns that retrieval compares
CHUNK = 1024  # queries scored per block when the whole training set asks


def context_key(turns: Sequence[Turn], titles) -> str:
    """What retrieval compares: the text of the last :data:`KEY_TURNS` turns, titles in place
    (no speaker names: every context has them, so they would make unrelated contexts similar)."""
    return " ".join(render_mentions(turn.text, titles) for turn in list(turns)[-KEY_TURNS:])


def _vectorizer(vocabulary: dict[str, int] | None = None, min_df: int = 2) -> TfidfVectorizer:
    return TfidfVectorizer(lowercase=True, ngram_range=(1, 2), min_df=1 if vocabulary else min_df, sublinear_tf=True,
                           vocabulary=vocabulary, dtype=np.float32)


class ExemplarIndex:
    """Training replies, retrievable by the similarity of the contexts they answered."""

    def __init__(self, vectorizer: TfidfVectorizer, keys: sparse.csr_matrix, replies: list[str], dialogues: list[str]):
        if keys.shape[0] != len(replies) or len(replies) != len(dialogues):
            raise ValueError(f"exemplar index: {keys.shape[0]} keys, {len(replies)} replies, {len(dialogues)} dialogues")
        self.vectorizer, self.keys, self.replies, self.dialogues = vectorizer, keys.tocsr(), replies, dialogues
        self._keys_t = self.keys.T.tocsr()

    def __len__(self) -> int:
        return len(self.replies)

    @classmethod
    def build(cls, keys: Sequence[str], replies: Sequence[str], dialogues: Sequence[str], min_df: int = 2) -> "ExemplarIndex":
        """The index of training turns; n-grams in fewer than ``min_df`` keys are left out."""
        vectorizer = _vectorizer(min_df=min_df)
        matrix = vectorizer.fit_transform(list(keys))
        return cls(vectorizer, matrix.astype(np.float32), list(replies), list(dialogues))

    def query(self, keys: Sequence[str], k: int = 1, exclude: Sequence[str] | None = None) -> list[list[str]]:
        """The replies after the ``k`` most similar stored contexts of each key (most similar first);
        ``exclude[i]``: a dialogue whose turns key ``i`` may not take (its own, in training)."""
        if k <= 0 or not keys:
            return [[] for _ in keys]
        out: list[list[str]] = []
        dialogues = np.asarray(self.dialogues, dtype=object)
        for start in range(0, len(keys), CHUNK):
            block = list(keys[start : start + CHUNK])
            scores = (self.vectorizer.transform(block) @ self._keys_t).toarray()
            if exclude is not None:
                for row, dialogue in enumerate(exclude[start : start + CHUNK]):
                    if dialogue:
                        scores[row, dialogues == dialogue] = 0.0
            if k == 1:
                best = scores.argmax(axis=1)[:, None]
            else:  # the k best of each row, then those in order (ties: lower index first)
                top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
                order = np.lexsort((top, -np.take_along_axis(scores, top, axis=1)), axis=1)
                best = np.take_along_axis(top, order, axis=1)
            for row in range(len(block)):
                out.append([self.replies[j] for j in best[row] if scores[row, j] > 0.0])
        return out

    # ------------------------------------------------------------------ persistence

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"vocabulary": {t: int(i) for t, i in self.vectorizer.vocabulary_.items()},
                "replies": self.replies, "dialogues": self.dialogues}
        (folder / "index.json").write_text(json.dumps(meta), encoding="utf-8")
        keys = self.keys
        save_file({"idf": torch.from_numpy(self.vectorizer.idf_.astype(np.float32)),
                   "data": torch.from_numpy(keys.data.astype(np.float16)),
                   "indices": torch.from_numpy(keys.indices.astype(np.int32)),
                   "indptr": torch.from_numpy(keys.indptr.astype(np.int64)),
                   "shape": torch.tensor(keys.shape, dtype=torch.int64)}, str(folder / "index.safetensors"))

    @classmethod
    def present(cls, folder: str | Path) -> bool:
        return (Path(folder) / "index.json").is_file() and (Path(folder) / "index.safetensors").is_file()

    @classmethod
    def load(cls, folder: str | Path) -> "ExemplarIndex":
        folder = Path(folder)
        try:
            meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
            arrays = load_file(str(folder / "index.safetensors"))
        except (OSError, ValueError) as error:
            raise ValueError(f"exemplar index {folder} is unreadable: {error}") from error
        vectorizer = _vectorizer(meta["vocabulary"])
        vectorizer.idf_ = arrays["idf"].numpy()
        shape = tuple(int(x) for x in arrays["shape"].tolist())
        keys = sparse.csr_matrix((arrays["data"].float().numpy(), arrays["indices"].numpy(), arrays["indptr"].numpy()), shape=shape)
        if len(vectorizer.idf_) != shape[1]:
            raise ValueError(f"exemplar index {folder}: {len(vectorizer.idf_)} idf weights for {shape[1]} key columns")
        return cls(vectorizer, keys, meta["replies"], meta["dialogues"])
