"""How close the forward pass runs to this CPU's arithmetic limit, float32 and int8.

    .venv/bin/python bench/floor.py [--rounds 7]

On one thread: the CPU's float32 FMA peak (a loop of independent fused multiply-adds compiled
here with the C compiler, if there is one), the GEMM library's rate (ONNX Runtime's MatMul on a
layer's feed-forward shape), and the engine's forward pass over 21 windows of 384 tokens (the
20,000-character request) for bert-tiny's shape and the real MiniLM, its float32 graph and its
int8 graph (bake_model --quantize int8, without the gate: speed, not answers), interleaved
round by round, medians. The forward's rate counts a BERT layer's multiply-adds per token,
2 * (4 h^2 + 2 h i) + 4 * seq * h (the four attention projections, the two feed-forward matrices,
and the attention scores and their weighted sum), over every layer and token. Prints JSON with
the CPU it ran on (docs/benchmark.md, "The floor", quotes it).
"""

import argparse
import ctypes
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as a script: the repository's packages become importable
    sys.path.insert(0, str(ROOT))

from bench.run import BENCH, REAL_MODEL, bake, log, make_bert_tiny_shape  # noqa: E402  (after the path, above)
from qa.operations.measure import cpu  # noqa: E402  (after the path, above)

WINDOWS, SEQ = 21, 384
# Independent accumulators, enough to cover the FMA units' latency x throughput on x86 and ARM.
FMA_LOOP = r"""
typedef float v16 __attribute__((vector_size(64)));
float fma_loop(long n) {
    v16 acc[12], b, c;
    for (int j = 0; j < 16; j++) { b[j] = 0.999999f; c[j] = 1e-7f; }
    for (int i = 0; i < 12; i++) for (int j = 0; j < 16; j++) acc[i][j] = i + j;
    for (long k = 0; k < n; k++)
        for (int i = 0; i < 12; i++) acc[i] = acc[i] * b + c;
    float sum = 0;
    for (int i = 0; i < 12; i++) for (int j = 0; j < 16; j++) sum += acc[i][j];
    return sum;
}
"""
FMA_FLOPS_PER_ITERATION = 12 * 16 * 2


def fma_loop(scratch: Path):
    """A call that runs one core's float32 FMA loop (FMA_LOOP) and returns its FLOPs, or None
    without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return None
    source, library = scratch / "fma.c", scratch / "fma.so"
    source.write_text(FMA_LOOP)
    subprocess.run(
        [compiler, "-O3", "-march=native", "-ffp-contract=fast", "-shared", "-fPIC", "-o"]
        + [str(library), str(source)],
        check=True,
    )
    loop = ctypes.CDLL(str(library)).fma_loop
    loop.restype, loop.argtypes = ctypes.c_float, [ctypes.c_long]
    iterations = 5_000_000

    def run() -> int:
        loop(iterations)
        return iterations * FMA_FLOPS_PER_ITERATION

    return run


def gemm_rate(hidden: int, intermediate: int, rounds: int) -> float:
    """GFLOP/s of ONNX Runtime's float32 MatMul, [21 x 384 tokens, h] x [h, i], one thread."""
    import numpy as np
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((hidden, intermediate), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, intermediate])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), options)
    x = rng.standard_normal((WINDOWS * SEQ, hidden), np.float32)
    median = statistics.median(timed(lambda: session.run(None, {"x": x})) for _ in range(rounds))
    return 2 * WINDOWS * SEQ * hidden * intermediate / median / 1e9


def forward_flops(config: dict) -> float:
    """Multiply-adds x 2 of the forward pass over WINDOWS x SEQ tokens (see the module doc)."""
    h, i = config["hidden_size"], config["intermediate_size"]
    per_token_layer = 2 * (4 * h * h + 2 * h * i) + 4 * SEQ * h
    return per_token_layer * config["num_hidden_layers"] * WINDOWS * SEQ


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def int8_copy(baked: Path) -> Path:
    """``baked`` with its graph quantized to int8 as bake_model --quantize does (ungated)."""
    from qa.model.baking.quantization import quantize_int8

    output = baked.with_name(baked.name + "-int8")
    if not (output / "model.onnx").is_file():
        output.mkdir(exist_ok=True)
        for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "source.json"):
            shutil.copy(baked / name, output)
        quantize_int8(baked / "model.onnx", output / "model.onnx")
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    import numpy as np

    from qa.model.backends.onnx import load
    from qa.model.files import read_config

    models = {"bert-tiny shape": make_bert_tiny_shape(BENCH / ".bert-tiny-shape")}
    if REAL_MODEL.is_dir():
        models["MiniLM (real)"] = REAL_MODEL
    baked = {
        "bert-tiny shape": bake(models["bert-tiny shape"], BENCH / ".bert-tiny-baked"),
        **(
            {"MiniLM (real)": bake(REAL_MODEL, BENCH / ".minilm-baked")}
            if REAL_MODEL.is_dir()
            else {}
        ),
    }
    report = {"machine": cpu(), "rounds": args.rounds, "models": {}}
    with tempfile.TemporaryDirectory() as scratch:
        fma = fma_loop(Path(scratch))
    rng = np.random.default_rng(0)
    for name, directory in baked.items():
        config = read_config(directory)
        sides = {
            "float32": load(directory / "model.onnx", config, threads=1),
            "int8": load(int8_copy(directory) / "model.onnx", config, threads=1),
        }
        ids = rng.integers(1000, 20000, (WINDOWS, SEQ))
        batch = ids, np.ones_like(ids), np.zeros_like(ids)
        times = {side: [] for side in sides}
        peaks = []
        for forward in sides.values():
            forward(*batch)  # warm
        # The peak measured in the same rounds: the machine's load weighs on every figure alike.
        for _ in range(args.rounds):
            for side, forward in sides.items():
                times[side].append(timed(lambda f=forward, b=batch: f(*b)))
            if fma:
                started = time.perf_counter()
                peaks.append(fma() / (time.perf_counter() - started) / 1e9)
        peak = statistics.median(peaks) if peaks else None
        flops = forward_flops(config)
        gemm = gemm_rate(config["hidden_size"], config["intermediate_size"], args.rounds)
        row = report["models"][name] = {
            "gflop": flops / 1e9,
            "fma_peak_gflops": peak,
            "gemm_library_gflops": gemm,
            "gemm_share_of_peak": gemm / peak if peak else None,
        }
        for side, values in times.items():
            seconds = statistics.median(values)
            rate = flops / seconds / 1e9
            row[side] = {
                "forward_ms": 1000 * seconds,
                "gflops": rate,
                "share_of_peak": rate / peak if peak else None,
            }
        row["int8_over_float32"] = row["int8"]["forward_ms"] / row["float32"]["forward_ms"]
        log(f"{name}: {json.dumps(row)}")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
