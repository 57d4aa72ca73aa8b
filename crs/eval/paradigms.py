"""The paradigm table of the harness report: how each checkpoint's generator was trained (the
survey's prompt-learning paradigms, train.prompt) beside its Recall and conversation figures."""

from __future__ import annotations

import json
from pathlib import Path


def paradigm_info(folder: str | Path, pipeline) -> dict | None:
    """What a checkpoint's ``config.json`` says of its paradigm (the ``conv-prompt`` stage writes it);
    for a checkpoint of ``conv-fixed-prompt`` (no record, a generator and no prompt), fixed-prompt
    PTM tuning with every generator weight trainable; None without a generator."""
    meta = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    if "paradigm" in meta:
        return meta["paradigm"]
    generator = getattr(pipeline, "generator", None)
    if generator is None:
        return None
    count = sum(p.numel() for p in generator.backbone_model.parameters())
    return {"name": "fixed-prompt PTM tuning (conv-fixed-prompt)", "trainable_parameters": count, "parameters": count}


def _triple(values: list[float | None]) -> str:
    return " / ".join("–" if v is None else f"{v:.3f}" for v in values)


def paradigms_markdown(paradigms: dict[str, dict], rec: dict[str, dict], conv: dict[str, dict]) -> str:
    """One row per model with a paradigm: paradigm, trainable parameters, training time and hardware,
    Recall@1/10/50 (both protocols, when the rec task ran), Distinct-2/3/4 (both formulas), BLEU-2,
    perplexity, item ratio, end-to-end recall (the movies the replies recommend)."""
    lines = ["## Paradigms (how each generator was trained)", "",
             "| model | paradigm | trainable parameters | training | Recall@1/10/50 standard | Recall@1/10/50 new items | "
             "Dist-2/3/4 (a) | Dist-2/3/4 (b) | BLEU-2 | PPL | item ratio | e2e recall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for model, info in paradigms.items():
        r, c = rec.get(info.get("rec_row", model), {}), conv.get(model, {})
        recall = {p: _triple([r.get(p, {}).get(f"recall@{k}") for k in (1, 10, 50)]) if r else "–" for p in ("standard", "new_items")}
        dist = {f: _triple([c.get(f"distinct{n}_{f}") for n in (2, 3, 4)]) if c else "–" for f in ("per_reply", "ratio")}
        seconds = info.get("train_seconds")
        where = f"{seconds / 60:.1f} min, {info['hardware']}" if seconds and info.get("hardware") else "–"
        trainable = info.get("trainable_parameters")
        count = "–" if trainable is None else f"{trainable:,}"
        if trainable is not None and info.get("parameters"):
            count += f" ({100 * trainable / info['parameters']:.1f}%)"
        if c:
            text = (f"{dist['per_reply']} | {dist['ratio']} | {c.get('bleu2', float('nan')):.3f} | {c.get('perplexity', float('nan')):.1f} | "
                    f"{c.get('item_ratio', float('nan')):.3f} | {c.get('end_to_end_recall', float('nan')):.3f}")
        else:
            text = "– | – | – | – | – | –"
        lines.append(f"| {model} | {info.get('name', '–')} | {count} | {where} | {recall['standard']} | {recall['new_items']} | {text} |")
    return "\n".join(lines) + "\n"
