import json
import sys

from django.core.management.base import BaseCommand, CommandError

from qa import services
from qa.serializers import AnswerRequestSerializer


class Command(BaseCommand):
    help = (
        "Answer a question from a context and print the answer as JSON (the API's shape). "
        "The context comes from --context, --context-file, or standard input."
    )

    def add_arguments(self, parser):
        parser.add_argument("question")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--context", help="The context text.")
        source.add_argument("--context-file", help="A UTF-8 file holding the context ('-': stdin).")
        parser.add_argument("--top-k", type=int, default=1)
        parser.add_argument(
            "--allow-no-answer",
            action="store_true",
            help="The context may not contain the answer (handle_impossible_answer).",
        )

    def handle(self, *args, question, context, context_file, top_k, allow_no_answer, **options):
        if context is None:
            context = self._read_context(context_file)
        serializer = AnswerRequestSerializer(
            data={
                "question": question,
                "context": context,
                "top_k": top_k,
                "handle_impossible_answer": allow_no_answer,
            }
        )
        if not serializer.is_valid():
            raise CommandError(json.dumps(serializer.errors))
        try:
            [result] = services.answer_questions(requests=[serializer.validated_data])
        except services.InvalidQuestion as error:
            raise CommandError(f"{error.field}: {error}") from error
        except services.ModelUnavailable as error:
            raise CommandError(f"The model is not available: {error}") from error
        self.stdout.write(json.dumps(result, ensure_ascii=False))

    def _read_context(self, context_file: str | None) -> str:
        if context_file in (None, "-"):
            if context_file is None and sys.stdin.isatty():
                raise CommandError("Give the context with --context, --context-file or stdin.")
            return sys.stdin.read()
        try:
            with open(context_file, encoding="utf-8") as file:
                return file.read()
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {context_file}: {error}") from error
