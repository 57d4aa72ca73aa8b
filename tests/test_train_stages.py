"""The training stages end to end on the real data, at a tiny size (text side off: the sentence
encoder's pass over the whole catalogue is what the full recipe pays for)."""

import json
from pathlib import Path

import pytest

from crs.config import load_config
from crs.eval.harness import run as evaluate
from crs.rec.kg_text import KGTextRecommender
from train.__main__ import main as train_main

TINY = str(Path(__file__).resolve().parent.parent / "configs" / "tiny.yaml")


@pytest.mark.data
@pytest.mark.slow
def test_all_stages_train_resume_and_evaluate(data_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ["all", "--quiet", "--config", TINY, "--data-dir", str(data_dir), "--output-dir", str(out)]
    train_main(args)
    kg_metrics = json.loads((out / "pretrain-kg" / "metrics.json").read_text())
    assert kg_metrics["test"]["mrr"] > 0 and kg_metrics["triples"]["valid"] == 200
    rec_done = json.loads((out / "rec" / "done.json").read_text())
    history = rec_done["metrics"]["history"]
    assert len(history) == 2 and history[1]["train_loss"] < history[0]["train_loss"]
    checkpoint = out / "checkpoint"
    assert (checkpoint / "recommender.safetensors").is_file() and (checkpoint / "metrics.json").is_file()

    # A rerun skips finished stages; with the rec stage's marker and checkpoint gone, only rec
    # runs again, and its loop state says it already finished, so no epoch is trained twice.
    stamp = (out / "pretrain-kg" / "done.json").stat().st_mtime_ns
    (out / "rec" / "done.json").unlink()
    import shutil

    shutil.rmtree(checkpoint)
    train_main(args)
    assert (out / "pretrain-kg" / "done.json").stat().st_mtime_ns == stamp
    again = json.loads((out / "rec" / "done.json").read_text())["metrics"]["history"]
    assert again == history and (checkpoint / "config.json").is_file()

    model = KGTextRecommender.from_pretrained(checkpoint)
    assert len(model.catalogue) == 6924 and model.config.rgcn.dim == 16
    # The plots' word lists ship with it (its catalogue has no plots): served linking grades titles as training did.
    assert (checkpoint / "kg" / "plot_words.json").is_file() and model.featurizer.linker.plot_words is not None
    # The repeat gate was fitted on validation turns and ships with the checkpoint (no text encoder
    # in the tiny config, so no context neighbours).
    gate = rec_done["metrics"]["repeat_gate"]
    assert model.repeat_gate is not None and (checkpoint / "repeat_gate.safetensors").is_file()
    assert gate["validation_turns"] > 0 and set(gate["standard_cross_fitted"]) == {"recall@1", "recall@10", "recall@50"}
    assert model.neighbours is None and "neighbours" not in rec_done["metrics"]
    # The generator stages ran, their parts are in the checkpoint, and the recommender takes the
    # generator's [REC] state.
    lm = json.loads((out / "pretrain-lm" / "done.json").read_text())["metrics"]
    conv = conv_stage = json.loads((out / "conv-fixed-prompt" / "done.json").read_text())["metrics"]
    # Better than a uniform guess over the vocabulary (perplexity = vocabulary size) after a few steps.
    vocab = json.loads((checkpoint / "generator" / "config.json").read_text())["vocab_size"]
    assert 1 < lm["valid_perplexity"] < vocab and 1 < conv["valid_reply_perplexity"] < vocab
    assert abs(sum(conv["goal_distribution_train"].values()) - 1) < 1e-3
    assert all((checkpoint / part / "config.json").is_file() for part in ("generator", "lm"))
    from crs.serve.pipeline import CRS

    pipeline = CRS.from_pretrained(checkpoint)
    assert model.config.rec.rec_state_dim == pipeline.generator.hidden_size > 0
    assert pipeline.recommender.state_source is not None  # the pipeline wired the [REC] state
    # The goal classifier was fitted for this generator on training turns (C chosen on validation)
    # and ships with the checkpoint; the chat and the harness choose goals with it.
    head = rec_done["metrics"]["goal_head"]
    assert head["train_turns"] > 0 and 0 <= head["validation_accuracy"] <= 1 and str(head["C"]) in head["validation_accuracy_by_C"]
    assert (checkpoint / "goal_head.json").is_file() and pipeline.generator.goal_head is not None
    # The tiny recipe decodes its topic step, so no topic classifier; with the scored step the
    # package stage's fit writes one for this generator, which then loads with it.
    assert rec_done["metrics"]["topic_head"] == {} and not (checkpoint / "topic_head.json").exists()
    from train import package
    from train.common import StageContext

    scored = load_config(TINY, overrides=[f"data.data_dir={data_dir}", f"output_dir={out}", "conv.topic_choice=scored", "conv.topic_head_dialogues=40"])
    topic = package.fit_topic_head(StageContext(scored), checkpoint, progress=False)
    if "skipped" not in topic:  # a tiny generator may leave too few named candidates to fit on
        assert topic["train_candidates"] > 0 and 0 <= topic["validation_topic_f1"] <= 1 and 0.05 <= topic["threshold"] <= 0.7
        assert CRS.from_pretrained(checkpoint).generator.topic_head is not None
        (checkpoint / "topic_head.json").unlink()
    reply = pipeline.respond([{"role": "user", "content": "I loved The Matrix [REC] </s>"}])
    assert reply.text and reply.ranking and "The Matrix (1999)" not in [model.catalogue.by_id(m).display_name for m, _ in reply.ranking]
    config = load_config(overrides=[f"data.data_dir={data_dir}", "eval.limit=30"])
    evaluate(config, ["popularity", f"tiny={checkpoint}"], "test", ["rec", "conv"], tmp_path / "report", progress=False)
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert set(metrics["rec"]) == {"popularity", "tiny"}
    conv = metrics["conv"]["tiny"]  # popularity has no generator: no conv row
    assert set(metrics["conv"]) == {"tiny"} and conv["turns"] > 0 and 1 < conv["perplexity"] < vocab
    assert metrics["meta"]["inference_precision"] == "fp32"  # the harness's default arithmetic, recorded
    assert 0 <= conv["item_ratio"] <= 1 and 0 <= conv["goal_accuracy"] <= 1
    assert 0 < conv["gold"]["distinct2_ratio"] <= 1
    assert "Sample replies: tiny" in (tmp_path / "report" / "report.md").read_text()
    assert metrics["rec"]["tiny"]["standard"]["count"] == metrics["rec"]["popularity"]["standard"]["count"] > 0

    # The seeker stage trains the learned simulated seeker's generator on the swapped roles, into a
    # folder the harness's learned simulator loads; the interactive task plays through the chat.
    train_main(["seeker", "--quiet", "--config", TINY, "--data-dir", str(data_dir), "--output-dir", str(out)])
    seeker = json.loads((out / "seeker" / "done.json").read_text())["metrics"]
    assert seeker["exemplars"] == 0 and 1 < seeker["valid_reply_perplexity"] < vocab
    assert seeker["goal_distribution_train"]["recommend"] < conv_stage["goal_distribution_train"]["recommend"]  # seekers name fewer new movies
    config = load_config(overrides=[f"data.data_dir={data_dir}", "eval.limit=4"])
    evaluate(config, ["popularity", f"tiny={checkpoint}"], "test", ["interactive"], tmp_path / "interactive", progress=False,
             simulators=("rule", "learned"), max_turns=2, seeker_model=out / "seeker" / "checkpoint")
    interactive = json.loads((tmp_path / "interactive" / "metrics.json").read_text())["interactive"]
    assert set(interactive) == {"popularity", "tiny"} and all(set(runs) == {"rule", "learned"} for runs in interactive.values())
    for runs in interactive.values():
        for summary in runs.values():
            assert summary["conversations"] > 0 and summary["leaked_turns"] == 0
            assert 0 <= summary["success@1"] <= summary["success@2"] <= 1

    # conv-prompt: the KG-conditioned prompt (phase 1 with the generator frozen, then phase 2 with
    # everything tuned) and LoRA, each phase a servable checkpoint the harness and the chat load.
    import torch
    from safetensors.torch import load_file

    from crs.config import PromptConfig
    from crs.io import CheckpointFileError
    from crs.data.context import DialogueContext
    from crs.data.redial import SEEKER, Turn
    from crs.gen.prompting import PromptedLM

    # prompt.rec_input keeps the recommender with the prompt's state only when it beats the one without
    # it on validation; on these few tiny turns that is chance, so phase 1 keeps it and phase 2 does
    # not, whatever the scores (train.prompt.keeps_rec_input is tested on its own).
    import train.prompt

    decisions = iter([True, False])
    monkeypatch.setattr(train.prompt, "keeps_rec_input", lambda before, after: next(decisions))
    for kind, phases in (("kg", 2), ("lora", 1)):
        train_main(["conv-prompt", "--quiet", "--config", TINY, "--data-dir", str(data_dir), "--output-dir", str(out),
                    f"prompt.kind={kind}", f"prompt.phases={phases}", "prompt.loop.max_steps=2", "prompt.tune_loop.max_steps=2",
                    f"prompt.rec_input={kind == 'kg'}", "prompt.rec_loop.epochs=1", "prompt.rec_loop.max_steps=3"])
    prompted = json.loads((out / "conv-prompt" / "kg-prefix" / "metrics.json").read_text())
    assert 0 < prompted["phase1"]["trainable_parameters"] < prompted["phase1"]["parameters"]
    assert prompted["phase2"]["trainable_parameters"] == prompted["phase2"]["parameters"]
    base = load_file(str(out / "pretrain-lm" / "lm" / "model.safetensors"))
    weights = {phase: load_file(str(out / "conv-prompt" / "kg-prefix" / phase / "parts" / "generator" / "model.safetensors"))
               for phase in ("phase1", "phase2")}
    assert all(torch.equal(base[k], weights["phase1"][k]) for k in base)  # phase 1 left the generator as it was
    assert not all(torch.equal(base[k], weights["phase2"][k]) for k in base)
    # prompt.rec_input: each phase's recommender takes the prompt's state through a new projection,
    # the only recommender weights that trained, when that beats the recommender without it on validation.
    before = load_file(str(checkpoint / "recommender.safetensors"))
    kept = []
    for phase in ("phase1", "phase2"):
        record = prompted[phase]["rec_input"]
        assert record["state_dim"] == PromptConfig().encoder_dim and record["trainable_parameters"] > 0 and "new_items_recall@10" in record["valid_after"]
        assert record["kept"] == (phase == "phase1")
        folder = out / "conv-prompt" / "kg-prefix" / phase / "checkpoint"
        after = load_file(str(folder / "recommender.safetensors"))
        if not record["kept"]:  # the base checkpoint's recommender, as it was
            assert set(after) == set(before) and all(torch.equal(before[k], after[k]) for k in before)
            assert not json.loads((folder / "config.json").read_text())["paradigm"]["rec_input"]
            continue
        kept.append(folder)
        projection = {"rec_state_projection.weight", "rec_state_projection.bias"}
        assert set(after) == set(before) | projection  # the tiny recommender took the [REC] state: the prompt's replaces it
        assert all(torch.equal(before[k], after[k]) for k in set(before) - projection)
        assert after["rec_state_projection.weight"].abs().sum() > 0
        rec = json.loads((folder / "config.json").read_text())["crs_config"]["rec"]
        assert rec["rec_state_source"] == "prompt" and rec["rec_state_dim"] == record["state_dim"]
        paradigm = json.loads((folder / "config.json").read_text())["paradigm"]
        assert paradigm["rec_input"] and paradigm["name"].endswith("the prompt's state a recommender input")
        served = CRS.from_pretrained(folder)  # its recommender reads the KG prompt's state from its generator
        contexts = [DialogueContext(turns=[Turn(SEEKER, text, [])]) for text in ("I love horror films", "a comedy please")]
        assert served.recommender.rec_state(contexts).shape == (2, PromptConfig().encoder_dim)
        assert served.respond([{"role": "user", "content": "Something scary like Alien (1979)?"}]).ranking
        (folder / "prompt").rename(tmp_path / "prompt-aside")  # the recommender reads a prompt the checkpoint lacks
        with pytest.raises(CheckpointFileError, match="config.json.*no KG-conditioned prompt"):
            CRS.from_pretrained(folder)
        (tmp_path / "prompt-aside").rename(folder / "prompt")
    assert len(kept) == 1
    for folder, prompt_class in ((out / "conv-prompt" / "kg-prefix" / "phase2" / "checkpoint", PromptedLM),
                                 (out / "conv-prompt" / "lora" / "phase1" / "checkpoint", None)):
        served = CRS.from_pretrained(folder)
        assert (prompt_class is None) == (served.generator.prompt is None)
        if prompt_class is not None:
            assert isinstance(served.generator.model, prompt_class) and served.generator.entity_source is not None
        reply = served.respond([{"role": "user", "content": "I loved The Matrix, anything like it?"}])
        assert reply.text and reply.ranking
    lora_dir = out / "conv-prompt" / "lora" / "phase1" / "checkpoint"
    assert (lora_dir / "prompt" / "adapter_config.json").is_file()
    config = load_config(overrides=[f"data.data_dir={data_dir}", "eval.limit=3"])
    evaluate(config, [f"prompt={out / 'conv-prompt' / 'kg-prefix' / 'phase2' / 'checkpoint'}"], "test", ["conv"], tmp_path / "prompt-report",
             progress=False)
    report = json.loads((tmp_path / "prompt-report" / "metrics.json").read_text())
    assert report["conv"]["prompt"]["turns"] > 0
    paradigm = report["paradigms"]["prompt"]  # the harness says how the generator was trained
    suffix = ", the prompt's state a recommender input" if prompted["phase2"]["rec_input"]["kept"] else ""
    assert paradigm["name"] == "prompt+PTM tuning (kg-prefix)" + suffix and paradigm["trainable_parameters"] == paradigm["parameters"] > 0
    assert "## Paradigms" in (tmp_path / "prompt-report" / "report.md").read_text()

    # The recipe's cool-down (kind none in the recipe): phase 1, the base untouched, is neither scored
    # nor saved; phase 2 tunes every weight from the conv-fixed-prompt generator with a decaying rate.
    train_main(["conv-prompt", "--quiet", "--config", TINY, "--data-dir", str(data_dir), "--output-dir", str(out),
                "prompt.kind=none", "prompt.phases=2", "prompt.in_recipe=true", "prompt.base=conv", "prompt.tune_loop.max_steps=2",
                "prompt.tune_loop.schedule=linear"])
    cooled = json.loads((out / "conv-prompt" / "none" / "metrics.json").read_text())
    assert cooled["phase1"] == {"trainable_parameters": 0} and not (out / "conv-prompt" / "none" / "phase1").exists()
    assert cooled["phase2"]["trainable_parameters"] == cooled["generator_parameters"] and cooled["phase2"]["valid_reply_perplexity"] > 1
    tuned = load_file(str(out / "conv-prompt" / "none" / "phase2" / "parts" / "generator" / "model.safetensors"))
    before = load_file(str(out / "conv-fixed-prompt" / "generator" / "model.safetensors"))
    assert set(tuned) == set(before) and not all(torch.equal(before[k], tuned[k]) for k in before)


def test_package_halves_an_older_fp32_recommender_file(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from train.package import halve_recommender

    save_file({"w": torch.ones(3, dtype=torch.float32), "ids": torch.arange(3)}, str(tmp_path / "recommender.safetensors"))
    assert halve_recommender(tmp_path)
    weights = load_file(str(tmp_path / "recommender.safetensors"))
    assert weights["w"].dtype == torch.float16 and weights["ids"].dtype == torch.int64 and weights["w"].tolist() == [1, 1, 1]
    assert not halve_recommender(tmp_path)  # already fp16: left alone


@pytest.mark.slow
def test_rec_stage_trains_an_ensemble_whose_scores_average_its_networks(data_dir, tmp_path):
    import numpy as np
    import torch

    from crs.config import ConfigError
    from crs.data.context import DialogueContext
    from crs.data.redial import SEEKER, Turn
    from crs.io import CheckpointFileError

    out = tmp_path / "run"
    train_main(["rec", "--quiet", "--config", TINY, "--data-dir", str(data_dir), "--output-dir", str(out),
                "rec.ensemble=2", "rec.use_rec_state=false", "rec.repeat_gate=false", "rec.seeker_targets=true"])
    checkpoint = out / "checkpoint"
    metrics = json.loads((checkpoint / "metrics.json").read_text())
    assert metrics["seeker_turns"] > 0  # the seeker's turns that name movies trained the networks too
    assert metrics["ensemble"]["networks"] == 2 and len(metrics["ensemble"]["members"]) == 1
    assert (checkpoint / "ensemble" / "member-1.safetensors").is_file()
    assert (out / "rec" / "loop-member-1").is_dir()  # the member's own loop state: a rerun resumes it

    model = KGTextRecommender.from_pretrained(checkpoint)
    assert len(model.members) == 1 and model.repeat_gate is None and model.neighbours is None
    first, second = model.model.item_bias, model.members[0].item_bias
    assert not torch.equal(first, second)  # another seed: another network
    assert model.members[0].encoder.edge_index is model.model.encoder.edge_index  # one copy of what they share
    contexts = [DialogueContext(turns=[Turn(SEEKER, "I loved The Matrix, anything like it?", [])]),
                DialogueContext(turns=[Turn(SEEKER, "Something funny with Tom Hanks please", [])])]
    scores = model.score_batch(contexts)
    members = model.members
    model.members = []
    alone = model.score_batch(contexts)
    model.members, model.model = [], members[0]
    model.refresh()
    other = model.score_batch(contexts)

    def log(s):
        return torch.log_softmax(torch.as_tensor(s), dim=-1).numpy()

    assert np.allclose(scores, (log(alone) + log(other)) / 2, atol=1e-5)

    with pytest.raises(ConfigError, match="tune_top_layers"):  # the networks would share one tuned encoder top
        train_main(["rec", "--quiet", "--config", TINY, "--data-dir", str(data_dir), "--output-dir", str(tmp_path / "other"),
                    "rec.ensemble=2", "rec.use_text=true", "text.tune_top_layers=1"])

    (checkpoint / "ensemble" / "member-1.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="member-1.safetensors"):
        KGTextRecommender.from_pretrained(checkpoint)
    (checkpoint / "ensemble" / "member-1.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(CheckpointFileError, match="member-1.safetensors"):
        KGTextRecommender.from_pretrained(checkpoint)
