"""Whether a request came through the proxy in front of the site (CloudFront): it carries one of
the proxy's secrets in ``X-Origin-Verify``, a header CloudFront adds to every request it forwards
(overwriting any a viewer sends). API Gateway's own URL is public, so without this anyone could
bypass CloudFront (and a WAF on it) and name any client in ``CloudFront-Viewer-Address``.

Several secrets may be accepted at once, so that the one CloudFront sends can be rotated without
a request being refused in between (docs/lambda.md, "Only CloudFront may call the function"): the
function accepts the new and the old
one until every CloudFront edge sends the new one.
"""

import functools
import hmac
import logging
import re
from time import monotonic

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from qa.operations.log_filters import keep_out_of_logs

HEADER = "X-Origin-Verify"

# How long a read of the secrets from SSM may take, at most: SnapStart fails a restore whose
# hooks pass 10 s (SnapStartTimeoutException: AWS Lambda's guide, "Troubleshooting SnapStart
# errors"), and a user's request waits when the cache has expired. SSM answers
# GetParameter in tens of milliseconds, so a second for the TCP connection and a second for each
# read of the socket leave it ample room; one retry covers a dropped connection or a throttled
# call. botocore's defaults, 60 s each and more attempts, let an endpoint that never answers
# hold a restore for minutes.
CONNECT_TIMEOUT = 1  # seconds
READ_TIMEOUT = 1  # seconds, each read of the socket
ATTEMPTS = 2  # the first call and one retry ("standard" retry mode)
# The longest a read can take: every attempt timing out, plus the retry's back-off (botocore's
# standard mode: random, under 1 s after throttling, under 50 ms after anything else). Not
# counted: fetching the function's credentials again when they have expired, from Lambda's
# local endpoint, which botocore bounds itself.
READ_BOUND = ATTEMPTS * (CONNECT_TIMEOUT + READ_TIMEOUT) + 1  # seconds
# After a failed read, the last secrets are used without asking SSM again for this long: an SSM
# outage then delays one request in RETRY_AFTER seconds (by READ_BOUND at most), not every one.
RETRY_AFTER = 30  # seconds

logger = logging.getLogger(__name__)

_last_fetched: list[str] = []
_retry_at = 0.0  # monotonic() before which a failed read is not tried again


def _split(value: str) -> list[str]:
    return re.split(r"[\s,]+", value.strip()) if value.strip() else []


@functools.cache
def ssm_provider():
    """The process's one AWS Lambda Powertools SSMProvider, its boto3 client bounded by
    CONNECT_TIMEOUT, READ_TIMEOUT and ATTEMPTS. Built on the first read, which is init's on
    Lambda, so a SnapStart snapshot holds it and no restore pays for a new client (a boto3
    client takes 0.1 to 0.2 s to build). Region, credentials and endpoint come from boto3's
    usual sources (AWS_REGION, the function's role, AWS_ENDPOINT_URL_SSM)."""
    from aws_lambda_powertools.utilities.parameters import SSMProvider
    from botocore.config import Config

    bounds = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
    )
    return SSMProvider(boto_config=bounds)


def _failure(error: Exception) -> str:
    """What went wrong in a read, for the log: the error code SSM answered, or botocore's
    exception class (a timeout, a refused connection). Never a message."""
    cause = error.__cause__ or error.__context__ or error
    response = getattr(cause, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code or type(cause).__name__


def _fetch(name: str, *, refresh: bool = False) -> list[str]:
    """The secrets in the SSM SecureString parameter ``name``, cached by Powertools for
    settings.QA_PROXY_SECRET_MAX_AGE seconds (``refresh``: read now, whatever the cache holds).
    A read takes READ_BOUND seconds at most. When it fails, the secrets last read stay in use
    (a warning names the parameter and the failure) and SSM is not asked again for RETRY_AFTER
    seconds; raises ImproperlyConfigured when there are none."""
    global _retry_at
    if _last_fetched and not refresh and monotonic() < _retry_at:
        return _last_fetched
    try:
        value = ssm_provider().get(
            name, max_age=settings.QA_PROXY_SECRET_MAX_AGE, decrypt=True, force_fetch=refresh
        )
    except Exception as error:
        if not _last_fetched:
            raise ImproperlyConfigured(f"the SSM parameter {name} cannot be read") from error
        _retry_at = monotonic() + RETRY_AFTER
        logger.warning(
            "The SSM parameter %s cannot be read (%s); its last value stays in use, "
            "and is read again in %d s",
            name,
            _failure(error),
            RETRY_AFTER,
        )
        return _last_fetched
    _last_fetched[:] = _split(value)
    keep_out_of_logs(*_last_fetched)
    return _last_fetched


def proxy_secrets() -> list[str]:
    """The secrets a request from the proxy may carry; empty when no proxy is configured.

    From the SSM SecureString parameter named by settings.QA_PROXY_SECRET_PARAMETER when set
    (its value: one or more secrets separated by spaces or commas), else from
    settings.QA_PROXY_SECRET (comma-separated). Either way, no log line shows them from then on
    (qa.operations.log_filters.keep_out_of_logs).
    """
    if settings.QA_PROXY_SECRET_PARAMETER:
        return _fetch(settings.QA_PROXY_SECRET_PARAMETER)
    secrets = _split(settings.QA_PROXY_SECRET)
    keep_out_of_logs(*secrets)
    return secrets


def refresh_secrets() -> None:
    """Read the secrets from SSM again now, within READ_BOUND seconds, whatever Powertools'
    cache holds: after a SnapStart restore, whose snapshot holds what init read (a rotation
    since then must count) and the connections init opened, which a restored instance cannot
    use (they are closed first: a request sent on one would wait for the read timeout). Should
    SSM fail, the secrets last read stay in use. Nothing to do when no parameter is named."""
    if settings.QA_PROXY_SECRET_PARAMETER:
        ssm_provider().client.close()  # its connections; the client itself stays
        _fetch(settings.QA_PROXY_SECRET_PARAMETER, refresh=True)


def through_proxy(request) -> bool:
    """Whether the request carries one of the proxy's secrets (always true when none is set).
    Every secret is compared, in constant time, whatever the first comparisons gave."""
    secrets = proxy_secrets()
    if not secrets:
        return True
    sent = request.headers.get(HEADER, "").encode()
    matches = [hmac.compare_digest(sent, secret.encode()) for secret in secrets]
    return any(matches)
