"""The Makefile's recipes, as `make -n` prints them (nothing is run): torch's CPU build installed
first, from PyTorch's CPU index alone; the model each goal bakes, a deploy artefact only ever the
one someone chose; and that model baked once for every tree that holds it."""

import os
import shlex
import shutil
import subprocess

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")

TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


def dry_run(*arguments: str, environment: dict[str, str] | None = None) -> list[list[str]]:
    """The commands `make -n ARGUMENTS` prints in the repository, each split as the shell would
    split it, with nothing of this process's environment but PATH (and ``environment``)."""
    finished = subprocess.run(
        ["make", "-n", "--no-print-directory", *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **(environment or {})},
    )
    assert finished.returncode == 0, finished.stderr
    return [shlex.split(line) for line in finished.stdout.splitlines() if line.strip()]


def pip_installs(commands: list[list[str]]) -> list[list[str]]:
    return [c for c in commands if c[1:4] == ["-m", "pip", "install"]]


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_venv_takes_torchs_cpu_build_from_pytorchs_index_alone_and_first(tmp_path):
    """`make run`/`make test` set up the venv in two pip installs, one index each: torch
    (requirements/torch.txt, a pin only the CPU build satisfies) from PyTorch's CPU index, with
    a wait bounded where that index does not answer; then the rest from pip's usual index."""
    venv = tmp_path / "venv"
    torch, rest = pip_installs(dry_run(f"VENV={venv}", f"{venv}/installed"))
    assert option(torch, "--index-url") == TORCH_INDEX
    assert torch[-2:] == ["-r", "requirements/torch.txt"] and "--no-deps" in torch
    assert int(option(torch, "--retries")) <= 1 and float(option(torch, "--timeout")) <= 5
    assert rest[-2:] == ["-r", "requirements/dev.txt"]
    assert not {"--index-url", "--extra-index-url", "-i"} & set(rest)
    mirror = dry_run(f"VENV={venv}", "TORCH_INDEX=https://mirror.example/cpu", f"{venv}/installed")
    assert option(pip_installs(mirror)[0], "--index-url") == "https://mirror.example/cpu"


@pytest.fixture(scope="module")
def shared_model(tmp_path_factory):
    """A stand-in for the team's model beside the repository (`make` looks for its config.json)."""
    directory = tmp_path_factory.mktemp("shared-model")
    (directory / "config.json").write_text("{}")
    return str(directory)


def baked(commands: list[list[str]]) -> list[str]:
    """What each bake_model command bakes: "QA_MODEL@QA_MODEL_REVISION" ("@" alone: the
    production model at its pinned commit)."""
    found = []
    for command in commands:
        if "bake_model" in command:
            settings = dict(word.split("=", 1) for word in command if "=" in word[:20])
            found.append(f"{settings['QA_MODEL']}@{settings['QA_MODEL_REVISION']}")
    return found


SHARED = "<shared>"
# (goals and make variables, QA_MODEL in the environment) -> what the one bake bakes.
BAKES = [
    # A deploy artefact: the production model unless a model is named, even with the team's
    # model there, and whatever other goal the same command names.
    (["zip"], None, "@"),
    (["zip", "ARCH=arm64"], None, "@"),
    (["zip", "TRACING=1"], None, "@"),
    (["build/lambda-x86_64.zip"], None, "@"),
    (["runtime", "zip"], None, "@"),
    (["zip", "QA_MODEL="], None, "@"),
    (["zip", "QA_MODEL=org/model", "QA_MODEL_REVISION=0123abc"], None, "org/model@0123abc"),
    (["zip"], "org/model", "org/model@"),
    (["zip", f"QA_MODEL={SHARED}"], None, f"{SHARED}@"),
    # Local work: the team's model when it is there.
    (["runtime"], None, f"{SHARED}@"),
    (["test", "LAMBDA_PYTHON=python3.12"], None, f"{SHARED}@"),
    (["runtime", "QA_MODEL="], None, "@"),
    (["runtime"], "org/model", "org/model@"),
]


@pytest.mark.parametrize(("arguments", "environment", "bakes"), BAKES)
def test_each_goal_bakes_the_model_it_should_once(shared_model, arguments, environment, bakes):
    arguments = [a.replace(SHARED, shared_model) for a in arguments]
    commands = dry_run(
        f"SHARED_MODEL={shared_model}",
        *arguments,
        environment={"QA_MODEL": environment} if environment else None,
    )
    assert baked(commands) == [bakes.replace(SHARED, shared_model)]
    if "test" in arguments:  # both trees, from the one baked model
        trees = [c[-2] for c in commands if c[-3:-2] == ["docker/assemble.sh"]]
        assert trees == ["build/runtime", "build/runtime-tracing"]
        assert all(c[-1] == "build/model" for c in commands if "docker/assemble.sh" in c)


def test_without_the_teams_model_local_work_bakes_the_production_model(tmp_path):
    assert baked(dry_run(f"SHARED_MODEL={tmp_path}", "runtime")) == ["@"]


@pytest.mark.parametrize("goal", ["run", "ask"])
def test_run_and_ask_serve_the_teams_model(shared_model, goal):
    [command] = [
        c
        for c in dry_run(f"SHARED_MODEL={shared_model}", goal, "QUESTION=Who?")
        if "manage.py" in c
    ]
    assert f"QA_MODEL={shared_model}" in command
