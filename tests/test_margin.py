"""Choosing hybrid decoding's retrieval margin from one harness run (crs.eval.margin)."""

from __future__ import annotations

import json
import math

import pytest

from crs.eval.margin import choose, extrapolated_share, main, read_turns, sweep

ROWS = [
    {"gold": "have you seen Alien (1979)? it is scary", "generated_reply": "Alien (1979) is a good one", "generated_score": -1.0,
     "retrieved_reply": "have you seen Alien (1979)? it is terrifying", "retrieved_score": -1.5},
    {"gold": "you too, bye", "generated_reply": "bye!", "generated_score": -0.5},  # nothing retrieved fitted this turn
    {"gold": "I love that one", "generated_reply": "It is good", "generated_score": -2.0,
     "retrieved_reply": "I love that one too", "retrieved_score": -1.0},
]


def test_choice_follows_the_margin():
    assert choose(ROWS[0], 0.4) == ("Alien (1979) is a good one", False)
    assert choose(ROWS[0], 0.5) == ("have you seen Alien (1979)? it is terrifying", True)
    assert choose(ROWS[1], math.inf) == ("bye!", False)
    assert choose(ROWS[2], 0.0)[1] and not choose(ROWS[2], -math.inf)[1]


def test_sweep_goes_from_generated_only_to_every_retrieved_reply():
    table = sweep(ROWS, (-math.inf, 0.0, math.inf))
    assert [t["retrieved_share"] for t in table] == pytest.approx([0.0, 1 / 3, 2 / 3])
    assert table[-1]["bleu2"] > table[0]["bleu2"]  # the retrieved replies here are closer to the gold ones
    assert all(t["human_length"] == table[0]["human_length"] for t in table)


PENALISED = [
    # Both retrieved replies score below the generated one after this context; the second is far
    # likelier with no context at all (a generic reply), so a penalty turns the choice to the first.
    {"gold": "have you seen Alien (1979)? it is scary", "generated_reply": "Alien (1979) is a good one", "generated_score": -1.0,
     "hybrid_candidates": [["Alien (1979) is a good one", -1.0, -1.5], ["have you seen Alien (1979)? it is terrifying", -1.6, -4.0],
                           ["Alien (1979) is good", -1.2, -1.3]]},
]


def test_a_generic_penalty_favours_the_candidate_this_context_makes_likely():
    row = PENALISED[0]
    assert choose(row, 0.0, 0.0) == ("Alien (1979) is a good one", False)
    assert choose(row, 0.5, 0.0) == ("Alien (1979) is good", True)  # without the penalty: the best plain score
    # With 0.5: -1.0+0.75=-0.25 (own), -1.6+2.0=0.4, -1.2+0.65=-0.55.
    assert choose(row, 0.0, 0.5) == ("have you seen Alien (1979)? it is terrifying", True)
    table = sweep(PENALISED, (-math.inf, 0.0), penalties=(0.0, 0.5))
    assert [(t["penalty"], t["margin"]) for t in table] == [(0.0, -math.inf), (0.0, 0.0), (0.5, 0.0)]
    with pytest.raises(ValueError, match="--generic-penalty"):
        choose(ROWS[0], 0.0, 0.5)


def test_cli_prints_the_table_and_names_a_broken_file(tmp_path, capsys):
    path = tmp_path / "conv_turns.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    main([str(path), "--json", str(tmp_path / "table.json")])
    out = capsys.readouterr().out
    assert "| generated only |" in out and "| inf |" in out
    assert len(json.loads((tmp_path / "table.json").read_text())) > 2
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="line 2"):
        read_turns(path)
    path.write_text(json.dumps({"gold": "x", "generated_reply": "y"}) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="--decoding hybrid"):
        read_turns(path)


def test_distinct_share_is_extrapolated_by_its_drop_per_doubling_of_the_turns(tmp_path, capsys):
    references = ["a b", "c d", "e f", "g h"]  # every human bigram new: the human ratio is 1 at any size
    replies = ["x y"] * 4  # one reply: its ratio halves with each doubling (1/2 on two turns, 1/4 on four)
    assert extrapolated_share(replies, references, 2, 4) == pytest.approx(0.25)
    assert extrapolated_share(replies, references, 2, 8) == pytest.approx(0.0)  # 0.25 minus one more drop of 0.25
    assert extrapolated_share(references, references, 2, 1000) == pytest.approx(1.0)  # as varied as people: no drop
    with pytest.raises(ValueError, match="as many references"):
        extrapolated_share(replies, references[:3], 2, 8)
    table = sweep(PENALISED * 4, (0.0,), penalties=(0.0, 0.5), target_turns=16)
    assert all(0.0 <= t["distinct2_share_at_16"] <= 1.0 for t in table)
    path = tmp_path / "conv_turns.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    main([str(path), "--target-turns", "12"])
    assert "share of people's at 12 turns" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(path), "--target-turns", "0"])
