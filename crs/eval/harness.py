"""Scripted evaluation: replay dialogues turn by turn and score every recommender turn.

    python -m crs.evaluate --model popularity,repeat-context --split test [--limit N]
                           [--tasks rec,conv,constraints,interactive] [--out DIR] [--data-dir DIR]

For each recommender turn the model sees the earlier turns and scores the whole catalogue.
Recall@k follows two protocols (DESIGN.md):

* ``standard`` (CRSLab/UniCRS): one instance per (recommender turn, mentioned movie), ranked
  against the whole catalogue;
* ``new_items``: only movies not mentioned earlier in the dialogue, with the earlier-mentioned
  movies removed from the ranking.

The ``constraints`` task plays the constraint suite (:mod:`crs.eval.constraints`: requests by
actor, director, genre and decade, negated and multi-turn) through each checkpoint's chat, popularity
and a KG-filter baseline; it does not depend on the split.

The ``interactive`` task (:mod:`crs.eval.simulator`) plays each test dialogue with a target from
scratch against a simulated seeker (rule-based, learned, or both) and reports success@t.

The report folder gets ``metrics.json``, ``report.md`` (our rows beside the published anchors),
``per_turn.jsonl`` and PNG plots. Nothing random and no clock enters the files: the same inputs
give byte-identical reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from crs import __version__
from crs.config import DECODINGS, CRSConfig, add_config_arguments, config_from_args
from crs.data.catalogue import Catalogue
from crs.data.context import DialogueContext
from crs.data.samples import Sample, build_samples
from crs.data.splits import SPLITS, load_splits
from crs.eval.anchors import anchors_for
from crs.eval.constraints import constraint_systems, constraints_markdown, evaluate_constraints
from crs.eval.conv import conv_markdown, evaluate_conversation
from crs.eval.metrics import RankingAccumulator, rank_of
from crs.eval.paradigms import paradigm_info, paradigms_markdown
from crs.eval.simulator import (
    SIMULATORS,
    agreement,
    evaluate_interactive,
    interactive_markdown,
    interactive_systems,
    make_seekers,
    profiles,
)
from crs.gen.ranker import ZeroShotRanker
from crs.paths import PROJECT_ROOT
from crs.precision import CHOICES as PRECISIONS
from crs.precision import inference_precision, start_inference
from crs.rec.baselines import BASELINES
from crs.rec.interface import Recommender
from crs.serve.pipeline import CRS

logger = logging.getLogger(__name__)

PROTOCOLS = ("standard", "new_items")
TASKS = ("rec", "conv", "constraints", "interactive")
BATCH_SIZE = 64
DEFAULT_SEEKER = PROJECT_ROOT / "checkpoints" / "seeker"
TOP_LOGGED = 10  # movies per turn written to per_turn.jsonl
CURVE_MAX_K = 100


@dataclass
class RecResult:
    """Ranks of one model on one split, under both protocols."""

    model: str
    ks: tuple[int, ...]
    accumulators: dict[str, RankingAccumulator] = field(default_factory=dict)
    turns: list[dict] = field(default_factory=list)
    skipped_gold: int = 0  # gold movies outside the catalogue

    def __post_init__(self) -> None:
        self.accumulators = {protocol: RankingAccumulator(self.ks) for protocol in PROTOCOLS}

    def summary(self) -> dict:
        return {protocol: acc.summary() for protocol, acc in self.accumulators.items()} | {"skipped_gold_movies": self.skipped_gold}


def evaluate_recommender(model: Recommender, samples: list[Sample], ks: tuple[int, ...], progress: bool = True) -> RecResult:
    """Rank every gold movie of every recommender turn that mentions one."""
    catalogue = model.catalogue
    result = RecResult(model=model.name, ks=ks)
    scored = [s for s in samples if s.movies]
    bar = tqdm(total=len(scored), desc=f"rec {model.name}", unit="turn", disable=not progress)
    for start in range(0, len(scored), BATCH_SIZE):
        batch = scored[start : start + BATCH_SIZE]
        scores = np.asarray(model.score_batch([DialogueContext.from_sample(s) for s in batch]), dtype=np.float64)
        for sample, row in zip(batch, scores):
            context = [catalogue.index(m) for m in sample.context_movies if m in catalogue]
            ranks: dict[str, dict[int, int]] = {protocol: {} for protocol in PROTOCOLS}
            for movie in sample.movies:
                if movie not in catalogue:
                    result.skipped_gold += 1
                    continue
                target = catalogue.index(movie)
                ranks["standard"][movie] = rank_of(row, target)
                if movie in sample.new_movies:
                    ranks["new_items"][movie] = rank_of(row, target, exclude=context)
            for protocol, protocol_ranks in ranks.items():
                for rank in protocol_ranks.values():
                    result.accumulators[protocol].add(rank)
            top = np.lexsort((np.arange(len(row)), -row))[:TOP_LOGGED]
            result.turns.append(
                {
                    "model": model.name,
                    "conversation_id": sample.conversation_id,
                    "turn_index": sample.turn_index,
                    "context_movies": sample.context_movies,
                    "gold": sample.movies,
                    "new_gold": sample.new_movies,
                    "top": [catalogue[i].movie_id for i in top],
                    "ranks": {p: {str(m): r for m, r in pr.items()} for p, pr in ranks.items()},
                }
            )
        bar.update(len(batch))
    bar.close()
    return result


def load_spec(spec: str, config: CRSConfig, catalogue: Catalogue, train_dialogues, encoders: dict | None = None,
              with_generator: bool = False) -> tuple[Recommender, CRS | None]:
    """The model of one ``--model`` entry and, for a checkpoint, its chat pipeline.

    A baseline by name (fitted on the training split); a checkpoint folder as ``PATH`` or
    ``LABEL=PATH`` (loaded once by :meth:`crs.serve.pipeline.CRS.from_pretrained`, the generator
    only ``with_generator`` or when the recommender takes its ``[REC]`` state); or
    ``[LABEL=]zero-shot=LM_DIR`` / ``[LABEL=]zero-shot-rec=LM_DIR+REC_DIR``, the tuning-free ranker
    of :mod:`crs.gen.ranker` with candidates from popularity or from the checkpoint ``REC_DIR``.
    The pipeline is None for baselines and the zero-shot ranker, which write no replies.
    """
    label, _, path = spec.rpartition("=")
    if spec in BASELINES:
        return BASELINES[spec].fit(train_dialogues, catalogue), None
    zero_shot_label, _, kind = label.rpartition("=")
    if kind in ZERO_SHOT_SPECS:
        return load_zero_shot_spec(kind, path, catalogue, train_dialogues, zero_shot_label or None, encoders), None
    if Path(path).is_dir():
        pipeline = CRS.from_pretrained(path, encoders=encoders, with_generator=with_generator)
        model = pipeline.recommender
        if model.catalogue.movie_ids != catalogue.movie_ids:
            raise ValueError(f"checkpoint {path} was trained on another movie catalogue than {config.data.resolve_data_dir()}")
        model.name = label or model_label(path)
        return model, pipeline
    raise ValueError(f"unknown model {spec!r}: choose a baseline ({', '.join(BASELINES)}) or a checkpoint folder")


ZERO_SHOT_SPECS = ("zero-shot", "zero-shot-rec")


def load_zero_shot_spec(kind: str, target: str, catalogue: Catalogue, train_dialogues, name: str | None = None,
                        encoders: dict | None = None, template: str | None = None) -> Recommender:
    """The ranker of an evaluation spec ``[LABEL=]zero-shot=LM_DIR`` or ``[LABEL=]zero-shot-rec=LM_DIR+REC_DIR``.

    ``zero-shot`` takes candidates from popularity on ``train_dialogues``; ``zero-shot-rec`` from the
    recommender of checkpoint ``REC_DIR`` (``zero-shot-rec=DIR`` alone: one folder holding both).
    """
    if kind not in ZERO_SHOT_SPECS:
        raise ValueError(f"unknown zero-shot spec {kind!r}; choose from {ZERO_SHOT_SPECS}")
    lm_dir, _, rec_dir = target.partition("+")
    if kind == "zero-shot":
        if rec_dir:
            raise ValueError(f"zero-shot={target}: candidates from a checkpoint need zero-shot-rec=LM_DIR+REC_DIR")
        candidates = BASELINES["popularity"].fit(train_dialogues, catalogue)
    else:
        rec_dir = rec_dir or lm_dir
        candidates = CRS.from_pretrained(rec_dir, encoders=encoders, with_generator=False).recommender
        if candidates.catalogue.movie_ids != catalogue.movie_ids:
            raise ValueError(f"checkpoint {rec_dir} was trained on another movie catalogue")
    ranker = ZeroShotRanker.from_pretrained(lm_dir, template=template, candidate_recommender=candidates,
                                            catalogue=catalogue)
    ranker.name = name or f"{kind}:{'/'.join(Path(lm_dir).resolve().parts[-2:])}"
    return ranker


def model_label(spec: str) -> str:
    """A short row name for a checkpoint folder: its last two path parts ("runs/full/checkpoint" → "full/checkpoint")."""
    parts = Path(spec).resolve().parts
    return "/".join(parts[-2:])


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def report_markdown(results: list[RecResult], meta: dict) -> str:
    ks = results[0].ks if results else (1, 10, 50)
    lines = [
        f"# Evaluation on ReDial {meta['split']}",
        "",
        f"Dialogues: {meta['dialogues']:,}; recommender turns with a movie: {meta['rec_turns']:,}; "
        f"catalogue: {meta['catalogue_size']:,} movies. Baselines are fitted on {meta['train_file']} "
        f"({meta['train_dialogues']:,} training dialogues after the validation carve-out); checkpoints were "
        "trained on the data their config.json names."
        + (f" Inference precision: {meta['inference_precision']} (the sentence encoder and decoding; perplexity is fp32)."
           if meta.get("inference_precision", "fp32") != "fp32" else ""),
        "",
        "Published anchors were trained on the complete ReDial train split (10,006 dialogues); our rows "
        "train on what the data folder holds.",
    ]
    for protocol in PROTOCOLS:
        title = "Standard protocol (CRSLab/UniCRS)" if protocol == "standard" else "New-items protocol (mentioned movies removed)"
        header = " | ".join(f"R@{k}" for k in ks)
        lines += ["", f"## {title}", "", f"| model | {header} | NDCG@10 | MRR | instances |", "|---" * (len(ks) + 4) + "|"]
        for result in results:
            s = result.accumulators[protocol].summary()
            recall = " | ".join(_fmt(s[f"recall@{k}"]) for k in ks)
            lines.append(f"| **{result.model}** (ours) | {recall} | {_fmt(s.get('ndcg@10', 0.0))} | {_fmt(s['mrr'])} | {s['count']:,} |")
        for anchor in anchors_for(protocol):
            recall = " | ".join(_fmt(anchor.recall[k]) if k in anchor.recall else "–" for k in ks)
            lines.append(f"| {anchor.name} (published: {anchor.source}) | {recall} | – | – | – |")
    lines += ["", "![Recall@k curves](recall_curve.png)", ""]
    return "\n".join(lines)


def plot_curves(results: list[RecResult], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = np.arange(1, CURVE_MAX_K + 1)
    fig, axes = plt.subplots(1, len(PROTOCOLS), figsize=(11, 4), sharey=True)
    for axis, protocol in zip(axes, PROTOCOLS):
        for result in results:
            ranks = np.asarray(result.accumulators[protocol].ranks)
            curve = [(ranks <= k).mean() if ranks.size else 0.0 for k in ks]
            axis.plot(ks, curve, label=result.model)
        for anchor in anchors_for(protocol):
            axis.scatter(list(anchor.recall), list(anchor.recall.values()), marker="x", label=f"{anchor.name} (published)")
        axis.set_xscale("log")
        axis.set_xlabel("k")
        axis.set_title(protocol.replace("_", "-"))
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("Recall@k")
    fig.tight_layout()
    fig.savefig(out / "recall_curve.png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def last_turn(sample: Sample, catalogue: Catalogue, limit: int = 160) -> str:
    """The turn before a recommender turn, titles in place of ``@id``, shortened (for sample listings)."""
    from crs.data.redial import render_mentions

    if not sample.context:
        return "(start of dialogue)"
    turn = sample.context[-1]
    text = render_mentions(turn.text, catalogue.titles)
    return f"{turn.role}: {text[:limit]}{'…' if len(text) > limit else ''}"


def write_report(out: Path, results: list[RecResult], meta: dict, conv_results: list | None = None,
                 contexts: dict | None = None, constraint_results: list | None = None, cases: list | None = None,
                 interactive_results: list | None = None, catalogue: Catalogue | None = None,
                 paradigms: dict[str, dict] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    conv_results = conv_results or []
    metrics = {"meta": meta, "rec": {r.model: r.summary() for r in results}}
    if conv_results:
        metrics["conv"] = {r.model: r.summary for r in conv_results}
    if paradigms:  # the conversation rows' generators: how each was trained
        metrics["paradigms"] = paradigms
    if constraint_results:
        metrics["constraints"] = {r.model: r.summary() for r in constraint_results}
        with (out / "constraint_cases.jsonl").open("w", encoding="utf-8") as handle:
            for result in constraint_results:
                for row in result.rows:
                    handle.write(json.dumps({"model": result.model, **row}, sort_keys=True) + "\n")
    if interactive_results:
        metrics["interactive"] = {}
        for result in interactive_results:
            metrics["interactive"].setdefault(result.system, {})[result.simulator] = result.summary()
        metrics["interactive_agreement"] = agreement(interactive_results)
        with (out / "interactive_conversations.jsonl").open("w", encoding="utf-8") as handle:
            for result in interactive_results:
                for c in result.conversations:
                    handle.write(json.dumps({"system": c.system, "simulator": c.simulator, "conversation_id": c.conversation_id,
                                             "targets": c.targets, "success_turn": c.success_turn, "recall": c.recall,
                                             "leaked": c.leaked, "fallbacks": c.fallbacks, "messages": c.messages}, sort_keys=True) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    with (out / "per_turn.jsonl").open("w", encoding="utf-8") as handle:
        for result in results:
            for row in result.turns:
                handle.write(json.dumps(row, sort_keys=True) + "\n")
    report = report_markdown(results, meta)
    if conv_results:
        report = report.rstrip("\n") + "\n\n" + conv_markdown(conv_results, contexts)
        with (out / "conv_turns.jsonl").open("w", encoding="utf-8") as handle:
            for result in conv_results:
                for row in result.rows:
                    handle.write(json.dumps({"model": result.model, **row}, sort_keys=True) + "\n")
    if paradigms:
        report = report.rstrip("\n") + "\n\n" + paradigms_markdown(paradigms, metrics["rec"], metrics.get("conv", {}))
    if constraint_results:
        report = report.rstrip("\n") + "\n\n" + constraints_markdown(constraint_results, cases or [])
    if interactive_results and catalogue is not None:
        report = report.rstrip("\n") + "\n\n" + interactive_markdown(interactive_results, catalogue,
                                                                    seed=meta.get("interactive", {}).get("seed", 0))
    (out / "report.md").write_text(report, encoding="utf-8")
    plot_curves(results, out)


def run(config: CRSConfig, models: list[str], split: str, tasks: list[str], out: Path, progress: bool = True,
        generation: dict | None = None, constraint_cases: int | None = None, simulators: tuple[str, ...] = ("rule",),
        max_turns: int = 5, seeker_model: str | Path | None = None, seed: int = 0) -> list[RecResult]:
    """Evaluate each model on ``split``; ``generation``: conv settings (``decoding``, ``exemplars``)
    that replace the checkpoints' own for this evaluation; ``simulators``, ``max_turns`` and
    ``seeker_model``: the interactive task's seekers, conversation length and learned seeker folder;
    ``seed``: its random choices (the seekers' facts, words and the transcripts shown)."""
    data_dir = config.data.resolve_data_dir()
    catalogue = Catalogue.load(data_dir)
    splits = load_splits(config.data, with_test=(split == "test"))
    dialogues = splits[split]
    if config.eval.limit:
        dialogues = dialogues[: config.eval.limit]
    samples = build_samples(dialogues)
    results, conv_results, constraint_results, loaded, cases, interactive_results = [], [], [], [], [], []
    encoders: dict = {}  # checkpoints with the same sentence encoder share it, and its memo of contexts
    paradigms: dict[str, dict] = {}
    for spec in models:
        model, pipeline = load_spec(spec, config, catalogue, splits.train, encoders,
                                    with_generator=bool({"conv", "constraints", "interactive"} & set(tasks)))
        loaded.append((model, pipeline))
        folder, rec_row = spec.rpartition("=")[2], model.name
        if "rec" in tasks:
            results.append(evaluate_recommender(model, samples, tuple(config.eval.ks), progress))
        if "conv" in tasks:
            if pipeline is not None and pipeline.generator is not None and generation:
                pipeline.generator.config = replace(pipeline.generator.config, **generation)
                model.name = f"{model.name} ({', '.join(f'{k} {v}' for k, v in generation.items())})"
            if pipeline is None or pipeline.generator is None:
                logger.warning("model %s has no generator: conv task skipped", spec)
            else:
                conv_results.append(evaluate_conversation(pipeline, dialogues, model.name, progress))
                info = paradigm_info(folder, pipeline) if (Path(folder) / "config.json").is_file() else None
                if info is not None:  # keyed by the conversation row; rec_row: its Recall row
                    paradigms[model.name] = {**info, "rec_row": rec_row}
    if "constraints" in tasks:
        systems, judge, cases = constraint_systems(loaded, catalogue, splits.train, config, constraint_cases)
        constraint_results = [evaluate_constraints(system, cases, judge, progress) for system in systems]
    if "interactive" in tasks:
        systems, link, same_film = interactive_systems(loaded, catalogue, config)
        people = profiles(dialogues, catalogue, same_film, seed)
        for seeker in make_seekers(simulators, catalogue, link, same_film, seeker_model, seed):
            for system in systems:
                interactive_results.append(evaluate_interactive(system, seeker, people, max_turns, progress))
    train_file = splits.reports[0].path
    meta = {
        "crs_version": __version__,
        "split": split,
        "limit": config.eval.limit,
        "dialogues": len(dialogues),
        "rec_turns": sum(1 for s in samples if s.movies),
        "catalogue_size": len(catalogue),
        "train_file": Path(train_file).name,
        "train_dialogues": len(splits.train),
        "data_sha256": {Path(r.path).name: sha256(Path(r.path)) for r in splits.reports},
        "tasks": tasks,
        "inference_precision": inference_precision(),  # the encoders' and decoding's arithmetic (perplexity: fp32)
    }
    contexts = {(s.conversation_id, s.turn_index): last_turn(s, catalogue) for s in samples}
    if "interactive" in tasks:
        meta["interactive"] = {"simulators": list(simulators), "max_turns": max_turns, "seed": seed}
    write_report(out, results, meta, conv_results, contexts, constraint_results, cases, interactive_results, catalogue,
                 paradigms if conv_results else None)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crs.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help=f"comma-separated baselines ({', '.join(BASELINES)}) or checkpoint folders (PATH or LABEL=PATH)")
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N dialogues only")
    parser.add_argument("--tasks", default="rec", help="comma-separated: rec, conv, constraints")
    parser.add_argument("--out", default=None, help="report folder (default reports/<split>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--decoding", choices=DECODINGS, default=None, help="reply decoding for the conv task (default: the checkpoint's)")
    parser.add_argument("--exemplars", type=int, default=None, help="retrieved exemplars per turn for the conv task (0: none; default: the checkpoint's)")
    parser.add_argument("--retrieval-margin", type=float, default=None,
                        help="hybrid decoding: how far (nats of mean token log-probability) a retrieved reply may score below "
                             "the generated one and still be chosen (inf: always when one fits; default: the checkpoint's)")
    parser.add_argument("--generic-penalty", type=float, default=None,
                        help="hybrid decoding: each candidate's score minus this times its score with no context, in [0, 1) "
                             "(default: the checkpoint's)")
    parser.add_argument("--topic-choice", choices=("greedy", "scored"), default=None,
                        help="the topic step decoded, or chosen among the context's and the movie's entities (default: the checkpoint's)")
    parser.add_argument("--topic-none-bias", type=float, default=None, help="scored topics: added to the score of no topic")
    parser.add_argument("--retrieved-candidates", type=int, default=None,
                        help="hybrid decoding: training replies retrieved per turn (default: the checkpoint's)")
    parser.add_argument("--constraint-cases", type=int, default=None,
                        help="play this many constraint cases (an even spread over the suite; default: all)")
    parser.add_argument("--simulator", default="rule", choices=SIMULATORS + ("both",),
                        help="the interactive task's simulated seeker (default rule)")
    parser.add_argument("--max-turns", type=int, default=5, help="system turns per simulated conversation (interactive task)")
    parser.add_argument("--seeker-model", default=str(DEFAULT_SEEKER),
                        help="the learned seeker's generator folder (python -m train seeker; default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="the interactive task's random choices (default 0)")
    parser.add_argument("--kg-topics", choices=("on", "off"), default=None, help="KG-constrained topic step for the conv task (default: the checkpoint's)")
    parser.add_argument("--precision", "--encoder-precision", dest="precision", choices=PRECISIONS, default="fp32",
                        help="arithmetic of the sentence encoder and of decoding (default fp32, as trained; the chat "
                             "serves auto: bf16 where the hardware runs it natively). Perplexity is always fp32")
    add_config_arguments(parser)
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start_inference(args.precision)
    config = config_from_args(args, f"eval.limit={args.limit}" if args.limit is not None else "")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown tasks {unknown}; choose from {TASKS}")
    if args.max_turns < 1:
        parser.error("--max-turns must be >= 1")
    out = Path(args.out or f"reports/{args.split}")
    started = time.perf_counter()
    kg_topics = None if args.kg_topics is None else args.kg_topics == "on"
    if args.retrieval_margin is not None and not args.retrieval_margin >= 0:
        parser.error("--retrieval-margin must be >= 0")
    if args.generic_penalty is not None and not 0 <= args.generic_penalty < 1:
        parser.error("--generic-penalty must lie in [0, 1)")
    if args.retrieved_candidates is not None and args.retrieved_candidates < 1:
        parser.error("--retrieved-candidates must be >= 1")
    generation = {key: value for key, value in (("decoding", args.decoding), ("exemplars", args.exemplars), ("kg_topics", kg_topics),
                                                ("retrieval_margin", args.retrieval_margin),
                                                ("generic_penalty", args.generic_penalty),
                                                ("retrieved_candidates", args.retrieved_candidates),
                                                ("topic_choice", args.topic_choice), ("topic_none_bias", args.topic_none_bias))
                  if value is not None}
    run(config, [m.strip() for m in args.model.split(",") if m.strip()], args.split, tasks, out, progress=not args.quiet,
        generation=generation, constraint_cases=args.constraint_cases,
        simulators=SIMULATORS if args.simulator == "both" else (args.simulator,), max_turns=args.max_turns, seeker_model=args.seeker_model,
        seed=args.seed)
    print((out / "report.md").read_text(encoding="utf-8"))
    print(f"report written to {out}/ in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
