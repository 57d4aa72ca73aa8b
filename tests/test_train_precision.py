"""bf16 mixed precision in the shared training loop (train.loop): a tiny GPT-2 trained in fp32 and
in bf16 from the same seed; both learn and the bf16 losses track the fp32 ones."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from crs.config import ConfigError, TrainLoopConfig
from train.loop import make_accelerator, resolve_precision, run_loop

VOCAB, LENGTH = 200, 32
# bf16 keeps 8 bits of mantissa: per-epoch mean losses of a few steps agree to a few percent.
TOLERANCE = 0.05


def sequences(count: int, seed: int) -> torch.Tensor:
    """Learnable rows: arithmetic progressions mod VOCAB with a random start and a step of 1..4."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.randint(0, VOCAB, (count, 1), generator=generator)
    step = torch.randint(1, 5, (count, 1), generator=generator)
    return (start + step * torch.arange(LENGTH)) % VOCAB


def train(precision: str, tmp_path) -> list[dict]:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=LENGTH, n_layer=2, n_embd=64, n_head=2, bos_token_id=0, eos_token_id=0))
    data, valid = sequences(256, 1), sequences(64, 2)

    def batches(epoch):
        order = torch.randperm(len(data))
        for start in range(0, len(data), 32):
            ids = data[order[start : start + 32]]
            yield {"input_ids": ids, "labels": ids}

    def validate(m):
        return {"neg_loss": -m(input_ids=valid, labels=valid).loss.float().item()}

    config = TrainLoopConfig(epochs=3, lr=3e-3, patience=3, precision=precision)
    result = run_loop(model, batches, validate, "neg_loss", config, tmp_path / precision, progress=False)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    return result.history


def test_bf16_tracks_fp32_and_both_learn(tmp_path):
    fp32, bf16 = train("fp32", tmp_path), train("bf16", tmp_path)
    for history in (fp32, bf16):
        losses = [h["train_loss"] for h in history]
        assert losses[-1] < losses[0] * 0.8
        assert -history[-1]["neg_loss"] < -history[0]["neg_loss"]
    for a, b in zip(fp32, bf16):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=TOLERANCE)
        assert b["neg_loss"] == pytest.approx(a["neg_loss"], rel=TOLERANCE)
    # A later fp32 loop in the same process gets fp32 again (accelerate's state is reset).
    assert make_accelerator(TrainLoopConfig()).mixed_precision == "no"


def test_precision_is_range_checked_and_auto_resolves():
    with pytest.raises(ConfigError, match="loop.precision"):
        TrainLoopConfig(precision="fp16").check("x.loop")
    TrainLoopConfig(precision="auto").check("x.loop")
    assert resolve_precision("auto") in ("fp32", "bf16")
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert make_accelerator(TrainLoopConfig(precision="bf16")).mixed_precision == "bf16"
