"""crs.gen.fast: the lean GPT-2 forward pass decoding runs on, and what decoding does with it
(continuing its first pass for hybrid scoring, logits only where a score needs them)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from crs.config import ConvConfig, GeneratorConfig
from crs.gen import fast
from crs.gen.backbone import load_backbone, pad_left
from crs.gen.exemplars import ExemplarIndex
from crs.gen.reply import ReplyGenerator
from crs.gen.steps import Steps
from crs.text.tokenizer import train_tokenizer

LINES = ["[seeker] I love ghosts and aliens [recommender] have you seen [REC]? It is terrifying, I loved it so much",
         "[seeker] something funny please [recommender] how about [REC]? It made me laugh a lot"] * 20


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(LINES, tmp_path_factory.mktemp("tokenizer"), vocab_size=80)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(5)
    return load_backbone(GeneratorConfig(init="scratch-tiny", max_length=128), tokenizer).eval()


def batch(tokenizer):
    rows = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in
            ("[seeker] I love ghosts and aliens", "[seeker] funny", "[seeker] something funny please [recommender] how about")]
    ids, mask = pad_left(rows, tokenizer.pad_token_id)
    return ids, mask, (mask.cumsum(1) - 1).clamp(min=0)


def test_fast_gpt2_gives_the_transformers_logits_and_cache_on_left_padded_rows(tokenizer, model):
    ids, mask, positions = batch(tokenizer)
    lean = fast.FastGPT2(model)
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        out = lean(ids, mask, positions)
        assert torch.allclose(out.logits[mask.bool()], ref.logits[mask.bool()], atol=1e-5)
        assert out.past_key_values.get_seq_length() == ids.size(1)
        # one more token per row, continuing the cache
        token = ref.logits[:, -1].argmax(-1, keepdim=True)
        longer, step_positions = torch.cat([mask, torch.ones_like(mask[:, :1])], 1), positions[:, -1:] + 1
        ref_step = model(input_ids=token, attention_mask=longer, position_ids=step_positions, past_key_values=ref.past_key_values).logits
        step = lean(token, longer, step_positions, out.past_key_values)
        assert torch.allclose(step.logits, ref_step, atol=1e-5)
        # a continuation leaves the cache it started from as it was: continuing it again gives the same
        again = lean(token, longer, step_positions, out.past_key_values)
        assert out.past_key_values.get_seq_length() == ids.size(1) and torch.equal(again.logits, step.logits)
        # logits_at: the logits of the chosen positions only, in row-major order
        chosen = mask.bool() & (torch.arange(ids.size(1)) % 2 == 0)
        assert torch.allclose(lean(ids, mask, positions, logits_at=chosen).logits, out.logits[chosen], atol=1e-6)
        assert torch.allclose(lean(ids, mask, positions, logits_to_keep=1).logits, out.logits[:, -1:], atol=1e-6)
        # a cache's rows selected (and repeated), as candidate scoring does
        cache = lean(ids, mask, positions).past_key_values
        cache.batch_select_indices(torch.tensor([2, 2, 0]))
        assert cache.keys[0].shape[0] == 3 and torch.equal(cache.keys[0][0], out.past_key_values.keys[0][2])


def test_fast_gpt2_in_bf16_keeps_fp32_logits_close_to_fp32_and_the_model_untouched(tokenizer, model):
    ids, mask, positions = batch(tokenizer)
    before = {name: p.clone() for name, p in model.named_parameters()}
    with torch.no_grad():
        exact = fast.FastGPT2(model)(ids, mask, positions).logits
        rough = fast.FastGPT2(model, torch.bfloat16)(ids, mask, positions).logits
    assert rough.dtype == torch.float32
    assert torch.allclose(rough[mask.bool()], exact[mask.bool()], atol=0.05 * max(1.0, float(exact.abs().max())))
    assert all(torch.equal(p, before[name]) and p.dtype == torch.float32 for name, p in model.named_parameters())


def test_only_plain_gpt2_generators_run_fast_and_a_t5_decodes_on_its_bf16_copy(tokenizer, model):
    assert fast.supports(model)
    t5 = load_backbone(GeneratorConfig(backbone="t5", init="scratch-tiny", max_length=128), tokenizer)
    assert not fast.supports(t5) and not fast.supports(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="plain GPT-2"):
        fast.FastGPT2(t5)
    generator = ReplyGenerator(tokenizer, t5, "t5", ConvConfig(max_new_tokens=12))
    generator.precision = "bf16"
    with generator.decoding_precision():
        copy = generator.model
        assert copy is not t5 and all(p.dtype == torch.bfloat16 for p in copy.parameters())
        replies = generator.generate_texts(["[seeker] I love ghosts"], ["none"])
    assert generator.model is t5 and all(p.dtype == torch.float32 for p in t5.parameters())
    assert isinstance(replies[0].reply, str)
    generator.precision = "fp32"
    with generator.decoding_precision():
        assert generator.model is t5  # fp32: the model itself


RETRIEVABLE = ["have you seen [REC]? It is terrifying", "you will love the ghosts in it", "how about [REC]? It made me laugh",
               "something funny, I loved it so much"]


def generate(generator, decoding: str) -> list:
    generator.config = replace(ConvConfig(max_new_tokens=40, min_reply_tokens=3), decoding=decoding, retrieval_margin=2.0, exemplars=0)
    contexts = ["[seeker] I love ghosts", "[seeker] something funny please", ""]
    forced = [Steps("recommend", [], "Alien (1979)"), Steps("chat", [], "none"), Steps("recommend", ["ghosts"], "Airplane! (1980)")]
    keys = ["I love ghosts", "something funny please", "hello"] if decoding == "hybrid" else None
    return generator.generate_texts(contexts, ["Alien (1979)", "none", "Airplane! (1980)"], forced=forced, keys=keys)


@pytest.mark.parametrize("decoding", ["greedy", "norepeat", "hybrid"])
def test_fp32_decoding_on_the_fast_pass_writes_what_the_transformers_model_writes(tokenizer, model, monkeypatch, decoding):
    generator = ReplyGenerator(tokenizer, model, "dialogpt", ConvConfig(max_new_tokens=40))
    generator.precision = "fp32"
    generator.exemplar_index = ExemplarIndex.build(["I love ghosts", "ghosts please", "something funny please", "funny please"],
                                                   RETRIEVABLE, ["a", "b", "c", "d"], min_df=1)
    prefills = []
    call = fast.FastGPT2.__call__
    monkeypatch.setattr(fast.FastGPT2, "__call__", lambda self, *a, **k: (prefills.append(k.get("past_key_values", a[3] if len(a) > 3 else None) is None),
                                                                       call(self, *a, **k))[1])
    fast_out = generate(generator, decoding)
    # the steps are forced: one first pass (the replies'), which hybrid scoring continues
    assert sum(prefills) == 1
    monkeypatch.setattr(fast.FastGPT2, "__call__", call)
    with generator.decoding_precision():
        assert isinstance(generator.model, fast.FastGPT2)
    monkeypatch.setattr(fast, "supports", lambda model: False)  # the transformers model decodes
    with generator.decoding_precision():
        assert generator.model is model
    slow_out = generate(generator, decoding)
    assert [g.reply for g in fast_out] == [g.reply for g in slow_out]
    assert [g.source for g in fast_out] == [g.source for g in slow_out]
    if decoding == "hybrid":
        assert any(len(g.candidates) > 1 for g in fast_out)  # retrieved replies were scored
    for a, b in zip(fast_out, slow_out):
        assert [c for c, _ in a.candidates] == [c for c, _ in b.candidates]
        assert all(abs(x - y) < 1e-4 for (_, x), (_, y) in zip(a.candidates, b.candidates))


def test_candidate_scoring_continues_the_decoding_first_pass_with_the_same_scores(tokenizer, model):
    generator = ReplyGenerator(tokenizer, model, "dialogpt", ConvConfig(max_new_tokens=40))
    generator.precision = "fp32"
    contexts = [generator.context_ids(t) for t in ("[seeker] I love ghosts", "[seeker] funny", "")]
    prefixes = [generator.encode(t, 16) for t in ("[goal] recommend [topic] none [item] none [recommender]",
                                                  "[goal] chit-chat [topic] none [item] none [recommender]",
                                                  "[goal] recommend [topic] ghosts [item] none [recommender]")]
    tails = [[generator.encode(t, 20) for t in ("have you seen it", "hi")], [generator.encode("it made me laugh", 20)],
             [generator.encode(t, 20) for t in ("so", "it is terrifying, I loved it so much", "aliens")]]
    with generator.decoding_precision():
        kept: dict = {}
        generator._greedy(contexts, prefixes, stop={generator.eos_id}, max_new=5, keep_prefill=kept)
        assert kept["rows"] == [c + p for c, p in zip(contexts, prefixes)] and kept["model"] is generator.model
        reused = generator._tail_log_probs(contexts, prefixes, tails, prefill=kept)
        fresh = generator._tail_log_probs(contexts, prefixes, tails)
        # other rows than the kept pass ran: not reused, scored afresh
        other = generator._tail_log_probs(contexts[:2], prefixes[:2], tails[:2], prefill=kept)
    for (a, n), (b, m) in zip(reused, fresh):
        assert torch.equal(n, m) and torch.allclose(a, b, atol=1e-5)
    for (a, _), (b, _) in zip(other, fresh[:2]):
        assert torch.allclose(a, b, atol=1e-5)


def test_greedy_choice_from_rough_logits_is_the_fp32_choice_among_allowed_tokens(tokenizer, model):
    # A bf16 step ranks the vocabulary with bf16 logits and chooses among the best few by fp32
    # logits: the fp32 argmax of the tokens not barred.
    lean = fast.FastGPT2(model, torch.bfloat16)
    ids, mask, positions = batch(tokenizer)
    with torch.no_grad():
        hidden = lean(ids, mask, positions, logits_to_keep=1).hidden[:, -1]
        rough = lean.rough_logits(hidden)
        exact = lean.token_logits(hidden, torch.arange(rough.size(1)).expand_as(rough))  # the fp32 output layer
        assert torch.allclose(exact, lean(ids, mask, positions, logits_to_keep=1).logits[:, -1], atol=1e-5)
        assert rough.dtype == torch.float32 and torch.allclose(rough, exact, atol=0.05 * max(1.0, float(exact.abs().max())))
        assert torch.equal(lean.best_of(hidden, rough), exact.argmax(-1))
        barred = exact.argmax(-1)  # bar each row's best: the next best by fp32 logits comes
        rough[torch.arange(rough.size(0)), barred] = float("-inf")
        masked = exact.clone()
        masked[torch.arange(masked.size(0)), barred] = float("-inf")
        assert torch.equal(lean.best_of(hidden, rough), masked.argmax(-1))
        only = torch.full_like(rough, float("-inf"))
        only[:, 3] = 0.0  # a single token allowed: it is chosen, whatever the shortlist's length
        assert torch.equal(lean.best_of(hidden, only, shortlist=8), torch.full((rough.size(0),), 3))
