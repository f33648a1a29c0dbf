"""The graph optimized at bake time: the plain graph's logits bit for bit, its weights in a file
of their own, all or nothing."""

import shutil

import numpy as np
import pytest

from qa.model.backends.onnx import DATA_FINGERPRINT_KEY, session
from qa.model.baking import optimization
from qa.model.baking.optimization import OptimizedGraphMismatch, save_optimized
from qa.model.files import OPTIMIZED_DATA_FILE, OPTIMIZED_ONNX_FILE, data_fingerprint, read_config
from qa.model.probes import probes


def inputs(vocab_size: int) -> list[tuple]:
    """Batches of 1 to 3 windows of 5 to 64 tokens, the last window of each partly padding."""
    rng = np.random.default_rng(0)
    batches = []
    for windows, tokens in [(1, 5), (1, 23), (2, 64), (3, 64)]:
        ids = rng.integers(1, vocab_size, size=(windows, tokens), dtype=np.int64)
        mask = np.ones_like(ids)
        mask[-1, tokens * 3 // 4 :] = 0
        batches.append((ids, mask, np.zeros_like(ids)))
    return batches


@pytest.mark.parametrize("model", ["baked_model_dir", "int8_model_dir"], ids=["fp32", "int8"])
def test_the_served_graph_gives_the_plain_graphs_logits_bit_for_bit(request, model):
    directory = request.getfixturevalue(model)
    plain = session(directory / "model.onnx", threads=1)
    served = session(directory / OPTIMIZED_ONNX_FILE, threads=1)
    assert (
        served.quantization == plain.quantization == ("int8" if model == "int8_model_dir" else None)
    )
    for batch in inputs(read_config(directory)["vocab_size"]):
        for want, got in zip(plain(*batch), served(*batch), strict=True):
            assert np.array_equal(want, got)


def test_the_weights_are_in_the_data_file_beside_the_graph(baked_model_dir, tmp_path):
    """The graph file keeps the graph and small constants; moved with its data file, it loads
    anywhere (the graph names the file relative to itself)."""
    import onnx

    graph = onnx.load(baked_model_dir / OPTIMIZED_ONNX_FILE, load_external_data=False)
    external = {
        tensor.name: {entry.key: entry.value for entry in tensor.external_data}
        for tensor in graph.graph.initializer
        if tensor.data_location == onnx.TensorProto.EXTERNAL
    }
    inline = [t for t in graph.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
    assert external and {entry["location"] for entry in external.values()} == {OPTIMIZED_DATA_FILE}
    assert all(len(tensor.raw_data) < optimization.EXTERNAL_MIN_BYTES for tensor in inline)
    assert sum(int(entry["length"]) for entry in external.values()) <= (
        (baked_model_dir / OPTIMIZED_DATA_FILE).stat().st_size
    )
    for name in (OPTIMIZED_ONNX_FILE, OPTIMIZED_DATA_FILE):
        shutil.copy(baked_model_dir / name, tmp_path)
    [batch] = inputs(100)[:1]
    moved = session(tmp_path / OPTIMIZED_ONNX_FILE, threads=1)
    here = session(baked_model_dir / OPTIMIZED_ONNX_FILE, threads=1)
    assert all(map(np.array_equal, moved(*batch), here(*batch)))


@pytest.mark.parametrize("model", ["baked_model_dir", "int8_model_dir"], ids=["fp32", "int8"])
def test_the_graph_records_its_data_file_s_fingerprint_and_keeps_its_metadata(request, model):
    import onnx

    directory = request.getfixturevalue(model)
    graph = onnx.load(directory / OPTIMIZED_ONNX_FILE, load_external_data=False)
    metadata = {entry.key: entry.value for entry in graph.metadata_props}
    assert metadata[DATA_FINGERPRINT_KEY] == data_fingerprint(directory / OPTIMIZED_DATA_FILE)
    plain = onnx.load(directory / "model.onnx", load_external_data=False)
    assert {entry.key: entry.value for entry in plain.metadata_props}.items() <= metadata.items()


def test_logits_that_differ_leave_nothing_written(baked_model_dir, tmp_path, monkeypatch):
    graph = shutil.copy(baked_model_dir / "model.onnx", tmp_path / "model.onnx")
    plain = optimization.session

    def one_off(path, *, threads):
        run = plain(path, threads=threads)
        if path.name != OPTIMIZED_ONNX_FILE:
            return run
        return lambda *batch: tuple(np.nextafter(logits, np.inf) for logits in run(*batch))

    monkeypatch.setattr(optimization, "session", one_off)
    checked = probes(baked_model_dir, read_config(baked_model_dir))
    with pytest.raises(OptimizedGraphMismatch, match=r"start logits on \d+-token windows differ"):
        save_optimized(graph, checked)
    assert [path.name for path in tmp_path.iterdir()] == ["model.onnx"]


def test_a_graph_without_large_weights_is_refused(baked_model_dir, tmp_path, monkeypatch):
    graph = shutil.copy(baked_model_dir / "model.onnx", tmp_path / "model.onnx")
    monkeypatch.setattr(optimization, "EXTERNAL_MIN_BYTES", 2**40)
    checked = probes(baked_model_dir, read_config(baked_model_dir))
    with pytest.raises(OptimizedGraphMismatch, match="no initializer of 1099511627776 bytes"):
        save_optimized(graph, checked)
    assert [path.name for path in tmp_path.iterdir()] == ["model.onnx"]
