"""Correcting the report of a hold that has ended, where the hold took credits or counted rolling windows
(`POST /usage/corrections`): the hold answers for what it took, so a correction down gives back the credits
its units cost from what the hold (and its report's earlier corrections) still hold, and the windows that
follow are those the hold took its units from — not those of the report's timestamp. A correction up is paid as
more use of the period is. While the hold is open its report stays refused (`correction_unsupported`)."""

from datetime import timedelta

import time_machine

from entitlements.models import CreditLedgerEntry, Hold, UsageCorrection, UsageCounter
from tests.entitlements.test_credits_waterfall import HOLDS, consume, grant, hold, waterfall  # noqa: F401
from tests.entitlements.test_usage_corrections import correct
from tests.entitlements.test_usage_corrections_credits import _balance, _counter, _event
from tests.entitlements.test_usage_windows import START, _windows, check, windowed  # noqa: F401
from tests.entitlements.test_usage_windows import consume as windowed_consume

_report = _event  # a hold's report: (quantity, covered)


def test_a_hold_s_report_paid_with_credits_gives_them_back_from_the_hold(api, tenant_a, waterfall):  # noqa: F811
    grant(api, tenant_a, 10)
    consume(api, tenant_a, "c1", 9)
    hold(api, tenant_a, "h1", 4)  # 1 from the allowance, 3 from credits (6 credits)
    report = {"events": [{"id": "r1", "quantity": 2}]}
    assert api.post(f"{HOLDS}/h1/usage", report, key=tenant_a.key).status_code == 200
    refused = correct(api, tenant_a.key, 409, id="fix-0", event="r1", action="void")["error"]
    assert (refused["code"], "hold still open" in refused["message"]) == ("correction_unsupported", True)
    assert UsageCorrection.objects.count() == 0
    confirmed = api.post(f"{HOLDS}/h1/confirm", {"quantity": 2}, key=tenant_a.key)
    assert confirmed.status_code == 200, confirmed.json()
    # The hold kept the allowance's unit and one paid unit (2 credits): r1 is 2 units, 1 paid with credits.
    assert (_counter(), _balance(), _report("r1")) == ((11, 0, 1), 8, (2, 1))

    body = correct(api, tenant_a.key, id="fix-1", event="r1", action="void")
    assert body["credits"] == {
        "feature": "ai_credits",
        "covered_before": 1,
        "covered_after": 0,
        "returned": 2,
        "later_units": 0,
        "later_returned": 0,
    }
    assert (_counter(), _balance(), _report("r1")) == ((9, 0, 0), 10, (0, 0))
    # Amended up to 3: one unit of allowance is left, credits pay for 2 (4 credits).
    body = correct(api, tenant_a.key, id="fix-2", event="r1", action="amend", quantity=3)
    assert body["credits"] == {
        "feature": "ai_credits",
        "covered_before": 0,
        "covered_after": 2,
        "returned": -4,
        "later_units": 0,
        "later_returned": 0,
    }
    assert (_counter(), _balance(), _report("r1")) == ((12, 0, 2), 6, (3, 2))
    # Down to 1: its 2 paid units go, 4 credits back (what the hold and r1's corrections still hold).
    body = correct(api, tenant_a.key, id="fix-3", event="r1", action="amend", quantity=1)
    assert body["credits"]["returned"] == 4
    assert (_counter(), _balance(), _report("r1")) == ((10, 0, 0), 10, (1, 0))
    entries = CreditLedgerEntry.objects.filter(type="correction", reference="r1").order_by("created_at")
    assert list(entries.values_list("amount", flat=True)) == [2, -4, 4]
    # Once: the same corrections again move nothing.
    assert correct(api, tenant_a.key, 200, id="fix-1", event="r1", action="void")["credits"]["returned"] == 2
    assert (_counter(), _balance(), CreditLedgerEntry.objects.filter(type="correction").count()) == (
        (10, 0, 0),
        10,
        3,
    )
    # Never more than the hold still holds: the hold's own entries and r1's corrections net to nothing now.
    held = CreditLedgerEntry.objects.filter(reference__in=["h1", "r1"]).exclude(type="grant")
    assert sum(held.values_list("amount", flat=True)) == 0


def test_a_hold_s_report_follows_the_windows_the_hold_took_its_units_from(api, tenant_a, windowed):  # noqa: F811
    with time_machine.travel(START, tick=False):
        placed = api.post(
            HOLDS, {"id": "job", "customer": "u1", "feature": "api_calls", "quantity": 4}, key=tenant_a.key
        )
        assert placed.json()["allowed"] is True
    # Reported and confirmed a minute later: its units counted in the minute and hour of the hold's start.
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        report = {"events": [{"id": "r1", "quantity": 3}]}
        assert api.post(f"{HOLDS}/job/usage", report, key=tenant_a.key).status_code == 200
        assert api.post(f"{HOLDS}/job/confirm", {"quantity": 3}, key=tenant_a.key).status_code == 200
        windowed_consume(api, tenant_a, "c1", 2)  # this minute's own use
        assert [w[1:3] for w in _windows(check(api, tenant_a))] == [(2, 0), (5, 0)]
        assert Hold.objects.get().windows["minute"] == (START - timedelta(seconds=20)).timestamp()
        body = correct(api, tenant_a.key, id="fix-1", event="r1", action="amend", quantity=1)
        assert (body["quantity_before"], body["quantity_after"]) == (3, 1)
        # The hour the hold counted in gives 2 back; this minute, which never counted r1, keeps its 2.
        assert [w[1:3] for w in _windows(check(api, tenant_a))] == [(2, 0), (3, 0)]
        assert UsageCounter.objects.values_list("used", flat=True).get() == 3
