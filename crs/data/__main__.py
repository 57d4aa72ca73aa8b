"""``python -m crs.data stats [--data-dir DIR] [--use-approx]``: counts per file and per split."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from crs.config import add_config_arguments, config_from_args
from crs.data.catalogue import Catalogue
from crs.data.redial import Dialogue, load_dialogues
from crs.data.samples import build_samples
from crs.data.splits import APPROX_TRAIN_FILE, TEST_FILE, load_splits, train_path


@dataclass
class Counts:
    dialogues: int
    messages: int
    turns: int
    samples: int  # recommender turns
    rec_samples: int  # recommender turns that mention a movie
    rec_instances: int  # (recommender turn, mentioned movie) pairs: the standard Recall@k protocol
    new_item_instances: int  # the same, movies not mentioned earlier only
    movies: int  # distinct movies mentioned
    movies_in_catalogue: int

    @classmethod
    def of(cls, dialogues: list[Dialogue], catalogue: Catalogue) -> "Counts":
        samples = build_samples(dialogues)
        movies = set().union(*(d.movies for d in dialogues)) if dialogues else set()
        return cls(
            dialogues=len(dialogues),
            messages=sum(d.num_messages for d in dialogues),
            turns=sum(len(d.turns) for d in dialogues),
            samples=len(samples),
            rec_samples=sum(1 for s in samples if s.movies),
            rec_instances=sum(len(s.movies) for s in samples),
            new_item_instances=sum(len(s.new_movies) for s in samples),
            movies=len(movies),
            movies_in_catalogue=sum(1 for m in movies if m in catalogue),
        )


def stats_table(rows: dict[str, Counts]) -> str:
    columns = list(Counts.__dataclass_fields__)
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, counts in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{getattr(counts, c):,}" for c in columns) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crs.data", description=__doc__)
    parser.add_argument("command", choices=["stats"])
    parser.add_argument("--use-approx", action="store_true", help="add train_approx.jsonl to the training split")
    add_config_arguments(parser)
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = config_from_args(args, "data.use_approx=true" if args.use_approx else "").data
    data_dir = config.resolve_data_dir()
    catalogue = Catalogue.load(data_dir)
    print(f"catalogue: {len(catalogue):,} movies, {sum(m.has_metadata for m in catalogue.movies):,} with metadata")

    files = {path.name: path for path in (train_path(config), data_dir / "redial" / APPROX_TRAIN_FILE, data_dir / "redial" / TEST_FILE) if path.is_file()}
    by_file, reports = {}, []
    for name, path in files.items():
        dialogues, report = load_dialogues(path)
        by_file[name] = Counts.of(dialogues, catalogue)
        reports.append(report)
    print("\nper file\n" + stats_table(by_file))
    splits = load_splits(config)
    by_split = {name: Counts.of(splits[name], catalogue) for name in ("train", "valid", "test")}
    print(f"\nper split (valid = {config.valid_fraction:.0%} of {train_path(config).name} by {config.valid_by}, seed {config.split_seed}; approx in train: {config.use_approx})")
    print(stats_table(by_split))
    print("\nmalformed lines: " + ", ".join(f"{r.path.rsplit('/', 1)[-1]} {r.malformed}" for r in reports))
    for report in reports:
        for error in report.errors:
            print(f"  {report.path}: {error}")


if __name__ == "__main__":
    main()
