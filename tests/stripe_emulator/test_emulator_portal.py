"""Customer portal: configurations, sessions, and the hosted page with its form posts, over the real HTTP
server."""

from __future__ import annotations

import http.client
import re
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import stripe
from stripe.billing_portal import Configuration

from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer

from .billing_fixtures import customer_with_card, events, item_period, plain, recurring_price, subscribe
from .conftest import FakeClock


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


def _portal_post(emulator: Emulator, path: str, form: dict[str, str]) -> int:
    """A form post of the hosted portal page, in process (no API key: the session id is the capability)."""
    response = emulator.handle(
        "POST",
        path,
        body=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return response.status


def test_a_plan_switch_in_the_portal_keeps_the_quantity(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    """3 seats of Basic (3000 each) switched to Premium (6000 each) half-way through the month, invoiced at
    once (`always_invoice`): 3 seats stay 3 seats, the unused 3 × 3000 is credited for half the period and the
    remaining 3 × 6000 charged for it."""
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, product=basic.product)
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": basic.id, "quantity": 3}]}
    )
    start, end = item_period(sub)
    config = _config(client, [basic.id, premium.id], basic.product)
    session = client.v1.billing_portal.sessions.create({"customer": customer, "configuration": config.id})
    clock.now = start + (end - start) / 2

    status = _portal_post(
        emulator, f"/portal/{session.id}/subscriptions/{sub.id}/update", {"price": premium.id}
    )

    assert status == 303
    switched = client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    item = switched["items"].data[0]
    assert (item.id, item.price.id, item.quantity) == (sub["items"].data[0].id, premium.id, 3)
    assert item_period(switched) == (start, end)
    invoice = switched.latest_invoice
    assert invoice.billing_reason == "subscription_update"
    assert sorted((line.amount, line.quantity) for line in invoice.lines.data) == [(-4500, 3), (9000, 3)]
    assert (invoice.total, invoice.amount_paid, invoice.status) == (4500, 4500, "paid")
    updated = events(client, "customer.subscription.updated")[-1]
    assert updated.data.object["items"]["data"][0]["quantity"] == 3


def test_a_portal_switch_to_a_metered_price_sends_no_quantity(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    meter = client.v1.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": "api_calls",
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    )
    usage = recurring_price(client, 3, product=basic.product, meter=meter.id)
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": basic.id, "quantity": 2}]}
    )
    config = _config(client, [basic.id, usage.id], basic.product)
    session = client.v1.billing_portal.sessions.create({"customer": customer, "configuration": config.id})
    path = f"/portal/{session.id}/subscriptions/{sub.id}/update"
    assert _portal_post(emulator, path, {"price": usage.id}) == 303
    item = client.v1.subscriptions.retrieve(sub.id)["items"].data[0]
    assert (item.price.id, item.quantity) == (usage.id, None)


PAUSE_DEFAULT = {
    "duration": {
        "interval_options": [{"interval": "month", "interval_count": 1}],
        "type": "interval_options",
    },
    "enabled": False,
}


def test_subscription_pause_feature_shape_create_and_update(client: stripe.StripeClient) -> None:
    default = client.v1.billing_portal.configurations.create(
        {"features": {"invoice_history": {"enabled": True}}}
    )
    assert plain(default.features.subscription_pause) == PAUSE_DEFAULT
    assert isinstance(default.features.subscription_pause, Configuration.Features.SubscriptionPause)

    options = client.v1.billing_portal.configurations.create(
        {
            "features": {
                "subscription_pause": {
                    "enabled": True,
                    "duration": {
                        "type": "interval_options",
                        "interval_options": [
                            {"interval": "week", "interval_count": 2},
                            {"interval": "month"},
                        ],
                    },
                }
            }
        }
    )
    assert plain(options.features.subscription_pause) == {
        "duration": {
            "interval_options": [
                {"interval": "week", "interval_count": 2},
                {"interval": "month", "interval_count": 1},
            ],
            "type": "interval_options",
        },
        "enabled": True,
    }
    indefinite = client.v1.billing_portal.configurations.update(
        options.id, {"features": {"subscription_pause": {"duration": {"type": "indefinite"}}}}
    )
    assert plain(indefinite.features.subscription_pause) == {
        "duration": {"interval_options": [], "type": "indefinite"},
        "enabled": True,
    }
    off = client.v1.billing_portal.configurations.update(
        options.id, {"features": {"subscription_pause": {"enabled": False}}}
    )
    assert plain(off.features.subscription_pause) == {
        "duration": {"interval_options": [], "type": "indefinite"},
        "enabled": False,
    }
    updated = events(client, "billing_portal.configuration.updated")
    assert plain(updated[-1].data.previous_attributes) == {
        "features": {"subscription_pause": {"enabled": True}}
    }


@pytest.mark.parametrize(
    ("pause", "param", "message"),
    [
        (
            {"duration": {"type": "interval_options"}},
            "features[subscription_pause][duration][interval_options]",
            "Missing required param: features[subscription_pause][duration][interval_options].",
        ),
        (
            {"duration": {"interval_options": [{"interval": "month"}]}},
            "features[subscription_pause][duration][type]",
            "Missing required param: features[subscription_pause][duration][type].",
        ),
        (
            {"duration": {"type": "indefinite", "interval_options": [{"interval": "month"}]}},
            "features[subscription_pause][duration][interval_options]",
            "interval_options can only be set when the duration type is `interval_options`.",
        ),
        (
            {
                "duration": {
                    "type": "interval_options",
                    "interval_options": [{"interval": "month", "interval_count": 37}],
                }
            },
            "features[subscription_pause][duration][interval_options][0][interval_count]",
            "The maximum pause duration is three years.",
        ),
        (
            {"duration": {"type": "interval_options", "interval_options": [{"interval": "fortnight"}]}},
            "features[subscription_pause][duration][interval_options][0][interval]",
            "Invalid interval: must be one of day, week, month, or year",
        ),
        (
            {"paused": True},
            "features[subscription_pause][paused]",
            "Received unknown parameter: features[subscription_pause][paused]",
        ),
    ],
)
def test_subscription_pause_refusals(
    client: stripe.StripeClient, pause: dict[str, Any], param: str, message: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.billing_portal.configurations.create({"features": {"subscription_pause": pause}})  # type: ignore[typeddict-item]
    assert (refused.value.http_status, refused.value.param, refused.value.user_message) == (
        400,
        param,
        message,
    )
    assert client.v1.billing_portal.configurations.list().data == []


def test_the_portal_offers_only_plans_with_a_price_the_subscription_can_take(
    http_emulator: tuple[Emulator, EmulatorServer], http_client: stripe.StripeClient
) -> None:
    """A configured plan whose product was archived, or whose price is one-time, or only in another currency,
    has no price for the subscription: it is neither listed nor accepted by the switch."""
    client = http_client
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, name="Premium")
    retired = recurring_price(client, 9000, name="Retired")
    client.v1.products.update(retired.product, {"active": False})
    once = client.v1.prices.create({"currency": "usd", "unit_amount": 500, "product_data": {"name": "Pack"}})
    euros = client.v1.prices.create(
        {
            "currency": "eur",
            "unit_amount": 2500,
            "recurring": {"interval": "month"},
            "product_data": {"name": "EU"},
        }
    )
    sub = subscribe(client, customer, basic.id)
    products = [
        {"product": price.product, "prices": [price.id]} for price in (basic, premium, retired, once, euros)
    ]
    config = client.v1.billing_portal.configurations.create(
        {
            "default_return_url": "https://tollgate.example/account",
            "features": {
                "subscription_update": {
                    "enabled": True,
                    "default_allowed_updates": ["price"],
                    "proration_behavior": "create_prorations",
                    "products": products,
                }
            },
        }
    )
    session = client.v1.billing_portal.sessions.create(
        {"customer": customer, "configuration": config.id, "return_url": "https://example.com"}
    )
    _, page, _ = _get(session.url)
    offered = re.findall(r'<option value="([^"]+)">([^<]*)</option>', page)
    assert offered == [(premium.id, "Premium — $60.00/month")]

    status, headers = _post(
        session.url.rsplit("/portal/", 1)[0],
        f"/portal/{session.id}/subscriptions/{sub.id}/update",
        {"price": retired.id},
    )
    assert status == 303
    assert "not%20available" in headers["Location"]
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id == basic.id


def test_a_downgrade_in_the_portal_is_scheduled_for_the_period_end(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    """With `schedule_at_period_end[conditions][][type]=decreasing_item_amount`, Premium → Basic in the portal
    changes nothing now: a schedule holds Basic (the quantity kept) from the period's end, when the clock moves
    the subscription to it. An upgrade still applies at once."""
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, product=basic.product)
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": premium.id, "quantity": 2}]}
    )
    start, end = item_period(sub)
    config = client.v1.billing_portal.configurations.create(
        {
            "default_return_url": "https://tollgate.example/account",
            "features": {
                "subscription_update": {
                    "enabled": True,
                    "default_allowed_updates": ["price"],
                    "proration_behavior": "create_prorations",
                    "products": [{"product": basic.product, "prices": [basic.id, premium.id]}],
                    "schedule_at_period_end": {"conditions": [{"type": "decreasing_item_amount"}]},
                },
            },
        }
    )
    assert plain(config.features.subscription_update.schedule_at_period_end) == {
        "conditions": [{"type": "decreasing_item_amount"}]
    }
    session = client.v1.billing_portal.sessions.create({"customer": customer, "configuration": config.id})
    clock.now = start + (end - start) / 2

    status = _portal_post(
        emulator, f"/portal/{session.id}/subscriptions/{sub.id}/update", {"price": basic.id}
    )

    assert status == 303
    live = client.v1.subscriptions.retrieve(sub.id)
    assert [(i.price.id, i.quantity) for i in live["items"].data] == [(premium.id, 2)]
    assert live.latest_invoice == sub.latest_invoice
    schedule = client.v1.subscription_schedules.retrieve(live.schedule)
    assert [(p.start_date, [(i.price, i.quantity) for i in p["items"]]) for p in schedule.phases] == [
        (start, [(premium.id, 2)]),
        (end, [(basic.id, 2)]),
    ]
    clock.now = float(end + 60)
    emulator.advance(0)
    moved = client.v1.subscriptions.retrieve(sub.id)
    assert [(i.price.id, i.quantity) for i in moved["items"].data] == [(basic.id, 2)]
    assert client.v1.invoices.retrieve(moved.latest_invoice).amount_paid == 6000
