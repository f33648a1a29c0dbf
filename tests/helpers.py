"""Helpers shared by test modules (fixtures live in conftest.py): where the real model is, the
tiny model's words, what the runtime tree keeps and drops, invoking the Lambda handler in process
or with X-Ray tracing on, what the console log handler writes, a page's links, model files broken,
a question as heavy as one call may take, a model forward that scores "no answer" best, and
waiting for every gunicorn worker's model."""

import io
import json
import logging
import re
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# The team's real trained model and SQuAD sample, beside the repository (tests skip without).
SHARED = REPO.parent / "shared"
REAL_MODEL = SHARED / "models" / "qa-minilm-squad"
SQUAD_SAMPLE = SHARED / "data" / "squad-v1.1-dev-sample.json"
# The bound of a test's wait for a server or a model: far beyond what it takes (seconds), so that a
# busy machine makes a test slower, never failed; reaching it means a hang, reported as one.
PATIENCE = 600
# What qa.lazy logs once a process has its model (at INFO, on the console handler).
MODEL_LOADED = "QA model loaded in "


def wait_for_every_worker(server: subprocess.Popen, log: Path, workers: int) -> None:
    """Waits until each of the ``workers`` of the gunicorn ``server`` (its output in ``log``) has
    its model loaded, as each logs once (qasite.wsgi loads it in the background when idle): one
    worker's health saying "ready" says nothing of the other's. Fails at once, with the log, if
    gunicorn exits or a load fails; after PATIENCE seconds, as a hang."""
    deadline = time.monotonic() + PATIENCE
    while (output := log.read_text(errors="replace")).count(MODEL_LOADED) < workers:
        assert server.poll() is None, f"gunicorn exited ({server.returncode}):\n{output}"
        assert "QA model failed to load" not in output, output
        assert time.monotonic() < deadline, f"not every worker loaded in {PATIENCE} s:\n{output}"
        time.sleep(0.1)


def runtime_tree(kind: str) -> list[str]:
    """The entries of one kind in docker/runtime-tree.txt, in order: "serve" (the baked files
    the tree's model/ holds), "bake" (the baked files it leaves out) or "drop" (globs deleted
    from the tree). Every line but comments and blank ones is one of them and one name, as the
    scripts read it (build-runtime.sh refuses a "drop" line of another shape)."""
    entries = []
    for line in (REPO / "docker" / "runtime-tree.txt").read_text().splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            assert len(words) == 2 and words[0] in {"serve", "bake", "drop"}, line
            entries += words[1:] if words[0] == kind else []
    return entries


# The tiny random model's special tokens, and the whole words of its vocabulary.
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "what is my name i come from hong kong and the a of in to was who where when how many "
    "it he she they born city year paris france capital river long built"
).split()


class LambdaContext:
    """The part of Lambda's context object the handler reads."""

    aws_request_id = "6f1e5c3a-0d5b-4a77-9c2e-1b3d5f7a9c11"


def invoke(event: dict) -> dict:
    """The Lambda handler's response to ``event``, in this process (Django's test settings)."""
    from qasite import lambda_handler

    return lambda_handler.handler(event, LambdaContext())


def console_output(monkeypatch, formatter: logging.Formatter | None = None) -> io.StringIO:
    """What the root logger's one handler ("console" in settings.LOGGING) writes from now on,
    formatted by ``formatter`` when one is given (as settings format it on Lambda)."""
    [console] = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    output = io.StringIO()
    monkeypatch.setattr(console, "stream", output)
    if formatter is not None:
        monkeypatch.setattr(console, "formatter", formatter)
    return output


LINK = re.compile(r'(?:href|src|action|data-api-url)="(/[^"]*)"')


def links(html: str) -> set[str]:
    """Every root-relative URL of a page: links, form actions, scripts, stylesheets."""
    return set(LINK.findall(html))


# A sampled trace id, as Lambda's runtime sets it in a function with active tracing.
TRACE_ID = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
# Run by the Python under test: the handler answers the event file argv[1] twice, with a fake
# X-Ray daemon on the loopback UDP port argv[2]; prints the datagrams the daemon received.
TRACED = textwrap.dedent(
    """
    import json, socket, sys
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", int(sys.argv[2])))
    daemon.settimeout(10)
    from qasite.lambda_handler import handler
    for _ in range(2):
        assert handler(json.load(open(sys.argv[1])), None)["statusCode"] == 200
    print(json.dumps([daemon.recv(65535).decode() for _ in range(2)]))
    """
)


def traced_twice(python: list[str], event: Path, environment: dict, cwd: Path):
    """The event file ``event`` answered twice (each a 200) by the Lambda handler in a fresh
    process (``python``: the interpreter and its options) with X-Ray tracing on as on Lambda: the
    ``environment`` given plus QA_TRACING, a trace id, the function's name and a fake daemon's
    address. Returns (the datagrams the daemon received, as text; the segments in them, dicts;
    all the process printed, str). Fails the test if the process fails."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    tracing = {
        "QA_TRACING": "1",
        "_X_AMZN_TRACE_ID": TRACE_ID,
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "qasite-test",
    }
    result = subprocess.run(
        [*python, "-c", TRACED, str(event), str(port)],
        cwd=cwd,
        env={**environment, **tracing},
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert result.returncode == 0, result.stderr
    datagrams = json.loads(result.stdout.splitlines()[-1])
    # A datagram is the daemon protocol's header line, then the segment's JSON.
    segments = [json.loads(datagram.split("\n", 1)[1]) for datagram in datagrams]
    return datagrams, segments, result.stdout + result.stderr


def truncate(path: Path) -> None:
    """Cut a model file in half, as an interrupted copy leaves it."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garble(path: Path) -> None:
    """Overwrite a model file with bytes of no format at all."""
    path.write_bytes(b"\x00garbage" * 64)


# A question as heavy as one call may take alone: "who" is one token and "a " * n is n tokens, so
# with 512-token windows and doc_stride 468 a new window every 40 tokens; 200 windows (102,400
# tokens), within MAX_BATCH_TOKENS (131,072); two of them in one call are over it.
HEAVY = {
    "question": "who",
    "context": "a " * (508 + 199 * 40),
    "max_seq_len": 512,
    "doc_stride": 468,
}


def no_answer_best(input_ids, attention_mask, token_type_ids):
    """A model forward (qa.engine.Forward) whose start and end logits favour [CLS] in every
    window: "no answer" scores best, and every span far less."""
    logits = np.zeros(input_ids.shape, dtype=np.float32)
    logits[:, 0] = 10.0
    return logits, logits


LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
PUNCTUATION = list(".,?!'-:;\"()")


def tiny_vocab() -> list[str]:
    """Whole words, then every letter alone and as a word piece: any lowercase text tokenizes."""
    pieces = list(LETTERS) + [f"##{letter}" for letter in LETTERS]
    return SPECIAL_TOKENS + PUNCTUATION + pieces + [w for w in WORDS if w not in pieces]


def rust_panic() -> BaseException:
    """A real ``pyo3_runtime.PanicException`` (a BaseException), as tokenizers raises one: a
    stride no smaller than the room truncation leaves for the second sequence."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel

    tokenizer = Tokenizer(WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.enable_truncation(4, stride=3, strategy="only_second")
    try:
        tokenizer.encode("a a", "a a a a")
    except BaseException as panic:  # noqa: B036 (what is caught is the point)
        return panic
    raise AssertionError("tokenizers no longer panics here")
