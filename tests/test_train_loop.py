import json
import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from crs.config import TrainLoopConfig
from train.loop import run_loop


@dataclass
class Out:
    loss: torch.Tensor


class Regression(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x, y):
        return Out(loss=nn.functional.mse_loss(self.linear(x).squeeze(-1), y))


def data():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, generator=generator)
    return x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3


def batches_of(x, y):
    def batches(epoch):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 32):
            index = order[start : start + 32]
            yield {"x": x[index], "y": y[index]}

    return batches


def validate_on(x, y):
    return lambda model: {"neg_mse": -nn.functional.mse_loss(model.linear(x).squeeze(-1), y).item()}


def test_loss_falls_and_best_weights_are_kept(tmp_path):
    torch.manual_seed(0)
    x, y = data()
    model = Regression()
    result = run_loop(model, batches_of(x, y), validate_on(x, y), "neg_mse", TrainLoopConfig(epochs=5, lr=0.05, patience=5), tmp_path, progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] / 5
    assert result.best_score == max(h["neg_mse"] for h in result.history)
    assert validate_on(x, y)(model)["neg_mse"] == pytest.approx(result.best_score)
    assert (tmp_path / "best.safetensors").is_file() and json.loads((tmp_path / "history.json").read_text()) == result.history
    # Each epoch records its training speed: 256 examples in 8 batches, no token ids.
    for epoch in result.history:
        assert epoch["train_seconds"] > 0 and epoch["samples_per_second"] == pytest.approx(256 / epoch["train_seconds"], rel=0.01)
        assert "tokens_per_second" not in epoch


def test_token_batches_count_their_tokens():
    from train.loop import batch_counts

    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert batch_counts({"input_ids": torch.zeros(2, 4, dtype=torch.long), "attention_mask": mask}) == (2, 5)
    assert batch_counts({"input_ids": torch.zeros(3, 4, dtype=torch.long)}) == (3, 12)
    assert batch_counts({"x": torch.zeros(5, 3)}) == (5, 0)


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    x, y = data()
    torch.manual_seed(0)
    straight = run_loop(Regression(), batches_of(x, y), validate_on(x, y), "neg_mse", TrainLoopConfig(epochs=3, lr=0.05, patience=5), tmp_path / "a", progress=False)
    torch.manual_seed(0)
    first = run_loop(Regression(), batches_of(x, y), validate_on(x, y), "neg_mse", TrainLoopConfig(epochs=1, lr=0.05, patience=5), tmp_path / "b", progress=False)
    assert first.epochs_run == 1
    state = json.loads((tmp_path / "b" / "state" / "loop.json").read_text())
    state["finished"] = False  # as if the process had died after epoch 1
    (tmp_path / "b" / "state" / "loop.json").write_text(json.dumps(state))
    resumed = run_loop(Regression(), batches_of(x, y), validate_on(x, y), "neg_mse", TrainLoopConfig(epochs=3, lr=0.05, patience=5), tmp_path / "b", progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.history[-1]["neg_mse"] == pytest.approx(straight.history[-1]["neg_mse"], rel=1e-4)
    # A finished run is not trained again.
    again = run_loop(Regression(), batches_of(x, y), validate_on(x, y), "neg_mse", TrainLoopConfig(epochs=3, lr=0.05, patience=5), tmp_path / "b", progress=False)
    assert again.history == resumed.history


def test_learning_rate_decays_per_epoch_and_survives_a_resume(tmp_path):
    x, y = data()
    config = TrainLoopConfig(epochs=3, lr=0.04, lr_decay=0.5, patience=5)
    first = run_loop(Regression(), batches_of(x, y), validate_on(x, y), "neg_mse", TrainLoopConfig(epochs=2, lr=0.04, lr_decay=0.5, patience=5), tmp_path, progress=False)
    assert [h["lr"] for h in first.history] == [0.04, 0.02]
    state = json.loads((tmp_path / "state" / "loop.json").read_text())
    state["finished"] = False
    (tmp_path / "state" / "loop.json").write_text(json.dumps(state))
    resumed = run_loop(Regression(), batches_of(x, y), validate_on(x, y), "neg_mse", config, tmp_path, progress=False)
    assert [h["lr"] for h in resumed.history] == [0.04, 0.02, 0.01]


def test_early_stopping_and_nan_guard(tmp_path):
    x, y = data()
    flat = run_loop(Regression(), batches_of(x, y), lambda m: {"s": 0.0}, "s", TrainLoopConfig(epochs=10, lr=0.01, patience=2), tmp_path / "a", progress=False)
    assert flat.epochs_run == 3 and flat.stopped_early  # best at epoch 1, then two epochs without gain

    def nan_batches(epoch):
        yield {"x": x[:4], "y": torch.full((4,), float("nan"))}

    with pytest.raises(FloatingPointError, match="loss became nan"):
        run_loop(Regression(), nan_batches, lambda m: {"s": 0.0}, "s", TrainLoopConfig(epochs=1), tmp_path / "b", progress=False)


def test_a_minutes_budget_ends_training_mid_epoch_and_counts_across_resumes(tmp_path, monkeypatch):
    from train import loop

    clock = [0.0]  # a clock that moves 10 s per batch, so the budget is met after a known step

    class FakeTime:
        @staticmethod
        def perf_counter():
            return clock[0]

    monkeypatch.setattr(loop, "time", FakeTime)
    x, y = data()

    def ticking(epoch):
        for batch in batches_of(x, y)(epoch):  # 8 batches an epoch
            clock[0] += 10.0
            yield batch

    result = run_loop(Regression(), ticking, validate_on(x, y), "neg_mse", TrainLoopConfig(epochs=5, lr=0.05, patience=5, max_minutes=1),
                      tmp_path, progress=False)
    state = json.loads((tmp_path / "state" / "loop.json").read_text())
    assert result.epochs_run == 1 and state["step"] == 6 and state["train_seconds"] == 60.0  # 6 batches of 10 s
    assert "neg_mse" in result.history[0]  # the shortened epoch was validated
    state["finished"] = False  # resumed with a larger budget: the 60 s already spent count
    (tmp_path / "state" / "loop.json").write_text(json.dumps(state))
    resumed = run_loop(Regression(), ticking, validate_on(x, y), "neg_mse", TrainLoopConfig(epochs=5, lr=0.05, patience=5, max_minutes=2),
                       tmp_path, progress=False)
    state = json.loads((tmp_path / "state" / "loop.json").read_text())
    assert resumed.epochs_run == 2 and state["step"] == 12 and state["train_seconds"] == 120.0


def test_a_cosine_schedule_decays_per_step_to_zero_and_continues_after_a_crash(tmp_path):
    x, y = data()
    config = TrainLoopConfig(epochs=3, lr=0.05, patience=5, schedule="cosine", warmup_fraction=0.1)
    torch.manual_seed(0)
    straight = run_loop(Regression(), batches_of(x, y), validate_on(x, y), "neg_mse", config, tmp_path / "a", progress=False)
    # 8 steps an epoch, 24 planned, 2 of warm-up: the rate after each epoch is the cosine's at that step.
    expected = [0.05 * 0.5 * (1 + math.cos(math.pi * (step - 2) / 22)) for step in (8, 16, 24)]
    assert [h["lr"] for h in straight.history] == pytest.approx(expected, abs=1e-9)
    assert straight.history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)

    def crashing(epoch):  # the process dies in the middle of epoch 2
        for index, batch in enumerate(batches_of(x, y)(epoch)):
            if epoch == 2 and crashing.armed and index == 3:
                raise KeyboardInterrupt
            yield batch

    crashing.armed = True
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        run_loop(Regression(), crashing, validate_on(x, y), "neg_mse", config, tmp_path / "b", progress=False)
    crashing.armed = False
    resumed = run_loop(Regression(), crashing, validate_on(x, y), "neg_mse", config, tmp_path / "b", progress=False)
    assert [h["lr"] for h in resumed.history] == pytest.approx(expected, abs=1e-9)
    assert resumed.history[-1]["neg_mse"] == pytest.approx(straight.history[-1]["neg_mse"], rel=1e-4)


def test_a_schedule_with_a_per_epoch_decay_is_refused():
    from crs.config import ConfigError

    with pytest.raises(ConfigError, match="lr_decay"):
        TrainLoopConfig(schedule="cosine", lr_decay=0.5).check("conv.loop")
    with pytest.raises(ConfigError, match="schedule"):
        TrainLoopConfig(schedule="step").check("conv.loop")


def test_a_wsd_schedule_holds_the_rate_then_decays_it_over_the_last_fraction(tmp_path):
    x, y = data()
    config = TrainLoopConfig(epochs=4, lr=0.05, patience=5, schedule="wsd", decay_fraction=0.5)
    result = run_loop(Regression(), batches_of(x, y), validate_on(x, y), "neg_mse", config, tmp_path, progress=False)
    # 8 steps an epoch, 32 planned: held for 16, then linear to 0 over the last 16.
    assert [h["lr"] for h in result.history] == pytest.approx([0.05, 0.05, 0.025, 0.0], abs=1e-9)
