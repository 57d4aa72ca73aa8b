"""Latency of greedy reply decoding on the CPU, one context at a time.

    python -m benchmarks.reply_latency --checkpoint checkpoints/default [--contexts 100] [--threads 2]

Contexts are test-split recommender turns (the dialogue so far, rendered as the generator sees
it). Two timings per context, batch of one, KV cache on:

* ``reply``: the reply alone (at most 40 new tokens) after given prompt steps;
* ``turn``: the whole two-phase turn (goal and topic steps, then the reply), as the chat runs it;
* ``full``: exactly 40 reply tokens (stop tokens ignored), the worst case of the reply phase.

Prints p50/p95/mean in milliseconds and the mean number of tokens decoded.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch

from crs.config import load_config
from crs.data.catalogue import Catalogue
from crs.data.context import DialogueContext
from crs.data.samples import build_samples
from crs.data.splits import load_split
from crs.gen.reply import ReplyGenerator
from crs.gen.steps import Steps, render_context

REPLY_TOKENS = 40


def percentiles(values: list[float]) -> str:
    array = np.array(values) * 1000
    return f"p50 {np.percentile(array, 50):.1f} ms, p95 {np.percentile(array, 95):.1f} ms, mean {array.mean():.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--contexts", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(overrides=[f"data.data_dir={args.data_dir}"] if args.data_dir else [])
    generator = ReplyGenerator.from_pretrained(args.checkpoint)
    generator.config.max_new_tokens = REPLY_TOKENS + 20  # the reply phase decodes max_new_tokens - 20
    catalogue = Catalogue.read(f"{args.checkpoint}/kg/catalogue.json")
    samples = build_samples(load_split(config.data, "test"))
    random.Random(0).shuffle(samples)
    texts = [render_context(DialogueContext.from_sample(s), catalogue.titles) for s in samples[: args.contexts]]
    steps = Steps("recommend", [], "The Matrix (1999)")
    generator.generate_texts(texts[:2], ["The Matrix (1999)"] * 2)  # warm-up
    reply, turn, full, tokens = [], [], [], []
    prefix = generator.encode(steps.render(), generator.config.max_target_tokens)
    for text in texts:
        started = time.perf_counter()
        out = generator.generate_texts([text], ["The Matrix (1999)"], forced=[steps])[0]
        reply.append(time.perf_counter() - started)
        tokens.append(len(generator.tokenizer(out.reply, add_special_tokens=False)["input_ids"]))
        started = time.perf_counter()
        generator.generate_texts([text], ["The Matrix (1999)"])
        turn.append(time.perf_counter() - started)
        started = time.perf_counter()
        generator._greedy([generator.context_ids(text)], [prefix], stop=set(), max_new=REPLY_TOKENS)
        full.append(time.perf_counter() - started)
    params = generator.model.num_parameters() / 1e6
    print(f"{generator.backbone} generator, {params:.1f}M parameters, {args.threads} threads, {len(texts)} test contexts")
    print(f"reply (<= {REPLY_TOKENS} tokens, {np.mean(tokens):.1f} on average): {percentiles(reply)}")
    print(f"whole turn (steps + reply): {percentiles(turn)}")
    print(f"exactly {REPLY_TOKENS} reply tokens: {percentiles(full)}")


if __name__ == "__main__":
    main()
