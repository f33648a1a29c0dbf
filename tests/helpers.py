"""Helpers shared by test modules (fixtures live in conftest.py): where the real model is, the
tiny model's words, what the runtime tree keeps and drops, invoking the Lambda handler in process
or with X-Ray tracing on, what the console log handler writes, a page's links, model files broken,
a question as heavy as one call may take, a model forward that scores "no answer" best, a check
that a forward runs each window alone, a fake SSM endpoint on loopback, and waiting for every
gunicorn worker's model."""

import contextlib
import io
import json
import logging
import re
import socket
import subprocess
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
# What qa.model.holder logs once a process has its model (at INFO, on the console handler).
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
    """A model forward (qa.reader.answerer.Forward) whose start and end logits favour [CLS] in every
    window: "no answer" scores best, and every span far less."""
    logits = np.zeros(input_ids.shape, dtype=np.float32)
    logits[:, 0] = 10.0
    return logits, logits


def assert_each_window_runs_alone(forward, *, vocabulary: int, width: int = 384) -> None:
    """Assert that ``forward`` (qa.reader.answerer.Forward) gives each window of a batch, padded to
    ``width`` tokens (random ids below ``vocabulary``, windows of four lengths up to ``width``),
    the logits it gives that window run alone: what the engine of a dynamically quantized graph
    must do (qa.model.backends.window_by_window), where the pass's scales would otherwise move a
    window's logits with the windows beside it."""
    rng = np.random.default_rng(0)
    lengths = [width // 10, width, 7, width // 2]
    ids = np.zeros((len(lengths), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(5, min(60, vocabulary), length)
        mask[row, :length] = 1
    types = np.zeros_like(ids)
    together = forward(ids, mask, types)
    for row, length in enumerate(lengths):
        one = slice(row, row + 1), slice(0, length)
        alone = forward(ids[one], mask[one], types[one])
        for batched, single in zip(together, alone, strict=True):
            np.testing.assert_array_equal(batched[row, :length], single[0])


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


# --- SSM Parameter Store on loopback ---------------------------------------------------------

# The origin secret's parameter in the tests that read it from SSM (a stub or a fake endpoint).
SSM_PARAMETER = "/qasite/prod/origin-secret"
# Dummy credentials for a botocore client pointed at a fake endpoint: the session token and the
# secret key are markers a log must never show.
AWS_TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "AKIAQASITETESTKEY000",
    "AWS_SECRET_ACCESS_KEY": "-".join(["test", "secret", "access", "key", "Wq9e"]),
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEHQaCWV1LXdlc3QtMSJGMEQCIGZha2Utc2Vzc2lvbi10b2tlbg==",
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def get_parameter_answer(name: str, value: str) -> tuple[int, dict]:
    """SSM's answer to GetParameter(WithDecryption=True) of the SecureString ``name``: (HTTP
    status, JSON body), shaped as the service sends it."""
    return 200, {
        "Parameter": {
            "ARN": f"arn:aws:ssm:eu-west-1:123456789012:parameter{name}",
            "DataType": "text",
            "LastModifiedDate": 1.7e9,
            "Name": name,
            "Type": "SecureString",
            "Value": value,
            "Version": 3,
        }
    }


def ssm_error(status: int, code: str) -> tuple[int, dict]:
    """An error SSM answers with (HTTP status, JSON body in the awsJson1.1 protocol)."""
    return status, {"__type": code, "message": f"{code} (fake SSM)"}


class FakeSSM:
    """What the fake endpoint received, and what it answers: ``answers`` in turn (the last one
    again and again); ``None`` accepts the request and never answers."""

    def __init__(self, answers: list):
        self.url = ""
        self.answers = answers
        self.requests: list[tuple[dict, bytes]] = []  # (headers, body) of each request
        self.peers: list[tuple[str, int]] = []  # the client's address and port, of each

    def next_answer(self):
        return self.answers[min(len(self.requests), len(self.answers)) - 1]


@contextlib.contextmanager
def _serving(handler: type[BaseHTTPRequestHandler], release: threading.Event):
    """An HTTP server on 127.0.0.1 answering with ``handler`` in threads; yields its URL. On
    exit, ``release`` is set (for handlers waiting on it) and the server stops."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


class _Answering(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as AWS's endpoints

    def answer(self, status: int, payload: dict, content_type: str) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # not on stderr
        pass


@contextlib.contextmanager
def fake_ssm(*answers):
    """An SSM endpoint on 127.0.0.1 for ``AWS_ENDPOINT_URL_SSM`` (or a client's
    ``endpoint_url``): each answer is (status, JSON body), as get_parameter_answer or ssm_error
    give, or None for one that accepts the connection, reads the request and never answers
    (until the block ends). Yields a FakeSSM."""
    release = threading.Event()
    fake = FakeSSM(list(answers))

    class Handler(_Answering):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            fake.requests.append((dict(self.headers), body))
            fake.peers.append(self.client_address)
            answer = fake.next_answer()
            if answer is None:
                release.wait()
            else:
                self.answer(*answer, "application/x-amz-json-1.1")

    with _serving(Handler, release) as fake.url:
        yield fake


# As Lambda's runtime gives a SnapStart function its credentials: a local endpoint, read with a
# token, instead of the three variables (the token and the keys are markers too).
CONTAINER_CREDENTIALS = {
    "AccessKeyId": "ASIAQASITECONTAINER0",
    "SecretAccessKey": "-".join(["container", "secret", "key", "Hm3t"]),
    "Token": "IQoJb3JpZ2luX2VjEHcontainer+session/token+Jx5Q==",
    "Expiration": "2099-01-01T00:00:00Z",
}
CONTAINER_AUTHORIZATION_TOKEN = "-".join(["container", "authorization", "token", "Vb8r"])


@contextlib.contextmanager
def container_credentials():
    """Lambda's credentials endpoint on 127.0.0.1: yields the environment that points boto3 at
    it (AWS_CONTAINER_CREDENTIALS_FULL_URI and its authorization token); it answers
    CONTAINER_CREDENTIALS to a request that carries the token."""
    release = threading.Event()

    class Handler(_Answering):
        def do_GET(self):
            if self.headers.get("Authorization") == CONTAINER_AUTHORIZATION_TOKEN:
                self.answer(200, CONTAINER_CREDENTIALS, "application/json")
            else:
                self.answer(403, {"message": "no token"}, "application/json")

    with _serving(Handler, release) as url:
        yield {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{url}/2018-06-01/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": CONTAINER_AUTHORIZATION_TOKEN,
        }
