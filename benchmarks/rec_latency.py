"""Latency of scoring the whole catalogue for one dialogue context, on the CPU.

    python -m benchmarks.rec_latency --checkpoint runs/default/checkpoint [--contexts 200] [--threads 2]

Contexts are test-split recommender turns, each scored alone (batch of one) from a cold memo, so
every call links the turns' text, encodes the context and scores all movies. Prints p50/p95/mean
in milliseconds and the process's peak memory.
"""

from __future__ import annotations

import argparse
import random
import resource
import time

import numpy as np
import torch

from crs.config import load_config
from crs.data.context import DialogueContext
from crs.data.samples import build_samples
from crs.data.splits import load_split
from crs.rec.kg_text import KGTextRecommender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--contexts", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(overrides=[f"data.data_dir={args.data_dir}"] if args.data_dir else [])
    started = time.perf_counter()
    model = KGTextRecommender.from_pretrained(args.checkpoint)
    load_seconds = time.perf_counter() - started
    samples = [s for s in build_samples(load_split(config.data, "test")) if s.movies]
    random.Random(0).shuffle(samples)
    contexts = [DialogueContext.from_sample(s) for s in samples[: args.contexts]]
    model.score_items(contexts[-1])  # warm-up: entity embeddings are computed once
    timings = []
    for context in contexts:
        model._text_cache.clear()
        if model.text_encoder is not None:
            model.text_encoder.clear_memo()
        model.featurizer._turn_cache.clear()
        if model.featurizer.sentiment is not None:
            model.featurizer.sentiment._memo.clear()
        start = time.perf_counter()
        scores = model.score_items(context)
        timings.append((time.perf_counter() - start) * 1000)
    assert scores.shape == (len(model.catalogue),)
    timings = np.array(timings)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"checkpoint load {load_seconds:.1f} s; {len(timings)} contexts, {args.threads} threads, catalogue {len(model.catalogue)} movies")
    print(f"score one context: p50 {np.percentile(timings, 50):.1f} ms, p95 {np.percentile(timings, 95):.1f} ms, mean {timings.mean():.1f} ms")
    print(f"peak memory {peak:.0f} MiB")


if __name__ == "__main__":
    main()
