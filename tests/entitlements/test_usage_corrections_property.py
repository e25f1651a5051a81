"""Property test of correctable usage: random interleavings of recorded usage (retried ids included) and
corrections (voids and amendments, retried correction ids included), with Stripe's answers lost, or the worker
killed right after Stripe acted, on meter reports and on meter corrections (`Wire`, between Tollgate and the
emulator).
Afterwards, once the sweeps have run: the period's counter, `GET /usage`, the meter totals and Stripe's meter (read
through the SDK) all equal what the corrected usage implies, and each correction id made one correction.

The same with a credits waterfall (`test_corrected_usage_paid_with_credits_converges`): the credits' balance, each
event's ledger entries and the counter's units paid from credits agree with the units each event says credits paid,
and what Stripe's meter holds is the rest.

20 seeds here (`TOLLGATE_CORRECTION_SEEDS`, a count or a comma-separated list); `make soak` runs 500.
"""

import os
import random

import pytest
import time_machine
from django.utils import timezone

from billing.services.meter_corrections import claim_seconds
from billing.services.meter_reports import meter_claim_seconds
from billing.tasks import usage_report_sweep
from customers.services.customers import customer_ensure_stripe
from entitlements.models import CreditLedgerEntry, CreditLot, UsageCorrection, UsageCounter, UsageEvent
from entitlements.services.meter_totals import meter_totals_rebuild
from tests.billing.test_lost_answers import ProcessKilled, wire  # noqa: F401 (the fixture)
from tests.billing.test_meter_reports import billed
from tests.entitlements.helpers import customer
from tests.entitlements.test_usage_corrections import metered, on_meter  # noqa: F401 (the fixture)
from tests.entitlements.test_usage_corrections_credits import metered_waterfall  # noqa: F401 (the fixture)


def _seeds() -> list[int]:
    raw = os.environ.get("TOLLGATE_CORRECTION_SEEDS", "20")
    return [int(s) for s in raw.split(",")] if "," in raw else list(range(int(raw)))


def _post(api, key, path, body):
    try:
        return api.post(path, body, key=key)
    except ProcessKilled:  # the worker running the meter correction died after Stripe acted
        return None


def _correction_step(api, key, faults, rng, seed, step, made, expected, *, most):
    """One random correction, through the `faults` of the wire to Stripe: a new one of a random event (voided, or amended to 0 to
    `most`), or one made before sent again (a retry answers what it made, and changes nothing); `made` and
    `expected` (each event's quantity) follow what was accepted."""
    if made and rng.random() < 0.2:  # a correction retried
        correction_id = rng.choice(list(made))
        event_id, action, after = made[correction_id]
    else:
        correction_id, event_id = f"c{step}", rng.choice(list(expected))
        action = rng.choice(["void", "amend"])
        after = 0 if action == "void" else rng.randint(0, most)
    if rng.random() < 0.3:
        target = rng.choice([r"/v1/billing/meter_event_adjustments", r"/v1/billing/meter_events"])
        if rng.random() < 0.5:
            faults.die("POST", target)
        else:
            faults.lose("POST", target, times=rng.randint(1, 3))
    body = {"id": correction_id, "event": event_id, "action": action, "reason": f"seed {seed}"}
    if action == "amend":
        body["quantity"] = after
    response = _post(api, key, "/api/v1/usage/corrections", body)
    faults.faults.clear()
    retried = correction_id in made
    if response is None or response.status_code in (200, 201):
        assert response is None or response.status_code == (200 if retried else 201)
        if not retried:
            made[correction_id] = (event_id, action, after)
            expected[event_id] = after
    else:
        code = response.json()["error"]["code"]
        assert code in ("usage_event_voided", "correction_unchanged"), response.json()


def _claims_run_out() -> float:
    """Seconds after which every claim has run out: a report batch's, and a correction's writing as many times as
    it may (a cancel per earlier correction of its event, one of the event, its replacement)."""
    writes = UsageCorrection.objects.count() + 2
    return max(meter_claim_seconds(), claim_seconds(writes=writes)) + 1


@pytest.mark.parametrize("seed", _seeds())
def test_corrected_usage_converges_everywhere(api, tenant_a, metered, stripe_sdk, wire, seed):  # noqa: F811
    rng = random.Random(seed)
    stripe_customer = customer_ensure_stripe(customer=billed(customer(tenant_a.project, "u1")))
    expected: dict[str, int] = {}  # event id → the quantity it should count
    made: dict[str, tuple[str, str, int]] = {}  # correction id → (event, action, quantity after)
    clock = timezone.now()
    with time_machine.travel(clock, tick=True) as traveller:
        for step in range(rng.randint(8, 20)):
            op = rng.random()
            if op < 0.45 or not expected:
                event_id = rng.choice([f"e{len(expected)}", *list(expected)[-2:]])  # new, or a retry
                quantity = expected.get(event_id, rng.randint(0, 20))
                if rng.random() < 0.3:  # the reporter's answer from Stripe is lost, or the reporter dies
                    if rng.random() < 0.5:
                        wire.die("POST", "/v1/billing/meter_events")
                    else:
                        wire.lose("POST", "/v1/billing/meter_events", times=3)
                body = {"id": event_id, "customer": "u1", "feature": "api_calls", "quantity": quantity}
                response = _post(api, tenant_a.key, "/api/v1/usage", body)
                wire.faults.clear()
                assert response is None or response.status_code in (200, 201)
                expected.setdefault(event_id, quantity)
            else:
                _correction_step(api, tenant_a.key, wire, rng, seed, step, made, expected, most=25)
            traveller.shift(rng.randint(0, 20))
        # Every claim runs out; the sweeps (beat's) finish what was left, the same keys again.
        for _ in range(3):
            traveller.shift(_claims_run_out())
            usage_report_sweep()
    assert UsageCorrection.objects.filter(meter="pending").count() == 0
    total = sum(expected.values())
    assert UsageCounter.objects.get().used == total
    assert dict(UsageEvent.objects.values_list("event_id", "quantity")) == expected
    assert set(UsageCorrection.objects.values_list("correction_id", flat=True)) == set(made)
    summary = api.get(
        "/api/v1/usage", key=tenant_a.key, json_body={"customer": "u1", "feature": "api_calls"}
    ).json()
    assert (summary["quantity"], summary["billed_quantity"], summary["pending_quantity"]) == (total, total, 0)
    assert meter_totals_rebuild(project_id=tenant_a.project.pk) == []
    # Stripe's meter, read through the SDK:
    assert on_meter(stripe_sdk, metered, stripe_customer) == total


@pytest.mark.parametrize("seed", _seeds())
def test_corrected_usage_paid_with_credits_converges(
    api,
    tenant_a,
    metered_waterfall,  # noqa: F811
    stripe_sdk,
    wire,  # noqa: F811
    seed,
):
    rng = random.Random(seed)
    calls, stripe_customer = metered_waterfall
    granted = 4
    expected: dict[str, int] = {}
    made: dict[str, tuple[str, str, int]] = {}
    clock = timezone.now()
    with time_machine.travel(clock, tick=True) as traveller:
        for step in range(rng.randint(8, 20)):
            op = rng.random()
            if op < 0.1:  # more credits
                body = {
                    "customer": "u1",
                    "feature": "ai_credits",
                    "value": rng.randint(1, 6),
                    "reason": "top-up",
                }
                assert api.post("/api/v1/entitlements/grants", body, key=tenant_a.key).status_code == 201
                granted += body["value"]
            elif op < 0.5 or not expected:
                event_id = rng.choice([f"e{len(expected)}", *list(expected)[-2:]])
                quantity = expected.get(event_id, rng.randint(0, 12))
                if rng.random() < 0.3:
                    wire.lose("POST", "/v1/billing/meter_events", times=rng.randint(1, 3))
                body = {"id": event_id, "customer": "u1", "feature": "api_calls", "quantity": quantity}
                response = _post(api, tenant_a.key, "/api/v1/usage", body)
                wire.faults.clear()
                assert response is None or response.status_code in (200, 201)
                expected.setdefault(event_id, quantity)
            else:
                _correction_step(api, tenant_a.key, wire, rng, seed, step, made, expected, most=16)
            traveller.shift(rng.randint(0, 20))
        for _ in range(3):
            traveller.shift(_claims_run_out())
            usage_report_sweep()
    assert UsageCorrection.objects.filter(meter="pending").count() == 0
    events = {e.event_id: (e.quantity, e.covered) for e in UsageEvent.objects.all()}
    assert {event_id: quantity for event_id, (quantity, _) in events.items()} == expected
    assert all(0 <= covered <= quantity for quantity, covered in events.values())
    total, paid = sum(expected.values()), sum(covered for _, covered in events.values())
    assert UsageCounter.objects.values_list("used", "covered").get() == (total, paid)
    # Credits: one a unit; each event's ledger entries took what its covered units cost, net; the balance is the rest.
    for event_id, (_, covered) in events.items():
        net = CreditLedgerEntry.objects.filter(
            reference=event_id, type__in=("consume", "correction")
        ).values_list("amount", flat=True)
        assert -sum(net) == covered, event_id
    assert sum(CreditLot.objects.values_list("remaining", flat=True)) == granted - paid
    summary = api.get(
        "/api/v1/usage", key=tenant_a.key, json_body={"customer": "u1", "feature": "api_calls"}
    ).json()
    assert (summary["quantity"], summary["billed_quantity"], summary["pending_quantity"]) == (
        total,
        total - paid,
        0,
    )
    assert meter_totals_rebuild(project_id=tenant_a.project.pk) == []
    assert on_meter(stripe_sdk, calls, stripe_customer) == total - paid
