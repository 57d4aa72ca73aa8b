"""Faults name their cause: a missing, truncated or mismatched checkpoint file is named with what is
wrong with it, in the error, the UI's note and /chat's reply or notice; a broken generator leaves
the recommender serving with template replies, and says so."""

from __future__ import annotations

import json
import shutil

import pytest

from crs.io import CheckpointFileError, verify_files


@pytest.fixture
def broken(checkpoint_dir, tmp_path):
    """A private copy of the bundled checkpoint to break."""
    folder = tmp_path / "checkpoint"
    shutil.copytree(checkpoint_dir, folder)
    return folder


def truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_verify_files_names_the_missing_truncated_or_garbled_file(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.ones(64, 64)}, str(tmp_path / "weights.safetensors"))
    (tmp_path / "meta.json").write_text('{"ok": true}')
    verify_files(tmp_path, ["meta.json"])
    with pytest.raises(CheckpointFileError, match=r"missing\.json: missing"):
        verify_files(tmp_path, ["missing.json"])
    truncate(tmp_path / "weights.safetensors")
    with pytest.raises(CheckpointFileError, match=r"weights\.safetensors: corrupt or truncated"):
        verify_files(tmp_path)
    (tmp_path / "weights.safetensors").unlink()
    (tmp_path / "meta.json").write_text('{"ok": tr')
    with pytest.raises(CheckpointFileError, match=r"meta\.json: corrupt: not valid JSON"):
        verify_files(tmp_path)


@pytest.mark.slow
def test_a_truncated_recommender_file_is_named_in_the_note_and_the_chat_reply(broken):
    from crs.serve.chat import NO_MODEL_MESSAGE
    from crs.serve.models import Models
    from crs.ui import api

    truncate(broken / "recommender.safetensors")
    models = Models.load(broken, with_ranker=False)
    assert models.pipeline is None
    assert "recommender.safetensors: corrupt or truncated" in models.note and str(broken) in models.note
    answer = api.chat(models, "I loved Heat", None)
    assert "recommender.safetensors: corrupt or truncated" in answer["reply"]
    assert NO_MODEL_MESSAGE.split("(")[0] not in answer["reply"]  # not "no model is installed": one file is broken


def test_a_garbled_graph_file_is_named(broken):
    from crs.rec.kg_text import KGTextRecommender

    (broken / "kg" / "entities.json").write_text('{"names": ["a", ')
    with pytest.raises(CheckpointFileError, match=r"kg/entities\.json: corrupt: not valid JSON"):
        KGTextRecommender.from_pretrained(broken)


def test_a_garbled_plot_words_file_is_named(broken):
    from crs.rec.kg_text import KGTextRecommender

    (broken / "kg" / "plot_words.json").write_text('{"plain": ["a"], "lowercase": 3}')
    with pytest.raises(CheckpointFileError, match=r"kg/plot_words\.json: corrupt: expected"):
        KGTextRecommender.from_pretrained(broken)


@pytest.mark.slow
def test_a_recommender_file_of_another_shape_than_config_json_is_named(broken):
    from crs.rec.kg_text import KGTextRecommender

    meta = json.loads((broken / "config.json").read_text())
    meta["crs_config"]["rgcn"]["dim"] = 2 * meta["crs_config"]["rgcn"]["dim"]
    (broken / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointFileError, match=r"recommender\.safetensors: shape mismatch with config\.json \(size mismatch"):
        KGTextRecommender.from_pretrained(broken)


def test_generator_faults_are_named(broken):
    from crs.serve.pipeline import load_generator

    truncate(broken / "generator" / "model.safetensors", 0.01)
    with pytest.raises(CheckpointFileError, match=r"generator/model\.safetensors: corrupt or truncated"):
        load_generator(broken)
    shutil.rmtree(broken / "generator")
    (broken / "generator").mkdir()  # emptied
    with pytest.raises(CheckpointFileError, match=r"generator/config\.json: missing"):
        load_generator(broken)
    shutil.rmtree(broken / "generator")
    with pytest.raises(FileNotFoundError, match=r"generator: missing"):
        load_generator(broken)


def test_a_broken_goal_classifier_is_named_and_the_recommender_keeps_serving(broken):
    from crs.serve.pipeline import CRS, load_generator

    assert load_generator(broken).goal_head is not None  # the bundled checkpoint ships one
    truncate(broken / "goal_head.json")
    with pytest.raises(ValueError, match=r"goal_head\.json"):
        load_generator(broken)
    pipeline = CRS.from_pretrained(broken)
    assert pipeline.generator is None and "goal_head.json" in pipeline.generator_note
    (broken / "goal_head.json").unlink()  # none: the goal step is decoded, as before the classifier
    assert load_generator(broken).goal_head is None


def test_a_broken_topic_classifier_is_named_and_the_recommender_keeps_serving(broken):
    from crs.serve.pipeline import CRS, load_generator

    assert load_generator(broken).topic_head is not None  # the bundled checkpoint ships one
    truncate(broken / "topic_head.json")
    with pytest.raises(ValueError, match=r"topic_head\.json"):
        load_generator(broken)
    pipeline = CRS.from_pretrained(broken)
    assert pipeline.generator is None and "topic_head.json" in pipeline.generator_note
    (broken / "topic_head.json").unlink()  # none: the none bias decides the topic step, as before the classifier
    assert load_generator(broken).topic_head is None


def test_a_generator_config_that_does_not_fit_its_weights_is_a_shape_mismatch(broken):
    from crs.serve.pipeline import load_generator

    config = json.loads((broken / "generator" / "config.json").read_text())
    config["n_embd"] = config["n_embd"] // 2
    (broken / "generator" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointFileError, match=r"generator: shape mismatch with config\.json"):
        load_generator(broken)


@pytest.mark.slow
def test_without_its_generator_the_chat_keeps_recommending_and_says_why(broken):
    from crs.serve.models import Models
    from crs.ui import api

    truncate(broken / "generator" / "model.safetensors", 0.3)
    models = Models.load(broken, with_ranker=False)
    assert models.pipeline is not None and models.pipeline.generator is None
    assert "generator/model.safetensors: corrupt or truncated" in models.pipeline.generator_note
    first = api.chat(models, "I loved The Matrix, anything similar?", None)
    assert first["movies"] and first["reply"]  # the recommender serves, with a template reply
    assert "generator/model.safetensors" in first["notice"]
    second = api.chat(models, "something else", first["history"])
    assert second["movies"] and second["notice"] == ""  # said once per conversation


@pytest.mark.slow
def test_a_stage_killed_mid_epoch_resumes_from_its_last_epoch(data_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    out = tmp_path / "run"
    command = [sys.executable, "-m", "train", "pretrain-kg", "--quiet", "--config", str(repo / "configs" / "tiny.yaml"),
               "--data-dir", str(data_dir), "--output-dir", str(out),
               # whole epochs of a few large batches: each step runs the R-GCN over the whole graph
               "pretrain_kg.loop.epochs=3", "pretrain_kg.loop.max_steps=0", "pretrain_kg.loop.patience=10",
               "pretrain_kg.loop.batch_size=32768"]
    state = out / "pretrain-kg" / "loop" / "state" / "loop.json"
    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not state.is_file() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, "the stage ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)  # during epoch 2: epoch 1's state is on disk
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    first = json.loads(state.read_text())
    assert first["epoch"] == 1 and not (out / "pretrain-kg" / "done.json").exists()
    rerun = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming after epoch 1" in rerun.stderr
    history = json.loads((out / "pretrain-kg" / "loop" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3] and history[0] == first["history"][0]  # epoch 1 kept, not trained again


def test_a_truncated_and_garbled_redial_file_loads_the_rest_and_names_the_lines(data_dir, tmp_path):
    from crs.data.redial import load_dialogues

    lines = (data_dir / "redial" / "test_data.jsonl").read_bytes().splitlines()[:6]
    broken = tmp_path / "test_data.jsonl"
    # Line 3 garbled (bytes that are not UTF-8 inside the JSON), the last line cut off mid-record.
    lines[2] = lines[2][:40] + b"\xff\xfe\x00garbage" + lines[2][40:]
    broken.write_bytes(b"\n".join(lines[:5] + [lines[5][: len(lines[5]) // 2]]))
    dialogues, report = load_dialogues(broken)
    assert len(dialogues) == report.loaded == 4 and report.malformed == 2
    assert [e.split(":")[0] for e in report.errors] == ["line 3", "line 6"]
    assert str(broken) in report.summary() and "2 malformed lines skipped" in report.summary()


def test_prompt_faults_are_named(broken):
    # A checkpoint's prompt/ (crs.gen.prompting): loaded with the generator; a truncated file, or a
    # prompt made for another generator, is named.
    from crs.config import PromptConfig
    from crs.gen.backbone import load_model
    from crs.gen.prompting import PromptedLM, build_prompt, save_prompt
    from crs.serve.pipeline import load_generator

    save_prompt(build_prompt(PromptConfig(kind="peft-prefix", virtual_tokens=4), load_model(broken / "generator")), broken / "prompt")
    assert isinstance(load_generator(broken).model, PromptedLM)
    meta = json.loads((broken / "prompt" / "prompt.json").read_text())
    (broken / "prompt" / "prompt.json").write_text(json.dumps({**meta, "layers": meta["layers"] + 1}))
    with pytest.raises(ValueError, match=r"prompt/prompt\.json: made for a"):
        load_generator(broken)
    truncate(broken / "prompt" / "prompt.safetensors")
    with pytest.raises(CheckpointFileError, match=r"prompt/prompt\.safetensors: corrupt or truncated"):
        load_generator(broken)
