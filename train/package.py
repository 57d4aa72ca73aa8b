"""The generator's parts of a checkpoint: ``generator/``, ``tokenizer/`` and ``lm/`` (fp16 safetensors).

The ``rec`` stage writes the checkpoint and calls :func:`add_generator` before its atomic rename, so
one ``train all`` run yields one complete folder. ``python -m train package`` re-attaches the
generator stages' outputs to an existing checkpoint (after rerunning ``pretrain-lm`` or
``conv-fixed-prompt``); it refuses when the checkpoint's recommender was trained on the
generator's ``[REC]`` state, since a new generator would not fit it: rerun ``rec`` instead.

With ``prompt.in_recipe`` (``conv-prompt`` run on the ``conv-fixed-prompt`` generator: LoRA adapters,
or, with ``prompt.kind: none``, every weight tuned on in phase 2), the generator packaged is that
stage's (LoRA's adapters merged into the weights), and ``train all`` runs ``conv-prompt`` and this
stage after ``rec``. Either way the goal and topic classifiers are fitted anew for the generator
packaged.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

from crs.gen.backbone import load_model, save_model
from crs.gen.exemplars import INDEX_DIR
from crs.gen.prompting import PROMPT_DIR, merge_lora
from crs.gen.reply import GENERATOR_DIR, GOAL_BIAS_FILE, GOAL_HEAD_FILE, TOKENIZER_DIR
from crs.gen.topic_head import TOPIC_HEAD_FILE
from crs.io import atomic_dir, atomic_write_text
from train import conv, pretrain_lm, prompt
from train.common import StageContext

logger = logging.getLogger(__name__)

STAGE = "package"
LM_DIR = "lm"


def save_half(source: Path, target: Path) -> None:
    """A saved backbone re-saved with fp16 weights (loaded back as float32 by crs.gen.reply.load_model)."""
    save_model(load_model(source), target, half=True)


def recipe_parts(ctx: StageContext) -> Path | None:
    """This run's ``conv-prompt`` generator parts when the recipe includes that stage
    (``prompt.in_recipe``) and it has run, else None: kind lora, phase 1's (base generator, adapters,
    tokenizer, exemplars); kind none, phase 2's (the tuned generator, tokenizer, exemplars)."""
    settings = ctx.config.prompt
    if not settings.in_recipe:
        return None
    if settings.kind == "lora":
        parts = prompt.phase_folder(ctx, 1) / "parts"
        return parts if (parts / PROMPT_DIR / "adapter_config.json").is_file() else None
    parts = prompt.phase_folder(ctx, 2) / "parts"
    return parts if (parts / GENERATOR_DIR / "config.json").is_file() else None


def save_merged(parts: Path, target: Path) -> None:
    """The base generator of ``parts`` with its LoRA adapters (``parts/prompt``) merged into its
    weights (peft's ``merge_and_unload``), saved with fp16 weights: a plain generator, served
    without peft."""
    save_model(merge_lora(load_model(parts / GENERATOR_DIR), parts / PROMPT_DIR), target, half=True)


def recipe_record(parts: Path) -> dict:
    """The paradigm record (crs.eval.paradigms) of a generator packaged from ``parts``: conv-prompt's
    record of its phase (trainable parameters, time, hardware), named for what the recipe made."""
    record = {}
    phase_config = parts.parent / "checkpoint" / "config.json"
    if phase_config.is_file():
        record = dict(json.loads(phase_config.read_text(encoding="utf-8")).get("paradigm", {}))
    if (parts / PROMPT_DIR).is_dir():
        record.update(name="fixed-prompt PTM tuning, then LoRA (peft; adapters merged)", kind="lora", phase=1)
    else:
        record.update(name="fixed-prompt PTM tuning, continued by conv-prompt (kind none, phase 2)", kind="none", phase=2)
    return record


def add_generator(ctx: StageContext, folder: Path) -> list[str]:
    """Copy this run's tuned generator, its tokenizer and the pre-trained LM into ``folder``; the parts
    added. The tuned generator is the ``conv-prompt`` stage's (LoRA's adapters merged) when the recipe
    includes it and it has run (:func:`recipe_parts`), else ``conv-fixed-prompt``'s."""
    added = []
    conv_dir = ctx.output_dir / conv.STAGE
    lm_dir = ctx.output_dir / pretrain_lm.STAGE / pretrain_lm.LM_DIR
    parts = recipe_parts(ctx)
    if parts is not None:
        if (parts / PROMPT_DIR).is_dir():
            save_merged(parts, folder / GENERATOR_DIR)
        else:
            save_half(parts / GENERATOR_DIR, folder / GENERATOR_DIR)
        shutil.copytree(parts / TOKENIZER_DIR, folder / TOKENIZER_DIR, dirs_exist_ok=True)
        added += [GENERATOR_DIR, TOKENIZER_DIR]
        if (parts / INDEX_DIR).is_dir():
            shutil.copytree(parts / INDEX_DIR, folder / INDEX_DIR, dirs_exist_ok=True)
            added.append(INDEX_DIR)
    elif (conv_dir / GENERATOR_DIR / "config.json").is_file():
        save_half(conv_dir / GENERATOR_DIR, folder / GENERATOR_DIR)
        shutil.copytree(conv_dir / TOKENIZER_DIR, folder / TOKENIZER_DIR, dirs_exist_ok=True)
        added += [GENERATOR_DIR, TOKENIZER_DIR]
        if (conv_dir / INDEX_DIR).is_dir():  # the retrieved-exemplar index the generator was tuned with
            shutil.copytree(conv_dir / INDEX_DIR, folder / INDEX_DIR, dirs_exist_ok=True)
            added.append(INDEX_DIR)
    if (lm_dir / "config.json").is_file():
        save_half(lm_dir, folder / LM_DIR)
        if TOKENIZER_DIR not in added:
            shutil.copytree(ctx.output_dir / "tokenizer", folder / TOKENIZER_DIR, dirs_exist_ok=True)
            added.append(TOKENIZER_DIR)
        added.append(LM_DIR)
    return added


def halve_recommender(checkpoint: Path) -> bool:
    """Re-save ``recommender.safetensors`` with fp16 floats if it holds wider ones (older checkpoints)."""
    path = checkpoint / "recommender.safetensors"
    weights = load_file(str(path))
    if all(t.dtype != torch.float32 for t in weights.values()):
        return False
    tmp = path.with_name(".recommender.tmp.safetensors")
    save_file({k: t.half() if t.is_floating_point() else t for k, t in weights.items()}, str(tmp))
    tmp.replace(path)
    return True


def fit_goal_head(ctx: StageContext, checkpoint: Path, progress: bool = True) -> dict:
    """Fit the goal classifier (crs.gen.goal_head) for the generator of ``checkpoint`` as it serves,
    on the turns of the first ``conv.goal_head_dialogues`` training dialogues (C chosen on the
    validation turns), and write it as ``goal_head.json``; a stale one goes when none is fitted."""
    from crs.eval.goals import fit_goal_head as fit
    from crs.serve.pipeline import CRS

    path = checkpoint / GOAL_HEAD_FILE
    path.unlink(missing_ok=True)  # fitted for an earlier generator, if any: never loaded with this one
    limit = ctx.config.conv.goal_head_dialogues
    if not limit or not (checkpoint / GENERATOR_DIR / "config.json").is_file():
        return {}
    pipeline = CRS.from_pretrained(checkpoint)
    try:
        head, metrics = fit(pipeline, ctx.splits.train[:limit], ctx.splits.valid, progress=progress)
    except ValueError as error:  # too few turns or goals (tiny recipes): the goal step decodes as before
        logger.warning("%s: no goal classifier fitted (%s)", checkpoint, error)
        return {"skipped": str(error)}
    head.save(path)
    logger.info("%s: goal classifier written (validation goal accuracy %.3f, the generator alone %.3f)", path,
                metrics["validation_accuracy"], metrics["validation_accuracy_generator_alone"])
    return metrics


def fit_topic_head(ctx: StageContext, checkpoint: Path, progress: bool = True) -> dict:
    """Fit the topic classifier (crs.gen.topic_head) for the generator of ``checkpoint`` as it
    serves (after its goal classifier, whose goals it reads), on the turns of the first
    ``conv.topic_head_dialogues`` training dialogues (C and threshold chosen by validation topic
    F1), and write it as ``topic_head.json``; a stale one goes when none is fitted."""
    from crs.eval.topics import fit
    from crs.serve.pipeline import CRS

    path = checkpoint / TOPIC_HEAD_FILE
    path.unlink(missing_ok=True)  # fitted for an earlier generator, if any
    limit = ctx.config.conv.topic_head_dialogues
    if not limit or ctx.config.conv.topic_choice != "scored" or not (checkpoint / GENERATOR_DIR / "config.json").is_file():
        return {}
    pipeline = CRS.from_pretrained(checkpoint)
    try:
        head, metrics = fit(pipeline, ctx.splits.train[:limit], ctx.splits.valid, progress=progress)
    except ValueError as error:  # too few turns or topics (tiny recipes): the none bias decides, as before
        logger.warning("%s: no topic classifier fitted (%s)", checkpoint, error)
        return {"skipped": str(error)}
    head.save(path)
    logger.info("%s: topic classifier written (validation topic F1 %.3f, the none bias alone %.3f)", path,
                metrics["validation_topic_f1"], metrics["validation_topic_f1_none_bias"])
    return {k: v for k, v in metrics.items() if k != "validation_topic_f1_by_setting"}


def run(ctx: StageContext, progress: bool = True) -> dict:
    checkpoint = ctx.checkpoint_dir
    config_file = checkpoint / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{checkpoint} has no checkpoint to package into: run the rec stage first")
    meta = json.loads(config_file.read_text(encoding="utf-8"))
    if meta["crs_config"]["rec"].get("rec_state_dim"):
        raise ValueError(f"{checkpoint}: the recommender was trained on its generator's [REC] state; "
                         "rerun the rec stage instead of swapping the generator")
    with atomic_dir(checkpoint.parent / f".{checkpoint.name}.parts") as tmp:
        added = add_generator(ctx, tmp)
    parts = checkpoint.parent / f".{checkpoint.name}.parts"
    for part in added:
        with atomic_dir(checkpoint / part) as target:
            shutil.copytree(parts / part, target, dirs_exist_ok=True)
    shutil.rmtree(parts, ignore_errors=True)
    recipe = recipe_parts(ctx)
    if recipe is not None and (checkpoint / PROMPT_DIR).is_dir():
        # adapters now merged into generator/ (loading them again would add them twice), or a prompt for another generator
        shutil.rmtree(checkpoint / PROMPT_DIR)
    config = OmegaConf.to_container(OmegaConf.structured(ctx.config))
    for section in ("tokenizer", "generator", "pretrain_lm", "conv", "prompt"):
        meta["crs_config"][section] = config[section]
    if GENERATOR_DIR in added:
        meta.pop("paradigm", None)  # the replaced generator's record
        if recipe is not None:
            meta["paradigm"] = recipe_record(recipe)
    atomic_write_text(config_file, json.dumps(meta, indent=2))
    if GENERATOR_DIR in added and (checkpoint / GOAL_BIAS_FILE).is_file():
        # The goal calibration belonged to the generator just replaced, or to other serving settings.
        (checkpoint / GOAL_BIAS_FILE).unlink()
        logger.warning("%s: %s removed (fitted for the previous generator); rerun python -m crs.eval.goals --checkpoint %s --write",
                       STAGE, GOAL_BIAS_FILE, checkpoint)
    goal_head = fit_goal_head(ctx, checkpoint, progress) if GENERATOR_DIR in added else {}
    topic_head = fit_topic_head(ctx, checkpoint, progress) if GENERATOR_DIR in added else {}
    if halve_recommender(checkpoint):
        logger.info("%s: recommender weights re-saved in fp16", STAGE)
    logger.info("%s: %s now holds %s", STAGE, checkpoint, ", ".join(added) or "no generator parts (none trained)")
    return {"added": added, "goal_head": goal_head, "topic_head": topic_head}
