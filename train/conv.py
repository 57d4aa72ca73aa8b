"""Stage ``conv-fixed-prompt``: fixed-prompt PTM tuning of the generator (crs.gen.reply).

Every recommender turn of the training split becomes one example: the context, then
``[goal] … [topic] … [item] … [recommender] reply</s>`` as the target; all generator weights are
tuned on the target tokens (the goal, topic and item steps and the reply: one model, four tasks).
The generator starts from the ``pretrain-lm`` weights when that stage has run. Validation: the
perplexity of the gold replies (given the gold steps) on validation turns; early stopping on it.

Writes ``<output_dir>/conv-fixed-prompt/generator/`` and ``tokenizer/`` (a copy of the tokenizer
stage's, so the folder is self-contained).
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from tqdm.auto import tqdm

from crs.config import ConvConfig
from crs.data.redial import Dialogue
from crs.gen.backbone import load_backbone, load_model
from crs.gen.exemplars import INDEX_DIR, ExemplarIndex
from crs.gen.reply import GENERATOR_DIR, TOKENIZER_DIR, ReplyGenerator
from crs.gen.steps import ConvExample, build_examples, goal_distribution
from crs.io import atomic_dir
from crs.text.tokenizer import load_tokenizer
from crs.text.tokens import EXEMPLAR_TOKEN
from kg.linker import EntityLinker
from train import pretrain_lm
from train.common import StageContext
from train.loop import is_main_process, process_state, run_loop

logger = logging.getLogger(__name__)

STAGE = "conv-fixed-prompt"
SCORE_KEY = "neg_reply_perplexity"


def load_generator(ctx: StageContext) -> ReplyGenerator:
    """The tuned generator this run's conv stage wrote (FileNotFoundError when it has not run)."""
    folder = ctx.output_dir / STAGE
    tokenizer = load_tokenizer(folder / TOKENIZER_DIR)
    return ReplyGenerator(tokenizer, load_model(folder / GENERATOR_DIR), ctx.config.generator.backbone, ctx.config.conv)


def run(ctx: StageContext, progress: bool = True) -> dict:
    return train_generator(ctx, STAGE, ctx.config.conv, progress=progress)


def check_lengths(config, settings: ConvConfig) -> None:
    exemplar_tokens = settings.exemplars * (settings.max_exemplar_tokens + 1)
    needed = settings.max_context_tokens + exemplar_tokens + settings.max_target_tokens + settings.max_new_tokens
    if config.generator.backbone == "dialogpt" and needed > config.generator.max_length:
        raise ValueError(f"conv.max_context_tokens + exemplar tokens + conv.max_target_tokens + conv.max_new_tokens = {needed} "
                         f"exceed generator.max_length {config.generator.max_length} (the GPT-2 positions)")


@dataclass
class Turns:
    """The training and validation turns of a generator stage, and how they were made."""

    train: list[ConvExample]
    valid: list[ConvExample]
    linker: EntityLinker
    distribution: dict[str, float]


def build_turns(ctx: StageContext, stage: str, settings: ConvConfig, view: Callable[[Dialogue], Dialogue] | None = None,
                progress: bool = True) -> Turns:
    """One example per turn of the side ``view`` puts in the recommender's place (default: the
    recommender's), over the first ``settings.max_dialogues`` dialogues; at most ``eval_turns`` validation turns."""
    config = ctx.config
    linker = EntityLinker.build(ctx.kg, ctx.catalogue, config.linking)
    view = view or (lambda dialogue: dialogue)
    limit = settings.max_dialogues or None
    train_examples = build_examples((view(d) for d in tqdm(ctx.splits.train[:limit], desc=f"{stage} examples", disable=not progress, leave=False)),
                                    ctx.catalogue, linker)
    valid_examples = build_examples([view(d) for d in ctx.splits.valid[:limit]], ctx.catalogue, linker)
    if settings.eval_turns and len(valid_examples) > settings.eval_turns:
        valid_examples = random.Random(config.seed).sample(valid_examples, settings.eval_turns)
    distribution = goal_distribution(train_examples)
    logger.info("%s: %d training turns, %d validation turns; goals %s", stage, len(train_examples), len(valid_examples), distribution)
    return Turns(train_examples, valid_examples, linker, distribution)


def attach_exemplars(stage: str, generator: ReplyGenerator, turns: Turns) -> None:
    """Build the exemplar index from the training turns (a turn never retrieves from its own dialogue)
    and give every turn its exemplars, when the generator takes them."""
    settings = generator.config
    if settings.exemplars and generator.exemplar_id is not None:
        train_examples, valid_examples = turns.train, turns.valid
        generator.exemplar_index = ExemplarIndex.build([e.key for e in train_examples], [e.exemplar for e in train_examples],
                                                       [e.conversation_id for e in train_examples])
        found = generator.retrieve([e.key for e in train_examples], exclude=[e.conversation_id for e in train_examples])
        for example, exemplars in zip(train_examples, found):
            example.exemplars = exemplars
        for example, exemplars in zip(valid_examples, generator.retrieve([e.key for e in valid_examples])):
            example.exemplars = exemplars
        logger.info("%s: exemplar index of %d turns; %.1f%% of training turns got an exemplar", stage, len(generator.exemplar_index),
                    100 * sum(bool(e.exemplars) for e in train_examples) / max(len(train_examples), 1))
    elif settings.exemplars:
        logger.warning("%s: the tokenizer has no %s token (trained before exemplars existed): no exemplars", stage, EXEMPLAR_TOKEN)


def training_pairs(stage: str, generator: ReplyGenerator, examples: list[ConvExample], progress: bool = True) -> list[tuple[list[int], list[int]]]:
    return [(generator.context_ids(e.context, e.exemplars or ()), generator.target_ids(e.target)) for e in
            tqdm(examples, desc=f"{stage} tokenize", disable=not progress, leave=False)]


def batch_maker(generator: ReplyGenerator, pairs: list, batch_size: int, seed: int) -> Callable[[int], Iterator[dict]]:
    """The epochs' batches of ``pairs`` (``batch_size`` per process; see :func:`train_generator`)."""
    # settings.loop.batch_size is per process: with N processes (accelerate launch) one step takes a
    # chunk of N x batch_size turns, dealt out in turn, so its N batches are as long as one another;
    # train.loop gives the k-th of every N consecutive batches to process k.
    processes = process_state().num_processes
    batch_size = batch_size * processes

    def batches(epoch: int):
        # Shuffle, then sort within windows of 50 batches by length: little padding, still random.
        order = list(range(len(pairs)))
        random.Random(seed * 1000 + epoch).shuffle(order)
        window = batch_size * 50
        chunks = []
        for start in range(0, len(order), window):
            part = sorted(order[start : start + window], key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
            chunks += [part[s : s + batch_size] for s in range(0, len(part), batch_size)]
        random.Random(seed * 1000 + epoch + 1).shuffle(chunks)
        for chunk in chunks:
            if len(chunk) < processes:  # too few turns to give every process one
                continue
            for rank in range(processes):
                yield generator.collate([pairs[i] for i in chunk[rank::processes]])

    return batches


def validator(generator: ReplyGenerator, examples: list[ConvExample]) -> Callable:
    """Validation of a generator stage: the gold replies' perplexity (higher score is better)."""

    def validate(m) -> dict[str, float]:
        generator.model = m
        total, count = generator.reply_loss(examples)
        ppl = math.exp(total / max(count, 1))
        return {"reply_perplexity": ppl, SCORE_KEY: -ppl}

    return validate


def train_generator(ctx: StageContext, stage: str, settings: ConvConfig, view: Callable[[Dialogue], Dialogue] | None = None,
                    progress: bool = True) -> dict:
    """Tune a generator on the turns of one side: the recommender's (``view`` None), or the side
    ``view(dialogue)`` puts in the recommender's place (the seeker stage swaps the roles)."""
    config = ctx.config
    started = time.perf_counter()
    check_lengths(config, settings)
    out = ctx.stage_dir(stage)
    tokenizer = load_tokenizer(ctx.output_dir / "tokenizer")
    turns = build_turns(ctx, stage, settings, view, progress)
    train_examples, valid_examples, distribution = turns.train, turns.valid, turns.distribution

    lm = ctx.output_dir / pretrain_lm.STAGE / pretrain_lm.LM_DIR
    torch.manual_seed(config.seed)
    if settings.use_lm_pretraining and (lm / "config.json").is_file():
        model = load_model(lm)
        logger.info("%s: generator initialised from %s", stage, lm)
    else:
        if settings.use_lm_pretraining:
            logger.warning("%s: %s not found, the generator starts from scratch (run pretrain-lm first)", stage, lm)
        model = load_backbone(config.generator, tokenizer)
    generator = ReplyGenerator(tokenizer, model, config.generator.backbone, settings)
    attach_exemplars(stage, generator, turns)
    pairs = training_pairs(stage, generator, train_examples, progress)
    batches = batch_maker(generator, pairs, settings.loop.batch_size, config.seed)
    validate = validator(generator, valid_examples)

    result = run_loop(model, batches, validate, SCORE_KEY, settings.loop, out / "loop", desc=stage, seed=config.seed, progress=progress)
    if not is_main_process():  # the main process writes the stage's outputs
        return {"best_epoch": result.best_epoch, "history": result.history}
    generator.model = model.eval()
    with atomic_dir(out / GENERATOR_DIR) as folder:
        model.save_pretrained(str(folder))
    with atomic_dir(out / TOKENIZER_DIR) as folder:
        tokenizer.save_pretrained(str(folder))
    if generator.exemplar_index is not None:
        with atomic_dir(out / INDEX_DIR) as folder:
            generator.exemplar_index.save(folder)
    best = result.history[result.best_epoch - 1] if result.best_epoch else {}
    metrics = {
        "backbone": config.generator.backbone,
        "parameters": model.num_parameters(),
        "lm_pretraining": settings.use_lm_pretraining and (lm / "config.json").is_file(),
        "train_turns": len(train_examples),
        "valid_turns": len(valid_examples),
        "goal_distribution_train": distribution,
        "exemplars": settings.exemplars if generator.exemplar_index is not None else 0,
        "valid_reply_perplexity": best.get("reply_perplexity"),
        "best_epoch": result.best_epoch,
        "train_seconds": round(time.perf_counter() - started, 1),
        "history": result.history,
    }
    logger.info("%s: validation reply perplexity %.2f (epoch %d)", stage, metrics["valid_reply_perplexity"] or float("nan"), result.best_epoch)
    return metrics
