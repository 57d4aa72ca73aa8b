"""Entity-linking evaluation on ReDial dialogues, and a command line around :class:`kg.linker.EntityLinker`.

Each message of a split is rendered with its ``@<movieId>`` placeholders replaced by the movies'
titles (with or without their year); the linker must find those movies and no others. Command line
(tune with ``--split train``, report on the default official test split)::

    python -m crs.eval.linking eval [--data-dir DIR] [--split train|valid|test] [--limit N] [--no-year | --both] [--lower]
                                    [--show-errors N] [--set linking.KEY=VALUE ...]
    python -m crs.eval.linking link "I loved The Matrix, anything with Keanu Reeves?"
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Iterator

from tqdm import tqdm

from crs.config import DataConfig, add_config_arguments, config_from_args
from crs.data.catalogue import Catalogue, split_title
from crs.data.redial import normalise_text
from crs.data.splits import APPROX_TRAIN_FILE, SPLITS, TEST_FILE, load_split, train_path
from kg.graph import load_extended_kg
from kg.linker import EntityLinker
from kg.text import MENTION_RE


@dataclass
class LinkingScores:
    """Movie-linking counts over a set of messages (micro-averaged)."""

    messages: int = 0
    gold: int = 0  # movies mentioned, summed over messages
    linked: int = 0  # movies linked, summed over messages
    correct: int = 0
    seconds: float = 0.0  # time spent in EntityLinker.link_movies

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def precision(self) -> float:
        return self.correct / self.linked if self.linked else 0.0

    @property
    def f1(self) -> float:
        total = self.recall + self.precision
        return 2 * self.recall * self.precision / total if total else 0.0

    @property
    def ms_per_message(self) -> float:
        return 1000 * self.seconds / self.messages if self.messages else 0.0


def iter_messages(data: DataConfig, split: str, limit: int = 0) -> Iterator[tuple[str, dict[int, str]]]:
    """(normalised text with ``@<movieId>`` placeholders, the dialogue's movieMentions) for every message.

    Messages are read one by one from the raw file (the loader merges a speaker's consecutive
    messages into turns); ``limit`` keeps the first N dialogues of the split.
    """
    dialogues = load_split(data, split)
    if limit:
        dialogues = dialogues[:limit]
    pending = {dialogue.conversation_id: dialogue.movie_mentions for dialogue in dialogues}
    redial = data.resolve_data_dir() / "redial"
    paths = [redial / TEST_FILE] if split == "test" else [train_path(data)]
    if split != "test" and data.use_approx:
        paths.append(redial / APPROX_TRAIN_FILE)
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                titles = pending.pop(str(record.get("conversationId")), None) if isinstance(record, dict) else None
                if titles is None:
                    continue
                for message in record.get("messages") or []:
                    text = message.get("text") if isinstance(message, dict) else None
                    if isinstance(text, str) and text.strip():
                        yield normalise_text(text), titles


def render_message(text: str, titles: dict[int, str], with_year: bool = True) -> tuple[str, set[int]]:
    """``text`` with each ``@<movieId>`` replaced by its title, and the ids replaced (the gold movies).

    Titles are the dialogue's movieMentions ("Title (Year)"); ``with_year=False`` drops the year.
    A placeholder without a title is removed, so it can be neither found nor missed.
    """
    gold: set[int] = set()

    def title(match: re.Match[str]) -> str:
        movie_id = int(match.group(1))
        name = titles.get(movie_id, "")
        if not name:
            return ""
        gold.add(movie_id)
        return name if with_year else split_title(name)[0]

    return MENTION_RE.sub(title, text), gold


def evaluate(
    linker: EntityLinker,
    messages: list[tuple[str, dict[int, str]]],
    with_year: bool = True,
    errors: list[str] | None = None,
    lower: bool = False,
) -> LinkingScores:
    """Recall and precision of :meth:`EntityLinker.link_movies` on rendered messages.

    Gold movies are those whose placeholder was in the message; any other linked movie is a false
    positive. With ``errors`` given, a line per missed or wrongly linked movie is appended to it.
    ``lower``: the rendered message in lower case, as a user who never capitalises types it.
    """
    scores = LinkingScores()
    for text, titles in tqdm(messages, desc="linking", unit="msg", leave=False, disable=None):
        rendered, gold = render_message(text, titles, with_year)
        rendered = rendered.lower() if lower else rendered
        started = time.perf_counter()
        linked = set(linker.link_movies(rendered))
        scores.seconds += time.perf_counter() - started
        scores.messages += 1
        scores.gold += len(gold)
        scores.linked += len(linked)
        scores.correct += len(gold & linked)
        if errors is not None and gold != linked:
            errors.append(f"missed {sorted(gold - linked)} wrong {sorted(linked - gold)} | {rendered}")
    return scores


def scores_table(rows: dict[str, LinkingScores]) -> str:
    lines = [
        "| setting | messages | gold movies | linked movies | recall | precision | F1 | ms/message |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in rows.items():
        lines.append(
            f"| {name} | {s.messages:,} | {s.gold:,} | {s.linked:,} | {s.recall:.3f} | {s.precision:.3f} "
            f"| {s.f1:.3f} | {s.ms_per_message:.2f} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m crs.eval.linking",
        description="eval: movie-linking recall/precision on a ReDial split; link: print the entities of a text.",
    )
    parser.add_argument("command", choices=["eval", "link"])
    parser.add_argument("text", nargs="?", default="", help="text to link (link command)")
    add_config_arguments(parser, overrides=False)
    parser.add_argument("--split", default="test", choices=SPLITS, help="eval split (default: the official test split)")
    parser.add_argument("--limit", type=int, default=0, help="evaluate the first N dialogues only")
    parser.add_argument("--no-year", action="store_true", help="render titles without their year")
    parser.add_argument("--both", action="store_true", help="evaluate with and without years")
    parser.add_argument("--lower", action="store_true", help="also evaluate each setting on the messages in lower case")
    parser.add_argument("--show-errors", type=int, default=0, metavar="N", help="print N misses / false positives")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set linking.fuzzy_cutoff=92 (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    config = config_from_args(args)
    data_dir = config.data.resolve_data_dir()
    started = time.perf_counter()
    catalogue = Catalogue.load(data_dir)
    kg = load_extended_kg(data_dir, catalogue, config.kg.enrich_linked_movies, config.kg.metadata_edges)
    loaded = time.perf_counter()
    linker = EntityLinker.build(kg, catalogue, config.linking)
    built = time.perf_counter()
    print(f"catalogue + extended KG loaded in {loaded - started:.1f}s, linker built in {built - loaded:.1f}s")

    if args.command == "link":
        print("| span | surface | kind | name | movie id | score |\n|---|---|---|---|---:|---:|")
        for e in linker.link(args.text):
            print(f"| {e.start}-{e.end} | {e.surface} | {e.kind} | {e.name} | {e.movie_id or ''} | {e.score:.1f} |")
        return

    messages = list(iter_messages(config.data, args.split, args.limit))
    settings = [True, False] if args.both else [not args.no_year]
    rows: dict[str, LinkingScores] = {}
    for with_year in settings:
        for lower in (False, True) if args.lower else (False,):
            errors: list[str] | None = [] if args.show_errors else None
            name = f"{args.split}, {'with year' if with_year else 'no year'}{', lower case' if lower else ''}"
            rows[name] = evaluate(linker, messages, with_year, errors, lower)
            for line in (errors or [])[: args.show_errors]:
                print(line)
    dialogues = args.limit or "all"
    print(f"\nsplit {args.split} ({dialogues} dialogues), {len(messages):,} messages; build {built - loaded:.1f}s")
    print(scores_table(rows))


if __name__ == "__main__":
    main()
