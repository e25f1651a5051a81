"""Correcting usage a credits waterfall paid for, and usage naming an entity (`POST /usage/corrections`): the
units credits paid are an event's last, so a correction down gives their credits back to the lots they came
from (ledger entries `correction` naming the event), and a correction up is paid as more use of the period is
(allowance, credits, then past the limit); Stripe's meter is told only of a change to what it bills; the
entity's counter and own windows follow its event."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from catalog.models import Feature
from customers.services.customers import customer_ensure_stripe
from entitlements.models import (
    CreditLedgerEntry,
    CreditLot,
    EntityCounter,
    EntityWindowCounter,
    UsageCorrection,
    UsageCounter,
    UsageEvent,
)
from entitlements.services.meter_totals import meter_totals_rebuild
from tests.billing.test_meter_reports import billed
from tests.entitlements.helpers import customer, feature, product, subscribe
from tests.entitlements.test_credits_waterfall import check, consume, grant
from tests.entitlements.test_entities import add
from tests.entitlements.test_entities import consume as entity_consume
from tests.entitlements.test_entity_windows import PER_SEAT, START, seated  # noqa: F401 (the fixture)
from tests.entitlements.test_usage_corrections import correct, on_meter


@pytest.fixture
def waterfall(tenant_a):
    """`summaries`: 10 a period, then 2 `ai_credits` a unit, then refused."""
    p = tenant_a.project
    summaries = feature(p, "summaries", Feature.Type.METERED)
    feature(p, "ai_credits", Feature.Type.CREDITS)
    value = {"limit": 10, "credits": {"feature": "ai_credits", "cost": 2}}
    return subscribe(customer(p, "u1"), product(p, "pro", {summaries: value}))


def _counter():
    return UsageCounter.objects.values_list("used", "held", "covered").get()


def _balance():
    return sum(CreditLot.objects.values_list("remaining", flat=True))


def _event(event_id):
    return UsageEvent.objects.values_list("quantity", "covered").get(event_id=event_id)


def _corrections(event_id):
    return list(
        CreditLedgerEntry.objects.filter(type="correction", reference=event_id)
        .order_by("created_at")
        .values_list("amount", flat=True)
    )


def test_a_void_gives_the_credits_back_and_an_amendment_up_spends_them_again(api, tenant_a, waterfall):
    grant(api, tenant_a, 9)  # pays for 4 units
    consume(api, tenant_a, "c1", 8)
    consume(api, tenant_a, "c2", 5)  # 2 from the allowance, 3 from credits (6)
    assert (_counter(), _balance(), _event("c2")) == ((13, 0, 3), 3, (5, 3))
    # Amended down by 2: the units credits paid are the event's last, so 2 of them go, and their 4 credits.
    body = correct(api, tenant_a.key, id="fix-1", event="c2", action="amend", quantity=3)
    assert body["credits"] == {
        "feature": "ai_credits",
        "covered_before": 3,
        "covered_after": 1,
        "returned": 4,
        "later_units": 0,
        "later_returned": 0,
    }
    assert body["stripe_meter"]["status"] == "none"
    assert (_counter(), _balance(), _event("c2"), _corrections("c2")) == ((11, 0, 1), 7, (3, 1), [4])
    # Amended up by 4: no allowance is left, so credits pay for 3 (6 credits) and 1 is past the limit.
    body = correct(api, tenant_a.key, id="fix-2", event="c2", action="amend", quantity=7)
    assert body["credits"] == {
        "feature": "ai_credits",
        "covered_before": 1,
        "covered_after": 4,
        "returned": -6,
        "later_units": 0,
        "later_returned": 0,
    }
    assert (_counter(), _balance(), _event("c2"), _corrections("c2")) == ((15, 0, 4), 1, (7, 4), [4, -6])
    before_void = check(api, tenant_a)
    at = timezone.now().isoformat().replace("+00:00", "Z")
    # Voided: every credit it still holds goes back; the counter and the balance are as if it never happened.
    body = correct(api, tenant_a.key, id="fix-3", event="c2", action="void")
    assert body["credits"] == {
        "feature": "ai_credits",
        "covered_before": 4,
        "covered_after": 0,
        "returned": 8,
        "later_units": 0,
        "later_returned": 0,
    }
    assert (_counter(), _balance(), _event("c2"), _corrections("c2")) == ((8, 0, 0), 9, (0, 0), [4, -6, 8])
    answer = api.get("/api/v1/entitlements/check?customer=u1&feature=ai_credits", key=tenant_a.key).json()
    assert answer["balance"] == 9
    # As of before the void, the answers are what they were then: 15 used, 4 of them paid with credits.
    then = api.get(
        f"/api/v1/entitlements/check?customer=u1&feature=summaries&quantity=1&as_of={at}", key=tenant_a.key
    )
    assert then.json() == before_void
    assert (then.json()["used"], then.json()["credits"]["covered"], then.json()["credits"]["balance"]) == (
        15,
        4,
        1,
    )
    # The same corrections again: answered as made, nothing moves twice.
    again = correct(api, tenant_a.key, status=200, id="fix-1", event="c2", action="amend", quantity=3)
    assert again["credits"]["returned"] == 4
    assert (_counter(), _balance(), CreditLedgerEntry.objects.filter(type="correction").count()) == (
        (8, 0, 0),
        9,
        3,
    )
    # A use without credits is corrected without a credits part.
    assert correct(api, tenant_a.key, id="fix-4", event="c1", action="amend", quantity=6)["credits"] is None
    assert _counter() == (6, 0, 0)


def test_credits_go_back_last_taken_first_and_not_to_a_lot_taken_back(api, tenant_a, waterfall):
    grant(api, tenant_a, 4, reason="first", priority=1)  # spent first
    grant(api, tenant_a, 6, reason="second", priority=5)
    consume(api, tenant_a, "c1", 10)
    consume(api, tenant_a, "c2", 4)  # 8 credits: 4 from the first lot, then 4 from the second
    first, second = CreditLot.objects.order_by("priority")
    assert (first.remaining, second.remaining) == (0, 2)
    correct(api, tenant_a.key, id="fix-1", event="c2", action="amend", quantity=3)  # 2 credits back
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.remaining, second.remaining) == (0, 4)  # to the second lot, taken from last
    # The first lot's grant is taken back: the credits it paid for c2 are gone with it, not given back.
    grant_id = first.grant_id
    assert api.delete(f"/api/v1/entitlements/grants/{grant_id}", key=tenant_a.key).status_code in (200, 204)
    body = correct(api, tenant_a.key, id="fix-2", event="c2", action="void")
    assert body["credits"] == {
        "feature": "ai_credits",
        "covered_before": 3,
        "covered_after": 0,
        "returned": 2,
        "later_units": 0,
        "later_returned": 0,
    }
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.remaining, second.remaining, first.voided_at is not None) == (0, 6, True)
    assert _counter() == (10, 0, 0)


@pytest.fixture
def metered_waterfall(api, tenant_a, stripe_emulator):
    """`api_calls` billed by a Stripe meter (2 cents a call): 10 a period, then 1 `ai_credits` a call, then
    overage; u1 has a Stripe customer and 4 credits granted."""
    from tests.catalog import price_create, product_create

    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    feature(p, "ai_credits", Feature.Type.CREDITS)
    usage = product_create(p, "usage", "Usage")
    price_create(usage, "calls", 2, interval="month", usage_type="metered", meter="api_calls")
    product(p, "free", {calls: {"limit": 10, "overage": "allowed", "credits": {"feature": "ai_credits"}}})
    p.default_product = "free"
    p.save()
    calls.refresh_from_db()
    stripe_customer = customer_ensure_stripe(customer=billed(customer(p, "u1")))
    grant = {"customer": "u1", "feature": "ai_credits", "value": 4, "reason": "promo"}
    assert api.post("/api/v1/entitlements/grants", grant, key=tenant_a.key).status_code == 201
    return calls, stripe_customer


def test_the_meter_hears_only_of_a_change_to_what_it_bills(api, tenant_a, metered_waterfall, stripe_sdk):
    calls, stripe_customer = metered_waterfall
    for event_id, quantity in (("c1", 10), ("c2", 6)):  # 10 allowance; 4 credits + 2 overage
        body = {"id": event_id, "customer": "u1", "feature": "api_calls", "quantity": quantity}
        assert api.post("/api/v1/entitlements/consume", body, key=tenant_a.key).json()["allowed"] is True
    assert on_meter(stripe_sdk, calls, stripe_customer) == 12
    # Down by 3: the 3 last units credits paid; the meter billed 2 of c2 and still does — nothing sent.
    body = correct(api, tenant_a.key, id="fix-1", event="c2", action="amend", quantity=3)
    assert (body["stripe_meter"]["status"], body["credits"]["returned"]) == ("none", 3)
    assert on_meter(stripe_sdk, calls, stripe_customer) == 12
    assert UsageEvent.objects.values_list("quantity", "covered", "meter_status").get(event_id="c2") == (
        3,
        1,
        "reported",
    )
    # Voided: the last credit back, and the 2 billed units canceled at Stripe's meter.
    body = correct(api, tenant_a.key, id="fix-2", event="c2", action="void")
    assert (body["credits"]["returned"], body["stripe_meter"]["status"]) == (1, "pending")
    assert api.get("/api/v1/usage/corrections/fix-2", key=tenant_a.key).json()["stripe_meter"]["status"] == (
        "adjusted"
    )
    assert on_meter(stripe_sdk, calls, stripe_customer) == 10
    summary = api.get("/api/v1/usage", key=tenant_a.key, json_body={"customer": "u1", "feature": "api_calls"})
    assert (summary.json()["quantity"], summary.json()["billed_quantity"]) == (10, 10)
    assert _balance() == 4
    assert UsageCorrection.objects.count() == 2


def test_an_entitys_counter_and_own_windows_follow_its_event(api, tenant_a, seated):  # noqa: F811
    with time_machine.travel(START, tick=False):
        add(api, tenant_a, "ana")
        for i in range(3):
            assert entity_consume(api, tenant_a, f"a{i}", quantity=1, entity="ana")["allowed"] is True
        refused = entity_consume(api, tenant_a, "a3", entity="ana")
        assert (refused["allowed"], refused["entity"]["binding"]) == (False, "minute")
        body = correct(api, tenant_a.key, id="fix-1", event="a0", action="void")
        assert body["quantity_after"] == 0
        assert EntityCounter.objects.get(entity="ana").used == 2
        assert dict(EntityWindowCounter.objects.filter(entity="ana").values_list("span", "used")) == {
            "minute": 2,
            "day": 2,
        }
        assert UsageCounter.objects.get(feature=seated).used == 2
        assert (
            entity_consume(api, tenant_a, "a4", entity="ana")["allowed"] is True
        )  # the minute has room again
        correct(
            api, tenant_a.key, id="fix-2", event="a1", action="amend", quantity=3
        )  # recorded: never refused
        assert EntityCounter.objects.get(entity="ana").used == 5
        assert dict(EntityWindowCounter.objects.filter(entity="ana").values_list("span", "used")) == {
            "minute": 5,
            "day": 5,
        }
    # A day later: the entity's day window that counted it is over; its period counter still follows.
    with time_machine.travel(START + timedelta(days=1), tick=False):
        correct(api, tenant_a.key, id="fix-3", event="a1", action="void")
        assert EntityCounter.objects.get(entity="ana").used == 2
        assert dict(
            EntityWindowCounter.objects.filter(
                entity="ana", window_start__lt=datetime(2026, 11, 26, tzinfo=UTC)
            ).values_list("span", "used")
        ) == {"minute": 5, "day": 5}


def test_allowance_a_void_frees_pays_for_later_units_credits_paid_and_gives_their_credits_back(
    api, tenant_a, waterfall
):
    """A bad deploy's usage voided: the allowance it took pays for the period's later units credits paid, the
    latest first, as if it had never been recorded — their credits go back, once."""
    grant(api, tenant_a, 20)  # pays for 10 units
    consume(api, tenant_a, "bad", 8)  # the allowance's
    consume(api, tenant_a, "c2", 5)  # 2 from the allowance, 3 from credits (6)
    consume(api, tenant_a, "c3", 4)  # 4 from credits (8)
    assert (_counter(), _balance(), _event("c2"), _event("c3")) == ((17, 0, 7), 6, (5, 3), (4, 4))
    at = timezone.now().isoformat().replace("+00:00", "Z")
    before_void = check(api, tenant_a)

    body = correct(api, tenant_a.key, id="fix-1", event="bad", action="void")
    # 8 units of allowance free: c3's 4 (8 credits), then c2's 3 (6 credits); 1 unit of allowance is left.
    assert body["credits"] == {
        "feature": "ai_credits",
        "covered_before": 0,
        "covered_after": 0,
        "returned": 0,
        "later_units": 7,
        "later_returned": 14,
    }
    assert (_counter(), _balance(), _event("c2"), _event("c3")) == ((9, 0, 0), 20, (5, 0), (4, 0))
    assert (_corrections("c2"), _corrections("c3"), _corrections("bad")) == ([6], [8], [])
    assert (check(api, tenant_a)["remaining"], check(api, tenant_a)["credits"]["balance"]) == (1, 20)
    # As of before the void, the answers are what they were then.
    then = api.get(
        f"/api/v1/entitlements/check?customer=u1&feature=summaries&quantity=1&as_of={at}", key=tenant_a.key
    )
    assert then.json() == before_void
    # Once: the same correction again moves nothing.
    assert (
        correct(api, tenant_a.key, 200, id="fix-1", event="bad", action="void")["credits"]["later_units"] == 7
    )
    assert (_counter(), _balance(), CreditLedgerEntry.objects.filter(type="correction").count()) == (
        (9, 0, 0),
        20,
        2,
    )
    # Amended back up to 8: the allowance's last unit, then credits for 7 (14) — the event's last units.
    body = correct(api, tenant_a.key, id="fix-2", event="bad", action="amend", quantity=8)
    assert (
        body["credits"]["covered_after"],
        body["credits"]["returned"],
        body["credits"]["later_units"],
    ) == (
        7,
        -14,
        0,
    )
    assert (_counter(), _balance(), _event("bad")) == ((17, 0, 7), 6, (8, 7))


def test_later_units_the_allowance_pays_now_are_sent_to_stripes_meter(
    api, tenant_a, metered_waterfall, stripe_sdk
):
    calls, stripe_customer = metered_waterfall
    for event_id, quantity in (("bad", 10), ("c2", 3)):  # 10 allowance; 3 credits (nothing to bill)
        body = {"id": event_id, "customer": "u1", "feature": "api_calls", "quantity": quantity}
        assert api.post("/api/v1/entitlements/consume", body, key=tenant_a.key).json()["allowed"] is True
    assert on_meter(stripe_sdk, calls, stripe_customer) == 10
    assert UsageEvent.objects.values_list("covered", "meter_status").get(event_id="c2") == (3, "skipped")

    body = correct(api, tenant_a.key, id="fix-1", event="bad", action="void")
    assert (
        body["stripe_meter"]["status"],
        body["credits"]["later_units"],
        body["credits"]["later_returned"],
    ) == (
        "pending",
        3,
        3,
    )
    # The void canceled at Stripe; c2's 3 units, the allowance's now, sent by the reporter: the meter holds the
    # period's units no credits pay, and the totals agree.
    assert on_meter(stripe_sdk, calls, stripe_customer) == 3
    assert UsageEvent.objects.values_list("covered", "meter_status").get(event_id="c2") == (0, "reported")
    assert (_counter(), _balance()) == ((3, 0, 0), 4)
    assert meter_totals_rebuild(project_id=tenant_a.project.pk) == []


def test_later_units_of_an_event_stripes_meter_holds_are_added_to_it_and_a_later_correction_cancels_them(
    api, tenant_a, metered_waterfall, stripe_sdk
):
    """The allowance a void frees pays for units credits paid of an event Stripe's meter holds already: their
    credits go back and Stripe's meter is sent them as a meter event of their own (Tollgate's `allowance`
    correction of the event, not the tenant's), so the meter bills every unit no credits pay; a later correction
    of that event cancels both meter events it was sent as and sends what it corrects to."""
    calls, stripe_customer = metered_waterfall
    for event_id, quantity in (("bad", 8), ("c2", 5)):  # 8 allowance; 2 allowance + 3 credits
        body = {"id": event_id, "customer": "u1", "feature": "api_calls", "quantity": quantity}
        assert api.post("/api/v1/entitlements/consume", body, key=tenant_a.key).json()["allowed"] is True
    assert on_meter(stripe_sdk, calls, stripe_customer) == 10
    assert UsageEvent.objects.values_list("covered", "meter_status").get(event_id="c2") == (3, "reported")
    assert (_counter(), _balance()) == ((13, 0, 3), 1)

    body = correct(api, tenant_a.key, id="fix-1", event="bad", action="void")
    assert (body["credits"]["later_units"], body["credits"]["later_returned"]) == (3, 3)
    # bad canceled; c2's 3 units, the allowance's now, added: the meter bills the 5 units no credits pay.
    assert on_meter(stripe_sdk, calls, stripe_customer) == 5
    assert UsageEvent.objects.values_list("covered", "meter_status").get(event_id="c2") == (0, "reported")
    assert (_counter(), _balance(), _corrections("c2")) == ((5, 0, 0), 4, [3])
    assert meter_totals_rebuild(project_id=tenant_a.project.pk) == []
    made = UsageCorrection.objects.get(event_id="c2")
    assert (
        made.action,
        made.correction_id,
        made.quantity_before,
        made.quantity_after,
        made.covered_before,
        made.covered_after,
        made.meter,
    ) == (
        "allowance",
        f"{UsageCorrection.objects.get(correction_id='fix-1').pk}:{made.usage_event_id}",
        5,
        5,
        3,
        0,
        "adjusted",
    )
    assert api.get(f"/api/v1/usage/corrections/{made.correction_id}", key=tenant_a.key).status_code == 404
    # The same void again moves nothing and sends nothing.
    correct(api, tenant_a.key, 200, id="fix-1", event="bad", action="void")
    assert (on_meter(stripe_sdk, calls, stripe_customer), UsageCorrection.objects.count()) == (5, 2)

    # c2 amended to 1: its meter event and the added one are canceled, 1 unit sent in their place.
    body = correct(api, tenant_a.key, id="fix-2", event="c2", action="amend", quantity=1)
    assert body["stripe_meter"]["status"] == "pending"
    assert on_meter(stripe_sdk, calls, stripe_customer) == 1
    assert UsageEvent.objects.values_list("quantity", "covered", "meter_status").get(event_id="c2") == (
        1,
        0,
        "reported",
    )
    assert (_counter(), _balance()) == ((1, 0, 0), 4)
    assert meter_totals_rebuild(project_id=tenant_a.project.pk) == []


def test_allowance_a_void_frees_pays_for_recorded_usage_credits_paid_too(api, tenant_a, waterfall):
    """Usage recorded (`POST /usage`), not only consumed, that credits paid once the allowance ran out is paid by
    the allowance a void frees: its credits go back."""
    grant(api, tenant_a, 20)
    for event_id, quantity in (("bad", 8), ("r2", 5)):  # 8 allowance; 2 allowance + 3 credits (6)
        body = {"id": event_id, "customer": "u1", "feature": "summaries", "quantity": quantity}
        assert api.post("/api/v1/usage", body, key=tenant_a.key).status_code == 201
    assert (_counter(), _balance(), _event("r2")) == ((13, 0, 3), 14, (5, 3))

    body = correct(api, tenant_a.key, id="fix-1", event="bad", action="void")
    assert (body["credits"]["later_units"], body["credits"]["later_returned"]) == (3, 6)
    assert (_counter(), _balance(), _event("r2"), _corrections("r2")) == ((5, 0, 0), 20, (5, 0), [6])
