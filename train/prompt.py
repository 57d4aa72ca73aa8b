"""Stage ``conv-prompt``: soft prompts for the generator, in the survey's two prompt-learning paradigms.

* Phase 1, *fixed-PTM prompt tuning*: the generator (``prompt.base``: this run's pre-trained LM by
  default) is frozen and only the prompt is trained (``prompt.kind``: the KG-conditioned prompt,
  peft's prompt or prefix tuning, or peft's LoRA adapters; crs.gen.prompting).
* Phase 2, *prompt+PTM tuning* (``prompt.phases: 2``): prompt and generator tuned together, starting
  from phase 1's prompt, with ``prompt.tune_loop``'s (smaller) learning rate.

With ``prompt.kind: none`` there is no prompt to train: phase 1 is the base generator as it is
(*tuning-free prompting* with the hard prompt tokens) and phase 2 tunes every generator weight
(*fixed-prompt PTM tuning*, what ``conv-fixed-prompt`` does) on the same turns and budget, the
comparison's control row.

Every phase trains on the conversation stage's turns (``conv.*``: context, exemplars, prompt
steps; validation by reply perplexity, early stopping) through the shared loop, prints the number of
trainable parameters, and writes ``<output_dir>/conv-prompt/<variant>/phase<k>/`` (variant: the kind; for kg
``kg-prefix`` or ``kg-embeds``): ``generator/``,
``tokenizer/``, ``prompt/`` (when there is one), ``exemplars/``, and ``checkpoint/``: a servable
checkpoint, ``prompt.recommender_from``'s (default: this run's) with these generator parts, which
``python -m crs.evaluate --model name=<that folder>`` and ``python app.py --checkpoint`` load.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from crs.data.context import DialogueContext
from crs.data.samples import build_samples
from crs.gen.backbone import load_model
from crs.gen.exemplars import INDEX_DIR
from crs.gen.prompting import PROMPT_DIR, add_lora, build_prompt, trainable_parameters
from crs.gen.reply import GENERATOR_DIR, GOAL_BIAS_FILE, GOAL_HEAD_FILE, TOKENIZER_DIR, ReplyGenerator
from crs.gen.steps import render_context
from crs.gen.topic_head import TOPIC_HEAD_FILE
from crs.io import atomic_dir, atomic_write_text, write_json
from crs.rec.kg_text import KGTextRecommender
from crs.text.encoder import cached_encode
from crs.text.tokenizer import load_tokenizer
from train import conv, pretrain_lm
from train.common import StageContext
from train.loop import is_main_process, run_loop

logger = logging.getLogger(__name__)

STAGE = "conv-prompt"
# Not copied from the recommender's checkpoint: the phase's own generator parts replace them (the goal
# bias and the goal and topic classifiers were fitted for the base generator; a phase's checkpoint decodes its goal step).
GENERATOR_PARTS = (GENERATOR_DIR, TOKENIZER_DIR, PROMPT_DIR, INDEX_DIR, GOAL_BIAS_FILE, GOAL_HEAD_FILE, TOPIC_HEAD_FILE, "config.json", "MODEL_CARD.md",
                   "metrics.json")


def variant(settings) -> str:
    """The stage's sub-folder of one prompt: its kind, and for kg its injection (``kg-prefix``, ``kg-embeds``)."""
    return f"kg-{settings.injection}" if settings.kind == "kg" else settings.kind


def phase_folder(ctx: StageContext, phase: int) -> Path:
    """Where phase ``phase`` of this run's prompt (``prompt.*``) goes: ``parts/`` (its generator
    parts) and ``checkpoint/`` (servable), see :func:`save_phase`."""
    return ctx.output_dir / STAGE / variant(ctx.config.prompt) / f"phase{phase}"


def base_generator(ctx: StageContext) -> tuple[Path, Path]:
    """(generator folder, tokenizer folder) that ``prompt.base`` names."""
    base = ctx.config.prompt.base
    if base == "lm":
        folder, tokenizer = ctx.output_dir / pretrain_lm.STAGE / pretrain_lm.LM_DIR, ctx.output_dir / "tokenizer"
        hint = "run python -m train pretrain-lm first"
    elif base == "conv":
        folder, tokenizer = ctx.output_dir / conv.STAGE / GENERATOR_DIR, ctx.output_dir / conv.STAGE / TOKENIZER_DIR
        hint = "run python -m train conv-fixed-prompt first"
    else:
        folder = Path(base).expanduser()
        tokenizer = folder.parent / TOKENIZER_DIR if (folder.parent / TOKENIZER_DIR).is_dir() else ctx.output_dir / "tokenizer"
        hint = "prompt.base names a saved generator folder"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"prompt.base={base!r}: {folder} has no saved generator ({hint})")
    if not (tokenizer / "tokenizer.json").is_file() and not any(tokenizer.glob("*.model")):
        raise FileNotFoundError(f"prompt.base={base!r}: no tokenizer at {tokenizer}")
    return folder, tokenizer


def recommender_checkpoint(ctx: StageContext) -> Path:
    folder = Path(ctx.config.prompt.recommender_from).expanduser() if ctx.config.prompt.recommender_from else ctx.checkpoint_dir
    if not (folder / "recommender.safetensors").is_file():
        raise FileNotFoundError(f"prompt.recommender_from: {folder} holds no recommender (run the rec stage, or name a checkpoint)")
    return folder


def paradigm_name(kind: str, injection: str, phase: int) -> str:
    """The survey's name of what phase ``phase`` of ``kind`` trains."""
    if phase == 2:
        return "fixed-prompt PTM tuning" if kind == "none" else f"prompt+PTM tuning ({kind if kind != 'kg' else 'kg-' + injection})"
    return {"none": "tuning-free prompting", "lora": "LoRA (peft)", "peft-prompt": "fixed-PTM prompt tuning (peft prompt tuning)",
            "peft-prefix": "fixed-PTM prompt tuning (peft prefix tuning)"}.get(kind, f"fixed-PTM prompt tuning (KG-conditioned, {injection})")


def hardware() -> str:
    import os
    import platform

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA)"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}"


def run(ctx: StageContext, progress: bool = True) -> dict:
    config, settings = ctx.config, ctx.config.prompt
    started = time.perf_counter()
    conv.check_lengths(config, config.conv)
    if config.generator.backbone != "dialogpt" and settings.kind not in ("none", "lora"):
        raise ValueError(f"prompt.kind={settings.kind} needs generator.backbone=dialogpt (soft prompts go before a causal decoder)")
    base, tokenizer_dir = base_generator(ctx)
    rec_folder = recommender_checkpoint(ctx)
    rec_meta = json.loads((rec_folder / "config.json").read_text(encoding="utf-8"))
    if rec_meta["crs_config"]["rec"].get("rec_state_dim"):
        logger.warning("%s: %s's recommender was trained on another generator's [REC] state; its checkpoints here pair it "
                       "with this stage's generator, whose state differs", STAGE, rec_folder)
    out = ctx.stage_dir(STAGE) / variant(settings)
    turns = conv.build_turns(ctx, STAGE, config.conv, progress=progress)
    tokenizer = load_tokenizer(tokenizer_dir)
    torch.manual_seed(config.seed)
    model = load_model(base)
    prompt = None
    if settings.kind == "kg":
        recommender = KGTextRecommender.from_pretrained(rec_folder)
        table = recommender.entity_embeddings()
        if table is None:
            raise ValueError(f"prompt.kind=kg reads the recommender's KG entity embeddings; {rec_folder} has no KG side")
        prompt = build_prompt(settings, model, entity_dim=int(table.shape[1]))
        prompt.attach(table)
    else:
        prompt = build_prompt(settings, model)
    generator = ReplyGenerator(tokenizer, model, config.generator.backbone, config.conv, prompt=prompt)
    if prompt is not None and prompt.conditioned:
        linker, limit, memo = turns.linker, config.rec.max_context_entities, {}

        def entities(text: str) -> list[int]:
            if text not in memo:
                memo[text] = [e.entity for e in linker.link(text)][-limit:]
            return memo[text]

        generator.entity_source = entities
    conv.attach_exemplars(STAGE, generator, turns)
    pairs = conv.training_pairs(STAGE, generator, turns.train, progress)
    validate = conv.validator(generator, turns.valid)
    metrics: dict = {"kind": settings.kind, "base": str(base), "train_turns": len(turns.train), "valid_turns": len(turns.valid),
                     "generator_parameters": sum(p.numel() for p in model.parameters())}

    # Phase 1: the generator frozen; only the prompt (or the LoRA adapters) trains.
    for p in model.parameters():
        p.requires_grad_(False)
    if settings.kind == "lora":
        trained = add_lora(model, settings)
    elif prompt is not None:
        trained = generator.model  # PromptedLM: the frozen generator and the prompt
    else:
        trained = None
    phase_dirs = {}
    # In the recipe, kind none is its phase 2 (the generator tuned on): phase 1, the base generator
    # untouched, is neither scored nor saved there (about a minute on 2 CPU cores).
    skip_phase1 = trained is None and settings.in_recipe
    if skip_phase1:
        logger.info("%s phase 1 (kind none, in the recipe): nothing to train; not scored or saved", STAGE)
        metrics["phase1"] = {"trainable_parameters": 0}
    elif trained is None:  # nothing to train: tuning-free prompting
        logger.info("%s phase 1 (kind none): nothing to train; the base generator is kept as it is", STAGE)
        metrics["phase1"] = {"trainable_parameters": 0, **phase_metrics(validate(generator.model), None, 0.0)}
    else:
        metrics["phase1"] = train_phase(ctx, 1, generator, trained, pairs, validate, progress)
    generator.model = trained.eval() if trained is not None else generator.model
    rec_data: dict = {}  # the recommender's training turns, featurised once for both phases
    fitted = None
    if settings.rec_input:
        fitted, metrics["phase1"]["rec_input"] = fit_rec_input(ctx, generator, recommender, 1, rec_data, progress)
    if is_main_process() and not skip_phase1:  # every process trains each phase; the main one writes the files
        phase_dirs[1] = save_phase(ctx, generator, 1, rec_folder, metrics["phase1"], lora=trained if settings.kind == "lora" else None,
                                   recommender=fitted)

    if settings.phases == 2:
        # Phase 2: prompt and generator together, from phase 1's prompt.
        for p in generator.model.parameters():
            p.requires_grad_(True)
        metrics["phase2"] = train_phase(ctx, 2, generator, generator.model, pairs, validate, progress)
        if settings.rec_input:
            fitted, metrics["phase2"]["rec_input"] = fit_rec_input(ctx, generator, recommender, 2, rec_data, progress)
        if is_main_process():
            phase_dirs[2] = save_phase(ctx, generator, 2, rec_folder, metrics["phase2"], recommender=fitted)
    if not is_main_process():
        return metrics
    metrics["checkpoints"] = {f"phase{k}": str(v) for k, v in phase_dirs.items()}
    metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    write_json(out / "metrics.json", metrics)
    return metrics


def phase_metrics(valid: dict, result, seconds: float) -> dict:
    return {"valid_reply_perplexity": valid.get("reply_perplexity"), "seconds": round(seconds, 1),
            **({"best_epoch": result.best_epoch, "history": result.history} if result is not None else {})}


def train_phase(ctx: StageContext, phase: int, generator: ReplyGenerator, model: torch.nn.Module, pairs: list, validate,
                progress: bool) -> dict:
    settings = ctx.config.prompt
    loop = settings.loop if phase == 1 else settings.tune_loop
    count = trainable_parameters(model)
    total = sum(p.numel() for p in model.parameters())
    if phase == 2:
        names = "fixed-prompt PTM tuning" if settings.kind == "none" else "prompt+PTM tuning"
    else:
        names = "LoRA" if settings.kind == "lora" else "fixed-PTM prompt tuning"
    logger.info("%s phase %d (%s, kind %s): %d of %d parameters trainable (%.2f%%)", STAGE, phase, names, settings.kind,
                count, total, 100 * count / max(total, 1))
    print(f"{STAGE} phase {phase} ({names}, {settings.kind}): {count:,} trainable parameters of {total:,}", flush=True)
    started = time.perf_counter()
    batches = conv.batch_maker(generator, pairs, loop.batch_size, ctx.config.seed)
    result = run_loop(model, batches, validate, conv.SCORE_KEY, loop, phase_folder(ctx, phase) / "loop", desc=f"{STAGE} phase {phase}",
                      seed=ctx.config.seed, progress=progress)
    generator.model = model.eval()
    best = result.history[result.best_epoch - 1] if result.best_epoch else {}
    # The loop's own record of training time (epochs of this run or of an interrupted earlier one).
    seconds = sum(h.get("train_seconds", 0.0) for h in result.history) or time.perf_counter() - started
    return {"trainable_parameters": count, "parameters": total, **phase_metrics(best, result, seconds)}


def fit_rec_input(ctx: StageContext, generator: ReplyGenerator, recommender: KGTextRecommender, phase: int, data: dict,
                  progress: bool) -> tuple[KGTextRecommender, dict]:
    """The recommender with the KG prompt's state as one more input (``prompt.rec_input``).

    A copy of ``recommender`` gets a zero-initialised projection of :meth:`ReplyGenerator.prompt_state`
    (so it starts as the recommender without it); only that projection trains, on the rec stage's
    instances (its training dialogues, one instance per recommender turn and movie, cross-entropy over the catalogue) with
    ``prompt.rec_loop``, early stopping on the rec stage's validation score; the prompt, the generator
    and every other recommender weight stay as they are. The late fusion (context neighbours, repeat
    gate) is then fitted anew for the new scores. Returns the new recommender, or None when it does
    not beat the recommender without the input on that validation score (the checkpoint then keeps
    ``recommender`` as it is), and the fit's record. ``data`` keeps the featurised turns between phases."""
    from train import rec as rec_stage

    settings = ctx.config.prompt
    started = time.perf_counter()
    catalogue = recommender.catalogue
    if not data:
        data["train"] = [s for s in build_samples(rec_stage.training_dialogues(ctx)) if s.movies]
        data["valid"] = [s for s in build_samples(ctx.splits.valid) if s.movies]
        contexts = [DialogueContext.from_sample(s) for s in data["train"]]
        data["features"] = [recommender.featurizer.features(c) for c in tqdm(contexts, desc="rec input: features", disable=not progress, leave=False)]
        data["texts"] = [f.text for f in data["features"]]
        data["text"] = None
        if recommender.config.rec.use_text:
            config = recommender.config
            data["text"] = torch.as_tensor(cached_encode(recommender.text_encoder, data["texts"], ctx.cache_dir, batch_size=config.text.batch_size,
                                                         progress=progress, desc="rec input: encode contexts", truncate_left=True))
            recommender.remember_texts(data["texts"], data["text"].numpy())
        data["rendered"] = [render_context(c, catalogue.titles) for c in contexts]
    texts, samples = data["rendered"], data["train"]
    states = torch.cat([generator.prompt_state_texts(texts[i : i + 256]) for i in
                        tqdm(range(0, len(texts), 256), desc="rec input: prompt states", disable=not progress, leave=False)])
    dim = int(states.shape[1])
    if recommender.config.rec.rec_state_dim and recommender.config.rec.rec_state_source != "prompt":
        logger.warning("%s: the recommender took the generator's [REC] state; the prompt's state replaces that input (its "
                       "projection starts again from zero)", STAGE)
    rec_config = replace(recommender.config, rec=replace(recommender.config.rec, rec_state_dim=dim, rec_state_source="prompt"))
    model = copy.deepcopy(recommender.model)
    model.config = rec_config.rec
    for p in model.parameters():
        p.requires_grad_(False)
    model.rec_state_projection = torch.nn.Linear(dim, rec_config.rgcn.dim)  # into the user vector's space
    torch.nn.init.zeros_(model.rec_state_projection.weight)
    torch.nn.init.zeros_(model.rec_state_projection.bias)
    fitted = KGTextRecommender(rec_config, model, recommender.featurizer, recommender.text_encoder, name=recommender.name, liked=recommender.liked)
    fitted.repeat_gate, fitted.neighbours = recommender.repeat_gate, recommender.neighbours
    fitted.state_source = lambda contexts: generator.prompt_state(contexts, catalogue)
    if "before" not in data:  # the projection is zero: the recommender without the input, the same for every phase
        data["before"] = rec_stage.validation_metrics(fitted, data["valid"])
    before = data["before"]
    table = fitted.entity_embeddings()
    loop = settings.rec_loop

    def collate(rows: list[int]) -> dict:
        batch = fitted.featurizer.collate([data["features"][r] for r in rows], data["text"][rows] if data["text"] is not None else None)
        return {**batch, "rec_state": states[rows], "entity_embeddings": table}  # the R-GCN is frozen: its output once

    batches, _ = rec_stage.batch_maker(samples, catalogue, loop.batch_size, collate, ctx.config.rec.negatives)
    result = run_loop(model, batches, lambda m: rec_stage.validation_metrics(fitted, data["valid"]), rec_stage.SCORE_KEY, loop,
                      phase_folder(ctx, phase) / "rec-loop", desc=f"{STAGE} phase {phase} rec input", seed=ctx.config.seed, progress=progress)
    model.eval()
    fitted.neighbours = fitted.repeat_gate = None
    fusion = rec_stage.fit_fusion(fitted, rec_config, samples, data["valid"], data["texts"], progress)
    after = rec_stage.validation_metrics(fitted, data["valid"])
    trainable = sum(p.numel() for p in model.rec_state_projection.parameters())
    kept = keeps_rec_input(before, after)
    logger.info("%s phase %d: the prompt state (%d dims, %d trainable parameters) as a recommender input: validation %s "
                "%.4f -> %.4f, new-items Recall@10 %.4f -> %.4f; %s", STAGE, phase, dim, trainable, rec_stage.SCORE_KEY,
                before[rec_stage.SCORE_KEY], after[rec_stage.SCORE_KEY], before["new_items_recall@10"], after["new_items_recall@10"],
                "kept" if kept else "not better, the checkpoint keeps the recommender it started from")
    record = {"state_dim": dim, "trainable_parameters": trainable, "valid_before": before, "valid_after": after, "kept": kept,
              "best_epoch": result.best_epoch, "history": result.history, **fusion, "seconds": round(time.perf_counter() - started, 1)}
    return (fitted if kept else None), record


def keeps_rec_input(before: dict, after: dict) -> bool:
    """Whether the recommender with the prompt's state (validation metrics ``after``) replaces the one
    without it (``before``): only when it is better on the rec stage's validation score."""
    from train.rec import SCORE_KEY

    return after[SCORE_KEY] > before[SCORE_KEY]


def save_phase(ctx: StageContext, generator: ReplyGenerator, phase: int, rec_folder: Path, record: dict,
               lora=None, recommender: KGTextRecommender | None = None) -> Path:
    """Phase ``phase``'s generator parts into :func:`phase_folder`'s ``parts/`` and a servable
    checkpoint into its ``checkpoint/`` (its ``config.json`` says which paradigm trained it, with how many
    trainable parameters, for how long, where). With ``lora``: the base generator in ``generator/``
    and the adapters in ``prompt/`` (merged when loaded). With ``recommender`` (``prompt.rec_input``):
    its weights, late fusion and rec settings replace ``rec_folder``'s."""
    folder = phase_folder(ctx, phase)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_dir(folder / "parts") as tmp:
        if lora is None:
            generator.save_pretrained(tmp)
        else:
            generator.save_pretrained(tmp, model=copy.deepcopy(lora).unload())  # a copy without its adapters
            lora.save_pretrained(str(tmp / PROMPT_DIR))
    with atomic_dir(folder / "checkpoint") as tmp:
        for item in rec_folder.iterdir():
            if item.name in GENERATOR_PARTS or item.name.startswith("."):
                continue
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        for item in (folder / "parts").iterdir():
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        meta = json.loads((rec_folder / "config.json").read_text(encoding="utf-8"))
        if recommender is not None:
            recommender.save_weights(tmp / "recommender.safetensors")
            recommender.save_fusion(tmp)
            meta["crs_config"]["rec"] = OmegaConf.to_container(OmegaConf.structured(recommender.config))["rec"]
        config = OmegaConf.to_container(OmegaConf.structured(ctx.config))
        for section in ("tokenizer", "generator", "conv", "prompt"):
            meta["crs_config"][section] = config[section]
        settings = ctx.config.prompt
        loop = settings.loop if phase == 1 else settings.tune_loop
        name = paradigm_name(settings.kind, settings.injection, phase)
        if recommender is not None:
            name += ", the prompt's state a recommender input"
        meta["paradigm"] = {"name": name, "kind": settings.kind, "phase": phase, "rec_input": recommender is not None,
                            "base": settings.base, "trainable_parameters": record.get("trainable_parameters", 0),
                            "parameters": record.get("parameters"), "train_seconds": record.get("seconds", 0.0),
                            "max_steps": loop.max_steps, "batch_size": loop.batch_size, "lr": loop.lr,
                            "valid_reply_perplexity": record.get("valid_reply_perplexity"), "hardware": hardware()}
        atomic_write_text(tmp / "config.json", json.dumps(meta, indent=2))
    logger.info("%s: %s written (servable checkpoint %s)", STAGE, folder, folder / "checkpoint")
    return folder / "checkpoint"

