"""Training with several processes: the real ``accelerate launch`` CLI starts 2 CPU processes (gloo)
that run a few steps of the conv and rec stages on the tiny config (train.loop shares out the
batches, DDP averages the gradients, rank 0 alone writes).

Checked: (a) both processes end training with the same weights (each one's SHA-256 of its own
weights, gathered into ``ranks.json``); (b) 2 processes x batch B match 1 process x batch 2B (same
global batches in the same order, fp32, no dropout); (c) the checkpoint the launch wrote is what the
app loads: ``CRS.from_pretrained`` answers a turn. Also: rank 1 writes nothing into the run folder.

The launch uses accelerate's torchrun launcher (``--multi_gpu``) with ``ACCELERATE_USE_CPU=1``: its
``--cpu`` launcher starts a single process unless it is given an mpirun hostfile.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from crs.app import free_port
from crs.config import load_config
from crs.gen.backbone import model_class, save_model, scratch_config
from crs.text.tokenizer import load_tokenizer
from train.__main__ import Stage, run_stage
from train.common import StageContext

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "configs" / "tiny.yaml")
DIALOGUES = 300  # the first training dialogues: enough for a few batches, quick to featurise
BATCH = {"conv": 16, "rec": 32}  # per process in the launch; the single process takes twice as many
# 2 x B against 1 x 2B, measured: rec's weights agree to ~2e-7 and its mean training losses to ~1e-8
# (only the order of the sums differs). conv's differ more: DDP averages the two processes' per-token
# mean losses, the single process takes one mean over all the batch's target tokens (equal only when
# both halves hold as many), and Adam's first steps move each weight by about the learning rate
# whatever the size of its gradient, so a small change of a gradient can reverse a step. Its weights
# are compared by their updates from the common start: these differ by 0.6-4.4% of their norm, the
# mean training losses by 1e-5-7e-5 (relative), over runs (the tokenizer is trained afresh each
# time); 1 process x B, i.e. other batches, is off by ~74% and ~1e-3.
REC_ATOL = 1e-5
CONV_UPDATE_RTOL = 0.25
CONV_LOSS_RTOL = 5e-4

# Run by each launched process: the two stages through the CLI's entry point, with an audit hook that
# reports every file a process other than rank 0 opens for writing, renames or removes in the run
# folder (writes by C++ or Rust code escape it, but every output of the stages ends in a rename).
LAUNCHED = """\
import os
import sys

from train.__main__ import main

WATCHED = os.environ["WATCHED_DIR"]


def audit(event, args):
    if event == "open":
        path, mode, flags = args
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & (os.O_WRONLY | os.O_RDWR))
    else:
        path, writes = args[0], event in ("os.rename", "os.remove", "os.rmdir", "shutil.rmtree")
    if writes and isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(WATCHED):
        print(f"rank {os.environ['RANK']} wrote: {event} {os.fspath(path)}", file=sys.stderr)


if os.environ["RANK"] != "0":
    sys.addaudithook(audit)
for stage in ("conv-fixed-prompt", "rec"):
    main([stage, "--quiet", *sys.argv[1:]])
"""


def overrides(data_dir: Path, train_file: Path, out: Path, processes: int) -> list[str]:
    scale = 2 // processes  # the same global batch either way
    return [f"data.data_dir={data_dir}", f"data.train_file={train_file}", f"output_dir={out}",
            f"conv.loop.batch_size={BATCH['conv'] * scale}", "conv.loop.precision=fp32", "conv.loop.max_steps=3",
            f"rec.loop.batch_size={BATCH['rec'] * scale}", "rec.loop.max_steps=3", "rec.train_fraction=1.0", "rgcn.dropout=0"]



def dropout_free_lm(config, out: Path) -> None:
    """A scratch generator without dropout as the ``pretrain-lm`` output the conv stage starts from:
    dropout masks depend on the batch's shape, so with it 2 x B could not match 1 x 2B."""
    tokenizer = load_tokenizer(out / "tokenizer")
    model_config = scratch_config(config.generator, tokenizer)
    model_config.update({"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0})
    torch.manual_seed(0)
    save_model(model_class(model_config).from_config(model_config), out / "pretrain-lm" / "lm")


def max_difference(launched: Path, single: Path) -> float:
    a, b = load_file(str(launched)), load_file(str(single))
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def update_difference(launched: Path, single: Path, start: Path) -> float:
    """||update_launched - update_single|| / ||update_single||, the updates taken from the weights at ``start``."""
    a, b, init = load_file(str(launched)), load_file(str(single)), load_file(str(start))
    keys = sorted(set(a) & set(init))  # the tied output embedding is saved under one name or the other
    assert len(keys) == len(a) - 1
    da = torch.cat([(a[k] - init[k]).flatten() for k in keys])
    db = torch.cat([(b[k] - init[k]).flatten() for k in keys])
    return ((da - db).norm() / db.norm()).item()


def train_losses(launched: Path, single: Path, stage: str) -> tuple[float, float]:
    """The two runs' mean training loss (max_steps ends the first epoch: one history row each)."""
    two, one = (json.loads((out / stage / "loop" / "history.json").read_text()) for out in (launched, single))
    assert len(two) == len(one) == 1
    return two[0]["train_loss"], one[0]["train_loss"]


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_same_global_batch(data_dir, tmp_path):
    started = time.perf_counter()
    train_file = tmp_path / "train.jsonl"
    with open(data_dir / "redial" / "train_subset.jsonl", encoding="utf-8") as source:
        train_file.write_text("".join(line for _, line in zip(range(DIALOGUES), source)), encoding="utf-8")
    single, launched = tmp_path / "single", tmp_path / "launched"
    config = load_config(TINY, overrides(data_dir, train_file, single, 1))
    ctx = StageContext(config)
    run_stage(Stage.TOKENIZER, ctx, progress=False)
    dropout_free_lm(config, single)
    for part in ("tokenizer", "pretrain-lm"):
        shutil.copytree(single / part, launched / part)

    launch_started = time.perf_counter()
    script = tmp_path / "launched.py"
    script.write_text(LAUNCHED, encoding="utf-8")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
               str(script), "--config", TINY, *overrides(data_dir, train_file, launched, 2)]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1", "PYTHONPATH": path, "WATCHED_DIR": str(launched)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    launch_seconds = time.perf_counter() - launch_started

    # (a) Both processes ended training with the same weights.
    for stage in ("conv-fixed-prompt", "rec"):
        ranks = json.loads((launched / stage / "loop" / "ranks.json").read_text())
        assert ranks["num_processes"] == 2 and len(ranks["weights_sha256"]) == 2
        assert len(set(ranks["weights_sha256"])) == 1, ranks
    # Only rank 0 wrote into the run folder (rank 1's audit hook reported nothing).
    assert "rank 1 wrote" not in done.stderr, [line for line in done.stderr.splitlines() if "rank 1 wrote" in line]
    assert (launched / "checkpoint" / "config.json").is_file() and (launched / "conv-fixed-prompt" / "generator").is_dir()

    # (b) The same global batches in one process: conv from the same start, then rec on the
    # launch's generator (its [REC] states feed the recommender, so both runs get the same inputs).
    run_stage(Stage.CONV_FIXED_PROMPT, ctx, progress=False)
    loop = Path("loop") / "best.safetensors"
    conv = update_difference(launched / "conv-fixed-prompt" / loop, single / "conv-fixed-prompt" / loop,
                             single / "pretrain-lm" / "lm" / "model.safetensors")
    assert conv <= CONV_UPDATE_RTOL, f"conv: the launch's weight updates differ from one process's by {conv:.1%}"
    conv_losses = train_losses(launched, single, "conv-fixed-prompt")
    assert conv_losses[0] == pytest.approx(conv_losses[1], rel=CONV_LOSS_RTOL)
    shutil.rmtree(single / "conv-fixed-prompt")
    shutil.copytree(launched / "conv-fixed-prompt", single / "conv-fixed-prompt")
    run_stage(Stage.REC, ctx, progress=False)
    rec = max_difference(launched / "rec" / loop, single / "rec" / loop)
    assert rec <= REC_ATOL, f"rec: the launch's weights differ from one process's by {rec:.1e}"
    rec_losses = train_losses(launched, single, "rec")
    assert rec_losses[0] == pytest.approx(rec_losses[1], rel=1e-5)

    # (c) The launch's checkpoint is what the app serves.
    from crs.serve.pipeline import CRS

    pipeline = CRS.from_pretrained(launched / "checkpoint")
    reply = pipeline.respond([{"role": "user", "content": "I loved The Matrix"}])
    assert reply.text and reply.ranking
    print(f"\nlaunch {launch_seconds:.0f} s, total {time.perf_counter() - started:.0f} s; rec weights differ by {rec:.1e}, "
          f"conv updates by {conv:.1%}; train losses (2 processes, 1 process): rec {rec_losses}, conv {conv_losses}")
