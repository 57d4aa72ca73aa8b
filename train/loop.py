"""The one training loop every stage shares (devices and processes through accelerate).

A stage hands over a model whose ``forward(**batch)`` returns an output with ``.loss``, a function
that yields the batches of an epoch, and a validation function returning metrics (higher is
better for ``score_key``). The loop keeps the best weights (early stopping on validation), and
after every epoch writes a resumable state atomically: a rerun after an interruption continues
from the last finished epoch, and a finished stage is not trained again.

Files in ``run_dir``: ``best.safetensors`` (best weights), ``state/`` (last epoch's weights,
optimizer, loop counters), ``history.json`` (per-epoch loss and validation metrics).

``config.precision`` picks the arithmetic: fp32, or bf16 autocast through accelerate (the weights
and optimizer stay fp32, so saved weights are fp32; validation runs under the same autocast).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import send_to_device, set_seed
from safetensors.torch import load_model, save_model
from tqdm.auto import tqdm

from crs.config import TrainLoopConfig
from crs.io import atomic_dir, write_json

logger = logging.getLogger(__name__)


@dataclass
class LoopState:
    epoch: int = 0  # epochs finished
    step: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    finished: bool = False
    history: list[dict] = field(default_factory=list)


@dataclass
class LoopResult:
    best_score: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: list[dict]


def _save_state(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: LoopState) -> None:
    with atomic_dir(run_dir / "state") as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")  # training state only, loaded with weights_only
        write_json(tmp / "loop.json", asdict(state))


def _load_state(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> LoopState | None:
    state_dir = run_dir / "state"
    if not (state_dir / "loop.json").is_file():
        return None
    load_model(model, str(state_dir / "model.safetensors"))
    optimizer.load_state_dict(torch.load(state_dir / "optimizer.pt", weights_only=True))
    return LoopState(**json.loads((state_dir / "loop.json").read_text()))


def bf16_supported() -> bool:
    """Whether bf16 autocast runs natively here: a CUDA device with bf16, else a CPU with AVX512-BF16 or AMX."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):  # private torch probes; absent: unknown
        if getattr(cpu, probe, lambda: False)():
            return True
    return torch.backends.cpu.get_cpu_capability().upper().startswith("AMX")


def resolve_precision(precision: str) -> str:
    """``fp32`` or ``bf16``: ``auto`` becomes bf16 where :func:`bf16_supported`."""
    if precision == "auto":
        return "bf16" if bf16_supported() else "fp32"
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32, bf16 or auto (got {precision!r})")
    return precision


def make_accelerator(config: TrainLoopConfig) -> Accelerator:
    """The accelerator of a loop config: bf16 autocast (fp32 master weights) or plain fp32.

    accelerate keeps one process-wide state whose precision cannot change once set; stages of one
    process (``python -m train all``) may differ, so a state of another precision is reset first
    (the device and process group, PartialState, are kept)."""
    mixed = "bf16" if resolve_precision(config.precision) == "bf16" else "no"
    if AcceleratorState._shared_state and AcceleratorState().mixed_precision != mixed:
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=mixed)


def run_loop(
    model: torch.nn.Module,
    batches: Callable[[int], Iterable[dict]],
    validate: Callable[[torch.nn.Module], dict[str, float]],
    score_key: str,
    config: TrainLoopConfig,
    run_dir: str | Path,
    desc: str = "train",
    seed: int = 0,
    progress: bool = True,
    accelerator: Accelerator | None = None,
) -> LoopResult:
    """Train ``model`` in place; on return it holds the best validation weights."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    accelerator = accelerator or make_accelerator(config)
    # A model may ask for parameter groups of its own (e.g. a smaller rate for pretrained layers).
    groups = model.param_groups(config.lr) if hasattr(model, "param_groups") else [{"params": [p for p in model.parameters() if p.requires_grad]}]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    logger.info("%s: training on %s, mixed precision %s", desc, accelerator.device, accelerator.mixed_precision)
    state = _load_state(run_dir, accelerator.unwrap_model(model), optimizer) or LoopState()
    for group in optimizer.param_groups:  # saved with the optimizer state, so a resumed run keeps it
        group.setdefault("base_lr", group["lr"])
    if state.epoch:
        logger.info("%s: resuming after epoch %d (best %s %.4f at epoch %d)", desc, state.epoch, score_key, state.best_score, state.best_epoch)

    while not state.finished and state.epoch < config.epochs:
        epoch = state.epoch + 1
        set_seed(seed + epoch)  # the same batches whether or not the run was interrupted
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * config.lr_decay ** (epoch - 1)
        model.train()
        total, count = 0.0, 0
        bar = tqdm(batches(epoch), desc=f"{desc} epoch {epoch}/{config.epochs}", unit="batch", disable=not progress, leave=False)
        for batch in bar:
            output = model(**send_to_device(batch, accelerator.device))
            if not torch.isfinite(output.loss):
                raise FloatingPointError(f"{desc}: loss became {output.loss.item()} at epoch {epoch}, step {state.step}")
            accelerator.backward(output.loss)
            if config.grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            total, count = total + output.loss.item(), count + 1
            bar.set_postfix(loss=f"{total / count:.4f}")
            if config.max_steps and state.step >= config.max_steps:
                break
        bar.close()
        model.eval()
        with torch.no_grad():
            metrics = validate(accelerator.unwrap_model(model))
        score = metrics[score_key]
        state.history.append({"epoch": epoch, "train_loss": total / max(count, 1), "lr": optimizer.param_groups[0]["lr"], **metrics})
        state.epoch = epoch
        if score > state.best_score:
            state.best_score, state.best_epoch, state.bad_epochs = score, epoch, 0
            save_model(accelerator.unwrap_model(model), str(run_dir / ".best.tmp.safetensors"))
            (run_dir / ".best.tmp.safetensors").replace(run_dir / "best.safetensors")
        else:
            state.bad_epochs += 1
        logger.info("%s epoch %d: train loss %.4f, valid %s %.4f (best %.4f at %d)", desc, epoch, total / max(count, 1), score_key, score, state.best_score, state.best_epoch)
        state.finished = state.bad_epochs >= config.patience or bool(config.max_steps and state.step >= config.max_steps)
        _save_state(run_dir, accelerator.unwrap_model(model), optimizer, state)

    state.finished = True
    _save_state(run_dir, accelerator.unwrap_model(model), optimizer, state)
    write_json(run_dir / "history.json", state.history)
    if (run_dir / "best.safetensors").is_file():
        load_model(accelerator.unwrap_model(model), str(run_dir / "best.safetensors"))
    return LoopResult(
        best_score=state.best_score,
        best_epoch=state.best_epoch,
        epochs_run=state.epoch,
        stopped_early=state.bad_epochs >= config.patience,
        history=state.history,
    )
