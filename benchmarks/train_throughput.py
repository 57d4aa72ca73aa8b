"""Training throughput of the reply generator, fp32 against bf16 autocast.

    python -m benchmarks.train_throughput [--steps 3] [--batch-size 8] [--length 256]
        [--sizes scratch-tiny scratch-small] [--threads 2] [--out FILE.json]

Steps are those of train.loop (the accelerator of the loop config's ``precision``, forward,
backward, gradient clipping, AdamW) on the pretrain-lm objective of the ``dialogpt`` backbone
(next-token prediction over blocks of ``--length`` tokens), with random token ids and the
default tokenizer's vocabulary size. One warm-up step, then ``--steps`` timed ones. Prints
training tokens per second for each scratch size (crs.gen.backbone.SCRATCH_SIZES) and precision
on the accelerator's device (a GPU when there is one); ``--out`` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from crs.config import TrainLoopConfig
from crs.gen.backbone import SCRATCH_SIZES
from crs.precision import bf16_supported
from train.loop import make_accelerator

VOCAB = 8100  # the default tokenizer's (checkpoints/default/tokenizer)


def measure(size: str, precision: str, steps: int, batch_size: int, length: int) -> dict:
    torch.manual_seed(0)
    config = TrainLoopConfig(precision=precision, lr=1e-3)
    accelerator = make_accelerator(config)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=length, bos_token_id=0, eos_token_id=0,
                                       pad_token_id=0, **SCRATCH_SIZES["dialogpt"][size]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    ids = torch.randint(0, VOCAB, (steps + 1, batch_size, length))

    def step(batch: torch.Tensor) -> float:
        batch = batch.to(accelerator.device)
        loss = model(input_ids=batch, labels=batch).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()  # waits for the device

    step(ids[0])  # warm-up
    started = time.perf_counter()
    losses = [step(batch) for batch in ids[1:]]
    seconds = time.perf_counter() - started
    return {
        "size": size,
        "precision": precision,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "batch_size": batch_size,
        "length": length,
        "seconds_per_step": seconds / steps,
        "tokens_per_second": steps * batch_size * length / seconds,
        "last_loss": losses[-1],
        "device": str(accelerator.device),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per size and precision")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--length", type=int, default=256, help="tokens per block (generator.max_length)")
    parser.add_argument("--sizes", nargs="+", default=["scratch-tiny", "scratch-small"], choices=list(SCRATCH_SIZES["dialogpt"]))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--out", default="", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for size in args.sizes:
        for precision in args.precisions:
            row = measure(size, precision, args.steps, args.batch_size, args.length)
            results.append(row)
            print(f"{size:14s} {precision}: {row['tokens_per_second']:9.0f} tokens/s "
                  f"({row['seconds_per_step'] * 1000:.0f} ms/step, batch {args.batch_size} x {args.length}, "
                  f"{row['parameters'] / 1e6:.1f}M parameters, {row['device']})", flush=True)
    for size in args.sizes:
        by = {r["precision"]: r["tokens_per_second"] for r in results if r["size"] == size}
        if {"fp32", "bf16"} <= by.keys():
            print(f"{size:14s} bf16 / fp32: {by['bf16'] / by['fp32']:.2f}x")
    if args.out:
        report = {
            "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "bf16_supported": bf16_supported(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "results": results,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"written {args.out}")


if __name__ == "__main__":
    main()
