"""Late fusion in the recommender: the repeat gate (crs.rec.repeat) and the context neighbours
(crs.rec.neighbours), on synthetic scores where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crs.rec.neighbours import NeighbourIndex
from crs.rec.repeat import GateLikelihood, RepeatGate, fit_gate
from train.rec import choose, new_items_recall

N = 50


def row(seed: int, mentioned: list[int], recency: list[float]):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=N).astype(np.float32)
    values = [[1.0, 0.0, r, 0.0] for r in recency]
    return scores, mentioned, values


def test_gate_keeps_the_order_of_new_movies_and_sums_to_one():
    gate = RepeatGate()
    with torch.no_grad():
        gate.gate.weight.normal_()
        gate.mix.normal_()
    scores, mentioned, values = row(0, [3, 7], [1.0, 0.5])
    log_probs = gate.log_probs(torch.as_tensor(scores), mentioned, values, 4).detach().numpy()
    assert np.isclose(np.logaddexp.reduce(log_probs.astype(np.float64)), 0.0, atol=1e-4)
    new = [i for i in range(N) if i not in mentioned]
    assert list(np.argsort(-log_probs[new], kind="stable")) == list(np.argsort(-scores[new], kind="stable"))
    # no mentioned movie: plain softmax of the scores
    plain = gate.log_probs(torch.as_tensor(scores), [], [], 4).detach().numpy()
    assert np.allclose(plain, torch.log_softmax(torch.as_tensor(scores), 0).numpy(), atol=1e-5)


def test_fitted_gate_learns_that_the_latest_mention_comes_back():
    rows = []
    for seed in range(60):
        scores, mentioned, values = row(seed, [5, 9, 11], [0.25, 1.0, 0.5])
        gold = [9] if seed % 2 == 0 else [int(np.argmax(scores))]  # half the turns name the latest movie again
        rows.append((scores, mentioned, values, 6, gold))
    gate, nll = fit_gate(rows)
    untrained = -np.mean([RepeatGate().log_probs(torch.as_tensor(s), m, v, t)[g].sum().item() for s, m, v, t, g in rows])
    assert nll < untrained
    scores, mentioned, values = row(123, [5, 9, 11], [0.25, 1.0, 0.5])
    log_probs = gate.log_probs(torch.as_tensor(scores), mentioned, values, 6).detach().numpy()
    assert int(np.argmax(log_probs)) in (9, int(np.argmax(scores)))
    assert log_probs[9] > log_probs[5] and log_probs[9] > log_probs[11]


def test_gate_likelihood_equals_the_gates_own_log_probabilities():
    # The fit's catalogue-free likelihood is the mean of -log_probs at the gold movies, for any gate:
    # rows with and without mentions, gold movies mentioned and new.
    rows = []
    for seed in range(12):
        mentioned = [[5, 9, 11], [3], [], [7, 2]][seed % 4]
        scores, items, values = row(seed, mentioned, [0.5] * len(mentioned)) if mentioned else (row(seed, [1], [0.5])[0], [], [])
        golds = [items[0], int(np.argmax(scores))] if items else [int(np.argmin(scores))]
        rows.append((scores, items, values, 3 + seed, golds))
    gate = RepeatGate()
    with torch.no_grad():
        gate.gate.weight.normal_(generator=torch.Generator().manual_seed(0))
        gate.mix.normal_(generator=torch.Generator().manual_seed(1))
    reference = -sum(gate.log_probs(torch.as_tensor(s), m, v, t)[g].sum().item() for s, m, v, t, g in rows) / sum(len(r[4]) for r in rows)
    assert abs(GateLikelihood(rows)(gate).item() - reference) < 1e-4


def test_gate_file_round_trip_and_a_broken_file_is_named(tmp_path):
    gate = RepeatGate()
    with torch.no_grad():
        gate.mix.fill_(0.5)
    gate.save(tmp_path / "repeat_gate.safetensors")
    loaded = RepeatGate.load(tmp_path / "repeat_gate.safetensors")
    assert torch.equal(loaded.mix, gate.mix)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="bad.safetensors"):
        RepeatGate.load(tmp_path / "bad.safetensors")


def toy_index():
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(30, 8)).astype(np.float32)
    items = [[i % N, (i + 1) % N] for i in range(30)]
    return NeighbourIndex.build(embeddings, items, N), embeddings


def test_neighbour_votes_come_from_the_nearest_contexts():
    index, embeddings = toy_index()
    votes = index.votes(embeddings[[4]], k=1, temperature=0.05)[0]
    assert set(np.flatnonzero(votes)) == {4, 5} and np.isclose(votes.sum(), 2.0)  # two movies after that context
    votes = index.votes(embeddings[[4]] * 3.0, k=5, temperature=0.05)[0]  # cosine: the scale does not matter
    assert votes[4] == votes.max()
    fused = index.fuse(np.zeros((1, N), dtype=np.float32), embeddings[[4]])
    assert int(np.argmax(fused[0])) in (4, 5)


def test_choose_picks_fusion_only_when_it_helps(tmp_path):
    index, embeddings = toy_index()
    queries = embeddings[:20] + 0.01
    golds = [[i % N] for i in range(20)]  # the movie after the nearest training context
    flat = np.zeros((20, N), dtype=np.float32)
    chosen, table = choose(index, flat, queries, [[] for _ in range(20)], golds)
    assert chosen.weight > 0 and table[0]["weight"] == 0
    assert max(r["recall@1"] for r in table[1:]) > table[0]["recall@1"]
    # scores that already know the answer: no fusion setting beats none, so the weight is 0
    perfect = np.full((20, N), -5.0, dtype=np.float32)
    for r, (g,) in enumerate(golds):
        perfect[r, g] = 5.0
    chosen, _ = choose(toy_index()[0], perfect, queries, [[] for _ in range(20)], golds)
    assert chosen.weight == 0.0
    chosen.save(tmp_path / "n.safetensors")
    loaded = NeighbourIndex.load(tmp_path / "n.safetensors")
    assert loaded.k == chosen.k and np.allclose(loaded.embeddings, chosen.embeddings, atol=1e-2)
    assert new_items_recall(perfect, [[golds[0][0]]] + [[] for _ in range(19)], golds)["recall@1"] == 1.0
