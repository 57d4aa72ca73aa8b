"""Cost of one simulated conversation (crs.eval.simulator) against the chat, on the CPU.

    python -m benchmarks.interactive_cost [--checkpoint checkpoints/default] [--seeker-model checkpoints/seeker]
                                          [--conversations 40] [--max-turns 5] [--threads 2]

Plays the first ``--conversations`` test dialogues with a target, with each simulator, every one for
exactly ``--max-turns`` system turns (the seeker never accepts here, so each conversation is as long
as the harness allows), and prints p50/p95/mean seconds per conversation and the seeker's share of
the time. The first conversation of each simulator is a warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from crs.config import DataConfig
from crs.data.splits import load_split
from crs.eval.simulator import SIMULATORS, ChatSystem, make_seekers, play, profiles
from crs.serve.chat import DEFAULT_CHECKPOINT
from crs.serve.models import duplicates
from crs.serve.pipeline import CRS


class Timed:
    """Wraps a seeker: the time spent in its own turns."""

    def __init__(self, seeker):
        self.seeker, self.seconds = seeker, 0.0

    def __getattr__(self, name):
        return getattr(self.seeker, name)

    def _timed(self, fn, *args):
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - started

    def open(self, state):
        return self._timed(self.seeker.open, state)

    def respond(self, state, reply, items):
        turn = self._timed(self.seeker.respond, state, reply, items)
        turn.act = "reject" if turn.act == "accept" else turn.act  # keep talking: every conversation has max_turns turns
        return turn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.interactive_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--seeker-model", default=str(Path(DEFAULT_CHECKPOINT).parent / "seeker"))
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--max-turns", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default="")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    pipeline = CRS.from_pretrained(args.checkpoint)
    catalogue = pipeline.catalogue
    same_film = lambda ids: duplicates(catalogue, ids)  # noqa: E731
    people = profiles(load_split(DataConfig(data_dir=args.data_dir), "test"), catalogue, same_film)[: args.conversations + 1]
    for seeker in make_seekers(SIMULATORS, catalogue, pipeline.link, same_film, args.seeker_model):
        timed = Timed(seeker)
        totals, seeker_share = [], []
        for index, profile in enumerate(people):
            timed.seconds = 0.0
            started = time.perf_counter()
            play(ChatSystem(pipeline, "crs"), timed, profile, args.max_turns)
            elapsed = time.perf_counter() - started
            if index:
                totals.append(elapsed)
                seeker_share.append(timed.seconds / elapsed)
        values = np.array(totals)
        print(f"{seeker.name} seeker, {args.max_turns} system turns: p50 {np.percentile(values, 50):.2f} s, "
              f"p95 {np.percentile(values, 95):.2f} s, mean {values.mean():.2f} s per conversation "
              f"({len(values)} conversations; the seeker's share of the time {np.mean(seeker_share):.0%}; {args.threads} threads)")


if __name__ == "__main__":
    main()
