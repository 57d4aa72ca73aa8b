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
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np
import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from crs.config import REC_NEGATIVES, ConfigError
from crs.data.context import DialogueContext
from crs.data.samples import build_samples, seeker_samples
from crs.eval.harness import evaluate_recommender, sha256
from crs.eval.metrics import RankingAccumulator, rank_of
from crs.gen.reply import ReplyGenerator
from crs.gen.steps import render_context
from crs.io import atomic_write_text
from crs.rec.features import Featurizer, cooccurrence_matrix
from crs.rec.kg_text import KGTextRecommender, build_model, item_texts
from crs.rec.neighbours import NEIGHBOURS_FILE, NeighbourIndex
from crs.rec.repeat import GATE_FILE, RepeatGate, fit_gate
from crs.text.encoder import TextEncoder, cached_encode, encode_hidden
from crs.text.sentiment import (
    LikedClassifier,
    SentimentScorer,
    all_evidence_texts,
    classification_report,
    liked_examples,
)
from kg.linker import EntityLinker
from train import conv, package, pretrain_kg
from train.common import StageContext
from train.loop import is_main_process, process_state, run_loop

logger = logging.getLogger(__name__)

STAGE = "rec"
# Context-neighbour settings tried on validation (crs.rec.neighbours).
NEIGHBOUR_GRID = {"k": (20, 50, 100), "temperature": (0.02, 0.05), "weight": (0.05, 0.1, 0.2, 0.4)}
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


def validation_rows(recommender: KGTextRecommender, samples, progress: bool = False) -> dict:
    """One scoring pass over the validation turns with neither late-fusion part (both are fitted on
    these rows): the recommender's own scores (T, N), the context embeddings, and per turn the
    mentioned items, their mention features, the turn count and the gold items."""
    catalogue = recommender.catalogue
    parts = recommender.neighbours, recommender.repeat_gate
    recommender.neighbours = recommender.repeat_gate = None
    rows = {"scores": [], "texts": [], "mentioned": [], "values": [], "turns": [], "golds": []}
    try:
        for start in tqdm(range(0, len(samples), 64), desc="late fusion: scoring", disable=not progress, leave=False):
            batch = samples[start : start + 64]
            contexts = [DialogueContext.from_sample(s) for s in batch]
            features = [recommender.featurizer.features(c) for c in contexts]
            rows["scores"].append(recommender.score_features(features, recommender.rec_state(contexts)))
            rows["texts"] += [f.text for f in features]
            rows["mentioned"] += [list(f.mention_items) for f in features]
            rows["values"] += [f.mention_values for f in features]
            rows["turns"] += [len(c.turns) for c in contexts]
            rows["golds"] += [[catalogue.index(m) for m in s.movies if m in catalogue] for s in batch]
    finally:
        recommender.neighbours, recommender.repeat_gate = parts
    rows["scores"] = np.concatenate(rows["scores"]) if rows["scores"] else np.zeros((0, len(catalogue)), dtype=np.float32)
    return rows


def recall(ranks: list[int], ks=(1, 10, 50)) -> dict[str, float]:
    """Recall@k of 1-based ranks, rounded to four places."""
    accumulator = RankingAccumulator(tuple(ks))
    for r in ranks:
        accumulator.add(r)
    summary = accumulator.summary()
    return {f"recall@{k}": round(summary[f"recall@{k}"], 4) for k in ks}


def new_items_recall(scores: np.ndarray, mentioned: list[list[int]], golds: list[list[int]]) -> dict[str, float]:
    """New-items Recall@1/10/50 of score rows (mentioned movies removed, gold movies among them skipped)."""
    return recall([rank_of(row, g, exclude=seen) for row, seen, gold in zip(scores, mentioned, golds) for g in gold if g not in seen])


def choose(index: NeighbourIndex, scores: np.ndarray, queries: np.ndarray, mentioned: list[list[int]],
           golds: list[list[int]]) -> tuple[NeighbourIndex, list[dict]]:
    """The grid's best (k, temperature, weight) on these validation rows by new-items Recall@10 + @50
    (no fusion wins ties); the index with them set, and every setting's figures."""
    table = [{"k": 0, "temperature": 0.0, "weight": 0.0, **new_items_recall(scores, mentioned, golds)}]
    for k in NEIGHBOUR_GRID["k"]:
        for temperature in NEIGHBOUR_GRID["temperature"]:
            votes = index.votes(queries, k, temperature)
            for weight in NEIGHBOUR_GRID["weight"]:
                fused = replace(index, weight=weight).fuse(scores, queries, votes)
                table.append({"k": k, "temperature": temperature, "weight": weight, **new_items_recall(fused, mentioned, golds)})
    best = max(table, key=lambda r: (round(r["recall@10"] + r["recall@50"], 6), -r["weight"]))
    index.k, index.temperature, index.weight = best["k"] or index.k, best["temperature"] or index.temperature, best["weight"]
    return index, table


def fit_neighbours(recommender: KGTextRecommender, train_samples, rows: dict, train_texts: list[str] | None = None,
                   progress: bool = False) -> dict:
    """Build the context-neighbour index (:mod:`crs.rec.neighbours`) from the training turns and choose
    its k, temperature and weight on the validation ``rows`` (:func:`validation_rows`); attached only
    when it helps there."""
    catalogue = recommender.catalogue
    if train_texts is None:
        train_texts = [recommender.featurizer.features(DialogueContext.from_sample(s)).text
                       for s in tqdm(train_samples, desc="neighbours: featurising", disable=not progress, leave=False)]
    index = NeighbourIndex.build(_encode(recommender, train_texts, progress),
                                 [[catalogue.index(m) for m in s.movies if m in catalogue] for s in train_samples], len(catalogue))
    index, table = choose(index, rows["scores"], rows["queries"], rows["mentioned"], rows["golds"])
    best = max(table, key=lambda r: r["recall@10"] + r["recall@50"])
    recommender.neighbours = index if index.weight > 0 else None
    logger.info("%s: context neighbours (%d training turns): k %d, temperature %.2f, weight %.2f; valid new-items Recall@10/50 "
                "%.3f/%.3f without, %.3f/%.3f with", STAGE, len(train_samples), index.k, index.temperature, index.weight,
                table[0]["recall@10"], table[0]["recall@50"], best["recall@10"], best["recall@50"])
    return {"training_turns": len(train_samples), "k": index.k, "temperature": index.temperature, "weight": index.weight,
            "attached": recommender.neighbours is not None, "validation": table}


def fit_repeat_gate(recommender: KGTextRecommender, rows: dict) -> dict:
    """Fit the repeat gate (:mod:`crs.rec.repeat`) on the validation ``rows`` (scored with the context
    neighbours when they are attached) and attach it.

    Reports standard Recall@k without the gate, with it cross-fitted (fit on one half of the
    validation dialogues, measured on the other, both ways), and in-sample."""
    scores = rows["scores"]
    if recommender.neighbours is not None:
        scores = recommender.neighbours.fuse(scores, rows["queries"])
    gate_rows = [(row, items, values, turns, golds) for row, items, values, turns, golds
                 in zip(scores, rows["mentioned"], rows["values"], rows["turns"], rows["golds"]) if golds]

    def standard(gate: RepeatGate | None, part: list[tuple]) -> list[int]:
        ranks = []
        for row, items, values, turns, golds in part:
            if gate is not None:
                with torch.no_grad():
                    row = gate.log_probs(torch.as_tensor(row), items, values, turns).numpy()
            ranks += [rank_of(row, g) for g in golds]
        return ranks

    half = len(gate_rows) // 2
    first, _ = fit_gate(gate_rows[:half])
    second, _ = fit_gate(gate_rows[half:])
    without = recall(standard(None, gate_rows))
    crossed = recall(standard(second, gate_rows[:half]) + standard(first, gate_rows[half:]))
    gate, nll = fit_gate(gate_rows)
    recommender.repeat_gate = gate
    metrics = {"validation_turns": len(gate_rows), "nll": round(nll, 4), "standard_without_gate": without,
               "standard_cross_fitted": crossed, "standard_in_sample": recall(standard(gate, gate_rows))}
    logger.info("%s: repeat gate on %d validation turns: standard Recall@1/10/50 %s without, %s cross-fitted", STAGE, len(gate_rows),
                "/".join(f"{v:.3f}" for v in without.values()), "/".join(f"{v:.3f}" for v in crossed.values()))
    return metrics


def _encode(recommender: KGTextRecommender, texts: list[str], progress: bool) -> np.ndarray:
    out = [recommender.encode_texts(texts[i : i + 256]) for i in tqdm(range(0, len(texts), 256), desc="neighbours: encoding",
                                                                      disable=not progress, leave=False)]
    return np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)


def fit_fusion(recommender: KGTextRecommender, config, train_samples, valid_samples, train_texts=None, progress: bool = False) -> dict:
    """The late-fusion parts a trained recommender gets: context neighbours, then the repeat gate on top."""
    metrics = {}
    with_neighbours = config.rec.neighbours and config.rec.use_text
    if not (with_neighbours or config.rec.repeat_gate):
        return metrics
    rows = validation_rows(recommender, valid_samples, progress)
    if with_neighbours:
        rows["queries"] = _encode(recommender, rows["texts"], False)
        metrics["neighbours"] = fit_neighbours(recommender, train_samples, rows, train_texts, progress)
    if config.rec.repeat_gate:
        metrics["repeat_gate"] = fit_repeat_gate(recommender, rows)
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


def training_dialogues(ctx: StageContext) -> list:
    """The training dialogues the recommender learns from: the training split, or the seeded share
    ``rec.train_fraction`` of it."""
    config = ctx.config
    train_dialogues = ctx.splits.train
    if config.rec.train_fraction < 1.0:
        keep = sorted(d.conversation_id for d in train_dialogues)
        random.Random(config.seed).shuffle(keep)
        keep = set(keep[: max(1, round(len(keep) * config.rec.train_fraction))])
        train_dialogues = [d for d in train_dialogues if d.conversation_id in keep]
    return train_dialogues


def batch_maker(samples, catalogue, batch_size: int, collate: Callable[[list[int]], dict],
                negatives: str = "all") -> tuple[Callable[[int], Iterator[dict]], int]:
    """The loop's ``batches(epoch)`` over the rec instances of ``samples`` (one per turn and movie it
    mentions, shuffled each epoch), and their count: ``collate(rows)`` gives a batch's inputs for
    those sample rows, and the movies' catalogue indices are its ``labels``.

    ``negatives`` (``rec.negatives``): with "other-labels" each instance's ``excluded`` (B, N) marks
    the turn's other movies, left out of its softmax; "other-labels+mentioned" also marks the movies
    mentioned before the turn, unless they are the instance's label."""
    instances = [(row, catalogue.index(m)) for row, s in enumerate(samples) for m in s.movies if m in catalogue]
    if negatives not in REC_NEGATIVES:
        raise ValueError(f"rec.negatives: must be one of {', '.join(REC_NEGATIVES)}, got {negatives!r}")
    left_out: list[list[int]] = []
    if negatives != "all":
        for s in samples:
            items = {catalogue.index(m) for m in s.movies if m in catalogue}
            if negatives == "other-labels+mentioned":
                items |= {catalogue.index(m) for m in s.context_movies if m in catalogue}
            left_out.append(sorted(items))

    def batches(epoch: int) -> Iterator[dict]:
        order = torch.randperm(len(instances)).tolist()
        for start in range(0, len(order), batch_size):
            chosen = [instances[i] for i in order[start : start + batch_size]]
            batch = collate([row for row, _ in chosen])
            batch["labels"] = torch.tensor([label for _, label in chosen])
            if left_out:
                excluded = torch.zeros(len(chosen), len(catalogue), dtype=torch.bool)
                for i, (row, label) in enumerate(chosen):
                    excluded[i, left_out[row]] = True
                    excluded[i, label] = False
                batch["excluded"] = excluded
            yield batch

    return batches, len(instances)


def run(ctx: StageContext, progress: bool = True) -> dict:
    config = ctx.config
    if config.rec.ensemble > 1 and config.rec.use_text and config.text.tune_top_layers:
        # the networks would share the first one's tuned context encoding when they score
        raise ConfigError("rec.ensemble > 1 needs text.tune_top_layers 0 (each network would tune its own encoder layers)")
    started = time.perf_counter()
    out = ctx.stage_dir(STAGE)
    catalogue, kg = ctx.catalogue, ctx.kg
    train_dialogues = training_dialogues(ctx)
    train_samples = [s for s in build_samples(train_dialogues) if s.movies]
    # The seeker's turns, when asked for, only add training instances: the late fusion (its context
    # neighbours are movies recommenders named) and validation keep to the recommender's turns.
    extra_samples = [s for d in train_dialogues for s in seeker_samples(d)] if config.rec.seeker_targets else []
    valid_samples = [s for s in build_samples(ctx.splits.valid) if s.movies]
    logger.info("%s: %d training dialogues, %d training turns (+%d seeker turns), %d validation turns", STAGE, len(train_dialogues),
                len(train_samples), len(extra_samples), len(valid_samples))

    linker = EntityLinker.build(kg, catalogue, config.linking)
    encoder = text = item_text = sentiment = None
    # Under accelerate launch the main process fills the encoding cache (cache_dir) before the others read it.
    with process_state().main_process_first():
        liked_metrics: dict = {}
        if config.rec.use_text or config.rec.use_sentiment:
            encoder = TextEncoder(config.text.model, config.text.max_context_tokens)
        if config.rec.use_sentiment:
            sentiment, liked_metrics = train_sentiment(ctx, encoder, train_dialogues, progress)
        featurizer = Featurizer(catalogue, kg, linker, cooccurrence_matrix(train_dialogues, catalogue), config.rec.max_context_entities, sentiment)
        fit_samples = train_samples + extra_samples  # the instances the network trains on
        train_features = [featurizer.features(DialogueContext.from_sample(s)) for s in tqdm(fit_samples, desc="features", disable=not progress, leave=False)]
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
        contexts = [render_context(DialogueContext.from_sample(s), catalogue.titles) for s in fit_samples]
        states = torch.cat([generator.rec_state_texts(contexts[i : i + 512]) for i in
                            tqdm(range(0, len(contexts), 512), desc="[REC] states", disable=not progress, leave=False)])
        logger.info("%s: the generator's [REC] state (%d dims) feeds the recommender", STAGE, generator.hidden_size)
    elif config.rec.use_rec_state:
        logger.info("%s: no conv-fixed-prompt generator in this run; the recommender runs without the [REC] state", STAGE)
    pretrained = ctx.output_dir / pretrain_kg.STAGE / pretrain_kg.ENCODER_FILE
    if config.rec.use_kg and config.rec.use_kg_pretraining:
        if pretrained.is_file():
            logger.info("%s: R-GCN initialised from %s", STAGE, pretrained)
        else:
            logger.warning("%s: %s not found, the R-GCN starts from scratch (run the pretrain-kg stage first)", STAGE, pretrained)

    def new_network(seed: int):
        torch.manual_seed(seed)  # the same initial weights in every run (and on every process of a launch)
        network = build_model(config, kg, catalogue, item_text, encoder)
        if config.rec.use_kg and config.rec.use_kg_pretraining and pretrained.is_file():
            network.encoder.load_state_dict(load_file(str(pretrained)))
        return network

    model = new_network(config.seed)
    recommender = KGTextRecommender(config, model, featurizer, encoder, liked=sentiment.classifier if sentiment else None)
    if generator is not None:
        recommender.state_source = lambda contexts: generator.rec_state(contexts, catalogue)
    if text is not None:
        recommender.remember_texts([f.text for f in train_features + valid_features], text.numpy())

    def collate(rows: list[int]) -> dict:
        batch = featurizer.collate([train_features[r] for r in rows], text[rows] if text is not None else None)
        if hidden is not None:
            batch["text_hidden"] = torch.from_numpy(hidden[0][rows]).float()
            batch["text_mask"] = torch.from_numpy(hidden[1][rows]).long()
        if states is not None:
            batch["rec_state"] = states[rows]
        return batch

    batches, num_instances = batch_maker(fit_samples, catalogue, config.rec.loop.batch_size, collate, config.rec.negatives)
    result = run_loop(model, batches, lambda m: validation_metrics(recommender, valid_samples), SCORE_KEY, config.rec.loop,
                      out / "loop", desc=STAGE, seed=config.seed, progress=progress)
    members = []
    for i in range(1, config.rec.ensemble):  # the other networks of an ensemble: the same training from seed + i
        member = new_network(config.seed + i)
        alone = KGTextRecommender(config, member, featurizer, encoder)  # validated on its own while it trains
        member_result = run_loop(member, batches, lambda m, alone=alone: validation_metrics(alone, valid_samples), SCORE_KEY,
                                 config.rec.loop, out / f"loop-member-{i}", desc=f"{STAGE} member {i + 1}/{config.rec.ensemble}",
                                 seed=config.seed + i, progress=progress)
        members.append((member, member_result))
    if not is_main_process():  # the main process fits the late fusion and writes the checkpoint
        return {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "history": result.history}
    ensemble_metrics = {}
    if members:
        single = result.history[result.best_epoch - 1] if result.best_epoch else {}  # the first network's kept epoch
        recommender.members = [member.eval() for member, _ in members]
        combined = validation_metrics(recommender, valid_samples)
        ensemble_metrics = {"ensemble": {"networks": config.rec.ensemble, "first_network_valid": single, "valid": combined,
                                         "members": [{"best_epoch": r.best_epoch, "valid": r.history[r.best_epoch - 1] if r.best_epoch else {}}
                                                     for _, r in members]}}
        logger.info("%s: ensemble of %d networks, valid %s %.4f (the first network alone %.4f)", STAGE, config.rec.ensemble,
                    SCORE_KEY, combined[SCORE_KEY], result.best_score)
    recommender.refresh()
    fusion_metrics = fit_fusion(recommender, config, train_samples, valid_samples, [f.text for f in train_features[: len(train_samples)]], progress)
    seconds = time.perf_counter() - started
    metrics = {
        "valid": result.history[result.best_epoch - 1] if result.best_epoch else {},
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_seconds": round(seconds, 1),
        "train_dialogues": len(train_dialogues),
        "train_instances": num_instances,
        "seeker_turns": len(extra_samples),  # training turns from the seeker's side (rec.seeker_targets)
        "liked_classifier": liked_metrics,
        **ensemble_metrics,
        **fusion_metrics,
        "history": result.history,
    }
    if config.rec.use_text:  # the genres each movie's cut genre list may hide, learned from the plots (facts only are saved)
        from crs.rec.hidden_genres import flag_catalogue

        recommender.catalogue, metrics["hidden_genres"] = flag_catalogue(catalogue, encoder, progress)
    checksums = {name: sha256(ctx.data_dir / "redial" / name) for name in ("train_subset.jsonl", "test_data.jsonl") if (ctx.data_dir / "redial" / name).is_file()}
    recommender.save_pretrained(ctx.checkpoint_dir, metrics=metrics, data_checksums=checksums, extra=lambda tmp: package.add_generator(ctx, tmp))
    if config.prompt.in_recipe and package.recipe_parts(ctx) is None:
        # conv-prompt comes next in the recipe and package fits the classifiers for its generator.
        logger.info("%s: goal and topic classifiers left to the package step (prompt.in_recipe)", STAGE)
    else:
        metrics["goal_head"] = package.fit_goal_head(ctx, ctx.checkpoint_dir, progress)
        metrics["topic_head"] = package.fit_topic_head(ctx, ctx.checkpoint_dir, progress)
    logger.info("%s: best epoch %d, valid %s %.4f; %.0f s; checkpoint %s", STAGE, result.best_epoch, SCORE_KEY, result.best_score, seconds, ctx.checkpoint_dir)
    return metrics
