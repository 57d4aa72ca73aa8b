"""The topic classifier: its inputs, fit, threshold, file round trip and the validation choice."""

import json

import numpy as np
import pytest

from crs.eval.topics import TopicTurn, bias_choices, fit_topic_head
from crs.gen.steps import GOALS
from crs.gen.topic_head import CANDIDATE_FEATURES, INPUTS, TopicHead, candidate_features, head_inputs

F = {name: j for j, name in enumerate(CANDIDATE_FEATURES)}


def test_candidate_features_read_positions_sources_and_kind():
    x = candidate_features([0, 2], recommender_named=False, movie_genre=True, kind="genre", candidates=3, recommender_turns=30)
    assert x[F["seeker_last_turn"]] == 1 and x[F["seeker_named"]] == 1 and x[F["seeker_mentions_scaled"]] == pytest.approx(2 / 3)
    assert x[F["movie_genre"]] == 1 and x[F["is_genre"]] == 1 and x[F["is_person"]] == 0
    assert x[F["candidates_scaled"]] == pytest.approx(0.5) and x[F["recommender_turns_scaled"]] == 1.0  # capped at 15
    y = candidate_features([], recommender_named=True, movie_genre=False, kind="person", candidates=9, recommender_turns=0)
    assert y[F["seeker_named"]] == 0 and y[F["recommender_named"]] == 1 and y[F["is_person"]] == 1 and y[F["candidates_scaled"]] == 1.0


def test_head_inputs_add_the_margin_the_goal_and_two_crossings():
    features = np.stack([candidate_features([0], False, True, "genre", 2, 1), candidate_features([], False, True, "genre", 2, 1)])
    x = head_inputs(np.array([1.5, -2.0]), features, "recommend")
    assert x.shape == (2, len(INPUTS))
    assert list(x[:, INPUTS.index("score_margin")]) == [1.5, -2.0]
    assert x[0, INPUTS.index("goal_recommend")] == 1 and x[0, INPUTS.index(f"goal_{GOALS[-1]}")] == (GOALS[-1] == "recommend")
    assert list(x[:, INPUTS.index("movie_genre_and_seeker_named")]) == [1.0, 0.0]
    assert list(x[:, INPUTS.index("recommend_and_seeker_last_turn")]) == [1.0, 0.0]
    assert head_inputs(np.array([1.5]), features[:1], "chat")[0, INPUTS.index("recommend_and_seeker_last_turn")] == 0
    with pytest.raises(ValueError, match="candidate features"):
        head_inputs(np.array([1.0, 2.0, 3.0]), features, "recommend")
    with pytest.raises(ValueError, match="unknown goal"):
        head_inputs(np.array([1.5, -2.0]), features, "dance")


def synthetic_turns(n: int, seed: int) -> list[TopicTurn]:
    """Turns whose human reply names the seeker's last-turn genre when the movie has it (80% of the
    time), and otherwise nothing; the generator's margin is noise."""
    rng = np.random.default_rng(seed)
    turns = []
    for _ in range(n):
        last, genre = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
        features = np.stack([candidate_features([0] if last else [], False, genre, "genre", 2, 1),
                             candidate_features([], False, not genre, "genre", 2, 1)])
        gold = ["A"] if last and genre and rng.random() < 0.8 else []
        turns.append(TopicTurn("recommend", ["A", "B"], rng.normal(size=2), features, gold))
    return turns


def test_fit_learns_the_rule_and_chooses_c_and_threshold_on_validation():
    head, metrics = fit_topic_head(synthetic_turns(400, 0), synthetic_turns(200, 1), bias=0.0)
    assert metrics["validation_topic_f1"] > 0.8 > metrics["validation_topic_f1_none_bias"]
    assert metrics["C"] in (0.01, 0.1, 1.0) and 0.05 <= metrics["threshold"] <= 0.7
    turn = synthetic_turns(1, 2)[0]
    named = candidate_features([0], False, True, "genre", 2, 1)
    other = candidate_features([], False, False, "genre", 2, 1)
    assert head.choose(["A", "B"], np.zeros(2), np.stack([named, other]), "recommend") == ["A"]
    assert head.choose(["A", "B"], np.zeros(2), np.stack([other, other]), "recommend") == []
    assert head.choose([], np.zeros(0), np.zeros((0, len(CANDIDATE_FEATURES))), "recommend") == []
    assert bias_choices([turn], 1e6) == [[]] and bias_choices([turn], -1e6)[0][0] in ("A", "B")


def test_a_head_round_trips_and_a_broken_or_stale_file_is_named(tmp_path):
    head, _ = fit_topic_head(synthetic_turns(200, 0), synthetic_turns(100, 1), bias=0.0)
    path = tmp_path / "topic_head.json"
    head.save(path)
    again = TopicHead.load(path)
    x = synthetic_turns(5, 3)
    for t in x:
        assert np.allclose(again.probabilities(t.inputs), head.probabilities(t.inputs))
    assert again.threshold == head.threshold and again.info["C"] == head.info["C"]
    path.write_text("{not json")
    with pytest.raises(ValueError, match="topic_head.json: not a topic head"):
        TopicHead.load(path)
    head.save(path)
    data = json.loads(path.read_text())
    data["inputs"] = data["inputs"][:-1]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="topic_head.json: fitted for other goals or inputs"):
        TopicHead.load(path)
    head.save(path)
    data = json.loads(path.read_text())
    data["coef"] = data["coef"][:3]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="corrupt topic head"):
        TopicHead.load(path)


def test_fit_refuses_labels_of_one_kind():
    x = np.zeros((4, len(INPUTS)))
    with pytest.raises(ValueError, match="both named and unnamed"):
        TopicHead.fit(x, [False] * 4, 1.0)
