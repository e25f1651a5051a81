"""The API renders JSON only. `BaseApi` answers the negotiation of nearly every request (no Accept header, `*/*`,
`application/json`) without parsing the header, and must pick exactly what DRF's negotiation picks; any other
Accept header goes through DRF's negotiation as before."""

import json

import pytest
from django.test import RequestFactory
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request

from core.base_api import BaseApi

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "text/html, */*;q=0.8",
    "application/*",
    "text/html",
]


def _negotiate(accept: str | None, query: str = "") -> tuple[object, ...]:
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    request = Request(RequestFactory().get(f"/api/v1/project{query}", **headers))
    view = BaseApi()
    view.format_kwarg = None
    try:
        renderer, media_type = view.perform_content_negotiation(request)
    except Exception as exc:  # DRF's refusal (406), compared by its type
        return (type(exc).__name__,)
    return type(renderer).__name__, media_type


def _drf(accept: str | None, query: str = "") -> tuple[object, ...]:
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    request = Request(RequestFactory().get(f"/api/v1/project{query}", **headers))
    view = BaseApi()
    try:
        renderer, media_type = DefaultContentNegotiation().select_renderer(request, view.get_renderers())
    except Exception as exc:
        return (type(exc).__name__,)
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=xml"])
def test_the_api_negotiates_as_drf_does(accept, query):
    assert _negotiate(accept, query) == _drf(accept, query)


def test_the_common_accept_headers_get_plain_json():
    for accept in (None, "*/*", "application/json"):
        assert _negotiate(accept) == ("JSONRenderer", "application/json")


@pytest.mark.parametrize(
    ("accept", "status", "body_starts"),
    [
        (None, 200, b'{"id":'),
        ("*/*", 200, b'{"id":'),
        ("application/json; indent=2", 200, b'{\n  "id":'),
        ("text/html", 406, b'{"error":{"type":"invalid_request_error","code":"not_acceptable"'),
    ],
)
def test_what_a_request_gets_back(api, tenant_a, accept, status, body_starts):
    headers = {"Accept": accept} if accept is not None else {}
    response = api.get("/api/v1/project", key=tenant_a.key, headers=headers)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.content.startswith(body_starts), response.content[:80]
    json.loads(response.content)
