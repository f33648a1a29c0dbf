"""The service's CloudWatch metrics, in Embedded Metric Format (AWS Lambda Powertools' Metrics).

Each metric is recorded where it happens (qasite.middleware: requests, latency, errors by status;
qa.services: answers, no-answers, the model's load) and the Lambda handler publishes them once
per invocation: one JSON line on stdout, which CloudWatch Logs turns into metrics of the
namespace ``qasite`` with the one dimension ``service``. Dimensions are never request data: a
status code is the only one a metric adds (4xx by status).

Metrics are recorded only on Lambda (``AWS_LAMBDA_FUNCTION_NAME``, which the runtime sets) and
unless ``POWERTOOLS_METRICS_DISABLED`` is true: under runserver, gunicorn or the tests nothing is
recorded, printed or kept, and Powertools is not even imported.
"""

import functools
import os

NAMESPACE = "qasite"
SERVICE = "qasite"


def enabled() -> bool:
    """Whether metrics are recorded: on Lambda, unless POWERTOOLS_METRICS_DISABLED is true."""
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return False
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    return not is_metrics_disabled()


@functools.cache
def _metrics():
    from aws_lambda_powertools import Metrics

    return Metrics(namespace=NAMESPACE, service=SERVICE)


def add(name: str, unit: str, value: float) -> None:
    """Record one value of a metric (``unit``: a CloudWatch unit, "Count", "Milliseconds",
    "Percent"), published with the others at the end of the invocation."""
    if enabled():
        _metrics().add_metric(name=name, unit=unit, value=value)


def request_served(status: int, seconds: float) -> None:
    """A response went out: Requests, Latency (ms), ServerErrors for a 5xx, and for a 4xx
    ClientErrors with the status as dimension (published at once, in a document of its own,
    since the other metrics have none)."""
    if not enabled():
        return
    add("Requests", "Count", 1)
    add("Latency", "Milliseconds", seconds * 1000)
    if status >= 500:
        add("ServerErrors", "Count", 1)
    elif status >= 400:
        from aws_lambda_powertools.metrics import single_metric

        with single_metric(
            name="ClientErrors", unit="Count", value=1, namespace=NAMESPACE
        ) as metric:
            metric.add_dimension(name="service", value=SERVICE)
            metric.add_dimension(name="status", value=str(status))


def publish() -> None:
    """Print what was recorded since the last call as one EMF document (nothing if nothing was)."""
    if enabled() and _metrics().metric_set:
        _metrics().flush_metrics()


def discard() -> None:
    """Forget what was recorded and not yet published. For a SnapStart restore: what init and
    the snapshot's priming recorded would otherwise be published by every restored instance."""
    if _metrics.cache_info().currsize:
        _metrics().clear_metrics()
