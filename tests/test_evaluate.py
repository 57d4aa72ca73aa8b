import json

import numpy as np
import pytest

from crs.config import load_config
from crs.data import Catalogue, Dialogue, Movie, Turn
from crs.data.context import DialogueContext
from crs.data.samples import build_samples
from crs.eval.harness import evaluate_recommender, run
from crs.rec.baselines import PopularityRecommender, RepeatContextRecommender


@pytest.fixture
def toy_catalogue():
    return Catalogue([Movie(10 + i, f"M{i}", 2000, 0) for i in range(5)])  # ids 10..14 → indices 0..4


def dialogue(conv_id, turns, movies):
    return Dialogue(conv_id, 1, 2, {m: f"M{m}" for m in movies}, {}, {}, turns, len(turns))


def test_popularity_counts_dialogues_not_mentions(toy_catalogue):
    train = [
        dialogue("a", [Turn("seeker", "@12 @12 @13", [12, 13])], [12, 13]),
        dialogue("b", [Turn("seeker", "@12", [12])], [12]),
        dialogue("c", [Turn("seeker", "@99", [99])], [99]),  # outside the catalogue: ignored
    ]
    model = PopularityRecommender.fit(train, toy_catalogue)
    np.testing.assert_array_equal(model.score_items(DialogueContext([])), [0, 0, 2, 1, 0])


def test_repeat_context_puts_the_latest_mention_first(toy_catalogue):
    model = RepeatContextRecommender(toy_catalogue, np.array([5.0, 4, 3, 2, 1]))
    context = DialogueContext([Turn("seeker", "@13 then @14", [13, 14]), Turn("recommender", "@13", [13])], [13, 14])
    assert [movie for movie, _ in model.top_k(context, k=5, exclude_mentioned=False)] == [13, 14, 10, 11, 12]
    assert [movie for movie, _ in model.top_k(context, k=2)] == [10, 11]  # mentioned movies left out


def test_ranks_under_both_protocols_by_hand(toy_catalogue):
    # Seeker mentions 13; recommender answers with 13 (a repeat) and 11 (new).
    turns = [Turn("seeker", "@13", [13]), Turn("recommender", "@13 or @11", [13, 11])]
    samples = build_samples([dialogue("x", turns, [11, 13])])
    model = PopularityRecommender(toy_catalogue, np.array([5.0, 1, 4, 3, 2]))  # order: 10, 12, 13, 14, 11
    result = evaluate_recommender(model, samples, ks=(1, 3), progress=False)
    standard, new = (result.accumulators[p] for p in ("standard", "new_items"))
    assert standard.ranks == [3, 5]  # 13 is 3rd, 11 is 5th of all five
    assert new.ranks == [4]  # only 11 is new; with 13 removed it moves up to 4th
    assert standard.summary()["recall@3"] == 0.5 and new.summary()["mrr"] == 0.25
    assert result.turns[0]["top"][:2] == [10, 12]


@pytest.mark.data
def test_harness_on_real_test_dialogues_writes_a_deterministic_report(data_dir, tmp_path):
    config = load_config(overrides=[f"data.data_dir={data_dir}", "eval.limit=60"])
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        results = run(config, ["popularity", "repeat-context"], "test", ["rec", "conv"], out, progress=False)
    for name in ("metrics.json", "report.md", "per_turn.jsonl", "recall_curve.png"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    metrics = json.loads((outs[0] / "metrics.json").read_text())
    pop, rep = metrics["rec"]["popularity"], metrics["rec"]["repeat-context"]
    assert metrics["meta"]["dialogues"] == 60 and pop["standard"]["count"] > 50
    # Repeating context movies helps only where movies repeat; with them removed the two agree.
    assert rep["standard"]["recall@1"] > pop["standard"]["recall@1"]
    assert rep["new_items"] == pop["new_items"]
    assert "| **popularity** (ours) |" in (outs[0] / "report.md").read_text() and "MESE" in (outs[0] / "report.md").read_text()
    rows = [json.loads(line) for line in (outs[0] / "per_turn.jsonl").read_text().splitlines()]
    assert len(rows) == len(results[0].turns) + len(results[1].turns) > 0
    assert all(row["gold"] and len(row["top"]) == 10 for row in rows)


def test_unknown_model_is_a_clear_error(tmp_path, data_dir):
    config = load_config(overrides=[f"data.data_dir={data_dir}", "eval.limit=2"])
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        run(config, ["nope"], "test", ["rec"], tmp_path, progress=False)
