"""The engine's passes: a long context's windows in cache-sized passes, and a quantized graph's
window by window."""

import numpy as np
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from qa.model.backends import in_passes, window_by_window


def fake_run(passes):
    """A model whose logits are a function of each row alone, recording the passes it runs."""

    def run(input_ids, attention_mask, token_type_ids):
        passes.append(len(input_ids))
        start = (input_ids * 2 + attention_mask).astype(np.float32)
        return start, start - token_type_ids

    return run


def test_many_windows_run_in_cache_sized_passes_with_the_logits_of_one_pass():
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
