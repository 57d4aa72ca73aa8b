"""The ``crs`` console script: one command over the project's ``python -m`` entry points.

    crs chat [--checkpoint DIR] [--host H] [--port P] [--share]     python app.py
    crs train <stage> [--config FILE] [key=value ...]               python -m train
    crs evaluate --model ... [--tasks ...]                          python -m crs.evaluate
    crs bench <name> [options]                                      python -m benchmarks.<name>
    crs bench all [--quick] [--out DIR] [--parts ...]               python -m benchmarks (the whole suite)
    crs data stats | crs data kg-stats                              python -m crs.data / crs.data.kg_stats

Each subcommand runs its module exactly as ``python -m`` would, with the remaining arguments. An
installed package holds code only: the bundled checkpoints and prompts are read from ``$CRS_HOME``
or the current folder (:mod:`crs.paths`).
"""

from __future__ import annotations

import runpy
import sys

COMMANDS = {
    "chat": ("crs.app", "serve the chat UI (python app.py)"),
    "train": ("train", "run a training stage (python -m train)"),
    "evaluate": ("crs.evaluate", "the evaluation harness (python -m crs.evaluate)"),
    "bench": (None, "a benchmark (python -m benchmarks.<name>), or `all`: the suite (python -m benchmarks)"),
    "data": (None, "dataset statistics: `stats` or `kg-stats`"),
}
BENCHMARKS = {
    "all": "benchmarks",  # the suite: benchmarks/__main__.py
    "chat-latency": "benchmarks.chat_latency",
    "interactive-cost": "benchmarks.interactive_cost",
    "load": "benchmarks.load",
    "reply-latency": "benchmarks.reply_latency",
    "rec-latency": "benchmarks.rec_latency",
    "train-throughput": "benchmarks.train_throughput",
}
DATA = {"stats": ("crs.data", ["stats"]), "kg-stats": ("crs.data.kg_stats", [])}


def usage() -> str:
    lines = ["usage: crs <command> [arguments]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", f"benchmarks: {', '.join(BENCHMARKS)}", "`crs <command> --help` shows a command's own options."]
    return "\n".join(lines)


def resolve(argv: list[str]) -> tuple[str, list[str], str]:
    """(module to run, its arguments, the program name it shows) for ``crs`` arguments; SystemExit
    with a clear message for an unknown command."""
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        raise SystemExit(f"crs: unknown command {command!r}\n\n{usage()}")
    module = COMMANDS[command][0]
    if command == "bench":
        if not rest or rest[0] not in BENCHMARKS:
            raise SystemExit(f"crs bench: choose a benchmark: {', '.join(BENCHMARKS)}")
        return BENCHMARKS[rest[0]], rest[1:], f"crs bench {rest[0]}"
    if command == "data":
        if not rest or rest[0] not in DATA:
            raise SystemExit(f"crs data: choose one of {', '.join(DATA)}")
        module, fixed = DATA[rest[0]]
        return module, fixed + rest[1:], f"crs data {rest[0]}"
    return module, rest, f"crs {command}"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return
    module, rest, program = resolve(argv)
    sys.argv = [program, *rest]
    runpy.run_module(module, run_name="__main__")  # sys.argv[0] stays the "crs …" program name


if __name__ == "__main__":
    main()
