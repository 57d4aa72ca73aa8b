"""The benchmark suite: one command for the figures the README quotes.

    python -m benchmarks [--quick] [--out docs/benchmarks] [--parts steps,rss,eval,train,load]
                         [--checkpoint checkpoints/default] [--threads 2]

Parts (each writes ``<out>/<part>.json``; all of them together ``<out>/suite.json`` and the table
``<out>/suite.md``, which is also printed):

* ``steps``: one chat turn split by step, in this process on the checkpoint
  (:meth:`crs.serve.models.Models.load`): the calls named in :data:`STEPS` are wrapped with timers
  while :func:`crs.serve.chat.chat_turn` plays the conversations of :mod:`benchmarks.chat_latency`
  (an opener, a rejection, a follow-up, ...). A step's time in a turn is the sum of its calls in
  that turn, less the time of other timed steps called inside it (so ``generation`` is
  ``ReplyGenerator.generate`` without the retrieval and the hybrid reply choice it does, and the
  ``reply choice`` (scoring the generated and the retrieved replies) without the retrieval; the steps never add up
  to more than the turn); a call of a step inside the same step (``rank_request`` delegating to
  ``rank_requests``) is counted once. ``other`` is the rest of the turn. p50/p95/mean in ms; the
  first turn is a warm-up and is not counted.
* ``rss``: the serving process's peak RSS: ``python -m crs.app`` started in a subprocess on a free
  127.0.0.1 port, ``/chat`` turns through ``gradio_client``, then VmHWM of that Python process
  (``/proc/<pid>/status``).
* ``eval``: throughput of the evaluation harness (``python -m crs.evaluate --model
  crs=CHECKPOINT --split test --tasks rec,conv,constraints --limit N --constraint-cases C``, run in
  this process): turns and dialogues per second of each task, timed around the task's own
  function (:data:`EVAL_TASKS`), so loading the checkpoint and the data is not counted (it is
  reported as ``setup_seconds``). A constraint case is one dialogue, played by every system the
  harness plays (the checkpoint's chat, popularity, kg-filter).
* ``train``: training throughput from :func:`benchmarks.train_throughput.measure` (pretrain-lm
  steps of the shared loop): samples/s and tokens/s per size and precision.
* ``load``: :func:`benchmarks.load.main` (``--url``) against the same app subprocess as ``rss``:
  concurrent ``/chat`` sessions; the server's peak RSS after it is added.

``--quick`` makes every part tiny (a smoke run of about a minute); the default sizes
(:data:`SIZES`) take a few minutes on 2 CPU cores. Progress goes to stderr, the table to stdout. A
part that fails is reported (``error`` in its JSON) and the others still run; the exit status is
then 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from benchmarks.serving import AppServer, log, read_lines
from crs.precision import CHOICES as PRECISION_CHOICES
from crs.precision import start_inference

PARTS = ("steps", "rss", "eval", "train", "load")

# The timed calls of the steps part: (step, owner, attribute). The owner is "module" or
# "module:Class"; a step may have several rows (a call of a step inside the same step counts once),
# and a row whose attribute does not exist is skipped, as long as every step keeps one. Ranking is
# CRS.rank_requests, which every ranking of a turn goes through (rank and rank_request delegate to it).
STEPS: list[tuple[str, str, str]] = [
    ("linking", "crs.serve.pipeline:CRS", "context"),
    ("request state", "crs.serve.pipeline:CRS", "request_state"),
    ("ranking", "crs.serve.pipeline:CRS", "rank_requests"),
    ("retrieval", "crs.gen.exemplars:ExemplarIndex", "query"),
    ("reply choice", "crs.gen.reply:ReplyGenerator", "_hybrid"),
    ("generation", "crs.gen.reply:ReplyGenerator", "generate"),
    ("rendering", "crs.ui.chat", "reasoning_markdown"),
]
STEP_NAMES = list(dict.fromkeys(step for step, _, _ in STEPS))

# The eval part: harness task -> the function of crs.eval.harness that scores it.
EVAL_TASKS = {"rec": "evaluate_recommender", "conv": "evaluate_conversation", "constraints": "evaluate_constraints"}

SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "steps": {"turns": 4},
        "rss": {"turns": 2},
        "eval": {"limit": 2, "constraint_cases": 2},
        "train": {"steps": 2, "batch_size": 2, "length": 64, "sizes": ["scratch-tiny"], "precisions": ["fp32", "bf16"],
                  "stages": ["pretrain-kg"]},
        "load": {"sessions": 2, "turns": 2},
    },
    "default": {
        "steps": {"turns": 30},
        "rss": {"turns": 10},
        "eval": {"limit": 30, "constraint_cases": 30},
        "train": {"steps": 3, "batch_size": 8, "length": 256, "sizes": ["scratch-tiny", "scratch-small"],
                  "precisions": ["fp32", "bf16"], "stages": ["all"]},
        "load": {"sessions": 20, "turns": 10},
    },
}
LOAD_TURN_TIMEOUT = 120.0  # seconds before a load turn counts as an error


def ms(values: list[float] | np.ndarray) -> dict:
    """p50/p95/mean/max of seconds, in milliseconds."""
    array = np.asarray(values, dtype=float) * 1000
    if not array.size:
        return {"p50_ms": None, "p95_ms": None, "mean_ms": None, "max_ms": None, "n": 0}
    return {"p50_ms": round(float(np.percentile(array, 50)), 3), "p95_ms": round(float(np.percentile(array, 95)), 3),
            "mean_ms": round(float(array.mean()), 3), "max_ms": round(float(array.max()), 3), "n": int(array.size)}


# ---------------------------------------------------------------------- the machine


def machine(threads: int) -> dict:
    """What the figures were measured on."""
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in read_lines("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor() or platform.machine())
    mem_kib = next((int(line.split()[1]) for line in read_lines("/proc/meminfo") if line.startswith("MemTotal:")), 0)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    commit = _git("rev-parse", "HEAD")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gib": round(mem_kib / 2**20, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": threads,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "git_commit": commit,
        "git_dirty": bool(_git("status", "--porcelain")) if commit else None,
    }


def _git(*args: str) -> str:
    from crs.paths import PROJECT_ROOT

    try:
        return subprocess.run(["git", *args], check=False, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ---------------------------------------------------------------------- steps: timers around named calls


def resolve_owner(owner: str) -> object:
    module_name, _, attribute = owner.partition(":")
    target = importlib.import_module(module_name)
    return getattr(target, attribute) if attribute else target


class StepTimer:
    """Wraps the calls of :data:`STEPS` while it is entered; :meth:`turn` collects one turn's times.

    Each step's time is exclusive: the time of other timed steps called inside it is left out. A
    step called inside itself is timed once, by the outermost call."""

    def __init__(self, table: list[tuple[str, str, str]] = STEPS):
        self.table = table
        self.step_names = list(dict.fromkeys(step for step, _, _ in table))
        self.wrapped: list[dict] = []  # the rows wrapped: step, owner, attribute
        self.skipped: list[dict] = []  # rows whose attribute does not exist
        self._restore: list[Callable[[], None]] = []
        self._local = threading.local()
        self._times: dict[str, float] = {}
        self._calls: dict[str, int] = {}

    def __enter__(self) -> "StepTimer":
        try:
            for step, owner_name, attribute in self.table:
                owner = resolve_owner(owner_name)
                original = getattr(owner, attribute, None)
                if original is None:
                    self.skipped.append({"step": step, "owner": owner_name, "attribute": attribute})
                    continue
                self._patch(owner, attribute, self._wrap(step, original))
                self.wrapped.append({"step": step, "owner": owner_name, "attribute": attribute})
            missing = [step for step in self.step_names if step not in {w["step"] for w in self.wrapped}]
            if missing:
                raise AttributeError(f"no timed call exists for the steps {missing}: fix benchmarks/suite.py STEPS ({self.skipped})")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        while self._restore:
            self._restore.pop()()

    def _patch(self, owner: object, attribute: str, wrapper: Callable) -> None:
        own = vars(owner).get(attribute, None) if hasattr(owner, "__dict__") else None
        setattr(owner, attribute, wrapper)
        if own is None:  # inherited: take the wrapper off again
            self._restore.append(lambda: delattr(owner, attribute))
        else:
            self._restore.append(lambda: setattr(owner, attribute, own))

    def _wrap(self, step: str, function: Callable) -> Callable:
        timer = self

        @wraps(function)
        def timed(*args, **kwargs):
            stack = timer._stack()
            if any(frame[0] == step for frame in stack):  # inside the same step: the outer call times it
                return function(*args, **kwargs)
            frame = [step, 0.0]  # step, seconds of other timed steps inside this call
            stack.append(frame)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                stack.pop()
                if stack:
                    stack[-1][1] += elapsed
                timer._times[step] = timer._times.get(step, 0.0) + elapsed - frame[1]
                timer._calls[step] = timer._calls.get(step, 0) + 1

        return timed

    def _stack(self) -> list:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    @contextlib.contextmanager
    def turn(self) -> Iterator[dict]:
        """Times one turn: the dict it yields gets ``total`` (s), ``steps`` (s per step) and ``calls``."""
        self._times, self._calls = {}, {}
        out: dict = {}
        started = time.perf_counter()
        yield out
        out["total"] = time.perf_counter() - started
        out["steps"] = {step: self._times.get(step, 0.0) for step in self.step_names}
        out["calls"] = {step: self._calls.get(step, 0) for step in self.step_names}


def bench_steps(checkpoint: Path, turns: int) -> dict:
    import crs.ui.chat
    from benchmarks.chat_latency import turns as conversation_turns
    from crs.serve.chat import ChatState, chat_turn
    from crs.serve.models import Models

    started = time.perf_counter()
    models = Models.load(checkpoint, with_ranker=False)  # the chat needs no zero-shot ranker
    if models.pipeline is None:
        raise RuntimeError(models.note)
    load_seconds = time.perf_counter() - started
    rows, state, current = [], None, None
    with StepTimer() as timer:
        for number, (conversation, message) in enumerate(conversation_turns(turns + 1)):
            if conversation != current:
                state, current = ChatState(), conversation
            with timer.turn() as measured:
                # the module attribute, looked up now: the wrapped reasoning_markdown
                result = chat_turn(models.pipeline, message, state, reasoning=crs.ui.chat.reasoning_markdown)
            state = result.state
            if number:  # the first turn is a warm-up
                rows.append({"conversation": conversation, "message": message, "reply": result.reply, **measured})
            log(f"steps: turn {number}/{turns} {measured['total'] * 1000:.0f} ms{' (warm-up)' if not number else ''}")
        wrapped, skipped = timer.wrapped, timer.skipped
    steps = {step: ms([r["steps"][step] for r in rows]) for step in STEP_NAMES}
    other = [r["total"] - sum(r["steps"].values()) for r in rows]
    return {
        "checkpoint": str(checkpoint),
        "generator": models.pipeline.generator is not None,
        "load_seconds": round(load_seconds, 2),
        "turns": len(rows),
        "steps": steps,
        "other": ms(other),
        "total": ms([r["total"] for r in rows]),
        "timed_calls": wrapped,
        "missing_calls": skipped,
        "per_turn": [{"conversation": r["conversation"], "message": r["message"], "total_ms": round(r["total"] * 1000, 3),
                      "steps_ms": {s: round(v * 1000, 3) for s, v in r["steps"].items()}, "calls": r["calls"]} for r in rows],
    }


def bench_rss(server: AppServer, turns: int) -> dict:
    from gradio_client import Client

    from benchmarks.chat_latency import bench_chat

    idle = server.rss()
    log(f"rss: {turns + 1} /chat turns ...")
    timings = bench_chat(Client(server.url, verbose=False), turns)  # the first turn is a warm-up, not counted
    after = server.rss()
    return {"server": server.info, "chat_turns": turns + 1, "after_start": {k: idle[k] for k in ("peak_rss_mib", "rss_now_mib")},
            **after, "chat_turn": ms(timings)}


def bench_load(server: AppServer, sessions: int, turns: int) -> dict:
    from benchmarks import load

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "load.json"
        with contextlib.redirect_stdout(sys.stderr):  # load.main's summary line is progress here
            load.main(["--url", server.url, "--sessions", str(sessions), "--turns", str(turns),
                       "--timeout", str(LOAD_TURN_TIMEOUT), "--out", str(path)])
        figures = json.loads(path.read_text(encoding="utf-8"))
    after = server.rss()
    return {**figures, "server": server.info, "server_peak_rss_mib_after": after["peak_rss_mib"],
            "server_peak_rss_gib_after": after["peak_rss_gib"]}


# ---------------------------------------------------------------------- eval: the harness, task by task


def count_eval(task: str, args: tuple, result: object) -> dict:
    """What one call of a task's function scored."""
    if task == "rec":
        return {"turns": len(result.turns), "instances": result.summary()["standard"]["count"]}
    if task == "conv":
        return {"turns": int(result.summary["turns"])}
    system, cases = args[0], args[1]
    return {"turns": sum(len(case.turns) for case in cases), "dialogues": len(cases), "system": getattr(system, "name", "?")}


def bench_eval(checkpoint: Path, limit: int, constraint_cases: int) -> dict:
    from crs.eval import harness

    calls: dict[str, list[dict]] = {task: [] for task in EVAL_TASKS}
    originals = {task: getattr(harness, name) for task, name in EVAL_TASKS.items()}

    def timed(task: str, function: Callable) -> Callable:
        @wraps(function)
        def run(*args, **kwargs):
            log(f"eval: {task} ...")
            started = time.perf_counter()
            result = function(*args, **kwargs)
            seconds = time.perf_counter() - started
            calls[task].append({"seconds": seconds, **count_eval(task, args, result)})
            log(f"eval: {task} {calls[task][-1]['turns']} turns in {seconds:.1f} s")
            return result

        return run

    argv = ["--model", f"crs={checkpoint}", "--split", "test", "--tasks", ",".join(EVAL_TASKS), "--limit", str(limit),
            "--constraint-cases", str(constraint_cases), "--quiet"]
    with tempfile.TemporaryDirectory() as folder:
        try:
            for task, name in EVAL_TASKS.items():
                setattr(harness, name, timed(task, originals[task]))
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the report it prints
                harness.main(argv + ["--out", folder])
            wall = time.perf_counter() - started
        finally:
            for task, name in EVAL_TASKS.items():
                setattr(harness, name, originals[task])
        metrics = json.loads((Path(folder) / "metrics.json").read_text(encoding="utf-8"))
    dialogues = metrics["meta"]["dialogues"]
    tasks = {}
    for task, rows in calls.items():
        if not rows:
            raise RuntimeError(f"the harness did not run the {task} task")
        seconds = sum(r["seconds"] for r in rows)
        turns = sum(r["turns"] for r in rows)
        played = sum(r.get("dialogues", dialogues) for r in rows)
        tasks[task] = {"turns": turns, "dialogues": played, "seconds": round(seconds, 3),
                       "turns_per_second": round(turns / seconds, 3) if seconds > 0 else None,
                       "dialogues_per_second": round(played / seconds, 3) if seconds > 0 else None}
        if task == "constraints":
            tasks[task]["per_system"] = [{"system": r["system"], "dialogues": r["dialogues"], "turns": r["turns"],
                                          "seconds": round(r["seconds"], 3)} for r in rows]
        if task == "rec":
            tasks[task]["instances"] = sum(r["instances"] for r in rows)
    # The harness's own counts, as a cross-check of what was timed.
    checks = {"rec_turns": metrics["meta"].get("rec_turns"),
              "conv_turns": sum(v.get("turns", 0) for v in metrics.get("conv", {}).values()),
              "constraint_cases": {k: v.get("all", {}).get("cases") for k, v in metrics.get("constraints", {}).items()}}
    scored = sum(t["seconds"] for t in tasks.values())
    return {"command": "python -m crs.evaluate " + " ".join(argv), "split": "test", "limit": limit, "dialogues": dialogues,
            "constraint_cases": constraint_cases, "wall_seconds": round(wall, 2), "setup_seconds": round(wall - scored, 2),
            "tasks": tasks, "harness_counts": checks,
            "note": "turns: rec = recommender turns ranked, conv = recommender turns generated, "
                    "constraints = user turns played (cases x systems); timed around each task's function only"}


# ---------------------------------------------------------------------- train


def bench_train(steps: int, batch_size: int, length: int, sizes: list[str], precisions: list[str], stages: list[str]) -> dict:
    import torch

    from benchmarks.train_throughput import measure
    from crs.precision import bf16_supported

    rows = []
    for size in sizes:
        for precision in precisions:
            log(f"train: {size} {precision} ...")
            row = measure(size, precision, steps, batch_size, length)
            row["stage"] = "pretrain-lm"
            row["samples_per_second"] = row["tokens_per_second"] / length
            rows.append(row)
            log(f"train: {size} {precision} {row['tokens_per_second']:.0f} tokens/s")
    return {"stage": "pretrain-lm (dialogpt backbone, random token ids; benchmarks/train_throughput.py)",
            "bf16_supported": bf16_supported(), "cpu_capability": torch.backends.cpu.get_cpu_capability(), "results": rows,
            "stages": bench_stages(stages, precisions)}


TINY_RECIPE = "configs/tiny.yaml"
LOOP_STAGES = ("pretrain-kg", "pretrain-lm", "conv-fixed-prompt", "rec")  # the stages with a training loop
LOOP_PRECISION_KEYS = ("pretrain_kg", "pretrain_lm", "conv", "rec")  # their config sections


def bench_stages(stages: list[str], precisions: list[str]) -> list[dict]:
    """Each stage's training speed as the shared loop records it (``history.json``: samples/s and,
    for token batches, tokens/s of the training part of each epoch), on the tiny recipe
    (``configs/tiny.yaml``, real data), one run per precision: ``python -m train STAGE`` in a child
    process into a temporary folder."""
    from crs.paths import PROJECT_ROOT

    rows = []
    for precision in precisions:
        with tempfile.TemporaryDirectory() as folder:
            for stage in stages:
                log(f"train: {stage} stage(s) of {TINY_RECIPE} in {precision} ...")
                command = [sys.executable, "-m", "train", stage, "--quiet", "--config", TINY_RECIPE, "--output-dir", folder,
                           *[f"{key}.loop.precision={precision}" for key in LOOP_PRECISION_KEYS]]
                done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
                if done.returncode:
                    raise RuntimeError(f"{' '.join(command[1:])} failed:\n{done.stderr[-2000:]}")
            for name in LOOP_STAGES:
                path = Path(folder) / name / "loop" / "history.json"
                if not path.is_file():
                    continue
                epochs = json.loads(path.read_text(encoding="utf-8"))
                seconds = sum(e["train_seconds"] for e in epochs)
                samples = sum(e["samples_per_second"] * e["train_seconds"] for e in epochs)
                tokens = sum(e.get("tokens_per_second", 0) * e["train_seconds"] for e in epochs)
                rows.append({"stage": name, "precision": precision, "recipe": TINY_RECIPE, "epochs": len(epochs),
                             "train_seconds": round(seconds, 3), "samples_per_second": round(samples / seconds, 1),
                             "tokens_per_second": round(tokens / seconds, 1) if tokens else None})
                log(f"train: {name} {precision} {rows[-1]['samples_per_second']} samples/s")
    return rows


# ---------------------------------------------------------------------- the table


def _fmt(value: float | None, unit: str = "ms") -> str:
    if value is None:
        return "–"
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def markdown(suite: dict) -> str:
    m = suite["machine"]
    heading = (f"Benchmark suite{' (--quick smoke run: tiny sizes, not figures to quote)' if suite['quick'] else ''}: "
               f"{m['cpu']}, {m['usable_cores']} cores, {m['ram_gib']} GiB RAM, torch {m['torch']} ({m['torch_threads']} threads), "
               f"inference precision {m.get('inference_precision', 'fp32')}, load average at start {m['load_average_at_start'][0]}.")
    lines = [heading, "", "| part | measure | result |", "|---|---|---|"]
    parts = suite["parts"]
    for name in PARTS:
        part = parts.get(name)
        if part is None:
            continue
        if "error" in part:
            lines.append(f"| {name} | failed | {part['error'].splitlines()[-1][:200]} |")
            continue
        r = part["results"]
        if name == "steps":
            for step in STEP_NAMES + ["other", "total"]:
                s = r["steps"][step] if step in r["steps"] else r[step]
                label = "total turn" if step == "total" else step
                lines.append(f"| steps | {label} | p50 {_fmt(s['p50_ms'])}, p95 {_fmt(s['p95_ms'])}, mean {_fmt(s['mean_ms'])} ({r['turns']} turns) |")
        elif name == "rss":
            lines.append(f"| rss | serving peak RSS (VmHWM of `python -m crs.app` after {r['chat_turns']} /chat turns) | "
                         f"{r['peak_rss_mib']:.0f} MiB ({r['peak_rss_gib']:.2f} GiB) |")
        elif name == "eval":
            for task, t in r["tasks"].items():
                lines.append(f"| eval | {task} (test, --limit {r['limit']}{', ' + str(r['constraint_cases']) + ' cases' if task == 'constraints' else ''}) | "
                             f"{t['turns_per_second']:.1f} turns/s, {t['dialogues_per_second']:.2f} dialogues/s "
                             f"({t['turns']} turns, {t['dialogues']} dialogues, {t['seconds']:.1f} s) |")
        elif name == "train":
            for row in r["results"]:
                lines.append(f"| train | {row['stage']} {row['size']} {row['precision']} (batch {row['batch_size']} x {row['length']}) | "
                             f"{row['samples_per_second']:.1f} samples/s, {row['tokens_per_second']:.0f} tokens/s |")
            for row in r.get("stages", []):
                unit = "triples" if row["stage"] == "pretrain-kg" else "samples"
                tokens = f", {row['tokens_per_second']:.0f} tokens/s" if row["tokens_per_second"] else ""
                lines.append(f"| train | stage {row['stage']} {row['precision']} ({row['recipe']}, {row['train_seconds']:.2f} s of training) | "
                             f"{row['samples_per_second']:.0f} {unit}/s{tokens} |")
        elif name == "load":
            lines.append(f"| load | {r['sessions']} sessions x {r['turns_per_session']} /chat turns | answered {r['answered']}, "
                         f"errors {r['errors']}, cross-talk {r['crosstalk']}, p50 {_fmt(r['p50_ms'])}, p95 {_fmt(r['p95_ms'])}, "
                         f"{r['turns_per_second']} turns/s; server peak RSS {r['server_peak_rss_mib_after']:.0f} MiB |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- main


def parse_parts(value: str) -> list[str]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"unknown parts {unknown}; choose from {','.join(PARTS)}")
    return parts


def main(argv: list[str] | None = None) -> int:
    from crs.paths import PROJECT_ROOT
    from crs.serve.chat import DEFAULT_CHECKPOINT

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of about a minute")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks", help="folder for the JSON files (default %(default)s)")
    parser.add_argument("--parts", type=parse_parts, default=list(PARTS), help=f"comma-separated, from {','.join(PARTS)} (default: all)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads, here and in the served app (default 2)")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                        help="inference precision, here and in the served app (default auto, as the app serves)")
    args = parser.parse_args(argv)
    if not (args.checkpoint / "config.json").is_file():
        parser.error(f"{args.checkpoint} holds no model (no config.json)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")  # before the harness's INFO one
    import torch

    torch.set_num_threads(args.threads)
    precision = start_inference(args.precision)  # as the app serves
    mode = "quick" if args.quick else "default"
    sizes = SIZES[mode]
    suite = {"quick": args.quick, "sizes": {p: sizes[p] for p in args.parts}, "machine": {**machine(args.threads), "inference_precision": precision}, "parts": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    started_suite = time.perf_counter()
    log(f"suite ({mode}): {', '.join(args.parts)} -> {args.out}")

    def run_part(name: str, function: Callable[[], dict]) -> None:
        log(f"{name}: start")
        started = time.perf_counter()
        part: dict = {"part": name, "quick": args.quick, "settings": sizes[name]}
        try:
            part["results"] = function()
        except (Exception, SystemExit):  # a part's own argument check exits: reported like any failure
            part["error"] = traceback.format_exc()
            log(f"{name}: FAILED\n{part['error']}")
        part["seconds"] = round(time.perf_counter() - started, 1)
        part["machine"] = suite["machine"]
        suite["parts"][name] = {k: v for k, v in part.items() if k != "machine"}
        (args.out / f"{name}.json").write_text(json.dumps(part, indent=2) + "\n", encoding="utf-8")
        log(f"{name}: done in {part['seconds']} s -> {args.out / (name + '.json')}")

    checkpoint = args.checkpoint
    if "steps" in args.parts:
        run_part("steps", lambda: bench_steps(checkpoint, **sizes["steps"]))
    if "eval" in args.parts:
        run_part("eval", lambda: bench_eval(checkpoint, **sizes["eval"]))
    if "train" in args.parts:
        run_part("train", lambda: bench_train(**sizes["train"]))
    served = [p for p in ("rss", "load") if p in args.parts]
    if served:  # one app subprocess for both: rss is read before the load part runs
        try:
            with AppServer(checkpoint, args.threads, ("--precision", precision)) as server:
                if "rss" in served:
                    run_part("rss", lambda: bench_rss(server, **sizes["rss"]))
                if "load" in served:
                    run_part("load", lambda: bench_load(server, **sizes["load"]))
        except Exception:
            error = traceback.format_exc()
            log(f"app: FAILED\n{error}")
            def failed() -> dict:
                raise RuntimeError(f"the app subprocess failed:\n{error}")

            for name in served:
                if name not in suite["parts"]:
                    run_part(name, failed)
    suite["seconds"] = round(time.perf_counter() - started_suite, 1)
    suite["parts"] = {name: suite["parts"][name] for name in PARTS if name in suite["parts"]}
    table = markdown(suite)
    (args.out / "suite.json").write_text(json.dumps(suite, indent=2) + "\n", encoding="utf-8")
    (args.out / "suite.md").write_text(table, encoding="utf-8")
    print(table, flush=True)
    log(f"suite: {suite['seconds']} s; written {args.out / 'suite.json'}")
    return 1 if any("error" in part for part in suite["parts"].values()) else 0
