"""Atomic writes: a folder or file appears whole or not at all, so an interrupted run loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = path.with_name(f".{path.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: str | Path, data: object) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


class CheckpointFileError(ValueError):
    """A checkpoint file that is missing, corrupt, or does not fit ``config.json``; the message starts
    with the file's path."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = Path(path), problem


def verify_files(folder: str | Path, required: Iterable[str] = (), skip: Iterable[str] = ()) -> None:
    """Raise :class:`CheckpointFileError` for the first ``required`` file (relative path) missing
    under ``folder``, or the first ``.json`` / ``.safetensors`` file there that does not read whole
    (a truncated or garbled file); sub-folders named in ``skip`` and hidden entries are left out."""
    from safetensors import safe_open

    folder = Path(folder)
    for name in required:
        if not (folder / name).is_file():
            raise CheckpointFileError(folder / name, "missing")
    skipped = set(skip)
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if not path.is_file() or parts[0] in skipped or any(part.startswith(".") for part in parts):
            continue
        if path.suffix == ".json":
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as error:
                raise CheckpointFileError(path, f"corrupt: not valid JSON ({error})") from None
        elif path.suffix == ".safetensors":
            try:  # opening parses the header and checks that its offsets cover the file exactly
                with safe_open(str(path), framework="pt"):
                    pass
            except Exception as error:  # safetensors raises its own error types for truncated headers and data
                raise CheckpointFileError(path, f"corrupt or truncated ({' '.join(str(error).split())[:200]})") from None
