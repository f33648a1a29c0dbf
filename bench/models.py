"""Choosing a model: size and speed of real hub QA models' shapes, baked and served by qasite.

    .venv/bin/python bench/models.py [--quick] [--only HUB_ID ...] [--cold N]

For each shape in SHAPES (the config.json values of a real hub model, random weights: size and
speed do not depend on the weight values) it builds the model with transformers' config classes
(seeded) and a tokenizer of the model's family trained offline on the SQuAD sample's text (a
small vocabulary; the embedding matrix keeps the real vocabulary size), bakes it with
`manage.py bake_model` (and with `--quantize int8` when bake_model has that option), and
measures the parameters, model.onnx, the runtime tree with the model, whether that fits Lambda's
zip, the cold start to a first answer and the warm latency on one thread. A shape that does not
bake is recorded with the reason. Writes bench/results/models.json and the table in
docs/choosing-a-model.md (with --quick, two shapes, or --only: bench/results/models-quick.json,
the docs untouched). Everything built is kept in bench/.models and reused while its shape (and,
for a bake, qa/'s code) is unchanged.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as a script, bench/models.py: the repository's packages become importable
    sys.path.insert(0, str(ROOT))
from bench.report import LAMBDA_LIMIT_MB, table_head  # noqa: E402  (after the path, above)
from bench.run import (  # noqa: E402
    BENCH,
    PYTHON,
    RESULTS,
    SQUAD,
    TREE,
    Worker,
    ensure_runtime_tree,
    fingerprint,
    first_answer_command,
    interleaved,
    latency_inputs,
    log,
    machine,
    spans,
    time_fresh_processes,
    tree_size,
)
from bench.squad import load_questions  # noqa: E402

MODELS = BENCH / ".models"
DOCS_PAGE = ROOT / "docs" / "choosing-a-model.md"
TABLE_START, TABLE_END = "<!-- models table: bench/models.py -->", "<!-- end of models table -->"
# The size of every trained tokenizer's vocabulary (the models' embeddings keep their real size).
TOKENIZER_VOCAB = 8000
SIZES = ["SQuAD paragraph", "20,000 chars"]


def runs(quick: bool) -> dict:
    """How often each figure is measured: fresh processes per cold start; rounds of warm
    requests, each of ``repeat[size]`` requests per variant (so rounds × repeat in all)."""
    return {
        "cold": 2 if quick else 3,
        "rounds": 2 if quick else 3,
        "repeat": {"SQuAD paragraph": 4 if quick else 10, "20,000 chars": 1},
    }


@dataclass(frozen=True)
class Card:
    """What a model's card claims: SQuAD quality (``dataset``: which set and split) and the
    parameter count its authors publish for the architecture (millions, with its source)."""

    exact_match: float | None
    f1: float | None
    dataset: str
    parameters_m: float
    parameters_source: str


@dataclass(frozen=True)
class Shape:
    """A hub QA model's shape: its config.json's architecture values (``config``, for
    transformers' AutoConfig.for_model(model_type)) and its tokenizer's family."""

    hub_id: str
    model_type: str
    config: dict
    tokenizer: str  # "wordpiece" (BERT family), "byte-bpe" (RoBERTa), "unigram" (XLM-R, DeBERTa-v3)
    card: Card
    lowercase: bool = False

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.hub_id}"

    @property
    def slug(self) -> str:
        return slug(self.hub_id)


def slug(hub_id: str) -> str:
    """A hub id as a folder name."""
    return hub_id.replace("/", "--")


BERT_TINY = "mrm8488/bert-tiny-5-finetuned-squadv2"
# Each model's config.json (architecture values only) and its card's claims. Quality: the
# SQuAD 2.0 dev figures the card states (deepset's cards: the model-index metadata the hub shows
# as "Evaluation results"); parameters: the architecture's published count.
SHAPES = [
    Shape(
        BERT_TINY,
        "bert",
        {
            "vocab_size": 30522,
            "hidden_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 512,
            "max_position_embeddings": 512,
            "type_vocab_size": 2,
        },
        "wordpiece",
        Card(
            57.12,
            60.86,
            "SQuAD 2.0 dev",
            4.4,
            "BERT-Tiny, arXiv:1908.08962 (Well-Read Students Learn Better)",
        ),
        lowercase=True,
    ),
    Shape(
        "deepset/minilm-uncased-squad2",
        "bert",
        {
            "vocab_size": 30522,
            "hidden_size": 384,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 1536,
            "max_position_embeddings": 512,
            "type_vocab_size": 2,
        },
        "wordpiece",
        Card(
            76.19,
            79.55,
            "SQuAD 2.0 dev",
            33,
            "MiniLM-L12-H384, https://huggingface.co/microsoft/MiniLM-L12-H384-uncased",
        ),
        lowercase=True,
    ),
    Shape(
        "distilbert-base-cased-distilled-squad",
        "distilbert",
        {
            "vocab_size": 28996,
            "dim": 768,
            "n_layers": 6,
            "n_heads": 12,
            "hidden_dim": 3072,
            "max_position_embeddings": 512,
        },
        "wordpiece",
        Card(
            None,
            87.1,
            "SQuAD 1.1 dev (no SQuAD 2.0 figure: trained on SQuAD 1.1, it never answers "
            "'no answer')",
            66,
            "DistilBERT, arXiv:1910.01108 (66M, uncased vocabulary of 30,522)",
        ),
    ),
    Shape(
        "deepset/tinyroberta-squad2",
        "roberta",
        {
            "vocab_size": 50265,
            "hidden_size": 768,
            "num_hidden_layers": 6,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "max_position_embeddings": 514,
            "type_vocab_size": 1,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
        },
        "byte-bpe",
        Card(
            78.86,
            82.04,
            "SQuAD 2.0 dev",
            81.5,
            "the hub's count of the model's weights, https://huggingface.co/deepset/tinyroberta-squad2",
        ),
    ),
    Shape(
        "deepset/roberta-base-squad2",
        "roberta",
        {
            "vocab_size": 50265,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "max_position_embeddings": 514,
            "type_vocab_size": 1,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
        },
        "byte-bpe",
        Card(79.93, 82.95, "SQuAD 2.0 dev", 125, "RoBERTa-base, arXiv:1907.11692 / fairseq"),
    ),
    Shape(
        "deepset/xlm-roberta-base-squad2",
        "xlm-roberta",
        {
            "vocab_size": 250002,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "max_position_embeddings": 514,
            "type_vocab_size": 1,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
        },
        "unigram",
        Card(74.04, 77.18, "SQuAD 2.0 dev", 270, "XLM-R base, arXiv:1911.02116 / fairseq"),
    ),
    Shape(
        "deepset/deberta-v3-base-squad2",
        "deberta-v2",
        {
            "vocab_size": 128100,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "max_position_embeddings": 512,
            "type_vocab_size": 0,
            "relative_attention": True,
            "position_buckets": 256,
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
            "pos_att_type": ["p2c", "c2p"],
            "position_biased_input": False,
            "max_relative_positions": -1,
            "layer_norm_eps": 1e-7,
            "pad_token_id": 0,
        },
        "unigram",
        Card(
            83.82,
            87.41,
            "SQuAD 2.0 dev",
            184,
            "86M backbone + 98M embeddings, https://huggingface.co/microsoft/deberta-v3-base",
        ),
    ),
    Shape(
        "mrm8488/electra-small-finetuned-squadv2",
        "electra",
        {
            "vocab_size": 30522,
            "embedding_size": 128,
            "hidden_size": 256,
            "num_hidden_layers": 12,
            "num_attention_heads": 4,
            "intermediate_size": 1024,
            "max_position_embeddings": 512,
            "type_vocab_size": 2,
        },
        "wordpiece",
        Card(
            69.71,
            73.44,
            "SQuAD 2.0 dev",
            14,
            "ELECTRA-Small, arXiv:2003.10555",
        ),
        lowercase=True,
    ),
]
# Two shapes that bake and measure in a few minutes.
QUICK = [BERT_TINY, "mrm8488/electra-small-finetuned-squadv2"]


# --- the models ---------------------------------------------------------------------------------


def question_answering_model(shape: Shape, *, meta: bool = False):
    """A transformers question-answering model of ``shape``, random weights seeded with 0; with
    ``meta``, on PyTorch's meta device (shapes without memory: for counting parameters)."""
    import torch
    from transformers import AutoConfig, AutoModelForQuestionAnswering

    config = AutoConfig.for_model(shape.model_type, **shape.config)
    torch.manual_seed(0)
    if meta:
        with torch.device("meta"):
            return AutoModelForQuestionAnswering.from_config(config)
    return AutoModelForQuestionAnswering.from_config(config).eval()


def parameter_count(model) -> int:
    """The number of parameters (each shared tensor once)."""
    return sum(parameter.numel() for parameter in model.parameters())


def train_tokenizer(shape: Shape, texts: list[str]):
    """A transformers fast tokenizer of ``shape``'s family (its normalizer, pre-tokenizer,
    special tokens and template, as the real model's), its vocabulary of TOKENIZER_VOCAB trained
    on ``texts`` with the tokenizers library: WordPiece (BERT family), byte-level BPE (RoBERTa),
    Unigram (XLM-R, DeBERTa-v3: SentencePiece's model)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from tokenizers.implementations import BertWordPieceTokenizer, ByteLevelBPETokenizer

    if shape.tokenizer == "wordpiece":
        import transformers

        trainer = BertWordPieceTokenizer(lowercase=shape.lowercase)
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        trainer.train_from_iterator(texts, vocab_size=TOKENIZER_VOCAB, special_tokens=special)
        # The family's own class: DistilBERT's feeds no token types, as the real one.
        family = {"distilbert": "DistilBertTokenizer", "electra": "ElectraTokenizer"}
        tokenizer_class = getattr(transformers, family.get(shape.model_type, "BertTokenizer"))
        return tokenizer_class(vocab=trainer.get_vocab(), do_lower_case=shape.lowercase)
    if shape.tokenizer == "byte-bpe":
        from transformers import RobertaTokenizer

        trainer = ByteLevelBPETokenizer()
        special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        trainer.train_from_iterator(texts, vocab_size=TOKENIZER_VOCAB, special_tokens=special)
        model = json.loads(trainer.to_str())["model"]
        merges = [
            tuple(pair) if isinstance(pair, list) else tuple(pair.split())
            for pair in model["merges"]
        ]
        return RobertaTokenizer(vocab=model["vocab"], merges=merges)
    # Unigram, with the special tokens where the real vocabularies have them.
    xlm = shape.model_type == "xlm-roberta"
    first = ["<s>", "<pad>", "</s>", "<unk>"] if xlm else ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    unknown = first[3]
    trainer = trainers.UnigramTrainer(
        vocab_size=TOKENIZER_VOCAB - 1, special_tokens=first, unk_token=unknown
    )
    tokenizer.train_from_iterator(texts, trainer)
    pieces = [tuple(piece) for piece in json.loads(tokenizer.to_str())["model"]["vocab"]]
    if xlm:
        from transformers import XLMRobertaTokenizer

        return XLMRobertaTokenizer(vocab=[*pieces, ("<mask>", 0.0)])
    from transformers import DebertaV2Tokenizer

    return DebertaV2Tokenizer(vocab=[*pieces, ("[MASK]", 0.0)], unk_id=3)


def build(shape: Shape, directory: Path, texts: list[str]) -> int:
    """``shape`` as a model folder in ``directory`` (weights, config, tokenizer), reused while
    the shape is unchanged. Returns the number of parameters."""
    stamp = json.dumps([shape.model_type, shape.config, shape.tokenizer, TOKENIZER_VOCAB])
    marker = directory / "shape.json"
    if marker.is_file() and json.loads(marker.read_text())["stamp"] == stamp:
        return json.loads(marker.read_text())["parameters"]
    log(f"building {shape.hub_id}'s shape")
    shutil.rmtree(directory, ignore_errors=True)
    model = question_answering_model(shape)
    model.save_pretrained(directory)
    train_tokenizer(shape, texts).save_pretrained(directory)
    parameters = parameter_count(model)
    marker.write_text(json.dumps({"stamp": stamp, "parameters": parameters}))
    return parameters


def context_tokens(source: Path, context: str) -> int:
    """How many tokens the model's tokenizer makes of ``context`` (more tokens, more windows)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.no_truncation()
    return len(tokenizer.encode(context, add_special_tokens=False).ids)


def bake_model_has(option: str) -> bool:
    """Whether `manage.py bake_model` takes ``option`` (e.g. --quantize)."""
    result = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), "bake_model", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    return option in result.stdout


def bake(source: Path, output: Path, *options: str) -> dict:
    """`manage.py bake_model --model source --output output [options]`, reused while the source
    and qasite's code (qa/) are unchanged: {"baked": True, "seconds"} or {"baked": False,
    "reason": bake_model's last line of error}. A failed bake's output is removed."""
    marker = output.parent / f"{output.name}.json"
    code = fingerprint(*sorted((ROOT / "qa").rglob("*.py")))
    stamp = (source / "shape.json").read_text() + " ".join(options) + code
    if marker.is_file() and json.loads(marker.read_text())["stamp"] == stamp:
        return json.loads(marker.read_text())["result"]
    log(f"baking {source.parent.name} {' '.join(options)}")
    shutil.rmtree(output, ignore_errors=True)
    command = [PYTHON, str(ROOT / "manage.py"), "bake_model", "--model", str(source)]
    started = time.perf_counter()
    baked = subprocess.run(
        [*command, "--output", str(output), *options],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if baked.returncode == 0:
        result = {"baked": True, "seconds": time.perf_counter() - started}
    else:
        lines = [line for line in baked.stderr.splitlines() if line.strip()] or ["(no message)"]
        result = {"baked": False, "reason": lines[-1].strip()[:400]}
        shutil.rmtree(output, ignore_errors=True)
        log(f"does not bake yet: {result['reason']}")
    marker.write_text(json.dumps({"stamp": stamp, "result": result}))
    return result


# --- the measurements ---------------------------------------------------------------------------


def served_files() -> list[str]:
    """The baked files the runtime tree's model/ holds: docker/runtime-tree.txt's "serve" lines,
    as docker/assemble.sh copies them."""
    lines = (ROOT / "docker" / "runtime-tree.txt").read_text().splitlines()
    return [line.split()[1] for line in lines if line.startswith("serve ")]


def footprint(baked: Path, tree_without_model_mb: float | None) -> dict:
    """model.onnx, the files the tree serves, and the runtime tree with them (MB, 10^6 bytes):
    the tree's size without a model plus the served files, which is what assemble.sh makes."""
    served = sum(
        (baked / name).stat().st_size for name in served_files() if (baked / name).is_file()
    )
    served /= 1e6
    row = {"onnx_mb": (baked / "model.onnx").stat().st_size / 1e6, "served_mb": served}
    if tree_without_model_mb is not None:
        row["tree_mb"] = tree_without_model_mb + served
        row["zip_fits"] = row["tree_mb"] < LAMBDA_LIMIT_MB
    return row


def agreement(workers: dict, questions: list[dict]) -> dict:
    """Share of ``questions`` whose best answer (text and offsets) is the same on
    ``workers["fp32"]`` and ``workers["int8"]``."""
    best = {
        name: [spans(workers[name].answer(q["question"], q["context"]))[0] for q in questions]
        for name in ("fp32", "int8")
    }
    same = sum(a == b for a, b in zip(best["fp32"], best["int8"], strict=True))
    return {
        "questions": len(questions),
        "identical": same,
        "identical_share": same / len(questions),
    }


REFERENCE = "bert-tiny (reference)"


def measure(
    shape: Shape,
    baked: dict,
    *,
    reference: Path | None,
    tree: dict,
    inputs: dict,
    questions: list[dict],
    plan: dict,
) -> dict:
    """Every figure of one shape's baked variants (``baked``: {"fp32": dir, "int8": dir}):
    footprint, cold start (fresh processes) and warm latency (one thread), each interleaved with
    the production model's shape (``reference``, a baked bert-tiny; None when measuring that one)
    and given as a ratio to it too, so that the machine's load weighs on both alike; and int8's
    agreement with fp32."""
    row = {variant: footprint(path, tree["without_model_mb"]) for variant, path in baked.items()}
    sides = baked | ({REFERENCE: reference} if reference else {})
    commands = {side: first_answer_command(path, tree["python"]) for side, path in sides.items()}
    cold = time_fresh_processes(commands, plan["cold"])
    workers = {side: Worker("qasite-engine", {"qasite": path}) for side, path in sides.items()}
    latency = interleaved(workers, inputs, plan["rounds"], plan["repeat"], label=shape.hub_id)
    base = REFERENCE if reference else "fp32"
    for variant in baked:
        figures = row[variant]
        figures["cold_start_s"] = cold[variant]["median_s"]
        figures["cold_start_ratio"] = cold[variant]["median_s"] / cold[base]["median_s"]
        figures["cold_peak_rss_mb"] = cold[variant]["peak_rss_mb"]
        for size in inputs:
            figures[f"{size} ms"] = latency[size][variant]["median_ms"]
            figures[f"{size} ratio"] = (
                latency[size][variant]["median_ms"] / (latency[size][base]["median_ms"])
            )
            figures[f"{size} requests"] = latency[size][variant]["n"]
    if "int8" in workers:
        row["int8"]["agreement"] = agreement(workers, questions)
    for worker in workers.values():
        worker.close()
    return row


def runtime_tree(first_baked: Path) -> dict:
    """The torch-free runtime tree (bench/run.py's, built by the Dockerfile's scripts for
    Python 3.12) and its size without a model; without a Python 3.12, none (cold starts then run
    in the dev virtualenv)."""
    python = ensure_runtime_tree(first_baked)
    if python is None:
        return {"python": None, "without_model_mb": None}
    return {"python": python, "without_model_mb": tree_size(TREE, exclude="model")["installed_mb"]}


# --- the report ---------------------------------------------------------------------------------


def cell(value, form: str = "{:.0f}") -> str:
    return "—" if value is None else form.format(value)


def markdown_table(report: dict) -> str:
    """The docs page's table: one row per shape and variant."""
    int8 = report["int8_supported"]
    lines = table_head(
        "model (hub id)",
        "parameters",
        "variant",
        "model.onnx MB",
        "runtime tree MB",
        "zip (≤ 262 MB)",
        "cold start s (× bert-tiny)",
        "paragraph ms (× bert-tiny)",
        "20,000 chars ms (× bert-tiny)",
        *(["same answer as fp32"] if int8 else []),
        "SQuAD EM / F1 (card)",
    )
    for row in report["models"]:
        card = row["card"]
        claimed = (
            f"{cell(card['exact_match'], '{:.1f}')} / {cell(card['f1'], '{:.1f}')} "
            f"([card]({row['url']})){'¹' if 'SQuAD 1.1' in card['dataset'] else ''}"
        )
        name = f"`{row['hub_id']}`"
        parameters = f"{row['parameters'] / 1e6:.1f} M"
        for variant in ("fp32", "int8"):
            if variant == "int8" and not int8:
                continue
            figures = row.get(variant)
            if figures is None or "reason" in figures:
                reason = (figures or {}).get("reason", "not measured").replace("|", "\\|")
                # The reason in the first of the measured columns, the others blank.
                blank = ["—"] * (5 + int8)
                lines.append(
                    f"| {name} | {parameters} | {variant} | "
                    + " | ".join([f"does not bake yet: {reason}", *blank])
                    + f" | {claimed} |"
                )
            else:
                fits = figures.get("zip_fits")
                zip_cell = "—" if fits is None else ("fits" if fits else "no: image")
                share = figures.get("agreement", {}).get("identical_share")
                agreement_cell = [cell(share and 100 * share, "{:.0f}%")] if int8 else []
                lines.append(
                    f"| {name} | {parameters} | {variant} | {figures['onnx_mb']:.0f} | "
                    f"{cell(figures.get('tree_mb'))} | {zip_cell} | "
                    f"{figures['cold_start_s']:.2f} (×{figures['cold_start_ratio']:.1f}) | "
                    f"{figures['SQuAD paragraph ms']:,.0f} "
                    f"(×{figures['SQuAD paragraph ratio']:.1f}) | "
                    f"{figures['20,000 chars ms']:,.0f} (×{figures['20,000 chars ratio']:.1f}) | "
                    + "".join(f"{c} | " for c in agreement_cell)
                    + f"{claimed} |"
                )
            name, parameters, claimed = "", "", ""
    setup = report["machine"]
    plan = report["runs"]
    where = (
        "the torch-free runtime tree on Python 3.12"
        if report["cold_start_from"] == "runtime tree"
        else "the dev virtualenv (no Python 3.12 here)"
    )
    lines += [
        "",
        f"Measured {setup['date']} by `.venv/bin/python bench/models.py` on {setup['cpu']} "
        f"({setup['cores']} cores shared with other work; load average "
        f"{report['load_average_start'][0]:.1f} at the start, {report['load_average_end'][0]:.1f} "
        f"at the end); onnxruntime {setup['onnxruntime']}, one thread. Cold starts from {where}, "
        f"medians of {plan['cold']} fresh processes; latencies medians of "
        f"{plan['rounds'] * plan['repeat']['SQuAD paragraph']} (paragraph) and "
        f"{plan['rounds'] * plan['repeat']['20,000 chars']} (20,000 characters) requests, "
        "the variants interleaved."
        + (
            " ¹ SQuAD 1.1 dev: this model is not a SQuAD 2.0 reader."
            if any("SQuAD 1.1" in row["card"]["dataset"] for row in report["models"])
            else ""
        ),
    ]
    return "\n".join(lines)


def write_docs(report: dict) -> None:
    """Put the table between the page's markers (the prose around it is written by hand)."""
    page = DOCS_PAGE.read_text(encoding="utf-8")
    before, rest = page.split(TABLE_START, 1)
    _, after = rest.split(TABLE_END, 1)
    table = markdown_table(report)
    DOCS_PAGE.write_text(f"{before}{TABLE_START}\n{table}\n{TABLE_END}{after}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"two shapes only: {QUICK}")
    parser.add_argument("--only", nargs="+", metavar="HUB_ID", help="these shapes only")
    parser.add_argument(
        "--cold", type=int, metavar="N", help="fresh processes per cold start (default: 3; 2 quick)"
    )
    args = parser.parse_args()
    if not SQUAD.is_file():
        sys.exit(f"needs the SQuAD sample beside the repo: {SQUAD}")
    chosen = args.only or (QUICK if args.quick else [shape.hub_id for shape in SHAPES])
    shapes = [shape for shape in SHAPES if shape.hub_id in chosen]
    questions = load_questions(SQUAD)
    texts = list(dict.fromkeys(q["context"] for q in questions)) + [
        q["question"] for q in questions
    ]
    all_inputs = latency_inputs(questions)
    inputs = {size: all_inputs[size] for size in SIZES}
    probes = questions[: 20 if args.quick else 60]
    # bake_model's options for the int8 variant (none without --quantize): with --force when it
    # has it, as random weights may fail its quality gate (their flat logits let quantization
    # flip more answers than a trained model's); the agreement column says by how much.
    int8 = None
    if bake_model_has("--quantize"):
        int8 = ("--quantize", "int8", *(["--force"] if bake_model_has("--force") else []))
    plan = runs(args.quick) | ({"cold": args.cold} if args.cold else {})
    report = {
        "mode": "quick" if args.quick else "full",
        "runs": plan,
        "machine": machine(),
        "load_average_start": os.getloadavg(),
        "int8_supported": int8 is not None,
        "int8_bake_options": int8,
        "models": [],
    }
    name = "models-quick" if args.quick or args.only else "models"
    RESULTS.mkdir(exist_ok=True)
    started = time.perf_counter()
    # Every shape is timed beside the production model's, baked first.
    reference = MODELS / slug(BERT_TINY) / "baked-fp32"
    build(next(s for s in SHAPES if s.hub_id == BERT_TINY), reference.parent / "source", texts)
    bake(reference.parent / "source", reference)
    tree = runtime_tree(reference)
    report["cold_start_from"] = "runtime tree" if tree["python"] else "dev virtualenv"
    report["tree_without_model_mb"] = tree["without_model_mb"]
    for shape in shapes:
        folder = MODELS / shape.slug
        parameters = build(shape, folder / "source", texts)
        row = {
            "hub_id": shape.hub_id,
            "url": shape.url,
            "model_type": shape.model_type,
            "config": shape.config,
            "parameters": parameters,
            "context_tokens": context_tokens(folder / "source", inputs["20,000 chars"][1]),
            "card": vars(shape.card),
        }
        variants = {"fp32": ()} | ({"int8": int8} if int8 else {})
        baked = {}
        for variant, options in variants.items():
            result = bake(folder / "source", folder / f"baked-{variant}", *options)
            row[f"bake_{variant}"] = result
            if result["baked"]:
                baked[variant] = folder / f"baked-{variant}"
            else:
                row[variant] = {"reason": result["reason"]}
        if baked:
            row |= measure(
                shape,
                baked,
                reference=None if shape.hub_id == BERT_TINY else reference,
                tree=tree,
                inputs=inputs,
                questions=probes,
                plan=plan,
            )
        report["models"].append(row)
        report["load_average_end"] = os.getloadavg()
        report["seconds"] = time.perf_counter() - started
        # After each shape, so that a run cut short keeps what it measured.
        (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    if name == "models":
        write_docs(report)
    print(markdown_table(report))
    log(f"done in {report['seconds']:.0f} s: bench/results/{name}.json")


if __name__ == "__main__":
    main()
