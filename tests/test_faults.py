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
