"""Correcting usage (`POST /usage/corrections`): a usage event voided or amended by its id moves every figure
derived from it (the counter, `GET /usage`, the entitlement answer, the thresholds, `as_of` from then on) and
Stripe's meter (the emulator, through the SDK: a meter event adjustment cancels what it was sent, a replacement
carries what is left); once per correction id; refused, with nothing changed, where Stripe can no longer correct it.
"""

import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from billing.services.meter_corrections import meter_correction_apply
from catalog.models import Feature
from core.models import AuditLogEntry
from core.serializers import api_time
from customers.services.customers import customer_ensure_stripe
from entitlements.models import Hold, UsageCorrection, UsageCounter, UsageEvent
from events.models import Event
from tests.billing.test_meter_reports import billed
from tests.catalog import price_create, product_create
from tests.entitlements.helpers import customer, feature, product


@pytest.fixture
def metered(tenant_a, stripe_emulator):
    """`api_calls`: 10 a period on the default plan, billed by a Stripe meter (2 cents a call)."""
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    usage_product = product_create(p, "usage", "Usage")
    price_create(usage_product, "calls", 2, interval="month", usage_type="metered", meter="api_calls")
    product(p, "free", {calls: 10})
    p.default_product = "free"
    p.save()
    calls.refresh_from_db()
    return calls


def record(api, key, event_id, quantity, status=201):
    response = api.post(
        "/api/v1/usage",
        {"id": event_id, "customer": "u1", "feature": "api_calls", "quantity": quantity},
        key=key,
    )
    assert response.status_code == status, response.json()
    return response.json()


def correct(api, key, status=201, **body):
    response = api.post("/api/v1/usage/corrections", {"reason": "bad deploy", **body}, key=key)
    assert response.status_code == status, response.json()
    return response.json()


def used(api, key):
    return api.get("/api/v1/usage", key=key, json_body={"customer": "u1", "feature": "api_calls"}).json()


def on_meter(stripe_sdk, calls, stripe_customer):
    now = int(time.time())
    summaries = stripe_sdk().v1.billing.meters.event_summaries.list(
        calls.stripe_meter_id,
        {"customer": stripe_customer, "start_time": now - 86400, "end_time": now + 86400},
    )
    return sum(float(s.aggregated_value) for s in summaries.data)


def test_voiding_a_reported_event_cancels_it_on_stripes_meter_once(api, tenant_a, metered, stripe_sdk):
    stripe_customer = customer_ensure_stripe(customer=billed(customer(tenant_a.project, "u1")))
    record(api, tenant_a.key, "e1", 5)
    record(api, tenant_a.key, "e2", 3)
    assert on_meter(stripe_sdk, metered, stripe_customer) == 8
    body = correct(api, tenant_a.key, id="fix-1", event="e1", action="void")
    assert {k: v for k, v in body.items() if k not in ("created_at", "period_start", "stripe_meter")} == {
        "id": "fix-1",
        "object": "usage_correction",
        "event": "e1",
        "customer": "u1",
        "feature": "api_calls",
        "action": "void",
        "quantity_before": 5,
        "quantity_after": 0,
        "reason": "bad deploy",
        "thresholds_uncrossed": ["0.8"],  # 8 of 10 reached 80 %; 3 does not
        "credits": None,  # no credits paid for any of it
        "invoice_adjustment": None,
    }
    assert body["stripe_meter"]["status"] == "pending"  # corrected at Stripe after the commit, by a task
    shown = api.get("/api/v1/usage/corrections/fix-1", key=tenant_a.key).json()
    assert shown["stripe_meter"]["status"] == "adjusted"
    assert on_meter(stripe_sdk, metered, stripe_customer) == 3
    summary = used(api, tenant_a.key)
    assert (summary["quantity"], summary["billed_quantity"], summary["pending_quantity"]) == (3, 3, 0)
    assert UsageCounter.objects.get().used == 3
    event = UsageEvent.objects.get(event_id="e1")
    assert (event.quantity, event.meter_status) == (0, "skipped")
    # The same correction again: answered with the one made; nothing more at Stripe or here.
    again = correct(api, tenant_a.key, status=200, id="fix-1", event="e1", action="void")
    assert again == api.get("/api/v1/usage/corrections/fix-1", key=tenant_a.key).json()
    assert again["quantity_before"] == 5
    assert on_meter(stripe_sdk, metered, stripe_customer) == 3
    assert UsageCounter.objects.get().used == 3
    assert UsageCorrection.objects.count() == 1
    audited = AuditLogEntry.objects.get(action="usage_event.voided")
    assert (audited.reason, audited.before, audited.after) == (
        "bad deploy",
        {"event": "e1", "quantity": 5},
        {"event": "e1", "quantity": 0},
    )
    announced = Event.objects.get(type="usage.corrected")
    assert (announced.data["object"]["id"], announced.data["object"]["quantity_after"]) == ("fix-1", 0)


def test_amending_twice_leaves_one_replacement_on_the_meter(api, tenant_a, metered, stripe_sdk):
    stripe_customer = customer_ensure_stripe(customer=billed(customer(tenant_a.project, "u1")))
    record(api, tenant_a.key, "e1", 5)
    record(api, tenant_a.key, "e2", 3)
    assert (
        correct(api, tenant_a.key, id="fix-1", event="e1", action="amend", quantity=2)["quantity_after"] == 2
    )
    assert on_meter(stripe_sdk, metered, stripe_customer) == 5
    second = correct(api, tenant_a.key, id="fix-2", event="e1", action="amend", quantity=7)
    assert (second["quantity_before"], second["quantity_after"]) == (2, 7)
    assert on_meter(stripe_sdk, metered, stripe_customer) == 10
    summary = used(api, tenant_a.key)
    assert (summary["quantity"], summary["billed_quantity"], summary["amount_due_estimate"]) == (10, 10, 20)
    assert UsageEvent.objects.get(event_id="e1").meter_status == "reported"


def test_an_event_stripe_never_received_is_corrected_here_only(api, tenant_a, metered):
    customer(tenant_a.project, "u1")  # no subscription on the meter: its usage is skipped, not billed
    record(api, tenant_a.key, "e1", 6)
    body = correct(api, tenant_a.key, id="fix-1", event="e1", action="amend", quantity=4)
    assert body["stripe_meter"] == {"status": "none", "adjusted_at": None, "error": None}
    assert used(api, tenant_a.key)["quantity"] == 4
    listed = api.get("/api/v1/entitlements", key=tenant_a.key, json_body={"customer": "u1"}).json()
    calls = next(row for row in listed["entitlements"] if row["feature"] == "api_calls")
    assert (calls["used"], calls["remaining"]) == (4, 6)


def test_a_threshold_no_longer_reached_is_reported_and_not_announced_again(api, tenant_a, metered):
    customer(tenant_a.project, "u1")
    record(api, tenant_a.key, "e1", 9)  # 80 % of 10
    body = correct(api, tenant_a.key, id="fix-1", event="e1", action="void")
    assert body["thresholds_uncrossed"] == ["0.8"]
    record(api, tenant_a.key, "e2", 8)  # 0 → 8: 80 % again
    assert Event.objects.filter(type="usage.threshold_reached").count() == 1
    # An amendment up reaches 100 %: announced, as usage does.
    correct(api, tenant_a.key, id="fix-2", event="e2", action="amend", quantity=10)
    reached = [
        e.data["object"]["threshold"]
        for e in Event.objects.filter(type="usage.threshold_reached").order_by("sequence")
    ]
    assert reached == [0.8, 1.0]


def test_as_of_before_a_correction_answers_what_was_known_then(api, tenant_a, metered):
    customer(tenant_a.project, "u1")
    record(api, tenant_a.key, "e1", 9)
    before = timezone.now() + timedelta(seconds=1)
    with time_machine.travel(before + timedelta(seconds=1)):
        correct(api, tenant_a.key, id="fix-1", event="e1", action="amend", quantity=1)

        def remaining(at):
            body = {"customer": "u1", "feature": "api_calls", "as_of": api_time(at)}
            return api.get("/api/v1/entitlements/check", key=tenant_a.key, json_body=body).json()["remaining"]

        assert remaining(before) == 1
        assert remaining(timezone.now()) == 9


def test_another_tenant_can_neither_correct_nor_read_it(api, tenant_a, tenant_b, metered):
    customer(tenant_a.project, "u1")
    record(api, tenant_a.key, "e1", 5)
    correct(api, tenant_a.key, id="fix-1", event="e1", action="amend", quantity=4)
    assert (
        correct(api, tenant_b.key, 404, id="fix-2", event="e1", action="void")["error"]["type"] == "not_found"
    )
    assert api.get("/api/v1/usage/corrections/fix-1", key=tenant_b.key).status_code == 404
    assert UsageEvent.objects.get(event_id="e1").quantity == 4


def test_refusals_change_nothing(api, tenant_a, metered, stripe_sdk):
    stripe_customer = customer_ensure_stripe(customer=billed(customer(tenant_a.project, "u1")))
    record(api, tenant_a.key, "e1", 5)
    assert (
        correct(api, tenant_a.key, 404, id="x", event="nope", action="void")["error"]["type"] == "not_found"
    )
    missing = correct(api, tenant_a.key, 400, id="x", event="e1", action="amend")["error"]
    assert (missing["code"], missing["param"]) == ("parameter_missing", "quantity")
    same = correct(api, tenant_a.key, 400, id="x", event="e1", action="amend", quantity=5)["error"]
    assert same["code"] == "correction_unchanged"
    correct(api, tenant_a.key, id="fix-1", event="e1", action="amend", quantity=4)
    reused = correct(api, tenant_a.key, 409, id="fix-1", event="e1", action="amend", quantity=3)["error"]
    assert reused["code"] == "idempotency_id_reused"
    # A day later Stripe's meter cancels it no more: refused, and nothing here moves either.
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        late = correct(api, tenant_a.key, 409, id="fix-2", event="e1", action="void")["error"]
    assert late["code"] == "usage_invoiced"
    assert "within 24 hours" in late["message"]
    assert UsageEvent.objects.get(event_id="e1").quantity == 4
    assert UsageCounter.objects.get().used == 4
    assert list(UsageCorrection.objects.values_list("correction_id", flat=True)) == ["fix-1"]
    assert on_meter(stripe_sdk, metered, stripe_customer) == 4


def test_a_report_in_flight_is_waited_for_before_the_cancellation(api, tenant_a, metered, stripe_sdk):
    """A reporter that claimed the event may be sending it: the meter correction waits for its claim, so the
    cancellation never overtakes the meter event it cancels."""
    stripe_customer = customer_ensure_stripe(customer=billed(customer(tenant_a.project, "u1")))
    record(api, tenant_a.key, "e1", 5)
    claim = timezone.now() + timedelta(seconds=120)
    UsageEvent.objects.filter(event_id="e1").update(meter_status="pending", meter_next_attempt_at=claim)
    body = correct(api, tenant_a.key, id="fix-1", event="e1", action="amend", quantity=2)
    assert body["stripe_meter"]["status"] == "pending"
    correction = UsageCorrection.objects.get()
    assert meter_correction_apply(correction_id=correction.pk) == pytest.approx(120, abs=5)
    assert on_meter(stripe_sdk, metered, stripe_customer) == 5  # nothing canceled yet
    with time_machine.travel(claim + timedelta(seconds=1)):
        assert meter_correction_apply(correction_id=correction.pk) is None
    assert on_meter(stripe_sdk, metered, stripe_customer) == 2
    assert api.get("/api/v1/usage/corrections/fix-1", key=tenant_a.key).json()["stripe_meter"]["status"] == (
        "adjusted"
    )


def test_an_operator_voids_an_event_in_the_admin_once(
    api, tenant_a, metered, stripe_sdk, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import User
    from django.test import Client

    stripe_customer = customer_ensure_stripe(customer=billed(customer(tenant_a.project, "u1")))
    record(api, tenant_a.key, "e1", 5)
    record(api, tenant_a.key, "e2", 3)
    operator = Client()
    operator.force_login(User.objects.create_superuser("root", password="pw"))
    event = UsageEvent.objects.get(event_id="e1")
    form = {"action": "void", "_selected_action": [event.pk], "apply": "1", "reason": "test traffic"}
    for _ in range(2):  # the form sent twice voids once
        with django_capture_on_commit_callbacks(execute=True):
            assert operator.post("/admin/entitlements/usageevent/", form).status_code == 302
    correction = UsageCorrection.objects.get()
    assert (correction.quantity_before, correction.quantity_after, correction.meter) == (5, 0, "adjusted")
    entry = AuditLogEntry.objects.get(action="usage_event.voided")
    assert (entry.actor_type, entry.actor_repr, entry.reason) == ("user", "root", "test traffic")
    assert used(api, tenant_a.key)["quantity"] == 3
    assert on_meter(stripe_sdk, metered, stripe_customer) == 3
    assert operator.get("/admin/entitlements/usagecorrection/").status_code == 200


def test_a_closed_period_is_backfilled_only_with_no_billing_side_effects(api, tenant_a, metered, stripe_sdk):
    stripe_customer = customer_ensure_stripe(customer=billed(customer(tenant_a.project, "u1")))
    record(api, tenant_a.key, "now-1", 2)
    counter = UsageCounter.objects.get()
    long_ago = counter.period_start - timedelta(days=45)  # two periods back, long past the grace window
    body = {
        "id": "old-1",
        "customer": "u1",
        "feature": "api_calls",
        "quantity": 7,
        "timestamp": api_time(long_ago),
    }
    refused = api.post("/api/v1/usage", body, key=tenant_a.key).json()["error"]
    assert (refused["code"], refused["param"]) == ("timestamp_too_old", "timestamp")
    assert "no_billing_side_effects" in refused["message"]
    assert UsageEvent.objects.filter(event_id="old-1").count() == 0
    response = api.post("/api/v1/usage", {**body, "no_billing_side_effects": True}, key=tenant_a.key)
    assert response.status_code == 201, response.json()
    event = response.json()
    assert (event["quantity"], event["stripe_meter"]["status"]) == (7, "skipped")
    assert event["period_start"] < api_time(counter.period_start)
    old = UsageCounter.objects.exclude(pk=counter.pk).get()
    assert (old.used, old.period_start <= long_ago < old.period_end) == (7, True)
    assert UsageCounter.objects.get(pk=counter.pk).used == 2  # the open period's use is untouched
    assert used(api, tenant_a.key)["quantity"] == 2
    assert on_meter(stripe_sdk, metered, stripe_customer) == 2  # nothing sent to Stripe's meter
    # A retry is the same event; the backfilled event is corrected like any other, here only.
    assert (
        api.post("/api/v1/usage", {**body, "no_billing_side_effects": True}, key=tenant_a.key).status_code
        == 200
    )
    fixed = correct(api, tenant_a.key, id="fix-old", event="old-1", action="amend", quantity=5)
    assert fixed["stripe_meter"]["status"] == "none"
    assert UsageCounter.objects.get(pk=old.pk).used == 5
    # Up too: still no billing side effect — neither the meter nor the next invoice.
    up = correct(api, tenant_a.key, id="fix-old-up", event="old-1", action="amend", quantity=9)
    assert (up["stripe_meter"]["status"], up["invoice_adjustment"]) == ("none", None)
    assert UsageEvent.objects.get(event_id="old-1").meter_status == "skipped"
    assert UsageCounter.objects.get(pk=old.pk).used == 9
    assert on_meter(stripe_sdk, metered, stripe_customer) == 2
    assert stripe_sdk().v1.invoice_items.list({"customer": stripe_customer}).data == []


def test_usage_stripe_invoiced_is_credited_on_the_next_invoice_when_asked(api, tenant_a, metered, stripe_sdk):
    stripe_customer = customer_ensure_stripe(customer=billed(customer(tenant_a.project, "u1")))
    record(api, tenant_a.key, "e1", 5)
    record(api, tenant_a.key, "e2", 3)
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert correct(api, tenant_a.key, 409, id="fix-1", event="e1", action="void")["error"]["code"] == (
            "usage_invoiced"
        )
        body = correct(api, tenant_a.key, id="fix-1", event="e1", action="void", invoiced="credit")
        shown = api.get("/api/v1/usage/corrections/fix-1", key=tenant_a.key).json()
    # 8 units billed at 2 cents; 3 after the void: the next invoice is 10 cents less.
    assert body["invoice_adjustment"] == {
        "amount": -10,
        "currency": "usd",
        "status": "pending",
        "invoice_item": None,
    }
    assert body["stripe_meter"]["status"] == "invoiced"
    item_id = shown["invoice_adjustment"]["invoice_item"]
    assert (shown["invoice_adjustment"]["status"], item_id.startswith("ii_")) == ("created", True)
    items = stripe_sdk().v1.invoice_items.list({"customer": stripe_customer}).data
    assert [(i.id, i.amount, i.currency, i.invoice) for i in items] == [(item_id, -10, "usd", None)]
    assert on_meter(stripe_sdk, metered, stripe_customer) == 8  # the meter stays as Stripe billed it
    assert UsageEvent.objects.get(event_id="e1").quantity == 0
    assert UsageCounter.objects.get().used == 3
    # The same correction again makes no second item.
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        correct(api, tenant_a.key, 200, id="fix-1", event="e1", action="void", invoiced="credit")
    assert len(stripe_sdk().v1.invoice_items.list({"customer": stripe_customer}).data) == 1


def test_units_gained_after_stripe_invoiced_the_period_are_billed_on_the_next_invoice_never_on_the_meter(
    api, tenant_a, metered, stripe_sdk
):
    """An event voided in its period (canceled on Stripe's meter) and one of 0 units (never sent) gain units once
    Stripe has invoiced their period: the next invoice bills them, nothing reaches Stripe's meter (it would take
    them into the period already billed), and a later correction adjusts from what is billed so far. Found by the
    renewals property test: the voided event was sent to the meter and billed on the invoice too, the other was
    sent to the meter only, and a later correction then adjusted from 0."""
    stripe_customer = customer_ensure_stripe(customer=billed(customer(tenant_a.project, "u1")))
    record(api, tenant_a.key, "e1", 5)
    record(api, tenant_a.key, "zero", 0)
    correct(api, tenant_a.key, id="fix-1", event="e1", action="void")
    end = UsageCounter.objects.get().period_end
    with time_machine.travel(end + timedelta(hours=1)):
        up = correct(api, tenant_a.key, id="fix-2", event="e1", action="amend", quantity=7, invoiced="credit")
        zero = correct(
            api, tenant_a.key, id="fix-3", event="zero", action="amend", quantity=4, invoiced="credit"
        )
        down = correct(
            api, tenant_a.key, id="fix-4", event="e1", action="amend", quantity=2, invoiced="credit"
        )
    # 7 units billed (14 cents), 4 more (8), then 5 fewer (−10): what the period bills is 6 units.
    assert [(c["invoice_adjustment"]["amount"], c["stripe_meter"]["status"]) for c in (up, zero, down)] == [
        (14, "invoiced"),
        (8, "invoiced"),
        (-10, "invoiced"),
    ]
    items = stripe_sdk().v1.invoice_items.list({"customer": stripe_customer}).data
    assert sorted(i.amount for i in items) == [-10, 8, 14]
    assert on_meter(stripe_sdk, metered, stripe_customer) == 0  # the void's cancellation, nothing since
    assert dict(UsageEvent.objects.values_list("event_id", "meter_status")) == {
        "e1": "reported",
        "zero": "reported",
    }
    assert UsageCounter.objects.get().used == 6


def test_a_hold_s_report_is_corrected_once_the_hold_has_ended(api, tenant_a, metered, stripe_sdk):
    """While the hold is open its report is the hold's to answer for (refused, nothing moves); once confirmed, a
    report is recorded usage like any other: voided, the counter, the hold's answer and Stripe's meter follow."""
    stripe_customer = customer_ensure_stripe(customer=billed(customer(tenant_a.project, "u1")))
    hold = {"id": "h1", "customer": "u1", "feature": "api_calls", "quantity": 8, "expires_in": 3600}
    assert api.post("/api/v1/entitlements/holds", hold, key=tenant_a.key).json()["allowed"] is True
    reported = {"events": [{"id": "h1-a", "quantity": 3}]}
    assert api.post("/api/v1/entitlements/holds/h1/usage", reported, key=tenant_a.key).status_code == 200
    open_hold = correct(api, tenant_a.key, 409, id="fix-1", event="h1-a", action="void")["error"]
    assert (open_hold["code"], open_hold["param"]) == ("correction_unsupported", "event")
    assert "hold still open" in open_hold["message"]
    assert UsageCorrection.objects.count() == 0
    assert UsageCounter.objects.values_list("used", "held").get() == (8, 5)  # used counts the held units
    confirmed = api.post("/api/v1/entitlements/holds/h1/confirm", {"quantity": 5}, key=tenant_a.key)
    assert confirmed.status_code == 200, confirmed.json()
    assert UsageCounter.objects.values_list("used", "held").get() == (5, 0)
    body = correct(api, tenant_a.key, id="fix-1", event="h1-a", action="void")
    assert (body["quantity_before"], body["quantity_after"], body["stripe_meter"]["status"]) == (
        3,
        0,
        "pending",
    )
    assert UsageCounter.objects.values_list("used", "held").get() == (2, 0)
    assert used(api, tenant_a.key)["quantity"] == 2
    hold_pk = Hold.objects.get(hold_id="h1").pk  # the confirm's 2 units kept are the hold's own event
    assert dict(UsageEvent.objects.values_list("event_id", "quantity")) == {"h1-a": 0, hold_pk: 2}
    assert on_meter(stripe_sdk, metered, stripe_customer) == 2
    # Once: the same correction again changes nothing.
    assert correct(api, tenant_a.key, 200, id="fix-1", event="h1-a", action="void")["quantity_after"] == 0
    assert UsageCounter.objects.values_list("used", "held").get() == (2, 0)
