"""requirements/*.lock (docker/lock.sh): each is the hash lock of its requirements file's pins,
for Lambda's Python on both CPUs, and the builds install from it and from nothing else."""

import os
import re

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.helpers import REPO

REQUIREMENTS = REPO / "requirements"
# Distributions with compiled code, by lock: a wheel per CPU, so at least one hash per CPU.
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
BINARY = {"runtime": {"onnxruntime", "numpy", "tokenizers", "pyyaml"}, "tracing": {"wrapt"}}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path) -> dict[str, str]:
    """name -> version of a requirements file of exact pins (comments and blank lines skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):  # not -r other.txt
            name, version = line.split("==")
            found[canonical(name)] = version
    return found


def lock(path) -> dict[str, tuple[str, set[str]]]:
    """name -> (version, SHA-256 hashes) of a lock in pip's --require-hashes format."""
    entries = {}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0] if line.startswith("#") else line
        if not line.strip():
            continue
        requirement, *options = line.split()
        name, version = requirement.split("==")
        hashes = {o.removeprefix("--hash=sha256:") for o in options}
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), line
        entries[canonical(name)] = (version, hashes)
    return entries


@pytest.mark.parametrize("name", ["runtime", "tracing", "server"])
def test_the_lock_holds_exactly_the_pins(name):
    pinned = pins(REQUIREMENTS / f"{name}.txt")
    locked = lock(REQUIREMENTS / f"{name}.lock")
    assert {n: v for n, (v, _) in locked.items()} == pinned, (
        f"requirements/{name}.lock is stale: docker/lock.sh requirements/{name}.txt "
        f"requirements/{name}.lock"
    )
    assert all(hashes for _, hashes in locked.values())


@pytest.mark.parametrize("lock_name, binary", BINARY.items())
def test_compiled_distributions_are_locked_for_both_cpus(lock_name, binary):
    locked = lock(REQUIREMENTS / f"{lock_name}.lock")
    assert binary <= set(locked)
    for name in binary:
        assert len(locked[name][1]) >= 2, f"{name}: one wheel only (x86_64 and arm64 expected)"


def test_tracing_adds_to_the_tree_without_replacing_the_runtimes_own():
    """The X-Ray SDK is installed over the runtime tree (--no-deps): nothing of the tree's is
    pinned again, and neither is botocore, which must stay the one Lambda's runtime provides."""
    tracing = pins(REQUIREMENTS / "tracing.txt")
    assert not set(tracing) & set(pins(REQUIREMENTS / "runtime.txt"))
    assert not set(tracing) & {"boto3", "botocore", "s3transfer", "urllib3"}
    assert "aws-xray-sdk" in tracing


def test_the_server_runs_the_gunicorn_the_tests_run():
    server, dev = pins(REQUIREMENTS / "server.txt"), pins(REQUIREMENTS / "dev.txt")
    assert server["gunicorn"] == dev["gunicorn"]


def test_builds_install_from_the_locks_by_hash_from_one_index_at_a_time():
    build = (REPO / "docker" / "build-runtime.sh").read_text()
    assert "--require-hashes" in build and "requirements/runtime.lock" in build
    assert "requirements/tracing.lock" in build and 'tracing.txt"' not in build
    assert 'runtime.txt"' not in build
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "--extra-index-url" not in dockerfile + build
    server = " ".join(dockerfile.replace("\\\n", " ").split())
    assert "--require-hashes --target /var/task -r /tmp/server.lock" in server


# Where torch's builds differ: on Linux and Windows PyPI's torch is the CUDA build and PyTorch's
# CPU index labels the CPU build "+cpu"; macOS has one build, unlabelled.
PLATFORMS = {
    "linux x86_64": ({"sys_platform": "linux", "platform_machine": "x86_64"}, "+cpu"),
    "linux aarch64": ({"sys_platform": "linux", "platform_machine": "aarch64"}, "+cpu"),
    "windows": ({"sys_platform": "win32", "platform_machine": "AMD64"}, "+cpu"),
    "macos": ({"sys_platform": "darwin", "platform_machine": "arm64"}, ""),
}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_torch_is_pinned_once_to_its_cpu_build_which_pypi_alone_cannot_satisfy(platform):
    """requirements/torch.txt pins torch, and no other file does (build.txt takes it with -r):
    on each platform exactly one pin applies, and only the CPU build satisfies it, never PyPI's
    release of the same version, which is the CUDA build on Linux and Windows (several GB)."""
    environment, label = PLATFORMS[platform]
    naming = {
        path.name
        for path in REQUIREMENTS.glob("*.txt")
        if any(canonical(r.name) == "torch" for r in requirement_lines(path))
    }
    assert naming == {"torch.txt"}
    assert "-r torch.txt" in (REQUIREMENTS / "build.txt").read_text().splitlines()
    [pin] = [
        r
        for r in requirement_lines(REQUIREMENTS / "torch.txt")
        if r.marker is None or r.marker.evaluate(environment)
    ]
    [specifier] = pin.specifier
    assert specifier.operator == "=="
    release = Version(specifier.version).public
    assert specifier.version == release + label
    assert not label or not pin.specifier.contains(release)  # PyPI's CUDA build


def requirement_lines(path) -> list[Requirement]:
    """The requirements a requirements file names itself (not those of the files it -r's)."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def test_every_install_of_torch_takes_its_cpu_build_from_pytorchs_index_alone():
    """The Dockerfile's bake stage and the benchmark's reference, as the Makefile's .venv
    (tests/test_makefile.py): torch from requirements/torch.txt and PyTorch's CPU index, first and
    alone, then the rest from PyPI."""
    from bench import run

    dockerfile = " ".join((REPO / "Dockerfile").read_text().replace("\\\n", " ").split())
    assert (
        f"pip install --no-cache-dir --no-deps --index-url {TORCH_INDEX} "
        "-r requirements/torch.txt && python3.12 -m pip install --no-cache-dir --index-url "
        "https://pypi.org/simple -r requirements/build.txt"
    ) in dockerfile
    assert run.TORCH_REQUIREMENTS == REQUIREMENTS / "torch.txt"
    assert run.TORCH_INDEX == os.environ.get("TORCH_INDEX", TORCH_INDEX)  # a mirror, as for make
    assert not any(canonical(p).startswith("torch") for p in run.REF_PACKAGES + run.REF_RUNTIME)
