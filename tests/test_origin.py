"""The proxy's secrets, from settings or from an SSM SecureString parameter: botocore's Stubber
stands in for SSM where an answer is needed, and a fake endpoint on loopback where the network
fails (one that never answers, one that answers errors); no AWS."""

import logging
import time

import pytest
from botocore.stub import Stubber
from django.core.exceptions import ImproperlyConfigured

from qa import origin
from tests.helpers import SSM_PARAMETER as NAME
from tests.helpers import get_parameter_answer, ssm_error

# What a read against an endpoint that never answers may take beyond its bound before the test
# fails: generous (a loaded machine), and far below botocore's default of 60 s per read.
MARGIN = 5  # seconds


@pytest.fixture
def ssm(aws_environment):
    """A Stubber on the SSM client of qa.origin's provider."""
    with Stubber(origin.ssm_provider().client) as stubber:
        yield stubber


def answer(stubber: Stubber, value: str) -> None:
    status, body = get_parameter_answer(NAME, value)
    stubber.add_response("get_parameter", body, {"Name": NAME, "WithDecryption": True})


def test_secrets_from_settings_are_comma_separated(settings):
    settings.QA_PROXY_SECRET_PARAMETER = ""
    settings.QA_PROXY_SECRET = "new, old"
    assert origin.proxy_secrets() == ["new", "old"]
    settings.QA_PROXY_SECRET = ""
    assert origin.proxy_secrets() == []


def test_a_securestring_parameter_is_read_decrypted_and_cached(ssm, settings):
    answer(ssm, "new-secret old-secret")  # one call only: a second would find no response
    assert origin.proxy_secrets() == ["new-secret", "old-secret"]
    assert origin.proxy_secrets() == ["new-secret", "old-secret"]
    ssm.assert_no_pending_responses()


def test_a_rotation_is_read_once_the_cache_expires(ssm, settings):
    settings.QA_PROXY_SECRET_MAX_AGE = 0
    answer(ssm, "old-secret")
    answer(ssm, "new-secret,old-secret")
    assert origin.proxy_secrets() == ["old-secret"]
    assert origin.proxy_secrets() == ["new-secret", "old-secret"]


def test_when_ssm_fails_the_last_secrets_stay_in_use(ssm, settings, caplog):
    settings.QA_PROXY_SECRET_MAX_AGE = 0
    answer(ssm, "the-secret")
    ssm.add_client_error("get_parameter", "ThrottlingException")
    assert origin.proxy_secrets() == ["the-secret"]
    with caplog.at_level(logging.WARNING, logger="qa.origin"):
        assert origin.proxy_secrets() == ["the-secret"]
    assert [record.getMessage() for record in caplog.records] == [
        f"The SSM parameter {NAME} cannot be read (ThrottlingException); its last "
        f"value stays in use, and is read again in {origin.RETRY_AFTER} s"
    ]
    assert "the-secret" not in caplog.text


def test_after_a_failed_read_ssm_is_asked_again_only_after_retry_after(
    ssm, settings, monkeypatch, manual_clock
):
    """An SSM outage costs one request in RETRY_AFTER seconds a bounded wait, not every one."""
    monkeypatch.setattr(origin, "monotonic", manual_clock)
    settings.QA_PROXY_SECRET_MAX_AGE = 0
    answer(ssm, "the-secret")
    ssm.add_client_error("get_parameter", "InternalServerError", http_status_code=500)
    assert origin.proxy_secrets() == ["the-secret"]
    assert origin.proxy_secrets() == ["the-secret"]  # the failed read
    ssm.assert_no_pending_responses()
    manual_clock.advance(origin.RETRY_AFTER - 0.1)
    assert origin.proxy_secrets() == ["the-secret"]  # no call: the stub has no answer left
    manual_clock.advance(0.1)
    answer(ssm, "rotated")
    assert origin.proxy_secrets() == ["rotated"]
    ssm.assert_no_pending_responses()


def test_without_any_secret_read_a_failing_ssm_is_a_configuration_error(ssm):
    ssm.add_client_error("get_parameter", "AccessDeniedException")
    with pytest.raises(ImproperlyConfigured, match=NAME):
        origin.proxy_secrets()


def test_one_provider_with_bounded_reads_is_built_once_and_kept(aws_environment):
    """A restore (refresh_secrets) reuses the client init built: building one takes 0.1 to
    0.2 s. Its reads are bounded well within SnapStart's 10 s for a restore's hooks."""
    provider = origin.ssm_provider()
    config = provider.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1, 1)
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}
    assert origin.READ_BOUND == 5 and origin.RETRY_AFTER == 30
    assert origin.ssm_provider() is provider


def test_refresh_reads_again_whatever_the_cache_holds_and_keeps_the_last_on_failure(ssm):
    """After a SnapStart restore: what init read is in the snapshot, and is read again with the
    same client; if SSM fails then, the snapshot's secrets stay in use rather than failing the
    restore."""
    client = origin.ssm_provider().client
    answer(ssm, "at-init")
    assert origin.proxy_secrets() == ["at-init"]
    answer(ssm, "after-restore")
    origin.refresh_secrets()
    assert origin.proxy_secrets() == ["after-restore"]  # from the cache the refresh filled
    ssm.add_client_error("get_parameter", "ThrottlingException")
    origin.refresh_secrets()
    assert origin.proxy_secrets() == ["after-restore"]
    ssm.assert_no_pending_responses()
    assert origin.ssm_provider().client is client


def test_refresh_without_a_parameter_asks_nothing(settings, monkeypatch):
    settings.QA_PROXY_SECRET_PARAMETER = ""
    monkeypatch.setattr(origin, "ssm_provider", None)  # would fail if called
    origin.refresh_secrets()


def test_a_restore_reads_a_rotation_on_a_new_connection(local_ssm):
    """Over a real socket: the connection init left open (a restored instance cannot use it) is
    closed, and the client opens another."""
    fake = local_ssm(get_parameter_answer(NAME, "at-init"), get_parameter_answer(NAME, "new old"))
    assert origin.proxy_secrets() == ["at-init"]
    origin.refresh_secrets()
    assert origin.proxy_secrets() == ["new", "old"]
    [init, restore] = fake.peers
    assert init != restore


# (SSM's answer to every call, the failure the log names, how many calls a read makes)
FAILURES = [
    (None, "ReadTimeoutError", origin.ATTEMPTS),  # accepts, never answers
    (ssm_error(500, "InternalServerError"), "InternalServerError", origin.ATTEMPTS),
    (ssm_error(400, "ThrottlingException"), "ThrottlingException", origin.ATTEMPTS),
    (ssm_error(400, "AccessDeniedException"), "AccessDeniedException", 1),
    (ssm_error(400, "ParameterNotFound"), "ParameterNotFound", 1),
]


@pytest.mark.parametrize(("failure", "named", "calls"), FAILURES)
@pytest.mark.parametrize("path", ["restore", "request"])
def test_a_failing_endpoint_holds_a_read_within_its_bound_and_the_last_secrets_stay(
    local_ssm, settings, caplog, failure, named, calls, path
):
    """A real client on a real socket: after init's read, SSM stops answering or answers
    errors. The restore's refresh, or a request's read once the cache has expired, returns
    within READ_BOUND (where botocore's defaults waited minutes), after ATTEMPTS calls at most,
    and the secrets init read stay in use; the warning names the parameter and the failure,
    never the secret."""
    fake = local_ssm(get_parameter_answer(NAME, "s3cret-at-init"), failure)
    if path == "request":
        settings.QA_PROXY_SECRET_MAX_AGE = 0  # what init reads has expired at the next request
    assert origin.proxy_secrets() == ["s3cret-at-init"]
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="qa.origin"):
        if path == "restore":
            origin.refresh_secrets()
        secrets = origin.proxy_secrets()
    elapsed = time.monotonic() - started
    assert secrets == ["s3cret-at-init"]
    assert elapsed < origin.READ_BOUND + MARGIN, elapsed
    assert len(fake.requests) == 1 + calls
    [warning] = [record.getMessage() for record in caplog.records if record.name == "qa.origin"]
    assert f"{NAME} cannot be read ({named})" in warning and "s3cret" not in warning


def test_a_request_through_the_proxy_carries_one_of_the_secrets(rf, ssm):
    answer(ssm, "new-secret old-secret")
    for sent, expected in [
        ("new-secret", True),
        ("old-secret", True),
        ("", False),
        ("new-secret old-secret", False),
        ("new", False),
        (None, False),
    ]:
        headers = {} if sent is None else {"HTTP_X_ORIGIN_VERIFY": sent}
        assert origin.through_proxy(rf.get("/", **headers)) is expected, sent
