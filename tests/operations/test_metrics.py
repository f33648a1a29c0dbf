"""CloudWatch metrics in EMF: recorded on Lambda only, published as one document per invocation,
a status code the only dimension a metric adds."""

import json
import subprocess
import sys
import warnings

import pytest

from qa.operations import metrics


@pytest.fixture
def on_lambda(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "qasite-test")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    yield
    metrics._metrics().clear_metrics()


def documents(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def values(document: dict) -> dict:
    """{metric name: (unit, value)} of one EMF document, checking its shape on the way."""
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "qasite"
    assert document["service"] == "qasite"
    return {m["Name"]: (m["Unit"], document[m["Name"]]) for m in directive["Metrics"]}


@pytest.mark.parametrize(
    ("function_name", "disabled", "expected"),
    [
        (None, None, False),
        ("qasite", None, True),
        ("qasite", "true", False),
        ("qasite", "false", True),
        (None, "false", False),
    ],
)
def test_enabled_on_lambda_unless_disabled(monkeypatch, function_name, disabled, expected):
    for name, value in [
        ("AWS_LAMBDA_FUNCTION_NAME", function_name),
        ("POWERTOOLS_METRICS_DISABLED", disabled),
    ]:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert metrics.enabled() is expected


def test_one_document_per_invocation(on_lambda, capsys):
    metrics.request_served(200, 0.0125)
    metrics.request_served(503, 0.002)
    metrics.add("Answers", "Count", 2)
    metrics.publish()
    [document] = documents(capsys)
    found = values(document)
    assert found == {
        "Requests": ("Count", [1.0, 1.0]),
        "Latency": ("Milliseconds", [12.5, 2.0]),
        "ServerErrors": ("Count", [1.0]),
        "Answers": ("Count", [2.0]),
    }
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    metrics.publish()  # nothing recorded since: nothing printed, no warning
    assert documents(capsys) == []


@pytest.mark.parametrize("status", [400, 403, 404, 405, 413, 415, 429])
def test_a_4xx_is_counted_by_its_status(on_lambda, capsys, status):
    metrics.request_served(status, 0.001)
    [client_error] = documents(capsys)  # at once, in a document of its own
    assert values(client_error) == {"ClientErrors": ("Count", [1.0])}
    assert client_error["status"] == str(status)
    assert client_error["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "status"]]
    metrics.publish()
    assert set(values(documents(capsys)[0])) == {"Requests", "Latency"}


def test_discard_forgets_what_was_not_published(on_lambda, capsys):
    """After a SnapStart restore: the snapshot's init and priming were not this instance's."""
    metrics.add("ModelLoadTime", "Milliseconds", 1500)
    metrics.request_served(200, 0.01)
    metrics.discard()
    metrics.publish()
    assert capsys.readouterr().out == ""


def test_off_lambda_nothing_is_recorded_printed_or_warned(monkeypatch, capsys):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(150):  # past Powertools' 100 values, where it would print by itself
            metrics.request_served(404, 0.001)
            metrics.add("Answers", "Count", 1)
        metrics.publish()
    assert capsys.readouterr().out == ""
    assert not metrics._metrics.cache_info().currsize or not metrics._metrics().metric_set


def test_off_lambda_powertools_is_not_imported():
    """The first page from cold pays for no metrics library under runserver or gunicorn."""
    code = (
        "import os, sys; os.environ.pop('AWS_LAMBDA_FUNCTION_NAME', None);"
        "from qa.operations import metrics; metrics.request_served(200, 0.1);"
        "metrics.add('Answers', 'Count', 1); metrics.publish();"
        "print('aws_lambda_powertools' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
