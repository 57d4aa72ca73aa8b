"""crs as an installable package: the declared dependencies are requirements.txt's pins, the ``crs``
console script maps onto the ``python -m`` entry points, and a wheel built from the source installs
into a fresh virtual environment whose ``crs`` command runs."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from crs.cli import BENCHMARKS, COMMANDS, DATA, main, resolve

REPO = Path(__file__).resolve().parent.parent


def requirement_lines() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_declared_dependencies_are_the_pinned_requirements():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    assert sorted(declared) == sorted(requirement_lines())
    assert "torch==2.13.0" in project["dependencies"]
    assert project["scripts"]["crs"] == "crs.cli:main"


def test_every_subcommand_names_a_module_that_exists(capsys):
    for module in [m for m, _ in COMMANDS.values() if m] + list(BENCHMARKS.values()) + [m for m, _ in DATA.values()]:
        assert importlib.util.find_spec(module) is not None, module
    assert resolve(["bench", "chat-latency", "--turns", "3"]) == ("benchmarks.chat_latency", ["--turns", "3"], "crs bench chat-latency")
    assert resolve(["data", "stats"]) == ("crs.data", ["stats"], "crs data stats")
    assert resolve(["train", "rec", "--quiet"]) == ("train", ["rec", "--quiet"], "crs train")
    with pytest.raises(SystemExit, match="unknown command 'serve'"):
        resolve(["serve"])
    with pytest.raises(SystemExit, match="choose a benchmark"):
        resolve(["bench", "nothing"])
    main([])
    assert "crs <command>" in capsys.readouterr().out


@pytest.mark.slow
def test_the_package_installs_into_a_fresh_venv_and_its_command_runs(data_dir, tmp_path):
    # The source as a fresh clone has it (tracked files; no checkpoints needed to build).
    source = tmp_path / "source"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        if name.split("/")[0] in ("crs", "kg", "train", "benchmarks") or name in ("pyproject.toml", "README.md"):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # pip and setuptools: lent below
    python = venv / "bin" / "python"
    # The pinned dependencies are this environment's: a .pth file lends them (nothing is downloaded).
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "lend.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", str(source)],
                   check=True, cwd=tmp_path)
    env = dict(os.environ, CRS_DATA_DIR=str(data_dir), CRS_HOME=str(REPO), PYTHONPATH="")
    crs = str(venv / "bin" / "crs")
    where = subprocess.run([str(python), "-c", "import crs, train; print(crs.__file__, train.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.count(str(venv)) == 2  # the installed copies, not the checkout's
    assert "crs <command>" in subprocess.run([crs, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert "--checkpoint" in subprocess.run([crs, "chat", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                                            check=True).stdout
    out = tmp_path / "report"
    subprocess.run([crs, "evaluate", "--model", "popularity", "--split", "test", "--limit", "3", "--out", str(out), "--quiet"],
                   cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert (out / "metrics.json").is_file() and "popularity" in (out / "report.md").read_text()
