"""The one training loop every stage shares (devices and processes through accelerate).

A stage hands over a model whose ``forward(**batch)`` returns an output with ``.loss``, a function
that yields the batches of an epoch, and a validation function returning metrics (higher is
better for ``score_key``). The loop keeps the best weights (early stopping on validation), and
after every epoch writes a resumable state atomically: a rerun after an interruption continues
from the last finished epoch, and a finished stage is not trained again.

Files in ``run_dir``: ``best.safetensors`` (best weights), ``state/`` (last epoch's weights,
optimizer, loop counters), ``history.json`` (per-epoch loss, validation metrics and training speed:
``train_seconds``, ``samples_per_second`` and, for batches of token ids, ``tokens_per_second``).

``config.schedule`` sets the learning rate per step (cosine or linear decay after a warm-up, or
warm-up, stable and linear decay, over the planned epochs; from the step count alone, so a resumed run continues it), else per epoch
(``config.lr_decay``).

``config.precision`` picks the arithmetic: fp32, or bf16 autocast through accelerate (the weights
and optimizer stay fp32, so saved weights are fp32; validation runs under the same autocast).

Several processes (``accelerate launch --num_processes N``, one per GPU or CPU process group):
``accelerator.prepare`` wraps the model in DistributedDataParallel, so gradients are averaged over
the processes. Every process draws the same epoch of batches from ``batches(epoch)`` (the loop seeds
it alike everywhere, and in a launch the batches draw on the CPU torch generator of their own, not
the one dropout advances) and trains on its share: of each run of N consecutive batches, process
``i`` takes the ``i``-th; a last incomplete run is dropped on every process, so all take the same
number of steps. ``config.batch_size`` is thus per process: one optimizer step sees N x batch_size
examples (2 processes x 32 match 1 process x 64 when the stage's consecutive batches split one
shuffled order, as the stages' do). Validation runs on the main process and its metrics are sent
to the others, so early stopping decides alike everywhere; train_loss is the mean over all
processes' batches. Only the main process writes files; the others read ``best.safetensors`` after
a barrier. ``ranks.json`` then records every process's SHA-256 of its weights after the last
training step (they must agree; a mismatch raises).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import broadcast_object_list, gather_object, parse_flag_from_env, send_to_device, set_seed
from safetensors.torch import load_model, save_model
from tqdm.auto import tqdm

from crs.config import TrainLoopConfig
from crs.io import atomic_dir, write_json
from crs.precision import resolve_precision

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
    train_seconds: float = 0.0  # spent in training steps, over every epoch and resumed run (loop.max_minutes)


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


def process_state() -> PartialState:
    """accelerate's process-wide state: rank, number of processes, and under ``accelerate launch``
    the process group (created on first use, then shared by every ``Accelerator`` of the process).

    As ``Accelerator`` does, ``ACCELERATE_USE_CPU=1`` asks for CPU processes (a gloo group). A launch
    of several processes (``WORLD_SIZE`` > 1) on a machine where accelerate finds no GPU would
    otherwise leave each process alone, all of them writing the same files: there the processes
    form a CPU group too."""
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if state.num_processes == 1 and launched > 1:
        logger.info("%d processes launched and no GPU found: training as %d CPU processes (gloo)", launched, launched)
        AcceleratorState._reset_state(reset_partial_state=True)  # nothing was set up for one process alone
        state = PartialState(cpu=True)
    return state


def is_main_process() -> bool:
    """Whether this process writes the run's files: always in a plain run; rank 0 under ``accelerate launch``."""
    return process_state().is_main_process


def shard_batches(batches: Iterable[dict], num_processes: int, process_index: int) -> Iterator[dict]:
    """This process's share of an epoch's batches: the ``process_index``-th of every run of
    ``num_processes`` consecutive batches; a last incomplete run is dropped (on every process alike).

    With several processes the batches are drawn with a CPU torch generator state of their own,
    carried from batch to batch, so that what the model's forward passes draw in between (dropout,
    whose draws may depend on the batch's shape) cannot make the processes' batches differ."""
    if num_processes == 1:
        yield from batches
        return
    iterator, data_rng = iter(batches), torch.get_rng_state()
    while True:
        model_rng = torch.get_rng_state()
        torch.set_rng_state(data_rng)
        try:
            run = list(itertools.islice(iterator, num_processes))
        finally:
            data_rng = torch.get_rng_state()
            torch.set_rng_state(model_rng)
        if len(run) < num_processes:
            return
        yield run[process_index]


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 over a model's state (names, dtypes, shapes and bytes), to compare processes' copies."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def batch_counts(batch: dict) -> tuple[int, int]:
    """(examples, tokens) of a batch: the first tensor's leading size; the tokens are the
    attention mask's ones (or the token ids' count), 0 for a batch without token ids."""
    tensors = [value for value in batch.values() if isinstance(value, torch.Tensor) and value.dim()]
    if not tensors:
        return 0, 0
    if isinstance(batch.get("attention_mask"), torch.Tensor):
        tokens = int(batch["attention_mask"].sum())
    elif isinstance(batch.get("input_ids"), torch.Tensor):
        tokens = batch["input_ids"].numel()
    else:
        tokens = 0
    return int(tensors[0].shape[0]), tokens


def out_of_time(seconds: float, budget: float, accelerator: Accelerator) -> bool:
    """Whether ``seconds`` of training reached the ``budget``; with several processes, whether any
    process's did, so that all of them stop after the same step."""
    over = seconds >= budget
    if accelerator.num_processes > 1:
        over = bool(accelerator.reduce(torch.tensor([float(over)], device=accelerator.device), "max").item())
    return over


def count_steps(batches: Callable[[int], Iterable[dict]], num_processes: int, process_index: int) -> int:
    """Optimizer steps of one epoch in this process: the first epoch's batches, drawn once and
    counted (the loop reseeds before every epoch, so the count changes no epoch's batches)."""
    return sum(1 for _ in shard_batches(batches(1), num_processes, process_index))


def make_scheduler(config: TrainLoopConfig, optimizer: torch.optim.Optimizer, batches: Callable[[int], Iterable[dict]],
                   num_processes: int, process_index: int, step: int, desc: str) -> torch.optim.lr_scheduler.LambdaLR | None:
    """The per-step schedule of ``config.schedule`` (None for "constant"), from transformers'
    ``get_scheduler``, over the planned steps (epochs x steps per epoch, or ``max_steps`` when fewer),
    placed at ``step``: the rate follows from the step count alone, so a resumed run continues it.
    A ``max_minutes`` budget may end training before the planned steps, the rate not yet at 0."""
    if config.schedule == "constant":
        return None
    from transformers import get_scheduler

    planned = count_steps(batches, num_processes, process_index) * config.epochs
    if config.max_steps:
        planned = min(planned, config.max_steps)
    planned = max(planned, 1)
    warmup = round(config.warmup_fraction * planned)
    if config.schedule == "wsd":  # warm-up, stable, then a linear decay (transformers' get_wsd_schedule)
        decay = max(1, round(config.decay_fraction * planned))
        scheduler = get_scheduler("warmup_stable_decay", optimizer, num_warmup_steps=warmup, num_training_steps=planned,
                                  scheduler_specific_kwargs={"num_decay_steps": min(decay, planned - warmup), "decay_type": "linear"})
    else:
        scheduler = get_scheduler(config.schedule, optimizer, num_warmup_steps=warmup, num_training_steps=planned)
    # Past the planned steps (an epoch longer than the first) the rate stays at its end, not back up.
    scheduler.lr_lambdas = [lambda s, f=factor: f(min(s, planned)) for factor in scheduler.lr_lambdas]
    for group, factor in zip(optimizer.param_groups, scheduler.lr_lambdas):
        group["lr"] = group["initial_lr"] * factor(step)
    scheduler.last_epoch = step
    logger.info("%s: %s schedule over %d steps (%d of warm-up)%s", desc, config.schedule, planned, warmup, f", resumed at step {step}" if step else "")
    return scheduler


def make_accelerator(config: TrainLoopConfig) -> Accelerator:
    """The accelerator of a loop config: bf16 autocast (fp32 master weights) or plain fp32.

    accelerate keeps one process-wide state whose precision cannot change once set; stages of one
    process (``python -m train all``) may differ, so a state of another precision is reset first
    (the device and process group, PartialState, are kept)."""
    mixed = "bf16" if resolve_precision(config.precision) == "bf16" else "no"
    process_state()  # the process group first (a CPU one where a launch found no GPU)
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
    """Train ``model`` in place; on return it holds the best validation weights (on every process)."""
    run_dir = Path(run_dir)
    accelerator = accelerator or make_accelerator(config)
    main, processes = accelerator.is_main_process, accelerator.num_processes
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    # A model may ask for parameter groups of its own (e.g. a smaller rate for pretrained layers).
    groups = model.param_groups(config.lr) if hasattr(model, "param_groups") else [{"params": [p for p in model.parameters() if p.requires_grad]}]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    logger.info("%s: training on %s, mixed precision %s, %d process(es) x batch size %d", desc, accelerator.device,
                accelerator.mixed_precision, processes, config.batch_size)
    state = _load_state(run_dir, accelerator.unwrap_model(model), optimizer) or LoopState()
    for group in optimizer.param_groups:  # saved with the optimizer state, so a resumed run keeps it
        group.setdefault("base_lr", group["lr"])
    scheduler = make_scheduler(config, optimizer, batches, processes, accelerator.process_index, state.step, desc)
    if state.epoch:
        logger.info("%s: resuming after epoch %d (best %s %.4f at epoch %d)", desc, state.epoch, score_key, state.best_score, state.best_epoch)

    budget = config.max_minutes * 60
    while not state.finished and state.epoch < config.epochs:
        epoch = state.epoch + 1
        set_seed(seed + epoch)  # the same batches whether or not the run was interrupted
        if scheduler is None:
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * config.lr_decay ** (epoch - 1)
        model.train()
        total, count, samples, tokens, started = 0.0, 0, 0, 0, time.perf_counter()
        bar = tqdm(shard_batches(batches(epoch), processes, accelerator.process_index), desc=f"{desc} epoch {epoch}/{config.epochs}",
                   unit="batch", disable=not (progress and main), leave=False)
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
            if scheduler is not None:
                scheduler.step()
            total, count = total + output.loss.item(), count + 1
            batch_samples, batch_tokens = batch_counts(batch)
            samples, tokens = samples + batch_samples, tokens + batch_tokens
            bar.set_postfix(loss=f"{total / count:.4f}")
            if config.max_steps and state.step >= config.max_steps:
                break
            if budget and out_of_time(state.train_seconds + time.perf_counter() - started, budget, accelerator):
                break
        bar.close()
        seconds = time.perf_counter() - started
        state.train_seconds += seconds
        if processes > 1:  # every process's batches: the same mean everywhere
            sums = accelerator.reduce(torch.tensor([total, count, samples, tokens], dtype=torch.float64, device=accelerator.device), "sum")
            total, count, samples, tokens = sums[0].item(), int(sums[1].item()), int(sums[2].item()), int(sums[3].item())
        speed = {"train_seconds": round(seconds, 6), "samples_per_second": round(samples / max(seconds, 1e-9), 2)}
        if tokens:
            speed["tokens_per_second"] = round(tokens / max(seconds, 1e-9), 1)
        model.eval()
        metrics = None
        if main:
            with torch.no_grad():
                metrics = validate(accelerator.unwrap_model(model))
        if processes > 1:  # the main process's metrics everywhere: the same early-stopping decisions
            metrics = broadcast_object_list([metrics])[0]
        score = metrics[score_key]
        state.history.append({"epoch": epoch, "train_loss": total / max(count, 1), "lr": optimizer.param_groups[0]["lr"], **speed, **metrics})
        state.epoch = epoch
        if score > state.best_score:
            state.best_score, state.best_epoch, state.bad_epochs = score, epoch, 0
            if main:
                save_model(accelerator.unwrap_model(model), str(run_dir / ".best.tmp.safetensors"))
                (run_dir / ".best.tmp.safetensors").replace(run_dir / "best.safetensors")
        else:
            state.bad_epochs += 1
        logger.info("%s epoch %d: train loss %.4f, valid %s %.4f (best %.4f at %d)", desc, epoch, total / max(count, 1), score_key, score, state.best_score, state.best_epoch)
        state.finished = (state.bad_epochs >= config.patience or bool(config.max_steps and state.step >= config.max_steps)
                          or bool(budget and state.train_seconds >= budget))
        if main:
            _save_state(run_dir, accelerator.unwrap_model(model), optimizer, state)

    state.finished = True
    if processes > 1:  # DDP keeps the copies in step; check it before the best weights replace them
        digests = gather_object([weights_digest(accelerator.unwrap_model(model))])
        if main:
            write_json(run_dir / "ranks.json", {"num_processes": processes, "weights_sha256": digests})
        if len(set(digests)) != 1:
            raise RuntimeError(f"{desc}: the {processes} processes ended training with different weights: {digests}")
    if main:
        _save_state(run_dir, accelerator.unwrap_model(model), optimizer, state)
        write_json(run_dir / "history.json", state.history)
    accelerator.wait_for_everyone()  # best.safetensors is written before any process reads it
    if (run_dir / "best.safetensors").is_file():
        load_model(accelerator.unwrap_model(model), str(run_dir / "best.safetensors"))
    return LoopResult(
        best_score=state.best_score,
        best_epoch=state.best_epoch,
        epochs_run=state.epoch,
        stopped_early=state.bad_epochs >= config.patience,
        history=state.history,
    )
