"""The demo's return page outside the browser: off unless DEMO_PAGES, 404 for what is not a demo checkout, and
the cancel URL `make demo` prints says the checkout was canceled and nothing was charged."""

import pytest
from django.test import Client

from billing.models import Payment
from tests.e2e.test_subscription_lifecycle import _complete

CANCEL = "/demo/return?customer=demo-user-1&canceled=1"


@pytest.fixture
def checkout(api, seed_demo):
    demo = seed_demo()
    created = api.post(
        "/api/v1/checkout/subscription",
        {
            "customer": "demo-user-1",
            "price": "pro-monthly",
            "success_url": "http://127.0.0.1:8000/demo/return?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": f"http://127.0.0.1:8000{CANCEL}",
        },
        key=demo["api_key"],
    )
    assert created.status_code == 201, created.content
    return created.json()


def test_the_page_is_off_unless_demo_pages_are_on(settings, checkout):
    settings.DEMO_PAGES = False
    assert Client().get(CANCEL).status_code == 404


def test_the_cancel_url_says_nothing_was_charged(settings, checkout):
    settings.DEMO_PAGES = True
    page = Client().get(CANCEL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-outcome="canceled">Checkout canceled: nothing was charged.' in html
    assert f"<code>{checkout['payment']}</code>" in html
    assert 'data-field="payment-status">pending<' in html
    assert 'http-equiv="refresh"' not in html
    assert Payment.objects.get().status == "pending"


def test_what_is_not_a_demo_checkout_is_not_found(settings, checkout):
    settings.DEMO_PAGES = True
    client = Client()
    assert client.get("/demo/return?session_id=cs_test_unknown").status_code == 404
    assert client.get("/demo/return?customer=nobody").status_code == 404
    assert client.get("/demo/return").status_code == 404


def test_a_paid_checkout_is_not_called_canceled(settings, checkout, stripe_emulator):
    settings.DEMO_PAGES = True
    _complete(stripe_emulator, checkout["stripe_session_id"])
    html = Client().get(CANCEL).content.decode()
    assert "Checkout canceled" not in html
    assert 'data-field="payment-status">succeeded<' in html
    assert 'data-field="checkout-status">complete<' in html
    # Stripe's webhook has not come (nothing delivers it here): the page says so and reloads.
    assert 'data-outcome="waiting"' in html
    assert 'http-equiv="refresh" content="2"' in html


def test_a_subscription_of_two_items_names_each(settings, api, seed_demo, stripe_emulator, stripe_webhooks):
    settings.DEMO_PAGES = True
    demo = seed_demo()
    created = api.post(
        "/api/v1/checkout/subscription",
        {
            "customer": "demo-user-2",
            "items": [{"price": "pro-monthly", "quantity": 1}, {"price": "pro-seats-monthly", "quantity": 3}],
            "success_url": "http://127.0.0.1:8000/demo/return?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://127.0.0.1:8000/demo/return?customer=demo-user-2&canceled=1",
        },
        key=demo["api_key"],
    )
    assert created.status_code == 201, created.content
    _complete(stripe_emulator, created.json()["stripe_session_id"])
    stripe_webhooks.deliver()

    html = Client().get(f"/demo/return?session_id={created.json()['stripe_session_id']}").content.decode()

    plan = html[html.index("<tr><th>Plan</th>") : html.index("<tr><th>Current period</th>")]
    assert plan == (
        "<tr><th>Plan</th><td>"
        "Professional — <code>pro-monthly</code>, $49.00 per month<br>"
        "Professional — <code>pro-seats-monthly</code>, graduated tiers per month × 3"
        "</td></tr>\n      "
    )
