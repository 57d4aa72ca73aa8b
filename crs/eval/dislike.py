"""Reading "I did not like <movie>": the request reader's rules against the liked classifier.

    python -m crs.eval.dislike --checkpoint checkpoints/default [--split valid]

On the seeker's questionnaire answers of a split (``liked`` 0/1 for a movie the seeker spoke
about; "did not say" left out), it reports how well each reading finds the disliked movies in the
seeker's evidence turn: the rules of :mod:`crs.rec.request` (the movie lands among the unwanted)
and the liked classifier of :mod:`crs.text.sentiment` below several thresholds on p(liked).
Flagged count, precision and recall of "disliked" for each.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)


def dislike_table(pipeline, dialogues) -> list[dict]:
    from crs.text.sentiment import liked_examples

    examples = liked_examples(dialogues, pipeline.catalogue.titles)
    disliked = np.array([e.liked == 0 for e in examples])

    def row(name: str, flagged: np.ndarray) -> dict:
        hits = int((flagged & disliked).sum())
        return {"reading": name, "flagged": int(flagged.sum()), "precision": round(hits / max(int(flagged.sum()), 1), 3),
                "recall": round(hits / max(int(disliked.sum()), 1), 3)}

    rules = []
    for example in examples:
        text = example.text.split(" | ", 1)[-1]  # the seeker's turn, titles in place of @ids
        turn = pipeline.reader.read_turn(text, pipeline.link(text))
        rules.append(any(c.kind == "movie" and c.value == example.movie_id for c in turn.unwanted))
    table = [row("rules (crs.rec.request)", np.array(rules, dtype=bool))]
    scorer = pipeline.recommender.featurizer.sentiment
    if scorer is not None:
        probabilities = np.array(scorer([e.text for e in examples]))
        table += [row(f"liked classifier, p(liked) < {t}", probabilities < t) for t in THRESHOLDS]
    return [{"examples": len(examples), "disliked": int(disliked.sum())}] + table


def main(argv: list[str] | None = None) -> int:
    from crs.config import add_config_arguments, config_from_args
    from crs.data.splits import SPLITS, load_splits
    from crs.serve.pipeline import CRS

    parser = argparse.ArgumentParser(prog="python -m crs.eval.dislike", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--split", default="valid", choices=SPLITS)
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    splits = load_splits(config.data, with_test=args.split == "test")
    pipeline = CRS.from_pretrained(args.checkpoint, with_generator=False)
    head, *rows = dislike_table(pipeline, splits[args.split])
    print(f"{head['examples']} questionnaire answers on {args.split}, {head['disliked']} disliked")
    print("| reading | flagged | precision | recall |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['reading']} | {row['flagged']} | {row['precision']:.3f} | {row['recall']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
