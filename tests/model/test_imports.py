"""Lazy imports of torch and transformers, one thread at a time (and exports,
qa.model.baking.export): loads
that export at once, in a process that has imported neither yet, all get the engine they asked
for. Without the locks they fell back to torch ("cannot import name ..." from a half-imported
transformers, or torch's exporter finding another export under way)."""

import json
import subprocess
import sys

from tests.helpers import PATIENCE, REPO

# Run in a fresh interpreter: argv[1] the model directory, argv[2] a scratch directory. Each
# thread exports the model into a cache of its own (nothing shared but the imports), all starting
# together; prints the engines that serve and the warnings logged.
TOGETHER = """
import json, logging, sys, threading
from pathlib import Path
from qa.model.loading import load_answerer

THREADS = 4
warnings = []
handler = logging.Handler(logging.WARNING)
handler.emit = lambda record: warnings.append(record.getMessage())
logging.getLogger("qa").addHandler(handler)
start = threading.Barrier(THREADS, timeout=%(patience)d)
engines = [None] * THREADS

def load(index):
    start.wait()
    cache = Path(sys.argv[2]) / str(index)
    engines[index] = load_answerer(sys.argv[1], threads=1, cache_dir=cache).engine

threads = [threading.Thread(target=load, args=(index,)) for index in range(THREADS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
imported = sorted({name.split(".")[0] for name in sys.modules} & {"torch", "transformers"})
print(json.dumps({"engines": engines, "warnings": warnings, "imported": imported}))
"""


def test_loads_exporting_at_once_in_a_fresh_process_all_serve_on_onnx(modern_model_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", TOGETHER.replace("%(patience)d", str(PATIENCE))]
        + [str(modern_model_dir), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=2 * PATIENCE,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report == {
        "engines": ["onnx"] * 4,
        "warnings": [],
        "imported": ["torch", "transformers"],  # the export's
    }, result.stderr
