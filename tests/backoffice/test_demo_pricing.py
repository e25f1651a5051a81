"""The demo pricing page's backend outside the browser (the browser's side is tests/browser/test_pricing_component.py):
off unless DEMO_PAGES; the page carries no key; the checkout endpoint refuses a request without the page's CSRF
token, a body without a price, and answers 503 when the demo's key is missing — and nothing is created then."""

import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from billing.models import CheckoutSession, Payment
from core.actors import Actor
from customers.models import Customer
from projects.services import projects as project_services

CHECKOUT = "/demo/pricing/checkout"


@pytest.fixture
def demo_project(db, settings, tmp_path):
    settings.DEMO_PAGES = True
    settings.DEMO_CREDENTIALS = str(tmp_path / "demo-credentials.json")
    project, _, secret = project_services.project_create(
        actor=Actor.system("test"), slug="demo", name="Demo project", allowed_redirect_hosts=["testserver"]
    )
    Path(settings.DEMO_CREDENTIALS).write_text(json.dumps({"api_key": secret}))
    return {"project": project, "secret": secret}


def _nothing_created() -> tuple[int, int, int]:
    return (CheckoutSession.objects.count(), Payment.objects.count(), Customer.objects.count())


def _page_and_token(client: Client) -> tuple[str, str]:
    page = client.get("/demo/pricing")
    assert page.status_code == 200
    html = page.content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert token
    return html, token.group(1)


def test_the_pages_are_off_unless_demo_pages_are_on(demo_project, settings):
    settings.DEMO_PAGES = False
    client = Client()
    assert (client.get("/demo/pricing").status_code, client.post(CHECKOUT, {}).status_code) == (404, 404)


def test_the_page_embeds_the_component_for_the_session_customer_and_no_key(demo_project):
    client = Client()
    html, _ = _page_and_token(client)
    customer = client.session["demo_pricing_customer"]
    assert re.fullmatch(r"demo-visitor-[a-z0-9]{10}", customer)
    assert (
        '<script type="module" src="/static/tollgate/pricing.js"></script>' in html
    )  # DEBUG-less test storage
    assert 'project="demo" checkout-endpoint="/demo/pricing/checkout"' in html
    assert f'<code data-field="customer">{customer}</code>' in html
    assert (demo_project["secret"] in html, "tg_sk_" in html) == (False, False)
    # The same customer on the next visit of the same session.
    _page_and_token(client)
    assert client.session["demo_pricing_customer"] == customer


def test_production_serves_the_component_to_any_origin(demo_project, tmp_path):
    """Tenants load the module from their own site: a module script is fetched with CORS, so the collected file
    must carry `Access-Control-Allow-Origin` (WhiteNoise's default), under its plain name and its hashed one."""
    production = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=str(tmp_path / "static"), STORAGES=production, DEBUG=False):
        call_command("collectstatic", "--noinput", verbosity=0)
        hashed = re.search(
            r'src="(/static/tollgate/pricing\.[0-9a-f]{12}\.js)"', _page_and_token(Client())[0]
        )
        assert hashed
        client = Client()
        for path in ("/static/tollgate/pricing.js", hashed.group(1)):
            response = client.get(path, headers={"Origin": "https://app.example.com"})
            body = b"".join(response.streaming_content)
            assert (
                response.status_code,
                response["Content-Type"].split(";")[0],
                response["Access-Control-Allow-Origin"],
            ) == (200, "text/javascript", "*")
            assert b'customElements.define("tollgate-pricing", TollgatePricing)' in body


def test_a_checkout_without_the_csrf_token_is_refused_and_creates_nothing(demo_project):
    client = Client(enforce_csrf_checks=True)
    _page_and_token(client)
    response = client.post(CHECKOUT, json.dumps({"price": "pro-monthly"}), content_type="application/json")
    assert (response.status_code, response.json()) == (
        403,
        {
            "error": {
                "type": "permission_error",
                "code": "csrf_failed",
                "message": "CSRF verification failed.",
                "param": None,
            }
        },
    )
    assert _nothing_created() == (0, 0, 0)


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ("not json", 400, "invalid_json", None),
        (json.dumps({"quantity": 2}), 400, "parameter_missing", "price"),
        (json.dumps(["pro-monthly"]), 400, "parameter_missing", "price"),
    ],
)
def test_a_checkout_body_without_a_price_is_refused_and_creates_nothing(
    demo_project, body, status, code, param
):
    client = Client(enforce_csrf_checks=True)
    _, token = _page_and_token(client)
    response = client.post(CHECKOUT, body, content_type="application/json", headers={"X-CSRFToken": token})
    assert (response.status_code, response.json()["error"]["code"], response.json()["error"]["param"]) == (
        status,
        code,
        param,
    )
    assert _nothing_created() == (0, 0, 0)


def test_without_the_demo_key_the_backend_says_so_and_creates_nothing(demo_project, settings, tmp_path):
    settings.DEMO_CREDENTIALS = str(tmp_path / "missing.json")
    client = Client(enforce_csrf_checks=True)
    _, token = _page_and_token(client)
    response = client.post(
        CHECKOUT,
        json.dumps({"price": "pro-monthly"}),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert (response.status_code, response.json()["error"]["code"]) == (503, "demo_key_missing")
    assert _nothing_created() == (0, 0, 0)
