from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from qa.loading import ModelLoadError, load_answerer, resolve_model_dir, save_for_serving


class Command(BaseCommand):
    help = (
        "Download QA_MODEL (or --model) from the Hugging Face hub, or read a local directory, and "
        "write it to --output as safetensors with a fast tokenizer, ready to serve offline."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", required=True, help="Directory to write the model to.")
        parser.add_argument("--model", help="Hub id or directory (default: the QA_MODEL setting).")

    def handle(self, *args, output, model, **options):
        model = model or settings.QA_MODEL
        output = Path(output)
        try:
            save_for_serving(resolve_model_dir(model), output)
            [answer], [fast_answer] = (
                load_answerer(str(output), threads=1, fast=fast).answer(
                    "What is my name?", "I'm Kit-Ho Mak. I come from Hong Kong."
                )
                for fast in (False, True)
            )
        except ModelLoadError as error:
            raise CommandError(f"Cannot fetch {model}: {error}") from error
        files = ", ".join(
            f"{path.name} ({path.stat().st_size / 1e6:.1f} MB)" for path in sorted(output.iterdir())
        )
        self.stdout.write(f"Wrote {model} to {output}: {files}")
        self.stdout.write(
            f'Check: "What is my name?" -> {answer.answer!r} ({answer.score:.3f}); '
            f"fast mode: {fast_answer.answer!r} ({fast_answer.score:.3f})"
        )
