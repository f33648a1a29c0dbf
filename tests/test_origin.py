"""The proxy's secrets, from settings or from an SSM SecureString parameter (botocore's Stubber
stands in for SSM: no network, no AWS)."""

import logging

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.ssm import SSMProvider
from botocore.stub import Stubber
from django.core.exceptions import ImproperlyConfigured

from qa import origin

NAME = "/qasite/prod/origin-secret"


@pytest.fixture
def ssm(settings, monkeypatch):
    """A stubbed SSM client behind Powertools' default provider; settings name the parameter."""
    settings.QA_PROXY_SECRET_PARAMETER = NAME
    settings.QA_PROXY_SECRET = "ignored when a parameter is named"
    client = boto3.client(
        "ssm", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)

    def install():
        parameters.clear_caches()
        parameters.base.DEFAULT_PROVIDERS["ssm"] = SSMProvider(boto3_client=client)

    monkeypatch.setattr(origin, "_last_fetched", [])
    install()
    stubber.install = install
    with stubber:
        yield stubber
    parameters.clear_caches()


def answer(stubber: Stubber, value: str) -> None:
    stubber.add_response(
        "get_parameter",
        {"Parameter": {"Name": NAME, "Type": "SecureString", "Value": value, "Version": 1}},
        {"Name": NAME, "WithDecryption": True},
    )


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
    with caplog.at_level(logging.WARNING):
        assert origin.proxy_secrets() == ["the-secret"]
    assert f"The SSM parameter {NAME} cannot be read" in caplog.text
    assert "the-secret" not in caplog.text


def test_without_any_secret_read_a_failing_ssm_is_a_configuration_error(ssm):
    ssm.add_client_error("get_parameter", "AccessDeniedException")
    with pytest.raises(ImproperlyConfigured, match=NAME):
        origin.proxy_secrets()


def test_forget_secrets_makes_the_next_read_go_to_ssm_and_keeps_the_last_as_fallback(ssm):
    """After a SnapStart restore: what init read is in the snapshot, and is read again; if SSM
    fails then, the snapshot's secrets stay in use rather than failing the restore."""
    answer(ssm, "at-init")
    assert origin.proxy_secrets() == ["at-init"]
    origin.forget_secrets()
    assert "ssm" not in parameters.base.DEFAULT_PROVIDERS
    ssm.install()
    answer(ssm, "after-restore")
    assert origin.proxy_secrets() == ["after-restore"]
    origin.forget_secrets()
    ssm.install()
    ssm.add_client_error("get_parameter", "ThrottlingException")
    assert origin.proxy_secrets() == ["after-restore"]


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
