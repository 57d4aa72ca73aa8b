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


def pytest_collection_modifyitems(items):
    """Every test that takes ``data_dir`` (directly or through another fixture) carries the
    ``data`` marker, so ``-m "not data"`` runs exactly the tests that need no shared files."""
    for item in items:
        if "data_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)


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


# ---------------------------------------------------------------------- a trained model (UI and task tests)

BUNDLED_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "default"


def _missing(message: str):
    """Fail in CI (the model must be there), skip with the reason elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def checkpoint_dir() -> Path:
    """The bundled model (checkpoints/default/), else the folder $CRS_TEST_CHECKPOINT names."""
    if (BUNDLED_CHECKPOINT / "config.json").is_file():
        return BUNDLED_CHECKPOINT
    raw = os.environ.get("CRS_TEST_CHECKPOINT", "")
    if raw:
        path = Path(raw)
        if not (path / "config.json").is_file():
            pytest.fail(f"CRS_TEST_CHECKPOINT={raw!r} has no config.json")
        return path
    _missing(f"no model checkpoint: {BUNDLED_CHECKPOINT} has no config.json and CRS_TEST_CHECKPOINT is not set")


@pytest.fixture(scope="session")
def models(checkpoint_dir):
    """Everything the UI serves, loaded once per test session."""
    from crs.serve.models import Models

    loaded = Models.load(checkpoint_dir)
    if loaded.pipeline is None:
        pytest.fail(f"the checkpoint {checkpoint_dir} did not load: {loaded.note}")
    return loaded


@pytest.fixture(scope="session")
def pipeline(models):
    return models.pipeline


@pytest.fixture(scope="session")
def live_app(models):
    """The UI served on a free 127.0.0.1 port for the whole session; yields its URL."""
    import app

    demo, url = app.serve_in_background(models)
    try:
        yield url
    finally:
        demo.close()
