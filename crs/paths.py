"""Where the project's own files are: the bundled checkpoints, prompts and hand-written test cases.

In a checkout, the checkout itself. An installed package (``pip install .``) holds only code, so
the files are read from ``$CRS_HOME`` when it is set, else from the current folder (run ``crs``
from a checkout, or point ``CRS_HOME`` at one).
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "CRS_HOME"


def project_root() -> Path:
    env = os.environ.get(HOME_ENV, "")
    if env:
        return Path(env).expanduser().resolve()
    source = Path(__file__).resolve().parents[1]
    if (source / "checkpoints").is_dir() or (source / "prompts").is_dir():
        return source
    return Path.cwd()


PROJECT_ROOT = project_root()
