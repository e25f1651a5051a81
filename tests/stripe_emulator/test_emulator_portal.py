"""Customer portal: configurations, sessions, and the hosted page with its form posts, over the real HTTP
server."""

from __future__ import annotations

import http.client
from urllib.parse import urlencode, urlsplit

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer

from .billing_fixtures import customer_with_card, recurring_price, subscribe


def _get(url: str) -> tuple[int, str, dict[str, str]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=5)
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, body, dict(response.getheaders())


def _post(base: str, path: str, form: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection(urlsplit(base).netloc, timeout=5)
    conn.request(
        "POST",
        path,
        body=urlencode(form or {}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, dict(response.getheaders())


def _config(
    client: stripe.StripeClient, prices: list[str], product: str, mode: str = "at_period_end"
) -> stripe.billing_portal.Configuration:
    return client.v1.billing_portal.configurations.create(
        {
            "business_profile": {"headline": "Tollgate <billing>"},
            "default_return_url": "https://tollgate.example/account?a=1&b=2",
            "features": {
                "invoice_history": {"enabled": True},
                "payment_method_update": {"enabled": True},
                "subscription_cancel": {"enabled": True, "mode": mode},
                "subscription_update": {
                    "enabled": True,
                    "default_allowed_updates": ["price"],
                    "proration_behavior": "always_invoice",
                    "products": [{"product": product, "prices": prices}],
                },
            },
        }
    )


def test_configuration_crud(client: stripe.StripeClient) -> None:
    basic = recurring_price(client, 3000, name="Basic")
    first = _config(client, [basic.id], basic.product)
    assert first.is_default
    assert first.features.subscription_update.products[0].prices == [basic.id]
    assert first.features.subscription_cancel.mode == "at_period_end"
    second = client.v1.billing_portal.configurations.create(
        {"features": {"invoice_history": {"enabled": True}}}
    )
    assert not second.is_default
    updated = client.v1.billing_portal.configurations.update(
        second.id,
        {
            "features": {"subscription_cancel": {"enabled": True, "mode": "immediately"}},
            "business_profile": {"headline": "Hi"},
        },
    )
    assert updated.features.subscription_cancel.mode == "immediately"
    assert updated.features.invoice_history.enabled
    assert updated.business_profile.headline == "Hi"
    assert client.v1.billing_portal.configurations.retrieve(second.id).features.subscription_cancel.enabled
    assert [c.id for c in client.v1.billing_portal.configurations.list({"is_default": True}).data] == [
        first.id
    ]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing_portal.configurations.create(
            {
                "features": {
                    "subscription_update": {
                        "enabled": True,
                        "products": [{"product": "prod_nope", "prices": []}],
                    }
                }
            }
        )


def test_session_without_configuration_gets_a_default(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    session = client.v1.billing_portal.sessions.create(
        {"customer": customer, "return_url": "https://example.com"}
    )
    assert session.url.endswith(f"/portal/{session.id}")
    assert session.return_url == "https://example.com"
    config = client.v1.billing_portal.configurations.retrieve(session.configuration)
    assert config.is_default
    assert config.features.subscription_cancel.enabled
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing_portal.sessions.create(
            {"customer": "cus_missing", "return_url": "https://example.com"}
        )


def test_hosted_portal_switch_cancel_and_renew(
    http_emulator: tuple[Emulator, EmulatorServer], http_client: stripe.StripeClient
) -> None:
    _, server = http_emulator
    client = http_client
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, product=basic.product)
    sub = subscribe(client, customer, basic.id)
    config = _config(client, [basic.id, premium.id], basic.product)
    session = client.v1.billing_portal.sessions.create({"customer": customer, "configuration": config.id})
    assert session.url == f"{server.url}/portal/{session.id}"
    assert session.return_url == "https://tollgate.example/account?a=1&b=2"

    status, page, headers = _get(session.url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "Tollgate &lt;billing&gt;" in page
    assert "<billing>" not in page
    assert "Cancel at period end" in page
    assert f'value="{premium.id}"' in page
    assert "active" in page
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.hosted_invoice_url in page
    assert invoice.number in page
    assert 'href="https://tollgate.example/account?a=1&amp;b=2"' in page

    base = f"/portal/{session.id}/subscriptions/{sub.id}"
    status, headers = _post(server.url, f"{base}/update", {"price": premium.id})
    assert status == 303
    assert headers["Location"].startswith(f"/portal/{session.id}")
    switched = client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert switched["items"].data[0].price.id == premium.id
    assert switched.latest_invoice.billing_reason == "subscription_update"  # always_invoice from the config

    status, _ = _post(server.url, f"{base}/update", {"price": "price_not_allowed"})
    assert status == 303
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id == premium.id

    status, _ = _post(server.url, f"{base}/cancel")
    assert status == 303
    assert client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is True
    _, page, _ = _get(session.url)
    assert "Renew subscription" in page
    assert "Cancels on" in page

    status, _ = _post(server.url, f"{base}/renew")
    assert status == 303
    assert client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is False
    types = [e.type for e in client.v1.events.list({"type": "customer.subscription.*", "limit": 20}).data]
    assert types.count("customer.subscription.updated") >= 3
    assert _get(f"{server.url}/portal/bps_missing")[0] == 404


def test_hosted_portal_cancel_immediately(
    http_emulator: tuple[Emulator, EmulatorServer], http_client: stripe.StripeClient
) -> None:
    _, server = http_emulator
    client = http_client
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    sub = subscribe(client, customer, basic.id)
    config = _config(client, [basic.id], basic.product, mode="immediately")
    session = client.v1.billing_portal.sessions.create({"customer": customer, "configuration": config.id})
    _, page, _ = _get(session.url)
    assert "Cancel immediately" in page
    status, _ = _post(server.url, f"/portal/{session.id}/subscriptions/{sub.id}/cancel")
    assert status == 303
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    deleted = client.v1.events.list({"type": "customer.subscription.deleted"}).data
    assert [e.data.object.id for e in deleted] == [sub.id]
    other, _ = customer_with_card(client, email="other@example.com")
    theirs = subscribe(client, other, basic.id)
    assert _post(server.url, f"/portal/{session.id}/subscriptions/{theirs.id}/cancel")[0] == 404
    assert client.v1.subscriptions.retrieve(theirs.id).status == "active"
