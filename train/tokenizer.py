"""Stage ``tokenizer``: train the generator's SentencePiece tokenizer (crs.text.tokenizer).

The corpus is the training split's dialogues, the catalogue's movie descriptions and the extended
KG's facts; validation and test dialogues never reach it. The tokenizer is written to
``<output_dir>/tokenizer/`` (``spiece.model``, ``tokenizer.json``, ``tokenizer_config.json``);
load it with :func:`crs.text.tokenizer.load_tokenizer`.
"""

from __future__ import annotations

import logging
from collections import ChainMap
from typing import Iterator

from tqdm.auto import tqdm

from crs.data.redial import Dialogue, render_mentions
from crs.io import atomic_dir, write_json
from crs.text.tokenizer import build_corpus, train_tokenizer
from train.common import StageContext

logger = logging.getLogger(__name__)

STAGE = "tokenizer"
_BATCH = 1024  # utterances tokenized per call when measuring


def stage_corpus(ctx: StageContext) -> Iterator[str]:
    """The tokenizer's corpus: training dialogues only, then movies, then KG facts."""
    return build_corpus(ctx.splits.train, ctx.catalogue, ctx.kg)


def utterances(dialogues: list[Dialogue], titles: dict[int, str]) -> list[str]:
    """Every turn's text with titles in place of ``@id`` placeholders."""
    return [render_mentions(turn.text, ChainMap(titles, d.movie_mentions)) for d in dialogues for turn in d.turns]


def piece_counts(tokenizer, texts: list[str], progress: bool, desc: str) -> tuple[int, int]:
    """(pieces, unknown pieces) over ``texts``, without the closing ``</s>``."""
    total = unknown = 0
    for start in tqdm(range(0, len(texts), _BATCH), desc=desc, disable=not progress):
        for ids in tokenizer(texts[start : start + _BATCH], add_special_tokens=False)["input_ids"]:
            total += len(ids)
            unknown += ids.count(tokenizer.unk_token_id)
    return total, unknown


def run(ctx: StageContext, progress: bool = True) -> dict:
    config = ctx.config.tokenizer
    lines = list(tqdm(stage_corpus(ctx), desc=f"{STAGE} corpus", disable=not progress))
    logger.info("%s: %d corpus lines (%d training dialogues)", STAGE, len(lines), len(ctx.splits.train))
    with atomic_dir(ctx.output_dir / STAGE) as folder:
        tokenizer = train_tokenizer(lines, folder, config.vocab_size, config.model_type, config.max_lines)
        titles = ctx.catalogue.titles
        train_texts = utterances(ctx.splits.train, titles)
        valid_texts = utterances(ctx.splits.valid, titles)
        train_pieces, train_unknown = piece_counts(tokenizer, train_texts, progress, f"{STAGE} train utterances")
        valid_pieces, valid_unknown = piece_counts(tokenizer, valid_texts, progress, f"{STAGE} valid utterances")
        metrics = {
            "vocab_size": len(tokenizer),
            "corpus_lines": len(lines),
            "train_utterances": len(train_texts),
            "tokens_per_train_utterance": train_pieces / max(len(train_texts), 1),
            "unknown_share_train": train_unknown / max(train_pieces, 1),
            "unknown_share_valid": valid_unknown / max(valid_pieces, 1),
        }
        write_json(folder / "metrics.json", metrics)
    logger.info("%s: %d ids, %.1f pieces per training utterance, unknown share %.2e (valid %.2e)", STAGE,
                metrics["vocab_size"], metrics["tokens_per_train_utterance"], metrics["unknown_share_train"],
                metrics["unknown_share_valid"])
    return metrics
