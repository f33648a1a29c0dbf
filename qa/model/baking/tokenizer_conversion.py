"""Tokenizers saved before tokenizer.json, converted by transformers as v4 converts them: a
byte-level BPE's ``vocab.json`` + ``merges.txt`` and SentencePiece models (qa.model.files
lists the files). Build time: ``manage.py bake_model`` writes the result as the baked folder's
tokenizer.json and checks it (qa.model.baking.tokenizer_check); a folder served without a bake
(development, with transformers installed) is converted on each load. transformers is imported
here when a conversion runs, never by serving a baked folder.
"""

from pathlib import Path

from tokenizers import AddedToken, Tokenizer

from qa.model.files import SENTENCEPIECE_FILES, tokenizer_layout
from qa.reader.errors import ModelLoadError


def _transformers_tokenizer(directory: Path):
    """transformers' fast tokenizer of ``directory``. Raises ModelLoadError where transformers
    is not installed (the torch-free runtime: bake the model first)."""
    try:
        from transformers import AutoTokenizer
    except ImportError as error:
        raise ModelLoadError(
            "The model's tokenizer has no tokenizer.json: bake the model (manage.py bake_model) "
            "to convert its legacy files.",
            str(error),
        ) from error
    return AutoTokenizer.from_pretrained(directory, local_files_only=True, use_fast=True)


def reference_tokenizer(directory: Path) -> Tokenizer:
    """The fast tokenizer v4 builds from ``directory``, as transformers installed makes it: for
    a SentencePiece layout, transformers' converter of the class's slow tokenizer, as v4 converts
    it (transformers 5's own classes build these otherwise, with other offsets and normalizers),
    its special tokens added as v4's fast class adds them; else transformers' fast tokenizer
    (over tokenizer.json, vocab.txt, or vocab.json and merges.txt), with the settings its class
    applies. Used when baking (serving never needs transformers or sentencepiece).

    Raises ModelLoadError where transformers is not installed; transformers' own errors where
    it cannot read or convert the files."""
    converted = _transformers_tokenizer(directory)
    if (
        not any((directory / name).is_file() for name in SENTENCEPIECE_FILES)
        or (directory / "tokenizer.json").is_file()
    ):
        tokenizer = Tokenizer.from_str(converted.backend_tokenizer.to_str())
    else:
        from transformers.convert_slow_tokenizer import convert_slow_tokenizer

        try:
            tokenizer = convert_slow_tokenizer(converted)
        except Exception as error:
            raise ModelLoadError(
                f"transformers cannot convert the model's SentencePiece tokenizer "
                f"({tokenizer_layout(directory)}) into a tokenizer.json. Bake a copy of the "
                "folder with a tokenizer.json saved by transformers 4's fast tokenizer "
                "(save_pretrained).",
                f"{type(error).__name__}: {error}",
            ) from error
        tokenizer.add_special_tokens(
            [
                AddedToken(token, special=True, normalized=False)
                for token in converted.all_special_tokens
            ]
        )
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def legacy_special_tokens(directory: Path) -> dict:
    """The special tokens (name -> text, as ``special_tokens_map.json`` names them) that
    transformers' tokenizer class of ``directory`` defaults to. Raises ModelLoadError where
    transformers is not installed; transformers' own errors where it cannot read the files."""
    return _transformers_tokenizer(directory).special_tokens_map
