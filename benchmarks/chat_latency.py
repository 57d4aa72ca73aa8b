"""Latency of one chat turn through gradio_client, against a live app, on the CPU.

    python -m benchmarks.chat_latency [--checkpoint DIR | --url URL] [--turns 30] [--threads 2] [--precision auto]

Without ``--url`` the app is served in this process on a free 127.0.0.1 port. Conversations of
three turns (an opener, a rejection, a follow-up) are played until ``--turns`` turns: through the
stateless ``/chat`` endpoint (request to full reply) twice, over Gradio's HTTP API (``POST
/gradio_api/call/chat``, then the result's server-sent events, as curl or a browser reads them)
and through ``gradio_client``; then through the UI's streaming endpoint ``/chat_stream`` (time to
the first streamed words and to the finished turn, gradio_client). Prints p50/p95/mean in
milliseconds. The first turn of each is a warm-up and is not counted.

The two ``/chat`` figures differ by how the client waits: gradio_client (2.x) looks for the
server's messages every 50 ms (``time.sleep(0.05)`` in ``gradio_client.utils.stream_sse_v1plus``),
so its turns take up to 50 ms more than the server needs; the HTTP figure reads the events as they
arrive. The same app answering at once measured p50 6 ms over HTTP and 56 ms through gradio_client.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Callable

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


def tag(index: int) -> str:
    """A conversation's number in letters (0: "a", 26: "aa"): no digits, which the request reader
    could take for a year."""
    letters = ""
    while True:
        index, digit = divmod(index, 26)
        letters = "abcdefghijklmnopqrstuvwxyz"[digit] + letters
        if not index:
            return letters
        index -= 1


def turns(count: int, first: int = 0):
    """(conversation index, message) pairs: opener, rejection, follow-up, next opener, ...; the
    conversations are numbered from ``first``, and every message names its conversation in letters
    (:func:`tag`), so that no turn repeats an earlier one's text: the app's memos (sentence
    embeddings by text) would answer a repeated context without computing it, which no new user
    gets."""
    conversations = itertools.cycle(OPENERS)
    produced = 0
    for index in itertools.count(first):
        opener = next(conversations)
        for message in [opener, *FOLLOW_UPS]:
            message = f"{message} (chat {tag(index)})"
            if produced == count:
                return
            produced += 1
            yield index, message


def summary(name: str, timings: list[float]) -> str:
    values = np.array(timings) * 1000
    return f"{name}: p50 {np.percentile(values, 50):.0f} ms, p95 {np.percentile(values, 95):.0f} ms, mean {values.mean():.0f} ms ({len(values)} turns)"


def time_conversations(call: Callable[[str, list | None], dict], count: int, first: int = 0) -> list[float]:
    """Seconds of each of ``count + 1`` turns of :func:`turns` (from conversation ``first``), each
    answered by ``call(message, history)`` (a ``/chat`` answer); the first, a warm-up, left out."""
    timings, history, current = [], None, None
    for index, message in turns(count + 1, first):
        if index != current:
            history, current = None, index
        started = time.perf_counter()
        answer = call(message, history)
        timings.append(time.perf_counter() - started)
        history = answer["history"]
    return timings[1:]


def bench_chat(client, count: int) -> list[float]:
    """``/chat`` turns through a ``gradio_client.Client``."""
    return time_conversations(lambda message, history: client.predict(message, history, api_name="/chat"), count, first=1000)


def chat_over_http(client, message: str, history: list[dict] | None) -> dict:
    """One ``/chat`` call over Gradio's HTTP API with an ``httpx.Client`` on the app's URL: POST the
    arguments, then read the event stream until its ``complete`` event; the endpoint's answer
    (``reply``, ``history``, ...). An ``error`` event or a stream without a result raises."""
    posted = client.post("/gradio_api/call/chat", json={"data": [message, history]})
    posted.raise_for_status()
    with client.stream("GET", f"/gradio_api/call/chat/{posted.json()['event_id']}") as events:
        event = None
        for line in events.iter_lines():
            if line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:") and event == "error":
                raise RuntimeError(f"/chat over HTTP answered an error: {line}")
            elif line.startswith("data:") and event == "complete":
                return json.loads(line.partition(":")[2])[0]
    raise RuntimeError("/chat over HTTP: the event stream ended without a result")


def bench_http(url: str, count: int) -> list[float]:
    """``/chat`` turns over Gradio's HTTP API (:func:`chat_over_http`)."""
    import httpx

    with httpx.Client(base_url=url.rstrip("/"), timeout=120, verify=shared_ssl_context()) as client:
        return time_conversations(lambda message, history: chat_over_http(client, message, history), count)


def bench_stream(url: str, count: int) -> tuple[list[float], list[float]]:
    from gradio_client import Client

    first, final, client, current = [], [], None, None
    for index, message in turns(count + 1, first=2000):
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

    from crs.precision import start_inference

    torch.set_num_threads(args.threads)
    precision = start_inference(args.precision)  # as the app serves
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
        http = bench_http(url, args.turns)
        chat = bench_chat(Client(url, verbose=False, ssl_verify=shared_ssl_context()), args.turns)
        first, final = bench_stream(url, args.turns)
    finally:
        if demo is not None:
            demo.close()
    print(f"{args.turns} chat turns against {url}, {args.threads} torch threads, {precision} inference")
    print(summary("/chat over HTTP (stateless, full reply)", http))
    print(summary("/chat through gradio_client (polls every 50 ms)", chat))
    print(summary("/chat_stream first words", first))
    print(summary("/chat_stream finished turn", final))


if __name__ == "__main__":
    main()
