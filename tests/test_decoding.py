"""Decoding settings of the reply generator (conv.decoding): greedy, norepeat and rerank."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from crs.config import ConfigError, ConvConfig, GeneratorConfig
from crs.gen.backbone import load_backbone
from crs.gen.reply import ReplyGenerator, rerank_bonus
from crs.text.tokenizer import train_tokenizer

LINES = ["[seeker] I love ghosts and aliens [recommender] have you seen [REC]? It is terrifying, I loved it so much"] * 40


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    tokenizer = train_tokenizer(LINES, tmp_path_factory.mktemp("tokenizer"), vocab_size=60)
    torch.manual_seed(3)
    model = load_backbone(GeneratorConfig(init="scratch-tiny", max_length=128), tokenizer)
    return ReplyGenerator(tokenizer, model, "dialogpt", ConvConfig(max_new_tokens=40))


def replies(generator, decoding: str, **settings) -> list[str]:
    generator.config = replace(ConvConfig(max_new_tokens=40), decoding=decoding, **settings)
    contexts = ["[seeker] I love ghosts", "[seeker] aliens please", ""]
    return [g.reply for g in generator.generate_texts(contexts, ["none"] * 3)]


def token_trigrams(generator, text: str) -> list[tuple[int, ...]]:
    ids = generator.tokenizer(text, add_special_tokens=False)["input_ids"]
    return [tuple(ids[i : i + 3]) for i in range(len(ids) - 2)]


def test_norepeat_never_repeats_a_token_trigram_and_meets_the_minimum_length(generator):
    for reply in replies(generator, "norepeat", min_reply_tokens=8):
        ids = generator.tokenizer(reply, add_special_tokens=False)["input_ids"]
        grams = token_trigrams(generator, reply)
        assert len(grams) == len(set(grams))
        assert len(ids) >= 7  # 8 new tokens, the stop token not shown


def test_greedy_is_deterministic_and_batch_independent(generator):
    first = replies(generator, "greedy")
    assert first == replies(generator, "greedy")
    generator.config = ConvConfig(max_new_tokens=40, decoding="greedy")
    alone = generator.generate_texts(["[seeker] aliens please"], ["none"])[0].reply
    assert alone == first[1]


def test_rerank_is_reproducible_and_picks_among_sampled_candidates(generator):
    first = replies(generator, "rerank", sample_candidates=4, min_reply_tokens=4)
    assert first == replies(generator, "rerank", sample_candidates=4, min_reply_tokens=4)
    assert all(reply.strip() for reply in first)


def test_rerank_bonus_prefers_on_topic_and_penalises_generic_bigrams():
    generic = frozenset({("is", "a"), ("a", "good")})
    on_topic = rerank_bonus("ghosts haunt this house", "I love ghosts in a house", generic)
    generic_reply = rerank_bonus("it is a good one", "I love ghosts in a house", generic)
    assert on_topic > generic_reply
    assert rerank_bonus("", "anything", generic) == float("-inf")


def test_unknown_decoding_is_refused_with_its_key():
    with pytest.raises(ConfigError, match="conv.decoding"):
        ConvConfig(decoding="beam")


def test_kg_topic_filter_keeps_only_what_it_allows_and_bars_none(generator):
    generator.config = ConvConfig(max_new_tokens=40)
    contexts = ["[seeker] I love ghosts", "[seeker] aliens please"]
    seen = []

    def nothing_allowed(row, topics):
        seen.append((row, topics))
        return []

    out = generator.generate_texts(contexts, ["none", "none"], topic_filter=nothing_allowed)
    assert all(g.topics == [] for g in out)
    assert all(topics for _, topics in seen)  # the filter is only asked about real topics
    again = generator._topics_again([0, 1], {0: [], 1: []})
    assert set(again) == {0, 1} and all(goal == "recommend" for goal, _ in again.values())
    first = generator.tokenizer("[topic] none", add_special_tokens=False)["input_ids"][1]
    assert generator.none_ids == frozenset({first})
