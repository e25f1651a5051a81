"""Usage still to report to Stripe's meter when Stripe invoiced its period (#52): Stripe's meter would take it
into a period already billed, so the customer's next invoice bills it instead — a pending invoice item of its
units at the price that billed the period, made once whatever fails, and never a meter event. Driven through the
emulator: a real subscription renewed at Stripe, its meter switched off while an event is recorded."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from billing import tasks
from billing.models import Invoice, LateUsageCharge
from billing.services.late_usage import LATE_BILLED
from catalog.models import Price
from entitlements.models import UsageEvent
from stripe_gateway.client import install_http_client
from tests.billing.test_meter_reports import _usage, _with_card, metered  # noqa: F401 (a fixture)
from tests.catalog.test_catalog_prices import Network


def _meter_total(stripe_sdk, feature, stripe_customer):
    """All Stripe's meter holds of the customer's usage (the last 40 days, as the meter's summaries read it)."""
    now = int(time.time())
    summaries = stripe_sdk().v1.billing.meters.event_summaries.list(
        feature.stripe_meter_id,
        {"customer": stripe_customer, "start_time": now - 40 * 86400, "end_time": now + 86400},
    )
    return sum(float(s.aggregated_value) for s in summaries.data)


@pytest.fixture
def renewed_with_one_event_left(api, tenant_a, metered, stripe_emulator, stripe_sdk, stripe_webhooks):  # noqa: F811
    """`user-1` on the metered `calls` price (2 cents a call): 5 calls reach Stripe's meter, then the meter is
    off while 10 more are recorded (their report fails, waiting out a backoff); Stripe renews the subscription,
    invoicing the 5. Yields inside the travelled time (the renewal's), with the meter back on."""
    sdk = stripe_sdk()
    stripe_customer = _with_card(api, tenant_a, sdk)
    calls = Price.objects.get(key="calls")
    created = sdk.v1.subscriptions.create(
        {"customer": stripe_customer, "items": [{"price": calls.stripe_price_id}]}
    )
    stripe_webhooks.deliver()
    _usage(api, tenant_a, "on-time", 5)
    sdk.v1.billing.meters.deactivate(metered.stripe_meter_id)
    _usage(api, tenant_a, "late", 10)
    assert dict(UsageEvent.objects.values_list("event_id", "meter_status")) == {
        "on-time": "reported",
        "late": "pending",
    }
    live = sdk.v1.subscriptions.retrieve(created.id)
    ahead = live["items"].data[0].current_period_end - stripe_emulator.clock.now() + 60
    with time_machine.travel(timezone.now() + timedelta(seconds=ahead), tick=True):
        stripe_emulator.clock.set_offset(0)  # the emulator reads the travelled clock
        stripe_emulator.advance(0)
        stripe_webhooks.deliver()
        renewal = Invoice.objects.get(billing_reason="subscription_cycle")
        assert [
            (line["quantity"], line["amount"])
            for line in renewal.lines
            if line["stripe_price_id"] == calls.stripe_price_id
        ] == [(5, 10)]
        sdk.v1.billing.meters.reactivate(metered.stripe_meter_id)
        yield stripe_customer, created.id


def test_usage_left_to_report_when_stripe_invoiced_its_period_is_billed_on_the_next_invoice_once(
    api,
    tenant_a,
    metered,  # noqa: F811 (the fixture)
    renewed_with_one_event_left,
    stripe_emulator,
    stripe_sdk,
):
    stripe_customer, subscription = renewed_with_one_event_left
    sdk = stripe_sdk()

    assert tasks.usage_report_sweep() == 1

    late = UsageEvent.objects.get(event_id="late")
    assert (late.meter_status, late.meter_error) == ("reported", LATE_BILLED)
    charge = LateUsageCharge.objects.get()
    assert (charge.event_id, charge.quantity, charge.amount, charge.currency, charge.status) == (
        "late",
        10,
        20,
        "usd",
        "created",
    )
    items = sdk.v1.invoice_items.list({"customer": stripe_customer}).data
    assert [(i.id, i.amount, i.currency, i.invoice) for i in items] == [
        (charge.stripe_invoice_item, 20, "usd", None)
    ]
    # Never a meter event: the meter holds the 5 calls it invoiced, nothing of the late 10.
    assert _meter_total(stripe_sdk, metered, stripe_customer) == 5
    # The next invoice bills it, beside the new period's usage (none yet).
    preview = sdk.v1.invoices.create_preview({"customer": stripe_customer, "subscription": subscription})
    assert sorted(line.amount for line in preview.lines.data) == [0, 20]

    # Again: nothing more (one charge per event, one item per charge).
    assert tasks.usage_report_sweep() == 0
    assert len(sdk.v1.invoice_items.list({"customer": stripe_customer}).data) == 1
    usage = api.get("/api/v1/usage?customer=user-1&feature=api_calls", key=tenant_a.key).json()
    assert usage["billed_quantity"] == 0  # the new period's


def test_a_late_charge_whose_stripe_answer_was_lost_is_made_once_by_the_retry(
    tenant_a, renewed_with_one_event_left, stripe_emulator, stripe_sdk, settings
):
    stripe_customer, _ = renewed_with_one_event_left
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    network = Network(stripe_emulator, lose={("POST", "v1/invoiceitems")})
    install_http_client(network)
    assert tasks.usage_report_sweep() == 1
    charge = LateUsageCharge.objects.get()
    assert (charge.status, charge.attempts, charge.stripe_invoice_item) == ("pending", 1, "")
    assert UsageEvent.objects.get(event_id="late").meter_status == "reported"  # charged: never re-sent
    assert len(stripe_sdk().v1.invoice_items.list({"customer": stripe_customer}).data) == 1  # Stripe made it

    network.lose.clear()
    assert tasks.usage_report_sweep() == 0  # its backoff is not over
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        assert tasks.usage_report_sweep() == 1
    charge.refresh_from_db()
    items = stripe_sdk().v1.invoice_items.list({"customer": stripe_customer}).data
    assert [(i.id, i.amount) for i in items] == [(charge.stripe_invoice_item, 20)]
    assert charge.status == "created"


def test_usage_of_a_trial_left_to_report_after_the_trial_is_billed_by_nobody(
    api,
    tenant_a,
    metered,  # noqa: F811 (the fixture)
    stripe_emulator,
    stripe_sdk,
    stripe_webhooks,
):
    """Stripe bills no usage recorded in a trial: 10 calls of the trial still to report when it ended are
    charged nothing (no invoice item), and never reach the meter either."""
    sdk = stripe_sdk()
    stripe_customer = _with_card(api, tenant_a, sdk)
    calls = Price.objects.get(key="calls")
    created = sdk.v1.subscriptions.create(
        {"customer": stripe_customer, "items": [{"price": calls.stripe_price_id}], "trial_period_days": 7}
    )
    stripe_webhooks.deliver()
    sdk.v1.billing.meters.deactivate(metered.stripe_meter_id)
    _usage(api, tenant_a, "in-trial", 10)
    ahead = created.trial_end - stripe_emulator.clock.now() + 60
    with time_machine.travel(timezone.now() + timedelta(seconds=ahead), tick=True):
        stripe_emulator.clock.set_offset(0)
        stripe_emulator.advance(0)
        stripe_webhooks.deliver()
        sdk.v1.billing.meters.reactivate(metered.stripe_meter_id)
        assert tasks.usage_report_sweep() == 1
        charge = LateUsageCharge.objects.get()
        assert (charge.quantity, charge.amount, charge.status) == (10, 0, "nothing")
        assert sdk.v1.invoice_items.list({"customer": stripe_customer}).data == []
        assert _meter_total(stripe_sdk, metered, stripe_customer) == 0
        assert UsageEvent.objects.get(event_id="in-trial").meter_status == "reported"
