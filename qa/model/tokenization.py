"""The model's fast tokenizer as v4 builds it: from ``tokenizer.json``, a legacy ``vocab.txt``,
or (converted by transformers, qa.model.baking.tokenizer_conversion: when baking, or serving an
unbaked folder in development) ``vocab.json`` + ``merges.txt`` or a SentencePiece model; with
the tokenizer_config.json settings v4's classes apply over it (docs/models.md)."""

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from qa.model.baking.tokenizer_conversion import legacy_special_tokens, reference_tokenizer
from qa.model.files import LEGACY_TOKENIZER_FILES, read_json
from qa.model.inputs import (
    bert_normalized,
    check_question_first,
    model_inputs,
    prefix_space_processed,
)
from qa.reader.answerer import DEFAULT_MAX_SEQ_LEN, SpecialTokens
from qa.reader.errors import ModelLoadError

# A sentence any English WordPiece vocabulary covers: a tokenizer that maps it mostly to the
# unknown token was built wrongly (e.g. a vocab file silently ignored).
TOKENIZER_PROBE = "What is my name? I come from Hong Kong and I like reading books."


def _token_text(value) -> str | None:
    """Special tokens are stored as plain strings or as {"content": ...} objects."""
    return value.get("content") if isinstance(value, dict) else value


def _bert_normalizer(config: dict, *, clean_text: bool = True) -> normalizers.BertNormalizer:
    """BERT's normalizer as v4's BERT-family tokenizers set it from their settings, each
    defaulting as their classes do (lowercase, accents stripped when lowercasing, CJK characters
    split apart)."""
    return normalizers.BertNormalizer(
        clean_text=clean_text,
        handle_chinese_chars=config.get("tokenize_chinese_chars", True),
        strip_accents=config.get("strip_accents"),
        lowercase=config.get("do_lower_case", True),
    )


def _wordpiece_tokenizer(vocab: Path, *, config: dict, special: dict[str, str]) -> Tokenizer:
    """The fast BERT tokenizer for a directory that has only ``vocab.txt``.

    Built from the tokenizers primitives directly, exactly as transformers converts a slow BERT
    tokenizer, rather than through a tokenizer class that might ignore the vocab file.
    """
    tokenizer = Tokenizer(WordPiece.from_file(str(vocab), unk_token=special["unk"]))
    tokenizer.normalizer = _bert_normalizer(config)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = special["cls"], special["sep"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, tokenizer.token_to_id(cls)), (sep, tokenizer.token_to_id(sep))],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens(list(special.values()))
    return tokenizer


def _converted_layout(directory: Path) -> bool:
    """Whether the tokenizer is a legacy layout transformers converts (vocab.json and
    merges.txt, or a SentencePiece model)."""
    return not any(
        (directory / name).is_file() for name in ("tokenizer.json", "vocab.txt")
    ) and any((directory / name).is_file() for name in LEGACY_TOKENIZER_FILES)


def tokenizer_config(directory: Path) -> dict:
    """The tokenizer's settings and special tokens, from whichever of the two files exist; for a
    layout transformers converts, the special tokens its class defaults to where they say none."""
    config = read_json(directory / "tokenizer_config.json")
    config.update(read_json(directory / "special_tokens_map.json"))
    if _converted_layout(directory):
        try:
            defaults = legacy_special_tokens(directory)
        except Exception:  # load_tokenizer says why, when it converts the files
            defaults = {}
        config = {**defaults, **config}
    return config


def _prefix_space_settings(tokenizer: Tokenizer, config: dict, *, processed: bool) -> Tokenizer:
    """The tokenizer with add_prefix_space and trim_offsets as v4's fast tokenizers set them over
    tokenizer.json's: every class sets its pre-tokenizer's add_prefix_space (where it has one)
    from the setting, default false; RoBERTa's kin (``processed``) set their post-processor's
    add_prefix_space and trim_offsets too, defaults false and true (v4.57.6's
    PreTrainedTokenizerFast and RobertaTokenizerFast)."""
    data = json.loads(tokenizer.to_str())
    add_prefix_space = config.get("add_prefix_space", False)
    wanted = [(data.get("pre_tokenizer"), "add_prefix_space", add_prefix_space)]
    if processed:
        post = data.get("post_processor")
        wanted += [
            (post, "add_prefix_space", add_prefix_space),
            (post, "trim_offsets", config.get("trim_offsets", True)),
        ]
    changed = False
    for component, name, value in wanted:
        if component is not None and component.get(name, value) != value:
            component[name] = value
            changed = True
    return Tokenizer.from_str(json.dumps(data)) if changed else tokenizer


def load_tokenizer(directory: Path) -> tuple[Tokenizer, SpecialTokens, int | None]:
    """The fast tokenizer, its [CLS]/[PAD] ids and the longest input it declares (if any).

    Raises ModelLoadError if there is no tokenizer, it cannot be read, it does not tokenize,
    or it puts the context first (qa.model.inputs.check_question_first).
    """
    config = tokenizer_config(directory)
    model_config = read_json(directory / "config.json")
    check_question_first(model_inputs(config, model_config))
    special = {
        name: _token_text(config.get(f"{name}_token")) or default
        for name, default in [
            ("unk", "[UNK]"),
            ("sep", "[SEP]"),
            ("pad", "[PAD]"),
            ("cls", "[CLS]"),
            ("mask", "[MASK]"),
        ]
    }
    try:
        if (directory / "tokenizer.json").is_file():
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        elif (directory / "vocab.txt").is_file():
            tokenizer = _wordpiece_tokenizer(
                directory / "vocab.txt", config=config, special=special
            )
        elif _converted_layout(directory):
            tokenizer = reference_tokenizer(directory)
        else:
            raise ModelLoadError(
                "The model has no tokenizer (tokenizer.json, vocab.txt, or "
                + ", ".join(LEGACY_TOKENIZER_FILES)
                + ")."
            )
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError("The tokenizer files could not be read.", str(error)) from error
    if bert_normalized(config, model_config) and isinstance(
        tokenizer.normalizer, normalizers.BertNormalizer
    ):
        # v4's BERT-family classes override tokenizer.json's normalizer with their settings.
        state = json.loads(tokenizer.normalizer.__getstate__())
        tokenizer.normalizer = _bert_normalizer(config, clean_text=state.get("clean_text", True))
    tokenizer = _prefix_space_settings(
        tokenizer, config, processed=prefix_space_processed(config, model_config)
    )
    ids = {name: tokenizer.token_to_id(token) for name, token in special.items()}
    if ids["cls"] is None or ids["pad"] is None:
        raise ModelLoadError("The tokenizer has no classifier or padding token.")
    _check_tokenizer(tokenizer, unk_id=ids["unk"])
    return (
        tokenizer,
        SpecialTokens(cls_id=ids["cls"], pad_id=ids["pad"]),
        config.get("model_max_length"),
    )


def _check_tokenizer(tokenizer: Tokenizer, *, unk_id: int | None) -> None:
    tokens = tokenizer.encode(TOKENIZER_PROBE, add_special_tokens=False).ids
    if not tokens or tokens.count(unk_id) > len(tokens) // 4:
        raise ModelLoadError(
            "The tokenizer does not tokenize text (nearly everything is unknown).",
            f"{tokens.count(unk_id)} of {len(tokens)} probe tokens are unknown",
        )


def longest_input(declared: int | None, config: dict) -> int:
    """The longest input both the tokenizer (if it says) and the model's positions allow."""
    lengths = (declared, config.get("max_position_embeddings"))
    return min((length for length in lengths if length), default=DEFAULT_MAX_SEQ_LEN)
