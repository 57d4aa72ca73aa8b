"""Stage ``rec``: train the KG + text recommender (:class:`crs.rec.model.KGTextRecModel`).

One training instance per (recommender turn, movie it mentions), cross-entropy over the whole
catalogue. Validation: the new-items protocol on the validation split, early stopping on
Recall@10 + Recall@50. The R-GCN starts from the ``pretrain-kg`` weights when that stage has run
(``rec.use_kg_pretraining``). Writes the checkpoint to ``<output_dir>/checkpoint``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import replace

import numpy as np
import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from crs.data.context import DialogueContext
from crs.data.samples import build_samples
from crs.eval.harness import evaluate_recommender, sha256
from crs.gen.reply import ReplyGenerator
from crs.gen.steps import render_context
from crs.rec.features import Featurizer, cooccurrence_matrix
from crs.io import atomic_write_text
from crs.rec.kg_text import KGTextRecommender, build_model, item_texts
from crs.rec.neighbours import NEIGHBOURS_FILE, NeighbourIndex, choose, rank
from crs.rec.repeat import GATE_FILE, RepeatGate, fit_gate
from crs.text.encoder import TextEncoder, cached_encode, encode_hidden
from crs.text.sentiment import LikedClassifier, SentimentScorer, all_evidence_texts, classification_report, liked_examples
from kg.linker import EntityLinker
from train import conv, package, pretrain_kg
from train.common import StageContext
from train.loop import run_loop

logger = logging.getLogger(__name__)

STAGE = "rec"
SCORE_KEY = "new_items_recall@10+50"


def validation_metrics(recommender: KGTextRecommender, samples) -> dict[str, float]:
    recommender.refresh()
    result = evaluate_recommender(recommender, samples, ks=(1, 10, 50), progress=False)
    metrics = {}
    for protocol, accumulator in result.accumulators.items():
        for key, value in accumulator.summary().items():
            if key != "count":
                metrics[f"{protocol}_{key}"] = value
    metrics[SCORE_KEY] = metrics["new_items_recall@10"] + metrics["new_items_recall@50"]
    return metrics


def gate_rows(recommender: KGTextRecommender, samples, progress: bool = False) -> list[tuple]:
    """(scores without the gate, mentioned items, mention features, turns, gold items) per sample."""
    catalogue, rows = recommender.catalogue, []
    gate, recommender.repeat_gate = recommender.repeat_gate, None
    try:
        for start in tqdm(range(0, len(samples), 64), desc="repeat gate: scoring", disable=not progress, leave=False):
            batch = samples[start : start + 64]
            contexts = [DialogueContext.from_sample(s) for s in batch]
            features = [recommender.featurizer.features(c) for c in contexts]
            scores = recommender.score_features(features, recommender.rec_state(contexts))
            for sample, context, f, row in zip(batch, contexts, features, scores):
                golds = [catalogue.index(m) for m in sample.movies if m in catalogue]
                if golds:
                    rows.append((row, list(f.mention_items), f.mention_values, len(context.turns), golds))
    finally:
        recommender.repeat_gate = gate
    return rows


def standard_recall(gate: RepeatGate, rows: list[tuple], ks=(1, 10, 50)) -> dict[str, float]:
    """Standard-protocol Recall@k of gated scores on ``rows`` (see :func:`gate_rows`)."""
    ranks = []
    for scores, items, values, turns, golds in rows:
        with torch.no_grad():
            log_probs = gate.log_probs(torch.as_tensor(scores), items, values, turns).numpy()
        ranks += [rank(log_probs, g) for g in golds]
    ranks = np.asarray(ranks)
    return {f"recall@{k}": round(float((ranks <= k).mean()), 4) if ranks.size else 0.0 for k in ks}


def fit_repeat_gate(recommender: KGTextRecommender, valid_samples, progress: bool = False) -> dict:
    """Fit the repeat gate (:mod:`crs.rec.repeat`) on the validation turns and attach it.

    Reports standard Recall@k without the gate, with it cross-fitted (fit on one half of the
    validation dialogues, measured on the other, both ways), and in-sample."""
    rows = gate_rows(recommender, valid_samples, progress)
    half = len(rows) // 2
    without = _ranks_without_gate(rows)
    first, _ = fit_gate(rows[:half])
    second, _ = fit_gate(rows[half:])
    crossed_a, crossed_b = standard_recall(second, rows[:half]), standard_recall(first, rows[half:])
    crossed = {k: round((crossed_a[k] * half + crossed_b[k] * (len(rows) - half)) / max(len(rows), 1), 4) for k in crossed_a}
    gate, nll = fit_gate(rows)
    recommender.repeat_gate = gate
    metrics = {"validation_turns": len(rows), "nll": round(nll, 4), "standard_without_gate": without,
               "standard_cross_fitted": crossed, "standard_in_sample": standard_recall(gate, rows)}
    logger.info("%s: repeat gate on %d validation turns: standard Recall@1/10/50 %s without, %s cross-fitted", STAGE, len(rows),
                "/".join(f"{v:.3f}" for v in without.values()), "/".join(f"{v:.3f}" for v in crossed.values()))
    return metrics


def _ranks_without_gate(rows: list[tuple], ks=(1, 10, 50)) -> dict[str, float]:
    ranks = np.asarray([rank(scores, g) for scores, *_, golds in rows for g in golds])
    return {f"recall@{k}": round(float((ranks <= k).mean()), 4) if ranks.size else 0.0 for k in ks}


def fit_neighbours(recommender: KGTextRecommender, train_samples, valid_samples, train_texts: list[str] | None = None,
                   progress: bool = False) -> dict:
    """Build the context-neighbour index (:mod:`crs.rec.neighbours`) from the training turns and choose
    its k, temperature and weight on the validation turns; attached only when it helps there."""
    catalogue = recommender.catalogue
    if train_texts is None:
        train_texts = [recommender.featurizer.features(DialogueContext.from_sample(s)).text
                       for s in tqdm(train_samples, desc="neighbours: featurising", disable=not progress, leave=False)]
    queries = _encode(recommender, train_texts, progress)
    index = NeighbourIndex.build(queries, [[catalogue.index(m) for m in s.movies if m in catalogue] for s in train_samples], len(catalogue))
    saved = recommender.neighbours, recommender.repeat_gate
    recommender.neighbours = recommender.repeat_gate = None
    scores, texts, mentioned, golds = [], [], [], []
    try:
        for start in range(0, len(valid_samples), 64):
            batch = valid_samples[start : start + 64]
            contexts = [DialogueContext.from_sample(s) for s in batch]
            features = [recommender.featurizer.features(c) for c in contexts]
            scores.append(recommender.score_features(features, recommender.rec_state(contexts)))
            texts += [f.text for f in features]
            mentioned += [list(f.mention_items) for f in features]
            golds += [[catalogue.index(m) for m in s.movies if m in catalogue] for s in batch]
    finally:
        recommender.neighbours, recommender.repeat_gate = saved
    index, table = choose(index, np.concatenate(scores), _encode(recommender, texts, False), mentioned, golds)
    best = max(table, key=lambda r: r["recall@10"] + r["recall@50"])
    recommender.neighbours = index if index.weight > 0 else None
    logger.info("%s: context neighbours (%d training turns): k %d, temperature %.2f, weight %.2f; valid new-items Recall@10/50 "
                "%.3f/%.3f without, %.3f/%.3f with", STAGE, len(train_samples), index.k, index.temperature, index.weight,
                table[0]["recall@10"], table[0]["recall@50"], best["recall@10"], best["recall@50"])
    return {"training_turns": len(train_samples), "k": index.k, "temperature": index.temperature, "weight": index.weight,
            "attached": recommender.neighbours is not None, "validation": table}


def _encode(recommender: KGTextRecommender, texts: list[str], progress: bool) -> np.ndarray:
    out = [recommender.encode_texts(texts[i : i + 256]) for i in tqdm(range(0, len(texts), 256), desc="neighbours: encoding",
                                                                      disable=not progress, leave=False)]
    return np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)


def fit_fusion(recommender: KGTextRecommender, config, train_samples, valid_samples, train_texts=None, progress: bool = False) -> dict:
    """The late-fusion parts a trained recommender gets: context neighbours, then the repeat gate on top."""
    metrics = {}
    if config.rec.neighbours and config.rec.use_text:
        metrics["neighbours"] = fit_neighbours(recommender, train_samples, valid_samples, train_texts, progress)
    if config.rec.repeat_gate:
        metrics["repeat_gate"] = fit_repeat_gate(recommender, valid_samples, progress)
    return metrics


def run_fuse(ctx: StageContext, progress: bool = True) -> dict:
    """Stage ``rec-fuse``: fit the context neighbours and the repeat gate for the checkpoint already in
    ``<output_dir>/checkpoint`` (one trained before they existed) and add their files and metrics to it."""
    folder = ctx.checkpoint_dir
    if not (folder / "recommender.safetensors").is_file():
        raise FileNotFoundError(f"{folder} holds no recommender: run the rec stage first")
    recommender = KGTextRecommender.from_pretrained(folder)
    recommender.neighbours = recommender.repeat_gate = None
    train_dialogues = ctx.splits.train
    train_samples = [s for s in build_samples(train_dialogues) if s.movies]
    valid_samples = [s for s in build_samples(ctx.splits.valid) if s.movies]
    metrics = fit_fusion(recommender, ctx.config, train_samples, valid_samples, progress=progress)
    for part, name in ((recommender.repeat_gate, GATE_FILE), (recommender.neighbours, NEIGHBOURS_FILE)):
        if part is not None:
            tmp = folder / (name + ".tmp")
            part.save(tmp)
            tmp.replace(folder / name)
        elif (folder / name).is_file():
            (folder / name).unlink()
    metrics_file = folder / "metrics.json"
    stored = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    stored.update(metrics)
    atomic_write_text(metrics_file, json.dumps(stored, indent=2, sort_keys=True))
    return metrics


def train_sentiment(ctx: StageContext, encoder: TextEncoder, train_dialogues, progress: bool) -> tuple[SentimentScorer, dict]:
    """Fit the liked/disliked classifier on the training split, report it on validation, and return
    a scorer primed with every evidence text of the training and validation dialogues."""
    titles = ctx.catalogue.titles
    dialogues = train_dialogues + ctx.splits.valid
    texts = all_evidence_texts(dialogues, titles)
    train_examples, valid_examples = liked_examples(train_dialogues, titles), liked_examples(ctx.splits.valid, titles)
    texts = list(dict.fromkeys(texts + [e.text for e in train_examples + valid_examples]))
    embeddings = cached_encode(encoder, texts, ctx.cache_dir, batch_size=ctx.config.text.batch_size, progress=progress, desc="encode sentiment evidence")
    row = {text: i for i, text in enumerate(texts)}
    classifier = LikedClassifier(encoder.dim)
    torch.manual_seed(ctx.config.seed)
    losses = classifier.fit(embeddings[[row[e.text] for e in train_examples]], np.array([e.liked for e in train_examples]))
    report = classification_report(np.array([e.liked for e in valid_examples]), classifier.predict(embeddings[[row[e.text] for e in valid_examples]]))
    logger.info("%s: liked classifier on validation: accuracy %.3f, macro F1 %.3f (majority: %.3f / %.3f)", STAGE,
                report["accuracy"], report["macro_f1"], report["majority_accuracy"], report["majority_macro_f1"])
    scorer = SentimentScorer(encoder, classifier)
    scorer.prime(texts, embeddings)
    return scorer, {"valid": report, "train_examples": len(train_examples), "loss_first_last": [losses[0], losses[-1]]}


def run(ctx: StageContext, progress: bool = True) -> dict:
    config = ctx.config
    started = time.perf_counter()
    out = ctx.stage_dir(STAGE)
    catalogue, kg = ctx.catalogue, ctx.kg
    train_dialogues = ctx.splits.train
    if config.rec.train_fraction < 1.0:
        keep = sorted(d.conversation_id for d in train_dialogues)
        random.Random(config.seed).shuffle(keep)
        keep = set(keep[: max(1, round(len(keep) * config.rec.train_fraction))])
        train_dialogues = [d for d in train_dialogues if d.conversation_id in keep]
    train_samples = [s for s in build_samples(train_dialogues) if s.movies]
    valid_samples = [s for s in build_samples(ctx.splits.valid) if s.movies]
    logger.info("%s: %d training dialogues, %d training turns, %d validation turns", STAGE, len(train_dialogues), len(train_samples), len(valid_samples))

    linker = EntityLinker.build(kg, catalogue, config.linking)
    encoder = text = item_text = sentiment = None
    liked_metrics: dict = {}
    if config.rec.use_text or config.rec.use_sentiment:
        encoder = TextEncoder(config.text.model, config.text.max_context_tokens)
    if config.rec.use_sentiment:
        sentiment, liked_metrics = train_sentiment(ctx, encoder, train_dialogues, progress)
    featurizer = Featurizer(catalogue, kg, linker, cooccurrence_matrix(train_dialogues, catalogue), config.rec.max_context_entities, sentiment)
    train_features = [featurizer.features(DialogueContext.from_sample(s)) for s in tqdm(train_samples, desc="features", disable=not progress, leave=False)]
    valid_features = [featurizer.features(DialogueContext.from_sample(s)) for s in valid_samples]

    hidden = None
    if config.rec.use_text:
        item_encoder = TextEncoder(config.text.model, config.text.max_item_tokens)
        item_text = torch.as_tensor(cached_encode(item_encoder, item_texts(catalogue), ctx.cache_dir, batch_size=config.text.batch_size,
                                                  progress=progress, desc="encode movies"))
        if config.text.tune_top_layers:
            layer = encoder.model.config.num_hidden_layers - config.text.tune_top_layers
            hidden = encode_hidden(encoder, [f.text for f in train_features], layer, config.text.batch_size, progress=progress,
                                   desc="encode contexts (frozen layers)")
        else:
            texts = [f.text for f in train_features + valid_features]
            text = torch.as_tensor(cached_encode(encoder, texts, ctx.cache_dir, batch_size=config.text.batch_size, progress=progress,
                                                 desc="encode contexts", truncate_left=True))

    states = generator = None
    if config.rec.use_rec_state and ReplyGenerator.present(ctx.output_dir / conv.STAGE):
        generator = conv.load_generator(ctx)
        # A new config for this run's recommender: the stage's shared config is never changed in place.
        config = replace(config, rec=replace(config.rec, rec_state_dim=generator.hidden_size))
        contexts = [render_context(DialogueContext.from_sample(s), catalogue.titles) for s in train_samples]
        states = torch.cat([generator.rec_state_texts(contexts[i : i + 512]) for i in
                            tqdm(range(0, len(contexts), 512), desc="[REC] states", disable=not progress, leave=False)])
        logger.info("%s: the generator's [REC] state (%d dims) feeds the recommender", STAGE, generator.hidden_size)
    elif config.rec.use_rec_state:
        logger.info("%s: no conv-fixed-prompt generator in this run; the recommender runs without the [REC] state", STAGE)
    model = build_model(config, kg, catalogue, item_text, encoder)
    pretrained = ctx.output_dir / pretrain_kg.STAGE / pretrain_kg.ENCODER_FILE
    if config.rec.use_kg and config.rec.use_kg_pretraining:
        if pretrained.is_file():
            model.encoder.load_state_dict(load_file(str(pretrained)))
            logger.info("%s: R-GCN initialised from %s", STAGE, pretrained)
        else:
            logger.warning("%s: %s not found, the R-GCN starts from scratch (run the pretrain-kg stage first)", STAGE, pretrained)
    recommender = KGTextRecommender(config, model, featurizer, encoder, liked=sentiment.classifier if sentiment else None)
    if generator is not None:
        recommender.state_source = lambda contexts: generator.rec_state(contexts, catalogue)
    if text is not None:
        recommender.remember_texts([f.text for f in train_features + valid_features], text.numpy())

    instances = [(row, catalogue.index(m)) for row, s in enumerate(train_samples) for m in s.movies if m in catalogue]
    batch_size = config.rec.loop.batch_size

    def batches(epoch: int):
        order = torch.randperm(len(instances)).tolist()
        for start in range(0, len(order), batch_size):
            chosen = [instances[i] for i in order[start : start + batch_size]]
            rows = [row for row, _ in chosen]
            batch = featurizer.collate([train_features[r] for r in rows], text[rows] if text is not None else None)
            if hidden is not None:
                batch["text_hidden"] = torch.from_numpy(hidden[0][rows]).float()
                batch["text_mask"] = torch.from_numpy(hidden[1][rows]).long()
            if states is not None:
                batch["rec_state"] = states[rows]
            batch["labels"] = torch.tensor([label for _, label in chosen])
            yield batch

    result = run_loop(model, batches, lambda m: validation_metrics(recommender, valid_samples), SCORE_KEY, config.rec.loop,
                      out / "loop", desc=STAGE, seed=config.seed, progress=progress)
    recommender.refresh()
    fusion_metrics = fit_fusion(recommender, config, train_samples, valid_samples, [f.text for f in train_features], progress)
    seconds = time.perf_counter() - started
    metrics = {
        "valid": result.history[result.best_epoch - 1] if result.best_epoch else {},
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_seconds": round(seconds, 1),
        "train_dialogues": len(train_dialogues),
        "train_instances": len(instances),
        "liked_classifier": liked_metrics,
        **fusion_metrics,
        "history": result.history,
    }
    checksums = {name: sha256(ctx.data_dir / "redial" / name) for name in ("train_subset.jsonl", "test_data.jsonl") if (ctx.data_dir / "redial" / name).is_file()}
    recommender.save_pretrained(ctx.checkpoint_dir, metrics=metrics, data_checksums=checksums, extra=lambda tmp: package.add_generator(ctx, tmp))
    logger.info("%s: best epoch %d, valid %s %.4f; %.0f s; checkpoint %s", STAGE, result.best_epoch, SCORE_KEY, result.best_score, seconds, ctx.checkpoint_dir)
    return metrics
