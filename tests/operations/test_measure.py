"""Which CPU a figure comes from, and the engine's latency on it."""

from qa.operations.measure import CPU_FLAGS, LONG_CHARS, cpu, latency, long_context


def test_cpu_names_the_model_its_flags_and_l2():
    report = cpu()
    assert isinstance(report["cpu"], str) and report["cpu"]
    assert set(report["cpu_flags"]) <= set(CPU_FLAGS)
    assert report["l2_kb"] is None or report["l2_kb"] > 0
    assert report["cores"] >= 1


def test_the_long_context_is_the_benchmarks_length_and_takes_many_windows(tiny_answerer):
    question, context = long_context()
    assert len(context) == LONG_CHARS and question.endswith("?")
    assert tiny_answerer.windows(question, context).count > 10


def test_latency_times_both_inputs(tiny_answerer):
    assert set(latency(tiny_answerer, repeat=1)) == {"Kit-Ho Mak", "20,000 chars"}
