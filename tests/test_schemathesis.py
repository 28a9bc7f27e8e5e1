"""The running API against its own OpenAPI document: no 500, and every answer as documented.

Schemathesis generates requests from /api/openapi.json (valid bodies and broken ones) and sends them
through the WSGI application, in the test's transaction. A fixed number of examples per operation,
derandomized, keeps the run short and the same on every machine.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from autopack_site.wsgi import application
from tests.conftest import QUICK_START

pytestmark = pytest.mark.django_db
EXAMPLES_PER_OPERATION = 20
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Schemathesis's WSGI client is not a loopback socket: writes go with the API key. It does not
# decompress either, so it asks for answers as they are.
KEY = {"X-API-Key": "schemathesis"}
HEADERS = {**KEY, "Accept-Encoding": "identity"}


schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


@pytest.fixture
def served(db, models_config, settings):
    settings.AUTOPACK_API_KEY = KEY["X-API-Key"]
    settings.ALLOWED_HOSTS = ["*"]
    # The WSGI handler closes "old" connections around each request, which would close the test's
    # transaction; Django's own test client disconnects the same signal.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        # A run of the README's shape, so that some generated requests find it.
        start = schema["/runs/start"]["POST"].Case(
            body=QUICK_START, headers={**KEY, "Content-Type": "application/json"}
        )
        assert start.call().status_code == 201
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_as_its_document_says(case, served):
    case.call_and_validate(headers=HEADERS, checks=CHECKS)
