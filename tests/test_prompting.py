"""Soft prompts (crs.gen.prompting): peft's wiring reproduced, the KG-conditioned prompt's shapes,
what each training phase trains, and prompts through the generator's decoding, scoring and files."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from crs.config import ConfigError, ConvConfig, GeneratorConfig, PromptConfig
from crs.gen.backbone import load_backbone, pad_left, pad_right
from crs.gen.prompting import KGPrompt, PeftPrompt, PromptedLM, add_lora, build_prompt, trainable_parameters
from crs.gen.reply import ReplyGenerator
from crs.text.tokenizer import train_tokenizer

LINES = ["[seeker] I love ghosts and aliens [recommender] have you seen [REC]? It is terrifying, I loved it so much"] * 40
ENTITY_DIM = 8


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(LINES, tmp_path_factory.mktemp("tokenizer"), vocab_size=60)


def backbone(tokenizer, seed: int = 3):
    torch.manual_seed(seed)
    return load_backbone(GeneratorConfig(init="scratch-tiny", max_length=128), tokenizer).eval()


def kg_prompt(model, injection: str, seed: int = 5) -> KGPrompt:
    torch.manual_seed(seed)
    prompt = build_prompt(PromptConfig(kind="kg", injection=injection, virtual_tokens=3, encoder_dim=16, encoder_heads=2), model,
                          entity_dim=ENTITY_DIM)
    prompt.attach(torch.randn(30, ENTITY_DIM))
    return prompt


ROWS = [[5, 6, 7, 8, 9, 10], [11, 12, 13]]
ENTITIES = torch.tensor([[1, 2, -1], [7, -1, -1]])
CONTEXT = torch.tensor([4, 2])  # the first 4 (2) tokens of each row are its context


@pytest.mark.parametrize("kind", ["peft-prompt", "peft-prefix"])
def test_peft_prompts_match_peft_s_own_model(tokenizer, kind):
    # The same PromptEmbedding / PrefixEncoder weights give the logits of peft's PeftModelForCausalLM.
    from peft import get_peft_model

    model = backbone(tokenizer)
    ours = build_prompt(PromptConfig(kind=kind, virtual_tokens=4), model)
    assert isinstance(ours, PeftPrompt) and ours.injection == ("embeds" if kind == "peft-prompt" else "prefix")
    reference = get_peft_model(copy.deepcopy(model), copy.deepcopy(ours.peft_config)).eval()
    reference.prompt_encoder["default"].load_state_dict(ours.encoder.state_dict())
    ids, mask = pad_right(ROWS, tokenizer.pad_token_id)
    with torch.no_grad():
        got = PromptedLM(model, ours).eval()(input_ids=ids, attention_mask=mask).logits
        expected = reference(input_ids=ids, attention_mask=mask).logits[:, -ids.size(1):]
    real = mask.bool()
    assert got.shape == expected.shape
    assert torch.allclose(got[real], expected[real], atol=1e-5)


@pytest.mark.parametrize("injection", ["embeds", "prefix"])
def test_kg_prompt_shapes_padding_cache_and_no_sight_of_the_target(tokenizer, injection):
    model = backbone(tokenizer)
    prompt = kg_prompt(model, injection)
    layers, hidden = model.config.n_layer, model.config.n_embd
    vectors = prompt(2, ENTITIES, torch.randn(2, 5, hidden), torch.ones(2, 5, dtype=torch.bool))
    assert vectors.shape == (2, 3, hidden if injection == "embeds" else layers * 2 * hidden)
    lm = PromptedLM(model, prompt).eval()
    with torch.no_grad():
        ids, mask = pad_right(ROWS, 0)
        right = lm(input_ids=ids, attention_mask=mask, prompt_entities=ENTITIES, prompt_context=CONTEXT).logits
        assert right.shape == (2, ids.size(1), model.config.vocab_size)  # the caller's length, prompt positions dropped
        left_ids, left_mask = pad_left(ROWS, 0)
        positions = (left_mask.cumsum(1) - 1).clamp(min=0)
        left = lm(input_ids=left_ids, attention_mask=left_mask, position_ids=positions, prompt_entities=ENTITIES,
                  prompt_context=CONTEXT).logits
        assert torch.allclose(right[0], left[0], atol=1e-5) and torch.allclose(right[1, :3], left[1, 3:], atol=1e-5)
        # The entities condition the prompt: other entities, other logits.
        other = lm(input_ids=ids, attention_mask=mask, prompt_entities=ENTITIES.flip(0), prompt_context=CONTEXT).logits
        assert not torch.allclose(other[0], right[0], atol=1e-4)
        # Tokens after the context (the target in training) do not reach the prompt.
        changed = ids.clone()
        changed[0, 5] = 20
        after = lm(input_ids=changed, attention_mask=mask, prompt_entities=ENTITIES, prompt_context=CONTEXT).logits
        assert torch.allclose(after[0, :5], right[0, :5], atol=1e-6)
        # The first 4 tokens with the cache, then the rest: the logits of one full pass.
        first = lm(input_ids=ids[:, :4], attention_mask=mask[:, :4], use_cache=True, prompt_entities=ENTITIES,
                   prompt_context=CONTEXT)
        rest = lm(input_ids=ids[:, 4:], attention_mask=mask, position_ids=torch.arange(4, ids.size(1)).expand(2, -1),
                  past_key_values=first.past_key_values)
        assert torch.allclose(rest.logits[0], right[0, 4:], atol=1e-5)


def _grads(module):
    return {name: p.grad is not None and bool(p.grad.abs().sum() > 0) for name, p in module.named_parameters()}


@pytest.mark.parametrize("injection", ["embeds", "prefix"])
def test_each_phase_trains_exactly_what_it_should(tokenizer, injection):
    model = backbone(tokenizer)
    prompt = kg_prompt(model, injection)
    lm = PromptedLM(model, prompt).train()
    ids, mask = pad_right(ROWS, 0)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100),
             "prompt_entities": ENTITIES, "prompt_context": CONTEXT}
    # Phase 1 (fixed-PTM prompt tuning): the generator frozen.
    for p in model.parameters():
        p.requires_grad_(False)
    assert trainable_parameters(lm) == trainable_parameters(prompt) > 0
    lm(**batch).loss.backward()
    assert all(p.grad is None for p in model.parameters())
    got = _grads(prompt)
    assert got and all(got.values()), [name for name, ok in got.items() if not ok]
    # Phase 2 (prompt+PTM tuning): everything.
    lm.zero_grad(set_to_none=True)
    for p in lm.parameters():
        p.requires_grad_(True)
    lm(**batch).loss.backward()
    assert all(p.grad is not None for p in lm.parameters())
    assert "entity_table" not in dict(lm.named_parameters()) and prompt.entity_table.grad is None


def test_lora_trains_only_its_adapters(tokenizer):
    model = backbone(tokenizer)
    for p in model.parameters():
        p.requires_grad_(False)
    lora = add_lora(model, PromptConfig(kind="lora", phases=1, lora_rank=2))
    trained = [name for name, p in lora.named_parameters() if p.requires_grad]
    assert trained and all("lora_" in name for name in trained)
    ids, mask = pad_right(ROWS, 0)
    lora(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss.backward()
    assert all((p.grad is not None) == p.requires_grad for p in lora.parameters())


def test_prompted_generator_decodes_scores_and_round_trips_its_files(tokenizer, tmp_path):
    model = backbone(tokenizer)
    prompt = kg_prompt(model, "prefix")
    generator = ReplyGenerator(tokenizer, model, "dialogpt", ConvConfig(max_new_tokens=30), prompt=prompt)
    generator.entity_source = lambda text: [3, 4] if "ghosts" in text else []
    contexts = ["[seeker] I love ghosts", "[seeker] aliens please"]
    out = generator.generate_texts(contexts, ["none", "none"])
    assert [g.goal for g in out] and all(isinstance(g.reply, str) for g in out)
    # Decoding a row in a batch or alone: the same reply (the prompt follows its row).
    assert generator.generate_texts(contexts[1:], ["none"])[0].reply == out[1].reply
    ids = generator.context_ids(contexts[0])
    assert ids.entities == (3, 4)
    generator.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "prompt" / "prompt.json").read_text())
    assert meta["kind"] == "kg" and meta["injection"] == "prefix" and meta["virtual_tokens"] == 3
    (tmp_path / "config.json").write_text(json.dumps({"crs_config": {"generator": {"backbone": "dialogpt", "init": "scratch-tiny",
                                                                                    "max_length": 128},
                                                                      "conv": {"max_new_tokens": 30}}}))
    loaded = ReplyGenerator.from_pretrained(tmp_path)
    assert isinstance(loaded.model, PromptedLM) and loaded.conditioned
    loaded.prompt.attach(prompt.entity_table)
    loaded.entity_source = generator.entity_source
    assert [g.reply for g in loaded.generate_texts(contexts, ["none", "none"])] == [g.reply for g in out]
    # Trained with exemplars, served with conv.serve_exemplars of them (-1: as trained).
    for serve, served in ((0, 0), (-1, 2)):
        (tmp_path / "config.json").write_text(json.dumps({"crs_config": {
            "generator": {"backbone": "dialogpt", "init": "scratch-tiny", "max_length": 128},
            "conv": {"max_new_tokens": 30, "exemplars": 2, "serve_exemplars": serve}}}))
        assert ReplyGenerator.from_pretrained(tmp_path).config.exemplars == served
    # A prompt file that does not fit its description is named.
    (tmp_path / "prompt" / "prompt.safetensors").write_bytes(b"broken")
    with pytest.raises(ValueError, match="prompt.safetensors"):
        ReplyGenerator.from_pretrained(tmp_path)


def test_packaged_lora_generator_is_the_base_with_its_adapters_merged(tokenizer, tmp_path):
    from crs.config import load_config
    from crs.gen.backbone import load_model, save_model
    from train.common import StageContext
    from train.package import add_generator, recipe_record

    model = backbone(tokenizer)
    for p in model.parameters():
        p.requires_grad_(False)
    lora = add_lora(model, PromptConfig(kind="lora", phases=1, lora_rank=2))
    torch.manual_seed(0)
    for name, p in lora.named_parameters():  # trained adapters (peft starts B at 0, a no-op)
        if "lora_B" in name:
            p.data.normal_(0, 0.5)
    lora.eval()  # no adapter dropout
    ids, mask = pad_right(ROWS, 0)
    with torch.no_grad():
        expected = lora(input_ids=ids, attention_mask=mask).logits
        with lora.disable_adapter():
            base = lora(input_ids=ids, attention_mask=mask).logits
    assert (expected - base).abs().max() > 0.1  # the adapters change the generator
    # The parts conv-prompt writes in a run: the base without its adapters, the adapters, the tokenizer.
    parts = tmp_path / "run" / "conv-prompt" / "lora" / "phase1" / "parts"
    save_model(copy.deepcopy(lora).unload(), parts / "generator")
    lora.save_pretrained(str(parts / "prompt"))
    tokenizer.save_pretrained(str(parts / "tokenizer"))
    config = load_config(overrides=[f"output_dir={tmp_path / 'run'}", "prompt.kind=lora", "prompt.phases=1"])
    assert add_generator(StageContext(config), tmp_path / "fixed") == []  # not in the recipe: conv-fixed-prompt's (none here)
    config.prompt.in_recipe = True
    assert add_generator(StageContext(config), tmp_path / "checkpoint") == ["generator", "tokenizer"]
    # The harness's paradigm table names the packaged generator for what trained it.
    (parts.parent / "checkpoint").mkdir()
    (parts.parent / "checkpoint" / "config.json").write_text(json.dumps({"paradigm": {"name": "LoRA (peft)", "trainable_parameters": 7}}))
    assert recipe_record(parts) == {"name": "fixed-prompt PTM tuning, then LoRA (peft; adapters merged)", "trainable_parameters": 7,
                                  "kind": "lora", "phase": 1}
    merged = load_model(tmp_path / "checkpoint" / "generator")
    assert not any("lora" in name for name, _ in merged.named_parameters())  # a plain generator, no peft at serving
    with torch.no_grad():
        got = merged(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(got[mask.bool()], expected[mask.bool()], atol=0.05, rtol=0.02)  # fp16 weights on disk


def test_packaged_tuned_on_generator_is_phase_two_of_kind_none(tokenizer, tmp_path):
    from crs.config import load_config
    from crs.gen.backbone import load_model, save_model
    from train.common import StageContext
    from train.package import add_generator, recipe_record

    model = backbone(tokenizer).eval()
    ids, mask = pad_right(ROWS, 0)
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
    # The parts conv-prompt's phase 2 writes for kind none: the tuned generator, the tokenizer; no prompt.
    run = tmp_path / "run" / "conv-prompt" / "none"
    save_model(model, run / "phase2" / "parts" / "generator")
    tokenizer.save_pretrained(str(run / "phase2" / "parts" / "tokenizer"))
    save_model(backbone(tokenizer, seed=4), run / "phase1" / "parts" / "generator")  # phase 1 (the base as it was): not packaged
    overrides = [f"output_dir={tmp_path / 'run'}", "prompt.kind=none", "prompt.phases=2"]
    assert add_generator(StageContext(load_config(overrides=overrides)), tmp_path / "fixed") == []  # not in the recipe
    config = load_config(overrides=overrides + ["prompt.in_recipe=true"])
    assert add_generator(StageContext(config), tmp_path / "checkpoint") == ["generator", "tokenizer"]
    assert recipe_record(run / "phase2" / "parts") == {"name": "fixed-prompt PTM tuning, continued by conv-prompt (kind none, phase 2)",
                                                        "kind": "none", "phase": 2}
    packaged = load_model(tmp_path / "checkpoint" / "generator")
    with torch.no_grad():
        got = packaged(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(got[mask.bool()], expected[mask.bool()], atol=0.05, rtol=0.02)  # phase 2's weights, fp16 on disk


def test_prompt_keys_are_checked():
    with pytest.raises(ConfigError, match="prompt.kind"):
        PromptConfig(kind="adapter")
    with pytest.raises(ConfigError, match="prompt.phases"):
        PromptConfig(kind="lora", phases=2)
    with pytest.raises(ConfigError, match="prompt.in_recipe"):
        PromptConfig(kind="kg", in_recipe=True)
    with pytest.raises(ConfigError, match="prompt.in_recipe"):
        PromptConfig(kind="none", phases=1, in_recipe=True)  # phase 1 of kind none trains nothing
    assert PromptConfig(kind="none", phases=2, in_recipe=True).in_recipe


def test_the_recipe_runs_conv_prompt_only_when_it_includes_it(tmp_path):
    from crs.config import load_config
    from train.__main__ import ALL_STAGES, Stage, recipe_stages

    assert recipe_stages(load_config()) == ALL_STAGES
    with_lora = load_config(overrides=["prompt.kind=lora", "prompt.phases=1", "prompt.in_recipe=true"])
    assert recipe_stages(with_lora) == ALL_STAGES + [Stage.CONV_PROMPT]
    # After conv-prompt, the checkpoint (written by rec before it) needs the package step; not once packaged.
    import os

    from train.__main__ import needs_package
    from train.common import StageContext

    with_lora.output_dir = str(tmp_path)
    for part, stamp in (("checkpoint/config.json", 1), ("checkpoint/generator/config.json", 2), ("conv-prompt/done.json", 3)):
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / part).write_text("{}")
        os.utime(tmp_path / part, (stamp, stamp))
    assert needs_package(StageContext(with_lora))
    os.utime(tmp_path / "checkpoint/generator/config.json", (4, 4))
    assert not needs_package(StageContext(with_lora))
    with_lora.rec.use_rec_state = True  # a recommender reading the generator's [REC] state cannot take another generator
    with pytest.raises(ConfigError, match="rec.use_rec_state"):
        recipe_stages(with_lora)


def test_kg_prompt_state_follows_each_context_and_is_what_the_prompt_attends_to(tokenizer):
    model = backbone(tokenizer)
    prompt = kg_prompt(model, "embeds")
    generator = ReplyGenerator(tokenizer, model, "dialogpt", ConvConfig(max_new_tokens=10), prompt=prompt)
    generator.entity_source = lambda text: [3, 4] if "ghosts" in text else []
    contexts = ["[seeker] I love ghosts", "[seeker] aliens please, the scarier the better", ""]
    states = generator.prompt_state_texts(contexts)
    assert states.shape == (3, prompt.state_dim) and torch.isfinite(states).all()
    # A row's state is the same alone as in a batch (padding is masked), and it depends on the entities.
    for row, text in enumerate(contexts):
        assert torch.allclose(generator.prompt_state_texts([text])[0], states[row], atol=1e-5)
    generator.entity_source = lambda text: []
    assert not torch.allclose(generator.prompt_state_texts(contexts[:1])[0], states[0], atol=1e-4)
    # An empty context with no entity keeps the learned queries (normalised, their mean).
    assert torch.allclose(states[2], prompt.norm(prompt.queries).mean(0), atol=1e-5)
    # Only a KG-conditioned prompt has a state for the recommender.
    plain = ReplyGenerator(tokenizer, backbone(tokenizer), "dialogpt", ConvConfig(max_new_tokens=10))
    with pytest.raises(ValueError, match="no KG-conditioned prompt"):
        plain.prompt_state_texts(contexts)
    with pytest.raises(ConfigError, match="prompt.rec_input"):
        PromptConfig(kind="peft-prompt", rec_input=True)


def test_the_prompt_state_input_stays_only_when_it_is_better_on_validation():
    from train.prompt import keeps_rec_input
    from train.rec import SCORE_KEY

    assert keeps_rec_input({SCORE_KEY: 0.70}, {SCORE_KEY: 0.71})
    assert not keeps_rec_input({SCORE_KEY: 0.70}, {SCORE_KEY: 0.70})  # a tie keeps the simpler recommender
    assert not keeps_rec_input({SCORE_KEY: 0.70}, {SCORE_KEY: 0.65})
