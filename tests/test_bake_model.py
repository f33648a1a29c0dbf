"""`python manage.py bake_model`: fetch_model under the README's verb."""

import io

from django.core.management import call_command

from qa.examples import KIT_HO


def test_bake_model_bakes_and_checks_as_fetch_model_does(legacy_model_dir, tmp_path):
    out = io.StringIO()
    call_command(
        "bake_model", "--model", str(legacy_model_dir), "--output", str(tmp_path), stdout=out
    )
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model.torchscript.pt").is_file()
    assert f'Check: "{KIT_HO["question"]}" -> onnx: ' in out.getvalue()
