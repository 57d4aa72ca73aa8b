"""The scripted evaluation of the loaded recommender on the first N test dialogues, for the UI.

:func:`crs.eval.harness.evaluate_recommender` replays the dialogues (its tqdm bar is what the UI's
progress bar tracks); this module turns the result into a table and a Recall@k plot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ContextManager

import numpy as np

from crs.config import DataConfig
from crs.data.samples import build_samples
from crs.data.splits import load_split
from crs.eval.harness import PROTOCOLS, RecResult, evaluate_recommender

KS = (1, 10, 50)
MAX_DIALOGUES = 2000
CURVE_MAX_K = 100
HEADERS = ["protocol", *(f"R@{k}" for k in KS), "NDCG@10", "MRR", "instances"]


@dataclass
class EvaluationRun:
    result: RecResult
    dialogues: int
    turns: int  # recommender turns that mention a movie


def no_data_message(error: Exception) -> str:
    return f"The evaluation needs the ReDial test split: {error}. Set CRS_DATA_DIR to the folder holding redial/ and kg/."


class LockedRecommender:
    """A recommender whose every batch is scored while holding ``lock`` (see crs.serve.models.Models)."""

    def __init__(self, model, lock: ContextManager):
        self.model, self.lock = model, lock
        self.name, self.catalogue = model.name, model.catalogue

    def score_batch(self, contexts):
        with self.lock:
            return self.model.score_batch(contexts)

    def score_items(self, context):
        return self.score_batch([context])[0]


def evaluate_first(recommender, dialogues: int, data_dir: str = "", progress: bool = True,
                   lock: ContextManager | None = None) -> EvaluationRun:
    """Evaluate ``recommender`` on the first ``dialogues`` test dialogues (raises FileNotFoundError
    without the data); with ``lock``, each batch holds it."""
    count = max(1, min(MAX_DIALOGUES, int(dialogues)))
    test = load_split(DataConfig(data_dir=data_dir), "test")[:count]
    samples = build_samples(test)
    model = LockedRecommender(recommender, lock) if lock is not None else recommender
    result = evaluate_recommender(model, samples, KS, progress=progress)
    return EvaluationRun(result=result, dialogues=len(test), turns=sum(1 for s in samples if s.movies))


def metrics_rows(result: RecResult) -> list[list]:
    """One row per protocol: Recall@k, NDCG@10, MRR, number of ranked instances."""
    rows = []
    for protocol in PROTOCOLS:
        summary = result.accumulators[protocol].summary()
        rows.append([protocol.replace("_", "-"), *(round(summary[f"recall@{k}"], 3) for k in KS),
                     round(summary.get("ndcg@10", 0.0), 3), round(summary["mrr"], 3), summary["count"]])
    return rows


def recall_figure(result: RecResult):
    """Recall@k for k = 1..100 under both protocols, as a matplotlib figure (no pyplot state)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.5))
    axis = figure.add_subplot(1, 1, 1)
    ks = np.arange(1, CURVE_MAX_K + 1)
    for protocol in PROTOCOLS:
        ranks = np.asarray(result.accumulators[protocol].ranks)
        curve = [(ranks <= k).mean() if ranks.size else 0.0 for k in ks]
        axis.plot(ks, curve, label=protocol.replace("_", "-"))
    axis.set_xscale("log")
    axis.set_xlabel("k")
    axis.set_ylabel("Recall@k")
    axis.set_title(f"{result.model}: Recall@k")
    axis.grid(True, alpha=0.3)
    axis.legend(loc="upper left")
    figure.tight_layout()
    return figure
