"""The import contracts (pyproject.toml's [tool.importlinter], run by `make lint`): each holds on
the code as it is, and each fails on a deliberate violation, so that none is a contract that
cannot fail."""

import ast
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

# contract id -> the violations that must break it: (module, a line added to it; a module that
# does not exist is created, as a new module would be).
VIOLATIONS = {
    "layers": [
        ("qa/reader/options.py", "from qa import services"),
        ("qa/model/loading.py", "from qa.operations import metrics"),
        ("qa/widgets.py", "WIDGETS = []"),  # a new module outside every layer
    ],
    "model-layers": [
        ("qa/model/files.py", "from qa.model import loading"),
        ("qa/model/serving.py", "SERVING = []"),  # a new module outside every layer
    ],
    "app-below-project": [("qa/services.py", "import qasite.settings")],
    "reader-is-plain": [
        ("qa/reader/decoding.py", "import django"),
        ("qa/reader/answerer.py", "import openvino"),  # a library nobody named
    ],
    "model-packages": [
        ("qa/model/loading.py", "from django.conf import settings"),
        ("qa/model/backends/openvino.py", "import openvino"),  # a new backend's library
    ],
    "web-packages": [
        ("qa/views.py", "import numpy"),
        ("qa/widgets.py", "import onnxruntime"),  # a new module of the web layer
        ("qasite/middleware.py", "import tokenizers"),
        ("qa/services.py", "import openvino"),
    ],
    "torch-at-build-time": [
        ("qa/model/loading.py", "import torch"),
        ("qa/model/tokenization.py", "from transformers import AutoTokenizer"),
    ],
    "onnxruntime-in-its-backend": [("qa/model/tokenization.py", "import onnxruntime")],
    "web-through-services": [
        ("qa/views.py", "from qa.model.backends import onnx"),
        ("qa/serializers.py", "from qa.model.loading import load_answerer"),
        ("qa/model/__init__.py", "from qa.model.backends import onnx"),  # re-exported to all
    ],
}
CASES = [
    (contract, module, line) for contract, cases in VIOLATIONS.items() for module, line in cases
]


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
    """The two packages, the contracts and the contract type of our own, copied where a
    violation may be written."""
    root = tmp_path_factory.mktemp("layout")
    for package in ("qa", "qasite", "lint"):
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


@pytest.mark.parametrize(("contract", "module", "line"), CASES)
def test_a_violation_breaks_the_contract(contract, module, line, layout_copy):
    path = layout_copy / module
    original = path.read_text() if path.exists() else None
    path.write_text(f"{original or ''}\n{line}  # noqa\n")
    try:
        result = lint_imports(layout_copy, contract)
    finally:
        if original is None:
            path.unlink()
        else:
            path.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and "1 broken" in result.stdout, result.stdout


# The contracts see import statements only: a module imported by name at run time escapes them.
# ruff refuses importlib.import_module, builtins.__import__ and Django's import_string
# (pyproject.toml, TID251); this also refuses the bare builtins ruff cannot name (__import__, exec,
# eval) and the importers however they were imported.
IMPORTERS_BY_NAME = {"__import__", "import_module", "import_string"}
BARE_BUILTINS = {"__import__", "exec", "eval"}


def imports_by_name(source: str) -> list[int]:
    """The lines of ``source`` (Python text) that call an importer by name, or exec or eval."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name):
            named = node.func.id in IMPORTERS_BY_NAME | BARE_BUILTINS
        else:
            named = isinstance(node.func, ast.Attribute) and node.func.attr in IMPORTERS_BY_NAME
        if named:
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize(
    "source",
    [
        'torch = __import__("torch")',
        'import importlib\ntorch = importlib.import_module("torch")',
        'from importlib import import_module\ntorch = import_module("torch")',
        'from django.utils import module_loading\nload = module_loading.import_string("a.b")',
        'exec("import torch")',
    ],
)
def test_an_import_by_name_is_found(source):
    assert imports_by_name(source)


def test_no_module_imports_by_name():
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for package in ("qa", "qasite")
        for path in sorted((REPO / package).rglob("*.py"))
        for line in imports_by_name(path.read_text())
    ]
    assert not found, found
