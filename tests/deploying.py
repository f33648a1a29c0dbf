"""Helpers for the deployment tests: `serverless package` offline, and cfn-lint."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

SERVERLESS = REPO / "node_modules" / ".bin" / "serverless"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/qasite@sha256:" + "0" * 64
BIN = Path(sys.executable).parent
ZIP_BYTES = b"PK\x05\x06" + bytes(18)  # an empty zip stands in for `make zip`'s


def run_package(tmp_path: Path, *params: str) -> subprocess.CompletedProcess:
    """`serverless package --param=...` with no AWS credentials at all, in a copy of what it
    reads (serverless.yml, its plugin, and an empty zip for each architecture, with tracing
    and without)."""
    if not SERVERLESS.is_file():
        pytest.skip("osls is not installed: `make test` runs npm ci")
    shutil.copy(REPO / "serverless.yml", tmp_path)
    (tmp_path / "deploy").mkdir()
    shutil.copy(REPO / "deploy" / "serverless-params.js", tmp_path / "deploy")
    (tmp_path / "build").mkdir()
    for architecture in ("x86_64", "arm64"):
        for suffix in ("", "-tracing"):
            (tmp_path / "build" / f"lambda-{architecture}{suffix}.zip").write_bytes(ZIP_BYTES)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "SLS_TELEMETRY_DISABLED": "1",
    }
    args = [str(SERVERLESS), "package", f"--param=imageUri={IMAGE}"]
    args += [f"--param={param}" for param in params]
    return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)


def package(tmp_path: Path, *params: str) -> Path:
    """The generated template's path, after a `serverless package` that must succeed."""
    result = run_package(tmp_path, *params)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path / ".serverless" / "cloudformation-template-update-stack.json"


def packaged(directory: Path, *params: str) -> tuple[Path, dict]:
    """The generated template's path and content, after `serverless package` in directory."""
    path = package(directory, *params)
    return path, json.loads(path.read_text())


def as_list(value) -> list:
    """A template's value that may be one item or a list of them (an IAM Action, a Resource)."""
    return value if isinstance(value, list) else [value]


def cfn_lint(template: Path, *args: str) -> None:
    # W3005: the framework adds a DependsOn that a Ref already implies; harmless, not ours.
    result = subprocess.run(
        [str(BIN / "cfn-lint"), "--ignore-checks", "W3005", *args, "--", str(template)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
