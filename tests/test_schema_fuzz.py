"""The API against its own OpenAPI document (/api/schema/): Schemathesis generates requests from
it, valid and invalid, sends them to the WSGI application in process (no network), and checks
every response: never a 5xx, a documented status code and content type, a body and headers that
match the documented schema. The tiny random model answers.

Valid requests may still get a 400 (a whitespace-only question, or a doc_stride that leaves the
context no room: constraints a schema cannot state), so Schemathesis's positive_data_acceptance
check is not among these.
"""

import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, event, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@schema.parametrize()
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_api_conforms_to_its_schema(case, tiny_model_settings):
    """Statuses are tallied as Hypothesis events (--hypothesis-show-statistics)."""
    response = case.call_and_validate(checks=CHECKS)
    event(f"{case.method} {response.status_code}")
