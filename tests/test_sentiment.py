import numpy as np
import pytest
import torch

from crs.data import Dialogue, MovieFeedback, Turn
from crs.text.sentiment import LikedClassifier, classification_report, evidence_turns, liked_examples

TURNS = [
    Turn("seeker", "I loved @1", [1]),
    Turn("recommender", "Try @2 or @3", [2, 3]),
    Turn("seeker", "I saw @3, it was bad", [3]),
]


def test_evidence_is_the_seekers_own_turn_or_reaction():
    assert evidence_turns(TURNS) == {1: 0, 2: 2, 3: 2}
    assert evidence_turns(TURNS, movies=[[1], [2], []]) == {1: 0, 2: 2}  # movies from linking instead of @ids


def test_examples_skip_did_not_say_and_render_titles():
    feedback = {1: MovieFeedback(0, 1, 1), 2: MovieFeedback(1, 0, 2), 3: MovieFeedback(1, 1, 0)}
    dialogue = Dialogue("c", 1, 2, {}, feedback, {}, TURNS, 3)
    examples = liked_examples([dialogue], {1: "Heat (1995)", 3: "Up (2009)"})
    assert [(e.movie_id, e.liked) for e in examples] == [(1, 1), (3, 0)]
    assert examples[1].text == "Up (2009) | I saw Up (2009), it was bad"


def test_classifier_learns_a_separable_toy_problem(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    classifier = LikedClassifier(8)
    losses = classifier.fit(x, y, epochs=200)
    assert losses[-1] < losses[0] / 2
    assert classification_report(y, classifier.predict(x))["accuracy"] > 0.95
    classifier.save(tmp_path / "liked.safetensors")
    np.testing.assert_allclose(LikedClassifier.load(tmp_path / "liked.safetensors").predict(x), classifier.predict(x))


def test_report_by_hand():
    # labels 1 1 1 0, predictions 1 1 0 0: accuracy 3/4; liked P=1 R=2/3 F1=0.8; disliked P=1/2 R=1 F1=2/3
    report = classification_report(np.array([1, 1, 1, 0]), np.array([0.9, 0.8, 0.2, 0.1]))
    assert report["accuracy"] == 0.75
    assert report["f1_liked"] == pytest.approx(0.8) and report["f1_disliked"] == pytest.approx(2 / 3)
    assert report["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    # majority (liked) is right 3/4 of the time; its F1 for liked is 2*0.75/1.75, for disliked 0
    assert report["majority_accuracy"] == 0.75 and report["majority_macro_f1"] == pytest.approx(0.75 / 1.75)
