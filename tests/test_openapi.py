"""The schema's servers under the path prefix (tests/test_lambda_handler.py checks the schema a
stage serves end to end)."""

import pytest
from django.urls import set_script_prefix
from rest_framework.test import APIRequestFactory

from qa.openapi import servers_under_the_prefix


@pytest.fixture
def prefix():
    yield set_script_prefix
    set_script_prefix("/")


@pytest.mark.parametrize(
    ("script_prefix", "expected"), [("/prod/", [{"url": "/prod"}]), ("/", None)]
)
def test_servers_are_the_prefix_the_schema_was_asked_under(prefix, script_prefix, expected):
    prefix(script_prefix)
    request = APIRequestFactory().get("/api/schema/")
    result = servers_under_the_prefix({"paths": {}}, None, request, public=True)
    assert result.get("servers") == expected


def test_a_schema_made_outside_a_request_has_no_servers(prefix):
    prefix("/prod/")
    assert "servers" not in servers_under_the_prefix({"paths": {}}, None, None, public=True)
