"""Serving under load: concurrent chat sessions against the app, through gradio_client.

    python -m benchmarks.load [--sessions 20] [--turns 10] [--checkpoint DIR | --url URL] [--out FILE]

Without ``--url`` the app (``python -m crs.app``) is started in a child process on a free
127.0.0.1 port (loopback only), as it is deployed: the clients run in this process, and the app's
peak resident memory (VmHWM) is reported with the figures.
``--sessions`` threads each hold one conversation of ``--turns`` ``/chat`` turns (an opener naming a
movie, then rejections and follow-ups), all at once. The clients connect first (a
``gradio_client.Client`` fetches the app's config and API description, several requests the app
answers), then every session starts its turns together: the turn figures time turns only, and the
connections' own time is reported as ``connect_seconds``. Cross-talk: every answer's history must hold
exactly the messages this session sent and received, in order. Prints answered / errors /
cross-talk / p50 / p95 / turns per second and writes them as JSON (``--out``). Bounded: each turn
times out after ``--timeout`` seconds and counts as an error.

``--repeat N`` plays the whole load N times and reports each round and their median (answered,
errors and cross-talk summed): on 2 cores one round's p95 moves by a few hundred milliseconds from
run to run (measured: 1.47 s to 1.98 s for the same code on one day), more than most changes to serving, so
compare medians of several rounds. Without ``--url`` every round starts its own app, so no round
finds the memos of the one before warm (the sessions send the same messages every round); with
``--url`` the rounds share that app.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.chat_latency import FOLLOW_UPS, OPENERS, tag
from benchmarks.serving import AppServer, shared_ssl_context
from crs.precision import CHOICES as PRECISIONS
from crs.serve.chat import DEFAULT_CHECKPOINT


def connect(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, ssl_verify=shared_ssl_context())


def session(client, index: int, turns: int, timeout: float, start: threading.Barrier | None = None) -> dict:
    """One conversation of ``turns`` turns through ``client`` (after ``start``, when given)."""
    if start is not None:
        start.wait()
    history, sent, timings, errors, crosstalk = None, [], [], 0, 0
    messages = [OPENERS[index % len(OPENERS)]] + [f"{FOLLOW_UPS[t % len(FOLLOW_UPS)]} (session {tag(index)}, turn {tag(t)})" for t in range(1, turns)]
    for message in messages:
        started = time.perf_counter()
        try:
            job = client.submit(message, history, api_name="/chat")
            answer = job.result(timeout=timeout)
        except Exception:  # a timeout or a server error: counted, the session goes on
            errors += 1
            continue
        timings.append(time.perf_counter() - started)
        sent.append(message)
        users = [m["content"] for m in answer["history"] if m["role"] == "user"]
        crosstalk += int(users != sent)
        history = answer["history"]
    return {"timings": timings, "errors": errors, "crosstalk": crosstalk}


def run(url: str, sessions: int, turns: int, timeout: float) -> dict:
    with ThreadPoolExecutor(max_workers=sessions) as pool:
        connecting = time.perf_counter()
        clients = list(pool.map(lambda _: connect(url), range(sessions)))
        connect_seconds = time.perf_counter() - connecting
        start = threading.Barrier(sessions + 1)
        futures = [pool.submit(session, client, i, turns, timeout, start) for i, client in enumerate(clients)]
        start.wait()
        started = time.perf_counter()
        results = [future.result() for future in futures]
    elapsed = time.perf_counter() - started
    timings = np.array([t for r in results for t in r["timings"]]) * 1000
    firsts = np.array([r["timings"][0] for r in results if r["timings"]]) * 1000
    later = np.array([t for r in results for t in r["timings"][1:]]) * 1000
    return {
        "sessions": sessions, "turns_per_session": turns, "answered": int(timings.size),
        "errors": sum(r["errors"] for r in results), "crosstalk": sum(r["crosstalk"] for r in results),
        "p50_ms": round(float(np.percentile(timings, 50)), 1) if timings.size else None,
        "p95_ms": round(float(np.percentile(timings, 95)), 1) if timings.size else None,
        "turns_per_second": round(timings.size / elapsed, 2), "seconds": round(elapsed, 1),
        # the first turns arrive together (every session's opener at once): shown apart
        "first_turn_p50_ms": round(float(np.percentile(firsts, 50)), 1) if firsts.size else None,
        "later_turns_p95_ms": round(float(np.percentile(later, 95)), 1) if later.size else None,
        "connect_seconds": round(connect_seconds, 2),
    }


MEDIAN_FIGURES = ("p50_ms", "p95_ms", "turns_per_second", "seconds", "first_turn_p50_ms", "later_turns_p95_ms", "connect_seconds")
SUMMED_FIGURES = ("answered", "errors", "crosstalk")


def combine(rounds: list[dict]) -> dict:
    """One round's figures as they are; several rounds' as their median (the counts summed, the app's
    peak RSS the highest), with every round kept under ``rounds``."""
    if len(rounds) == 1:
        return rounds[0]
    figures = {key: rounds[0][key] for key in ("sessions", "turns_per_session")}
    figures.update({key: sum(r[key] for r in rounds) for key in SUMMED_FIGURES})
    for key in MEDIAN_FIGURES:
        values = [r[key] for r in rounds if r.get(key) is not None]
        figures[key] = round(float(np.median(values)), 2 if key == "turns_per_second" else 1) if values else None
    peaks = [r["app_peak_rss_mib"] for r in rounds if r.get("app_peak_rss_mib") is not None]
    if peaks:
        figures["app_peak_rss_mib"] = max(peaks)
    figures["rounds"] = rounds
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--url", default=None, help="an app already running (default: start one here on 127.0.0.1)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a turn counts as an error")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the app started here")
    parser.add_argument("--precision", "--encoder-precision", dest="precision", choices=PRECISIONS, default="auto",
                        help="inference precision of the app started here (default auto, as the app)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the whole load, reported with their median (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    if not (1 <= args.sessions <= 200 and 1 <= args.turns <= 100):
        parser.error("--sessions must lie in 1..200 and --turns in 1..100")
    if not 1 <= args.repeat <= 20:
        parser.error("--repeat must lie in 1..20")
    rounds = []
    for index in range(args.repeat):
        with contextlib.ExitStack() as stack:
            app = None if args.url else stack.enter_context(AppServer(args.checkpoint or DEFAULT_CHECKPOINT, args.threads,
                                                                         ("--precision", args.precision)))
            url = args.url or app.url
            figures = run(url, args.sessions, args.turns, args.timeout)
            if app is not None:
                figures["app_peak_rss_mib"] = app.rss()["peak_rss_mib"]
        rounds.append(figures)
        print(("" if args.repeat == 1 else f"round {index + 1}/{args.repeat}: ") + summary(args, url, figures))
    figures = combine(rounds)
    if args.repeat > 1:
        print(f"median of {args.repeat} rounds: " + summary(args, url, figures))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


def summary(args: argparse.Namespace, url: str, figures: dict) -> str:
    return (f"{args.sessions} sessions x {args.turns} /chat turns against {url}: answered {figures['answered']}, "
            f"errors {figures['errors']}, cross-talk {figures['crosstalk']}, p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, "
            f"{figures['turns_per_second']} turns/s (first turns p50 {figures['first_turn_p50_ms']} ms, later turns p95 "
            f"{figures['later_turns_p95_ms']} ms)" + (f", app peak RSS {figures['app_peak_rss_mib']} MiB" if "app_peak_rss_mib" in figures else ""))


if __name__ == "__main__":
    main()
