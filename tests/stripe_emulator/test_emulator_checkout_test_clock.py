"""A Checkout Session of a customer on a test clock lives at the clock's time, as at Stripe: its `expires_at` is
measured from the clock's frozen_time, its hosted page stays open while the clock has not passed it (however far
the emulator's own clock is ahead), and the clock's advance past it expires it."""

from __future__ import annotations

import stripe

from stripe_emulator import Emulator
from tests.stripe_emulator.conftest import FakeClock
from tests.stripe_emulator.payments_fixtures import events_of

FROZEN = 1_705_276_800  # 2024-01-15T00:00:00Z, years before the emulator's own time (2027)
DAY = 86_400


def _page(emulator: Emulator, session_id: str) -> str:
    answer = emulator.handle("GET", f"/checkout/pay/{session_id}", query="", body=b"", headers={})
    assert answer.status == 200
    return answer.body.decode()


def test_a_clock_customers_session_is_open_until_the_clock_passes_its_expiry(
    emulator: Emulator, client: stripe.StripeClient, clock: FakeClock
) -> None:
    test_clock = client.v1.test_helpers.test_clocks.create({"frozen_time": FROZEN})
    customer = client.v1.customers.create({"email": "clock@example.com", "test_clock": test_clock.id})
    price = client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Pro"},
        }
    )
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://shop.example/ok",
            "expires_at": FROZEN + 3600,
        }
    )
    assert (session.status, session.expires_at) == ("open", FROZEN + 3600)

    # The emulator's own clock is years past expires_at; the customer's clock is not.
    page = _page(emulator, session.id)
    assert "This Checkout Session has expired." not in page
    clock.now += 2 * DAY
    assert "This Checkout Session has expired." not in _page(emulator, session.id)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert events_of(client, "checkout.session.expired") == []

    client.v1.test_helpers.test_clocks.advance(test_clock.id, {"frozen_time": FROZEN + 3601})
    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    assert "This Checkout Session has expired." in _page(emulator, session.id)
    assert [e.data.object.id for e in events_of(client, "checkout.session.expired")] == [session.id]
