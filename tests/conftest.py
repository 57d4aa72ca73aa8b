"""Shared fixtures. Tests that need the shared ReDial/DBpedia files take ``data_dir``.

Without $CRS_DATA_DIR those tests fail in CI (CI=true) and are skipped, with the reason shown,
elsewhere: they never pass silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    raw = os.environ.get("CRS_DATA_DIR", "")
    path = Path(raw) if raw else None
    if path is None or not (path / "redial").is_dir():
        message = f"CRS_DATA_DIR={raw!r} does not point at the shared data (redial/, kg/)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def catalogue(data_dir):
    from crs.data import Catalogue

    return Catalogue.load(data_dir)


@pytest.fixture(scope="session")
def extended_kg(data_dir, catalogue):
    from kg.graph import load_extended_kg

    return load_extended_kg(data_dir, catalogue)
