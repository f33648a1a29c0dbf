"""Loading models in both layouts, refusing broken ones clearly, and loading once per process."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qa.engine import Options
from qa.loading import (
    LazyAnswerer,
    ModelLoadError,
    load_answerer,
    load_model,
    load_tokenizer,
    model_logits,
    numpy_forward,
    resolve_model_dir,
    save_for_serving,
)


def test_both_layouts_load_and_answer_with_exact_offsets(tiny_model_dir):
    answerer = load_answerer(str(tiny_model_dir), threads=1)
    context = "I'm Kit-Ho Mak. I come from Hong Kong."
    [best] = answerer.answer("What is my name?", context)
    assert context[best.start : best.end] == best.answer
    assert answerer.model_max_length == 512


def test_tokenizer_really_tokenizes_in_both_layouts(tiny_model_dir):
    tokenizer, special, _ = load_tokenizer(tiny_model_dir)
    encoding = tokenizer.encode("Where is Hong Kong?", "The city of Paris.")
    assert encoding.tokens == [
        "[CLS]", "where", "is", "hong", "kong", "?", "[SEP]",
        "the", "city", "of", "paris", ".", "[SEP]",
    ]
    assert encoding.type_ids == [0] * 7 + [1] * 6
    assert special.cls_id == tokenizer.token_to_id("[CLS]")
    assert special.pad_id == tokenizer.token_to_id("[PAD]")


def test_legacy_and_modern_layouts_tokenize_and_answer_identically(
    legacy_model_dir, modern_model_dir
):
    text = "Ünïcode Straße, naïve café! 東京 1234 hong-kong"
    legacy, _, _ = load_tokenizer(legacy_model_dir)
    modern, _, _ = load_tokenizer(modern_model_dir)
    assert legacy.encode(text).tokens == modern.encode(text).tokens
    assert legacy.encode(text).offsets == modern.encode(text).offsets


def test_real_model_tokenizer_matches_its_vocabulary(real_model_dir):
    tokenizer, _, max_length = load_tokenizer(real_model_dir)
    assert tokenizer.encode("What is my name?", add_special_tokens=False).tokens == [
        "what", "is", "my", "name", "?",
    ]
    assert max_length == 512


def test_a_broken_model_is_refused_at_load_with_a_reason_free_of_paths(broken_model):
    with pytest.raises(ModelLoadError) as raised:
        load_answerer(str(broken_model.directory), threads=1)
    assert raised.value.reason == broken_model.reason
    assert "/" not in raised.value.reason


def test_hub_id_offline_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelLoadError, match="could not be downloaded"):
        resolve_model_dir("nobody/no-such-model")


def test_lazy_answerer_loads_once_however_many_threads_ask():
    calls = []

    def slow_load():
        calls.append(1)
        time.sleep(0.2)
        return object()

    holder = LazyAnswerer(slow_load)
    assert holder.state == "idle"
    got = []
    threads = [threading.Thread(target=lambda: got.append(holder.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(set(map(id, got))) == 1
    assert holder.state == "ready"


def test_lazy_answerer_reports_loading_while_it_loads_in_the_background():
    started, release = threading.Event(), threading.Event()
    holder = LazyAnswerer(lambda: started.set() or (release.wait(5) and "answerer"))
    thread = holder.load_in_background()
    assert started.wait(5)
    assert holder.state == "loading"
    with pytest.raises(ModelLoadError, match="still loading"):
        holder.get(timeout=0.05)
    release.set()
    thread.join()
    assert holder.get() == "answerer"


def test_lazy_answerer_remembers_failure_then_retries_with_backoff_and_recovers(manual_clock):
    attempts = []

    def flaky_load():
        attempts.append(1)
        if len(attempts) < 3:
            raise ModelLoadError("The model directory does not exist.")
        return "answerer"

    holder = LazyAnswerer(flaky_load, retry_after=2, clock=manual_clock)
    with pytest.raises(ModelLoadError):
        holder.get()
    assert holder.state == "failed" and holder.error.reason.startswith("The model directory")
    assert holder.seconds_until_retry() == 2
    manual_clock.advance(1.9)
    with pytest.raises(ModelLoadError):
        holder.get()  # within the back-off: no new attempt
    assert len(attempts) == 1
    manual_clock.advance(0.1)
    with pytest.raises(ModelLoadError):
        holder.get()
    assert len(attempts) == 2
    assert holder.seconds_until_retry() == 4  # the second failure doubled the wait
    manual_clock.advance(3.9)
    with pytest.raises(ModelLoadError):
        holder.get()
    assert len(attempts) == 2
    manual_clock.advance(0.1)
    assert holder.get() == "answerer"
    assert holder.state == "ready" and holder.error is None


def test_lazy_answerer_back_off_doubles_up_to_a_minute(manual_clock):
    def failing_load():
        raise ModelLoadError("The model directory does not exist.")

    holder = LazyAnswerer(failing_load, retry_after=2, clock=manual_clock)
    waits = []
    for _ in range(8):
        with pytest.raises(ModelLoadError):
            holder.get()
        waits.append(holder.seconds_until_retry())
        manual_clock.advance(waits[-1])
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]


def test_unexpected_loading_bug_becomes_a_load_error():
    holder = LazyAnswerer(lambda: 1 / 0)
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        holder.get()


def test_traced_model_gives_exactly_the_logits_of_the_model_itself(tiny_model_dir):
    import numpy as np
    import torch

    model = load_model(tiny_model_dir)
    traced, takes_token_types = model_logits(model, trace=True)
    eager, _ = model_logits(model, trace=False)
    assert isinstance(traced, torch.jit.ScriptModule) and takes_token_types
    rng = np.random.default_rng(0)
    for batch, length in [(1, 7), (4, 384), (18, 100)]:
        ids = rng.integers(0, model.config.vocab_size, (batch, length))
        mask = np.ones_like(ids)
        mask[-1, length // 3 :] = 0
        types = np.zeros_like(ids)
        types[:, 3:] = 1
        hidden = model.config.hidden_size
        got = numpy_forward(traced, takes_token_types=True, hidden_size=hidden)(
            ids * mask, mask, types * mask
        )
        expected = numpy_forward(eager, takes_token_types=True, hidden_size=hidden)(
            ids * mask, mask, types * mask
        )
        for traced_logits, eager_logits in zip(got, expected):
            np.testing.assert_allclose(traced_logits, eager_logits, atol=1e-6, rtol=0)


def test_many_windows_run_in_cache_sized_passes_with_the_logits_of_one_pass(tiny_model_dir):
    import numpy as np

    logits, _ = model_logits(load_model(tiny_model_dir), trace=True)
    passes = []

    def counted(*inputs):
        passes.append(len(inputs[0]))
        return logits(*inputs)

    rng = np.random.default_rng(1)
    ids = rng.integers(0, 100, (9, 384))
    mask, types = np.ones_like(ids), np.zeros_like(ids)
    # A hidden size this large allows 2 windows of 384 tokens per pass.
    split = numpy_forward(counted, takes_token_types=True, hidden_size=341)(ids, mask, types)
    whole = numpy_forward(counted, takes_token_types=True, hidden_size=1)(ids, mask, types)
    assert passes == [2, 2, 2, 2, 1, 9]
    for split_logits, whole_logits in zip(split, whole):
        assert split_logits.shape == (9, 384)
        np.testing.assert_allclose(split_logits, whole_logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
def test_baked_model_loads_without_transformers_and_answers_the_same(
    legacy_model_dir, tmp_path, fast
):
    save_for_serving(legacy_model_dir, tmp_path / "baked")
    assert {"model.torchscript.pt", "model.bf16.torchscript.pt"} <= {
        path.name for path in (tmp_path / "baked").iterdir()
    }
    context = "the river was long and the city was built in the year 1200. " * 30
    options = Options(max_seq_len=64, doc_stride=16, top_k=5)
    baked = load_answerer(str(tmp_path / "baked"), threads=1, fast=fast)
    original = load_answerer(str(legacy_model_dir), threads=1, trace=False, fast=fast)
    assert baked.answer("When?", context, options) == original.answer("When?", context, options)
    fresh = subprocess.run(
        [sys.executable, "-c",
         "import sys; from qa.loading import load_answerer; "
         f"load_answerer({str(tmp_path / 'baked')!r}, threads=1, fast={fast}).answer('When?', 'In 1200.'); "
         "print('transformers' in sys.modules)"],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
    )
    assert fresh.stdout.strip() == "False", fresh.stderr


def test_a_model_that_cannot_be_traced_runs_as_it_is(modern_model_dir, monkeypatch, caplog):
    import torch

    def refuse(*args, **kwargs):
        raise RuntimeError("cannot trace this")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    answerer = load_answerer(str(modern_model_dir), threads=1)  # no baked trace in this dir
    assert "runs untraced: cannot trace this" in caplog.text
    [best] = answerer.answer("Who?", "Kit-Ho Mak is here.")
    assert "Kit-Ho Mak is here."[best.start : best.end] == best.answer


def test_fast_mode_computes_in_bfloat16_with_plain_attention(tiny_model_dir):
    import torch

    model = load_model(tiny_model_dir, fast=True)
    assert {parameter.dtype for parameter in model.parameters()} == {torch.bfloat16}
    assert model.config._attn_implementation == "eager"


def test_scratch_memory_stays_in_the_heap_between_requests():
    """glibc (what this machine, the Lambda image and CI run) accepts both thresholds."""
    from qa.loading import keep_scratch_memory

    assert keep_scratch_memory() is True
