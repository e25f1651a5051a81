"""Period totals of usage by Stripe-meter status (`UsageMeterTotal`): kept exact as usage is recorded (batch, single
event, metered consume) and as billing's reporter reports, fails, retries and skips it; `GET /usage` reads them
and no usage event; `manage.py usage_meter_totals` finds and repairs drift."""

import random
import re
from datetime import datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from billing import tasks
from billing.services import meter_reports
from customers.services.customers import customer_ensure_stripe
from entitlements.models import UsageEvent, UsageMeterTotal
from entitlements.services.meter_totals import meter_status_move, meter_totals_rebuild
from tests.billing import test_meter_reports
from tests.entitlements.helpers import customer

billed = test_meter_reports.billed
metered = (
    test_meter_reports.metered
)  # the fixture: a metered feature sold with a metered price (a Stripe meter)
USAGE_EVENT_TABLE = re.compile(r"entitlements_usageevent(?!key)", re.IGNORECASE)


def _totals() -> dict[tuple[str, str], int]:
    """(customer external id, status) → stored total, the zero ones left out."""
    return {
        (external_id, status): quantity
        for external_id, status, quantity in UsageMeterTotal.objects.values_list(
            "customer__external_id", "meter_status", "quantity"
        )
        if quantity
    }


def _sums() -> dict[tuple[str, str], int]:
    """The same, summed from the usage events (what GET /usage used to read)."""
    return {
        (external_id, status): total
        for external_id, status, total in UsageEvent.objects.exclude(meter_status="")
        .filter(period_start__isnull=False)
        .values_list("customer__external_id", "meter_status")
        .annotate(total=Sum("quantity"))
        .order_by()
        if total
    }


def _summary(api, tenant, external_id="u1"):
    response = api.get(f"/api/v1/usage?customer={external_id}&feature=api_calls", key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def test_totals_follow_ingest_failed_reports_retries_and_reports(api, tenant_a, metered, stripe_sdk):
    customer_ensure_stripe(customer=billed(customer(tenant_a.project, "u1")))
    sdk = stripe_sdk()
    sdk.v1.billing.meters.deactivate(metered.stripe_meter_id)  # every report fails until reactivated
    events = [
        {"id": f"e{i}", "customer": "u1", "feature": "api_calls", "quantity": q}
        for i, q in enumerate((2, 3, 4))
    ]
    events.append(dict(events[0]))  # a duplicate counts once
    assert api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key).json() == {
        "accepted": 3,
        "duplicates": 1,
    }
    assert _totals() == _sums() == {("u1", "pending"): 9}
    summary = _summary(api, tenant_a)
    assert (summary["quantity"], summary["billed_quantity"], summary["pending_quantity"]) == (9, 0, 9)

    with time_machine.travel(timezone.now() + timedelta(minutes=2)):  # a retry that fails again
        tasks.usage_report_sweep()
    assert set(UsageEvent.objects.values_list("meter_attempts", flat=True)) == {2}
    assert _totals() == _sums() == {("u1", "pending"): 9}

    sdk.v1.billing.meters.reactivate(metered.stripe_meter_id)
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):  # the retry that succeeds
        tasks.usage_report_sweep()
    assert _totals() == _sums() == {("u1", "reported"): 9}
    summary = _summary(api, tenant_a)
    assert (summary["quantity"], summary["billed_quantity"], summary["pending_quantity"]) == (9, 9, 0)

    # The last attempt fails: the event is failed, neither billed nor pending.
    sdk.v1.billing.meters.deactivate(metered.stripe_meter_id)
    api.post(
        "/api/v1/usage",
        {"id": "late", "customer": "u1", "feature": "api_calls", "quantity": 5},
        key=tenant_a.key,
    )
    UsageEvent.objects.filter(event_id="late").update(meter_attempts=meter_reports.METER_MAX_ATTEMPTS - 1)
    with time_machine.travel(timezone.now() + timedelta(hours=7)):
        tasks.usage_report_sweep()
    assert UsageEvent.objects.get(event_id="late").meter_status == "failed"
    assert _totals() == _sums() == {("u1", "reported"): 9, ("u1", "failed"): 5}
    summary = _summary(api, tenant_a)
    assert (summary["quantity"], summary["billed_quantity"], summary["pending_quantity"]) == (14, 9, 0)
    assert meter_totals_rebuild() == []


def test_a_metered_consume_and_skipped_usage_are_totalled(api, tenant_a, metered):
    grant = {"customer": "u1", "feature": "api_calls", "value": 10, "reason": "test"}
    assert api.post("/api/v1/entitlements/grants", grant, key=tenant_a.key).status_code == 201
    body = {"id": "c1", "customer": "u1", "feature": "api_calls", "quantity": 3}
    assert api.post("/api/v1/entitlements/consume", body, key=tenant_a.key).json()["allowed"] is True
    refused = {"id": "c2", "customer": "u1", "feature": "api_calls", "quantity": 8}
    assert api.post("/api/v1/entitlements/consume", refused, key=tenant_a.key).json()["allowed"] is False
    # u1 has no Stripe customer: skipped.
    assert _totals() == _sums() == {("u1", "skipped"): 3}
    assert meter_totals_rebuild() == []


def test_get_usage_is_the_same_bytes_and_reads_no_usage_event(api, tenant_a, metered, stripe_sdk):
    customer_ensure_stripe(customer=billed(customer(tenant_a.project, "u1")))
    stripe_sdk().v1.billing.meters.deactivate(metered.stripe_meter_id)
    batch = [{"id": f"p{i}", "customer": "u1", "feature": "api_calls", "quantity": i + 1} for i in range(4)]
    api.post("/api/v1/usage/batch", {"events": batch}, key=tenant_a.key)
    stripe_sdk().v1.billing.meters.reactivate(metered.stripe_meter_id)
    meter_status_move(
        event_ids=UsageEvent.objects.filter(event_id__in=["p0", "p2"]).values_list("pk", flat=True),
        status="reported",
    )
    _summary(api, tenant_a)  # the snapshot is cached: what is left is the summary's own reads

    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/usage?customer=u1&feature=api_calls", key=tenant_a.key)

    assert not [q["sql"] for q in queries.captured_queries if USAGE_EVENT_TABLE.search(q["sql"])]
    # What the summary answered when it summed the events (issue #30 before the totals), rendered the same way.
    start = datetime.fromisoformat(response.json()["period_start"].replace("Z", "+00:00"))
    summed = dict(
        UsageEvent.objects.filter(customer__external_id="u1", period_start=start, timestamp__gte=start)
        .exclude(meter_status="")
        .values("meter_status")
        .annotate(total=Sum("quantity"))
        .values_list("meter_status", "total")
    )
    assert summed == {"reported": 1 + 3, "pending": 2 + 4}
    expected = {
        **response.json(),
        "billed_quantity": summed["reported"],
        "pending_quantity": summed["pending"],
    }
    assert response.content == JSONRenderer().render(expected)
    assert (expected["quantity"], expected["billed_quantity"], expected["pending_quantity"]) == (10, 4, 6)


@pytest.mark.parametrize("seed", range(4))
def test_totals_equal_the_sums_after_a_random_sequence(api, tenant_a, metered, seed):
    """A small property test: ingest (with duplicates), metered consumes, and status moves between any two
    statuses in any order; the totals equal the events' sums after every step."""
    rng = random.Random(seed)
    statuses = ["pending", "reported", "skipped", "failed", ""]
    grant = {"customer": "u0", "feature": "api_calls", "value": 10**6, "reason": "test"}
    assert api.post("/api/v1/entitlements/grants", grant, key=tenant_a.key).status_code == 201
    for step in range(12):
        kind = rng.choice(["batch", "consume", "move", "move"])
        if kind == "batch":
            events = [
                {
                    "id": f"e{rng.randrange(40)}",
                    "customer": f"u{rng.randrange(3)}",
                    "feature": "api_calls",
                    "quantity": rng.randrange(0, 9),
                }
                for _ in range(rng.randrange(1, 12))
            ]
            assert api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key).status_code == 200
        elif kind == "consume":
            body = {
                "id": f"c{step}",
                "customer": "u0",
                "feature": "api_calls",
                "quantity": rng.randrange(1, 5),
            }
            assert api.post("/api/v1/entitlements/consume", body, key=tenant_a.key).status_code == 200
        else:
            pks = list(UsageEvent.objects.values_list("pk", flat=True))
            chosen = rng.sample(pks, k=min(len(pks), rng.randrange(0, 6)))
            meter_status_move(event_ids=chosen, status=rng.choice(statuses))
        assert _totals() == _sums(), (seed, step, kind)
    assert meter_totals_rebuild() == []


def test_the_command_reports_drift_and_repairs_it(api, tenant_a, metered):
    events = [{"id": f"e{i}", "customer": "u1", "feature": "api_calls", "quantity": 2} for i in range(3)]
    api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key)
    out = StringIO()
    call_command("usage_meter_totals", stdout=out)
    assert out.getvalue() == "The usage meter totals match the usage events.\n"

    # An event changed by hand, around the services: the totals drift.
    UsageEvent.objects.filter(event_id="e0").update(meter_status="reported")
    period = UsageEvent.objects.get(event_id="e0").period_start
    before = _totals()
    out = StringIO()
    with pytest.raises(CommandError, match="2 total"):
        call_command("usage_meter_totals", "--period-start", period.isoformat(), stdout=out)
    cust, feat = UsageEvent.objects.values_list("customer_id", "feature_id").first()
    assert out.getvalue().splitlines() == [
        f"{tenant_a.project.pk} {cust} {feat} {period.isoformat()} reported: stored 0, computed 2",
        f"{tenant_a.project.pk} {cust} {feat} {period.isoformat()} skipped: stored 6, computed 4",
    ]
    assert _totals() == before  # nothing changed without --fix

    out = StringIO()
    call_command("usage_meter_totals", "--fix", "--project", tenant_a.project.slug, stdout=out)
    assert out.getvalue().endswith("2 total(s) drifted; written as computed from the events.\n")
    assert _totals() == _sums() == {("u1", "reported"): 2, ("u1", "skipped"): 4}
    assert meter_totals_rebuild() == []
    with pytest.raises(CommandError, match="No project"):
        call_command("usage_meter_totals", "--project", "nope")
