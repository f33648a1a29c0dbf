"""Loading an answerer on either engine, refusing broken models clearly, and serving a baked
graph without torch or transformers."""

import subprocess
import sys

import pytest

from qa.errors import ModelLoadError
from qa.examples import KIT_HO
from qa.loading import load_answerer
from tests.helpers import PATIENCE, REPO

ENGINES = ["onnx", "torch"]


@pytest.mark.parametrize("engine", ENGINES)
def test_both_layouts_load_and_answer_with_exact_offsets(tiny_model_dir, engine):
    answerer = load_answerer(str(tiny_model_dir), threads=1, engine=engine)
    context = KIT_HO["context"]
    [best] = answerer.answer(KIT_HO["question"], context)
    assert context[best.start : best.end] == best.answer
    assert answerer.model_max_length == 512


@pytest.mark.parametrize("engine", ENGINES)
def test_a_broken_model_is_refused_at_load_with_a_reason_free_of_paths(broken_model, engine):
    with pytest.raises(ModelLoadError) as raised:
        load_answerer(str(broken_model.directory), threads=1, engine=engine)
    assert raised.value.reason == broken_model.reason
    assert "/" not in raised.value.reason


def test_a_directory_without_a_graph_is_exported_once_into_the_cache(modern_model_dir, tmp_path):
    for _ in range(2):
        load_answerer(str(modern_model_dir), threads=1, cache_dir=tmp_path)
    [graph] = (tmp_path / "onnx").glob("*/model.onnx")
    assert graph.stat().st_size > 0


def test_serving_a_baked_graph_imports_neither_torch_nor_transformers(baked_model_dir):
    script = (
        "import sys\n"
        "from qa.loading import load_answerer\n"
        f"answerer = load_answerer({str(baked_model_dir)!r}, threads=1, engine='onnx')\n"
        "[best] = answerer.answer('Who?', 'Kit-Ho Mak is here. ' * 200)\n"
        "assert best.answer, best\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'torch', 'transformers'}))\n"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=PATIENCE
    )
    assert fresh.stdout.strip() == "[]", fresh.stderr


def test_the_baked_trace_loads_without_transformers(baked_model_dir):
    script = (
        "import sys\n"
        "from qa.loading import load_answerer\n"
        "for fast in (False, True):\n"
        f"    load_answerer({str(baked_model_dir)!r}, threads=1, engine='torch', fast=fast)"
        ".answer('When?', 'In 1200.')\n"
        "print('transformers' in sys.modules)\n"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=PATIENCE
    )
    assert fresh.stdout.strip() == "False", fresh.stderr
