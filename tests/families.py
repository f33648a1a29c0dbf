"""Tiny question-answering models of each architecture family qasite serves, built offline:
a tokenizer of the family's own kind (WordPiece, byte-level BPE or Unigram), trained here on a
small corpus and saved through the family's own transformers tokenizer class, and a model of the
family's config class with tiny sizes and seeded random weights.

FAMILIES maps a family's name to how it is built; build_family(name, directory) writes it, and
build_family(name, directory, legacy=True) writes its tokenizer in the family's legacy layout
(LEGACY_LAYOUTS: vocab.txt, vocab.json + merges.txt, or a SentencePiece model)."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import WORDS, tiny_vocab

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}

# What the tokenizers learn from, and what the parity tests ask about: English, accented Latin,
# CJK, all of which every family's tokenizer must cover.
ACCENTED = "I'm Kít-Hó Mák. I come from Hông Kông. Zoë façade naïve São Paulo Ærø."
CJK = "我叫麦杰浩。我来自香港。東京は日本の首都です。"
CORPUS = [
    " ".join(WORDS),
    ACCENTED,
    CJK,
    "The river Seine was built in Paris, the capital city of France, a long year ago.",
    "Who was born in Hong Kong? How many books? When is it? Where is the city?",
]


@dataclass(frozen=True)
class Family:
    """``config``: the transformers config class's name and its tiny sizes; ``tokenizer``: how
    the tokenizer is made ("wordpiece", "bpe" or "unigram") and through which transformers
    class it is saved, with its settings; ``max_length``: the longest input the tokenizer
    declares (tokenizer_config.json's model_max_length)."""

    config: str
    config_args: dict
    kind: str
    tokenizer_class: str
    tokenizer_args: dict = field(default_factory=dict)
    max_length: int = 512


ROBERTA_IDS = {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}
FAMILIES = {
    "bert": Family("BertConfig", TINY, "wordpiece", "BertTokenizer"),
    "distilbert": Family(
        "DistilBertConfig",
        {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64},
        "wordpiece",
        "DistilBertTokenizer",
    ),
    "electra": Family(
        "ElectraConfig", {**TINY, "embedding_size": 16}, "wordpiece", "ElectraTokenizer"
    ),
    "mobilebert": Family(
        "MobileBertConfig",
        {
            **TINY,
            "embedding_size": 16,
            "intra_bottleneck_size": 16,
            "true_hidden_size": 16,
            "num_feedforward_networks": 1,
        },
        "wordpiece",
        "MobileBertTokenizer",
    ),
    "roberta": Family(
        "RobertaConfig",
        {**TINY, **ROBERTA_IDS, "max_position_embeddings": 514, "type_vocab_size": 1},
        "bpe",
        "RobertaTokenizer",
    ),
    "xlm-roberta": Family(
        "XLMRobertaConfig",
        {**TINY, **ROBERTA_IDS, "max_position_embeddings": 514, "type_vocab_size": 1},
        "unigram",
        "XLMRobertaTokenizer",
    ),
    "albert": Family(
        "AlbertConfig",
        {**TINY, "embedding_size": 16, "pad_token_id": 0},
        "unigram",
        "AlbertTokenizer",
        {"do_lower_case": True},
    ),
    "deberta-v3": Family(
        "DebertaV2Config",
        {
            **TINY,
            "relative_attention": True,
            "position_buckets": 16,
            "max_relative_positions": -1,
            "pos_att_type": ["p2c", "c2p"],
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
            "position_biased_input": False,
            "type_vocab_size": 0,
        },
        "unigram",
        "DebertaV2Tokenizer",
    ),
    # DeBERTa-v2's xlarge/xxlarge: relative attention with a convolution beside the first layer,
    # and position embeddings added to the input as well.
    "deberta-v2": Family(
        "DebertaV2Config",
        {
            **TINY,
            "relative_attention": True,
            "position_buckets": 16,
            "max_relative_positions": -1,
            "pos_att_type": ["p2c", "c2p"],
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
            "conv_kernel_size": 3,
            "conv_act": "gelu",
            "type_vocab_size": 0,
        },
        "unigram",
        "DebertaV2Tokenizer",
    ),
    "modernbert": Family(
        "ModernBertConfig",
        {
            **TINY,
            "global_attn_every_n_layers": 2,
            "local_attention": 16,
            "pad_token_id": 1,
            "cls_token_id": 2,
            "sep_token_id": 3,
            "bos_token_id": 2,
            "eos_token_id": 3,
        },
        "bpe",
        "PreTrainedTokenizerFast",
        max_length=8192,
    ),
    # Block-sparse attention as bigbird-roberta-base has it (blocks of 64 tokens, 3 random): v4
    # runs it on inputs over 704 tokens until the first shorter one, then full attention for
    # good (docs/models.md).
    "bigbird": Family(
        "BigBirdConfig",
        {
            **TINY,
            "block_size": 64,
            "num_random_blocks": 3,
            "max_position_embeddings": 4096,
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "sep_token_id": 4,
        },
        "unigram",
        "BigBirdTokenizer",
        max_length=4096,
    ),
    "xlnet": Family(
        "XLNetConfig",
        {"d_model": 32, "n_layer": 2, "n_head": 2, "d_inner": 64, "pad_token_id": 5},
        "unigram",
        "XLNetTokenizer",
    ),
    "longformer": Family(
        "LongformerConfig",
        {
            **TINY,
            **ROBERTA_IDS,
            "sep_token_id": 2,
            "attention_window": 8,
            "max_position_embeddings": 4098,
            "type_vocab_size": 1,
        },
        "bpe",
        "LongformerTokenizer",
        max_length=4096,
    ),
}
# The special tokens of each tokenizer layout, in the order they take the first ids.
SPECIALS = {
    "roberta": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    "albert": ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"],
    "deberta": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "xlnet": ["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>"],
    "bigbird": ["<pad>", "<s>", "</s>", "[CLS]", "[SEP]", "<unk>", "[MASK]"],
    "modernbert": ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"],
}


# The legacy tokenizer layouts (no tokenizer.json) the hub still holds, and the family of each
# here: BERT's WordPiece vocabulary, RoBERTa's byte-level BPE, and SentencePiece models as ALBERT
# (with XLNet and BigBird), XLM-R (with CamemBERT) and DeBERTa-v2/v3 ship them.
LEGACY_LAYOUTS = {
    "vocab.txt": "bert",
    "vocab.json + merges.txt": "roberta",
    "spiece.model": "albert",
    "sentencepiece.bpe.model": "xlm-roberta",
    "spm.model": "deberta-v3",
}
# Each SentencePiece layout's file, model type, and the ids its special pieces take in it (XLM-R's
# <s>, <pad>, </s>, <unk> come from fairseq's table before the model's pieces instead).
SENTENCEPIECE = {
    "AlbertTokenizer": (
        "spiece.model",
        "unigram",
        {
            "pad_id": 0,
            "pad_piece": "<pad>",
            "unk_id": 1,
            "unk_piece": "<unk>",
            "bos_id": 2,
            "bos_piece": "[CLS]",
            "eos_id": 3,
            "eos_piece": "[SEP]",
            "user_defined_symbols": ["[MASK]"],
        },
    ),
    # A Unigram model, as xlm-roberta-base's, whatever its file's name says.
    "XLMRobertaTokenizer": ("sentencepiece.bpe.model", "unigram", {}),
    "DebertaV2Tokenizer": (
        "spm.model",
        "unigram",
        {
            "pad_id": 0,
            "pad_piece": "[PAD]",
            "bos_id": 1,
            "bos_piece": "[CLS]",
            "eos_id": 2,
            "eos_piece": "[SEP]",
            "unk_id": 3,
            "unk_piece": "[UNK]",
        },
    ),
}


def sentencepiece_model(model_type: str, pieces: dict) -> bytes:
    """A SentencePiece model trained on CORPUS (serialized, as the hub's *.model files)."""
    import io

    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 3),
        model_writer=model,
        vocab_size=300,
        model_type=model_type,
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
        num_threads=1,  # one thread: the same model every run (threads reorder its sums)
        **pieces,
    )
    return model.getvalue()


def _write_legacy_layout(family: Family, tokenizer, directory: Path, extra: dict) -> None:
    """Replace the saved tokenizer files in ``directory`` by the family's legacy layout and a
    tokenizer_config.json with the class, the longest input, the family's settings and
    ``extra`` only."""
    saved = json.loads((directory / "tokenizer.json").read_text())["model"]
    for path in directory.iterdir():
        path.unlink()
    if family.kind == "wordpiece":
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        (directory / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab))
    elif family.kind == "bpe":
        (directory / "vocab.json").write_text(json.dumps(saved["vocab"]))
        merges = [m if isinstance(m, str) else " ".join(m) for m in saved["merges"]]
        (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    else:
        filename, model_type, pieces = SENTENCEPIECE[family.tokenizer_class]
        (directory / filename).write_bytes(sentencepiece_model(model_type, pieces))
    settings = {
        "tokenizer_class": family.tokenizer_class,
        "model_max_length": family.max_length,
        **family.tokenizer_args,
        **extra,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(settings, indent=2))


def _bpe(specials: list[str]) -> tuple[dict, list]:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    state = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    return state["vocab"], merges


def _unigram(specials: list[str], unk: str) -> list[tuple[str, float]]:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=300,
        special_tokens=specials,
        unk_token=unk,
        initial_alphabet=sorted(set("".join(CORPUS).lower() + "".join(CORPUS))),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 3, trainer)
    trained = json.loads(tokenizer.to_str())["model"]["vocab"]
    return canonical_unigram(trained, specials)


def canonical_unigram(trained: list, specials: list[str]) -> list[tuple[str, float]]:
    """The pieces the Unigram trainer chose, the same in every process: the trainer walks hash
    maps in an order that changes from process to process, which moves its scores' last bits,
    orders pieces of equal score differently and gives the single characters it adds after
    training (below every longer piece) scores that step down in that order. Here: scores to 9
    decimals, those characters one equal score, the specials first as given, then the pieces by
    score and text. (Different ids from run to run once made a tie between two spans of a tiny
    model decide a test.)"""
    scores = {piece: round(score, 9) for piece, score in trained if piece not in specials}
    floor = min(score for piece, score in scores.items() if len(piece) > 1)
    scores = {
        piece: floor - 1.0 if len(piece) == 1 and score < floor else score
        for piece, score in scores.items()
    }
    ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [(piece, 0.0) for piece in specials] + ordered


def _tokenizer(family: Family):
    import transformers

    cls = getattr(transformers, family.tokenizer_class, None)
    if family.kind == "wordpiece":
        vocab = tiny_vocab() + sorted(
            set(CJK) | set("kít hó mák hông kông zoë façade naïve são ærø")
        )
        vocab = list(dict.fromkeys(v for v in vocab if v.strip()))
        return cls(vocab={token: i for i, token in enumerate(vocab)}, **family.tokenizer_args)
    if family.kind == "bpe" and family.tokenizer_class != "PreTrainedTokenizerFast":
        vocab, merges = _bpe(SPECIALS["roberta"])
        return cls(vocab=vocab, merges=merges, **family.tokenizer_args)
    if family.kind == "bpe":  # ModernBERT: a byte-level BPE with BERT's special tokens
        return _modernbert_tokenizer()
    layout = {
        "XLMRobertaTokenizer": "roberta",
        "AlbertTokenizer": "albert",
        "BigBirdTokenizer": "bigbird",
    }.get(family.tokenizer_class, "xlnet" if "XLNet" in family.tokenizer_class else "deberta")
    specials = SPECIALS[layout]
    unk = "<unk>" if "<unk>" in specials else "[UNK]"
    vocab = _unigram(specials, unk)
    extra = {"unk_id": specials.index(unk)} if layout in ("xlnet", "deberta") else {}
    return cls(vocab=vocab, **extra, **family.tokenizer_args)


def _modernbert_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = SPECIALS["modernbert"]
    vocab, merges = _bpe(specials)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "attention_mask"],
    )


def build_family(
    name: str,
    directory: Path,
    *,
    seed: int = 0,
    legacy: bool = False,
    tokenizer_args: dict | None = None,
) -> Path:
    """The tiny ``name`` model (a key of FAMILIES) written to ``directory`` as the hub holds
    such a model: config.json, model.safetensors, tokenizer.json and tokenizer_config.json; with
    ``legacy``, the family's legacy tokenizer files instead of tokenizer.json (LEGACY_LAYOUTS).
    ``tokenizer_args``: settings written to tokenizer_config.json over what its tokenizer files
    say (the tokenizer itself is built without them)."""
    import torch
    import transformers

    family = FAMILIES[name]
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(family)
    tokenizer.model_max_length = family.max_length
    tokenizer.save_pretrained(directory)
    # The class the hub's tokenizer_config.json names (transformers 5 may write another).
    settings_file = directory / "tokenizer_config.json"
    settings = json.loads(settings_file.read_text())
    # The settings over what the tokenizer files say, as a hub folder may have them.
    settings.update(tokenizer_class=family.tokenizer_class, **(tokenizer_args or {}))
    settings_file.write_text(json.dumps(settings, indent=2))
    if legacy:
        _write_legacy_layout(family, tokenizer, directory, tokenizer_args or {})
        # As transformers converts the legacy files (its vocabulary: the model's embeddings).
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    config = getattr(transformers, family.config)(vocab_size=len(tokenizer), **family.config_args)
    torch.manual_seed(seed)
    model = transformers.AutoModelForQuestionAnswering.from_config(config).eval()
    model.save_pretrained(directory)
    return directory


# The questions every family answers, with v4's pipeline options: accented and CJK text, a
# context of several windows (small ones, and the default 384-token ones), top_k and the
# no-answer.
LONG = " ".join(CORPUS * 8)
CASES = [
    {"question": "What is my name?", "context": ACCENTED},
    {"question": "我来自哪里？", "context": CJK, "top_k": 3},
    {
        "question": "Where was the river built?",
        "context": LONG,
        "max_seq_len": 64,
        "doc_stride": 16,
        "top_k": 3,
    },
    {
        "question": "Who was born in Hong Kong?",
        "context": LONG,
        "handle_impossible_answer": True,
        "top_k": 2,
    },
    {"question": "Which city is the capital?", "context": " ".join([LONG] * 3), "top_k": 5},
]
# Run by transformers v4's Python: reads {"models": {name: directory}, "cases": CASES} on stdin
# and prints {name: [answers of each case] or {"error": why}}, v4's pipeline on each folder.
V4_ANSWERS = """
import json, sys, warnings
warnings.filterwarnings("ignore")
import torch
from transformers import pipeline
torch.set_num_threads(1)
job = json.load(sys.stdin)
answers = {}
for name, directory in job["models"].items():
    try:
        qa = pipeline("question-answering", model=directory)
        results = []
        for case in job["cases"]:
            result = qa(**case)
            results.append(result if isinstance(result, list) else [result])
        answers[name] = results
    except Exception as error:
        answers[name] = {"error": f"{type(error).__name__}: {error}"}
print(json.dumps(answers))
"""


def run_v4(python: str, script: str, job: dict, *, timeout: float = 600) -> dict:
    """What ``script`` prints last (JSON) when ``python`` (the reference virtualenv's, with
    transformers v4) runs it with ``job`` as JSON on stdin, offline and on one thread."""
    import os
    import subprocess

    result = subprocess.run(
        [python, "-c", script],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def v4_answers(python: str, models: dict[str, Path]) -> dict:
    """transformers v4's answers to CASES for each of ``models`` (name: directory), from its
    pipeline run by ``python`` (the reference virtualenv's) in one subprocess."""
    job = {"models": {name: str(path) for name, path in models.items()}, "cases": CASES}
    return run_v4(python, V4_ANSWERS, job)


# Run by Lambda's Python on the torch-free runtime tree: the Lambda handler answers each case
# of {"event": an HTTP API event, "cases": CASES} on stdin; prints [[status, body], ...].
TREE_ANSWERS = """
import json, sys
from qasite.lambda_handler import handler
job = json.load(sys.stdin)
replies = []
for case in job["cases"]:
    response = handler(dict(job["event"], body=json.dumps(case)), None)
    replies.append([response["statusCode"], json.loads(response["body"])])
print(json.dumps(replies))
"""
