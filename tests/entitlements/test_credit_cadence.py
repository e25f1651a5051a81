"""Plan credits on a cadence of their own (#51 point 4): `pro` sold yearly grants 1,000 `ai_credits` every month of
the year (`"cadence": "month"`), with up to 200 unspent ones rolling into the next month. The first month comes with
the paid invoice, each next one from the beat's sweep as it comes due; a refund or the subscription's end stops the
rest; nothing is granted twice. Driven through the emulator's Checkout, cancellations, refunds and webhooks; read
through the credits API."""

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from billing.models import Payment, Subscription
from catalog.models import Product, ProductFeature
from customers.models import Customer
from entitlements.explain import entitlements_explain
from entitlements.models import CreditLedgerEntry, CreditLot, PlanCreditSlice, PlanPeriod
from entitlements.services.plan_credits import (
    plan_credit_slices_grant,
    plan_credits_revoke,
    plan_credits_stop,
    slice_bounds,
)
from entitlements.tasks import plan_credits_grant_due
from tests.catalog import price_create
from tests.customers.test_test_clock_renewals import _save_card, _z
from tests.entitlements.test_plan_credits import (
    SECOND,
    _check,
    _checkout,
    _consume,
    _credits,
    _held,
    _no_failed_events,
    _send,
    _subscribe,
)

MONTHLY = {"limit": 1000, "rollover": 200, "cadence": "month"}


@pytest.fixture
def yearly_plan(api, tenant_a, catalog):
    """`pro` gives 1,000 `ai_credits` a month (rolling over up to 200), and is sold yearly at $300."""
    created = api.post(
        "/api/v1/features", {"key": "ai_credits", "name": "AI credits", "type": "credits"}, key=tenant_a.key
    )
    assert created.status_code == 201, created.json()
    answer = api.patch("/api/v1/products/pro", {"features": {"ai_credits": MONTHLY}}, key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    assert answer.json()["features"] == {"ai_credits": MONTHLY}
    price_create(
        Product.objects.get(project=tenant_a.project, key="pro"), "pro-yearly", 30000, interval="year"
    )
    return catalog


def _subscribe_yearly(api, tenant_a, stripe_emulator, stripe_webhooks):
    payment = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, price="pro-yearly")
    _no_failed_events()
    return payment


def _sweep(at):
    with time_machine.travel(at):
        return plan_credits_grant_due()


def test_a_yearly_plan_grants_its_monthly_credits_each_month_and_never_twice(
    api, tenant_a, yearly_plan, stripe_emulator, stripe_webhooks
):
    created = _checkout(api, tenant_a, stripe_emulator, price="pro-yearly")
    held = _held(stripe_emulator)
    _send(stripe_webhooks, held)
    _no_failed_events()
    payment = Payment.objects.get(pk=created["payment"])
    subscription = Subscription.objects.get()
    start, end = subscription.current_period_start, subscription.current_period_end
    assert (subscription.status, end - start in (timedelta(days=365), timedelta(days=366))) == (
        "active",
        True,
    )
    months = [datetime.fromisoformat(s["starts_at"]) for s in _credits(api, tenant_a)["scheduled"]]
    bounds = list(slice_bounds(start, end, "month"))
    assert len(bounds) == 12
    assert [since for since, *_ in bounds[1:]] == months
    # Whole months, each granting the value: the year starts on its own anchor.
    assert {(share == whole) for *_, share, whole in bounds} == {True}
    period = PlanPeriod.objects.get()
    assert (period.payment_id, period.subscription_id) == (payment.pk, subscription.stripe_subscription_id)
    slices = list(PlanCreditSlice.objects.order_by("index"))
    assert [(s.index, s.amount, s.rollover) for s in slices] == [(i, 1000, 200) for i in range(12)]
    assert [(s.starts_at, s.ends_at) for s in slices] == [(since, until) for since, until, *_ in bounds]

    # The first month comes with the invoice, expiring at the month's end.
    body = _credits(api, tenant_a)
    assert body["balance"] == 1000
    first = CreditLot.objects.get()
    assert (first.source, first.amount, first.expires_at) == ("plan", 1000, slices[0].ends_at)
    assert (slices[0].lot_id, slices[0].granted_at is not None) == (first.pk, True)
    assert [(s["amount"], s["expires_at"]) for s in body["scheduled"]][:2] == [
        (1000, slices[1].ends_at.isoformat().replace("+00:00", "Z")),
        (1000, slices[2].ends_at.isoformat().replace("+00:00", "Z")),
    ]
    assert len(body["scheduled"]) == 11
    assert _consume(api, tenant_a, "job-1", 900)["balance"] == 100
    explained = entitlements_explain(
        project=tenant_a.project,
        customer=Customer.objects.get(project=tenant_a.project, external_id="user-1"),
    )
    credits = next(f for f in explained.features if f.key == "ai_credits")
    assert next(s for s in credits.sources if s.kind == "subscription").why.endswith(
        "; each month of a paid period grants 1000 credits, expiring at its end, up to 200 unspent ones carried "
        "into the next month"
    )

    # Nothing is due before the second month starts; once it has, the sweep grants it once.
    assert _sweep(slices[1].starts_at - SECOND) == 0
    with time_machine.travel(slices[1].starts_at + SECOND):
        assert (
            _credits(api, tenant_a)["balance"] == 0
        )  # the first month's lot expired; the sweep is yet to run
    assert _sweep(slices[1].starts_at + SECOND) == 1
    assert _sweep(slices[1].starts_at + 2 * SECOND) == 0
    with time_machine.travel(slices[1].starts_at + 3 * SECOND):
        body = _credits(api, tenant_a)
        # 1,000 for the month, and the 100 the first month left (under the 200 cap) rolled into it.
        assert body["balance"] == 1100
        assert len(body["scheduled"]) == 10
        assert (_check(api, tenant_a, 1100)["allowed"], _check(api, tenant_a, 1101)["allowed"]) == (
            True,
            False,
        )
    second = PlanCreditSlice.objects.get(index=1).lot
    assert (second.amount, second.remaining, second.expires_at) == (1100, 1100, slices[1].ends_at)
    assert sorted(
        CreditLedgerEntry.objects.filter(type="rollover").values_list("lot_id", "amount", "reference")
    ) == sorted([(first.pk, -100, period.invoice_id), (second.pk, 100, period.invoice_id)])

    # Months the sweep missed (the beat down for a quarter) come in order, each rolling into the next.
    assert _sweep(slices[4].starts_at + SECOND) == 3
    granted = list(PlanCreditSlice.objects.filter(granted_at__isnull=False).order_by("index"))
    assert [s.index for s in granted] == [0, 1, 2, 3, 4]
    assert [s.lot.amount for s in granted] == [1000, 1100, 1200, 1200, 1200]
    assert [s.lot.remaining for s in granted] == [0, 900, 1000, 1000, 1200]
    for lot in CreditLot.objects.all():
        assert (
            sum(CreditLedgerEntry.objects.filter(lot=lot).values_list("amount", flat=True)) == lot.remaining
        )

    # Every event of the purchase delivered again grants nothing.
    _send(stripe_webhooks, held)
    _no_failed_events()
    assert (PlanPeriod.objects.count(), PlanCreditSlice.objects.count(), CreditLot.objects.count()) == (
        1,
        12,
        5,
    )


def test_a_full_refund_stops_the_months_to_come_and_takes_back_the_granted_ones(
    api, tenant_a, yearly_plan, stripe_emulator, stripe_webhooks
):
    payment = _subscribe_yearly(api, tenant_a, stripe_emulator, stripe_webhooks)
    slices = list(PlanCreditSlice.objects.order_by("index"))
    assert _sweep(slices[1].starts_at + SECOND) == 1
    assert _consume(api, tenant_a, "job-1", 50)["allowed"] is True

    refund = api.post(f"/api/v1/payments/{payment.pk}/refund", {"reason": "requested"}, key=tenant_a.key)
    assert refund.status_code == 200, refund.json()
    stripe_webhooks.deliver()
    _no_failed_events()
    assert Payment.objects.get(pk=payment.pk).status == "refunded"
    body = _credits(api, tenant_a)
    assert (body["balance"], body["scheduled"]) == (0, [])
    stopped = PlanCreditSlice.objects.filter(stopped_at__isnull=False)
    assert sorted(stopped.values_list("index", flat=True)) == list(range(2, 12))
    assert set(stopped.values_list("stop_reason", flat=True)) == {"refunded in full"}
    assert set(CreditLot.objects.values_list("remaining", flat=True)) == {0}
    assert CreditLot.objects.filter(voided_at__isnull=True).count() == 0
    # Later months never come.
    assert _sweep(slices[11].starts_at + SECOND) == 0
    assert CreditLot.objects.count() == 2


def test_a_subscription_canceled_mid_year_gets_no_month_after_its_end(
    api, tenant_a, yearly_plan, stripe_emulator, stripe_webhooks
):
    _subscribe_yearly(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    slices = list(PlanCreditSlice.objects.order_by("index"))
    # Two months and a day in (the emulator's clock), the customer cancels at once.
    stripe_emulator.advance((slices[2].starts_at - slices[0].starts_at).total_seconds() + 86400)
    stripe_webhooks.deliver()
    _no_failed_events()
    assert _sweep(slices[2].starts_at + SECOND) == 2
    canceled = api.post(
        f"/api/v1/subscriptions/{subscription.pk}/cancel", {"at_period_end": False}, key=tenant_a.key
    )
    assert canceled.status_code == 200, canceled.json()
    stripe_webhooks.deliver()
    _no_failed_events()
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    assert slices[2].starts_at < subscription.ended_at < slices[3].starts_at
    # The month it ended in keeps its credits; none after it is granted or listed.
    with time_machine.travel(subscription.ended_at + SECOND):
        body = _credits(api, tenant_a)
        assert (body["balance"], body["scheduled"]) == (1000 + 200, [])
    assert sorted(
        PlanCreditSlice.objects.filter(stopped_at__isnull=False).values_list("index", flat=True)
    ) == list(range(3, 12))
    assert _sweep(slices[11].starts_at + SECOND) == 0
    assert CreditLot.objects.count() == 3


def test_an_end_learned_late_takes_back_the_months_granted_after_it(
    api, tenant_a, yearly_plan, stripe_emulator, stripe_webhooks
):
    _subscribe_yearly(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    slices = list(PlanCreditSlice.objects.order_by("index"))
    stripe_emulator.advance((slices[1].starts_at - slices[0].starts_at).total_seconds() + 86400)
    stripe_webhooks.deliver()
    canceled = api.post(
        f"/api/v1/subscriptions/{subscription.pk}/cancel", {"at_period_end": False}, key=tenant_a.key
    )
    assert canceled.status_code == 200, canceled.json()
    # The cancellation's events are held back while the sweep grants the third month as if nothing had ended.
    held = _held(stripe_emulator)
    assert _sweep(slices[2].starts_at + SECOND) == 2
    third = PlanCreditSlice.objects.get(index=2).lot
    assert (third.amount, third.voided_at) == (1200, None)
    _send(stripe_webhooks, held)
    _no_failed_events()
    third.refresh_from_db()
    assert (third.remaining, third.voided_at is not None) == (0, True)
    assert CreditLedgerEntry.objects.filter(lot=third, type="revoke").get().amount == -1200
    assert PlanCreditSlice.objects.get(index=2).stop_reason == "the subscription ended"
    # Again: nothing more happens.
    _send(stripe_webhooks, held)
    _no_failed_events()
    assert CreditLedgerEntry.objects.filter(type="revoke").count() == 1


def test_a_trial_is_granted_its_share_of_the_month(
    api, tenant_a, yearly_plan, stripe_emulator, stripe_webhooks
):
    """A period shorter than the cadence (a 14-day trial) gets its share of a month, rounded down."""
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, price="pro-yearly", trial_days=14)
    _no_failed_events()
    subscription = Subscription.objects.get()
    assert subscription.status == "trialing"
    (only,) = PlanCreditSlice.objects.all()
    trial = subscription.trial_end - subscription.current_period_start
    month = next(iter(slice_bounds(subscription.current_period_start, subscription.trial_end, "month")))
    assert (only.starts_at, only.ends_at) == (subscription.current_period_start, subscription.trial_end)
    assert only.amount == 1000 * month[2] // month[3]
    assert month[2] == trial // timedelta(microseconds=1)
    assert 1000 * 14 // 31 <= only.amount <= 1000 * 14 // 28
    assert _credits(api, tenant_a)["balance"] == only.amount


@pytest.mark.parametrize(
    ("start", "end", "cadence", "expected"),
    [
        # A year on its anchor: twelve whole months, the 31st clamped where a month is shorter.
        (
            datetime(2026, 1, 31, 9, tzinfo=UTC),
            datetime(2027, 1, 31, 9, tzinfo=UTC),
            "month",
            [(datetime(2026, 1, 31, 9, tzinfo=UTC), datetime(2026, 2, 28, 9, tzinfo=UTC), 1, 1)]
            + [(None, None, 1, 1)] * 11,
        ),
        # A monthly period from the 31st ending on the 28th is one whole month.
        (datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC), "month", [(None, None, 1, 1)]),
        # A mid-period start (a new anchor on the 1st): the first month is its share, 17 of January's 31 days.
        (
            datetime(2026, 1, 15, tzinfo=UTC),
            datetime(2026, 6, 1, tzinfo=UTC),
            "month",
            [(datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), 17, 31)]
            + [(None, None, 1, 1)] * 4,
        ),
        # Weeks counted back from the period's end: a 31-day month is 3 days' share of a week, then 4 weeks.
        (
            datetime(2026, 3, 1, tzinfo=UTC),
            datetime(2026, 4, 1, tzinfo=UTC),
            "week",
            [(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC), 3, 7)]
            + [(None, None, 1, 1)] * 4,
        ),
    ],
    ids=["year-on-31st", "clamped-month", "mid-period-start", "weeks-in-a-month"],
)
def test_a_period_is_cut_into_months_or_weeks_counted_back_from_its_end(start, end, cadence, expected):
    bounds = list(slice_bounds(start, end, cadence))
    assert len(bounds) == len(expected)
    assert (bounds[0][0], bounds[-1][1]) == (start, end)
    for (since, until, share, whole), (want_since, want_until, want_share, want_whole) in zip(
        bounds, expected, strict=True
    ):
        if want_since is not None:
            assert (since, until) == (want_since, want_until)
        assert share * want_whole == whole * want_share
    # Contiguous: each slice starts where the one before ended.
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))


@pytest.mark.parametrize(
    ("feature_type", "value", "message"),
    [
        ("credits", {"limit": 1000, "cadence": "day"}, 'cadence is "month" or "week"'),
        ("credits", {"limit": None, "cadence": "month"}, "unlimited credits have no cadence"),
        (
            "metered",
            {"limit": 1000, "cadence": "month"},
            "only a credits feature's plan credits have a cadence",
        ),
    ],
)
def test_a_cadence_that_cannot_apply_is_refused_and_nothing_changes(
    api, tenant_a, catalog, feature_type, value, message
):
    created = api.post("/api/v1/features", {"key": "f", "name": "F", "type": feature_type}, key=tenant_a.key)
    assert created.status_code == 201, created.json()
    answer = api.patch("/api/v1/products/pro", {"features": {"f": value}}, key=tenant_a.key)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_feature_value", "features.f")
    assert message in error["message"]
    assert not ProductFeature.objects.filter(feature__key="f").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sweeps_racing_grant_each_month_once(api, tenant_a, yearly_plan, stripe_emulator, stripe_webhooks):
    """Four sweeps at once over a customer whose quarter was missed: each month is granted once, in order."""
    _subscribe_yearly(api, tenant_a, stripe_emulator, stripe_webhooks)
    slices = list(PlanCreditSlice.objects.order_by("index"))
    at = slices[3].starts_at + SECOND
    barrier = threading.Barrier(4)
    counts: list[int] = []

    def sweep() -> None:
        try:
            barrier.wait()
            with time_machine.travel(at):
                total = 0
                while batch := plan_credit_slices_grant(limit=1):
                    total += batch
                counts.append(total)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 3
    granted = PlanCreditSlice.objects.filter(granted_at__isnull=False).order_by("index")
    assert [s.index for s in granted] == [0, 1, 2, 3]
    assert [s.lot.amount for s in granted] == [1000, 1200, 1200, 1200]
    assert CreditLot.objects.count() == 4


def test_a_test_clocks_customer_gets_each_month_as_the_clock_passes_it(
    api, tenant_a, yearly_plan, stripe_sdk, stripe_webhooks
):
    """A customer on a Stripe test clock lives at the clock's time: the sweep grants their months as the clock
    passes them, whatever the wall clock says."""
    sdk = stripe_sdk()
    start = timezone.now().replace(microsecond=0)
    clock = api.post(
        "/api/v1/test_clocks", {"frozen_time": _z(start), "name": "Monthly credits"}, key=tenant_a.key
    ).json()
    customer = api.post(
        "/api/v1/customers", {"external_id": "user-1", "test_clock": clock["id"]}, key=tenant_a.key
    ).json()
    _save_card(sdk, customer["stripe_customer_id"])
    created = api.post(
        "/api/v1/subscriptions", {"customer": "user-1", "price": "pro-yearly"}, key=tenant_a.key
    )
    assert created.status_code == 201, created.json()
    stripe_webhooks.deliver()
    _no_failed_events()
    slices = list(PlanCreditSlice.objects.order_by("index"))
    assert (len(slices), slices[0].starts_at, slices[0].granted_at is not None) == (12, start, True)
    assert plan_credits_grant_due() == 0  # the clock is still at the start

    target = slices[2].starts_at + timedelta(hours=1)
    advanced = api.post(
        f"/api/v1/test_clocks/{clock['id']}/advance", {"frozen_time": _z(target)}, key=tenant_a.key
    )
    assert advanced.status_code == 200, advanced.json()
    stripe_webhooks.deliver()
    _no_failed_events()
    assert plan_credits_grant_due() == 2
    body = _credits(api, tenant_a)
    assert body["balance"] == 1000 + 200  # the third month's, with what the second carried
    assert [s["id"] for s in body["scheduled"]] == [s.pk for s in slices[3:]]
    assert plan_credits_grant_due() == 0


def test_a_monthly_plan_grants_weekly_credits_counted_back_from_its_renewal(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    """Weekly credits on a monthly plan: whole weeks back from the renewal, the first its share of a week."""
    api.post(
        "/api/v1/features", {"key": "ai_credits", "name": "AI credits", "type": "credits"}, key=tenant_a.key
    )
    weekly = {"limit": 700, "cadence": "week"}
    answer = api.patch("/api/v1/products/pro", {"features": {"ai_credits": weekly}}, key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    _no_failed_events()
    subscription = Subscription.objects.get()
    start, end = subscription.current_period_start, subscription.current_period_end
    slices = list(PlanCreditSlice.objects.order_by("index"))
    days = (end - start).days  # 28 to 31
    assert len(slices) == 4 + (days % 7 > 0)
    assert [s.ends_at for s in slices[-4:]] == [end - timedelta(weeks=k) for k in (3, 2, 1, 0)]
    assert [s.amount for s in slices[-4:]] == [700] * 4
    if days % 7:
        assert (slices[0].starts_at, slices[0].ends_at) == (start, end - timedelta(weeks=4))
        assert slices[0].amount == 700 * (days % 7) // 7
    assert _credits(api, tenant_a)["balance"] == slices[0].amount


@pytest.fixture
def slow_ledger():
    """Every credit ledger row written takes a second (a PostgreSQL trigger): a transaction that writes one holds
    its row locks that long, so a racing one is sure to meet them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION tollgate_test_slow() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(1); RETURN NEW; "
            "END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER tollgate_test_slow BEFORE INSERT ON entitlements_creditledgerentry "
            "FOR EACH ROW EXECUTE FUNCTION tollgate_test_slow()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER tollgate_test_slow ON entitlements_creditledgerentry")
        cursor.execute("DROP FUNCTION tollgate_test_slow()")


def _until_writing_ledger() -> None:
    """Waits (60 s at most) until another session of this database is inside a credit ledger write (the slow
    trigger's `pg_sleep`): the sweep then holds the month's row it claimed. Read from `pg_stat_activity`, which
    locks nothing. The probe this replaces locked the row itself (`SELECT … FOR UPDATE NOWAIT`, every 20 ms): when
    it held the row at the moment the sweep claimed, the sweep's `SKIP LOCKED` passed the month by, and the test
    waited for a lock that never came (CI failed so with 10 s, and again with 60 s, on a loaded machine)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND wait_event = 'PgSleep'"
            )
            if cursor.fetchone() is not None:
                return
        time.sleep(0.02)
    raise AssertionError("the sweep wrote no ledger row within 60 s")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stopper", ["refund", "end"])
def test_a_month_granted_while_the_period_is_stopped_is_taken_back(
    api, tenant_a, yearly_plan, stripe_emulator, stripe_webhooks, slow_ledger, stopper
):
    """The sweep grants the second month while a refund (or the subscription's end) stops the period: whichever
    commits first, the month's lot ends taken back and no later month is granted."""
    payment = _subscribe_yearly(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    customer = Customer.objects.get(external_id="user-1")
    slices = list(PlanCreditSlice.objects.order_by("index"))
    sweeping = threading.Event()

    def sweep() -> None:
        try:
            with time_machine.travel(slices[1].starts_at + SECOND, tick=True):
                sweeping.set()
                plan_credit_slices_grant()
        finally:
            connection.close()

    thread = threading.Thread(target=sweep)
    thread.start()
    sweeping.wait()
    _until_writing_ledger()  # the sweep holds the second month's row and is writing its lot's ledger
    if stopper == "refund":
        plan_credits_revoke(customer=customer, payment_id=payment.pk, reason="refunded in full")
    else:
        plan_credits_stop(
            customer=customer,
            subscription_id=subscription.stripe_subscription_id,
            ended_at=slices[1].starts_at - SECOND,
            reason="the subscription ended",
        )
    thread.join()
    second = PlanCreditSlice.objects.get(index=1)
    assert second.lot_id is not None
    lot = CreditLot.objects.get(pk=second.lot_id)
    assert (lot.remaining, lot.voided_at is not None) == (0, True)
    assert not PlanCreditSlice.objects.filter(granted_at__isnull=True, stopped_at__isnull=True).exists()
    assert _sweep(slices[11].starts_at + SECOND) == 0
    assert CreditLot.objects.filter(voided_at__isnull=True, remaining__gt=0).exclude(
        pk=slices[0].lot_id
    ).count() == (0)
