"""The hosted Checkout page states what the customer is charged: today (after the discount and the tax) and at
each renewal (a ``once`` coupon only today, a ``repeating`` one for its months, a ``forever`` one always; the
tax on every charge). Each test reads the amounts off the page, pays through the page's form, and compares
them with the invoices the subscription then charges."""

from __future__ import annotations

import re
from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator

from .billing_fixtures import DAY, item_period
from .payments_fixtures import control

SUCCESS = "https://shop.example/done"


def _price(client: stripe.StripeClient, **extra: Any) -> stripe.Price:
    return client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 4900,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Pro"},
            **extra,
        }
    )


def _session(client: stripe.StripeClient, price: str, **extra: Any) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": SUCCESS,
            **extra,
        }
    )


def _page(emulator: Emulator, session_id: str) -> str:
    return emulator.handle("GET", f"/checkout/pay/{session_id}").body.decode()


def _note(page: str) -> str:
    found = re.search(r'<p class="note">([^<]*)</p>\s*</form>', page)
    assert found is not None, page
    return found.group(1)


def _then(page: str) -> str:
    found = re.search(r'<p class="then">([^<]*)</p>', page)
    assert found is not None, page
    return found.group(1)


def _quote(page: str) -> str:
    found = re.search(r'<input type="hidden" name="quote" value="([^"]*)">', page)
    assert found is not None, page
    return found.group(1)


def _pay(emulator: Emulator, session_id: str, page: str, **form: str) -> Any:
    """The customer submits the page's form as the browser would (``ui=html`` with the page's quote)."""
    return control(
        emulator,
        f"/_emulator/checkout/sessions/{session_id}/complete",
        ui="html",
        quote=_quote(page),
        card="4242424242424242",
        email="ada@example.com",
        **form,
    )


def _invoices(client: stripe.StripeClient, sub: str) -> list[stripe.Invoice]:
    return list(reversed(client.v1.invoices.list({"subscription": sub}).data))


def _renew(client: stripe.StripeClient, emulator: Emulator, sub: str, times: int) -> list[int]:
    """Walk ``times`` renewals; the amounts paid by every invoice of the subscription, oldest first."""
    for _ in range(times):
        _, end = item_period(client.v1.subscriptions.retrieve(sub))
        emulator.advance(end - emulator.clock.now())
    invoices = _invoices(client, sub)
    assert [i.status for i in invoices] == ["paid"] * (times + 1)
    return [i.amount_paid for i in invoices]


@pytest.mark.parametrize(
    ("duration", "months", "note", "headline_then", "paid"),
    [
        (
            "once",
            None,
            "You will be charged $36.75 now, then $49.00/month.",
            "Then $49.00/month",
            [3675, 4900, 4900, 4900],
        ),
        (
            "repeating",
            3,
            "You will be charged $36.75 now, then $36.75/month for 2 months, then $49.00/month.",
            "Then $36.75/month for 2 months, then $49.00/month",
            [3675, 3675, 3675, 4900],
        ),
        (
            "forever",
            None,
            "You will be charged $36.75 now, then $36.75/month.",
            None,
            [3675, 3675, 3675, 3675],
        ),
    ],
)
def test_the_page_states_today_and_the_renewals_a_coupon_gives(
    client: stripe.StripeClient,
    emulator: Emulator,
    duration: str,
    months: int | None,
    note: str,
    headline_then: str | None,
    paid: list[int],
) -> None:
    coupon: dict[str, Any] = {"percent_off": 25, "duration": duration}
    if months is not None:
        coupon["duration_in_months"] = months
    coupon_id = client.v1.coupons.create(coupon).id  # type: ignore[arg-type]
    session = _session(client, _price(client).id, discounts=[{"coupon": coupon_id}])
    page = _page(emulator, session.id)
    assert _note(page) == note
    if headline_then is None:  # every charge the same: the headline says so
        assert '<p class="amount">$36.75 <small>per month</small></p>' in page
        assert '<p class="then">' not in page
    else:
        assert '<p class="amount">$36.75 <small>due today</small></p>' in page
        assert _then(page) == headline_then
    assert "$36.75/month" not in re.findall(r'<td class="num">([^<]*)</td>', page)[0]

    done = _pay(emulator, session.id, page)
    assert (done.status, done.headers["Location"]) == (303, SUCCESS)
    sub = client.v1.checkout.sessions.retrieve(session.id).subscription
    assert isinstance(sub, str)
    assert _renew(client, emulator, sub, 3) == paid


def test_with_automatic_tax_the_typed_country_shows_the_taxed_amounts_before_anything_is_charged(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    coupon = client.v1.coupons.create({"percent_off": 25, "duration": "once"})
    price = _price(client, tax_behavior="exclusive")
    session = _session(client, price.id, automatic_tax={"enabled": True}, discounts=[{"coupon": coupon.id}])
    page = _page(emulator, session.id)
    assert _note(page) == (
        "You will be charged $36.75 plus tax now, then $49.00/month plus tax. "
        "The tax follows from your billing country and is shown before you pay."
    )
    assert "Total due today</dt><dd>$36.75 plus tax</dd>" in page

    # The country typed with the first submit changes the amounts: the page shows them and charges nothing.
    shown = _pay(emulator, session.id, page, **{"address[country]": "DE"})
    assert shown.status == 200
    taxed = shown.body.decode()
    assert _note(taxed) == "You will be charged $43.73 now, then $58.31/month."
    assert _then(taxed) == "Then $58.31/month"
    assert "With your billing country (DE) the amounts are now as shown: check them and confirm." in taxed
    assert 'name="address[country]" value="DE"' in taxed
    assert "Tax</dt><dd>$6.98</dd>" in taxed
    assert "Total due today</dt><dd>$43.73</dd>" in taxed
    stored = client.v1.checkout.sessions.retrieve(session.id)
    assert (stored.status, stored.amount_total, stored.total_details.amount_tax) == ("open", 4373, 698)
    assert client.v1.customers.list().data == []
    assert client.v1.invoices.list().data == []
    assert client.v1.payment_intents.list().data == []
    assert client.v1.subscriptions.list().data == []

    done = _pay(emulator, session.id, taxed, **{"address[country]": "DE"})
    assert (done.status, done.headers["Location"]) == (303, SUCCESS)
    sub = client.v1.checkout.sessions.retrieve(session.id).subscription
    assert isinstance(sub, str)
    assert _renew(client, emulator, sub, 2) == [4373, 5831, 5831]


def test_a_country_without_tax_pays_what_the_page_stated_in_one_submit(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    price = _price(client, tax_behavior="exclusive")
    session = _session(client, price.id, automatic_tax={"enabled": True})
    page = _page(emulator, session.id)
    done = _pay(emulator, session.id, page, **{"address[country]": "US"})
    assert done.status == 303
    invoice = client.v1.checkout.sessions.retrieve(session.id).invoice
    assert isinstance(invoice, str)
    assert client.v1.invoices.retrieve(invoice).amount_paid == 4900


def test_a_promotion_code_typed_on_the_page_is_shown_before_it_is_charged(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    coupon = client.v1.coupons.create({"percent_off": 25, "duration": "once"})
    client.v1.promotion_codes.create({"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "SPRING"})
    session = _session(client, _price(client).id, allow_promotion_codes=True)
    page = _page(emulator, session.id)
    assert _note(page) == "You will be charged $49.00 now, then $49.00/month."

    shown = _pay(emulator, session.id, page, promotion_code="SPRING")
    assert shown.status == 200
    discounted = shown.body.decode()
    assert _note(discounted) == "You will be charged $36.75 now, then $49.00/month."
    assert client.v1.invoices.list().data == []
    done = _pay(emulator, session.id, discounted)
    assert done.status == 303
    sub = client.v1.checkout.sessions.retrieve(session.id).subscription
    assert isinstance(sub, str)
    assert _renew(client, emulator, sub, 1) == [3675, 4900]


def test_a_trial_states_what_is_charged_when_it_ends(client: stripe.StripeClient, emulator: Emulator) -> None:
    coupon = client.v1.coupons.create({"percent_off": 25, "duration": "once"})
    session = _session(
        client,
        _price(client).id,
        subscription_data={"trial_period_days": 14},
        discounts=[{"coupon": coupon.id}],
    )
    page = _page(emulator, session.id)
    ends = emulator.clock.now() + 14 * DAY
    assert _then(page).startswith("Then $49.00/month starting ")
    assert "Total after trial</dt><dd>$49.00/month" in page
    done = _pay(emulator, session.id, page)
    assert done.status == 303
    sub = client.v1.checkout.sessions.retrieve(session.id).subscription
    assert isinstance(sub, str)
    emulator.advance(ends + 1 - emulator.clock.now())
    assert [i.amount_paid for i in _invoices(client, sub)] == [0, 4900]
