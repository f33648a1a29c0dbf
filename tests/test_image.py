"""The runtime tree (`make runtime` -> build/runtime): the image's /var/task and the zip's contents,
built outside Docker by the Dockerfile's own scripts for Lambda's Python (3.12), without torch;
served by the real Lambda runtime: the Runtime Interface Emulator running awslambdaric."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run import tree_size
from tests.helpers import REPO, runtime_tree, traced_twice
from tests.lambda_events import EVENTS, body_of, make_event
from tests.lambda_runtime import (
    distributions,
    emulator,
    every_kind_of_request,
    lambda_environment,
    lambda_python,
    probe,
    unused_libraries,
)

pytestmark = pytest.mark.image

TREE = REPO / "build" / "runtime"
# The same tree built with TRACING=1 (`make runtime TRACING=1`; `make test` builds both).
TRACING_TREE = REPO / "build" / "runtime-tracing"
OLD_DEMO_IMAGE_MB = 490
# What serving never imports: build-time tools, their dependencies, and test tools.
NEVER = {
    "torch",
    "transformers",
    "sympy",
    "mpmath",
    "networkx",
    "safetensors",
    "huggingface_hub",
    "hf_xet",
    "regex",
    "jsonschema",
    "setuptools",
    "onnx",
    "onnxscript",
    "pytest",
    "_pytest",
    "hypothesis",
    "cfnlint",
    "google",
    "flatbuffers",
    "packaging",
    "nvidia",
}


@pytest.fixture(scope="module")
def tree() -> Path:
    if not (TREE / "installed").is_file():
        pytest.skip("no runtime tree: `make runtime` (or `make test`) builds build/runtime")
    return TREE


def test_tree_holds_no_torch_and_the_model_as_an_onnx_graph(tree):
    names = {path.name for path in tree.iterdir()}
    assert {"django", "rest_framework", "onnxruntime", "numpy", "tokenizers", "apig_wsgi"} <= names
    assert {"qa", "qasite", "templates", "manage.py"} <= names
    assert not names & NEVER
    assert sorted(path.name for path in (tree / "model").iterdir()) == sorted(runtime_tree("serve"))
    # Bytecode for Lambda's Python, compiled at build time.
    assert list((tree / "qa").glob("__pycache__/*.cpython-312.pyc"))


def test_nothing_the_list_drops_is_left_in_the_tree(tree):
    """Each "drop" line of docker/runtime-tree.txt matches nothing in the tree built with it,
    and every line below a package names a package the tree has (a misspelt one would match
    nothing in any tree)."""
    patterns = runtime_tree("drop")
    assert patterns
    for pattern in patterns:
        # Bytecode is compiled again after the drop (assemble.sh), for Lambda's Python.
        left = [path for path in tree.glob(pattern) if "__pycache__" not in path.parts]
        assert not left, pattern
        top, *below = pattern.rstrip("/").split("/")
        assert not below or top == "**" or (tree / top).is_dir(), pattern


@pytest.mark.parametrize(
    "line", ["drop numpy tests", "drop", "drop /usr/lib/", "drop ../tests/", "drop numpy/../.."]
)
def test_a_drop_line_that_could_reach_outside_the_tree_fails_the_build_first(tmp_path, line):
    """Each "drop" pattern is expanded unquoted under the tree: a second word ("tests") would be
    deleted from the working directory, an empty one would delete the tree, an absolute or ".."
    one what lies outside it. build-runtime.sh refuses such a line before it installs anything."""
    (tmp_path / "docker").mkdir()
    shutil.copy(REPO / "docker" / "build-runtime.sh", tmp_path / "docker")
    (tmp_path / "docker" / "runtime-tree.txt").write_text(
        f"# a comment\nserve config.json\n{line}\n"
    )
    (tmp_path / "tests").mkdir()
    finished = subprocess.run(
        [str(tmp_path / "docker" / "build-runtime.sh"), str(tmp_path / "tree")],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHON": sys.executable},
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 2, finished.stderr
    assert "expected one pattern under the tree" in finished.stderr
    assert (tmp_path / "tests").is_dir() and not (tmp_path / "tree").exists()


@pytest.fixture(scope="module")
def report(tree, tmp_path_factory) -> dict:
    return probe(tree, tmp_path_factory.mktemp("lambda-tmp"))


def test_every_distribution_in_the_tree_is_imported_by_serving(tree, report):
    """After every kind of request, the process has imported a module of each distribution the
    tree holds: nothing is installed that serving never uses."""
    unused = {
        dist for dist, tops in distributions(tree).items() if not tops & set(report["modules"])
    }
    assert not unused
    assert not set(report["modules"]) & NEVER


def test_no_large_shared_library_in_the_tree_goes_unloaded(tree, report):
    """ONNX Runtime's C API library (35 MB), for one, is never loaded by its Python module."""
    assert unused_libraries(tree, report, min_bytes=1_000_000) == []


def test_no_module_is_compiled_at_run_time(tree, report):
    """Lambda's /var/task is read-only: every module of the tree imports from its bytecode
    (hash-based, unchecked: a zip's 2-second timestamps cannot make it stale)."""
    assert [path for path in report["compiled"] if path.startswith(str(tree))] == []


def test_tree_is_small(tree, capsys):
    size = tree_size(tree)
    without_model = tree_size(tree, exclude="model")
    with capsys.disabled():
        print(
            f"\nruntime tree: {size['installed_mb']:.0f} MB installed, "
            f"{size['gzipped_mb']:.0f} MB gzipped; without the model "
            f"{without_model['installed_mb']:.0f} MB, {without_model['gzipped_mb']:.0f} MB gzipped"
        )
    assert without_model["installed_mb"] < 150
    assert without_model["gzipped_mb"] < OLD_DEMO_IMAGE_MB / 8


@pytest.fixture(scope="module")
def served(tree, tmp_path_factory):
    with emulator(tree, tmp_path_factory.mktemp("lambda-tmp")) as invoke:
        yield invoke


def test_emulator_answers_the_json_api(served):
    response = served(json.loads((EVENTS / "http-api-v2-post-answer.json").read_text()))
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["answer"] == "Kit-Ho Mak"


def test_emulator_answers_base64_bodies_from_a_rest_api(served):
    body = json.dumps(
        {"question": "Where do I come from?", "context": "I'm Kit-Ho Mak. I come from Hong Kong."}
    )
    event = make_event(
        "rest-api-v1",
        "POST",
        "/api/answer/",
        body=body,
        b64=True,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    response = served(event)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["answer"] == "Hong Kong"


def test_emulator_serves_every_kind_of_request(served):
    for what, event, status in every_kind_of_request():
        if what == "over the upload limit":
            continue  # beyond the 6 MB an invocation may carry; the handler test covers it
        response = served(event)
        assert response["statusCode"] == status, (what, response)
        if what == "page":
            assert b"Kit-Ho Mak" in body_of(response).encode()
            assert response["cookies"] and "Secure" in response["cookies"][0]
        if what == "health":
            assert json.loads(body_of(response)) == {
                "model": "qa-minilm-squad",
                "quantization": None,
                "state": "ready",
                "engine": "onnx",
                "error": None,
            }
    assert served(json.loads((EVENTS / "keep-warm.json").read_text())) == {"warm": True}


@pytest.fixture(scope="module")
def tracing_tree() -> Path:
    if not (TRACING_TREE / "installed").is_file():
        pytest.skip("no tracing tree: `make runtime TRACING=1` (or `make test`) builds it")
    return TRACING_TREE


def test_the_tracing_tree_adds_the_x_ray_sdk_and_nothing_else(tree, tracing_tree):
    added = set(distributions(tracing_tree)) - set(distributions(tree))
    assert {name.split("-")[0] for name in added} == {"aws_xray_sdk", "wrapt"}
    assert set(distributions(tree)) <= set(distributions(tracing_tree))
    # Lambda's runtime provides botocore; the tree must not shadow it.
    assert not {path.name for path in tracing_tree.iterdir()} & {"botocore", "boto3"}


def test_every_distribution_in_the_tracing_tree_is_imported_with_tracing_on(tracing_tree, tmp_path):
    report = probe(tracing_tree, tmp_path, QA_TRACING="1")
    modules = set(report["modules"])
    unused = {dist for dist, tops in distributions(tracing_tree).items() if not tops & modules}
    assert not unused
    assert {"aws_xray_sdk", "wrapt"} <= modules and not modules & NEVER
    assert [path for path in report["compiled"] if path.startswith(str(tracing_tree))] == []


def test_the_emulator_serves_the_tracing_tree_with_tracing_on(tracing_tree, tmp_path):
    with emulator(tracing_tree, tmp_path, QA_TRACING="1") as invoke:
        response = invoke(json.loads((EVENTS / "http-api-v2-post-answer.json").read_text()))
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["answer"] == "Kit-Ho Mak"


def test_the_tracing_tree_sends_x_ray_segments_without_what_users_send(tracing_tree, tmp_path):
    """Under Lambda's Python, with nothing but the tree (no botocore: the X-Ray SDK needs none
    on Lambda), each invocation's segment reaches the daemon, with the cold start and neither
    the question, the context nor the answer."""
    event = EVENTS / "http-api-v2-post-answer.json"
    environment = lambda_environment(tracing_tree, tmp_path)
    datagrams, segments, _ = traced_twice([lambda_python(), "-S"], event, environment, tracing_tree)
    assert [segment["annotations"]["ColdStart"] for segment in segments] == [True, False]
    assert all("metadata" not in segment for segment in segments)
    for text in json.loads(json.loads(event.read_text())["body"]).values():
        assert text not in "".join(datagrams)
    assert "Kit-Ho" not in "".join(datagrams)
