"""The calibrated goal step (crs.eval.goals, ReplyGenerator.goal_bias)."""

from __future__ import annotations

import json

import pytest
import torch

from crs.eval.goals import accuracy, calibrate, fit_goal_bias
from crs.gen.reply import read_goal_bias, write_goal_bias
from crs.gen.steps import GOALS

FAREWELL, CHAT = GOALS.index("farewell"), GOALS.index("chat")


def skewed(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores that know the gold goal but over-rate farewell by 2 nats, as a skewed decoder would."""
    generator = torch.Generator().manual_seed(seed)
    gold = torch.randint(0, len(GOALS), (n,), generator=generator)
    scores = torch.randn(n, len(GOALS), generator=generator) * 0.5
    scores[torch.arange(n), gold] += 1.5
    scores[:, FAREWELL] += 2.0
    return scores, gold


def test_fitted_bias_undoes_a_skew_and_keeps_recommend_at_zero():
    scores, gold = skewed()
    bias = fit_goal_bias(scores, gold)
    assert bias[GOALS.index("recommend")] == 0.0
    assert bias[FAREWELL] < -1.0  # farewell pulled down
    assert accuracy(scores, gold, bias) > accuracy(scores, gold, [0.0] * len(GOALS)) + 0.2


def test_calibration_reports_cross_fitted_accuracy_on_held_out_dialogues():
    scores, gold = skewed(600, seed=1)
    dialogues = [f"d{i // 6}" for i in range(len(gold))]
    bias, metrics = calibrate(scores, gold, dialogues)
    assert metrics["validation_turns"] == 600
    assert metrics["accuracy_without_bias"] < metrics["accuracy_cross_fitted"] <= metrics["accuracy_in_sample"] + 0.05
    assert abs(sum(metrics["predicted_distribution"].values()) - 1) < 1e-3
    assert len(bias) == len(GOALS)


def test_goal_bias_file_round_trip_and_a_broken_file_is_named(tmp_path):
    path = tmp_path / "goal_bias.json"
    assert read_goal_bias(path) is None  # no file: greedy goals as before
    write_goal_bias(path, [0.0, 1.0, -2.5, 0.5, -1.0, 0.25], {"validation_turns": 3})
    assert read_goal_bias(path) == [0.0, 1.0, -2.5, 0.5, -1.0, 0.25]
    assert json.loads(path.read_text())["validation_turns"] == 3
    path.write_text('{"bias": {"recommend": 0}}')
    with pytest.raises(ValueError, match="goal_bias.json"):
        read_goal_bias(path)
