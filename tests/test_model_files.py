"""Model files: hub ids and directories, and the JSON files of a model."""

import pytest

from qa.errors import ModelLoadError
from qa.model_files import model_name, read_config, read_json, resolve_model_dir


def test_a_directory_is_itself(modern_model_dir):
    assert resolve_model_dir(str(modern_model_dir)) == modern_model_dir


@pytest.mark.parametrize("model", ["/no/such/dir", "./missing", "~/missing", "a/b/c"])
def test_a_missing_directory_is_never_taken_for_a_hub_id(model):
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_model_dir(model)


def test_hub_id_offline_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelLoadError, match="could not be downloaded"):
        resolve_model_dir("nobody/no-such-model")


@pytest.mark.parametrize(
    "text, reason",
    [('{"a": 1,', "x.json is not valid JSON."), ("[1, 2]", "x.json is not a JSON object.")],
)
def test_json_files_are_objects_or_refused_by_name(tmp_path, text, reason):
    (tmp_path / "x.json").write_text(text)
    with pytest.raises(ModelLoadError) as raised:
        read_json(tmp_path / "x.json")
    assert raised.value.reason == reason


def test_a_missing_json_file_is_empty_but_a_model_needs_its_config(tmp_path):
    assert read_json(tmp_path / "absent.json") == {}
    with pytest.raises(ModelLoadError, match="no config.json"):
        read_config(tmp_path)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ('{"model": "someone/model", "revision": "abc"}', "someone/model"),
        ('{"model": "someone/model", "revision": null}', "someone/model"),
        (None, "qa-model"),  # not baked: the directory's name, never its path
        ("{not json", "qa-model"),
        ("[1, 2]", "qa-model"),
        ('{"model": ""}', "qa-model"),
        ('{"model": 3}', "qa-model"),
        ('{"revision": "abc"}', "qa-model"),
    ],
)
def test_a_directory_is_named_by_its_recorded_source_or_its_own_name(tmp_path, record, expected):
    directory = tmp_path / "qa-model"
    directory.mkdir()
    if record is not None:
        (directory / "source.json").write_text(record)
    assert model_name(str(directory)) == expected


def test_a_baked_directory_records_its_source(baked_model_dir):
    assert model_name(str(baked_model_dir)) == "tiny/legacy"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("someone/model", "someone/model"),
        ("bert-base-uncased", "bert-base-uncased"),
        ("/no/such/dir", "dir"),
        ("./missing", "missing"),
        ("a/b/c", "c"),
    ],
)
def test_a_hub_id_is_named_as_it_is_and_a_missing_directory_by_its_name(model, expected):
    assert model_name(model) == expected
