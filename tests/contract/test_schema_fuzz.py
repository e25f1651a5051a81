"""Schemathesis against the served schema (`/api/schema/`), in-process over WSGI with a project key: for every
operation, bounded generated requests, and for each answer no server error and no status the operation does not
document. The Stripe behind it is the test's emulator (autouse fixture).

Driven with Hypothesis directly (one `@given` per operation) rather than schemathesis' pytest plugin, whose
subtests do not run under this pytest."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from config.wsgi import application

EXAMPLES = 4  # per operation: bounded, so the whole run stays around a minute
SKIPPED = ("/webhooks/", "/metrics")  # signed by Stripe / scraped with their own credentials; tested apart

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Called straight through WSGI, Django would close the database connection after each request (and with
    it the test's transaction); its test client turns that off the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_every_operation_answers_only_what_it_documents(tenant_a, catalog):
    served = schemathesis.openapi.from_wsgi("/api/schema/", application)
    headers = {"Authorization": f"Bearer {tenant_a.key}"}
    failures: list[str] = []
    tried = 0
    for result in served.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(SKIPPED):
            continue
        tried += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error, status_code_conformance])

        try:
            run()
        except Exception as exc:  # every operation is tried; all failures are reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert tried >= 75
    assert failures == []
