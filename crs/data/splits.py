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
    train, valid = carve_validation(train_all, config.valid_fraction, config.split_seed)
    if config.max_valid_dialogues:
        valid = valid[: config.max_valid_dialogues]
    if config.use_approx:
        approx, report = load_dialogues(redial / APPROX_TRAIN_FILE)
        reports.append(report)
        taken = {d.conversation_id for d in train_all}
        train += [d for d in approx if d.conversation_id not in taken]
    test: list[Dialogue] = []
    if with_test:
        test, report = load_dialogues(redial / TEST_FILE)
        reports.append(report)
    for report in reports:
        logger.info(report.summary())
    return ReDialSplits(train=train, valid=valid, test=test, reports=reports)
