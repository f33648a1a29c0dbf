"""Shared fixtures: a tiny random BERT QA model built here, in both on-disk layouts, the real
trained model and SQuAD sample from ../shared when they are there, and SSM on loopback."""

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from bench.squad import load_questions
from tests.helpers import (
    AWS_TEST_ENVIRONMENT,
    REAL_MODEL,
    SPECIAL_TOKENS,
    SQUAD_SAMPLE,
    SSM_PARAMETER,
    fake_ssm,
    garble,
    tiny_vocab,
    truncate,
)

# Property tests judge answers, never speed: no example may fail for taking long, nor a test for
# generating its data slowly, on a machine as busy as a shared CI runner (Hypothesis's defaults,
# a 200 ms deadline and the too_slow health check, failed tests there that pass alone).
hypothesis_settings.register_profile(
    "qasite", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("qasite")

# No test may reach the network: a hub id fails at once instead of trying to download.
os.environ["HF_HUB_OFFLINE"] = "1"
# The tokenizers the suite trains (tests/families.py) come out the same every run only when
# their trainers run on one thread: a tie between two spans of a tiny model, which a differently
# trained vocabulary made once in five runs, must not decide a test.
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# Graphs the onnx engine exports from the test models are cached here, not in the user's cache
# (servers the tests start inherit it; in-process tests get it from the unthrottled fixture),
# and removed, with all it holds, when the process that made it exits: a run's graphs take about
# 90 MB, which runs left behind until a machine's disk filled.
SUITE_CACHE = tempfile.TemporaryDirectory(prefix="qasite-tests-", ignore_cleanup_errors=True)
os.environ["QA_CACHE_DIR"] = SUITE_CACHE.name

TINY_SHAPE = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
# The production model's shape (mrm8488/bert-tiny-5-finetuned-squadv2's config.json), with BERT's
# 30,522-token vocabulary.
BERT_TINY_SHAPE = {
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 512,
}
BERT_VOCAB_SIZE = 30_522


def build_tiny_model(
    directory: Path, *, legacy: bool, seed: int = 0, shape: dict = TINY_SHAPE, vocab_size: int = 0
) -> Path:
    """A randomly initialised BertForQuestionAnswering with a small WordPiece vocab (padded with
    unused tokens to vocab_size, if given).

    legacy=True writes the layout of mrm8488/bert-tiny-5-finetuned-squadv2 on the hub (config.json,
    pytorch_model.bin, vocab.txt); otherwise the modern one (model.safetensors, tokenizer.json).
    """
    import torch
    from tokenizers.implementations import BertWordPieceTokenizer
    from transformers import BertConfig, BertForQuestionAnswering

    directory.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    vocab += [f"[unused{index}]" for index in range(vocab_size - len(vocab))]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), max_position_embeddings=512, **shape)
    model = BertForQuestionAnswering(config).eval()
    if legacy:
        config.save_pretrained(directory)
        torch.save(model.state_dict(), directory / "pytorch_model.bin")
    else:
        model.save_pretrained(directory)
        BertWordPieceTokenizer(str(directory / "vocab.txt"), lowercase=True).save(
            str(directory / "tokenizer.json")
        )
        (directory / "tokenizer_config.json").write_text(
            json.dumps({"do_lower_case": True, "model_max_length": 512}), encoding="utf-8"
        )
        (directory / "vocab.txt").unlink()
    return directory


@pytest.fixture(autouse=True)
def unthrottled(settings):
    """An empty cache (the rate limiter's memory) and a rate no test reaches, for every test:
    tests/test_throttling.py sets low rates to test the limit itself. ONNX graphs are cached
    in the tests' own directory."""
    from django.core.cache import cache

    settings.QA_THROTTLE_RATE = "100000/min"
    settings.QA_CACHE_DIR = Path(os.environ["QA_CACHE_DIR"])
    cache.clear()


@pytest.fixture(autouse=True)
def fresh_model_holder():
    """Each test starts with no process-wide model holder (qa.services.lazy_answerer) and leaves
    none, whatever its outcome: no failed load, patched answerer or stubbed loader passes from
    one test to the next. A model loaded again comes from the graph cache, quickly."""
    from qa import services

    services._holders.clear()
    yield
    services._holders.clear()


@pytest.fixture(autouse=True)
def nothing_withheld_from_logs(monkeypatch):
    """Each test starts with no secret the log filters replace
    (qa.operations.log_filters.keep_out_of_logs)
    and leaves none behind: a secret a test read would otherwise blot its words out of the next
    tests' records."""
    from qa.operations import log_filters

    monkeypatch.setattr(log_filters, "_withheld", set())


@pytest.fixture
def aws_environment(monkeypatch, settings):
    """boto3 with dummy credentials (tests.helpers.AWS_TEST_ENVIRONMENT), no AWS configuration
    file and no instance metadata; settings name the origin secret's SSM parameter,
    SSM_PARAMETER, and qa.origin starts with no secret read and builds its SSM provider again
    (and drops it after the test)."""
    from qa import origin

    for name, value in AWS_TEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    settings.QA_PROXY_SECRET_PARAMETER = SSM_PARAMETER
    settings.QA_PROXY_SECRET = "ignored when a parameter is named"
    monkeypatch.setattr(origin, "_last_fetched", [])
    monkeypatch.setattr(origin, "_retry_at", 0.0)
    origin.ssm_provider.cache_clear()
    yield
    origin.ssm_provider.cache_clear()


@pytest.fixture
def local_ssm(aws_environment, monkeypatch):
    """Starts a fake SSM endpoint on loopback (tests.helpers.fake_ssm) and points boto3 at it
    (AWS_ENDPOINT_URL_SSM): ``local_ssm(*answers)`` returns its FakeSSM. Stopped after the
    test."""
    with contextlib.ExitStack() as running:

        def start(*answers):
            fake = running.enter_context(fake_ssm(*answers))
            monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", fake.url)
            return fake

        yield start


@pytest.fixture
def transactional_db():
    """live_server asks for it, to flush the database after each test; qasite has no database."""


@pytest.fixture(autouse=True)
def no_script_prefix():
    """Django's WSGI handler (the Lambda handler's too) sets the path prefix of each request and
    leaves it set; the test client never sets one. Each test starts without."""
    from django.urls import clear_script_prefix

    clear_script_prefix()


@pytest.fixture(scope="session")
def legacy_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("legacy-model"), legacy=True)


@pytest.fixture(scope="session")
def modern_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("modern-model"), legacy=False)


@pytest.fixture(scope="session")
def production_shape_model_dir(tmp_path_factory) -> Path:
    """Random weights of the production model's shape and size: for sizes, not answers."""
    return build_tiny_model(
        tmp_path_factory.mktemp("production-shape-model"),
        legacy=False,
        shape=BERT_TINY_SHAPE,
        vocab_size=BERT_VOCAB_SIZE,
    )


@pytest.fixture(scope="session", params=["legacy", "modern"])
def tiny_model_dir(request) -> Path:
    return request.getfixturevalue(f"{request.param}_model_dir")


@pytest.fixture(scope="session")
def baked_model_dir(tmp_path_factory, legacy_model_dir) -> Path:
    """The tiny model as bake_model bakes it: ONNX graph, TorchScript traces, safetensors, and
    its source."""
    from qa.model.baking.bake import save_for_serving

    directory = tmp_path_factory.mktemp("baked-model")
    save_for_serving(legacy_model_dir, directory, name="tiny/legacy", revision=None)
    return directory


@pytest.fixture(scope="session")
def int8_model_dir(tmp_path_factory, baked_model_dir) -> Path:
    """The baked tiny model with its graph quantized to int8
    (qa.model.baking.quantization.quantize_int8), that graph optimized
    (qa.model.baking.optimization.save_optimized) and recorded so, as ``bake_model --quantize
    int8`` leaves it (without its quality gate)."""
    from qa.model.baking.optimization import save_optimized
    from qa.model.baking.quantization import quantize_int8
    from qa.model.files import read_config
    from qa.model.probes import probes

    directory = tmp_path_factory.mktemp("int8-model")
    shutil.copytree(baked_model_dir, directory, dirs_exist_ok=True)
    quantize_int8(baked_model_dir / "model.onnx", directory / "model.onnx")
    save_optimized(directory / "model.onnx", probes(directory, read_config(directory)))
    record = json.loads((directory / "source.json").read_text())
    record["quantization"] = "int8"
    (directory / "source.json").write_text(json.dumps(record))
    return directory


@pytest.fixture(scope="session")
def tiny_answerer(modern_model_dir):
    from qa.model.loading import load_answerer

    return load_answerer(str(modern_model_dir), threads=1)


@pytest.fixture
def tiny_model_settings(settings, modern_model_dir):
    """Django settings pointing at the tiny model (its ONNX graph exported once per session)."""
    settings.QA_MODEL = str(modern_model_dir)
    return settings


@pytest.fixture
def lambda_settings(tiny_model_settings):
    """The tiny model, with the hosts of every kind of event (tests/lambda_events.py) allowed
    and their CloudFront distribution trusted for CSRF."""
    from tests.lambda_events import CLOUDFRONT

    settings = tiny_model_settings
    settings.ALLOWED_HOSTS = [
        ".execute-api.eu-west-1.amazonaws.com",
        ".lambda-url.eu-west-1.on.aws",
        ".elb.amazonaws.com",
    ]
    settings.CSRF_TRUSTED_ORIGINS = [CLOUDFRONT]
    return settings


def _append_to_vocab(directory: Path) -> None:
    vocab = directory / "vocab.txt"
    vocab.write_text(vocab.read_text() + "".join(f"extra{i}\n" for i in range(50)))


# Ways a deployed model directory breaks: (layout broken, how, the reason users are told).
MODEL_FAULTS = {
    "missing directory": ("modern", shutil.rmtree, "The model directory does not exist."),
    "garbage safetensors": (
        "modern",
        lambda d: garble(d / "model.safetensors"),
        "The model weights could not be loaded.",
    ),
    "truncated safetensors": (
        "modern",
        lambda d: truncate(d / "model.safetensors"),
        "The model weights could not be loaded.",
    ),
    "garbage pytorch_model.bin": (
        "legacy",
        lambda d: garble(d / "pytorch_model.bin"),
        "The model weights could not be loaded.",
    ),
    "truncated pytorch_model.bin": (
        "legacy",
        lambda d: truncate(d / "pytorch_model.bin"),
        "The model weights could not be loaded.",
    ),
    "vocab of another model": (
        "legacy",
        lambda d: (d / "vocab.txt").write_text(
            "\n".join(SPECIAL_TOKENS + [f"token{i}" for i in range(100)])
        ),
        "The tokenizer does not tokenize text (nearly everything is unknown).",
    ),
    "vocab larger than the model": (
        "legacy",
        _append_to_vocab,
        "The tokenizer does not match the model (its vocabulary is larger than the model's).",
    ),
    "config.json not JSON": (
        "modern",
        lambda d: (d / "config.json").write_text('{"vocab_size": 120,'),
        "config.json is not valid JSON.",
    ),
    "config.json not an object": (
        "modern",
        lambda d: (d / "config.json").write_text("[1, 2]"),
        "config.json is not a JSON object.",
    ),
}


@dataclass
class BrokenModel:
    directory: Path
    reason: str
    good: Path

    def repair(self) -> None:
        """Put a working model where the broken one was, as an operator would."""
        shutil.rmtree(self.directory, ignore_errors=True)
        shutil.copytree(self.good, self.directory)


@pytest.fixture(params=list(MODEL_FAULTS))
def broken_model(request, tmp_path) -> BrokenModel:
    """A copy of the tiny model broken in one of the MODEL_FAULTS ways."""
    layout, breaks, reason = MODEL_FAULTS[request.param]
    good = request.getfixturevalue(f"{layout}_model_dir")
    directory = shutil.copytree(good, tmp_path / "model")
    breaks(directory)
    return BrokenModel(directory, reason, good)


@pytest.fixture(scope="session")
def image_template(tmp_path_factory) -> tuple[Path, dict]:
    """`serverless package --param=package=image`: the template's path and content (packaged
    once for the deployment tests that read it)."""
    from tests.deploying import packaged

    return packaged(tmp_path_factory.mktemp("sls-image"), "package=image")


@pytest.fixture(scope="session")
def reference_python() -> str:
    """The Python of transformers v4.57.6 (bench/.venv-ref, the benchmark's reference, created
    on first use from the local wheels): the source of every reference answer."""
    import subprocess

    from bench import run

    try:
        run.ensure_reference_venv()
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"the reference virtualenv (transformers 4.57.6) cannot be built: {error}")
    return run.REF_PYTHON


@pytest.fixture(scope="session")
def real_model_dir() -> Path:
    if not (REAL_MODEL / "config.json").is_file():
        pytest.skip(f"the real QA model is not in {REAL_MODEL} (../shared is absent)")
    return REAL_MODEL


@pytest.fixture(scope="session")
def real_answerer(real_model_dir):
    from qa.model.loading import load_answerer

    return load_answerer(str(real_model_dir), threads=1)


@pytest.fixture(scope="session")
def squad_sample() -> list[dict]:
    """The SQuAD sample's questions in file order: question, context, gold answer texts."""
    if not SQUAD_SAMPLE.is_file():
        pytest.skip(f"the SQuAD sample is not in {SQUAD_SAMPLE} (../shared is absent)")
    return load_questions(SQUAD_SAMPLE)


class ManualClock:
    """A monotonic clock that moves only when told to: back-offs pass without sleeping."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()
