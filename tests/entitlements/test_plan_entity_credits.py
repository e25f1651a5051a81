"""Plan credits for each seat (#51 point 5): `pro` gives 3 seats and `ai_credits` 1,000 a month for the account
plus 50 a month for each seat (`"per_entity": {"feature": "seats", "on_remove": "forfeit", "credits": 50}`), sold
yearly. Each month's grant gives every live seat its own 50, expiring with the month; a seat added mid-month gets
that month's at once; never more than the plan's 3 seats' worth a month, whatever seats come and go; a refund or
the subscription's end takes back and stops them as it does the account's. Driven through the emulator's Checkout,
webhooks, the beat's sweep and the API."""

import threading

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from billing.models import Payment, Subscription
from catalog.models import Product
from customers.models import Customer
from entitlements.explain import entitlements_explain
from entitlements.models import CreditLedgerEntry, CreditLot, PlanCreditSlice
from entitlements.services.plan_credits import _slice_grant
from tests.catalog import price_create
from tests.entitlements.helpers import until_waiting_on_a_lock
from tests.entitlements.test_credit_cadence import _sweep
from tests.entitlements.test_plan_credits import SECOND, _no_failed_events, _subscribe

PER_SEAT = {"feature": "seats", "on_remove": "forfeit", "credits": 50}


def _plan(api, tenant, ai_credits):
    for key, kind in (("seats", "allocation"), ("ai_credits", "credits")):
        made = api.post("/api/v1/features", {"key": key, "name": key, "type": kind}, key=tenant.key)
        assert made.status_code == 201, made.json()
    answer = api.patch(
        "/api/v1/products/pro", {"features": {"seats": 3, "ai_credits": ai_credits}}, key=tenant.key
    )
    assert answer.status_code == 200, answer.json()
    return answer.json()


@pytest.fixture
def seat_plan(api, tenant_a, catalog):
    """`pro`, yearly: 1,000 `ai_credits` a month for the account (up to 200 unspent rolling into the next), 50
    a month for each of its 3 seats."""
    _plan(api, tenant_a, {"limit": 1000, "rollover": 200, "cadence": "month", "per_entity": PER_SEAT})
    price_create(
        Product.objects.get(project=tenant_a.project, key="pro"), "pro-yearly", 30000, interval="year"
    )
    return catalog


def add(api, tenant, seat, status=201):
    answer = api.post(
        "/api/v1/entitlements/entities",
        {"customer": "user-1", "feature": "seats", "entity": seat},
        key=tenant.key,
    )
    assert answer.status_code in (status, 200), answer.json()
    return answer.json()


def remove(api, tenant, made):
    answer = api.delete(f"/api/v1/entitlements/entities/{made['id']}", {"reason": "left"}, key=tenant.key)
    assert answer.status_code == 200, answer.json()


def balance(api, tenant, seat=None):
    url = "/api/v1/credits?customer=user-1&feature=ai_credits" + (f"&entity={seat}" if seat else "")
    answer = api.get(url, key=tenant.key)
    assert answer.status_code == 200, answer.json()
    return answer.json()["balance"]


def spend(api, tenant, event_id, quantity, seat):
    body = {
        "id": event_id,
        "customer": "user-1",
        "feature": "ai_credits",
        "quantity": quantity,
        "entity": seat,
    }
    answer = api.post("/api/v1/entitlements/consume", body, key=tenant.key)
    assert answer.status_code == 200, answer.json()
    return answer.json()


def seat_lots(item):
    return sorted(item.entity_lots.values_list("entity", "amount", "expires_at"))


def test_each_month_gives_every_seat_its_own_credits_never_more_than_the_plans_seats(
    api, tenant_a, seat_plan, stripe_emulator, stripe_webhooks
):
    held = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, price="pro-yearly")
    _no_failed_events()
    slices = list(PlanCreditSlice.objects.order_by("index"))
    assert [(s.amount, s.entity_amount) for s in slices] == [(1000, 50)] * 12
    assert (balance(api, tenant_a), CreditLot.objects.exclude(entity="").count()) == (1000, 0)

    # Seats added while the first month runs get its 50 at once, expiring with it.
    add(api, tenant_a, "ana")
    add(api, tenant_a, "bo")
    cy = add(api, tenant_a, "cy")
    end = slices[0].ends_at
    assert seat_lots(slices[0]) == [("ana", 50, end), ("bo", 50, end), ("cy", 50, end)]
    assert [balance(api, tenant_a, seat) for seat in ("ana", "bo", "cy")] == [50, 50, 50]
    assert balance(api, tenant_a) == 1000  # the account's own
    # The months to come: the account's 1,000 each (rolling over), and each live seat's 50 (never rolled over).
    url = "/api/v1/credits?customer=user-1&feature=ai_credits"
    account = api.get(url, key=tenant_a.key).json()["scheduled"]
    own = api.get(url + "&entity=ana", key=tenant_a.key).json()["scheduled"]
    assert [(s["amount"], s["rollover"]) for s in account] == [(1000, 200)] * 11
    assert [(s["amount"], s["rollover"], s["id"]) for s in own] == [(50, None, s["id"]) for s in account]
    assert spend(api, tenant_a, "a1", 20, "ana")["entity"]["balance"] == 30

    # cy leaves (her credits forfeited) and dee takes the seat: the month gave its 3 seats' worth already.
    remove(api, tenant_a, cy)
    add(api, tenant_a, "dee")
    assert balance(api, tenant_a, "dee") == 0
    assert seat_lots(slices[0]) == [("ana", 50, end), ("bo", 50, end), ("cy", 50, end)]
    assert CreditLot.objects.get(entity="cy").voided_at is not None
    assert api.get(url + "&entity=cy", key=tenant_a.key).json()["scheduled"] == []  # removed: none to come
    # Adding a seat again that has one changes nothing.
    add(api, tenant_a, "ana")
    assert CreditLot.objects.filter(entity="ana").count() == 1

    # The second month gives each live seat 50; what ana left of the first expires (never rolls over).
    assert _sweep(slices[1].starts_at + SECOND) == 1
    second = PlanCreditSlice.objects.get(index=1)
    until = second.ends_at
    assert seat_lots(second) == [("ana", 50, until), ("bo", 50, until), ("dee", 50, until)]
    with time_machine.travel(slices[1].starts_at + 2 * SECOND):
        assert [balance(api, tenant_a, seat) for seat in ("ana", "bo", "dee")] == [50, 50, 50]
        assert balance(api, tenant_a) == 1000 + 200  # its 1,000 and the first month's 200 it rolled over
    assert not CreditLedgerEntry.objects.filter(type="rollover", lot__entity__gt="").exists()
    assert _sweep(slices[1].starts_at + 3 * SECOND) == 0
    # Every event of the purchase delivered again grants nothing.
    stripe_webhooks.deliver()
    _no_failed_events()
    assert CreditLot.objects.exclude(entity="").count() == 6
    for lot in CreditLot.objects.all():
        assert sum(lot.entries.values_list("amount", flat=True)) == lot.remaining
    assert Payment.objects.get(pk=held.pk).status == "succeeded"


def test_a_plan_giving_only_its_seats_credits_once_a_period_gives_each_seat_its_own(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    """`pro` monthly gives no account credits, 50 for each seat a period: each seat added gets its 50 expiring at
    the period end, the account has none; a full refund takes back what the seats have left, and a seat added
    after it gets nothing."""
    shown = _plan(api, tenant_a, {"limit": 0, "per_entity": PER_SEAT})
    assert shown["features"]["ai_credits"] == {"limit": 0, "per_entity": PER_SEAT}
    payment = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    _no_failed_events()
    period = PlanCreditSlice.objects.get()
    subscription = Subscription.objects.get()
    assert (period.starts_at, period.ends_at) == (
        subscription.current_period_start,
        subscription.current_period_end,
    )
    add(api, tenant_a, "ana")
    assert spend(api, tenant_a, "a1", 15, "ana")["entity"]["balance"] == 35
    assert (balance(api, tenant_a, "ana"), balance(api, tenant_a)) == (35, 0)
    assert CreditLot.objects.filter(entity="").count() == 0
    assert (
        (api.get("/api/v1/credits?customer=user-1&feature=ai_credits", key=tenant_a.key).json()["scheduled"])
        == []
    )
    lot = CreditLot.objects.get(entity="ana")
    assert (lot.source, lot.amount, lot.expires_at) == ("plan", 50, subscription.current_period_end)
    explained = entitlements_explain(
        project=tenant_a.project, customer=Customer.objects.get(external_id="user-1")
    )
    words = next(f for f in explained.features if f.key == "ai_credits").verdict
    assert (
        "Each of the customer's seats may hold credits of its own, spent by the uses naming it before the "
        "account's (removing it forfeits them; the plan gives each 50 with every grant of its credits): ana 35."
    ) in words

    refund = api.post(f"/api/v1/payments/{payment.pk}/refund", {"reason": "requested"}, key=tenant_a.key)
    assert refund.status_code == 200, refund.json()
    stripe_webhooks.deliver()
    _no_failed_events()
    lot.refresh_from_db()
    assert (lot.remaining, lot.voided_at is not None) == (0, True)
    add(api, tenant_a, "bo")
    assert balance(api, tenant_a, "bo") == 0
    assert CreditLot.objects.count() == 1


def test_the_subscriptions_end_gives_no_seat_a_month_after_it(
    api, tenant_a, seat_plan, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, price="pro-yearly")
    add(api, tenant_a, "ana")
    subscription = Subscription.objects.get()
    canceled = api.post(
        f"/api/v1/subscriptions/{subscription.pk}/cancel", {"at_period_end": False}, key=tenant_a.key
    )
    assert canceled.status_code == 200, canceled.json()
    stripe_webhooks.deliver()
    _no_failed_events()
    slices = list(PlanCreditSlice.objects.order_by("index"))
    assert _sweep(slices[11].starts_at + SECOND) == 0
    assert list(CreditLot.objects.exclude(entity="").values_list("entity", "amount")) == [("ana", 50)]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({**PER_SEAT, "credits": 0}, "n ≥ 1"),
        ({**PER_SEAT, "credits": "50"}, "n ≥ 1"),
        ({**PER_SEAT, "credits": True}, "n ≥ 1"),
    ],
)
def test_credits_for_each_entity_that_are_not_a_whole_number_are_refused(
    api, tenant_a, catalog, given, message
):
    for key, kind in (("seats", "allocation"), ("ai_credits", "credits")):
        assert (
            api.post(
                "/api/v1/features", {"key": key, "name": key, "type": kind}, key=tenant_a.key
            ).status_code
            == 201
        )
    before = api.get("/api/v1/products/pro", key=tenant_a.key).json()["features"]
    answer = api.patch(
        "/api/v1/products/pro",
        {"features": {"seats": 3, "ai_credits": {"limit": 0, "per_entity": given}}},
        key=tenant_a.key,
    )
    assert answer.status_code == 400, answer.json()
    assert (answer.json()["error"]["code"], answer.json()["error"]["param"]) == (
        "invalid_feature_value",
        "features.ai_credits.per_entity",
    )
    assert message in answer.json()["error"]["message"]
    assert api.get("/api/v1/products/pro", key=tenant_a.key).json()["features"] == before


def test_a_local_snapshot_holding_a_seats_credits_is_good_until_they_expire(
    api, tenant_a, seat_plan, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, price="pro-yearly")
    add(api, tenant_a, "ana")
    end = PlanCreditSlice.objects.get(index=0).ends_at
    with time_machine.travel(end - 10 * SECOND, tick=False):
        snapshot = api.get("/api/v1/entitlements/snapshot?customer=user-1", key=tenant_a.key)
        assert snapshot.status_code == 200, snapshot.json()
        body = snapshot.json()
        assert body["features"]["ai_credits"]["entity_credits"]["balances"] == {"ana": 50}
        assert body["valid_until"] == end.timestamp()
    assert timezone.now() < end


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_seat_added_while_the_sweep_grants_its_month_gets_that_months_credits_once(
    api, tenant_a, seat_plan, stripe_emulator, stripe_webhooks
):
    """The sweep has claimed the second month (its row locked) when bo is added: the add waits for the grant,
    which did not see bo, then gives bo the month's lot; ana, there before, got hers from the grant. One lot each."""
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, price="pro-yearly")
    add(api, tenant_a, "ana")
    second = PlanCreditSlice.objects.get(index=1)
    claimed, go = threading.Event(), threading.Event()
    answers = {}

    def sweep():
        try:
            with transaction.atomic():
                item = (
                    PlanCreditSlice.objects.select_for_update()
                    .select_related("customer", "plan_period", "feature")
                    .get(pk=second.pk)
                )
                claimed.set()
                go.wait(20)
                _slice_grant(item, now=second.starts_at + SECOND)
        finally:
            connection.close()

    def add_bo():
        try:
            answers["bo"] = Client().post(
                "/api/v1/entitlements/entities",
                {"customer": "user-1", "feature": "seats", "entity": "bo"},
                content_type="application/json",
                headers={"Authorization": f"Bearer {tenant_a.key}"},
            )
        finally:
            connection.close()

    with time_machine.travel(second.starts_at + SECOND):
        sweeper = threading.Thread(target=sweep)
        sweeper.start()
        assert claimed.wait(20)
        adder = threading.Thread(target=add_bo)
        adder.start()
        until_waiting_on_a_lock()
        go.set()
        sweeper.join(30)
        adder.join(30)
    assert answers["bo"].status_code == 201, answers["bo"].json()
    assert sorted(second.entity_lots.values_list("entity", "amount")) == [("ana", 50), ("bo", 50)]
