"""``manage.py bake_model``: a hub model or a folder written ready to serve offline (the
ONNX graph and its optimized form, the tokenizer, the traces, the bake record), each engine
checked (qa/model/baking/)."""

import signal
import threading
from contextlib import contextmanager
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


def sentence(error: Exception) -> str:
    """``error``'s message ending as a sentence does, for the next sentence to follow it."""
    message = str(error).rstrip()
    return message if message.endswith((".", "!", "?")) else f"{message}."


# The signals that stop a bake from a terminal or a supervisor (Ctrl-C, a closed terminal,
# `kill`, `docker stop`, a CI job's timeout): each becomes an exception in the bake, so that its
# scratch directory beside --output is removed (qa.model.baking.bake) and the command ends with
# one line, not a traceback. SIGKILL cannot be caught.
STOPPING = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)


class Stopped(BaseException):
    """The process received one of STOPPING; ``args[0]`` is its number. A BaseException, as
    KeyboardInterrupt is, so that no ``except Exception`` of the bake takes it for a failure."""


def _stop(signum, frame):
    raise Stopped(signum)


@contextmanager
def stopping_raises_stopped():
    """Within the block, the STOPPING signals raise Stopped; their handlers are restored after.
    Outside the main thread, where Python runs signal handlers, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _stop) for number in STOPPING}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class Command(BaseCommand):
    help = (
        "Download QA_MODEL (or --model) from the Hugging Face hub, or read a local directory, and "
        "write it to --output ready to serve offline: an ONNX graph checked against the model, "
        "that graph as ONNX Runtime optimizes it (what the onnx engine serves), safetensors "
        "weights, a fast tokenizer, TorchScript traces for the torch engine, and "
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
            with stopping_raises_stopped():
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
                f"Cannot bake {model}: {sentence(error)} Nothing was written to {output}."
            ) from error
        except Stopped as stopped:
            [number] = stopped.args
            raise CommandError(
                f"Stopped baking {model} ({signal.Signals(number).name}). Nothing was written to "
                f"{output}.",
                returncode=128 + number,  # as a shell reports a process a signal ended
            ) from None
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
