"""Usage at the edges of time (#49): whichever side of a period boundary usage falls on, Tollgate counts it in the
period Stripe bills it in. Stripe files a meter event under its whole second (the fraction dropped) and starts
periods on whole seconds: a renewal on the period's end, a change of billing interval on the second of the
request. Usage is recorded at sub-second offsets on both sides of each boundary, through the API, and reported
to the emulator's meter; each period's count (`GET /usage` for the current one, the period's counter for the one
before) must equal the quantity the emulator invoices for it (the boundary's invoice, then the preview of the
next renewal), and the periods' counts add up to everything recorded. Usage recorded before a switch is billed on
the switch's invoice; before a cancel now, or before the end of a period set to cancel then, on the final invoice
(usage after either bills nobody); in a trial, on no invoice (Stripe bills no trial usage; the first paid period
starts on the trial's end). Quantities are powers of two, so a sum names the events in it."""

from datetime import UTC, datetime

import pytest
import time_machine

from billing.models import Invoice, Subscription
from entitlements.models import UsageCounter
from tests.billing.test_interval_change import (  # noqa: F401 (fixtures)
    CHANGE,
    MONTH_END,
    START,
    T0,
    _subscribe_with_calls,
    allowance,
)
from tests.billing.test_interval_change import metered as metered
from tests.billing.test_interval_change import yearly as yearly

pytestmark = pytest.mark.django_db

BEFORE = (-0.9, -0.4, -0.05)  # seconds before a boundary
AFTER = (0.0, 0.05, 0.4, 0.9, 1.3)  # seconds after it


def _at(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


def _record(api, tenant, index: int) -> int:
    quantity = 2**index
    body = {"id": f"u-{index}", "customer": "user-1", "feature": "api_calls", "quantity": quantity}
    response = api.post("/api/v1/usage", body, key=tenant.key)
    assert response.status_code == 201, response.content
    return quantity


def _usage_billed(lines, stripe_price_id: str) -> int:
    """The quantity of the metered price's usage line among an invoice's (Tollgate's stored) lines."""
    return sum(line["quantity"] for line in lines if line["stripe_price_id"] == stripe_price_id)


def _next_renewal_usage(stripe_sdk, subscription: Subscription, stripe_price_id: str) -> int:
    """What the emulator will invoice at the next renewal for the current period's usage."""
    preview = stripe_sdk().v1.invoices.create_preview({"subscription": subscription.stripe_subscription_id})
    return sum(
        line.quantity for line in preview.lines.data if line.pricing.price_details.price == stripe_price_id
    )


def _counted(api, tenant, subscription: Subscription) -> tuple[int, int]:
    """(used in the first period, used in the current one) as Tollgate counts them."""
    current = api.get("/api/v1/usage?customer=user-1&feature=api_calls", key=tenant.key).json()
    first = UsageCounter.objects.get(customer=subscription.customer, period_start=_at(T0)).used
    return first, current["quantity"]


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9])
def test_usage_around_an_interval_switch_is_counted_where_stripe_bills_it(
    fraction, api, tenant_a, catalog, yearly, metered, stripe_sdk, stripe_emulator, stripe_webhooks
):
    with time_machine.travel(START, tick=False):
        subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    planned = CHANGE + fraction
    before = after = 0
    with time_machine.travel(_at(planned + BEFORE[0]), tick=True) as moving:
        for index, offset in enumerate(BEFORE):
            moving.move_to(_at(planned + offset))
            before += _record(api, tenant_a, index)
        moving.move_to(_at(planned))
        body = {"items": [{"price": "pro-yearly"}, {"price": "pro-calls-yearly"}]}
        response = api.patch(f"/api/v1/subscriptions/{subscription.pk}", body, key=tenant_a.key)
        assert response.status_code == 200, response.content
        stripe_webhooks.deliver()
        switched = datetime.now(UTC).timestamp()
        for index, offset in enumerate(AFTER, start=len(BEFORE)):
            moving.move_to(_at(switched + offset))
            after += _record(api, tenant_a, index)
        stripe_webhooks.deliver()
        first, current = _counted(api, tenant_a, subscription)
        next_renewal = _next_renewal_usage(stripe_sdk, subscription, metered[1].stripe_price_id)

    switch = Invoice.objects.get(billing_reason="subscription_update")
    assert (first, current) == (before, after)
    assert _usage_billed(switch.lines, metered[0].stripe_price_id) == first
    assert next_renewal == current
    assert first + current == 2 ** (len(BEFORE) + len(AFTER)) - 1


def test_usage_around_a_renewal_is_counted_where_stripe_bills_it(
    api, tenant_a, catalog, metered, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """The renewal is on the period's end, a whole second; the emulator renews once usage at and just after it
    was recorded (Tollgate rolls the period over on its own), then more is recorded."""
    with time_machine.travel(START, tick=False):
        subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    before = after = 0
    with time_machine.travel(_at(MONTH_END + BEFORE[0]), tick=False) as moving:
        for index, offset in enumerate(BEFORE + AFTER):
            moving.move_to(_at(MONTH_END + offset))
            if offset == 0.4:
                stripe_emulator.advance(0)  # the renewal is due: the emulator runs it now
                stripe_webhooks.deliver()
            if offset < 0:
                before += _record(api, tenant_a, index)
            else:
                after += _record(api, tenant_a, index)
        stripe_webhooks.deliver()
        first, current = _counted(api, tenant_a, subscription)
        next_renewal = _next_renewal_usage(stripe_sdk, subscription, metered[0].stripe_price_id)

    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    assert (first, current) == (before, after)
    assert _usage_billed(renewal.lines, metered[0].stripe_price_id) == first
    assert next_renewal == current
    assert first + current == 2 ** (len(BEFORE) + len(AFTER)) - 1


def test_usage_stamped_just_past_the_period_end_counts_in_the_next_period_as_at_stripe(
    api, tenant_a, catalog, metered, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """A client clock a little ahead (timestamps up to five minutes on are taken, at Stripe too): usage sent a
    minute before the renewal stamped 0.3 s after it counts in the next period, where Stripe bills it; usage
    stamped 0.3 s before it stays in this one."""
    with time_machine.travel(START, tick=False):
        subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    with time_machine.travel(_at(MONTH_END - 60), tick=False) as moving:
        for event_id, quantity, offset in (("u-early", 1, -0.3), ("u-ahead", 2, 0.3)):
            body = {
                "id": event_id,
                "customer": "user-1",
                "feature": "api_calls",
                "quantity": quantity,
                "timestamp": _at(MONTH_END + offset).isoformat().replace("+00:00", "Z"),
            }
            response = api.post("/api/v1/usage", body, key=tenant_a.key)
            assert response.status_code == 201, response.content
        moving.move_to(_at(MONTH_END + 1))
        stripe_emulator.advance(0)
        stripe_webhooks.deliver()
        first, current = _counted(api, tenant_a, subscription)
        next_renewal = _next_renewal_usage(stripe_sdk, subscription, metered[0].stripe_price_id)

    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    assert (first, current) == (1, 2)
    assert _usage_billed(renewal.lines, metered[0].stripe_price_id) == 1
    assert next_renewal == 2


def _cancel(api, tenant, subscription: Subscription, *, at_period_end: bool) -> None:
    body = {"at_period_end": at_period_end}
    response = api.post(f"/api/v1/subscriptions/{subscription.pk}/cancel", body, key=tenant.key)
    assert response.status_code == 200, response.content


def _counter(subscription: Subscription, start: float) -> int:
    """What Tollgate counted in the period starting at `start` (0 without a counter)."""
    counter = UsageCounter.objects.filter(customer=subscription.customer, period_start=_at(start)).first()
    return counter.used if counter else 0


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9])
def test_usage_around_a_cancel_now_is_billed_on_the_final_invoice(
    fraction, api, tenant_a, catalog, metered, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """Canceling now bills the cut-short period's usage on a final invoice (`invoice_now`): usage recorded up to
    the cancel, in its second too, is on it; usage recorded after it is counted in no period of the subscription
    and billed by nobody."""
    with time_machine.travel(START, tick=False):
        subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    planned = CHANGE + fraction
    before = after = 0
    with time_machine.travel(_at(planned + BEFORE[0]), tick=True) as moving:
        for index, offset in enumerate(BEFORE):
            moving.move_to(_at(planned + offset))
            before += _record(api, tenant_a, index)
        moving.move_to(_at(planned))
        _cancel(api, tenant_a, subscription, at_period_end=False)
        stripe_webhooks.deliver()
        canceled = datetime.now(UTC).timestamp()
        for index, offset in enumerate(AFTER, start=len(BEFORE)):
            moving.move_to(_at(canceled + offset))
            after += _record(api, tenant_a, index)
        stripe_webhooks.deliver()

    final = Invoice.objects.exclude(billing_reason="subscription_create").get()
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    assert _counter(subscription, T0) == before
    assert _usage_billed(final.lines, metered[0].stripe_price_id) == before
    assert before + after == 2 ** (len(BEFORE) + len(AFTER)) - 1


def test_a_cancel_now_bills_the_periods_usage_on_a_final_invoice(
    api, tenant_a, catalog, metered, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """Ten days in, 700 calls at 2 a call: the final invoice bills them (1400), from the period's start to the
    cancel's second, and is paid; nothing else is billed."""
    with time_machine.travel(START, tick=False):
        subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    with time_machine.travel(_at(CHANGE - 5), tick=False) as moving:
        for event_id, quantity in (("u-a", 300), ("u-b", 400)):
            body = {"id": event_id, "customer": "user-1", "feature": "api_calls", "quantity": quantity}
            assert api.post("/api/v1/usage", body, key=tenant_a.key).status_code == 201
        moving.move_to(_at(CHANGE))
        _cancel(api, tenant_a, subscription, at_period_end=False)
        stripe_webhooks.deliver()

    final = Invoice.objects.exclude(billing_reason="subscription_create").get()
    assert (final.status, final.subtotal, final.total, final.amount_paid) == ("paid", 1400, 1400, 1400)
    assert [
        (line["amount"], line["quantity"], line["stripe_price_id"], line["period_start"], line["period_end"])
        for line in final.lines
    ] == [(1400, 700, metered[0].stripe_price_id, T0, CHANGE)]
    live = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    assert (live.status, live.ended_at, live.latest_invoice) == ("canceled", CHANGE, final.stripe_invoice_id)


def test_usage_around_a_cancel_at_the_period_end_is_billed_on_the_final_invoice(
    api, tenant_a, catalog, metered, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """Set to cancel at the period's end, the subscription ends on that whole second with a final invoice for
    the last period's usage (billed in arrears, as a renewal would have): usage before the end is on it, usage at
    or after the end bills nobody and is not counted in the last period."""
    with time_machine.travel(START, tick=False):
        subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
        _cancel(api, tenant_a, subscription, at_period_end=True)
        stripe_webhooks.deliver()
    before = after = 0
    with time_machine.travel(_at(MONTH_END + BEFORE[0]), tick=False) as moving:
        for index, offset in enumerate(BEFORE + AFTER):
            moving.move_to(_at(MONTH_END + offset))
            if offset == 0.4:
                stripe_emulator.advance(0)  # the period's end is due: the emulator ends the subscription now
                stripe_webhooks.deliver()
            if offset < 0:
                before += _record(api, tenant_a, index)
            else:
                after += _record(api, tenant_a, index)
        stripe_webhooks.deliver()

    final = Invoice.objects.exclude(billing_reason="subscription_create").get()
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    assert (final.status, final.period_start, final.period_end) == ("paid", _at(T0), _at(MONTH_END))
    assert _counter(subscription, T0) == before
    assert _usage_billed(final.lines, metered[0].stripe_price_id) == before
    assert final.total == 2 * before
    assert before + after == 2 ** (len(BEFORE) + len(AFTER)) - 1


TRIAL_END = T0 + 14 * 86_400  # a 14-day trial from START


def _subscribe_on_trial(api, tenant, stripe_emulator, stripe_webhooks) -> Subscription:
    from tests.e2e.test_subscription_lifecycle import _complete

    created = api.post(
        "/api/v1/checkout/subscription",
        {
            "customer": "user-1",
            "items": [{"price": "pro-monthly"}, {"price": "pro-calls-monthly"}],
            "trial_days": 14,
            "success_url": "https://app.example.com/ok",
            "cancel_url": "https://app.example.com/ok",
        },
        key=tenant.key,
    )
    assert created.status_code == 201, created.content
    _complete(stripe_emulator, created.json()["stripe_session_id"])
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get()
    assert subscription.status == "trialing"
    return subscription


def test_usage_around_a_trial_end_is_counted_where_stripe_bills_it(
    api, tenant_a, catalog, metered, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """Stripe bills no usage of a trial: usage recorded in the trial counts in the trial period (billed on no
    invoice, and `GET /usage` estimates nothing due for it), and the first paid period starts on the trial's end,
    a whole second: usage at or after it counts there (`GET /usage` shows it alone, with its estimate) and is
    billed at the next renewal."""
    with time_machine.travel(START, tick=False):
        subscription = _subscribe_on_trial(api, tenant_a, stripe_emulator, stripe_webhooks)
    before = after = 0
    with time_machine.travel(_at(TRIAL_END + BEFORE[0]), tick=False) as moving:
        for index, offset in enumerate(BEFORE + AFTER):
            moving.move_to(_at(TRIAL_END + offset))
            if offset == 0.4:
                stripe_emulator.advance(0)  # the trial's end is due: the emulator ends the trial now
                stripe_webhooks.deliver()
            if offset < 0:
                before += _record(api, tenant_a, index)
            else:
                after += _record(api, tenant_a, index)
            if offset == BEFORE[-1]:
                trial = api.get("/api/v1/usage?customer=user-1&feature=api_calls", key=tenant_a.key).json()
        stripe_webhooks.deliver()
        current = api.get("/api/v1/usage?customer=user-1&feature=api_calls", key=tenant_a.key).json()
        next_renewal = _next_renewal_usage(stripe_sdk, subscription, metered[0].stripe_price_id)

    subscription.refresh_from_db()
    assert (subscription.status, subscription.current_period_start) == ("active", _at(TRIAL_END))
    # In the trial: its own period, whose usage the metered price will not invoice.
    assert (trial["period_start"], trial["period_end"], trial["quantity"], trial["amount_due_estimate"]) == (
        "2027-01-15T08:00:00Z",
        "2027-01-29T08:00:00Z",
        before,
        0,
    )
    assert (current["period_start"], current["quantity"], current["amount_due_estimate"]) == (
        "2027-01-29T08:00:00Z",
        after,
        2 * after,
    )
    assert _counter(subscription, T0) == before
    billed = sum(
        _usage_billed(invoice.lines, metered[0].stripe_price_id) for invoice in Invoice.objects.all()
    )
    assert billed == 0  # the trial's usage: on no invoice
    assert next_renewal == after
    assert before + after == 2 ** (len(BEFORE) + len(AFTER)) - 1
