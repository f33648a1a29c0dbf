"""Whether a request came through the proxy in front of the site (CloudFront): it carries one of
the proxy's secrets in ``X-Origin-Verify``, a header CloudFront adds to every request it forwards
(overwriting any a viewer sends). API Gateway's own URL is public, so without this anyone could
bypass CloudFront (and a WAF on it) and name any client in ``CloudFront-Viewer-Address``.

Several secrets may be accepted at once, so that the one CloudFront sends can be rotated without
a request being refused in between (README, "Secrets"): the function accepts the new and the old
one until every CloudFront edge sends the new one.
"""

import hmac
import logging
import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

HEADER = "X-Origin-Verify"

logger = logging.getLogger(__name__)

_last_fetched: list[str] = []


def _split(value: str) -> list[str]:
    return re.split(r"[\s,]+", value.strip()) if value.strip() else []


def _fetch(name: str) -> list[str]:
    """The secrets in the SSM SecureString parameter ``name``, through Powertools' Parameters
    (which caches the value for settings.QA_PROXY_SECRET_MAX_AGE seconds). When SSM cannot be
    reached, the secrets last fetched stay in use (a warning is logged); raises
    ImproperlyConfigured when there are none."""
    from aws_lambda_powertools.utilities.parameters import get_parameter

    try:
        value = get_parameter(name, decrypt=True, max_age=settings.QA_PROXY_SECRET_MAX_AGE)
    except Exception as error:
        if not _last_fetched:
            raise ImproperlyConfigured(f"the SSM parameter {name} cannot be read") from error
        logger.warning("The SSM parameter %s cannot be read; its last value stays in use", name)
        return _last_fetched
    _last_fetched[:] = _split(value)
    return _last_fetched


def proxy_secrets() -> list[str]:
    """The secrets a request from the proxy may carry; empty when no proxy is configured.

    From the SSM SecureString parameter named by settings.QA_PROXY_SECRET_PARAMETER when set
    (its value: one or more secrets separated by spaces or commas), else from
    settings.QA_PROXY_SECRET (comma-separated).
    """
    if settings.QA_PROXY_SECRET_PARAMETER:
        return _fetch(settings.QA_PROXY_SECRET_PARAMETER)
    return _split(settings.QA_PROXY_SECRET)


def forget_secrets() -> None:
    """Drop Powertools' cache of the secrets (and its SSM client), so the next read goes to SSM:
    for a SnapStart restore, whose snapshot holds what init read. What was read last stays in
    use should SSM fail then."""
    if settings.QA_PROXY_SECRET_PARAMETER:
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()


def through_proxy(request) -> bool:
    """Whether the request carries one of the proxy's secrets (always true when none is set).
    Every secret is compared, in constant time, whatever the first comparisons gave."""
    secrets = proxy_secrets()
    if not secrets:
        return True
    sent = request.headers.get(HEADER, "").encode()
    matches = [hmac.compare_digest(sent, secret.encode()) for secret in secrets]
    return any(matches)
