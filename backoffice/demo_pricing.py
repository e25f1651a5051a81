"""The demo's pricing page (`make demo` only): `<tollgate-pricing>` embedded in a page, and the tiny tenant backend
its "Choose" buttons call, as a tenant would build them (docs/integration.md, "Pricing table you can embed").

`/demo/pricing` serves the page; `POST /demo/pricing/checkout {price}` is the tenant's endpoint: it knows the
visitor from the session (a customer id made up on the first visit), creates the subscription checkout by calling
Tollgate's API over HTTP with the demo project's secret key — read from `make demo`'s credentials file, never sent to
the browser — and answers `{url}`, the hosted checkout the component then opens. Off unless `settings.DEMO_PAGES`.
"""

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.template.response import TemplateResponse
from django.urls import reverse

from backoffice.demo import DEMO_SLUG
from core.errors import ApiError, Forbidden, InvalidRequest, json_error, plain_view
from core.ids import random_token
from projects.models import Project

SESSION_CUSTOMER = "demo_pricing_customer"
# How long the demo's backend waits for Tollgate to create the checkout (Tollgate waits for Stripe in turn).
API_TIMEOUT_SECONDS = 30


def _demo_project() -> Project:
    if not settings.DEMO_PAGES:
        raise Http404("Demo pages are off.")
    project = Project.objects.filter(slug=DEMO_SLUG).first()
    if project is None:
        raise Http404("No demo project: run make demo.")
    return project


def _visitor(request: HttpRequest) -> str:
    """The demo's signed-in user: a customer id of this browser's session (a real app has its own users)."""
    customer = request.session.get(SESSION_CUSTOMER)
    if not isinstance(customer, str):
        customer = f"demo-visitor-{random_token(10).lower()}"
        request.session[SESSION_CUSTOMER] = customer
    return customer


def _demo_secret() -> str:
    """The demo project's secret key, from the file `manage.py demo_setup` keeps it in (mode 0600)."""
    try:
        stored = json.loads(Path(settings.DEMO_CREDENTIALS).read_text())
    except (OSError, ValueError):
        return ""
    secret = stored.get("api_key") if isinstance(stored, dict) else None
    return secret if isinstance(secret, str) else ""


def _csrf_protected(request: HttpRequest) -> HttpResponse:
    """What the CSRF check is asked about: a view that is not exempt (the real one is, through `plain_view`)."""
    return HttpResponse()


def _csrf_refused(request: HttpRequest) -> bool:
    """Django's CSRF check, answered in the error envelope instead of its HTML page (see `plain_view`)."""
    checker = CsrfViewMiddleware(_csrf_protected)
    return checker.process_view(request, _csrf_protected, (), {}) is not None


@plain_view("GET")
def demo_pricing(request: HttpRequest) -> HttpResponse:
    project = _demo_project()
    context = {
        "project": project.slug,
        "customer": _visitor(request),
        "checkout_endpoint": reverse("demo-pricing-checkout"),
        "themed": request.GET.get("theme") == "dark",
    }
    return TemplateResponse(request, "demo/pricing.html", context)


@plain_view("POST")
def demo_pricing_checkout(request: HttpRequest) -> JsonResponse:
    _demo_project()
    if _csrf_refused(request):  # it acts for the session's user, as a form of the site would
        return json_error(Forbidden("CSRF verification failed.", code="csrf_failed"))
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return json_error(InvalidRequest("The body must be JSON.", code="invalid_json"))
    price = body.get("price") if isinstance(body, dict) else None
    if not isinstance(price, str) or not price:
        return json_error(InvalidRequest("A price key is required.", code="parameter_missing", param="price"))
    secret = _demo_secret()
    if not secret:
        return json_error(
            ApiError(
                "The demo's project key is not available: run make demo.",
                code="demo_key_missing",
                status_code=503,
            )
        )
    base = request.build_absolute_uri("/").rstrip("/")
    landing = f"{base}{reverse('demo-return')}"
    customer = _visitor(request)
    payload = {
        "customer": customer,
        "price": price,
        "success_url": f"{landing}?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{landing}?customer={customer}&canceled=1",
    }
    status, answer = _tollgate_post(base, "/api/v1/checkout/subscription", payload, secret)
    if status == 201 and isinstance(answer.get("url"), str):
        return JsonResponse({"url": answer["url"]})
    if isinstance(answer.get("error"), dict):
        return JsonResponse(
            answer, status=status
        )  # Tollgate's refusal (409 already_subscribed…), as it said it
    return json_error(ApiError(f"Tollgate answered {status}.", code="tollgate_failed", status_code=502))


def _tollgate_post(base: str, path: str, payload: dict[str, Any], secret: str) -> tuple[int, dict[str, Any]]:
    """What a tenant's backend does: Tollgate's API over HTTP with the project's secret key."""
    request = urllib.request.Request(  # noqa: S310 (our own server's URL)
        f"{base}{path}",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=API_TIMEOUT_SECONDS) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except OSError as exc:
        return 502, ApiError(f"Tollgate did not answer: {exc}", code="tollgate_unreachable").body()
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {}
    return status, answer if isinstance(answer, dict) else {}
