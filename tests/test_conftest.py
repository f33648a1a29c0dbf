"""The suite's own harness (tests/conftest.py): a test run leaves nothing behind on the machine."""

import os
import subprocess
import sys

from tests.helpers import REPO


def test_a_run_leaves_nothing_in_the_temporary_directory(tmp_path):
    """A run that exports a graph into the suite's graph cache (QA_CACHE_DIR) and writes in its
    tests' tmp_path leaves the temporary directory as it found it, but for a library's marker of
    a few bytes: the cache goes when the run's process exits, and pytest keeps only failed tests'
    tmp_path (pytest.ini). Left behind, each run's 90 MB of graphs once filled a machine's disk
    before CI could install anything."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    environment = {key: value for key, value in os.environ.items() if key != "QA_CACHE_DIR"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_services.py::test_answer_questions_returns_best_and_candidates",
            "tests/model/baking/test_export.py",
        ],
        cwd=REPO,
        env={**environment, "TMPDIR": str(temporary)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    left = {
        path.relative_to(temporary).as_posix(): path.stat().st_size
        for path in temporary.rglob("*")
        if path.is_file()
    }
    # Libraries' own markers stay (ONNX Runtime's 51-byte session id, ".ses"), never a graph.
    assert sum(left.values()) < 4096, left
