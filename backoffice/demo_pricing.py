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
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from backoffice.demo import DEMO_SLUG
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


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": {"message": message}}, status=status)


@require_GET
def demo_pricing(request: HttpRequest) -> HttpResponse:
    project = _demo_project()
    context = {
        "project": project.slug,
        "customer": _visitor(request),
        "checkout_endpoint": reverse("demo-pricing-checkout"),
        "themed": request.GET.get("theme") == "dark",
    }
    return TemplateResponse(request, "demo/pricing.html", context)


@require_POST  # and CSRF-checked: it acts for the session's user
def demo_pricing_checkout(request: HttpRequest) -> JsonResponse:
    _demo_project()
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _error(400, "The body must be JSON.")
    price = body.get("price") if isinstance(body, dict) else None
    if not isinstance(price, str) or not price:
        return _error(400, "price: a price key is required.")
    secret = _demo_secret()
    if not secret:
        return _error(503, "The demo's project key is not available: run make demo.")
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
    if status != 201 or not isinstance(answer.get("url"), str):
        error = answer.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        return _error(502 if status >= 500 else status, message or f"Tollgate answered {status}.")
    return JsonResponse({"url": answer["url"]})


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
        return 502, {"error": {"message": f"Tollgate did not answer: {exc}"}}
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {}
    return status, answer if isinstance(answer, dict) else {}
