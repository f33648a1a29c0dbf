"""What a model is fed, as transformers v4's question-answering pipeline decides it: token type
ids only when the tokenizer's ``model_input_names`` has them, and the question first unless the
tokenizer pads on the left.

v4 reads both from tokenizer_config.json, and otherwise from the defaults of the fast tokenizer
class it loads (named by ``tokenizer_class``, or else the default tokenizer of the model's
``model_type``); ``save_pretrained`` does not write class defaults, so a hub folder often says
neither. The tables below are those defaults in transformers 4.57.6, the last v4 (fast classes,
and model types that have a question-answering model); tests/model/test_inputs.py checks them
against v4 itself. transformers 5 changed some (ALBERT, PreTrainedTokenizerFast): they cannot be
asked of the transformers installed here.
"""

from dataclasses import dataclass

from qa.reader.errors import ModelLoadError

# Fast tokenizer classes whose model_input_names leave token_type_ids out (v4.57.6).
WITHOUT_TOKEN_TYPES = frozenset(
    "Bart Barthez BigBird Blenderbot Bloom CLIP Camembert CodeGen CodeLlama Cohere DPRReader "
    "DistilBert GPT2 GPTNeoX Gemma LED LayoutLMv3 LayoutXLM Llama Longformer MBart50 MBart MPNet "
    "MT5 Mvp Nllb Nougat OpenAIGPT Pegasus Qwen2 Reformer RetriBert Roberta SeamlessM4T T5 Udop "
    "Whisper XGLM XLMRoberta".split()
)
# Fast tokenizer classes that pad on the left, and so put the context first (v4.57.6).
PADDING_LEFT = frozenset("CodeLlama Cohere Gemma Llama XLNet".split())
# Model types with a question-answering model whose default tokenizer has no token types, or
# pads on the left (v4.57.6's TOKENIZER_MAPPING_NAMES and MODEL_FOR_QUESTION_ANSWERING).
MODEL_TYPES_WITHOUT_TOKEN_TYPES = frozenset(
    "arcee bart big_bird bigbird_pegasus bloom camembert data2vec-text diffllama distilbert "
    "exaone4 gpt2 gpt_neo gpt_neox gptj ibert layoutlmv3 led lilt llama longformer mbart mega "
    "minimax ministral mistral mixtral mpnet mpt mra mt5 mvp opt qwen2 qwen2_moe qwen3 qwen3_moe "
    "qwen3_next reformer roberta roberta-prelayernorm t5 umt5 xlm-roberta xlm-roberta-xl "
    "xmod".split()
)
MODEL_TYPES_PADDING_LEFT = frozenset(
    "arcee diffllama llama ministral mistral mixtral xlnet".split()
)
# Fast tokenizer classes that set their BERT normalizer from their settings (do_lower_case,
# strip_accents, tokenize_chinese_chars, with their defaults when unset) whatever
# tokenizer.json says (v4.57.6), and the model types whose default tokenizer is one of them.
BERT_NORMALIZED = frozenset(
    "Bert ConvBert DPRContextEncoder DPRQuestionEncoder DPRReader DistilBert Electra Funnel "
    "LayoutLM Lxmert MobileBert Realm RetriBert RoFormer SqueezeBert".split()
)
MODEL_TYPES_BERT_NORMALIZED = frozenset(
    "bert convbert distilbert electra ernie funnel lxmert megatron-bert mobilebert nezha qdqbert "
    "roformer squeezebert".split()
)


# Fast tokenizer classes that set their post-processor's add_prefix_space and trim_offsets from
# their settings (defaults false and true) whatever tokenizer.json says (v4.57.6), and the model
# types whose default tokenizer is one of them. (Every v4 fast tokenizer also sets its
# pre-tokenizer's add_prefix_space from the setting, default false: qa.model.tokenization.)
PREFIX_SPACE_PROCESSED = frozenset("Bart Blenderbot LED LayoutLMv3 Longformer Mvp Roberta".split())
MODEL_TYPES_PREFIX_SPACE_PROCESSED = frozenset(
    "bart data2vec-text ibert layoutlmv3 led lilt longformer mega mra mvp roberta "
    "roberta-prelayernorm".split()
)


@dataclass(frozen=True)
class ModelInputs:
    """``token_types``: the model is fed token_type_ids; ``question_first``: the question is the
    first sequence of each window (the tokenizer pads on the right)."""

    token_types: bool
    question_first: bool


def _class_name(tokenizer_config: dict, config: dict) -> str | None:
    name = tokenizer_config.get("tokenizer_class") or config.get("tokenizer_class")
    if not isinstance(name, str):
        return None
    name = name.removesuffix("Fast")
    return name.removesuffix("Tokenizer") if name != "PreTrainedTokenizer" else name


def bert_normalized(tokenizer_config: dict, config: dict) -> bool:
    """Whether v4's tokenizer for these settings sets its BERT normalizer from them (a legacy
    ``vocab.txt`` folder of no known class counts as BERT's)."""
    name = _class_name(tokenizer_config, config)
    if name is not None:
        return name in BERT_NORMALIZED
    return config.get("model_type", "bert") in MODEL_TYPES_BERT_NORMALIZED


def prefix_space_processed(tokenizer_config: dict, config: dict) -> bool:
    """Whether v4's tokenizer for these settings sets its post-processor's add_prefix_space and
    trim_offsets from them (RoBERTa's byte-level BPE and its kin)."""
    name = _class_name(tokenizer_config, config)
    if name is not None:
        return name in PREFIX_SPACE_PROCESSED
    return config.get("model_type") in MODEL_TYPES_PREFIX_SPACE_PROCESSED


def model_inputs(tokenizer_config: dict, config: dict) -> ModelInputs:
    """What v4 feeds the model of ``config`` (config.json) with the tokenizer whose settings are
    ``tokenizer_config`` (tokenizer_config.json and special_tokens_map.json)."""
    name = _class_name(tokenizer_config, config)
    if name is not None:
        types, left = name not in WITHOUT_TOKEN_TYPES, name in PADDING_LEFT
    else:
        model_type = config.get("model_type")
        types = model_type not in MODEL_TYPES_WITHOUT_TOKEN_TYPES
        left = model_type in MODEL_TYPES_PADDING_LEFT
    names = tokenizer_config.get("model_input_names")
    if isinstance(names, list):
        types = "token_type_ids" in names
    side = tokenizer_config.get("padding_side")
    if side in ("left", "right"):
        left = side == "left"
    return ModelInputs(token_types=types, question_first=not left)


def check_question_first(inputs: ModelInputs) -> None:
    """ModelLoadError for a tokenizer that puts the context first (XLNet's): v4's pipeline
    lets such a model answer with any token of the window, the question's and the special
    tokens' included (its answer mask is built for the question-first order only), so its
    answers cannot be both v4's and spans of the context. docs/models.md says more."""
    if not inputs.question_first:
        raise ModelLoadError(
            "The tokenizer puts the context before the question (it pads on the left, as "
            "XLNet's does); qasite serves only models whose tokenizer puts the question first."
        )
