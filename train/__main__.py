"""``python -m train <stage> [--config FILE] [--data-dir DIR] [--output-dir DIR] [key.sub=value ...]``

Stages run in this order with ``all``: tokenizer, pretrain-kg, pretrain-lm, conv-fixed-prompt, rec
(the recommender takes the tuned generator's ``[REC]`` state, and its checkpoint holds the generator).
``package`` (not part of ``all``) re-attaches rerun generator stages to an existing checkpoint;
``conv-prompt`` trains soft prompts (fixed-PTM prompt tuning, then prompt+PTM tuning;
train.prompt), LoRA adapters, or (kind none) every generator weight further, and writes a servable
checkpoint per phase; it is part of ``all`` (after ``rec``, then ``package`` makes its generator the
checkpoint's, LoRA adapters merged) only when the config says ``prompt.in_recipe``; ``rec-fuse`` (not part of ``all``: ``rec`` does it) fits the context neighbours and the repeat gate
for a checkpoint trained without them; ``seeker`` (not part of ``all``) trains the learned simulated
seeker's generator for the interactive evaluation. Each writes into ``<output_dir>/<stage>/``
and resumes after an interruption from its last finished epoch; ``all`` skips stages that already
finished.

Under ``accelerate launch`` (several GPUs, CPU processes or machines) every process runs the stages
and the training loop shares out the batches (:mod:`train.loop`); only the main process (rank 0)
writes files, and a stage without a training loop (tokenizer, package, rec-fuse) runs on it alone.
The processes wait for one another at the end of every stage.
"""

from __future__ import annotations

import argparse
import enum
import json
import logging
import time

from crs.config import ConfigError, add_config_arguments, config_from_args, to_yaml
from crs.io import atomic_write_text, write_json
from train import conv, package, pretrain_kg, pretrain_lm, prompt, rec, seeker, tokenizer
from train.common import StageContext
from train.loop import process_state

logger = logging.getLogger("train")


class Stage(enum.Enum):
    TOKENIZER = "tokenizer"
    PRETRAIN_KG = "pretrain-kg"
    PRETRAIN_LM = "pretrain-lm"
    CONV_FIXED_PROMPT = "conv-fixed-prompt"
    CONV_PROMPT = "conv-prompt"
    REC = "rec"
    REC_FUSE = "rec-fuse"
    PACKAGE = "package"
    SEEKER = "seeker"


RUNNERS = {Stage.TOKENIZER: tokenizer.run, Stage.PRETRAIN_KG: pretrain_kg.run, Stage.PRETRAIN_LM: pretrain_lm.run,
           Stage.CONV_FIXED_PROMPT: conv.run, Stage.CONV_PROMPT: prompt.run, Stage.REC: rec.run, Stage.REC_FUSE: rec.run_fuse,
           Stage.PACKAGE: package.run, Stage.SEEKER: seeker.run}
ALL_STAGES = [Stage.TOKENIZER, Stage.PRETRAIN_KG, Stage.PRETRAIN_LM, Stage.CONV_FIXED_PROMPT, Stage.REC]
ALL = "all"
# Stages without a training loop: the main process runs them, the others wait.
MAIN_ONLY = {Stage.TOKENIZER, Stage.REC_FUSE, Stage.PACKAGE}


def record_done(ctx: StageContext, stage: Stage, started: float, metrics: dict) -> None:
    """The stage's ``done.json``: its time since ``started`` (``time.perf_counter``) and metrics."""
    write_json(ctx.stage_dir(stage.value) / "done.json", {"seconds": round(time.perf_counter() - started, 1), "metrics": metrics})


def run_stage(stage: Stage, ctx: StageContext, progress: bool = True) -> dict:
    """Run one stage; with several processes, all of them finish it before any goes on (the next
    stage reads what the main process wrote). On the other processes the metrics are partial."""
    state = process_state()
    started = time.perf_counter()
    metrics = {}
    if state.is_main_process or stage not in MAIN_ONLY:
        metrics = RUNNERS[stage](ctx, progress=progress and state.is_main_process)
    if state.is_main_process:
        record_done(ctx, stage, started, metrics)
    state.wait_for_everyone()
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=[s.value for s in Stage] + [ALL])
    parser.add_argument("--output-dir", default="", help="where stage outputs and the checkpoint go (config output_dir)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_config_arguments(parser)
    args = parser.parse_intermixed_args(argv)
    main_process = process_state().is_main_process  # rank 0 logs and writes; the others only warn
    logging.basicConfig(level=logging.INFO if main_process else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_from_args(args, f"output_dir={args.output_dir}" if args.output_dir else "")
    ctx = StageContext(config)
    if main_process:
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(ctx.output_dir / "config.yaml", to_yaml(config))
    stages = recipe_stages(config) if args.stage == ALL else [Stage(args.stage)]
    for stage in stages:
        done = ctx.output_dir / stage.value / "done.json"
        if args.stage == ALL and done.is_file():  # every process sees the same markers (written before the last barrier)
            logger.info("%s already finished (%s); skipped", stage.value, done)
            continue
        metrics = run_stage(stage, ctx, progress=not args.quiet)
        if main_process:
            print(json.dumps({stage.value: {k: v for k, v in metrics.items() if k != "history"}}, indent=2, default=str))
    if args.stage == ALL and main_process and needs_package(ctx):
        logger.info("the checkpoint predates the generator stages' outputs: attaching them")
        started = time.perf_counter()  # the main process alone (run_stage's barrier would wait for the others)
        record_done(ctx, Stage.PACKAGE, started, package.run(ctx, progress=not args.quiet))


def recipe_stages(config) -> list[Stage]:
    """The stages ``train all`` runs: :data:`ALL_STAGES`, then ``conv-prompt`` when the recipe
    includes its generator (``prompt.in_recipe``; packaged into the checkpoint afterwards)."""
    if config.prompt.in_recipe and config.rec.use_rec_state:
        raise ConfigError("prompt.in_recipe: the rec stage's recommender reads the conv-fixed-prompt generator's [REC] state "
                          "(rec.use_rec_state), so another generator cannot replace it; set rec.use_rec_state=false")
    return ALL_STAGES + ([Stage.CONV_PROMPT] if config.prompt.in_recipe else [])


def needs_package(ctx: StageContext) -> bool:
    """True when the checkpoint lacks the latest generator parts this run trained: the rec stage was
    skipped after a new ``conv-fixed-prompt`` run, or ``conv-prompt`` (in the recipe) ran after rec."""
    checkpoint = ctx.checkpoint_dir
    last = Stage.CONV_PROMPT if ctx.config.prompt.in_recipe else Stage.CONV_FIXED_PROMPT
    trained = (ctx.output_dir / last.value / "done.json").is_file()
    if not trained or not (checkpoint / "config.json").is_file():
        return False
    done = (ctx.output_dir / last.value / "done.json").stat().st_mtime
    generator = checkpoint / "generator" / "config.json"
    return not generator.is_file() or generator.stat().st_mtime < done


if __name__ == "__main__":
    main()
