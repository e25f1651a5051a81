"""`GET /entitlements/check`'s fast lane (`entitlements.apis.check_fast`): for the request nearly every check is,
the answer is the DRF view's byte for byte (status, body, headers); everything else is the DRF view's own answer,
and a request the lane counted is counted once."""

import contextvars
import time

import pytest
from django.core.cache import cache
from django.test import RequestFactory, override_settings

from catalog.models import Feature
from core.actors import Actor
from entitlements.apis.check import EntitlementCheckApi
from entitlements.apis.check_fast import _fast_answer
from projects.models import Project
from projects.services.keys import api_key_revoke
from projects.services.projects import project_update
from tests.entitlements.helpers import customer, feature, product, subscribe

CHECK = "/api/v1/entitlements/check"


@pytest.fixture
def plans(tenant_a):
    p = tenant_a.project
    calls = feature(p, "calls", Feature.Type.METERED)
    sso = feature(p, "sso")
    tier = feature(p, "tier", Feature.Type.STATIC)
    feature(p, "credits", Feature.Type.CREDITS)
    product(p, "free", {calls: 3, tier: {"name": "frée \u2028 tier"}})
    p.default_product = "free"
    p.save()
    subscribe(customer(p, "u1"), product(p, "pro", {calls: {"limit": 100, "overage": "allowed"}, sso: True}))
    return p


def _fast(request):
    """The lane on a request made without the middleware, in a copy of the context (the logging context it sets
    is the middleware's to reset)."""
    return contextvars.copy_context().run(_fast_answer, request)


def _drf(request):
    return contextvars.copy_context().run(EntitlementCheckApi.as_view(), request)


def _request(key, query, **headers):
    return RequestFactory().get(CHECK, query, HTTP_AUTHORIZATION=f"Bearer {key}", **headers)


def _seen(response):
    if hasattr(response, "render"):
        response.render()
    return response.status_code, response.content, dict(response.items())


@pytest.mark.parametrize(
    "query",
    [
        {"customer": "u1", "feature": "calls"},
        {"customer": "u1", "feature": "calls", "quantity": "1000"},
        {"customer": "u1", "feature": "sso"},
        {"customer": "u1", "feature": "tier"},
        {"customer": "u1", "feature": "credits", "quantity": "0"},
        {"customer": "never-seen", "feature": "calls", "quantity": "4"},
        {"customer": "never-seen", "feature": "tier"},
    ],
)
def test_the_lane_answers_what_the_drf_view_answers(api, tenant_a, plans, query):
    fast = _fast(_request(tenant_a.key, query))
    assert fast is not None
    drf = _drf(_request(tenant_a.key, query))
    assert _seen(fast) == _seen(drf)
    # And through the whole stack: the route takes the lane, with the middleware's headers.
    served = api.get(CHECK, key=tenant_a.key, json_body=query)
    assert (served.status_code, served.content) == _seen(drf)[:2]
    assert (served["Content-Type"], served["Allow"]) == ("application/json", "GET, HEAD, OPTIONS")


def test_everything_else_is_the_drf_views_answer(
    api, tenant_a, tenant_b, plans, platform_key, django_capture_on_commit_callbacks
):
    cases = [
        (
            {"customer": "u1", "feature": "calls", "as_of": "2026-01-01T00:00:00Z"},
            {},
            tenant_a.key,
            200,
            None,
        ),
        (
            {"customer": "u1", "feature": "calls", "format": "json"},
            {},
            tenant_a.key,
            400,
            "unknown_parameter",
        ),
        ({"customer": "u1", "feature": "calls", "custmer": "x"}, {}, tenant_a.key, 400, "unknown_parameter"),
        (
            {"customer": "u1", "feature": "calls", "quantity": "-1"},
            {},
            tenant_a.key,
            400,
            "invalid_parameter",
        ),
        ({"customer": "u1"}, {}, tenant_a.key, 400, "parameter_missing"),
        ({"customer": "u1", "feature": "nope"}, {}, tenant_a.key, 404, None),
        ({"customer": "u1", "feature": "calls"}, {"HTTP_ACCEPT": "text/html"}, tenant_a.key, 406, None),
        ({"customer": "u1", "feature": "calls"}, {}, platform_key, 403, "wrong_key_type"),
        ({"customer": "u1", "feature": "calls"}, {}, "tg_sk_unknown0000000000", 401, None),
    ]
    for query, headers, key, status, code in cases:
        assert _fast(_request(key, query, **headers)) is None, query
        response = api.get(
            CHECK, key=key, json_body=query, headers={"Accept": headers["HTTP_ACCEPT"]} if headers else None
        )
        assert response.status_code == status, (query, response.content)
        if code is not None:
            assert response.json()["error"]["code"] == code
    # A suspended project and a revoked key: the lane steps aside, the view refuses.
    with django_capture_on_commit_callbacks(execute=True):
        project_update(actor=Actor.system("test"), project=tenant_b.project, status=Project.Status.SUSPENDED)
    assert _fast(_request(tenant_b.key, {"customer": "u1", "feature": "calls"})) is None
    suspended = api.get(CHECK, key=tenant_b.key, json_body={"customer": "u1", "feature": "calls"})
    assert (suspended.status_code, suspended.json()["error"]["code"]) == (403, "project_suspended")
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(actor=Actor.system("test"), api_key=tenant_a.api_key)
    assert _fast(_request(tenant_a.key, {"customer": "u1", "feature": "calls"})) is None
    assert (
        api.get(CHECK, key=tenant_a.key, json_body={"customer": "u1", "feature": "calls"}).status_code == 401
    )


def _counted(tenant):
    return cache.get(f"ratelimit:key:{tenant.api_key.pk}:{int(time.time()) // 60}")


@override_settings(API_RATE_LIMIT_PER_MINUTE=3)
def test_a_request_is_counted_once_whoever_answers_it(api, tenant_a, plans):
    if int(time.time()) % 60 > 55:
        time.sleep(5)  # one window for the whole test
    ok = api.get(CHECK, key=tenant_a.key, json_body={"customer": "u1", "feature": "calls"})
    unknown = api.get(CHECK, key=tenant_a.key, json_body={"customer": "u1", "feature": "nope"})
    assert (ok.status_code, unknown.status_code, _counted(tenant_a)) == (200, 404, 2)
    assert api.get(CHECK, key=tenant_a.key, json_body={"customer": "u1", "feature": "sso"}).status_code == 200
    limited = api.get(CHECK, key=tenant_a.key, json_body={"customer": "u1", "feature": "calls"})
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert _counted(tenant_a) == 4


def test_an_unreachable_limiter_fails_open_once(api, tenant_a, plans, caplog):
    """The window's counter cannot be counted (it holds no number: INCR fails, as a broken cache would): the
    check is answered, with one warning — the DRF view does not try the limiter a second time."""
    if int(time.time()) % 60 > 55:
        time.sleep(5)
    cache.set(f"ratelimit:key:{tenant_a.api_key.pk}:{int(time.time()) // 60}", "not a number", 60)
    with caplog.at_level("WARNING", logger="core.throttling"):
        answer = api.get(CHECK, key=tenant_a.key, json_body={"customer": "u1", "feature": "calls"})
        unknown = api.get(CHECK, key=tenant_a.key, json_body={"customer": "u1", "feature": "nope"})
    assert (answer.status_code, answer.json()["limit"], unknown.status_code) == (200, 100, 404)
    warnings = [r.getMessage() for r in caplog.records if r.name == "core.throttling"]
    # One per request (the error is the cache's own: ResponseError from Redis, TypeError from local memory).
    assert len(warnings) == 2
    assert all(
        w.startswith("Rate limiter unavailable (") and w.endswith("); request allowed.") for w in warnings
    )
