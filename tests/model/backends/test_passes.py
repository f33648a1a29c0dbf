"""The backends' passes: a long context's windows in passes of a size chosen by the CPU, and a
quantized graph's window by window."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from qa.model import backends
from qa.model.backends import cpu_fields, in_passes, pass_hidden_floats, window_by_window


def fake_run(passes):
    """A model whose logits are a function of each row alone, recording the passes it runs."""

    def run(input_ids, attention_mask, token_type_ids):
        passes.append(len(input_ids))
        start = (input_ids * 2 + attention_mask).astype(np.float32)
        return start, start - token_type_ids

    return run


def test_many_windows_run_in_cache_sized_passes_with_the_logits_of_one_pass(monkeypatch):
    monkeypatch.setattr(backends, "PASS_HIDDEN_FLOATS", 2**18)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 100, (9, 384))
    mask, types = np.ones_like(ids), rng.integers(0, 2, (9, 384))
    passes = []
    # A hidden size this large allows 2 windows of 384 tokens per pass.
    split = in_passes(fake_run(passes), hidden_size=341)(ids, mask, types)
    whole = in_passes(fake_run(passes), hidden_size=0)(ids, mask, types)
    assert passes == [2, 2, 2, 2, 1, 9]
    for split_logits, whole_logits in zip(split, whole, strict=True):
        assert split_logits.shape == (9, 384)
        np.testing.assert_array_equal(split_logits, whole_logits)


@hypothesis_settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_window_by_window_runs_each_window_alone_and_unpadded(lengths, seed):
    """Each row's logits are those of the row alone, cut to its attention mask, whatever rows
    and padding share the batch; padding's logits are float32's lowest."""
    rng = np.random.default_rng(seed)
    width = max(lengths) + int(rng.integers(0, 5))
    ids = rng.integers(1, 100, (len(lengths), width))
    mask = (np.arange(width) < np.array(lengths)[:, None]).astype(np.int64)
    types = rng.integers(0, 2, ids.shape)
    passes = []

    def run(input_ids, attention_mask, token_type_ids):
        # Logits that depend on the whole pass, as a dynamically quantized graph's do.
        passes.append(input_ids.shape)
        start = (input_ids + input_ids.max() + input_ids.shape[1]).astype(np.float32)
        return start, start - token_type_ids

    starts, ends = window_by_window(run)(ids * mask, mask, types)
    assert passes == [(1, length) for length in lengths]
    lowest = np.finfo(np.float32).min
    for row, length in enumerate(lengths):
        alone = run(
            ids[row : row + 1, :length], mask[row : row + 1, :length], types[row : row + 1, :length]
        )
        np.testing.assert_array_equal(starts[row, :length], alone[0][0])
        np.testing.assert_array_equal(ends[row, :length], alone[1][0])
        assert (starts[row, length:] == lowest).all() and (ends[row, length:] == lowest).all()


CPUINFO = """processor	: 0
vendor_id	: {vendor}
model name	: {name}
flags		: fpu avx2 avx512f

processor	: 1
vendor_id	: {vendor}
model name	: {name}
"""


@pytest.mark.parametrize(
    ("vendor", "name", "floats", "windows"),
    [
        ("GenuineIntel", "Intel(R) Xeon(R) Processor @ 2.80GHz", 2**16, 1),
        ("AuthenticAMD", "AMD EPYC 9R14", 2**18, 5),
        ("HygonGenuine", "Hygon C86", 2**18, 5),  # a CPU not measured keeps the default
    ],
)
def test_the_pass_size_is_chosen_by_the_cpu_s_vendor(
    tmp_path, monkeypatch, vendor, name, floats, windows
):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(vendor=vendor, name=name))
    fields = cpu_fields(cpuinfo)
    assert (fields["vendor_id"], fields["model name"]) == (vendor, name)
    assert pass_hidden_floats(fields) == floats
    # bert-tiny's hidden size (128) on 384-token windows: windows per pass.
    monkeypatch.setattr(backends, "PASS_HIDDEN_FLOATS", floats)
    ids = np.ones((windows + 1, 384), dtype=np.int64)
    passes = []
    in_passes(fake_run(passes), hidden_size=128)(ids, ids, ids * 0)
    assert passes[0] == windows


def test_a_cpu_without_a_vendor_or_cpuinfo_keeps_the_default(tmp_path):
    arm = tmp_path / "cpuinfo"
    arm.write_text(
        "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n"
    )
    assert pass_hidden_floats(cpu_fields(arm)) == backends.DEFAULT_PASS_HIDDEN_FLOATS
    assert cpu_fields(tmp_path / "absent") == {}
    assert pass_hidden_floats({}) == backends.DEFAULT_PASS_HIDDEN_FLOATS


def test_this_process_uses_the_size_chosen_for_its_cpu():
    assert backends.PASS_HIDDEN_FLOATS == pass_hidden_floats(cpu_fields())
