"""The hosted portal's "Change plan": nothing is preselected (the customer picks a plan, a submit without one
changes nothing), and every plan offered states what the customer would pay for it each period — for the
subscription's quantity, tiers and packages included, with the tax where the subscription is taxed."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlencode

import stripe

from stripe_emulator import Emulator

from .billing_fixtures import customer_with_card, recurring_price


def _config(client: stripe.StripeClient, prices: list[stripe.Price]) -> str:
    products = [{"product": price.product, "prices": [price.id]} for price in prices]
    return client.v1.billing_portal.configurations.create(
        {
            "default_return_url": "https://tollgate.example/account",
            "features": {
                "subscription_update": {
                    "enabled": True,
                    "default_allowed_updates": ["price"],
                    "proration_behavior": "create_prorations",
                    "products": products,  # type: ignore[typeddict-item]
                }
            },
        }
    ).id


def _page(emulator: Emulator, session: stripe.billing_portal.Session) -> str:
    return emulator.handle("GET", f"/portal/{session.id}").body.decode()


def _select(page: str) -> str:
    found = re.search(r"<select [^>]*>.*?</select>", page, re.S)
    assert found is not None, page
    return found.group(0)


def _price(client: stripe.StripeClient, name: str, **params: Any) -> stripe.Price:
    return client.v1.prices.create(
        {"currency": "usd", "recurring": {"interval": "month"}, "product_data": {"name": name}, **params}
    )


def test_change_plan_preselects_nothing_and_states_each_plans_amount_for_the_quantity(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, name="Premium")
    team = _price(
        client,
        "Team",
        billing_scheme="tiered",
        tiers_mode="volume",
        tiers=[{"up_to": 2, "unit_amount": 5000}, {"up_to": "inf", "unit_amount": 4000}],
    )
    packs = _price(client, "Packs", unit_amount=10000, transform_quantity={"divide_by": 2, "round": "up"})
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": basic.id, "quantity": 3}]}
    )
    config = _config(client, [basic, premium, team, packs])
    session = client.v1.billing_portal.sessions.create({"customer": customer, "configuration": config})

    select = _select(_page(emulator, session))
    assert " required" in select
    assert select.count(" selected") == 1
    assert '<option value="" selected disabled>Choose a plan</option>' in select
    assert re.findall(r'<option value="([^"]+)">([^<]*)</option>', select) == [
        (premium.id, "Premium — $180.00/month for 3 (3 × $60.00)"),
        (team.id, "Team — $120.00/month for 3 (volume tiers)"),
        (packs.id, "Packs — $200.00/month for 3 ($100.00 per 2)"),
    ]

    # A submit without a choice changes nothing.
    response = emulator.handle(
        "POST",
        f"/portal/{session.id}/subscriptions/{sub.id}/update",
        body=b"",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 303
    assert unquote(response.headers["Location"]).endswith("?message=Choose a plan to switch to.")
    after = client.v1.subscriptions.retrieve(sub.id)["items"].data[0]
    assert (after.price.id, after.quantity) == (basic.id, 3)
    assert [i.id for i in client.v1.invoices.list({"customer": customer}).data] == [sub.latest_invoice]

    # The stated amount is what the switched plan then charges per period.
    response = emulator.handle(
        "POST",
        f"/portal/{session.id}/subscriptions/{sub.id}/update",
        body=urlencode({"price": team.id}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 303
    preview = client.v1.invoices.create_preview({"subscription": sub.id})
    renewal = [
        line.amount for line in preview.lines.data if not line.parent.subscription_item_details.proration
    ]
    assert renewal == [12000]


def test_a_taxed_subscription_sees_each_plan_with_its_tax(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    client.v1.customers.update(customer, {"address": {"country": "DE"}})
    basic = recurring_price(client, 3000, name="Basic")
    premium = _price(client, "Premium", unit_amount=6000, tax_behavior="exclusive")
    client.v1.prices.update(basic.id, {"tax_behavior": "exclusive"})
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": basic.id}], "automatic_tax": {"enabled": True}}
    )
    config = _config(client, [basic, premium])
    session = client.v1.billing_portal.sessions.create({"customer": customer, "configuration": config})
    options = re.findall(r'<option value="([^"]+)">([^<]*)</option>', _select(_page(emulator, session)))
    assert options == [(premium.id, "Premium — $71.40/month incl. tax")]

    emulator.handle(
        "POST",
        f"/portal/{session.id}/subscriptions/{sub.id}/update",
        body=urlencode({"price": premium.id}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    preview = client.v1.invoices.create_preview({"subscription": sub.id})
    renewal = [line for line in preview.lines.data if not line.parent.subscription_item_details.proration]
    assert [(line.amount, sum(t.amount for t in line.taxes or [])) for line in renewal] == [(6000, 1140)]
