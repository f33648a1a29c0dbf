"""What the model is fed, decided as transformers v4 decides it; v4's defaults as v4 has them."""

import json
import subprocess

import pytest

from qa.model import inputs as model_inputs
from qa.model.inputs import ModelInputs, check_question_first
from qa.reader.errors import ModelLoadError

TYPES, NO_TYPES = ModelInputs(True, True), ModelInputs(False, True)


@pytest.mark.parametrize(
    ("tokenizer_config", "config", "expected"),
    [
        ({"tokenizer_class": "BertTokenizer"}, {}, TYPES),
        ({"tokenizer_class": "BertTokenizerFast"}, {}, TYPES),
        ({"tokenizer_class": "RobertaTokenizer"}, {"model_type": "bert"}, NO_TYPES),
        ({"tokenizer_class": "XLMRobertaTokenizerFast"}, {}, NO_TYPES),
        ({"tokenizer_class": "DistilBertTokenizer"}, {}, NO_TYPES),
        # v4's ALBERT and its generic fast tokenizer take token types; transformers 5's do not.
        ({"tokenizer_class": "AlbertTokenizer"}, {}, TYPES),
        ({"tokenizer_class": "PreTrainedTokenizerFast"}, {}, TYPES),
        ({"tokenizer_class": "XLNetTokenizer"}, {}, ModelInputs(True, False)),
        # No class named: the model type's default tokenizer, in the tokenizer's config first.
        ({}, {"model_type": "roberta"}, NO_TYPES),
        ({}, {"model_type": "xlm-roberta"}, NO_TYPES),
        ({}, {"model_type": "bert"}, TYPES),
        ({}, {"model_type": "xlnet"}, ModelInputs(True, False)),
        ({}, {"model_type": "bert", "tokenizer_class": "RobertaTokenizer"}, NO_TYPES),
        ({}, {}, TYPES),
        # What the tokenizer's config says outweighs its class's defaults.
        (
            {"tokenizer_class": "PreTrainedTokenizerFast", "model_input_names": ["input_ids"]},
            {},
            NO_TYPES,
        ),
        (
            {"tokenizer_class": "RobertaTokenizer", "model_input_names": ["token_type_ids"]},
            {},
            TYPES,
        ),
        ({"tokenizer_class": "XLNetTokenizer", "padding_side": "right"}, {}, TYPES),
        (
            {"tokenizer_class": "BertTokenizer", "padding_side": "left"},
            {},
            ModelInputs(True, False),
        ),
    ],
)
def test_the_inputs_are_those_v4_feeds(tokenizer_config, config, expected):
    assert model_inputs.model_inputs(tokenizer_config, config) == expected


def test_a_tokenizer_that_puts_the_context_first_cannot_be_served():
    check_question_first(TYPES)
    with pytest.raises(ModelLoadError, match="puts the context before the question"):
        check_question_first(ModelInputs(True, False))


# Run by v4's Python: its fast tokenizer classes' and question-answering model types' defaults.
V4_DEFAULTS = """
import json, warnings
warnings.filterwarnings("ignore")
import transformers
from transformers.models.auto.modeling_auto import MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES
from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING_NAMES

import inspect

def defaults(name):
    try:
        cls = getattr(transformers, name)
        # Whether its __init__ sets the BERT normalizer from its settings.
        source = inspect.getsource(cls.__init__)
        bert = 'normalizer_state.get("strip_accents"' in source
        # Whether it sets its post-processor's add_prefix_space and trim_offsets from them.
        prefix = 'state["trim_offsets"] = trim_offsets' in source
        return "token_type_ids" in cls.model_input_names, cls.padding_side == "left", bert, prefix
    except Exception:  # a class whose library is not installed, or no such class
        return None

classes = {n.removesuffix("TokenizerFast"): defaults(n) for n in dir(transformers)
           if n.endswith("TokenizerFast")}
types = {t: defaults(TOKENIZER_MAPPING_NAMES.get(t, (None, None))[1] or "")
         for t in MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES}
print(json.dumps({
    "WITHOUT_TOKEN_TYPES": sorted(n for n, d in classes.items() if d and not d[0]),
    "PADDING_LEFT": sorted(n for n, d in classes.items() if d and d[1]),
    "MODEL_TYPES_WITHOUT_TOKEN_TYPES": sorted(t for t, d in types.items() if d and not d[0]),
    "MODEL_TYPES_PADDING_LEFT": sorted(t for t, d in types.items() if d and d[1]),
    "BERT_NORMALIZED": sorted(n for n, d in classes.items() if d and d[2]),
    "MODEL_TYPES_BERT_NORMALIZED": sorted(t for t, d in types.items() if d and d[2]),
    "PREFIX_SPACE_PROCESSED": sorted(n for n, d in classes.items() if d and d[3]),
    "MODEL_TYPES_PREFIX_SPACE_PROCESSED": sorted(t for t, d in types.items() if d and d[3]),
}))
"""


def test_the_tables_are_v4s_own_defaults(reference_python):
    result = subprocess.run(
        [reference_python, "-c", V4_DEFAULTS], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for table, names in json.loads(result.stdout.splitlines()[-1]).items():
        assert sorted(getattr(model_inputs, table)) == names, table
