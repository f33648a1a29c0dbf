"""`python manage.py ask` and `make ask`: answers as text on a terminal or as the API's JSON,
and an error printed once."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from qa import services
from qa.reader.examples import KIT_HO
from tests.properties import (
    LINE_ENDING_CASES,
    answer_the_pattern,
    assert_consistent_answers,
    line_ended_texts,
)

KIT_HO_CONTEXT = KIT_HO["context"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def ask_output(*args, stdout=None) -> str:
    out = stdout or io.StringIO()
    call_command("ask", *args, stdout=out)
    return out.getvalue()


def ask(*args) -> dict:
    return json.loads(ask_output(*args))


MANAGE_ASK = [sys.executable, "manage.py", "ask"]
# The README's command; -o: the virtualenv running these tests is the one to use.
MAKE_ASK = ["make", "--no-print-directory", "-o", ".venv/installed", "ask"]


def run(settings, model, command: list[str], stdin: str | None = None):
    """A command as a shell runs it, in a process of its own (its own logging, its own stderr)."""
    return subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        env={"QA_MODEL": str(model), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )


def test_ask_prints_the_api_shape(tiny_model_settings):
    result = ask("What is my name?", "--context", KIT_HO_CONTEXT, "--top-k", "2")
    assert set(result) == {"answer", "score", "start", "end", "no_answer", "windows", "answers"}
    assert KIT_HO_CONTEXT[result["start"] : result["end"]] == result["answer"]
    assert len(result["answers"]) == 2  # the context has far more than two spans


@pytest.mark.parametrize(
    ("stdout", "options", "expected"),
    [
        ("piped", [], "json"),
        ("terminal", [], "text"),
        ("piped", ["--format", "text"], "text"),
        ("terminal", ["--format", "json"], "json"),
    ],
)
def test_ask_prints_text_on_a_terminal_and_json_otherwise(
    tiny_model_settings, stdout, options, expected
):
    out = Terminal() if stdout == "terminal" else io.StringIO()
    printed = ask_output("What is my name?", "--context", KIT_HO_CONTEXT, *options, stdout=out)
    if expected == "json":
        assert json.loads(printed)["answers"]
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(printed)
        assert " (score 0." in printed


def test_ask_text_is_one_line_per_answer(tiny_model_settings):
    """Each candidate: its text on one line, score and offsets; numbered when there are several;
    the no-answer said in words."""
    context = "Kit-Ho\nMak " * 3 + KIT_HO_CONTEXT
    answers = ask("Who?", "--context", context, "--top-k", "5", "--allow-no-answer")["answers"]
    printed = ask_output(
        "Who?", "--context", context, "--top-k", "5", "--allow-no-answer", "--format", "text"
    )
    lines = printed.splitlines()
    assert len(lines) == len(answers) > 1
    for rank, (line, answer) in enumerate(zip(lines, answers, strict=True), start=1):
        if answer["no_answer"]:
            assert line == f"{rank}. No answer in this context (score {answer['score']:.3f})"
        else:
            text = " ".join(answer["answer"].split())
            assert line == (
                f"{rank}. {text} (score {answer['score']:.3f}, "
                f"characters {answer['start']}-{answer['end']})"
            )
    [single] = ask_output("Who?", "--context", KIT_HO_CONTEXT, "--format", "text").splitlines()
    assert not single.startswith("1. ")


def test_ask_reads_the_context_from_a_file(tiny_model_settings, tmp_path):
    path = tmp_path / "context.txt"
    path.write_text(KIT_HO_CONTEXT * 50, encoding="utf-8")
    result = ask("What is my name?", "--context-file", str(path))
    assert (KIT_HO_CONTEXT * 50)[result["start"] : result["end"]] == result["answer"]


def stdin_of(data: bytes) -> io.TextIOWrapper:
    """Standard input holding ``data``, as a text stream that would translate line endings and
    decode in Latin-1 if read as text (as a Windows console, or a Latin-1 locale, does)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="latin-1", newline=None)


def test_ask_reads_the_context_from_stdin(tiny_model_settings, monkeypatch):
    monkeypatch.setattr(sys, "stdin", stdin_of(KIT_HO_CONTEXT.encode()))
    result = ask("What is my name?", "--allow-no-answer")
    assert KIT_HO_CONTEXT[result["start"] : result["end"]] == result["answer"]


@pytest.mark.parametrize("source", ["--context", "--context-file", "stdin", "--context-file -"])
@pytest.mark.parametrize("case", list(LINE_ENDING_CASES))
def test_every_source_gives_the_context_as_it_is(monkeypatch, tmp_path, source, case):
    """Offsets index the text as given, CR, CRLF, blank ends and all: a file is read without
    newline translation, stdin as its bytes (in UTF-8, whatever the locale), an argument as it
    is. ("é" first: one character, two bytes.)"""
    context, expected = LINE_ENDING_CASES[case]
    context = "é " + context
    calls = []
    monkeypatch.setattr(services, "answer_questions", answer_the_pattern(calls))
    monkeypatch.setattr(sys, "stdin", stdin_of(context.encode()))
    path = tmp_path / "context.txt"
    path.write_bytes(context.encode())
    args = {
        "--context": ["--context", context],
        "--context-file": ["--context-file", str(path)],
        "stdin": [],
        "--context-file -": ["--context-file", "-"],
    }[source]
    result = ask("What is my name?", *args)
    assert calls[0]["context"] == context
    assert context[result["start"] : result["end"]] == result["answer"] == expected


@hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(context=line_ended_texts(), from_file=st.booleans())
def test_any_line_endings_from_a_file_or_stdin_get_offsets_into_the_text(
    tiny_model_settings, context, from_file
):
    """The real engine: whatever mix of LF, CRLF and CR, and blanks at the ends, the answers index
    the text as it was in the file or on stdin."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "context.txt")
        path.write_bytes(context.encode())
        with mock.patch.object(sys, "stdin", stdin_of(context.encode())):
            args = ["--context-file", str(path)] if from_file else []
            result = ask("What is my name?", *args, "--top-k", "3")
    assert_consistent_answers(context, result["answers"], 3)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("--context", "Cannot read --context: it is not UTF-8 text (byte 0xe9 at offset 3)."),
        ("--context-file", "it is not UTF-8 text (byte 0xe9 at offset 3)."),
        ("stdin", "Cannot read standard input: it is not UTF-8 text (byte 0xe9 at offset 3)."),
        ("question", "Cannot read the question: it is not UTF-8 text (byte 0xe9 at offset 3)."),
    ],
)
def test_text_that_is_not_utf8_is_refused_saying_where(monkeypatch, tmp_path, source, message):
    """Latin-1 bytes, from any source: a message that names the source and the byte, not a
    complaint about "surrogate characters" (how Python keeps undecodable argument bytes)."""
    latin1 = "café Kit-Ho Mak".encode("latin-1")
    path = tmp_path / "latin1.txt"
    path.write_bytes(latin1)
    monkeypatch.setattr(sys, "stdin", stdin_of(latin1))
    as_argument = os.fsdecode(latin1)  # as Python hands such bytes in sys.argv
    question, args = "Who?", []
    if source == "question":
        question, args = as_argument, ["--context", KIT_HO_CONTEXT]
    elif source == "--context":
        args = ["--context", as_argument]
    elif source == "--context-file":
        args = ["--context-file", str(path)]
    with pytest.raises(CommandError, match=re.escape(message)):
        ask(question, *args)


def test_the_issues_crlf_file_is_answered_at_its_own_offsets(settings, real_model_dir, tmp_path):
    """The issue's example, as a shell runs it with the real model: the file, stdin and the
    argument all give 27-37, where the file holds "Kit-Ho Mak" (reading the file in text mode
    gave 25-35: "m Kit-Ho M")."""
    context = "Line one.\r\nLine two.\r\nI am Kit-Ho Mak.\r\nI come from Hong Kong.\r\n"
    path = tmp_path / "f.txt"
    path.write_bytes(context.encode())
    question = [*MANAGE_ASK, "What is my name?", "--format", "json"]
    sources = [(["--context-file", str(path)], None), ([], context), (["--context", context], None)]
    for args, stdin in sources:
        result = run(settings, real_model_dir, question + args, stdin=stdin)
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        assert (answer["answer"], answer["start"], answer["end"]) == ("Kit-Ho Mak", 27, 37)
        assert path.read_bytes().decode()[27:37] == "Kit-Ho Mak"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["   ", "--context", KIT_HO_CONTEXT], "question: This field may not be blank."),
        (["Who?", "--context-file", "/nonexistent/file.txt"], "Cannot read /nonexistent/file.txt"),
        (
            ["Who?", "--context", KIT_HO_CONTEXT, "--top-k", "21"],
            "top_k: Ensure this value is less than or equal to 20.",
        ),
        (["Who?", "--context", "\u200b"], "context: The context contains no text"),
    ],
)
def test_ask_rejects_bad_input_clearly(tiny_model_settings, args, message):
    with pytest.raises(CommandError, match=message.replace("?", r"\?").replace(".", r"\.")):
        ask(*args)


def test_ask_reports_an_unavailable_model(settings, tmp_path):
    settings.QA_MODEL = str(tmp_path / "missing")
    with pytest.raises(CommandError, match="model is not available"):
        ask("Who?", "--context", KIT_HO_CONTEXT)


def test_ask_prints_an_unavailable_model_once(settings, tmp_path):
    """The loader's log line said it before the command's error did: one message, on stderr."""
    finished = run(settings, tmp_path / "missing", [*MANAGE_ASK, "Who?", "--context", "Kit"])
    assert finished.returncode == 1
    assert finished.stdout == ""
    assert finished.stderr == (
        "CommandError: The model is not available: The model directory does not exist.\n"
    )


def test_ask_prints_only_the_answer(settings, modern_model_dir):
    """No notice from transformers (loss_type) and no log of the load on stderr, unless -v 2."""
    finished = run(settings, modern_model_dir, [*MANAGE_ASK, "Who?", "--context", KIT_HO_CONTEXT])
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    assert json.loads(finished.stdout)["answers"]
    verbose = run(
        settings, modern_model_dir, [*MANAGE_ASK, "Who?", "--context", KIT_HO_CONTEXT, "-v", "2"]
    )
    assert "QA model loaded in" in verbose.stderr and "loss_type" not in verbose.stderr


def test_ask_from_the_command_line_with_the_real_model(real_model_dir, settings):
    finished = run(
        settings, real_model_dir, [*MANAGE_ASK, "What is my name?", "--context", KIT_HO_CONTEXT]
    )
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["answer"] == "Kit-Ho Mak"


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_ask_passes_the_texts_verbatim(settings, modern_model_dir):
    """`make ask` (the README's command) with quotes, a "$" and backquotes in the texts: the
    offsets index the context exactly as typed. The context comes from standard input too."""
    context = 'It\'s "$5" for `Kit-Ho` $(Mak) $HOME'
    typed = [*MAKE_ASK, "QUESTION=What's $5?", f"CONTEXT={context}", "ASK=--top-k 3"]
    from_stdin = [*MAKE_ASK, "QUESTION=Who?"]
    for finished in [
        run(settings, modern_model_dir, typed),
        run(settings, modern_model_dir, from_stdin, stdin=context),
    ]:
        assert finished.returncode == 0, finished.stderr
        for answer in json.loads(finished.stdout)["answers"]:
            assert 0 <= answer["start"] <= answer["end"] <= len(context)
            assert context[answer["start"] : answer["end"]] == answer["answer"]


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
@pytest.mark.parametrize("name", ["o'brien's model", "$HOME model", "$(shell false) `id` \\"])
def test_make_ask_hands_the_model_path_over_verbatim(settings, modern_model_dir, tmp_path, name):
    """QA_MODEL reaches the settings as typed, whatever the shell or make would make of it: the
    Makefile quotes the model as it quotes the texts (a quote broke the command; a "$" was
    expanded, so another directory was asked for)."""
    model = tmp_path / name
    shutil.copytree(modern_model_dir, model)
    finished = run(settings, model, [*MAKE_ASK, "QUESTION=Who?", f"CONTEXT={KIT_HO_CONTEXT}"])
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["answers"]


ASK_USAGE = 'usage: make ask QUESTION="..." [CONTEXT="..."] [ASK="--top-k 3 --allow-no-answer"]\n'


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
@pytest.mark.parametrize(
    ("variables", "stdin", "command"),
    [
        # No question: make's usage line, never manage.py's field errors.
        ([], "Kit", None),
        (["QUESTION="], "Kit", None),
        (["CONTEXT=Kit"], None, None),
        (["QUESTION=   ", "CONTEXT=Kit"], None, None),
        # The command's own errors (exit 1) and usage errors (exit 2), as it prints them.
        (["QUESTION=Who?", "CONTEXT= "], None, ["Who?", "--context", " "]),
        (["QUESTION=Who?"], "", ["Who?"]),
        (
            ["QUESTION=Who?", "CONTEXT=Kit", "ASK=--top-k 21"],
            None,
            ["Who?", "--context", "Kit", "--top-k", "21"],
        ),
        (
            ["QUESTION=Who?", "CONTEXT=Kit", "ASK=--top-k x"],
            None,
            ["Who?", "--context", "Kit", "--top-k", "x"],
        ),
    ],
)
def test_make_ask_fails_as_the_command_does_with_makes_own_status(
    settings, tmp_path, variables, stdin, command
):
    """`make ask` prints the command's error (or, without QUESTION, its usage line) and exits 2,
    as make does whenever a command fails, after one line naming the command's own status (1
    for an error, 2 for a usage error), which `manage.py ask` exits with. No model is loaded."""
    model = tmp_path / "missing"
    through_make = run(settings, model, [*MAKE_ASK, *variables], stdin=stdin)
    assert through_make.returncode == 2 and through_make.stdout == ""
    printed, makes_line = through_make.stderr.rsplit("make: *** ", 1)
    if command is None:
        assert printed == ASK_USAGE
        assert makes_line.endswith("ask] Error 2\n")
        return
    direct = run(settings, model, [*MANAGE_ASK, *command], stdin=stdin)
    assert direct.returncode in (1, 2)
    assert printed == direct.stderr
    assert makes_line.endswith(f"ask] Error {direct.returncode}\n")
