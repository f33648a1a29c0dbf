"""bench/models.py: the model table's shapes are the real models' (their parameter counts are
the published ones), each tokenizer has its family's special-token layout, and the table says
which shapes do not bake and why."""

import pytest

from bench.models import (
    SHAPES,
    markdown_table,
    parameter_count,
    question_answering_model,
    train_tokenizer,
)

# A few per cent: the published counts are rounded (ELECTRA-Small's "14M" is 13.5M), and some
# are given for the architecture with another vocabulary or head (DistilBERT's 66M is the
# uncased model's, RoBERTa's and XLM-R's include the pooler a QA model has not).
TOLERANCE = 0.05

TEXTS = [
    "What is my name? I'm Kit-Ho Mak. I come from Hong Kong.",
    "The Eiffel Tower was completed in March 1889 as the centrepiece of the World's Fair.",
    "Photosynthesis is the process by which green plants use sunlight to make food.",
] * 20


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.hub_id)
def test_each_shape_has_the_published_parameter_count(shape):
    counted = parameter_count(question_answering_model(shape, meta=True)) / 1e6
    published = shape.card.parameters_m
    assert abs(counted - published) <= TOLERANCE * published, (counted, published)


def test_the_table_has_the_issue_s_models():
    ids = {shape.hub_id for shape in SHAPES}
    assert {
        "mrm8488/bert-tiny-5-finetuned-squadv2",
        "deepset/minilm-uncased-squad2",
        "distilbert-base-cased-distilled-squad",
        "deepset/tinyroberta-squad2",
        "deepset/roberta-base-squad2",
        "deepset/xlm-roberta-base-squad2",
        "deepset/deberta-v3-base-squad2",
    } <= ids
    assert any(shape.model_type == "electra" for shape in SHAPES)


# Per family: the special tokens' ids as the real tokenizers have them (the models' configs
# name the padding id), and the inputs the family's tokenizer gives a model.
LAYOUTS = {
    "bert": ({"[PAD]": 0, "[CLS]": 2, "[SEP]": 3}, True),
    "distilbert": ({"[PAD]": 0, "[CLS]": 2, "[SEP]": 3}, False),
    "electra": ({"[PAD]": 0, "[CLS]": 2, "[SEP]": 3}, True),
    "roberta": ({"<s>": 0, "<pad>": 1, "</s>": 2}, False),
    "xlm-roberta": ({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}, False),
    "deberta-v2": ({"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3}, True),
}


@pytest.mark.parametrize("model_type", LAYOUTS)
def test_each_family_s_tokenizer_has_its_special_tokens_and_inputs(model_type):
    shape = next(shape for shape in SHAPES if shape.model_type == model_type)
    tokenizer = train_tokenizer(shape, TEXTS)
    ids, with_token_types = LAYOUTS[model_type]
    assert {token: tokenizer.convert_tokens_to_ids(token) for token in ids} == ids
    assert ("token_type_ids" in tokenizer.model_input_names) == with_token_types
    pad = shape.config.get("pad_token_id", 0)
    assert tokenizer.pad_token_id == pad
    encoded = tokenizer("What is my name?", "I'm Kit-Ho Mak.")["input_ids"]
    assert encoded[0] == tokenizer.cls_token_id and encoded[-1] == tokenizer.sep_token_id
    assert tokenizer.unk_token_id not in encoded


def test_a_shape_that_does_not_bake_is_listed_with_the_reason():
    report = {
        "int8_supported": False,
        "machine": {"date": "today", "cpu": "a CPU", "cores": 2, "onnxruntime": "1"},
        "load_average_start": [1.0],
        "load_average_end": [2.0],
        "cold_start_from": "runtime tree",
        "runs": {"cold": 5, "rounds": 5, "repeat": {"SQuAD paragraph": 10, "20,000 chars": 1}},
        "models": [
            {
                "hub_id": "deepset/roberta-base-squad2",
                "url": "https://huggingface.co/deepset/roberta-base-squad2",
                "parameters": 124e6,
                "card": {"exact_match": 79.9, "f1": 82.9, "dataset": "SQuAD 2.0 dev"},
                "fp32": {"reason": "CommandError: Cannot bake it: IndexError"},
            }
        ],
    }
    table = markdown_table(report)
    assert "| `deepset/roberta-base-squad2` | 124.0 M | fp32 | does not bake yet: " in table
    assert_one_cell_a_column(table)
    assert "CommandError: Cannot bake it: IndexError" in table
    assert "79.9 / 82.9" in table


def test_a_measured_shape_shows_its_figures_and_ratios():
    figures = {
        "onnx_mb": 90.4,
        "tree_mb": 213.0,
        "zip_fits": True,
        "cold_start_s": 1.234,
        "cold_start_ratio": 2.5,
        "SQuAD paragraph ms": 25.2,
        "SQuAD paragraph ratio": 6.0,
        "20,000 chars ms": 2512.0,
        "20,000 chars ratio": 7.0,
    }
    report = {
        "int8_supported": True,
        "machine": {"date": "today", "cpu": "a CPU", "cores": 2, "onnxruntime": "1"},
        "load_average_start": [1.0],
        "load_average_end": [2.0],
        "cold_start_from": "dev virtualenv",
        "runs": {"cold": 3, "rounds": 3, "repeat": {"SQuAD paragraph": 10, "20,000 chars": 1}},
        "models": [
            {
                "hub_id": "deepset/minilm-uncased-squad2",
                "url": "https://huggingface.co/deepset/minilm-uncased-squad2",
                "parameters": 33.2e6,
                "card": {"exact_match": 76.2, "f1": 79.5, "dataset": "SQuAD 2.0 dev"},
                "fp32": figures,
                "int8": {**figures, "zip_fits": False, "agreement": {"identical_share": 0.9}},
            }
        ],
    }
    fp32, int8 = markdown_table(report).splitlines()[2:4]
    assert fp32 == (
        "| `deepset/minilm-uncased-squad2` | 33.2 M | fp32 | 90 | 213 | fits | 1.23 (×2.5) | "
        "25 (×6.0) | 2,512 (×7.0) | — | 76.2 / 79.5 "
        "([card](https://huggingface.co/deepset/minilm-uncased-squad2)) |"
    )
    assert int8.startswith("|  |  | int8 | 90 | 213 | no: image |")
    assert "| 90% |" in int8
    assert "dev virtualenv" in markdown_table(report)
    assert_one_cell_a_column(markdown_table(report))
    report["models"][0]["int8"] = {"reason": "CommandError: below the quality bound"}
    assert_one_cell_a_column(markdown_table(report))


def assert_one_cell_a_column(table: str) -> None:
    """Every row of the Markdown table has as many cells as its head."""
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert len(rows) > 2
    assert {row.count(" | ") for row in rows[2:]} == {rows[0].count(" | ")}, table
