"""What every training stage needs: the run folder layout, data and graph loading, the encoder cache."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from crs.config import CRSConfig
from crs.data.catalogue import Catalogue
from crs.data.splits import ReDialSplits, load_splits
from kg.graph import KnowledgeGraph, extend_with_metadata, load_kg

logger = logging.getLogger(__name__)


@dataclass
class StageContext:
    """Lazily loaded inputs shared by the stages of one ``python -m train`` run."""

    config: CRSConfig

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir)

    def stage_dir(self, stage: str) -> Path:
        path = self.output_dir / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def checkpoint_dir(self) -> Path:
        return self.output_dir / "checkpoint"

    @property
    def cache_dir(self) -> Path:
        return Path(self.config.cache_dir) if self.config.cache_dir else self.output_dir / "cache"

    @cached_property
    def data_dir(self) -> Path:
        return self.config.data.resolve_data_dir()

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue.load(self.data_dir)

    @cached_property
    def splits(self) -> ReDialSplits:
        return load_splits(self.config.data, with_test=False)

    @cached_property
    def base_kg(self) -> KnowledgeGraph:
        return load_kg(self.data_dir)

    @cached_property
    def kg(self) -> KnowledgeGraph:
        """The graph every stage trains on: DBpedia extended with the movie metadata."""
        return extend_with_metadata(self.base_kg, self.catalogue, self.config.kg.enrich_linked_movies, self.config.kg.metadata_edges)
