"""Stage ``seeker``: the generator of the learned simulated seeker (:mod:`crs.eval.simulator`).

The conv stage's code (:func:`train.conv.train_generator`) on the seeker's side of ReDial: every
dialogue is read with the speakers swapped (:func:`crs.gen.steps.seeker_view`), so each seeker turn
becomes an example ``<context> [goal] … [topic] … [item] … [recommender] seeker turn</s>`` — the
``[topic]`` step holds the genres and people the seeker names, ``[item]`` a movie they bring up.
It starts from the ``pretrain-lm`` weights, without exemplars (``seeker.loop`` sets the epochs).

Writes ``<output_dir>/seeker/generator/`` and ``tokenizer/``, and ``<output_dir>/seeker/checkpoint/``:
the same generator in fp16 with a ``config.json``, the folder the simulator loads
(``python -m crs.evaluate ... --simulator learned --seeker-model DIR``; ``checkpoints/seeker`` is the
bundled one).
"""

from __future__ import annotations

import json
from dataclasses import replace

from omegaconf import OmegaConf

from crs.gen.backbone import load_model
from crs.gen.reply import GENERATOR_DIR, TOKENIZER_DIR, ReplyGenerator
from crs.gen.steps import seeker_view
from crs.io import atomic_dir
from crs.text.tokenizer import load_tokenizer
from train.common import StageContext
from train.conv import train_generator
from train.loop import is_main_process

STAGE = "seeker"
CHECKPOINT_DIR = "checkpoint"


def run(ctx: StageContext, progress: bool = True) -> dict:
    settings = replace(ctx.config.conv, exemplars=0, loop=ctx.config.seeker.loop)
    metrics = train_generator(ctx, STAGE, settings, view=seeker_view, progress=progress)
    if not is_main_process():  # the main process writes the stage's outputs
        return metrics
    return metrics | {"checkpoint": str(export(ctx, settings, metrics))}


def export(ctx: StageContext, settings, metrics: dict):
    """The trained seeker generator as a folder :meth:`ReplyGenerator.from_pretrained` loads (fp16)."""
    folder = ctx.output_dir / STAGE
    config = replace(ctx.config, conv=settings)
    generator = ReplyGenerator(load_tokenizer(folder / TOKENIZER_DIR), load_model(folder / GENERATOR_DIR),
                               config.generator.backbone, settings)
    with atomic_dir(folder / CHECKPOINT_DIR) as out:
        generator.save_pretrained(out, half=True)
        meta = {"kind": "seeker", "crs_config": OmegaConf.to_container(OmegaConf.structured(config)),
                "valid_reply_perplexity": metrics.get("valid_reply_perplexity")}
        (out / "config.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return folder / CHECKPOINT_DIR
