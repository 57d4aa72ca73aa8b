"""The training stages end to end on the real data, at a tiny size (text side off: the sentence
encoder's pass over the whole catalogue is what the full recipe pays for)."""

import json

import pytest

from crs.config import load_config
from crs.evaluate import run as evaluate
from crs.kg_recommender import KGTextRecommender
from train.__main__ import main as train_main

from pathlib import Path

TINY = str(Path(__file__).resolve().parent.parent / "configs" / "tiny.yaml")


@pytest.mark.data
@pytest.mark.slow
def test_all_stages_train_resume_and_evaluate(data_dir, tmp_path):
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
    config = load_config(overrides=[f"data.data_dir={data_dir}", "eval.limit=30"])
    evaluate(config, ["popularity", f"tiny={checkpoint}"], "test", ["rec"], tmp_path / "report", progress=False)
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert set(metrics["rec"]) == {"popularity", "tiny"}
    assert metrics["rec"]["tiny"]["standard"]["count"] == metrics["rec"]["popularity"]["standard"]["count"] > 0
