"""A yearly plan's monthly credits when its cancellation is learned before its paid invoice: the period recorded
afterwards grants its first month and stops every month that starts after the end ("gets no slice that starts
after its end")."""

from billing.models import Invoice, Subscription
from entitlements.models import CreditLot, PlanCreditSlice, PlanPeriod
from tests.entitlements.test_credit_cadence import _sweep, yearly_plan  # noqa: F401 (a fixture)
from tests.entitlements.test_plan_credits import (
    SECOND,
    _checkout,
    _credits,
    _held,
    _no_failed_events,
    _send,
    _type,
)


def test_a_cancellation_learned_before_the_yearly_invoice_grants_no_later_month(
    api,
    tenant_a,
    yearly_plan,  # noqa: F811 (the fixture)
    stripe_emulator,
    stripe_webhooks,
):
    _checkout(api, tenant_a, stripe_emulator, price="pro-yearly")
    held = _held(stripe_emulator)
    first = [d for d in held if _type(d) in ("checkout.session.completed", "customer.subscription.created")]
    rest = [d for d in held if d not in first]
    _send(stripe_webhooks, first)
    assert not Invoice.objects.exists()
    assert not PlanPeriod.objects.exists()
    subscription = Subscription.objects.get()
    stripe_emulator.advance(86400)  # a day in, the customer cancels at once
    canceled = api.post(
        f"/api/v1/subscriptions/{subscription.pk}/cancel", {"at_period_end": False}, key=tenant_a.key
    )
    assert canceled.status_code == 200, canceled.json()
    stripe_webhooks.deliver()
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    assert subscription.ended_at is not None
    # Now the invoice's events arrive.
    _send(stripe_webhooks, rest)
    _no_failed_events()
    assert PlanPeriod.objects.count() == 1
    slices = list(PlanCreditSlice.objects.order_by("index"))
    assert len(slices) == 12
    after_end = [s.index for s in slices if s.starts_at >= subscription.ended_at]
    assert after_end == list(range(1, 12))
    # None of the months after the end is listed or granted.
    granted_later = _sweep(slices[11].starts_at + SECOND)
    assert (granted_later, CreditLot.objects.count()) == (0, 1)
    assert _credits(api, tenant_a)["scheduled"] == []
    later = PlanCreditSlice.objects.filter(index__gte=1)
    assert (later.filter(stopped_at__isnull=True).count(), later.filter(lot__isnull=False).count()) == (0, 0)
    assert set(later.values_list("stop_reason", flat=True)) == {"the subscription ended"}
