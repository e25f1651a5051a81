"""`GET /entitlements/check`'s fast lane: the request nearly every check is — a project key, the three documented
parameters, JSON accepted — answered without DRF's request, negotiation and response machinery, by the same
pieces the DRF view runs (`EntitlementCheckApi`: the key lookup, the rate limiter's one round trip with the
snapshot read ahead, `selectors.entitlement_check`, DRF's JSON renderer), so the answer is byte for byte the
view's. Anything else — another method or `Accept`, `as_of` or an unknown parameter, a missing, malformed,
revoked, platform or suspended project's key, a bad parameter, the limit reached, an unknown feature — goes to
the DRF view, which answers it (its error envelope, its 401/403/404/429); a request the lane counted already is
not counted again there (`request.rate_counted`). An unreachable limiter fails open here as there, once.

Why: a warm check is one Redis round trip and a dict lookup; DRF's wrapping of it cost as much again (the issue's
measure is the check against a plain Django view on the same server, with production settings).
"""

import functools
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.renderers import JSONRenderer

from core.base_api import PLAIN_JSON_ACCEPTS
from core.errors import InvalidRequest, NotFound
from core.throttling import request_count
from entitlements import cache
from entitlements.apis.check import EntitlementCheckApi
from entitlements.apis.params import CUSTOMER, FEATURE, QUANTITY
from entitlements.selectors import entitlement_check
from projects.authentication import bearer_secret, principal_enter, principal_for_secret

_PARAMETERS = frozenset({CUSTOMER.name, FEATURE.name, QUANTITY.name})
_RENDERER = JSONRenderer()
_drf_view = EntitlementCheckApi.as_view()


# `wraps` copies the DRF view's attributes (`cls`, `csrf_exempt`): the schema and CSRF see the DRF view.
@functools.wraps(_drf_view)
def entitlement_check_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    answered = _fast_answer(request)
    return answered if answered is not None else _drf_view(request, *args, **kwargs)


def _fast_answer(request: HttpRequest) -> HttpResponse | None:
    """The check's answer, or None for the DRF view to answer (see the module docstring)."""
    meta = request.META
    if request.method != "GET" or meta.get("HTTP_ACCEPT", "*/*") not in PLAIN_JSON_ACCEPTS:
        return None
    params = request.GET
    if not params.keys() <= _PARAMETERS:
        return None
    secret = bearer_secret(meta.get("HTTP_AUTHORIZATION", ""))
    if secret is None:
        return None
    principal = principal_for_secret(secret)
    if principal is None or principal.project is None or not principal.project.is_active:
        return None
    try:
        customer, feature, quantity = CUSTOMER.parse(params), FEATURE.parse(params), QUANTITY.parse(params)
    except InvalidRequest:
        return None
    project = principal.project
    principal_enter(principal)
    read_ahead = None
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    if limit:
        keys = cache.snapshot_keys(project_id=project.pk, external_id=customer, with_usage=True)
        counted = request_count(f"key:{principal.key_id}", keys)  # fails open, as the throttle does
        request.rate_counted = counted  # type: ignore[attr-defined]
        count, _, read_ahead = counted
        if count > limit:
            return None
    try:
        answer = entitlement_check(
            project=project,
            external_id=customer,
            feature_key=feature,
            quantity=quantity,
            read_ahead=read_ahead,
        )
    except NotFound:
        return None
    response = HttpResponse(_RENDERER.render(answer), content_type="application/json")
    response["Allow"] = _ALLOW
    return response


# What DRF's `Allow` says for the view (Django answers HEAD with `get`); tests/entitlements/test_check_fast.py
# compares the lane's headers with the view's.
_ALLOW = "GET, HEAD, OPTIONS"
