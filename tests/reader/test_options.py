"""The reader's options: transformers v4's pipeline defaults, and plain Python for the web layer."""

import subprocess
import sys

from qa.reader.options import MAX_TOP_K, MAX_WINDOW_TOKENS, OPTION_NAMES, Options

# transformers v4.57's QuestionAnsweringPipeline defaults (its _sanitize_parameters and
# preprocess/postprocess signatures): None means derived per request, as v4 derives it.
V4_DEFAULTS = {
    "top_k": 1,
    "doc_stride": None,
    "max_answer_len": 15,
    "max_seq_len": None,
    "max_question_len": 64,
    "handle_impossible_answer": False,
    "align_to_words": True,
}


def test_the_defaults_are_v4_s():
    assert {name: getattr(Options(), name) for name in OPTION_NAMES} == V4_DEFAULTS


def test_the_limits_hold_the_defaults():
    assert 1 <= Options().top_k <= MAX_TOP_K
    assert MAX_WINDOW_TOKENS == 512  # BERT-style models' longest input


def test_importing_the_options_loads_neither_numpy_nor_tokenizers():
    code = (
        "import sys, qa.reader.options; print(sorted({'numpy', 'tokenizers'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
