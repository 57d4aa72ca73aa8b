"""Scripted evaluation of the generator: replay every recommender turn and score the replies.

For each recommender turn of the split, the pipeline sees the earlier turns (as the recommender
task does), ranks the catalogue, and generates a reply (greedy, two-phase, ``[REC]`` slots filled
with its best unmentioned movies: :mod:`crs.gen.reply`). Scores, all on the shared tokenisation
of :func:`crs.eval.metrics.tokenize`:

* Distinct-2/3/4 under both published formulas (``per_reply``: unique n-grams / replies, as
  UniCRS and KGSF; ``ratio``: unique n-grams / n-grams, as C2-CRS), for the generated replies and,
  as a reference, for the human replies of the same turns;
* BLEU-1/2/4 against the human reply (titles in place of ``@id``);
* perplexity of the human replies given the context and the gold prompt steps (new movies as
  ``[REC]``, the form the generator is trained on), per token including ``</s>``;
* item ratio: share of replies that recommend a movie (a filled ``[REC]`` slot);
* end-to-end recall: among turns where the human recommended a new movie, the share whose reply
  recommends one of them;
* goal accuracy against the rule-derived goal (:func:`crs.gen.reply.derive_goal`), and topic
  micro-F1 against the topics linked in the human reply.
"""

from __future__ import annotations

import math
import random
from collections import ChainMap
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from crs.data.context import DialogueContext
from crs.data.redial import Dialogue, render_mentions
from crs.data.samples import dialogue_samples
from crs.eval.metrics import bleu, distinct_n, end_to_end_recall, item_ratio
from crs.gen.steps import GOALS, dialogue_examples
from crs.serve.pipeline import CRS, fill_slots

NS = (2, 3, 4)
SAMPLE_SEED = 0
SAMPLES_SHOWN = 10
TOP_K = 10


@dataclass
class ConvResult:
    model: str
    summary: dict
    rows: list[dict] = field(default_factory=list)


def topic_f1(predicted: list[list[str]], gold: list[list[str]]) -> float:
    """Micro F1 of predicted vs gold topic sets over all turns (0.0 when both are empty everywhere)."""
    tp = sum(len(set(p) & set(g)) for p, g in zip(predicted, gold))
    n_pred, n_gold = sum(len(set(p)) for p in predicted), sum(len(set(g)) for g in gold)
    if not tp:
        return 0.0
    precision, recall = tp / n_pred, tp / n_gold
    return 2 * precision * recall / (precision + recall)


def text_metrics(texts: list[str]) -> dict[str, float]:
    out = {}
    for formula in ("per_reply", "ratio"):
        for n in NS:
            out[f"distinct{n}_{formula}"] = distinct_n(texts, n, formula)
    return out


def evaluate_conversation(pipeline: CRS, dialogues: list[Dialogue], name: str, progress: bool = True,
                          batch_size: int = 64) -> ConvResult:
    if pipeline.generator is None:
        raise ValueError(f"model {name} has no generator")
    catalogue, rec, generator = pipeline.catalogue, pipeline.recommender, pipeline.generator
    samples, examples, golds = [], [], []
    for dialogue in dialogues:
        turns = dialogue_samples(dialogue)
        samples += turns
        examples += dialogue_examples(dialogue, catalogue.titles, pipeline.linker, turns)
        titles = ChainMap(catalogue.titles, dialogue.movie_mentions)
        golds += [render_mentions(s.response.text, titles) for s in turns]
    rows = []
    bar = tqdm(total=len(samples), desc=f"conv {name}", unit="turn", disable=not progress)
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        contexts = [DialogueContext.from_sample(s) for s in chunk]
        rankings = rec.top_k_batch(contexts, TOP_K)
        generated = generator.generate(contexts, rankings, catalogue, topic_filter=pipeline.topic_filter(contexts, rankings),
                                       reply_filter=pipeline.claim_filter(contexts, rankings),
                                       topic_candidates=pipeline.topic_candidates(contexts, rankings))
        for offset, (sample, ranking, g) in enumerate(zip(chunk, rankings, generated)):
            example = examples[start + offset]
            text, items = fill_slots(g.reply, ranking, catalogue)
            hybrid = {}
            if g.candidates:  # hybrid decoding: the generated reply and the best retrieved one, with their scores
                own, *retrieved = g.candidates
                hybrid = {"generated_score": own[1], "generated_reply": fill_slots(own[0], ranking, catalogue)[0]}
                if retrieved:
                    best = max(retrieved, key=lambda c: c[1])
                    hybrid.update(retrieved_score=best[1], retrieved_reply=fill_slots(best[0], ranking, catalogue)[0])
                if g.generic:  # every candidate with both scores, so that crs.eval.margin can sweep the penalty
                    hybrid["hybrid_candidates"] = [[fill_slots(reply, ranking, catalogue)[0], score, generic]
                                                   for (reply, score), generic in zip(g.candidates, g.generic)]
            rows.append({
                "conversation_id": sample.conversation_id,
                "turn_index": sample.turn_index,
                "goal_gold": example.steps.goal,
                "goal": g.goal,
                "topics_gold": example.steps.topics,
                "topics": g.topics,
                "reply": text,
                "items": items,
                "gold": golds[start + offset],
                "gold_new_movies": sample.new_movies,
                "source": g.source,
                **hybrid,
            })
        bar.update(len(chunk))
    bar.close()
    replies, references = [r["reply"] for r in rows], [r["gold"] for r in rows]
    total, count = generator.reply_loss(examples)
    summary = {
        "turns": len(rows),
        **text_metrics(replies),
        **{f"bleu{n}": bleu(replies, references, n) for n in (1, 2, 4)},
        "perplexity": math.exp(total / max(count, 1)),
        "item_ratio": item_ratio([r["items"] for r in rows]),
        "end_to_end_recall": end_to_end_recall([r["items"] for r in rows], [r["gold_new_movies"] for r in rows]),
        "goal_accuracy": sum(r["goal"] == r["goal_gold"] for r in rows) / max(len(rows), 1),
        "topic_f1": topic_f1([r["topics"] for r in rows], [r["topics_gold"] for r in rows]),
        "retrieved_share": sum(r["source"] == "retrieved" for r in rows) / max(len(rows), 1),
        "goal_distribution_predicted": {goal: sum(r["goal"] == goal for r in rows) / max(len(rows), 1) for goal in GOALS},
        "gold": {**text_metrics(references), "item_ratio": item_ratio([r["gold_new_movies"] for r in rows])},
    }
    return ConvResult(name, summary, rows)


def sample_rows(result: ConvResult, seed: int = SAMPLE_SEED, count: int = SAMPLES_SHOWN) -> list[dict]:
    """``count`` turns picked by a fixed seed (the same turns for every model evaluated on the same split)."""
    picks = sorted(random.Random(seed).sample(range(len(result.rows)), min(count, len(result.rows))))
    return [result.rows[i] for i in picks]


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def conv_markdown(results: list[ConvResult], contexts: dict[tuple[str, int], str] | None = None) -> str:
    lines = [
        "## Conversation (generated replies)",
        "",
        "| model | Dist-2/3/4 (a: per reply) | Dist-2/3/4 (b: ratio) | BLEU-1/2/4 | PPL | item ratio | e2e recall | goal acc | topic F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.summary
        a = " / ".join(_fmt(s[f"distinct{n}_per_reply"]) for n in NS)
        b = " / ".join(_fmt(s[f"distinct{n}_ratio"]) for n in NS)
        bl = " / ".join(_fmt(s[f"bleu{n}"]) for n in (1, 2, 4))
        lines.append(f"| {r.model} | {a} | {b} | {bl} | {s['perplexity']:.1f} | {_fmt(s['item_ratio'])} | "
                     f"{_fmt(s['end_to_end_recall'])} | {_fmt(s['goal_accuracy'])} | {_fmt(s['topic_f1'])} |")
    if results:
        g = results[0].summary["gold"]
        a = " / ".join(_fmt(g[f"distinct{n}_per_reply"]) for n in NS)
        b = " / ".join(_fmt(g[f"distinct{n}_ratio"]) for n in NS)
        lines.append(f"| human replies (same turns) | {a} | {b} | – | – | {_fmt(g['item_ratio'])} | – | – | – |")
    lines += ["", "Published Distinct-2/3/4, formula (a): KGSF 0.330 / 0.417 / 0.521; C2-CRS 0.631 / 0.932 / 0.909 "
              "(from their papers; C2-CRS's own formula may differ, see DESIGN.md).", ""]
    for r in results:
        lines += [f"### Sample replies: {r.model} (seed {SAMPLE_SEED}, {SAMPLES_SHOWN} turns)", ""]
        for row in sample_rows(r):
            context = (contexts or {}).get((row["conversation_id"], row["turn_index"]), "")
            lines += [f"- context: {context}", f"  - human: {row['gold']}",
                      f"  - {r.model} ({row['goal']}; topics: {', '.join(row['topics']) or 'none'}): {row['reply']}"]
        lines.append("")
    return "\n".join(lines)
