"""Rows of different lengths in passes of similar length (crs.padding), and the callers that rely
on it giving the same results whatever the passes: the sentence encoder and the generator."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from crs.padding import length_chunks


def cost(lengths, chunks, pass_cost):
    return sum(pass_cost + len(chunk) * max(lengths[i] for i in chunk) for chunk in chunks)


def best_cost(lengths, pass_cost):
    """The least cost over every way to cut the rows, sorted by length, into consecutive passes."""
    widths = sorted(lengths)
    best = float("inf")
    for cuts in itertools.product([False, True], repeat=max(len(widths) - 1, 0)):
        passes, start = [], 0
        for position, cut in enumerate(cuts, 1):
            if cut:
                passes.append(widths[start:position])
                start = position
        passes.append(widths[start:])
        best = min(best, sum(pass_cost + len(p) * max(p) for p in passes))
    return best


def test_every_row_runs_once_in_index_order_within_batch_size():
    lengths = [50] * 19 + [200]
    chunks = length_chunks(lengths, 64, 1000)
    assert chunks == [list(range(19)), [19]]  # the long chat runs apart
    assert length_chunks([30, 60, 45, 50, 35], 64, 1000) == [[0, 1, 2, 3, 4]]  # not worth a second pass
    assert length_chunks([200] + [50] * 19, 64, 1000) == [list(range(1, 20)), [0]]
    assert length_chunks(list(range(10)), 3, 0) == [[0], [1], [2], [3], [4], [5], [6], [7], [8], [9]]  # free passes: no padding
    assert length_chunks(list(range(10)), 3, 10**6) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert length_chunks([], 8, 5) == []
    with pytest.raises(ValueError, match="batch_size"):
        length_chunks([1, 2], 0, 5)


def test_the_passes_cost_the_least_of_every_cut():
    rng = random.Random(0)
    for _ in range(60):
        lengths = [rng.choice([rng.randint(1, 20), rng.randint(20, 200)]) for _ in range(rng.randint(1, 9))]
        pass_cost = rng.choice([0, 10, 100, 1000])
        chunks = length_chunks(lengths, 64, pass_cost)
        assert sorted(i for chunk in chunks for i in chunk) == list(range(len(lengths)))
        assert all(chunk == sorted(chunk) for chunk in chunks)
        assert cost(lengths, chunks, pass_cost) == best_cost(lengths, pass_cost)


def test_the_sentence_encoder_gives_the_same_vectors_in_any_passes(monkeypatch):
    from crs.text import encoder as module

    encoder = module.TextEncoder(max_tokens=128)
    texts = [f"I loved The Matrix ({i}), anything similar?" for i in range(6)]
    texts.insert(2, " ".join(["we talked about horror comedies and long dramas"] * 30))  # about 128 tokens
    passes = []
    monkeypatch.setattr(module, "length_chunks", lambda *args: passes.append(length_chunks(*args)) or passes[-1])
    split = encoder._encode(texts, 64, False, "test", truncate_left=True)
    assert [2] in passes[0] and len(passes[0]) == 2  # the long one ran apart
    monkeypatch.setattr(module, "length_chunks", lambda lengths, *_: [list(range(len(lengths)))])
    together = encoder._encode(texts, 64, False, "test", truncate_left=True)
    np.testing.assert_allclose(split, together, atol=1e-5)
