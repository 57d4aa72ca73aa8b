"""Calibrating the generator's goal step on validation turns.

Greedy decoding of ``[goal] …`` over-predicts some goals (the bundled generator says ``farewell``
twice as often as the turns have it, and ``ask_preference`` where the first turns greet). Choosing
the goal as the highest log-probability of its words plus a per-goal bias (a prior correction, as
for any classifier whose decision rule is tuned after training) fixes that without retraining: the
biases are fitted on validation turns to maximise goal accuracy against the rule-derived goals
(coordinate ascent over a grid, ``recommend`` fixed at 0), reported cross-fitted (fit on one half
of the validation dialogues, measured on the other, both ways), and written to the checkpoint's
``goal_bias.json``, which :class:`crs.gen.reply.ReplyGenerator` then uses::

    python -m crs.eval.goals --checkpoint checkpoints/default [--write]

With ``--head`` it fits the goal classifier instead (:mod:`crs.gen.goal_head`: the goal scores and
the dialogue's shape, a logistic regression fitted on training turns, its regularisation chosen by
validation accuracy) and ``--write`` stores it as the checkpoint's ``goal_head.json``::

    python -m crs.eval.goals --checkpoint checkpoints/default --head [--write]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from crs.data.context import DialogueContext
from crs.data.samples import dialogue_samples
from crs.gen.goal_head import FEATURES, GoalHead, goal_features
from crs.gen.steps import GOALS, dialogue_examples

GRID = [x / 4 for x in range(-24, 25)]  # -6 .. 6 nats
PASSES = 4
CHUNK = 64


def accuracy(scores: torch.Tensor, gold: torch.Tensor, bias: list[float]) -> float:
    if not len(gold):
        return 0.0
    return float(((scores + torch.tensor(bias)).argmax(1) == gold).float().mean())


def fit_goal_bias(scores: torch.Tensor, gold: torch.Tensor, grid: list[float] = GRID, passes: int = PASSES) -> list[float]:
    """Per-goal biases (GOALS order, ``recommend`` at 0) that maximise the accuracy of
    ``argmax(scores + bias)`` against ``gold`` (goal indices); ties keep the value nearest 0."""
    bias = [0.0] * len(GOALS)
    for _ in range(passes):
        changed = False
        for j in range(1, len(GOALS)):
            best = (accuracy(scores, gold, bias), -abs(bias[j]), bias[j])
            for value in grid:
                trial = bias[:j] + [value] + bias[j + 1 :]
                candidate = (accuracy(scores, gold, trial), -abs(value), value)
                if candidate > best:
                    best = candidate
            if best[2] != bias[j]:
                bias[j], changed = best[2], True
        if not changed:
            break
    return bias


def goal_scores(pipeline, dialogues, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Goal log-probabilities (N, len(GOALS)) of every recommender turn of ``dialogues``, their
    rule-derived goals and their dialogues' ids."""
    generator, catalogue = pipeline.generator, pipeline.catalogue
    examples = [e for d in dialogues for e in dialogue_examples(d, catalogue.titles, pipeline.linker)]
    found = generator.retrieve([e.key for e in examples])
    contexts = [generator.context_ids(e.context, exemplars) for e, exemplars in zip(examples, found)]
    parts = []
    for start in tqdm(range(0, len(contexts), CHUNK), desc="goal scores", unit="chunk", disable=not progress):
        parts.append(generator.goal_log_probs(contexts[start : start + CHUNK]))
    scores = torch.cat(parts) if parts else torch.zeros(0, len(GOALS))
    gold = torch.tensor([GOALS.index(e.steps.goal) for e in examples], dtype=torch.long)
    return scores, gold, [e.conversation_id for e in examples]


def context_goal_features(dialogues) -> np.ndarray:
    """(N, len(FEATURES)): the goal features of every recommender turn of ``dialogues``, in
    :func:`goal_scores`' order."""
    rows = [goal_features(DialogueContext.from_sample(s)) for d in dialogues for s in dialogue_samples(d)]
    return np.stack(rows) if rows else np.zeros((0, len(FEATURES)), dtype=np.float32)


HEAD_C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def fit_goal_head(pipeline, train, valid, c_grid=HEAD_C_GRID, progress: bool = True) -> tuple[GoalHead, dict]:
    """The goal head fitted on the recommender turns of ``train`` for each inverse regularisation
    strength in ``c_grid``, the one with the best accuracy on ``valid``'s turns kept; its metrics
    (validation accuracy of every C, and of the generator's own greedy goal scores)."""
    scores_t, gold_t, _ = goal_scores(pipeline, train, progress)
    scores_v, gold_v, _ = goal_scores(pipeline, valid, progress)
    feats_t, feats_v = context_goal_features(train), context_goal_features(valid)
    if not len(gold_t) or not len(gold_v):
        raise ValueError("fitting the goal head needs training and validation turns")
    tried = {}
    best = None
    for c in c_grid:
        head = GoalHead.fit(scores_t.numpy(), feats_t, gold_t.numpy(), c)
        predicted = [GOALS.index(g) for g in head.choose(scores_v.numpy(), feats_v)]
        acc = float((np.asarray(predicted) == gold_v.numpy()).mean())
        tried[str(c)] = round(acc, 4)
        if best is None or acc > best[0]:
            best = (acc, head, predicted)
    acc, head, predicted = best
    metrics = {
        "train_turns": len(gold_t),
        "validation_turns": len(gold_v),
        "C": head.info["C"],
        "validation_accuracy": round(acc, 4),
        "validation_accuracy_by_C": tried,
        "validation_accuracy_generator_alone": round(accuracy(scores_v, gold_v, [0.0] * len(GOALS)), 4),
        "predicted_distribution": {g: round(predicted.count(j) / len(predicted), 4) for j, g in enumerate(GOALS)},
        "gold_distribution": {g: round(float((gold_v == j).float().mean()), 4) for j, g in enumerate(GOALS)},
    }
    head.info.update(metrics)
    return head, metrics


def calibrate(scores: torch.Tensor, gold: torch.Tensor, dialogues: list[str]) -> tuple[list[float], dict]:
    """The biases fitted on all turns, and the accuracies: without bias, cross-fitted on halves of
    the dialogues, in-sample."""
    names = sorted(set(dialogues))
    first = set(names[: len(names) // 2])
    in_first = torch.tensor([d in first for d in dialogues])
    crossed = torch.zeros(len(gold), dtype=torch.bool)
    for part in (in_first, ~in_first):
        bias = fit_goal_bias(scores[part], gold[part])
        crossed[~part] = (scores[~part] + torch.tensor(bias)).argmax(1) == gold[~part]
    bias = fit_goal_bias(scores, gold)
    predicted = (scores + torch.tensor(bias)).argmax(1)
    metrics = {
        "validation_turns": len(gold),
        "accuracy_without_bias": round(accuracy(scores, gold, [0.0] * len(GOALS)), 4),
        "accuracy_cross_fitted": round(float(crossed.float().mean()) if len(gold) else 0.0, 4),
        "accuracy_in_sample": round(accuracy(scores, gold, bias), 4),
        "predicted_distribution": {g: round(float((predicted == j).float().mean()), 4) for j, g in enumerate(GOALS)},
        "gold_distribution": {g: round(float((gold == j).float().mean()), 4) for j, g in enumerate(GOALS)},
    }
    return bias, metrics


def pipeline_and_splits(parser: argparse.ArgumentParser, folder: Path, data_dir: str = ""):
    """A fitting command's checkpoint, loaded with its generator (a parser error when it has none or
    its ``config.json`` is unreadable), and the training and validation splits its config names
    (``data_dir`` instead of the config's data folder when given)."""
    from crs.config import config_from_dict
    from crs.data.splits import load_splits
    from crs.serve.pipeline import CRS

    try:
        meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        parser.error(f"{folder / 'config.json'}: {error}")
    config = config_from_dict(meta["crs_config"])
    if data_dir:
        config.data.data_dir = data_dir
    pipeline = CRS.from_pretrained(folder)
    if pipeline.generator is None:
        parser.error(f"{folder} has no generator")
    return pipeline, load_splits(config.data, with_test=False)


def main(argv: list[str] | None = None) -> int:
    from crs.gen.reply import GOAL_BIAS_FILE, GOAL_HEAD_FILE, write_goal_bias

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint folder with a generator")
    parser.add_argument("--limit", type=int, default=None, help="the first N validation dialogues only")
    parser.add_argument("--head", action="store_true", help="fit the goal classifier (crs.gen.goal_head) on training turns instead of biases")
    parser.add_argument("--train-dialogues", type=int, default=0, help="with --head: the first N training dialogues only (0: all)")
    parser.add_argument("--write", action="store_true",
                        help=f"write the fitted biases to the checkpoint's {GOAL_BIAS_FILE} (with --head: the classifier to {GOAL_HEAD_FILE})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--data-dir", default="", help="folder with redial/ and kg/ (default: $CRS_DATA_DIR)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    folder = Path(args.checkpoint)
    pipeline, splits = pipeline_and_splits(parser, folder, args.data_dir)
    pipeline.generator.goal_bias = None
    valid = splits.valid[: args.limit]
    if args.head:
        head, metrics = fit_goal_head(pipeline, splits.train[: args.train_dialogues or None], valid, progress=not args.quiet)
        print(json.dumps(metrics, indent=2))
        if args.write:
            head.save(folder / GOAL_HEAD_FILE)
            print(f"written to {folder / GOAL_HEAD_FILE}")
        return 0
    scores, gold, dialogues = goal_scores(pipeline, valid, progress=not args.quiet)
    bias, metrics = calibrate(scores, gold, dialogues)
    print(json.dumps({"bias": dict(zip(GOALS, bias)), **metrics}, indent=2))
    if args.write:
        write_goal_bias(folder / GOAL_BIAS_FILE, bias, metrics)
        print(f"written to {folder / GOAL_BIAS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
