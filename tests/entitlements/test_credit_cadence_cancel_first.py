"""A yearly plan's monthly credits when its cancellation is learned before its paid invoice: the period recorded
afterwards grants its first month and stops every month that starts after the end ("gets no slice that starts
after its end")."""

import threading
import time

import pytest
from django.db import connection

from billing.models import Invoice, Subscription
from billing.services.reconcile import reconcile
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


@pytest.fixture
def slow_plan_period():
    """Recording a paid period takes three seconds (a PostgreSQL trigger on the period's insert): the transaction
    that records it has read whether its subscription ended and not yet committed its months for that long."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION tollgate_test_slow_period() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(3); "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER tollgate_test_slow_period BEFORE INSERT ON entitlements_planperiod "
            "FOR EACH ROW EXECUTE FUNCTION tollgate_test_slow_period()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER tollgate_test_slow_period ON entitlements_planperiod")
        cursor.execute("DROP FUNCTION tollgate_test_slow_period()")


def _until_sleeping() -> None:
    """Waits (20 s at most) until another session is in the trigger's sleep."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)
    raise AssertionError("no period was being recorded within 20 s")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cancellation_mirrored_while_the_yearly_invoice_is_recorded_grants_no_later_month(
    api,
    tenant_a,
    yearly_plan,  # noqa: F811 (the fixture)
    stripe_emulator,
    stripe_webhooks,
    slow_plan_period,
):
    """The subscription is canceled and Stripe's events of it never arrive. A worker records the yearly invoice's
    paid period (it read that the subscription had not ended) while `reconcile --fix` mirrors the cancellation
    before that period commits. No month after the end is granted: the cancellation waits for the period it
    would otherwise not see."""
    _checkout(api, tenant_a, stripe_emulator, price="pro-yearly")
    held = _held(stripe_emulator)
    first = [d for d in held if _type(d) in ("checkout.session.completed", "customer.subscription.created")]
    rest = [d for d in held if d not in first]
    _send(stripe_webhooks, first)
    subscription = Subscription.objects.get()
    stripe_emulator.advance(86400)
    canceled = api.post(
        f"/api/v1/subscriptions/{subscription.pk}/cancel", {"at_period_end": False}, key=tenant_a.key
    )
    assert canceled.status_code == 200, canceled.json()
    dropped = _held(stripe_emulator)  # the cancellation's events never come
    assert "customer.subscription.deleted" in [_type(d) for d in dropped]
    assert Subscription.objects.get().status == "active"

    def invoice_worker() -> None:
        try:
            _send(stripe_webhooks, rest)
        finally:
            connection.close()

    worker = threading.Thread(target=invoice_worker)
    worker.start()
    _until_sleeping()  # the period is being recorded: its transaction read the subscription as not ended
    run = reconcile(project=tenant_a.project, fix=True)
    assert Subscription.objects.get().status == "canceled"
    worker.join()
    assert run.status == "completed"
    _no_failed_events()
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    slices = list(PlanCreditSlice.objects.order_by("index"))
    assert len(slices) == 12
    later = PlanCreditSlice.objects.filter(starts_at__gte=subscription.ended_at)
    assert [s.index for s in later.order_by("index")] == list(range(1, 12))
    assert (later.filter(stopped_at__isnull=True).count(), later.filter(lot__isnull=False).count()) == (0, 0)
    assert _sweep(slices[11].starts_at + SECOND) == 0
    assert CreditLot.objects.count() == 1
    assert _credits(api, tenant_a)["scheduled"] == []
