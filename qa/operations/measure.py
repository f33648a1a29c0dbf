"""Which CPU a figure comes from, and the engine's latency on it: what a deployed instance
reports when asked (a direct ``{"measure": true}`` invocation of the Lambda function,
qasite/lambda_handler.py) and what the benchmark's reports name (bench/run.py, bench/floor.py).

Standard library and the engine only: it runs in the torch-free runtime tree.
"""

import json
import os
import platform
import statistics
import time
from pathlib import Path

from qa.model.backends import PASS_HIDDEN_FLOATS, cpu_fields
from qa.reader.answerer import QuestionAnswerer
from qa.reader.examples import KIT_HO

# The CPU features speed depends on: the vector width and int8 dot products (VNNI on x86, with
# AVX-512 or AVX; AMX's tiles; SVE, i8mm and dot products on ARM, as Graviton has them).
CPU_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "sve",
    "i8mm",
    "asimddp",
)
# The benchmark's long input: 20,000 characters (21 windows of 384 tokens for BERT's tokenizer),
# here the probes' paragraphs (qa/model/baking/quality_probes.json) repeated, so that nothing is
# downloaded.
LONG_CHARS = 20_000


def cpu() -> dict:
    """This machine's CPU: its model name (/proc/cpuinfo's, as lscpu gives it), which of
    CPU_FLAGS it has, a core's L2 cache in KB (None if not said), the cores this process
    may use, and the pass size chosen for it (qa.model.backends.PASS_HIDDEN_FLOATS)."""
    fields = cpu_fields()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    l2 = Path("/sys/devices/system/cpu/cpu0/cache/index2/size")
    size = l2.read_text().strip() if l2.is_file() else ""
    return {
        "cpu": fields.get("model name") or platform.processor() or platform.machine(),
        "cpu_flags": [flag for flag in CPU_FLAGS if flag in flags],
        "l2_kb": int(size[:-1]) if size.endswith("K") and size[:-1].isdigit() else None,
        "cores": len(os.sched_getaffinity(0)),
        "pass_hidden_floats": PASS_HIDDEN_FLOATS,
    }


def long_context() -> tuple[str, str]:
    """A question and LONG_CHARS characters of context made of the probes' paragraphs."""
    from qa.model.baking.quantization import PROBES_FILE

    probes = json.loads(PROBES_FILE.read_text(encoding="utf-8"))
    paragraphs = " ".join(dict.fromkeys(probe["context"] for probe in probes))
    return probes[0]["question"], (paragraphs * (LONG_CHARS // len(paragraphs) + 1))[:LONG_CHARS]


def latency(answerer: QuestionAnswerer, *, repeat: int = 5) -> dict:
    """Median milliseconds of ``answerer`` answering Kit-Ho Mak and a 20,000-character context
    (long_context), in this process, each ``repeat`` times, interleaved, after one of each."""
    inputs = {"Kit-Ho Mak": (KIT_HO["question"], KIT_HO["context"]), "20,000 chars": long_context()}
    times = {size: [] for size in inputs}
    for round_ in range(repeat + 1):
        for size, (question, context) in inputs.items():
            started = time.perf_counter()
            answerer.answer(question, context)
            if round_:  # the first round warms
                times[size].append(1000 * (time.perf_counter() - started))
    return {size: statistics.median(values) for size, values in times.items()}
