"""The calibrated goal step (crs.eval.goals, ReplyGenerator.goal_bias) and the goal classifier (crs.gen.goal_head)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from crs.data.context import DialogueContext
from crs.data.redial import RECOMMENDER, SEEKER, Turn
from crs.eval.goals import accuracy, calibrate, fit_goal_bias
from crs.gen.goal_head import FEATURES, GoalHead, goal_features
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


# --------------------------------------------------------------------------- the goal head (crs.gen.goal_head)


def features_of(*turns: tuple[str, str, list[int]]) -> dict[str, float]:
    context = DialogueContext([Turn(role, text, movies) for role, text, movies in turns],
                              mentioned_movies=list(dict.fromkeys(m for _, _, ms in turns for m in ms)))
    return dict(zip(FEATURES, goal_features(context).tolist()))


def test_goal_features_read_the_turn_count_and_what_the_seeker_just_did():
    start = features_of()
    assert start["start_of_dialogue"] == 1 and start["recommender_turns_0"] == 1 and start["seeker_question"] == 0
    hello = features_of((SEEKER, "Hi there! Can you suggest a scary movie?", []))
    assert hello["start_of_dialogue"] == 0 and hello["seeker_greets"] == 1 and hello["seeker_question"] == 1
    assert hello["seeker_asks"] == 1 and hello["seeker_farewell"] == 0
    later = features_of((SEEKER, "hello", []), (RECOMMENDER, "have you seen @111?", [111]),
                        (SEEKER, "yes I loved @111 and @222", [111, 222]), (RECOMMENDER, "try @333", [333]),
                        (SEEKER, "thanks, bye!", []))
    assert later["recommender_turns_2"] == 1 and later["recommender_turns_0"] == 0
    assert later["seeker_thanks"] == 1 and later["seeker_farewell"] == 1 and later["seeker_names_movie"] == 0
    assert later["recommender_named_movie"] == 1 and later["recommending_turns_scaled"] == pytest.approx(2 / 5)
    assert later["movies_mentioned_scaled"] == pytest.approx(3 / 10)
    assert all(0.0 <= v <= 1.0 for f in (start, hello, later) for v in f.values())


def synthetic(n: int = 600, seed: int = 0):
    """Goal scores that hint at the gold goal, and two features that decide greet and farewell."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, len(GOALS), n)
    scores = rng.normal(size=(n, len(GOALS))) - 3.0
    scores[np.arange(n), gold] += 0.8
    features = rng.random((n, len(FEATURES))).astype(np.float32)
    features[:, 0] = (gold == GOALS.index("greet")).astype(np.float32)
    features[:, 1] = (gold == GOALS.index("farewell")).astype(np.float32)
    return scores, features, gold


def test_a_fitted_head_uses_the_features_the_scores_lack_and_round_trips(tmp_path):
    scores, features, gold = synthetic()
    head = GoalHead.fit(scores[:400], features[:400], gold[:400], c=1.0)
    chosen = head.choose(scores[400:], features[400:])
    alone = [GOALS[j] for j in scores[400:].argmax(1)]
    truth = [GOALS[j] for j in gold[400:]]
    accuracy_head = np.mean([a == b for a, b in zip(chosen, truth)])
    assert accuracy_head > np.mean([a == b for a, b in zip(alone, truth)]) + 0.1
    greets = [c for c, g in zip(chosen, truth) if g == "greet"]
    assert greets and all(c == "greet" for c in greets)  # the features decide greet
    path = tmp_path / "goal_head.json"
    head.save(path)
    assert GoalHead.load(path).choose(scores[400:], features[400:]) == chosen
    with pytest.raises(ValueError, match="log-probabilities"):
        head.choose(scores[:3], features[:2])


def test_a_goal_no_training_turn_had_is_never_chosen():
    scores, features, gold = synthetic()
    gold[gold == GOALS.index("discuss")] = GOALS.index("chat")
    head = GoalHead.fit(scores, features, gold, c=1.0)
    scores[:, GOALS.index("discuss")] += 50.0
    assert "discuss" not in head.choose(scores, features)


def test_a_broken_or_stale_goal_head_file_is_named(tmp_path):
    scores, features, gold = synthetic()
    path = tmp_path / "goal_head.json"
    GoalHead.fit(scores, features, gold, c=1.0).save(path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "inputs": data["inputs"][:-1]}))
    with pytest.raises(ValueError, match="goal_head.json.*other goals or features"):
        GoalHead.load(path)
    path.write_text(json.dumps({**data, "coef": data["coef"][:2]}))
    with pytest.raises(ValueError, match="goal_head.json.*corrupt"):
        GoalHead.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="goal_head.json"):
        GoalHead.load(path)
