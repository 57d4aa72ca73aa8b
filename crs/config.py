"""Typed configuration for every part of crs.

Defaults live in the dataclasses below, and only there. A YAML file overrides them, and
``key.sub=value`` pairs from the command line override the file (precedence: command line >
file > defaults, as in RecBole). Merging and type checking are done by OmegaConf's structured
configs, so an unknown key or a value of the wrong type fails with the key's full name; the
range checks in each ``__post_init__`` name the key too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

DATA_DIR_ENV = "CRS_DATA_DIR"


class ConfigError(ValueError):
    """A configuration key is unknown, mistyped or out of range."""


def _check(condition: bool, key: str, message: str, value: object) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message} (got {value!r})")


@dataclass
class DataConfig:
    # Folder with redial/ and kg/ (the layout of the shared data README). Empty: $CRS_DATA_DIR.
    data_dir: str = ""
    # "auto" takes redial/train_data.jsonl (the complete official split) when present,
    # else redial/train_subset.jsonl.
    train_file: str = "auto"
    # Add redial/train_approx.jsonl (rebuilt dialogues, see the data README) to the training split.
    use_approx: bool = False
    valid_fraction: float = 0.1
    split_seed: int = 13

    def __post_init__(self) -> None:
        _check(0.0 < self.valid_fraction < 1.0, "data.valid_fraction", "must lie in (0, 1)", self.valid_fraction)

    def resolve_data_dir(self) -> Path:
        """The data folder: this config's ``data_dir``, else ``$CRS_DATA_DIR``; fails clearly if absent."""
        raw = self.data_dir or os.environ.get(DATA_DIR_ENV, "")
        if not raw:
            raise FileNotFoundError(
                f"no data directory: pass --data-dir or set {DATA_DIR_ENV} to the folder holding redial/ and kg/"
            )
        path = Path(raw).expanduser()
        if not (path / "redial").is_dir():
            raise FileNotFoundError(f"data directory {path} has no redial/ folder (is {DATA_DIR_ENV} right?)")
        return path


@dataclass
class KGConfig:
    # Give every catalogue movie metadata edges (genre, director, writer, star) from
    # movie_info.json, not only the movies missing from the DBpedia subgraph.
    enrich_linked_movies: bool = True


@dataclass
class LinkingConfig:
    # rapidfuzz score (0-100) a fuzzy title/name match must reach.
    fuzzy_cutoff: float = 90.0
    # Spans shorter than this (characters) are only linked on an exact, case-sensitive match.
    min_fuzzy_chars: int = 6

    def __post_init__(self) -> None:
        _check(0.0 <= self.fuzzy_cutoff <= 100.0, "linking.fuzzy_cutoff", "must lie in [0, 100]", self.fuzzy_cutoff)
        _check(self.min_fuzzy_chars >= 1, "linking.min_fuzzy_chars", "must be >= 1", self.min_fuzzy_chars)


@dataclass
class EvalConfig:
    ks: list[int] = field(default_factory=lambda: [1, 10, 50])
    # Evaluate only the first N dialogues of the split (0: all).
    limit: int = 0

    def __post_init__(self) -> None:
        _check(len(self.ks) > 0 and all(k >= 1 for k in self.ks), "eval.ks", "must be a non-empty list of k >= 1", self.ks)
        _check(self.limit >= 0, "eval.limit", "must be >= 0", self.limit)


@dataclass
class CRSConfig:
    data: DataConfig = field(default_factory=DataConfig)
    kg: KGConfig = field(default_factory=KGConfig)
    linking: LinkingConfig = field(default_factory=LinkingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> CRSConfig:
    """Defaults, then the YAML file at ``path``, then ``key.sub=value`` overrides.

    Raises ConfigError naming the offending key for unknown keys, wrong types and bad values.
    """
    try:
        merged = OmegaConf.structured(CRSConfig)
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"config file {path} does not exist")
            merged = OmegaConf.merge(merged, OmegaConf.load(path))
        bad = [item for item in overrides if "=" not in item]
        if bad:
            raise ConfigError(f"overrides must look like key.sub=value, got {bad}")
        merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None)
        message = str(error).splitlines()[0]
        raise ConfigError(f"{key}: {message}" if key else message) from None
    assert isinstance(config, CRSConfig)
    return config


def to_yaml(config: CRSConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))
