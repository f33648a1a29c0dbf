from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from qa.model.baking.bake import BakeError, bake
from qa.model.files import QUANTIZATIONS, model_name, resolve_model_dir
from qa.reader.errors import ModelLoadError
from qa.reader.examples import KIT_HO


def pinned_revision(model: str) -> str | None:
    """The hub revision settings pin for ``model``: QA_MODEL_REVISION for QA_MODEL, the
    production model's commit for it however it is named (a --model beside another QA_MODEL);
    None (the hub's default branch) for any other."""
    if model == settings.QA_MODEL:
        return settings.QA_MODEL_REVISION
    return settings.PRODUCTION_MODEL_REVISION if model == settings.PRODUCTION_MODEL else None


class Command(BaseCommand):
    help = (
        "Download QA_MODEL (or --model) from the Hugging Face hub, or read a local directory, and "
        "write it to --output ready to serve offline: an ONNX graph checked against the model, "
        "safetensors weights, a fast tokenizer, TorchScript traces for the torch engine, and "
        "the model's source. All or nothing: --output is replaced only when every check passed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", required=True, help="Directory to write the model to.")
        parser.add_argument("--model", help="Hub id or directory (default: the QA_MODEL setting).")
        parser.add_argument(
            "--revision",
            help="The hub revision to download (a commit hash, so a rebuild bakes the same "
            "weights; default: QA_MODEL_REVISION for QA_MODEL, the pinned commit for the "
            "production model; otherwise the hub's main branch as it is now).",
        )
        parser.add_argument(
            "--quantize",
            choices=QUANTIZATIONS,
            help="Serve the ONNX graph dynamically quantized (int8: about a quarter of the size, "
            "faster on long contexts, answers that may differ from float32's): kept only if its "
            "answers agree with the float32 graph's on the probes "
            "(qa/model/baking/quality_probes.json) within the quality gate's bounds "
            "(default: float32).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="With --quantize: keep the quantized graph even below the quality gate.",
        )

    def handle(self, *args, output, model, revision, quantize, force, **options):
        if force and not quantize:
            raise CommandError("--force applies to --quantize only.")
        model = model or settings.QA_MODEL
        if not revision:
            revision = pinned_revision(model)
        output = Path(output)
        try:
            answers, gate = bake(
                resolve_model_dir(model, revision),
                output,
                name=model_name(model),
                revision=revision,
                quantize=quantize,
                force=force,
            )
        except (ModelLoadError, BakeError) as error:
            raise CommandError(
                f"Cannot bake {model}: {error} Nothing was written to {output}."
            ) from error
        except OSError as error:  # the output's parent cannot be written, the disk is full...
            raise CommandError(
                f"Cannot bake {model}: writing beside {output} failed ({error}). Choose an "
                "--output in a directory you can write, with room for the model."
            ) from error
        files = ", ".join(
            f"{path.name} ({path.stat().st_size / 1e6:.1f} MB)" for path in sorted(output.iterdir())
        )
        self.stdout.write(f"Wrote {model} to {output}: {files}")
        if gate:
            verdict = "passed" if gate.passes else "FAILED, kept with --force"
            self.stdout.write(f"Quality gate ({quantize} against float32) {verdict}: {gate}")
        self.stdout.write(
            f'Check: "{KIT_HO["question"]}" -> '
            + "; ".join(f"{label}: {a.answer!r} ({a.score:.3f})" for label, a in answers.items())
        )
