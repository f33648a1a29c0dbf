"""Graphs exported at load: cached by the content of the weights, loaded again without torch."""

import shutil
import subprocess
import sys

from qa.model.baking import graph_cache
from qa.model.baking.graph_cache import exported_graph
from tests.helpers import PATIENCE, REPO


def test_an_exported_graph_is_cached_by_the_content_of_the_weights(
    modern_model_dir, tmp_path, monkeypatch
):
    exports = []
    real_export = graph_cache._export
    monkeypatch.setattr(graph_cache, "_export", lambda *a: exports.append(1) or real_export(*a))
    model = shutil.copytree(modern_model_dir, tmp_path / "model")
    with exported_graph(model, tmp_path / "cache") as first:
        pass
    with exported_graph(model, tmp_path / "cache") as second:
        pass
    assert first == second and first.is_file() and len(exports) == 1
    assert first.parent.parent == tmp_path / "cache" / "onnx"
    (model / "config.json").write_text((model / "config.json").read_text().replace("}", " }"))
    with exported_graph(model, tmp_path / "cache") as changed:
        pass
    assert changed != first and len(exports) == 2


def test_without_a_usable_cache_the_graph_lives_as_long_as_the_load(modern_model_dir, tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    for cache_dir in (None, not_a_directory / "cache"):
        with exported_graph(modern_model_dir, cache_dir) as graph:
            assert graph.is_file() and not graph.is_relative_to(tmp_path)
        assert not graph.exists()


def test_a_cached_graph_loads_without_importing_torch(modern_model_dir, tmp_path):
    with exported_graph(modern_model_dir, tmp_path / "cache"):
        pass
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from qa.model.loading import load_answerer\n"
        f"load_answerer({str(modern_model_dir)!r}, threads=1, "
        f"cache_dir=Path({str(tmp_path / 'cache')!r}))"
        ".answer('Who?', 'Kit-Ho Mak is here.')\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'torch', 'transformers'}))\n"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        cwd=REPO,
    )
    assert fresh.stdout.strip() == "[]", fresh.stderr
