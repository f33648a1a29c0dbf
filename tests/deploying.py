"""Helpers for the deployment tests: `serverless package` offline, deploy/serverless-params.js's
deploy-time hooks against a stubbed AWS, and cfn-lint."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO

SERVERLESS = REPO / "node_modules" / ".bin" / "serverless"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/qasite@sha256:" + "0" * 64
BIN = Path(sys.executable).parent
ZIP_BYTES = b"PK\x05\x06" + bytes(18)  # an empty zip stands in for `make zip`'s


def run_package(
    tmp_path: Path, *params: str, region: str = "eu-west-1"
) -> subprocess.CompletedProcess:
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
    args = [str(SERVERLESS), "package", "--region", region, f"--param=imageUri={IMAGE}"]
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


def cfn_lint(*templates: Path, options: tuple[str, ...] = ()) -> None:
    """cfn-lint with every check but W3005 on ``templates`` (one run for them all), which must
    pass; ``options``: cfn-lint's own, such as ("--regions", "us-east-1")."""
    # W3005: the framework adds a DependsOn that a Ref already implies; harmless, not ours.
    result = subprocess.run(
        [str(BIN / "cfn-lint"), "--ignore-checks", "W3005", *options, "--", *map(str, templates)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Runs one hook of deploy/serverless-params.js in node, with the framework's objects stubbed:
# the provider's request() answers from RESPONSES ("Service.method" -> a response, or
# {"error": message} to throw) and records each call. Prints {"ok", "error", "calls"} as JSON.
HOOK_HARNESS = """
const [pluginPath, hook, stage, region, defaults, given, responses] = process.argv.slice(1);
const QasiteParams = require(pluginPath);
const calls = [];
class ServerlessError extends Error {}
const serverless = {
  service: { provider: { stage, region }, functions: { web: {} } },
  configurationInput: { params: { default: JSON.parse(defaults) } },
  classes: { Error: ServerlessError },
  getProvider: () => ({
    naming: { getStackName: () => `qasite-${stage}` },
    request: async (service, method, params) => {
      calls.push([service, method, params]);
      const answer = JSON.parse(responses)[`${service}.${method}`];
      if (answer && answer.error) throw new Error(answer.error);
      return answer || {};
    },
  }),
};
const plugin = new QasiteParams(serverless, { param: JSON.parse(given) });
Promise.resolve()
  .then(() => plugin.hooks[hook]())
  .then(
    () => console.log(JSON.stringify({ ok: true, calls })),
    (error) => console.log(JSON.stringify({ ok: false, error: error.message, calls }))
  );
"""


def run_hook(
    hook: str,
    *params: str,
    responses: dict | None = None,
    stage: str = "prod",
    region: str = "eu-west-1",
) -> dict:
    """Runs serverless-params.js's ``hook`` ("before:deploy:deploy", ...) with serverless.yml's
    default parameters (``${sls:stage}`` resolved) and ``params`` ("name=value") given, against
    a stubbed AWS answering ``responses``: {"ok": bool, "error": message, "calls": [[service,
    method, parameters], ...]}."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    defaults = yaml.safe_load((REPO / "serverless.yml").read_text())["params"]["default"]
    defaults = {
        name: value.replace("${sls:stage}", stage) if isinstance(value, str) else value
        for name, value in defaults.items()
    }
    result = subprocess.run(
        [
            node,
            "-e",
            HOOK_HARNESS,
            str(REPO / "deploy" / "serverless-params.js"),
            hook,
            stage,
            region,
            json.dumps(defaults),
            json.dumps(list(params)),
            json.dumps(responses or {}),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
