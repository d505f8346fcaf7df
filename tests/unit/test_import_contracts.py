"""The import-linter contracts in pyproject.toml catch the violations they are written for.

Each case copies the packages into a scratch tree, plants one forbidden import and runs the real
lint-imports there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _root_packages() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages: list[str] = config["tool"]["importlinter"]["root_packages"]
    return packages


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for package in _root_packages():
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, check=False
    )


def test_the_tree_as_committed_keeps_every_contract(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        ("model/spec.py", "import pandas", "stays free of training and serving frameworks"),
        ("model/spec.py", "import sklearn.pipeline", "stays free of training and serving"),
        ("model/bundle.py", "import kserve", "stays free of training and serving frameworks"),
        ("transformer/codec.py", "import training.settings", "Layers"),
        ("transformer/codec.py", "import devstack.stack", "Layers"),
        ("training/train.py", "import transformer.codec", "Layers"),
        ("devstack/stack.py", "import bench.payloads", "Layers"),
        ("monitoring/report.py", "import training.settings", "Layers"),
        ("monitoring/report.py", "import transformer.codec", "Layers"),
        ("model/schema.py", "import training.settings", "Layers"),
        # Reaching pandas through the model contract counts too: no indirect imports allowed.
        ("model/spec.py", "import pandas", "The transformer imports no training library"),
    ],
)
def test_a_planted_import_breaks_its_contract(
    tree: Path, module: str, planted: str, broken: str
) -> None:
    path = tree / module
    path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    result = _lint(tree)
    assert result.returncode != 0
    broken_lines = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(broken in line for line in broken_lines), result.stdout
