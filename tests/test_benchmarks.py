"""The benchmark suite (``python -m benchmarks``): what it writes, never how fast anything is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.suite import PARTS, STEP_NAMES, StepTimer
from crs.cli import resolve

REPO = Path(__file__).resolve().parent.parent
ROUNDING_MS = 0.001  # the JSON keeps milliseconds to 3 decimals


class Worker:
    """Stand-ins for the timed calls: ``outer`` calls ``inner`` and itself once."""

    def outer(self, depth: int = 0) -> str:
        time.sleep(0.02)
        self.inner()
        if depth == 0:
            self.outer(depth=1)
        return "done"

    def inner(self) -> None:
        time.sleep(0.03)


def test_step_timer_counts_nested_steps_once_and_restores_the_calls():
    table = [("outer", f"{__name__}:Worker", "outer"), ("inner", f"{__name__}:Worker", "inner"),
             ("inner", f"{__name__}:Worker", "no_such_method")]
    original = Worker.outer
    with StepTimer(table) as timer:
        assert Worker.outer is not original
        with timer.turn() as measured:
            assert Worker().outer() == "done"
    assert Worker.__dict__["outer"] is original and not hasattr(Worker.__dict__["inner"], "__wrapped__")
    assert timer.skipped == [{"step": "inner", "owner": f"{__name__}:Worker", "attribute": "no_such_method"}]
    # 2 inner calls (60 ms) inside 2 nested outer calls (40 ms of their own): outer is timed once, without inner.
    assert measured["calls"] == {"outer": 1, "inner": 2}
    steps = measured["steps"]
    assert steps["inner"] >= 0.06 and steps["outer"] >= 0.04
    assert steps["outer"] + steps["inner"] <= measured["total"]  # inner's time is not counted in outer's too


def test_step_timer_fails_when_a_step_has_no_call():
    with pytest.raises(AttributeError, match="no timed call exists"), StepTimer([("outer", f"{__name__}:Worker", "renamed_away")]):
        pass
    assert "renamed_away" not in Worker.__dict__


def test_load_rounds_are_reported_with_their_median():
    from benchmarks.load import combine

    def round_(p95, rss, errors=0):
        return {"sessions": 2, "turns_per_session": 3, "answered": 6 - errors, "errors": errors, "crosstalk": 0, "p50_ms": p95 / 2,
                "p95_ms": p95, "turns_per_second": 10.0, "seconds": 0.6, "first_turn_p50_ms": None, "later_turns_p95_ms": p95,
                "connect_seconds": 0.1, "app_peak_rss_mib": rss}

    one = round_(900.0, 1000.0)
    assert combine([one]) is one  # one round: its figures as they are
    rounds = [round_(900.0, 1000.0), round_(2100.0, 1200.0, errors=1), round_(1500.0, 1100.0)]
    figures = combine(rounds)
    assert figures["p95_ms"] == 1500.0 and figures["p50_ms"] == 750.0 and figures["later_turns_p95_ms"] == 1500.0
    assert figures["answered"] == 17 and figures["errors"] == 1 and figures["crosstalk"] == 0
    assert figures["app_peak_rss_mib"] == 1200.0 and figures["rounds"] == rounds
    assert figures["first_turn_p50_ms"] is None  # no round measured it


def test_crs_bench_all_runs_the_suite():
    assert resolve(["bench", "all", "--quick"]) == ("benchmarks", ["--quick"], "crs bench all")


@pytest.mark.slow
def test_quick_suite_writes_every_part(data_dir, checkpoint_dir, tmp_path):
    out = tmp_path / "bench"
    env = dict(os.environ, CRS_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--checkpoint", str(checkpoint_dir)],
                         check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "| part | measure | result |" in run.stdout and "--quick" in run.stdout

    suite = json.loads((out / "suite.json").read_text())
    assert list(suite["parts"]) == list(PARTS) and suite["quick"] is True
    assert suite["machine"]["cores"] >= 1 and suite["machine"]["torch"]
    parts = {}
    for name in PARTS:
        part = json.loads((out / f"{name}.json").read_text())
        assert "error" not in part, part.get("error")
        assert part["part"] == name and part["machine"] == suite["machine"]
        parts[name] = part["results"]

    steps = parts["steps"]
    assert steps["turns"] >= 1
    for name in STEP_NAMES + ["other", "total"]:
        figures = steps["steps"][name] if name in STEP_NAMES else steps[name]
        assert figures["n"] == steps["turns"]
        assert 0 <= figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"], name
        assert figures["mean_ms"] >= 0, name
    for turn in steps["per_turn"]:
        assert set(turn["steps_ms"]) == set(STEP_NAMES)
        assert all(value >= 0 for value in turn["steps_ms"].values())
        assert sum(turn["steps_ms"].values()) <= turn["total_ms"] + ROUNDING_MS * (len(STEP_NAMES) + 1)
        assert turn["calls"]["linking"] >= 1 and turn["calls"]["ranking"] >= 1
    assert sum(steps["steps"][s]["mean_ms"] for s in STEP_NAMES) <= steps["total"]["mean_ms"] + ROUNDING_MS * (len(STEP_NAMES) + 1)

    rss = parts["rss"]
    assert rss["peak_rss_mib"] > 0 and rss["peak_rss_gib"] > 0 and rss["peak_rss_mib"] >= rss["after_start"]["peak_rss_mib"]

    for task in ("rec", "conv", "constraints"):
        figures = parts["eval"]["tasks"][task]
        assert figures["turns"] > 0 and figures["turns_per_second"] > 0 and figures["dialogues_per_second"] > 0, task

    assert parts["train"]["results"] and all(r["samples_per_second"] > 0 and r["tokens_per_second"] > 0
                                             for r in parts["train"]["results"])
    stages = parts["train"]["stages"]  # the stage's own loop, once per precision
    assert {(r["stage"], r["precision"]) for r in stages} == {("pretrain-kg", "fp32"), ("pretrain-kg", "bf16")}
    assert all(r["samples_per_second"] > 0 and r["train_seconds"] > 0 for r in stages)

    load = parts["load"]
    assert load["answered"] > 0 and load["crosstalk"] == 0
