"""Write a checkpoint's ``MODEL_CARD.md`` from its training run and an evaluation report.

    python -m train.card --run RUN_DIR --report REPORT_DIR [--checkpoint DIR] [--command "..."]

The card names the recipe command, the data files with their SHA-256, the hardware and time of
every stage (from each stage's ``done.json``), the stages' own validation figures, and the
evaluation report (``report.md`` of ``python -m crs.evaluate``) as printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from crs.eval.harness import sha256
from crs.io import atomic_write_text

STAGES = ("tokenizer", "pretrain-kg", "pretrain-lm", "conv-fixed-prompt", "rec", "conv-prompt", "package")
DEFAULT_COMMAND = "python -m train all --config configs/default.yaml"


def stage_rows(run: Path) -> list[str]:
    rows = ["| stage | wall-clock | validation |", "|---|---|---|"]
    for stage in STAGES:
        done = run / stage / "done.json"
        if not done.is_file():
            continue
        record = json.loads(done.read_text(encoding="utf-8"))
        metrics = record.get("metrics", {})
        note = ""
        if stage == "pretrain-kg" and "test" in metrics:
            note = f"held-out test MRR {metrics['test'].get('mrr', float('nan')):.3f}"
        elif stage == "pretrain-lm":
            note = f"perplexity {metrics.get('valid_perplexity', float('nan')):.1f} ({metrics.get('objective')}; training set {metrics.get('train_tokens', 0):,} tokens)"
        elif stage == "conv-fixed-prompt":
            note = f"reply perplexity {metrics.get('valid_reply_perplexity', float('nan')):.1f} ({metrics.get('train_turns', 0):,} turns)"
        elif stage == "rec":
            valid = metrics.get("valid", {})
            note = (f"new-items R@10 {valid.get('new_items_recall@10', float('nan')):.3f}, "
                    f"R@50 {valid.get('new_items_recall@50', float('nan')):.3f} (epoch {metrics.get('best_epoch')})")
        elif stage == "conv-prompt":
            phase = metrics.get("phase1", {})
            note = (f"{metrics.get('kind')}: reply perplexity {phase.get('valid_reply_perplexity', float('nan')):.2f}, "
                    f"{phase.get('trainable_parameters', 0):,} trainable parameters")
        elif stage == "package":
            goal, topic = metrics.get("goal_head", {}), metrics.get("topic_head", {})
            note = (f"goal classifier accuracy {goal.get('validation_accuracy', float('nan')):.3f}, "
                    f"topic classifier F1 {topic.get('validation_topic_f1', float('nan')):.3f}")
        elif stage == "tokenizer":
            note = f"{metrics.get('vocab_size')} ids, {metrics.get('tokens_per_train_utterance', 0):.1f} pieces per utterance"
        rows.append(f"| {stage} | {record.get('seconds', 0) / 60:.1f} min | {note} |")
    return rows


def model_card(run: Path, report: Path, checkpoint: Path, command: str, hardware: str) -> str:
    meta = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    config = meta["crs_config"]
    raw = config["data"].get("data_dir") or os.environ.get("CRS_DATA_DIR", "")
    data_dir = Path(raw) if raw else None
    files = dict(meta.get("data_sha256", {}))
    if data_dir is not None and config["data"].get("use_approx") and (data_dir / "redial" / "train_approx.jsonl").is_file():
        files.setdefault("train_approx.jsonl", sha256(data_dir / "redial" / "train_approx.jsonl"))
    total = sum(json.loads((run / s / "done.json").read_text())["seconds"] for s in STAGES if (run / s / "done.json").is_file())
    size = sum(f.stat().st_size for f in checkpoint.rglob("*") if f.is_file())
    lines = [
        "# crs default model",
        "",
        "A conversational movie recommender: a KG + text recommender (R-GCN over DBpedia, frozen MiniLM "
        f"sentence encoder) and a `{config['generator']['backbone']}` generator ({config['generator']['init']}, trained from "
        "scratch here) tuned with the hard prompts `[goal] [topic] [item] [REC]`.",
        "",
        "## Recipe",
        "",
        f"```\n{command}\n```",
        "",
        f"Hardware: {hardware}. Total training time {total / 60:.0f} min. Checkpoint size {size / 2**20:.1f} MiB "
        "(generator and LM weights in fp16).",
        "",
        "## Data (SHA-256)",
        "",
        *[f"- `{name}`: `{digest}`" for name, digest in sorted(files.items())],
        "- Movie metadata and the DBpedia subgraph from the shared data folder (`movie_info.json`, `kg/`).",
        "",
        "## Stages",
        "",
        *stage_rows(run),
        "",
        "## Evaluation (ReDial official test split)",
        "",
        "\n".join(line for line in (report / "report.md").read_text(encoding="utf-8").strip().splitlines()
                  if not line.startswith("![")).replace("# Evaluation on ReDial test", "### Harness report"),
        "",
        "## Limits",
        "",
        "Trained on the ReDial training subset (35% of the official train split) plus its approximate "
        "extension; the generator is small and trained on 2 CPU cores, so its replies are shorter and "
        "plainer than people's. Movie plots were used for language-model training only; no plot text is "
        "stored in the checkpoint.",
        "",
    ]
    if (checkpoint / "exemplars").is_dir():
        lines[-1:-1] = ["The exemplar index (`exemplars/`) stores the recommender replies of the ReDial training "
                        "dialogues (Li et al., NeurIPS 2018; CC BY 4.0) with movie mentions replaced by `[REC]`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path, help="the training run folder (output_dir)")
    parser.add_argument("--report", required=True, type=Path, help="a crs.eval.harness report folder")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: RUN/checkpoint")
    parser.add_argument("--command", default=DEFAULT_COMMAND)
    parser.add_argument("--note", default="", help="a sentence on how the run went (resumed, shared cores, ...)")
    parser.add_argument("--hardware", default=f"{platform.machine()} CPU, {os.cpu_count()} cores, no GPU")
    args = parser.parse_args(argv)
    checkpoint = args.checkpoint or args.run / "checkpoint"
    for path in (checkpoint / "config.json", args.report / "report.md"):
        if not path.is_file():
            raise SystemExit(f"{path} not found")
    card = model_card(args.run, args.report, checkpoint, args.command, args.hardware)
    if args.note:
        card = card.replace("## Data (SHA-256)", f"{args.note}\n\n## Data (SHA-256)", 1)
    atomic_write_text(checkpoint / "MODEL_CARD.md", card)
    print(f"wrote {checkpoint / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
