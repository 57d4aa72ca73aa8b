"""Train / validation / test splits over the shared ReDial files.

Test is the full official test split. Train is the complete official ``train_data.jsonl`` when the
data folder has it, else ``train_subset.jsonl``; validation is carved out of it with a fixed seed
(shuffle of the sorted conversation ids). ``train_approx.jsonl``, when asked for, joins the
training split only, so validation stays made of original, unmerged dialogues.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from crs.config import DataConfig
from crs.data.redial import Dialogue, LoadReport, load_dialogues

logger = logging.getLogger(__name__)

TEST_FILE = "test_data.jsonl"
FULL_TRAIN_FILE = "train_data.jsonl"
SUBSET_TRAIN_FILE = "train_subset.jsonl"
APPROX_TRAIN_FILE = "train_approx.jsonl"
SPLITS = ("train", "valid", "test")


@dataclass
class ReDialSplits:
    train: list[Dialogue]
    valid: list[Dialogue]
    test: list[Dialogue]
    reports: list[LoadReport] = field(default_factory=list)

    def __getitem__(self, split: str) -> list[Dialogue]:
        if split not in SPLITS:
            raise KeyError(f"unknown split {split!r}; choose from {SPLITS}")
        return getattr(self, split)


def train_path(config: DataConfig) -> Path:
    redial = config.resolve_data_dir() / "redial"
    if config.train_file != "auto":
        return redial / config.train_file
    full = redial / FULL_TRAIN_FILE
    return full if full.is_file() else redial / SUBSET_TRAIN_FILE


def carve_validation(dialogues: list[Dialogue], fraction: float, seed: int) -> tuple[list[Dialogue], list[Dialogue]]:
    """Deterministic split: the same ids and seed always give the same validation set."""
    ids = sorted(d.conversation_id for d in dialogues)
    random.Random(seed).shuffle(ids)
    valid_ids = set(ids[: round(len(ids) * fraction)])
    train = [d for d in dialogues if d.conversation_id not in valid_ids]
    valid = [d for d in dialogues if d.conversation_id in valid_ids]
    return train, valid


def held_out_workers(dialogues: list[Dialogue], fraction: float, seed: int) -> set[int]:
    """Recommender workers drawn in a fixed order (a shuffle of their sorted ids) until the
    dialogues they recommend in reach ``fraction`` of ``dialogues``; a worker whose dialogues would
    take validation past 1.5 times that share is passed over, so one prolific worker cannot."""
    counts: dict[int, int] = {}
    for d in dialogues:
        counts[d.recommender_id] = counts.get(d.recommender_id, 0) + 1
    workers = sorted(counts)
    random.Random(seed).shuffle(workers)
    target, held, taken = round(len(dialogues) * fraction), set(), 0
    for worker in workers:
        if taken >= target:
            break
        if taken + counts[worker] <= 1.5 * target:
            held.add(worker)
            taken += counts[worker]
    return held


def carve_validation_by_worker(dialogues: list[Dialogue], fraction: float, seed: int) -> tuple[list[Dialogue], list[Dialogue], set[int]]:
    """Validation made of the dialogues of held-out recommender workers (:func:`held_out_workers`);
    training of the dialogues in which no held-out worker takes part in either role, as the official
    test split's workers take part in no training dialogue. The dialogues in which a held-out worker
    is the seeker of a training recommender go to neither side. Returns train, valid and the workers."""
    held = held_out_workers(dialogues, fraction, seed)
    valid = [d for d in dialogues if d.recommender_id in held]
    train = [d for d in dialogues if d.recommender_id not in held and d.seeker_id not in held]
    return train, valid, held


def load_split(config: DataConfig, split: str) -> list[Dialogue]:
    """One split; reading only the test file when only test is wanted."""
    if split == "test":
        dialogues, _ = load_dialogues(config.resolve_data_dir() / "redial" / TEST_FILE)
        return dialogues
    return load_splits(config, with_test=False)[split]


def load_splits(config: DataConfig, with_test: bool = True) -> ReDialSplits:
    redial = config.resolve_data_dir() / "redial"
    reports = []
    train_all, report = load_dialogues(train_path(config))
    reports.append(report)
    held: set[int] = set()
    if config.valid_by == "worker":
        train, valid, held = carve_validation_by_worker(train_all, config.valid_fraction, config.split_seed)
        logger.info("validation by worker: %d held-out recommender workers, %d validation dialogues, %d dialogues "
                    "with a held-out worker as seeker left out of training", len(held), len(valid), len(train_all) - len(train) - len(valid))
    else:
        train, valid = carve_validation(train_all, config.valid_fraction, config.split_seed)
    if config.max_valid_dialogues:
        valid = valid[: config.max_valid_dialogues]
    if config.use_approx:
        approx, report = load_dialogues(redial / APPROX_TRAIN_FILE)
        reports.append(report)
        taken = {d.conversation_id for d in train_all}
        train += [d for d in approx if d.conversation_id not in taken and d.seeker_id not in held and d.recommender_id not in held]
    test: list[Dialogue] = []
    if with_test:
        test, report = load_dialogues(redial / TEST_FILE)
        reports.append(report)
    for report in reports:
        logger.info(report.summary())
    return ReDialSplits(train=train, valid=valid, test=test, reports=reports)
