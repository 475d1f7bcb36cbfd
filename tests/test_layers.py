"""The three floors hold: the core imports neither app, serving and training stay apart, no
cycles. `make test` runs the same contracts (`lint-imports`, pyproject.toml); here a copy of
the tree with one backwards import proves they catch it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def lint(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the copy's packages shadow the installed
    return subprocess.run([LINT, "--no-cache"], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("tree")
    for package in ("opm_ml", "training", "serving"):
        shutil.copytree(ROOT / package, copy / package,
                        ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", copy)
    return copy


def test_the_real_tree_keeps_every_contract(tree):
    done = lint(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("opm_ml/features.py", "import training.pipeline", "The core imports neither"),
    ("serving/requests.py", "import training.registry", "never import each other"),
    ("opm_ml/forecasting/families.py", "import opm_ml.forecasting.model",
     "No import cycles"),
])
def test_a_backwards_import_breaks_its_contract(tree, tmp_path, module, line, broken):
    scratch = tmp_path / "scratch"
    shutil.copytree(tree, scratch)
    path = scratch / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    done = lint(scratch)
    assert done.returncode != 0, done.stdout
    assert f"{broken}" in done.stdout and "BROKEN" in done.stdout, done.stdout
