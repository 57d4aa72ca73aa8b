"""Choosing hybrid decoding's ``retrieval_margin`` from one harness run.

Hybrid decoding (:meth:`crs.gen.reply.ReplyGenerator._hybrid`) keeps the generated reply unless
the best retrieved training reply scores within ``retrieval_margin`` nats of it. The choice of each
turn depends only on the two scores, so one conv run with ``--decoding hybrid --retrieval-margin
inf`` (every turn's generated and best retrieved reply and their scores are in its
``conv_turns.jsonl``) gives the replies of every margin. For each margin this prints Distinct-2/3/4
(both formulas), BLEU-2, the share of retrieved replies and the mean reply length against the
human replies', so the margin is chosen on validation turns, never on test ones::

    python -m crs.evaluate --model crs=checkpoints/default --split valid --limit 120 --tasks conv \\
        --decoding hybrid --retrieval-margin inf --out reports/valid-hybrid
    python -m crs.eval.margin reports/valid-hybrid/conv_turns.jsonl

A run with ``--generic-penalty`` above 0 also records every candidate's score with no context
(``hybrid_candidates``), and the sweep then covers ``conv.generic_penalty`` too (:data:`PENALTIES`):
each candidate scored by its mean token log-probability minus the penalty times that score.

Distinct formula (b) (unique n-grams over all n-grams) falls as the set of replies grows, and a
decoding's replies, drawn from fewer sentences than people's, fall faster: its share of the human
replies' value measured on validation overstates the share on a larger split. ``--target-turns N``
adds that share extrapolated to N turns (:func:`extrapolated_share`: the drop from the first half of
the turns to all of them, continued for each further doubling), so a setting meant to reach a
share of people's Distinct on the test split (7,978 turns) is chosen on validation turns.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from crs.eval.metrics import bleu, distinct_n, tokenize
from crs.gen.reply import hybrid_choice

MARGINS = (-math.inf, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, math.inf)
# conv.generic_penalty values swept when the run recorded every candidate's scores (--generic-penalty above 0).
PENALTIES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)  # 1: the full anti-LM (MMI) form


def read_turns(path: Path) -> list[dict]:
    """The rows of a hybrid run's ``conv_turns.jsonl`` (each with its generated reply and score)."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise SystemExit(f"{path}: cannot read ({error})") from error
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise SystemExit(f"{path}, line {number}: not JSON ({error})") from error
        if "generated_score" not in row:
            raise SystemExit(f"{path}, line {number}: no generated_score; run the harness with --decoding hybrid")
        rows.append(row)
    if not rows:
        raise SystemExit(f"{path}: no turns")
    return rows


def choose(row: dict, margin: float, penalty: float = 0.0) -> tuple[str, bool]:
    """The reply hybrid decoding gives ``row`` with ``margin`` and ``generic_penalty`` ``penalty``,
    and whether it is a retrieved one. A penalty needs the row's ``hybrid_candidates`` (a run with
    ``--generic-penalty`` above 0 writes them: each candidate's reply, score and score with no context)."""
    if "hybrid_candidates" in row:
        candidates = row["hybrid_candidates"]
        chosen = hybrid_choice([score - penalty * generic for _, score, generic in candidates], margin)
        return candidates[chosen][0], chosen > 0
    if penalty:
        raise ValueError("a generic penalty needs hybrid_candidates: run the harness with --generic-penalty above 0")
    if "retrieved_score" not in row:
        return row["generated_reply"], False
    chosen = hybrid_choice([row["generated_score"], row["retrieved_score"]], margin)
    return (row["retrieved_reply"], True) if chosen else (row["generated_reply"], False)


def human_distinct(references: list[str], n: int) -> tuple[float, float]:
    """Distinct-n (b) of ``references`` on all of them and on their first half (what
    :func:`extrapolated_share` divides by; the same for every setting of a sweep)."""
    return distinct_n(references, n, "ratio"), distinct_n(references[: len(references) // 2], n, "ratio")


def extrapolated_share(replies: list[str], references: list[str], n: int, target_turns: int,
                       human: tuple[float, float] | None = None) -> float:
    """Distinct-n (b) of ``replies`` as a share of ``references``' (the human replies of the same
    turns), extrapolated to ``target_turns`` turns: the share on all turns minus, for each doubling
    from ``len(replies)`` to ``target_turns``, its drop from the first half of the turns to all.
    ``human``: :func:`human_distinct` of ``references`` when the caller has it."""
    if len(replies) != len(references) or len(replies) < 2:
        raise ValueError("extrapolating Distinct needs as many references as replies, and at least 2")
    if target_turns < 1:
        raise ValueError(f"target_turns must be positive, got {target_turns}")
    human_full, human_half = human if human is not None else human_distinct(references, n)
    own_full, own_half = distinct_n(replies, n, "ratio"), distinct_n(replies[: len(replies) // 2], n, "ratio")
    full = own_full / human_full if human_full else 0.0
    half = own_half / human_half if human_half else 0.0
    return full - math.log2(target_turns / len(replies)) * (half - full)


def sweep(rows: list[dict], margins=MARGINS, penalties=(0.0,), target_turns: int | None = None) -> list[dict]:
    references = [r["gold"] for r in rows]
    human = sum(len(tokenize(t)) for t in references) / len(rows)
    human_ratios = {n: human_distinct(references, n) for n in (2, 3, 4)} if target_turns else {}
    table = []
    for penalty, margin in ((p, m) for p in penalties for m in margins):
        if penalty and margin == -math.inf and table:
            continue  # generated only: the same replies whatever the penalty
        chosen = [choose(r, margin, penalty) for r in rows]
        replies = [reply for reply, _ in chosen]
        table.append({
            "penalty": penalty,
            "margin": margin,
            **{f"distinct{n}_{f}": distinct_n(replies, n, f) for f in ("per_reply", "ratio") for n in (2, 3, 4)},
            "bleu2": bleu(replies, references, 2),
            "retrieved_share": sum(r for _, r in chosen) / len(rows),
            "length": sum(len(tokenize(t)) for t in replies) / len(rows),
            "human_length": human,
        })
        if target_turns:
            table[-1].update({f"distinct{n}_share_at_{target_turns}": extrapolated_share(replies, references, n, target_turns, human_ratios[n])
                              for n in (2, 3, 4)})
    return table


def markdown(table: list[dict], target_turns: int | None = None) -> str:
    extra = f" Dist-2/3/4 (b) share of people's at {target_turns} turns |" if target_turns else ""
    lines = ["| penalty | margin | Dist-2/3/4 (a) | Dist-2/3/4 (b) | BLEU-2 | retrieved | reply / human length |" + extra,
             "|---|---|---|---|---|---|---|" + ("---|" if target_turns else "")]
    for t in table:
        a = " / ".join(f"{t[f'distinct{n}_per_reply']:.3f}" for n in (2, 3, 4))
        b = " / ".join(f"{t[f'distinct{n}_ratio']:.3f}" for n in (2, 3, 4))
        label = "generated only" if t["margin"] == -math.inf else f"{t['margin']:g}"
        share = (" " + " / ".join(f"{t[f'distinct{n}_share_at_{target_turns}']:.3f}" for n in (2, 3, 4)) + " |") if target_turns else ""
        lines.append(f"| {t.get('penalty', 0.0):g} | {label} | {a} | {b} | {t['bleu2']:.3f} | {t['retrieved_share']:.2f} | "
                     f"{t['length']:.1f} / {t['human_length']:.1f} |" + share)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("turns", type=Path, help="conv_turns.jsonl of a harness run with --decoding hybrid --retrieval-margin inf")
    parser.add_argument("--json", type=Path, default=None, help="also write the table here")
    parser.add_argument("--target-turns", type=int, default=None,
                        help="also the Distinct (b) shares of people's extrapolated to this many turns (the test split: 7978)")
    args = parser.parse_args(argv)
    if args.target_turns is not None and args.target_turns < 1:
        parser.error(f"--target-turns must be positive, got {args.target_turns}")
    rows = read_turns(args.turns)
    if args.target_turns and len(rows) < 2:
        parser.error("--target-turns needs at least 2 turns")
    penalties = PENALTIES if all("hybrid_candidates" in r for r in rows) else (0.0,)
    table = sweep(rows, penalties=penalties, target_turns=args.target_turns)
    print(markdown(table, args.target_turns))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
