"""Every operation of the served OpenAPI schema is described for tenant developers (#16 "A truthful OpenAPI
schema"): a summary and a description of its own, never the view's internal docstring."""

import inspect
import json

import pytest
from drf_spectacular.generators import EndpointEnumerator

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def served(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def _operations(schema):
    return {
        (path, method): operation
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in METHODS
    }


def _docstrings(callback, method):
    """The view class's own docstring and its handler's, as drf-spectacular would have read them."""
    view_class = callback.cls
    handler = getattr(view_class, method.lower())
    return [
        inspect.cleandoc(doc)
        for doc in (view_class.__dict__.get("__doc__"), handler.__doc__)
        if doc and doc.strip()
    ]


def test_every_operation_has_a_summary_and_a_description(served):
    operations = _operations(served)
    assert len(operations) == 151  # 145 under /api/v1, the Stripe intake twice, four probes
    missing = [
        f"{method.upper()} {path}"
        for (path, method), operation in operations.items()
        if not operation.get("summary", "").strip() or not operation.get("description", "").strip()
    ]
    assert missing == []


def test_no_operation_is_described_by_its_views_docstring(served):
    operations = _operations(served)
    endpoints = {
        (path, method.lower()): callback
        for path, _, method, callback in EndpointEnumerator().get_api_endpoints()
    }
    # Every API operation is checked: the enumerator sees the same views the schema was generated from.
    assert set(endpoints) == {key for key in operations if key[0].startswith("/api/v1/")}
    leaked = []
    for (path, method), callback in endpoints.items():
        operation = operations[(path, method)]
        for doc in _docstrings(callback, method):
            if doc in (operation["description"], operation["summary"]) or doc in operation["description"]:
                leaked.append(f"{method.upper()} {path}")
    assert leaked == []


def test_a_views_docstring_is_not_what_the_schema_says(served):
    """The views that have a docstring (they explain the view to Tollgate's developers) say something else in
    the schema: the check above is not vacuous."""
    endpoints = EndpointEnumerator().get_api_endpoints()
    documented = {
        (path, method.lower()): _docstrings(callback, method)
        for path, _, method, callback in endpoints
        if _docstrings(callback, method)
    }
    assert documented[("/api/v1/project", "get")] == ["The calling project's own settings, without secrets."]
    assert _operations(served)[("/api/v1/project", "get")]["description"] == (
        "The calling project's own settings, without any secret (only whether Stripe credentials are set)."
    )


def test_no_two_operations_share_a_description_or_a_summary(served):
    operations = _operations(served).items()
    by_description: dict[str, list[str]] = {}
    by_summary: dict[str, list[str]] = {}
    for (path, method), operation in operations:
        by_description.setdefault(operation["description"], []).append(f"{method.upper()} {path}")
        by_summary.setdefault(operation["summary"], []).append(f"{method.upper()} {path}")
    assert [names for names in by_description.values() if len(names) > 1] == []
    assert [names for names in by_summary.values() if len(names) > 1] == []
