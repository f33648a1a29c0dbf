"""The torch engine: the TorchScript trace, the model as it is, fast mode."""

import numpy as np
import pytest
import torch

from qa.model.backends import in_passes
from qa.model.backends.torch import (
    keep_scratch_memory,
    load,
    load_model,
    logits_module,
    numpy_logits,
)
from qa.model.files import read_config
from qa.model.probes import probes


def padded_batches(vocab_size: int):
    """Batches of windows as the engine builds them: the last row of each padded."""
    rng = np.random.default_rng(0)
    for batch, length in [(1, 7), (4, 384), (18, 100)]:
        ids = rng.integers(0, vocab_size, (batch, length))
        mask = np.ones_like(ids)
        mask[-1, length // 3 :] = 0
        types = np.zeros_like(ids)
        types[:, 3:] = 1
        yield ids * mask, mask, types * mask


def test_traced_model_gives_exactly_the_logits_of_the_model_itself(tiny_model_dir):
    model = load_model(tiny_model_dir)
    checked = probes(tiny_model_dir, read_config(tiny_model_dir))
    traced, takes_token_types = logits_module(model, checked, trace=True)
    eager, _ = logits_module(model, checked, trace=False)
    assert isinstance(traced, torch.jit.ScriptModule) and takes_token_types
    hidden = model.config.hidden_size
    for batch in padded_batches(model.config.vocab_size):
        got = in_passes(numpy_logits(traced, takes_token_types=True), hidden_size=hidden)(*batch)
        expected = in_passes(numpy_logits(eager, takes_token_types=True), hidden_size=hidden)(
            *batch
        )
        for traced_logits, eager_logits in zip(got, expected, strict=True):
            np.testing.assert_allclose(traced_logits, eager_logits, atol=1e-6, rtol=0)


def test_a_model_that_cannot_be_traced_runs_as_it_is(modern_model_dir, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise RuntimeError("cannot trace this")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    forward = load(
        modern_model_dir, read_config(modern_model_dir), threads=1, fast=False, trace=True
    )
    assert "runs untraced (RuntimeError: cannot trace this)" in caplog.text
    ids = np.array([[2, 20, 3, 30, 3]])
    assert forward(ids, np.ones_like(ids), np.zeros_like(ids))[0].shape == (1, 5)


def test_fast_mode_computes_in_bfloat16_with_plain_attention(tiny_model_dir):
    model = load_model(tiny_model_dir, fast=True)
    assert {parameter.dtype for parameter in model.parameters()} == {torch.bfloat16}
    assert model.config._attn_implementation == "eager"


@pytest.mark.parametrize("threads", [1, 2])
def test_the_engine_computes_on_the_threads_it_is_given(baked_model_dir, threads):
    before = torch.get_num_threads()
    try:
        load(baked_model_dir, read_config(baked_model_dir), threads=threads, fast=False, trace=True)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_scratch_memory_stays_in_the_heap_between_requests():
    """glibc (what this machine, the Lambda image and CI run) accepts both thresholds."""
    assert keep_scratch_memory() is True
