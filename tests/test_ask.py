"""`python manage.py ask`: the API's JSON on standard output."""

import io
import json
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

KIT_HO_CONTEXT = "I'm Kit-Ho Mak. I come from Hong Kong."


def ask(*args) -> dict:
    out = io.StringIO()
    call_command("ask", *args, stdout=out)
    return json.loads(out.getvalue())


def test_ask_prints_the_api_shape(tiny_model_settings):
    result = ask("What is my name?", "--context", KIT_HO_CONTEXT, "--top-k", "2")
    assert set(result) == {"answer", "score", "start", "end", "no_answer", "answers"}
    assert KIT_HO_CONTEXT[result["start"] : result["end"]] == result["answer"]
    assert len(result["answers"]) <= 2


def test_ask_reads_the_context_from_a_file(tiny_model_settings, tmp_path):
    path = tmp_path / "context.txt"
    path.write_text(KIT_HO_CONTEXT * 50, encoding="utf-8")
    result = ask("What is my name?", "--context-file", str(path))
    assert (KIT_HO_CONTEXT * 50)[result["start"] : result["end"]] == result["answer"]


def test_ask_reads_the_context_from_stdin(tiny_model_settings, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(KIT_HO_CONTEXT))
    result = ask("What is my name?", "--allow-no-answer")
    assert KIT_HO_CONTEXT[result["start"] : result["end"]] == result["answer"]


def test_ask_rejects_bad_input_clearly(tiny_model_settings):
    with pytest.raises(CommandError, match="This field may not be blank"):
        ask("   ", "--context", KIT_HO_CONTEXT)
    with pytest.raises(CommandError, match="Cannot read"):
        ask("Who?", "--context-file", "/nonexistent/file.txt")


def test_ask_reports_an_unavailable_model(settings, tmp_path):
    settings.QA_MODEL = str(tmp_path / "missing")
    with pytest.raises(CommandError, match="model is not available"):
        ask("Who?", "--context", KIT_HO_CONTEXT)


def test_ask_from_the_command_line_with_the_real_model(real_model_dir, settings):
    result = subprocess.run(
        [sys.executable, "manage.py", "ask", "What is my name?", "--context", KIT_HO_CONTEXT],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        env={"QA_MODEL": str(real_model_dir), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["answer"] == "Kit-Ho Mak"
