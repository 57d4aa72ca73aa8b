"""Did the seeker like a movie they mentioned? Rating-style prediction from a dialogue.

The checkpoint's liked classifier (:class:`crs.text.sentiment.LikedClassifier` over MiniLM embeddings of
the evidence: the seeker's turn about the movie, or their reaction to it) gives p(liked).

    python -m crs.ui.liked --checkpoint DIR [--split test] [--data-dir DIR] [--limit N]

reports accuracy and macro F1 on a split's questionnaire answers beside the majority class.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crs.data.catalogue import duplicates
from crs.data.redial import RECOMMENDER, SEEKER, Turn
from crs.serve.models import resolve_movie
from crs.text.sentiment import classification_report, evidence_text, evidence_turns, liked_examples
from crs.text.tokenizer import escape_control_tokens

if TYPE_CHECKING:
    from crs.serve.pipeline import CRS

logger = logging.getLogger(__name__)

MAX_DIALOGUE_CHARS = 20_000
_SPEAKER_RE = re.compile(r"^\s*(seeker|user|you|me|s|recommender|assistant|bot|crs|r)\s*:\s*(.*)$", re.IGNORECASE)
_ROLES = {"seeker": SEEKER, "user": SEEKER, "you": SEEKER, "me": SEEKER, "s": SEEKER}
NO_CLASSIFIER = "This checkpoint has no liked classifier (it was trained with rec.use_sentiment=false)."


@dataclass
class LikedPrediction:
    movie_id: int | None
    probability: float | None  # p(liked); None when no prediction was made
    evidence: str  # the text the classifier read
    note: str = ""

    @property
    def liked(self) -> bool | None:
        return None if self.probability is None else self.probability >= 0.5


def parse_dialogue(text: str) -> list[tuple[str, str]]:
    """``"Seeker: ..."`` / ``"Recommender: ..."`` lines (also user/assistant, S/R) as (role, text);
    a line without a speaker continues the previous message, or opens a seeker message."""
    messages: list[list[str]] = []
    for line in text[:MAX_DIALOGUE_CHARS].splitlines():
        match = _SPEAKER_RE.match(line)
        if match:
            role = _ROLES.get(match.group(1).lower(), RECOMMENDER)
            messages.append([role, match.group(2).strip()])
        elif line.strip():
            if messages:
                messages[-1][1] = f"{messages[-1][1]} {line.strip()}".strip()
            else:
                messages.append([SEEKER, line.strip()])
    return [(role, body) for role, body in messages if body]


def dialogue_turns(pipeline: "CRS", text: str) -> list[Turn]:
    """The dialogue as turns (one speaker's consecutive messages merged), movies linked in each."""
    turns: list[Turn] = []
    for role, body in parse_dialogue(text):
        body = escape_control_tokens(body)
        movies = [x.movie_id for x in pipeline.linker.link(body) if x.movie_id is not None]
        if turns and turns[-1].role == role:
            last = turns[-1]
            turns[-1] = Turn(role, f"{last.text} {body}", list(dict.fromkeys(last.movies + movies)), last.num_messages + 1)
        else:
            turns.append(Turn(role, body, list(dict.fromkeys(movies))))
    return turns


def predict_liked(pipeline: "CRS", dialogue: object, movie: object) -> LikedPrediction:
    """p(the seeker liked ``movie``) from ``dialogue`` ("Seeker: ..." / "Recommender: ..." lines)."""
    scorer = pipeline.recommender.featurizer.sentiment
    if scorer is None:
        return LikedPrediction(None, None, "", NO_CLASSIFIER)
    movie_id = resolve_movie(pipeline, movie)
    if movie_id is None:
        return LikedPrediction(None, None, "", "Name a movie from the catalogue (its title, or its id).")
    turns = dialogue_turns(pipeline, dialogue if isinstance(dialogue, str) else "")
    if not any(turn.role == SEEKER for turn in turns):
        return LikedPrediction(movie_id, None, "", "The dialogue has no seeker message to read.")
    evidence = evidence_turns(turns)
    same = [movie_id] + duplicates(pipeline.catalogue, [movie_id])
    found = next((evidence[m] for m in same if m in evidence), None)
    note = ""
    if found is None:
        found = max(i for i, turn in enumerate(turns) if turn.role == SEEKER)
        note = (f"The seeker never talks about {pipeline.movie(movie_id).display_name} in this dialogue; "
                "the prediction reads their last message.")
    titles = pipeline.recommender.featurizer.titles
    text = evidence_text(pipeline.movie(movie_id).display_name, turns[found], titles)
    probability = float(scorer([text])[0])
    return LikedPrediction(movie_id, probability, text, note)


# ---------------------------------------------------------------------- command line


def split_report(checkpoint: str, split: str, data_dir: str = "", limit: int | None = None) -> dict:
    """Accuracy and macro F1 of the checkpoint's liked classifier on a split's questionnaire answers."""
    from dataclasses import replace

    from crs.data.splits import load_split
    from crs.rec.kg_text import KGTextRecommender

    recommender = KGTextRecommender.from_pretrained(checkpoint)
    scorer = recommender.featurizer.sentiment
    if scorer is None:
        raise SystemExit(NO_CLASSIFIER)
    data = replace(recommender.config.data, data_dir=data_dir or recommender.config.data.data_dir)
    dialogues = load_split(data, split)
    if limit:
        dialogues = dialogues[:limit]
    examples = liked_examples(dialogues, recommender.featurizer.titles)
    if not examples:
        raise SystemExit(f"the {split} split has no dialogue with a liked/disliked answer")
    started = time.perf_counter()
    probabilities = np.asarray(scorer([e.text for e in examples]))
    labels = np.array([e.liked for e in examples])
    report = classification_report(labels, probabilities)
    report.update(split=split, dialogues=len(dialogues), liked_share=float(labels.mean()), seconds=round(time.perf_counter() - started, 1))
    return report


def format_report(report: dict) -> str:
    return "\n".join([
        f"liked classifier on {report['split']}: {report['count']:,} (dialogue, movie) answers from {report['dialogues']:,} dialogues, "
        f"{report['liked_share']:.1%} liked",
        "",
        "| predictor | accuracy | macro F1 | F1 liked | F1 disliked |",
        "|---|---|---|---|---|",
        f"| classifier | {report['accuracy']:.3f} | {report['macro_f1']:.3f} | {report['f1_liked']:.3f} | {report['f1_disliked']:.3f} |",
        f"| majority class ({'liked' if report['liked_share'] >= 0.5 else 'disliked'}) | {report['majority_accuracy']:.3f} "
        f"| {report['majority_macro_f1']:.3f} | – | – |",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crs.ui.liked", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder with liked.safetensors")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    parser.add_argument("--data-dir", default="", help="folder with redial/ (default: $CRS_DATA_DIR)")
    parser.add_argument("--limit", type=int, default=None, help="the first N dialogues only")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = split_report(args.checkpoint, args.split, args.data_dir, args.limit)
    except FileNotFoundError as error:
        parser.error(str(error))
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else format_report(report))


if __name__ == "__main__":
    main()
