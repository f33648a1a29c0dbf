"""The import contracts (pyproject.toml's [tool.importlinter], run by `make lint`): each holds on
the code as it is, and each fails on a deliberate violation, so that none is a contract that
cannot fail."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
SETTINGS = tomllib.loads((REPO / "pyproject.toml").read_text())
CONTRACTS = SETTINGS["tool"]["importlinter"]["contracts"]

# contract id -> (module, the line that breaks it)
VIOLATIONS = {
    "layers": ("qa/reader/options.py", "from qa import services"),
    "model-layers": ("qa/model/files.py", "from qa.model import loading"),
    "app-below-project": ("qa/services.py", "import qasite.settings"),
    "reader-is-plain": ("qa/reader/decoding.py", "import django"),
    "model-without-django": ("qa/model/loading.py", "from django.conf import settings"),
    "torch-at-build-time": ("qa/model/loading.py", "import torch"),
    "web-without-tensors": ("qa/views.py", "import numpy"),
}


def lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess:
    options = [option for contract in contracts for option in ("--contract", contract)]
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", *options],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def layout_copy(tmp_path_factory) -> Path:
    """The two packages and the contracts, copied where a violation may be written."""
    root = tmp_path_factory.mktemp("layout")
    for package in ("qa", "qasite"):
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_every_contract_has_a_violation_to_prove_it():
    assert {contract["id"] for contract in CONTRACTS} == set(VIOLATIONS)


def test_the_code_keeps_every_contract():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_a_violation_breaks_the_contract(contract, layout_copy):
    module, line = VIOLATIONS[contract]
    path = layout_copy / module
    original = path.read_text()
    path.write_text(f"{original}\n{line}  # noqa\n")
    try:
        result = lint_imports(layout_copy, contract)
    finally:
        path.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and "1 broken" in result.stdout, result.stdout
