"""Fitting the topic classifier (:mod:`crs.gen.topic_head`) of a checkpoint's generator.

Every recommender turn of the given dialogues goes through the topic step as the harness and the
chat run it: the recommender's best movie, the goal as the generator chooses it (its goal head when
the checkpoint has one), the candidates of :meth:`crs.serve.pipeline.CRS.topic_candidates` and the
generator's score margins over "none". A candidate is labelled named when the human reply names it
(:func:`crs.gen.steps.turn_topics`, the topic F1 gold). The head is fitted on training turns for
each C of :data:`C_GRID`, and C and the threshold are chosen by topic F1 on validation turns::

    python -m crs.evaluate ...   # topic F1 in the conversation table
    python -m crs.eval.topics --checkpoint checkpoints/default [--train-dialogues 600] [--write]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from crs.data.context import DialogueContext
from crs.data.samples import dialogue_samples
from crs.eval.conv import topic_f1
from crs.gen.exemplars import context_key
from crs.gen.goal_head import goal_features
from crs.gen.steps import dialogue_examples, render_context
from crs.gen.topic_head import TOPIC_HEAD_FILE, TopicHead, head_inputs

C_GRID = (0.01, 0.1, 1.0)
THRESHOLDS = tuple(round(0.05 + 0.025 * i, 3) for i in range(27))  # 0.05 .. 0.70
CHUNK = 64


@dataclass
class TopicTurn:
    """One recommender turn's topic step: its goal, candidates, their head inputs and the gold topics."""

    goal: str
    names: list[str]
    margins: np.ndarray
    features: np.ndarray
    gold: list[str]

    @property
    def inputs(self) -> np.ndarray:
        return head_inputs(self.margins, self.features, self.goal)


def topic_turns(pipeline, dialogues, progress: bool = True, desc: str = "topic step") -> list[TopicTurn]:
    """The :class:`TopicTurn` of every recommender turn of ``dialogues`` (turns without a candidate too)."""
    generator, catalogue, rec = pipeline.generator, pipeline.catalogue, pipeline.recommender
    samples, golds = [], []
    for dialogue in dialogues:
        turns = dialogue_samples(dialogue)
        samples += turns
        golds += [e.steps.topics for e in dialogue_examples(dialogue, catalogue.titles, pipeline.linker, turns)]
    out: list[TopicTurn] = []
    for start in tqdm(range(0, len(samples), CHUNK), desc=desc, unit="chunk", disable=not progress):
        contexts = [DialogueContext.from_sample(s) for s in samples[start : start + CHUNK]]
        # Ranked first, as the harness does: a recommender reading the generator's [REC] state needs
        # the full model, not the decoding pass the scores below run on.
        rankings = rec.top_k_batch(contexts, 1)
        exemplars = generator.retrieve([context_key(c.turns, catalogue.titles) for c in contexts])
        ids = [generator.context_ids(render_context(c, catalogue.titles), e) for c, e in zip(contexts, exemplars)]
        candidates = pipeline.topic_candidates(contexts, rankings)
        with generator.decoding_precision():  # the arithmetic generate() decodes in
            goals = generator.choose_goals(ids, np.stack([goal_features(c) for c in contexts]))
            margins = generator.topic_margins(ids, goals, [candidates(i) for i in range(len(contexts))])
        for i, goal in enumerate(goals):
            out.append(TopicTurn(goal, candidates(i), margins[i] if margins[i] is not None else np.zeros(0), candidates.features(i),
                                 list(golds[start + i])))
    return out


def f1_of(turns: list[TopicTurn], chosen: list[list[str]]) -> float:
    return topic_f1(chosen, [t.gold for t in turns])


def bias_choices(turns: list[TopicTurn], bias: float) -> list[list[str]]:
    """The topics the fixed "none" bias (``conv.topic_none_bias``) picks."""
    out = []
    for t in turns:
        best = int(np.argmax(np.append(t.margins, bias))) if t.names else 0
        out.append([t.names[best]] if t.names and best < len(t.names) else [])
    return out


def fit_topic_head(train: list[TopicTurn], valid: list[TopicTurn], bias: float, c_grid=C_GRID,
                   thresholds=THRESHOLDS) -> tuple[TopicHead, dict]:
    """The head fitted on ``train``'s candidates for each C, with the C and threshold of the best
    validation topic F1; its metrics beside the fixed bias rule's on the same turns."""
    rows = [t for t in train if t.names]
    x = np.vstack([t.inputs for t in rows]) if rows else np.zeros((0, 0))
    y = np.concatenate([[name in t.gold for name in t.names] for t in rows]) if rows else np.zeros(0, dtype=bool)
    best, tried = None, {}
    for c in c_grid:
        head = TopicHead.fit(x, y, c)
        probabilities = [head.probabilities(t.inputs) if t.names else np.zeros(0) for t in valid]
        for threshold in thresholds:
            chosen = [[t.names[int(p.argmax())]] if t.names and p.max() >= threshold else [] for t, p in zip(valid, probabilities)]
            score = f1_of(valid, chosen)
            tried[f"C={c},threshold={threshold}"] = round(score, 4)
            if best is None or score > best[0]:
                best = (score, c, threshold, head, chosen)
    score, c, threshold, head, chosen = best
    head.threshold = threshold
    baseline = bias_choices(valid, bias)
    metrics = {
        "train_turns": len(train),
        "train_candidates": len(y),
        "train_named_share": round(float(y.mean()), 4) if len(y) else 0.0,
        "validation_turns": len(valid),
        "validation_gold_topics": sum(len(set(t.gold)) for t in valid),
        "C": c,
        "threshold": threshold,
        "validation_topic_f1": round(score, 4),
        "validation_turns_with_topic": sum(bool(ch) for ch in chosen),
        "validation_topic_f1_none_bias": round(f1_of(valid, baseline), 4),
        "validation_turns_with_topic_none_bias": sum(bool(ch) for ch in baseline),
        "none_bias": bias,
        "validation_topic_f1_by_setting": tried,
    }
    head.info.update({k: v for k, v in metrics.items() if k != "validation_topic_f1_by_setting"})
    return head, metrics


def main(argv: list[str] | None = None) -> int:
    from crs.eval.goals import pipeline_and_splits
    from crs.precision import start_inference

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint folder with a generator")
    parser.add_argument("--train-dialogues", type=int, default=600, help="fit on the first N training dialogues (0: all)")
    parser.add_argument("--limit", type=int, default=None, help="choose C and the threshold on the first N validation dialogues only")
    parser.add_argument("--write", action="store_true", help=f"write the fitted head to the checkpoint's {TOPIC_HEAD_FILE}")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"), help="inference arithmetic, as the app serves")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--data-dir", default="", help="folder with redial/ and kg/ (default: $CRS_DATA_DIR)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start_inference(args.precision)
    folder = Path(args.checkpoint)
    pipeline, splits = pipeline_and_splits(parser, folder, args.data_dir)
    head, metrics = fit(pipeline, splits.train[: args.train_dialogues or None], splits.valid[: args.limit], progress=not args.quiet)
    print(json.dumps(metrics, indent=2))
    if args.write:
        head.save(folder / TOPIC_HEAD_FILE)
        print(f"written to {folder / TOPIC_HEAD_FILE}")
    return 0


def fit(pipeline, train_dialogues, valid_dialogues, progress: bool = True) -> tuple[TopicHead, dict]:
    """:func:`fit_topic_head` on the turns of these dialogues, the generator's own topic head set aside."""
    generator = pipeline.generator
    train = topic_turns(pipeline, train_dialogues, progress, "topic step (train)")
    valid = topic_turns(pipeline, valid_dialogues, progress, "topic step (valid)")
    if not any(t.names for t in train) or not valid:
        raise ValueError("fitting the topic head needs training turns with candidates and validation turns")
    return fit_topic_head(train, valid, generator.config.topic_none_bias)


if __name__ == "__main__":
    sys.exit(main())
