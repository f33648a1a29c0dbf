"""``manage.py ask``: answer a question about a context from the shell (help: --help)."""

import json
import logging
import os
import sys
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError

from qa import services
from qa.reader.errors import InvalidQuestion, ModelUnavailable
from qa.serializers import AnswerRequestSerializer


class Command(BaseCommand):
    help = (
        "Answer a question about a context with the configured model (QA_MODEL). The context "
        "comes from --context, --context-file, or standard input. Prints one line per answer on "
        "a terminal, the API's JSON otherwise (or as --format says)."
    )

    def add_arguments(self, parser):
        parser.add_argument("question")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--context", help="The context text.")
        source.add_argument(
            "--context-file",
            help="A UTF-8 file holding the context ('-': stdin), read as it is: answers' offsets "
            "index its characters, line endings (CRLF, CR) and all.",
        )
        parser.add_argument("--top-k", type=int, default=1)
        parser.add_argument(
            "--allow-no-answer",
            action="store_true",
            help="The context may not contain the answer (handle_impossible_answer).",
        )
        parser.add_argument(
            "--format",
            choices=["text", "json"],
            help="text: one line per answer (the default on a terminal); json: the API's response "
            "body on one line (the default when the output is piped or redirected).",
        )

    def handle(self, *args, question, context, context_file, top_k, allow_no_answer, **options):
        question = argument_text(question, "the question")
        if context is None:
            context = self._read_context(context_file)
        else:
            context = argument_text(context, "--context")
        serializer = AnswerRequestSerializer(
            data={
                "question": question,
                "context": context,
                "top_k": top_k,
                "handle_impossible_answer": allow_no_answer,
            }
        )
        if not serializer.is_valid():
            errors = serializer.errors.items()
            raise CommandError(" ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors))
        try:
            with loading_logs(shown=options["verbosity"] > 1):
                [result] = services.answer_questions(questions=[serializer.validated_data])
        except InvalidQuestion as error:
            raise CommandError(f"{error.field}: {error}") from error
        except ModelUnavailable as error:
            raise CommandError(f"The model is not available: {error}") from error
        output_format = options["format"] or ("text" if self.stdout.isatty() else "json")
        if output_format == "json":
            self.stdout.write(json.dumps(result, ensure_ascii=False))
        else:
            self.stdout.write(as_text(result["answers"]))

    def _read_context(self, context_file: str | None) -> str:
        """The context from a file or stdin, decoded from their bytes as UTF-8 with nothing
        translated: Python's text mode turns CRLF and CR into LF (files) and decodes stdin in the
        locale's encoding, and the answers' offsets would index a text the user never gave."""
        if context_file in (None, "-"):
            if context_file is None and sys.stdin.isatty():
                raise CommandError("Give the context with --context, --context-file or stdin.")
            return utf8_text(sys.stdin.buffer.read(), "standard input")
        try:
            with open(context_file, "rb") as file:
                return utf8_text(file.read(), context_file)
        except OSError as error:
            raise CommandError(f"Cannot read {context_file}: {error}") from error


def utf8_text(data: bytes, source: str) -> str:
    """``data`` decoded as UTF-8, character for character (a byte order mark is kept: offsets
    count it, as Python's own UTF-8 reading does). Raises CommandError naming ``source`` and the
    first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CommandError(
            f"Cannot read {source}: it is not UTF-8 text (byte 0x{data[error.start]:02x} at "
            f"offset {error.start})."
        ) from error


def argument_text(value: str, name: str) -> str:
    """A command-line argument as the text of its bytes. Python decodes arguments with the
    locale's encoding, keeping bytes it cannot decode as lone surrogates; those are refused by
    name, as UTF-8 that does not decode."""
    return utf8_text(os.fsencode(value), name)


@contextmanager
def loading_logs(*, shown: bool):
    """The model loader logs its progress and failures for the operators of a server; on the
    command line the answer, or the one error message, says it all, unless -v 2 asks for more."""
    logger = logging.getLogger("qa")
    level = logger.level
    if not shown:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def as_text(answers: list[dict]) -> str:
    """One line per answer, best first: its text (on one line), score and character offsets."""
    lines = []
    for rank, answer in enumerate(answers, start=1):
        if answer["no_answer"]:
            line = f"No answer in this context (score {answer['score']:.3f})"
        else:
            text = " ".join(answer["answer"].split())
            where = f"characters {answer['start']}-{answer['end']}"
            line = f"{text} (score {answer['score']:.3f}, {where})"
        lines.append(f"{rank}. {line}" if len(answers) > 1 else line)
    return "\n".join(lines)
