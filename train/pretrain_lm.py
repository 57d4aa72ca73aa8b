"""Stage ``pretrain-lm``: pre-train the generator as a language model on the tokenizer's corpus.

The corpus is the one the tokenizer was trained on (training dialogues with speaker tokens, movie
descriptions, verbalised KG facts: :func:`crs.text.tokenizer.build_corpus`). Lines are tokenized,
joined with ``</s>`` and cut into blocks. The objective follows the backbone (the survey's
"pre-training objectives"): ``dialogpt`` predicts the next token (auto-regressive, "AM");
``t5`` restores corrupted spans (Raffel et al. 2020, §3.1.4: 15% of tokens in spans of mean
length 3, each span replaced by a sentinel). A share of the blocks is held out; validation
perplexity (per target token) decides early stopping.

Writes ``<output_dir>/pretrain-lm/lm/`` (``save_pretrained``, safetensors): the pre-trained LM the
``conv-fixed-prompt`` stage starts from and the zero-shot ranker scores with.
"""

from __future__ import annotations

import logging
import math
import random
import time

import torch
from tqdm.auto import tqdm

from crs.gen.backbone import collate, load_backbone, save_model, summed_nll
from crs.io import atomic_dir
from crs.text.tokenizer import NUM_SENTINELS, build_corpus, load_tokenizer
from train.common import StageContext
from train.loop import is_main_process, run_loop

logger = logging.getLogger(__name__)

STAGE = "pretrain-lm"
LM_DIR = "lm"
SCORE_KEY = "neg_perplexity"
T5_BLOCK = 128  # raw tokens per span-corruption example (inputs ~116 tokens, targets ~27)


def span_corrupt(tokens: list[int], density: float, mean_span: float, rng: random.Random, sentinels: list[int],
                 eos: int) -> tuple[list[int], list[int]]:
    """T5 span corruption of one block: (inputs, targets).

    ``round(len * density)`` tokens are masked in ``round(noise / mean_span)`` spans; span and gap
    lengths are random segmentations (as T5's ``random_spans_noise_mask``). Inputs keep the
    unmasked tokens with a sentinel per span; targets list each sentinel followed by its span.
    """
    length = len(tokens)
    noise = min(max(1, round(length * density)), length - 1)
    spans = max(1, min(round(noise / mean_span), noise, length - noise, len(sentinels)))

    def segments(total: int) -> list[int]:
        cuts = sorted(rng.sample(range(1, total), spans - 1)) if spans > 1 else []
        return [b - a for a, b in zip([0] + cuts, cuts + [total])]

    noise_lengths, keep_lengths = segments(noise), segments(length - noise)
    inputs, targets, position = [], [], 0
    for span, (keep, masked) in enumerate(zip(keep_lengths, noise_lengths)):
        inputs += tokens[position : position + keep] + [sentinels[span]]
        position += keep
        targets += [sentinels[span]] + tokens[position : position + masked]
        position += masked
    return inputs + [eos], targets + [eos]


def blocks_of(ids: list[list[int]], size: int, eos: int) -> list[list[int]]:
    """Lines joined with ``</s>`` into one stream, cut into blocks of ``size`` tokens (the last partial one dropped)."""
    stream = [token for line in ids for token in line + [eos]]
    return [stream[start : start + size] for start in range(0, len(stream) - size + 1, size)]


def lm_loss(model, pairs: list[tuple[list[int], list[int]]], seq2seq: bool, pad: int, batch_size: int) -> tuple[float, int]:
    """Summed token loss and token count of (inputs, targets) pairs: span corruption for seq2seq;
    for a causal model the inputs are empty and the targets are the sequence (next-token prediction)."""
    total, count = 0.0, 0
    for start in range(0, len(pairs), batch_size):
        loss, tokens = summed_nll(model, collate(pairs[start : start + batch_size], seq2seq, pad), seq2seq)
        total, count = total + loss, count + tokens
    return total, count


def run(ctx: StageContext, progress: bool = True) -> dict:
    config = ctx.config
    settings = config.pretrain_lm
    started = time.perf_counter()
    out = ctx.stage_dir(STAGE)
    tokenizer = load_tokenizer(ctx.output_dir / "tokenizer")
    lines = list(build_corpus(ctx.splits.train, ctx.catalogue, ctx.kg))
    rng = random.Random(config.seed)
    rng.shuffle(lines)
    if settings.max_lines:
        lines = lines[: settings.max_lines]
    ids = []
    for start in tqdm(range(0, len(lines), 2048), desc=f"{STAGE} tokenize", disable=not progress, leave=False):
        ids += tokenizer(lines[start : start + 2048], add_special_tokens=False)["input_ids"]
    seq2seq = config.generator.backbone == "t5"
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    blocks = blocks_of(ids, T5_BLOCK if seq2seq else config.generator.max_length, eos)
    rng.shuffle(blocks)
    held = max(1, int(len(blocks) * settings.holdout_fraction))
    valid_blocks, train_blocks = blocks[:held], blocks[held:]
    if settings.eval_blocks:
        valid_blocks = valid_blocks[: settings.eval_blocks]
    sentinels = tokenizer.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(NUM_SENTINELS)])
    valid_rng = random.Random(config.seed + 1)
    valid_pairs = [span_corrupt(b, settings.noise_density, settings.mean_span_length, valid_rng, sentinels, eos) if seq2seq else ([], b)
                   for b in valid_blocks]
    tokens = sum(len(b) for b in train_blocks)
    logger.info("%s: %d corpus lines, %d training blocks (%d tokens), %d validation blocks", STAGE, len(lines), len(train_blocks),
                tokens, len(valid_blocks))

    torch.manual_seed(config.seed)
    model = load_backbone(config.generator, tokenizer)
    batch_size = settings.loop.batch_size

    def batches(epoch: int):
        epoch_rng = random.Random(config.seed * 1000 + epoch)
        order = list(range(len(train_blocks)))
        epoch_rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            chosen = [train_blocks[i] for i in order[start : start + batch_size]]
            if seq2seq:
                yield collate([span_corrupt(b, settings.noise_density, settings.mean_span_length, epoch_rng, sentinels, eos)
                               for b in chosen], True, pad)
            else:
                yield collate([([], b) for b in chosen], False, pad)

    def validate(m) -> dict[str, float]:
        total, count = lm_loss(m, valid_pairs, seq2seq, pad, batch_size)
        ppl = math.exp(total / max(count, 1))
        return {"perplexity": ppl, SCORE_KEY: -ppl}

    result = run_loop(model, batches, validate, SCORE_KEY, settings.loop, out / "loop", desc=STAGE, seed=config.seed, progress=progress)
    if not is_main_process():  # the main process writes the stage's outputs
        return {"best_epoch": result.best_epoch, "history": result.history}
    with atomic_dir(out / LM_DIR) as folder:
        save_model(model, folder)
    best = result.history[result.best_epoch - 1] if result.best_epoch else {}
    metrics = {
        "backbone": config.generator.backbone,
        "init": config.generator.init,
        "parameters": model.num_parameters(),
        "objective": "span corruption" if seq2seq else "next-token prediction",
        "corpus_lines": len(lines),
        "train_blocks": len(train_blocks),
        "train_tokens": tokens,
        "valid_blocks": len(valid_blocks),
        "valid_perplexity": best.get("perplexity"),
        "best_epoch": result.best_epoch,
        "train_seconds": round(time.perf_counter() - started, 1),
        "history": result.history,
    }
    logger.info("%s: validation perplexity %.2f (epoch %d); %s", STAGE, metrics["valid_perplexity"] or float("nan"), result.best_epoch, out / LM_DIR)
    return metrics
