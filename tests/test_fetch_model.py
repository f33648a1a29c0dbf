"""`python manage.py fetch_model`: bake_model's former name, kept with a warning."""

import io

from django.core.management import call_command

from qa.reader.examples import KIT_HO


def test_fetch_model_bakes_as_bake_model_does_and_says_it_is_deprecated(legacy_model_dir, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "fetch_model",
        "--model",
        str(legacy_model_dir),
        "--output",
        str(tmp_path),
        stdout=out,
        stderr=err,
    )
    assert "fetch_model is deprecated: use `manage.py bake_model`" in err.getvalue()
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "source.json").is_file()
    assert f'Check: "{KIT_HO["question"]}" -> onnx: ' in out.getvalue()
