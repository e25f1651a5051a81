"""Coupons, promotion codes and discounts: created and refused as Stripe does, redeemed (times_redeemed,
max_redemptions, expiry), and applied to Checkout Sessions, subscriptions and the invoices they produce —
``once`` only on the first invoice, ``repeating`` for N months, ``forever`` always, ``applies_to`` per
product."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator

from .billing_fixtures import DAY, customer_with_card, plain, recurring_price
from .conftest import FakeClock
from .payments_fixtures import control


def _coupon(client: stripe.StripeClient, **params: Any) -> stripe.Coupon:
    created: Any = params
    return client.v1.coupons.create(created)


def _promo(client: stripe.StripeClient, coupon: str, **params: Any) -> stripe.PromotionCode:
    created: Any = {"promotion": {"type": "coupon", "coupon": coupon}, **params}
    return client.v1.promotion_codes.create(created)


def test_coupon_create_retrieve_update_list_delete(client: stripe.StripeClient) -> None:
    product = client.v1.products.create({"name": "Pro"})
    coupon = _coupon(
        client,
        id="SPRING",
        percent_off=12.5,
        duration="repeating",
        duration_in_months=3,
        max_redemptions=5,
        name="Spring",
        applies_to={"products": [product.id]},
        metadata={"team": "growth"},
    )
    shown = plain(coupon)
    assert {k: shown[k] for k in ("id", "object", "percent_off", "amount_off", "currency", "duration")} == {
        "id": "SPRING",
        "object": "coupon",
        "percent_off": 12.5,
        "amount_off": None,
        "currency": None,
        "duration": "repeating",
    }
    assert (shown["duration_in_months"], shown["max_redemptions"], shown["times_redeemed"]) == (3, 5, 0)
    assert (shown["valid"], shown["applies_to"], shown["metadata"]) == (
        True,
        {"products": [product.id]},
        {"team": "growth"},
    )
    assert plain(client.v1.coupons.retrieve("SPRING")) == shown
    updated = client.v1.coupons.update("SPRING", {"name": "Spring sale", "metadata": {"team": ""}})
    assert (updated.name, plain(updated)["metadata"]) == ("Spring sale", {})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.coupons.update("SPRING", {"percent_off": 50})  # type: ignore[arg-type]
    assert caught.value.param == "percent_off"
    fixed = _coupon(client, amount_off=500, currency="usd", duration="forever")
    assert [c.id for c in client.v1.coupons.list().data] == [fixed.id, "SPRING"]
    deleted = client.v1.coupons.delete("SPRING")
    assert (deleted.id, deleted.deleted) == ("SPRING", True)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.coupons.retrieve("SPRING")
    assert missing.value.http_status == 404
    assert [c.id for c in client.v1.coupons.list().data] == [fixed.id]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"percent_off": 10, "amount_off": 100, "currency": "usd"}, "percent_off"),
        ({}, "percent_off"),
        ({"percent_off": 120}, "percent_off"),
        ({"percent_off": 0}, "percent_off"),
        ({"amount_off": 100}, "currency"),
        ({"percent_off": 10, "duration": "repeating"}, "duration_in_months"),
        ({"percent_off": 10, "duration": "once", "duration_in_months": 3}, "duration_in_months"),
        ({"percent_off": 10, "duration": "weekly"}, "duration"),
        ({"percent_off": 10, "redeem_by": 1}, "redeem_by"),
        ({"percent_off": 10, "max_redemptions": 0}, "max_redemptions"),
        ({"percent_off": 10, "applies_to": {"products": ["prod_missing"]}}, "applies_to[products][0]"),
    ],
)
def test_invalid_coupons_are_refused_and_nothing_is_created(
    client: stripe.StripeClient, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.coupons.create(params)  # type: ignore[arg-type]
    assert caught.value.param == param
    assert client.v1.coupons.list().data == []


def test_a_coupon_id_is_unique(client: stripe.StripeClient) -> None:
    _coupon(client, id="ONCE", percent_off=10)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        _coupon(client, id="ONCE", percent_off=20)
    assert (caught.value.code, caught.value.param) == ("resource_already_exists", "id")
    assert [c.percent_off for c in client.v1.coupons.list().data] == [10]


def test_promotion_code_create_list_update(client: stripe.StripeClient, clock: FakeClock) -> None:
    coupon = _coupon(client, percent_off=20, max_redemptions=10)
    promo = _promo(
        client,
        coupon.id,
        code="SAVE20",
        max_redemptions=3,
        expires_at=int(clock.now) + 10 * DAY,
        restrictions={"first_time_transaction": True},
    )
    shown = plain(promo)
    assert shown["id"].startswith("promo_")
    assert (shown["code"], shown["active"], shown["promotion"]) == (
        "SAVE20",
        True,
        {"coupon": coupon.id, "type": "coupon"},
    )
    assert (shown["max_redemptions"], shown["times_redeemed"], shown["customer"]) == (3, 0, None)
    assert shown["restrictions"]["first_time_transaction"] is True
    other = _promo(client, coupon.id)
    assert len(other.code) == 8
    assert [p.id for p in client.v1.promotion_codes.list({"code": "save20"}).data] == [promo.id]
    assert [p.id for p in client.v1.promotion_codes.list({"coupon": coupon.id}).data] == [other.id, promo.id]
    off = client.v1.promotion_codes.update(promo.id, {"active": False})
    assert off.active is False
    assert [p.id for p in client.v1.promotion_codes.list({"active": True}).data] == [other.id]
    # An inactive code frees its code for another active one; the old one cannot come back then.
    again = _promo(client, coupon.id, code="SAVE20")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.promotion_codes.update(promo.id, {"active": True})
    assert client.v1.promotion_codes.retrieve(again.id).active is True


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"code": "SAVE20"}, "code"),
        ({"code": "has space"}, "code"),
        ({"max_redemptions": 11}, "max_redemptions"),
        ({"expires_at": 1}, "expires_at"),
        ({"customer": "cus_missing"}, "customer"),
    ],
)
def test_invalid_promotion_codes_are_refused(
    client: stripe.StripeClient, params: dict[str, Any], param: str
) -> None:
    coupon = _coupon(client, percent_off=20, max_redemptions=10)
    _promo(client, coupon.id, code="SAVE20")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        _promo(client, coupon.id, **params)
    assert caught.value.param == param
    assert len(client.v1.promotion_codes.list().data) == 1


def test_promotion_code_needs_an_existing_coupon(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        _promo(client, "NOPE")
    assert (caught.value.http_status, caught.value.param) == (404, "promotion[coupon]")
    assert client.v1.promotion_codes.list().data == []


def test_a_once_coupon_discounts_only_the_first_invoice(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    price = recurring_price(client, 2000)
    coupon = _coupon(client, percent_off=25, duration="once")
    promo = _promo(client, coupon.id, code="WELCOME")
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": price.id}], "discounts": [{"promotion_code": promo.id}]}
    )
    assert sub.status == "active"
    [discount_id] = plain(sub)["discounts"]
    discount = plain(client.v1.subscriptions.retrieve(sub.id, {"expand": ["discounts"]}))["discounts"][0]
    assert discount["id"] == discount_id
    assert (discount["source"], discount["promotion_code"], discount["end"]) == (
        {"coupon": coupon.id, "type": "coupon"},
        promo.id,
        None,
    )
    first = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert (first.subtotal, first.total, first.amount_due, first.amount_paid) == (2000, 1500, 1500, 1500)
    assert plain(first)["discounts"] == [discount_id]
    assert plain(first)["total_discount_amounts"] == [{"amount": 500, "discount": discount_id}]
    [line] = client.v1.invoices.line_items.list(first.id).data
    assert (line.amount, plain(line)["discount_amounts"]) == (
        2000,
        [{"amount": 500, "discount": discount_id}],
    )
    assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 1
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 1

    emulator.advance(32 * DAY)
    renewal = client.v1.invoices.list({"subscription": sub.id}).data[0]
    assert renewal.id != first.id
    assert (renewal.subtotal, renewal.total, renewal.amount_paid) == (2000, 2000, 2000)
    assert plain(renewal)["total_discount_amounts"] == []
    assert plain(client.v1.subscriptions.retrieve(sub.id))["discounts"] == []


def test_a_repeating_coupon_discounts_its_months_and_forever_always(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    price = recurring_price(client, 1000)
    repeating = _coupon(client, amount_off=300, currency="usd", duration="repeating", duration_in_months=2)
    forever = _coupon(client, percent_off=10, duration="forever")
    sub = client.v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": price.id}],
            "discounts": [{"coupon": repeating.id}, {"coupon": forever.id}],
        }
    )
    totals = [client.v1.invoices.retrieve(str(sub.latest_invoice)).total]
    for _ in range(3):
        emulator.advance(31 * DAY)
        totals.append(client.v1.invoices.list({"subscription": sub.id}).data[0].total)
    # 1000 - 300 = 700, then 10 % of 700 = 70 → 630 for two months; then 10 % of 1000 → 900.
    assert totals == [630, 630, 900, 900]
    assert plain(client.v1.subscriptions.retrieve(sub.id))["discounts"] == [plain(sub)["discounts"][1]]


def test_applies_to_limits_the_discount_to_the_products_lines(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    base = recurring_price(client, 3000, name="Base")
    addon = recurring_price(client, 1001, name="Add-on")
    coupon = _coupon(client, percent_off=50, duration="forever", applies_to={"products": [addon.product]})
    sub = client.v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": base.id}, {"price": addon.id}],
            "discounts": [{"coupon": coupon.id}],
        }
    )
    invoice = client.v1.invoices.retrieve(str(sub.latest_invoice))
    # 50 % of 1001 = 500.5, rounded half up per line → 501.
    assert (invoice.subtotal, invoice.total) == (4001, 3500)
    lines = client.v1.invoices.line_items.list(invoice.id).data
    amounts = {line.amount: [a["amount"] for a in plain(line)["discount_amounts"]] for line in lines}
    assert amounts == {3000: [0], 1001: [501]}


def test_max_redemptions_and_expiry_are_refused_with_nothing_created(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    price = recurring_price(client, 1000)
    coupon = _coupon(client, percent_off=10, duration="forever", max_redemptions=1)
    first, _ = customer_with_card(client)
    client.v1.subscriptions.create(
        {"customer": first, "items": [{"price": price.id}], "discounts": [{"coupon": coupon.id}]}
    )
    assert plain(client.v1.coupons.retrieve(coupon.id))["valid"] is False
    second, _ = customer_with_card(client, email="b@example.com")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscriptions.create(
            {"customer": second, "items": [{"price": price.id}], "discounts": [{"coupon": coupon.id}]}
        )
    assert (caught.value.code, caught.value.param) == ("coupon_expired", "discounts[0][coupon]")
    assert client.v1.subscriptions.list({"customer": second}).data == []

    other = _coupon(client, percent_off=10)
    promo = _promo(client, other.id, code="SOON", expires_at=int(clock.now) + DAY)
    clock.now += 2 * DAY
    with pytest.raises(stripe.InvalidRequestError) as expired:
        client.v1.subscriptions.create(
            {"customer": second, "items": [{"price": price.id}], "discounts": [{"promotion_code": promo.id}]}
        )
    assert expired.value.param == "discounts[0][promotion_code]"
    assert client.v1.subscriptions.list({"customer": second}).data == []
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 0


def test_subscription_update_applies_and_clears_discounts(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    price = recurring_price(client, 2000)
    sub = client.v1.subscriptions.create({"customer": customer, "items": [{"price": price.id}]})
    coupon = _coupon(client, amount_off=500, currency="usd", duration="forever")
    updated = client.v1.subscriptions.update(sub.id, {"discounts": [{"coupon": coupon.id}]})
    assert len(plain(updated)["discounts"]) == 1
    # The same coupon again keeps the discount (no second redemption).
    again = client.v1.subscriptions.update(sub.id, {"discounts": [{"coupon": coupon.id}]})
    assert plain(again)["discounts"] == plain(updated)["discounts"]
    assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 1
    emulator.advance(32 * DAY)
    assert client.v1.invoices.list({"subscription": sub.id}).data[0].total == 1500
    cleared = client.v1.subscriptions.update(sub.id, {"discounts": ""})
    assert plain(cleared)["discounts"] == []


def test_a_refused_subscription_update_redeems_nothing_and_names_the_entry(
    client: stripe.StripeClient,
) -> None:
    customer, _ = customer_with_card(client)
    price = recurring_price(client, 2000)
    sub = client.v1.subscriptions.create({"customer": customer, "items": [{"price": price.id}]})
    kept = _coupon(client, percent_off=10, duration="forever")
    client.v1.subscriptions.update(sub.id, {"discounts": [{"coupon": kept.id}]})

    # The discount it holds is kept; the error names the request's second entry, not the first new one.
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.subscriptions.update(sub.id, {"discounts": [{"coupon": kept.id}, {"coupon": "nope"}]})
    assert missing.value.param == "discounts[1][coupon]"

    fresh = _coupon(client, amount_off=100, currency="usd", duration="once")
    client.v1.subscriptions.cancel(sub.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub.id, {"discounts": [{"coupon": fresh.id}]})
    assert client.v1.coupons.retrieve(fresh.id).times_redeemed == 0
    assert client.v1.coupons.retrieve(kept.id).times_redeemed == 1


def test_checkout_subscription_with_a_promotion_code(client: stripe.StripeClient, emulator: Emulator) -> None:
    price = recurring_price(client, 2000)
    coupon = _coupon(client, percent_off=50, duration="once")
    promo = _promo(client, coupon.id, code="HALF")
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://example.com/ok",
            "discounts": [{"promotion_code": promo.id}],
        }
    )
    shown = plain(session)
    assert (shown["amount_subtotal"], shown["amount_total"]) == (2000, 1000)
    assert shown["total_details"]["amount_discount"] == 1000
    assert shown["discounts"] == [{"coupon": None, "promotion_code": promo.id}]
    [item] = client.v1.checkout.sessions.line_items.list(session.id).data
    assert (item.amount_subtotal, item.amount_discount, item.amount_total) == (2000, 1000, 1000)
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 0
    done = control(emulator, f"/_emulator/checkout/sessions/{session.id}/complete").data()
    invoice = client.v1.invoices.retrieve(done["invoice"])
    assert (invoice.subtotal, invoice.total, invoice.amount_paid) == (2000, 1000, 1000)
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 1


def test_checkout_payment_with_a_coupon_charges_the_discounted_total(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    price = client.v1.prices.create(
        {"currency": "usd", "unit_amount": 1500, "product_data": {"name": "Pack"}}
    )
    coupon = _coupon(client, amount_off=700, currency="usd")
    session = client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 2}],
            "success_url": "https://example.com/ok",
            "discounts": [{"coupon": coupon.id}],
        }
    )
    assert (session.amount_subtotal, session.amount_total) == (3000, 2300)
    done = control(emulator, f"/_emulator/checkout/sessions/{session.id}/complete").data()
    intent = client.v1.payment_intents.retrieve(done["payment_intent"])
    assert (intent.amount, intent.status) == (2300, "succeeded")
    assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 1


def test_allow_promotion_codes_shows_the_field_and_applies_a_code(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    price = recurring_price(client, 1000)
    coupon = _coupon(client, percent_off=20)
    _promo(client, coupon.id, code="TWENTY")
    with pytest.raises(stripe.InvalidRequestError) as both:
        client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": "https://example.com/ok",
                "allow_promotion_codes": True,
                "discounts": [{"coupon": coupon.id}],
            }
        )
    assert both.value.param == "discounts"
    assert client.v1.checkout.sessions.list().data == []
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://example.com/ok",
            "allow_promotion_codes": True,
        }
    )
    assert session.allow_promotion_codes is True
    page = emulator.handle("GET", f"/checkout/pay/{session.id}").body.decode()
    assert 'name="promotion_code"' in page
    wrong = control(emulator, f"/_emulator/checkout/sessions/{session.id}/complete", promotion_code="NOPE")
    assert wrong.status == 400
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    done = control(
        emulator, f"/_emulator/checkout/sessions/{session.id}/complete", promotion_code="twenty"
    ).data()
    assert (done["amount_total"], done["total_details"]["amount_discount"]) == (800, 200)
    assert client.v1.invoices.retrieve(done["invoice"]).amount_paid == 800


def test_an_amount_off_coupon_in_another_currency_is_refused(client: stripe.StripeClient) -> None:
    price = recurring_price(client, 1000)
    coupon = _coupon(client, amount_off=100, currency="eur")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": "https://example.com/ok",
                "discounts": [{"coupon": coupon.id}],
            }
        )
    assert caught.value.param == "discounts[0][coupon]"
    assert client.v1.checkout.sessions.list().data == []
