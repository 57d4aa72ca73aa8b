"""Latency of one chat turn through gradio_client, against a live app, on the CPU.

    python -m benchmarks.chat_latency [--checkpoint DIR | --url URL] [--turns 30] [--threads 2] [--precision auto]

Without ``--url`` the app is served in this process on a free 127.0.0.1 port. Conversations of
three turns (an opener, a rejection, a follow-up) are played until ``--turns`` turns: through the
stateless ``/chat`` endpoint (request to full reply), then through the UI's streaming endpoint
``/chat_stream`` (time to the first streamed words and to the finished turn). Prints p50/p95/mean
in milliseconds. The first turn of each endpoint is a warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from benchmarks.serving import shared_ssl_context
from crs.precision import CHOICES as PRECISIONS

OPENERS = [
    "I loved The Matrix, anything similar?",
    "I'm in the mood for a romantic comedy like Notting Hill",
    "Can you recommend a scary movie? I liked The Conjuring",
    "My kids loved Toy Story and Finding Nemo",
    "Something with Tom Hanks please",
    "I like sci-fi movies like Interstellar and Arrival",
    "Any good crime movies? Heat and The Departed are my favourites",
    "I want a funny movie tonight, maybe like Superbad",
    "I enjoyed The Dark Knight a lot",
    "Looking for a musical like La La Land",
]
FOLLOW_UPS = ["I've seen that one, something else?", "Anything a bit older?"]


def turns(count: int):
    """(conversation index, message) pairs: opener, rejection, follow-up, next opener, ..."""
    conversations = itertools.cycle(OPENERS)
    produced = 0
    for index in itertools.count():
        opener = next(conversations)
        for message in [opener, *FOLLOW_UPS]:
            if produced == count:
                return
            produced += 1
            yield index, message


def summary(name: str, timings: list[float]) -> str:
    values = np.array(timings) * 1000
    return f"{name}: p50 {np.percentile(values, 50):.0f} ms, p95 {np.percentile(values, 95):.0f} ms, mean {values.mean():.0f} ms ({len(values)} turns)"


def bench_chat(client, count: int) -> list[float]:
    timings, history, current = [], None, None
    for index, message in turns(count + 1):
        if index != current:
            history, current = None, index
        started = time.perf_counter()
        answer = client.predict(message, history, api_name="/chat")
        timings.append(time.perf_counter() - started)
        history = answer["history"]
    return timings[1:]


def bench_stream(url: str, count: int) -> tuple[list[float], list[float]]:
    from gradio_client import Client

    first, final, client, current = [], [], None, None
    for index, message in turns(count + 1):
        if index != current:  # a new client is a new session, so a new conversation
            client, current = Client(url, verbose=False, ssl_verify=shared_ssl_context()), index
        started = time.perf_counter()
        job = client.submit(message, api_name="/chat_stream")
        while not job.outputs() and not job.done():
            time.sleep(0.002)
        first.append(time.perf_counter() - started)
        job.result()
        final.append(time.perf_counter() - started)
    return first[1:], final[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="serve this checkpoint here (default: checkpoints/default)")
    parser.add_argument("--url", default=None, help="measure an app already running at this URL instead")
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="inference precision of the app served here (default auto, as the app)")
    args = parser.parse_args()
    import torch
    from gradio_client import Client

    from crs.precision import set_inference_precision

    torch.set_num_threads(args.threads)
    precision = set_inference_precision(args.precision)
    demo = None
    url = args.url
    if url is None:
        import app
        from crs.serve.chat import DEFAULT_CHECKPOINT
        from crs.serve.models import Models

        models = Models.load(args.checkpoint or DEFAULT_CHECKPOINT)
        if models.pipeline is None:
            raise SystemExit(models.note)
        demo, url = app.serve_in_background(models)
    try:
        chat = bench_chat(Client(url, verbose=False, ssl_verify=shared_ssl_context()), args.turns)
        first, final = bench_stream(url, args.turns)
    finally:
        if demo is not None:
            demo.close()
    print(f"{args.turns} chat turns through gradio_client against {url}, {args.threads} torch threads, {precision} inference")
    print(summary("/chat (stateless, full reply)", chat))
    print(summary("/chat_stream first words", first))
    print(summary("/chat_stream finished turn", final))


if __name__ == "__main__":
    main()
