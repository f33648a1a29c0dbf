"""Model files: hub ids and directories, and the JSON files of a model."""

import errno
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qa.model.files import (
    FINGERPRINT_BLOCK_BYTES,
    MAX_NAME,
    QUANTIZATIONS,
    data_fingerprint,
    model_name,
    model_quantization,
    read_config,
    read_json,
    resolve_model_dir,
)
from qa.reader.errors import ModelLoadError


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
    [
        ('{"a": 1,', "x.json is not valid JSON."),
        ("[1, 2]", "x.json is not a JSON object."),
        ('{"a": ' + "[" * 100_000, "x.json is not valid JSON."),  # deeper than recursion allows
        (b"\xff\xfe{}", "x.json is not valid JSON."),  # not UTF-8
    ],
)
def test_json_files_are_objects_or_refused_by_name(tmp_path, text, reason):
    if isinstance(text, bytes):
        (tmp_path / "x.json").write_bytes(text)
    else:
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
        # Records no bake writes: each names the directory, or is sent as text.
        ("[" * 100_000, "qa-model"),
        (b'{"model": "\xff"}', "qa-model"),
        ('{"model": "' + "a" * (MAX_NAME + 1) + '"}', "qa-model"),
        ('{"model": "' + "a" * MAX_NAME + '"}', "a" * MAX_NAME),
        ('{"model": "a\\ud800b\\u0000"}', "a?b\0"),
        (Path, "qa-model"),  # a directory named source.json
    ],
)
def test_a_directory_is_named_by_its_recorded_source_or_its_own_name(tmp_path, record, expected):
    directory = tmp_path / "qa-model"
    directory.mkdir()
    if record is Path:
        (directory / "source.json").mkdir()
    elif isinstance(record, bytes):
        (directory / "source.json").write_bytes(record)
    elif record is not None:
        (directory / "source.json").write_text(record)
    assert model_name(str(directory)) == expected


# Any characters, lone surrogates (which JSON's \\ud800 escapes give) often: a list joined, as
# st.text leaves surrogates out.
NAMES = st.lists(st.characters(exclude_categories=()) | st.characters(categories=["Cs"])).map(
    "".join
)


@given(st.binary() | st.builds(json.dumps, st.fixed_dictionaries({"model": NAMES})))
def test_any_record_gives_a_name_health_can_send(record):
    """Whatever source.json holds, the name is text that encodes (health's JSON), of at most
    MAX_NAME characters (a record's) or the directory's name; the quantization is one bake_model
    makes, or None."""
    with tempfile.TemporaryDirectory() as parent:
        directory = Path(parent, "qa-model")
        directory.mkdir()
        (directory / "source.json").write_bytes(
            record if isinstance(record, bytes) else record.encode("utf-8", "surrogatepass")
        )
        name = model_name(str(directory))
        quantization = model_quantization(str(directory))
    assert 0 < len(name) <= MAX_NAME
    name.encode("utf-8")
    assert quantization is None or quantization in QUANTIZATIONS


def test_a_directory_named_in_bytes_that_are_not_text_is_named_in_text(tmp_path):
    directory = tmp_path / os.fsdecode(b"qa-\xff")
    directory.mkdir()
    assert model_name(str(directory)) == "qa-?"


def test_a_directory_that_may_not_be_searched_is_named_by_its_name(tmp_path, monkeypatch):
    """As Lambda's user (not root, as the tests may run) meets a directory it may not enter:
    finding out whether the model is a directory fails (EACCES), which health must survive."""
    private = tmp_path / "private"
    real_stat = Path.stat

    def stat(path, **kwargs):
        if path.is_relative_to(private):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_stat(path, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    assert model_name(str(private / "qa-model")) == "qa-model"


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


@pytest.mark.parametrize(
    ("record", "quantization"),
    [
        ({"model": "m", "quantization": "int8"}, "int8"),
        ({"model": "m", "revision": None}, None),
        ({"model": "m", "quantization": "int4"}, None),
    ],
)
def test_the_quantization_is_the_bake_records(tmp_path, record, quantization):
    (tmp_path / "source.json").write_text(json.dumps(record))
    assert model_quantization(str(tmp_path)) == quantization
    assert model_quantization("someone/hub-model") is None


@pytest.mark.parametrize("size", [0, 1, FINGERPRINT_BLOCK_BYTES, 10**6 + 7])
def test_a_data_file_s_fingerprint_tells_its_size_and_sampled_bytes(tmp_path, size):
    """Another bake's weights (other bytes, the same size) differ in nearly every block; the
    fingerprint samples the first and the last."""
    data = tmp_path / "model.optimized.onnx.data"
    content = os.urandom(size)
    data.write_bytes(content)
    fingerprint = data_fingerprint(data)
    assert fingerprint.startswith(f"{size}:") and fingerprint == data_fingerprint(data)
    if size:
        for changed in (0, size - 1):
            data.write_bytes(
                content[:changed] + bytes([content[changed] ^ 1]) + content[changed + 1 :]
            )
            assert data_fingerprint(data) != fingerprint
    data.write_bytes(content + b"\0")
    assert data_fingerprint(data) != fingerprint
