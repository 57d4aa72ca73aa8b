"""Decoding settings of the reply generator (conv.decoding): greedy, norepeat, rerank and hybrid."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from crs.config import ConfigError, ConvConfig, GeneratorConfig
from crs.gen.backbone import load_backbone
from crs.gen.exemplars import ExemplarIndex
from crs.gen.reply import ReplyGenerator, degenerate, describes_plot, fits_turn, hybrid_choice, rerank_bonus, unusable
from crs.gen.steps import ConvExample, Steps
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


RETRIEVABLE = ["have you seen [REC]? It is terrifying", "you will love the aliens in it", "hi", "[REC] and [REC] and [REC] are good"]


def hybrid(generator, margin: float, reply_filter=None, penalty: float = 0.0):
    generator.exemplar_index = ExemplarIndex.build(["I love ghosts", "aliens please", "ghosts aliens", "ghosts please"], RETRIEVABLE,
                                                   ["a", "b", "c", "d"], min_df=1)
    generator.config = ConvConfig(max_new_tokens=40, decoding="hybrid", retrieval_margin=margin, exemplars=0, generic_penalty=penalty)
    contexts = ["[seeker] I love ghosts", "[seeker] aliens please"]
    forced = [Steps("recommend", [], "Alien (1979)"), Steps("chat", [], "none")]
    return generator.generate_texts(contexts, ["Alien (1979)", "none"], forced=forced, keys=["I love ghosts", "aliens please"],
                                    reply_filter=reply_filter)


def test_a_retrieved_reply_fits_the_turn_only_with_the_right_slots_and_some_words():
    assert fits_turn("have you seen [REC]? It is terrifying", recommends=True)
    assert not fits_turn("have you seen [REC]? It is terrifying", recommends=False)
    assert fits_turn("you will love it", recommends=False) and not fits_turn("you will love it", recommends=True)
    assert not fits_turn("hi there", recommends=False)  # too short to say anything
    assert not fits_turn("[REC] and [REC] and [REC] are good", recommends=True)  # more slots than a reply fills


def test_hybrid_takes_a_fitting_retrieved_reply_within_the_margin_and_scores_as_perplexity_does(generator):
    always = hybrid(generator, float("inf"))
    # Every candidate fits its turn, the generated reply comes first, and a fitting retrieved one wins.
    assert always[0].source == "retrieved" and always[0].reply == RETRIEVABLE[0]
    assert always[1].source == "retrieved" and always[1].reply == RETRIEVABLE[1]
    assert [c[0] for c in always[0].candidates[1:]] == [RETRIEVABLE[0]]
    assert [c[0] for c in always[1].candidates[1:]] == [RETRIEVABLE[1]]
    # A candidate's score is the mean token log-probability the perplexity metric gives that reply.
    reply, score = always[0].candidates[1]
    example = ConvExample("[seeker] I love ghosts", Steps("recommend", [], "Alien (1979)"), reply, [], exemplars=[])
    total, count = generator.reply_loss([example])
    assert score == pytest.approx(-total / count, abs=1e-4)
    # Margin 0: a retrieved reply only when the generator scores it at least as high as its own.
    strict = hybrid(generator, 0.0)
    for g in strict:
        own, best = g.candidates[0], max(g.candidates[1:], key=lambda c: c[1])
        assert (g.source == "retrieved") == (best[1] >= own[1] or unusable(own[0]))  # a broken generated reply gives way
        assert g.reply == (best[0] if g.source == "retrieved" else own[0])


def test_a_generic_penalty_scores_each_candidate_without_the_context_and_chooses_by_the_difference(generator):
    plain = hybrid(generator, 0.0)
    assert all(g.generic == [] for g in plain)  # no penalty: no second pass
    penalised = hybrid(generator, 0.0, penalty=0.5)
    for g, p in zip(penalised, plain):
        assert [c[0] for c in g.candidates] == [c[0] for c in p.candidates]  # the same candidates, the same scores
        assert [c[1] for c in g.candidates] == pytest.approx([c[1] for c in p.candidates], abs=1e-4)
        assert len(g.generic) == len(g.candidates)
        own, *retrieved = g.choice_scores(0.5)
        assert own == pytest.approx(g.candidates[0][1] - 0.5 * g.generic[0])
        assert (g.source == "retrieved") == (bool(retrieved) and (max(retrieved) >= own or unusable(g.candidates[0][0])))
    # The score with no context is the perplexity metric's for that reply after an empty context.
    reply = penalised[0].candidates[1][0]
    example = ConvExample("", Steps("recommend", [], "Alien (1979)"), reply, [], exemplars=[])
    total, count = generator.reply_loss([example])
    assert penalised[0].generic[1] == pytest.approx(-total / count, abs=1e-4)
    with pytest.raises(ConfigError, match="conv.generic_penalty"):
        ConvConfig(generic_penalty=1.0)
    generator.exemplar_index = None


def test_the_goal_and_topic_steps_continue_one_pass_over_the_contexts(generator):
    contexts = [generator.context_ids(text) for text in ("[seeker] I love ghosts", "[seeker] any aliens movie please?", "")]
    candidates = [["horror", "ghosts"], [], ["comedy"]]
    with generator.decoding_precision():
        assert generator.context_states([]) is None
        shared = generator.context_states(contexts)
        assert shared is not None and len(shared["rows"]) == 3
        calls = []
        original = generator._continue_shared

        def spy(*args, **kwargs):
            continued = original(*args, **kwargs)
            if continued is not None:
                calls.append(len(args[1]))
            return continued

        generator._continue_shared = spy
        try:
            alone, continued = generator.goal_log_probs(contexts), generator.goal_log_probs(contexts, shared)
            assert calls == [3]  # the shared pass was continued, not the contexts run again
            assert continued.shape == (3, len(alone[0])) and torch.allclose(alone, continued, atol=1e-4)
            goals = ["recommend", "chat", "recommend"]
            plain, reused = generator.topic_margins(contexts, goals, candidates), generator.topic_margins(contexts, goals, candidates, shared)
            assert calls == [3, 2] and reused[1] is None and plain[1] is None
            for a, b in zip(plain, reused):
                if a is not None:
                    assert b.shape == a.shape and np.allclose(a, b, atol=1e-4)
            # Contexts the shared pass did not run are scored the usual way.
            other = [generator.context_ids("[seeker] something else")]
            assert torch.allclose(generator.goal_log_probs(other, shared), generator.goal_log_probs(other), atol=1e-6) and calls == [3, 2]
        finally:
            generator._continue_shared = original
    assert generator.context_states(contexts) is None  # outside decoding the model is not the lean pass


def test_decoding_that_continues_the_shared_pass_writes_what_it_writes_alone(generator):
    contexts = [generator.context_ids(text) for text in ("[seeker] I love ghosts", "[seeker] any aliens movie please? something old", "")]
    # Prefixes of different lengths: the shorter ones leave padding between their end and the new tokens.
    prefixes = [generator.encode(text, 32) for text in ("[goal] recommend [topic] horror [item] Alien (1979) [recommender]",
                                                        "[goal] chat [topic] none [item] none [recommender]", "[goal]")]
    assert len({len(p) for p in prefixes}) == 3
    stop = {generator.eos_id, generator.seeker_id, generator.recommender_id}
    loop, started = generator._loop, []

    def spy(*args, **kwargs):
        started.append(kwargs.get("start") is not None)
        return loop(*args, **kwargs)

    generator._loop = spy
    try:
        with generator.decoding_precision():
            shared = generator.context_states(contexts)
            for options in ({}, {"no_repeat": 3, "min_new": 4}):
                kept_alone, kept = {}, {}
                plain = generator._greedy(contexts, prefixes, stop=stop, max_new=12, keep_prefill=kept_alone, **options)
                continued = generator._greedy(contexts, prefixes, stop=stop, max_new=12, keep_prefill=kept, shared=shared, **options)
                assert started[-2:] == [False, True]  # the second continued the shared pass
                assert continued == plain and all(len(new) >= 1 for new in continued)
                assert kept["rows"] == kept_alone["rows"] and torch.allclose(kept["logits"], kept_alone["logits"], atol=1e-4)
                # Scoring that continues either first pass gives the same scores.
                tails = [[generator.encode("it is a good one", 16), generator.encode("you will love it", 16)]] * 3
                for (a, _), (b, _) in zip(generator._tail_log_probs(contexts, prefixes, tails, prefill=kept_alone),
                                          generator._tail_log_probs(contexts, prefixes, tails, prefill=kept)):
                    assert torch.allclose(a, b, atol=1e-4)
    finally:
        generator._loop = loop


def test_hybrid_keeps_the_generated_reply_when_the_filter_refuses_every_retrieved_one(generator):
    asked = []

    def refuse(row, reply):
        asked.append((row, reply))
        return False

    out = hybrid(generator, float("inf"), reply_filter=refuse)
    assert all(g.source == "generated" and len(g.candidates) == 1 for g in out)
    assert {row for row, _ in asked} == {0, 1}
    generator.config = ConvConfig(max_new_tokens=40, decoding="norepeat")
    plain = generator.generate_texts(["[seeker] I love ghosts", "[seeker] aliens please"], ["Alien (1979)", "none"],
                                     forced=[Steps("recommend", [], "Alien (1979)"), Steps("chat", [], "none")])
    assert [g.reply for g in out] == [g.reply for g in plain]  # hybrid starts from the norepeat reply
    generator.exemplar_index = None


def test_a_goal_bias_chooses_the_goal_by_its_biased_score_then_decodes_the_topics(generator):
    from crs.gen.steps import GOALS

    generator.config = ConvConfig(max_new_tokens=40)
    contexts = ["[seeker] I love ghosts", "[seeker] aliens please"]
    ids = [generator.context_ids(c) for c in contexts]
    scores = generator.goal_log_probs(ids)
    assert scores.shape == (2, len(GOALS)) and bool((scores < 0).all())
    generator.goal_bias = [0.0] * len(GOALS)
    assert generator.choose_goals(ids) == [GOALS[int(j)] for j in scores.argmax(1)]
    greet = [0.0] * len(GOALS)
    greet[GOALS.index("greet")] = 1e6
    generator.goal_bias = greet
    assert [g.goal for g in generator.generate_texts(contexts, ["none", "none"])] == ["greet", "greet"]
    generator.goal_bias = None


def test_a_goal_head_chooses_each_rows_goal_from_its_own_features(generator):

    from crs.gen.goal_head import FEATURES, GoalHead
    from crs.gen.steps import GOALS

    generator.config = ConvConfig(max_new_tokens=40)
    width = len(GOALS) + len(FEATURES)
    coef = np.zeros((len(GOALS), width))
    coef[GOALS.index("farewell"), len(GOALS) + FEATURES.index("seeker_farewell")] = 100.0
    intercept = np.zeros(len(GOALS))
    intercept[GOALS.index("greet")] = 50.0
    generator.goal_head = GoalHead(np.zeros(width), np.ones(width), coef, intercept)
    contexts = ["[seeker] I love ghosts", "[seeker] aliens please bye"]
    features = np.zeros((2, len(FEATURES)), dtype=np.float32)
    features[1, FEATURES.index("seeker_farewell")] = 1.0
    out = generator.generate_texts(contexts, ["none", "none"], goal_features=features)
    assert [g.goal for g in out] == ["greet", "farewell"]
    # Without features (e.g. a caller with texts only) the goal is decoded as before.
    generator.goal_head = None
    decoded = [g.goal for g in generator.generate_texts(contexts, ["none", "none"])]
    generator.goal_head = GoalHead(np.zeros(width), np.ones(width), coef, intercept)
    assert [g.goal for g in generator.generate_texts(contexts, ["none", "none"])] == decoded
    generator.goal_head = None


def test_scored_topic_is_one_of_the_candidates_or_none_as_the_bias_says(generator):
    from crs.gen.steps import GOALS  # noqa: F401  (the goals the prefix names)

    contexts = ["[seeker] I love ghosts", "[seeker] aliens please"]
    ids = generator.context_ids(contexts[0])
    generator.config = ConvConfig(max_new_tokens=40, topic_choice="scored", topic_none_bias=-1e6)
    picked = generator.choose_topic(ids, "recommend", ["Horror fiction", "Science fiction", "Horror fiction"])
    assert picked in (["Horror fiction"], ["Science fiction"])
    assert generator.choose_topic(ids, "recommend", []) == []  # nothing to choose from: no topic
    generator.config = ConvConfig(max_new_tokens=40, topic_choice="scored", topic_none_bias=1e6)
    assert generator.choose_topic(ids, "recommend", ["Horror fiction"]) == []
    # Through generate_texts: every row's topics come from its own candidates.
    generator.config = ConvConfig(max_new_tokens=40, topic_choice="scored", topic_none_bias=-1e6)
    own = {0: ["Horror fiction"], 1: ["Science fiction"]}
    out = generator.generate_texts(contexts, ["none", "none"], topic_candidates=lambda i: own[i])
    assert [g.topics for g in out] == [own[0], own[1]]
    # Batched: each row's pick is the one it gets alone, and a row without candidates gets none.
    rows = [generator.context_ids(c) for c in contexts] + [ids]
    batched = generator.choose_topics(rows, ["recommend", "chat", "recommend"], [["Horror fiction", "Science fiction"], [], ["Science fiction"]])
    assert batched == [generator.choose_topic(rows[0], "recommend", ["Horror fiction", "Science fiction"]), [],
                       generator.choose_topic(ids, "recommend", ["Science fiction"])]
    generator.config = ConvConfig(max_new_tokens=40)  # greedy topics: the candidates are not asked
    greedy = generator.generate_texts(contexts, ["none", "none"], topic_candidates=lambda i: pytest.fail("asked"))
    # Scored topics stop the step decoding at [topic]: the goals are those decoded in full.
    generator.config = ConvConfig(max_new_tokens=40, topic_choice="scored")
    assert [g.goal for g in generator.generate_texts(contexts, ["none", "none"], topic_candidates=lambda i: own[i])] == [g.goal for g in greedy]


def test_a_topic_head_decides_from_the_candidates_features_and_its_threshold(generator):
    from crs.gen.topic_head import CANDIDATE_FEATURES, INPUTS, TopicHead

    contexts = ["[seeker] I love ghosts", "[seeker] aliens please"]
    rows = [generator.context_ids(c) for c in contexts]
    width = len(INPUTS)
    coef = np.zeros(width)
    coef[INPUTS.index("movie_genre")] = 10.0  # only whether the candidate is the movie's genre counts
    generator.config = ConvConfig(max_new_tokens=40, topic_choice="scored", topic_none_bias=1e6)  # the bias alone: never a topic
    generator.topic_head = TopicHead(np.zeros(width), np.ones(width), coef, -5.0, 0.5)
    names = [["Horror fiction", "Science fiction"], ["Horror fiction", "Science fiction"]]
    features = [np.zeros((2, len(CANDIDATE_FEATURES)), dtype=np.float32) for _ in names]
    features[0][1, CANDIDATE_FEATURES.index("movie_genre")] = 1.0  # row 0: the second is the movie's genre
    features[1][0, CANDIDATE_FEATURES.index("movie_genre")] = 1.0  # row 1: the first
    assert generator.choose_topics(rows, ["recommend", "recommend"], names, features) == [["Science fiction"], ["Horror fiction"]]
    generator.topic_head.threshold = 0.999  # p = sigmoid(5) < 0.999: no topic
    assert generator.choose_topics(rows, ["recommend", "recommend"], names, features) == [[], []]
    # Without features the head is not asked: the bias rule decides, as before.
    assert generator.choose_topics(rows, ["recommend", "recommend"], names) == [[], []]
    # Through generate_texts, features come with the candidates (as CRS.topic_candidates gives them).
    generator.topic_head.threshold = 0.5

    class Candidates:
        def __call__(self, i):
            return names[i]

        def features(self, i):
            return features[i]

    out = generator.generate_texts(contexts, ["none", "none"], topic_candidates=Candidates())
    assert [g.topics for g in out] == [["Science fiction"], ["Horror fiction"]]
    with pytest.raises(ValueError, match="feature rows"):
        generator.choose_topics(rows, ["recommend", "recommend"], names, features[:1])
    generator.topic_head = None
    generator.config = ConvConfig(max_new_tokens=40)


def test_unknown_topic_choice_is_refused_with_its_key():
    with pytest.raises(ConfigError, match="conv.topic_choice"):
        ConvConfig(topic_choice="sampled")


def test_batched_candidate_scores_equal_each_rows_own(generator):
    # Hybrid decoding scores the candidates of several rows in one batch (left-padded contexts, the
    # cache copied to each row's candidates): the scores are those of each row alone.
    generator.config = ConvConfig(max_new_tokens=40)
    shared = [generator.context_ids("[seeker] I love ghosts") + [generator.goal_id],
              generator.context_ids("[seeker] aliens please and more aliens") + [generator.goal_id]]
    tails = [[generator.encode(t, 20) for t in ("have you seen it", "you will love it")],
             [generator.encode(t, 20) for t in ("aliens", "it is terrifying, I loved it so much", "hi")]]
    batched = generator._tail_log_probs(shared, [[], []], tails)
    for (sums, counts), s, t in zip(batched, shared, tails):
        alone_sums, alone_counts = generator._tail_log_probs([s], [[]], [t])[0]
        assert torch.equal(counts, alone_counts)
        assert torch.allclose(sums, alone_sums, atol=1e-4)


def test_bf16_decoding_runs_on_a_copy_and_keeps_fp32_weights_and_output_layer(generator):
    # crs.precision: bf16 decoding of a GPT-2 generator runs crs.gen.fast.FastGPT2 with bf16 matrix
    # products; the generator's own weights stay fp32, the output layer computes in fp32, and the
    # copy follows weight changes. (A T5 generator's bf16 copy: tests/test_fast_decoding.py.)
    from crs.gen.fast import FastGPT2

    generator.config = ConvConfig(max_new_tokens=40)
    shared = [generator.context_ids("[seeker] I love ghosts") + [generator.goal_id]]
    tails = [[generator.encode(t, 20) for t in ("have you seen it", "you will love it", "hi")]]
    exact, _ = generator._tail_log_probs(shared, [[]], tails)[0]
    weights = {name: p.clone() for name, p in generator.model.named_parameters()}
    generator.precision = "bf16"
    try:
        with generator.decoding_precision():
            twin = generator.model
            assert isinstance(twin, FastGPT2) and twin.dtype == torch.bfloat16
            assert all(w.dtype == torch.bfloat16 for layer in twin.layers for w, _ in (layer["qkv"], layer["fc"]))
            fast, _ = generator._tail_log_probs(shared, [[]], tails)[0]
            logits = twin(input_ids=torch.tensor([shared[0]])).logits
        assert logits.dtype == torch.float32  # the output layer ran in fp32
        assert torch.allclose(fast, exact, atol=0.05 * max(1.0, float(exact.abs().max())))
        assert generator.model is not twin  # the fp32 model is back
        assert all(torch.equal(p, weights[name]) and p.dtype == torch.float32 for name, p in generator.model.named_parameters())
        out = generator.generate_texts(["[seeker] I love ghosts", "[seeker] aliens please"], ["none", "none"])
        assert len(out) == 2 and all(isinstance(g.reply, str) for g in out)
        with generator.decoding_precision():
            assert generator.model is twin  # made once
        with torch.no_grad():
            next(generator.model.parameters()).add_(0.5)
        with generator.decoding_precision():
            assert generator.model is not twin  # the weights changed: a new copy
        with torch.no_grad():
            next(generator.model.parameters()).sub_(0.5)
    finally:
        generator.precision = None
    with generator.decoding_precision():  # fp32 (the process's default): fp32 products
        assert isinstance(generator.model, FastGPT2) and generator.model.dtype == torch.float32


def test_candidate_scores_do_not_depend_on_how_many_run_in_a_pass(generator, monkeypatch):
    from crs.gen import reply as module

    assert module.tail_chunks([9] * 5, 16, 32) == [(0, 3), (3, 5)]
    assert module.tail_chunks([40, 1, 1], 16, 32) == [(0, 1), (1, 3)]  # a row over the limit goes alone
    assert module.tail_chunks([1] * 5, 2, 32) == [(0, 2), (2, 4), (4, 5)] and module.tail_chunks([], 16, 32) == []
    generator.config = ConvConfig(max_new_tokens=40)
    shared = [generator.context_ids(text) + [generator.goal_id] for text in ("[seeker] I love ghosts", "[seeker] aliens please", "")]
    tails = [[generator.encode(t, 20) for t in ("have you seen it", "hi")], [generator.encode("aliens", 20)],
             [generator.encode(t, 20) for t in ("you will love it", "it is terrifying, I loved it so much", "so")]]
    together = generator._tail_log_probs(shared, [[], [], []], tails)
    monkeypatch.setattr(module, "MAX_TAILS_PER_PASS", 2)  # one row a pass here
    for (sums, counts), (alone_sums, alone_counts) in zip(together, generator._tail_log_probs(shared, [[], [], []], tails)):
        assert torch.equal(counts, alone_counts) and torch.allclose(sums, alone_sums, atol=1e-4)


def test_candidates_run_in_passes_of_similar_length_score_as_in_one_padded_pass(generator, monkeypatch):
    from crs.gen import reply as module

    generator.config = ConvConfig(max_new_tokens=40)
    shared = [generator.context_ids(text) + [generator.goal_id] for text in ("[seeker] I love ghosts", "[seeker] aliens please", "")]
    texts = ["hi", "it is terrifying, I loved it so much and you will too, trust me on that one", "so", "aliens",
             "have you seen it", "you will love it", "a long one about a haunted house and a family that moves in", "ok"]
    tails = [[generator.encode(t, 40) for t in texts[:3]], [generator.encode(t, 40) for t in texts[3:5]],
             [generator.encode(t, 40) for t in texts[5:]]]
    passes = []
    real = module.length_chunks
    monkeypatch.setattr(module, "length_chunks", lambda *args: passes.append(real(*args)) or passes[-1])
    monkeypatch.setattr(module, "TAIL_PASS_COST", 1)  # cheap passes: these few tails run in several
    with generator.decoding_precision():  # the lean decoding pass, which runs the tails in passes
        grouped = generator._tail_log_probs(shared, [[], [], []], tails)
        assert len(passes) == 1 and len(passes[0]) > 1
        monkeypatch.setattr(module, "length_chunks", lambda lengths, *_: [list(range(len(lengths)))])  # one padded pass
        padded = generator._tail_log_probs(shared, [[], [], []], tails)
    for (sums, counts), (padded_sums, padded_counts) in zip(grouped, padded):
        assert torch.equal(counts, padded_counts) and torch.allclose(sums, padded_sums, atol=1e-4)


def test_contexts_of_very_different_lengths_decode_in_passes_of_their_own_and_reply_as_together(generator, monkeypatch):
    from crs.gen import reply as module

    generator.config = ConvConfig(max_new_tokens=30, decoding="norepeat", max_context_tokens=64, max_target_tokens=24)
    long = " ".join(f"[seeker] I loved the ghost movie number {i} [recommender] have you seen the next one" for i in range(4))
    contexts = ["[seeker] hi", long, "[seeker] aliens please", "[seeker] any comedy?"]
    passes = []
    real = module.length_chunks
    monkeypatch.setattr(module, "length_chunks", lambda *args: passes.append(real(*args)) or passes[-1])
    monkeypatch.setattr(module, "CONTEXT_PASS_COST", 10)
    split = generator.generate_texts(contexts, ["none"] * len(contexts))
    assert [1] in passes[0]  # the long context ran alone
    monkeypatch.setattr(module, "length_chunks", lambda lengths, *_: [list(range(len(lengths)))])
    together = generator.generate_texts(contexts, ["none"] * len(contexts))
    assert [(g.goal, g.topics, g.reply) for g in split] == [(g.goal, g.topics, g.reply) for g in together]


def test_a_broken_generated_reply_gives_way_to_the_best_retrieved_one():
    for broken in ("It's about a s a e", "bye bye bye! bye!", "a young girl who who who has"):
        assert degenerate(broken), broken
    for fine in ("I'm not sure. I'll have to see it.", "It is rated R", "Toy Story 2 (1999) is a good one.", "Have you seen [REC] ?",
                 "Star Wars: Episode V is great", "it is so so bad"):
        assert not degenerate(fine), fine
    scores = [-1.0, -4.0, -3.0]  # the retrieved ones far outside the margin
    assert hybrid_choice(scores, 0.5) == 0 and hybrid_choice(scores, 0.5, broken=True) == 2
    assert hybrid_choice([-1.0], 0.5, broken=True) == 0  # nothing retrieved: the generated reply stays


def test_a_reply_that_tells_a_plot_is_recognised_and_a_generated_one_gives_way():
    plots = ("It's about a linguist who learns to talk to aliens.", "[REC] is about a kid who works for the mob",
             "Have you seen [REC]? It is a comedy about two cops on a boat.", "Titanic (1997) is great! Its about a little girl.",
             "It tells the story of a boxer.", "it's basically about how facebook started", "It was about 2 guys and a dog",
             "It's a South African comedy about a man who meets scientists", "It follows a family on vacation.",
             "it is about these friends that plan a trip", "It's about a s a boxing", "Yeah it's about time travel, more or less.",
             "It is a great film about boxing.", "It's about vampires and werewolves", "It's set in a utopian society with rules",
             "It takes place in a small town", "great, how about [REC] a group of women team up to be the maids of a bride",
             "[REC] is a off duty cop who goes against a bunch of bad guys")
    for text in plots:
        assert describes_plot(text), text
        assert unusable(text), text
    fine = ("What's it about?", "Is it about a dog?", "What about [REC]? It's hilarious", "How about Up (2009)?",
            "I saw that about a month ago.", "It's about 2 hours long", "I was about to suggest that!", "It's about time!",
            "I'm not sure about that one.", "That's what it's all about.", "[REC] is another one about racing and action!",
            "Have you seen [REC] ?", "It stars Tom Hanks and it is a comedy.", "[REC] is a must see!", "You should give [REC] a try.",
            "[REC] is a great one who doesn't like it")
    for text in fine:
        assert not describes_plot(text), text
        assert not unusable(text), text
