"""Holds through the typed client against a live server: a reservation confirmed for less than it held, a hold
whose answer was lost retried into one hold, and the holds of a process killed with kill -9 given back by the
sweep once they expire."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tollgate_client import ConflictError
from tollgate_client.types import EntitlementCheck, Hold, HoldAnswer

from entitlements.models import Hold as HoldRow
from entitlements.models import UsageCounter, UsageEvent
from entitlements.tasks import holds_expire_sweep

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def test_a_reservation_confirmed_for_less_bills_only_what_was_used(tollgate, plans):
    placed = tollgate.entitlements.holds.create(
        id="render-7", customer="user-1", feature="exports", quantity=3
    )
    assert isinstance(placed, HoldAnswer)
    assert isinstance(placed.hold, Hold)
    assert (placed.allowed, placed.hold.status, placed.hold.quantity, placed.hold.confirmed) == (
        True,
        "active",
        3,
        None,
    )
    assert placed.entitlement == EntitlementCheck(
        allowed=False,
        feature="exports",
        type="metered",
        enabled=True,
        value=3,
        limit=3,
        used=0,
        remaining=0,
        balance=None,
        held=3,
        overage="blocked",
        cap=None,
        account_cap=None,
        credits=None,
        step=None,
        windows=[],
        binding="period",  # the next unit: the period's limit refuses it, until the period ends
        retry_after=placed.entitlement.retry_after,
    )
    assert placed.entitlement.retry_after is not None
    assert placed.entitlement.retry_after > 0
    refused = tollgate.entitlements.holds.create(
        id="render-8", customer="user-1", feature="exports", quantity=1
    )
    assert (refused.allowed, refused.hold) == (False, None)

    confirmed = tollgate.entitlements.holds.confirm("render-7", quantity=2)
    assert confirmed.hold is not None
    assert (confirmed.hold.status, confirmed.hold.confirmed) == ("confirmed", 2)
    check = tollgate.entitlements.check(customer="user-1", feature="exports")
    assert (check.used, check.held, check.remaining, check.allowed) == (2, 0, 1, True)
    with pytest.raises(ConflictError) as ended:
        tollgate.entitlements.holds.release("render-7")
    assert ended.value.code == "hold_confirmed"
    assert tollgate.entitlements.holds.retrieve("render-7").hold == confirmed.hold
    assert list(UsageEvent.objects.values_list("quantity", "properties")) == [(2, {"hold": "render-7"})]


def test_a_hold_whose_answer_was_lost_is_retried_into_one_hold(via_proxy, proxy, plans):
    proxy.fail("POST", drop=True)
    placed = via_proxy.entitlements.holds.create(id="job-1", customer="user-1", feature="exports", quantity=2)
    assert (placed.allowed, placed.duplicate) == (True, None)  # the first answer, replayed
    posts = proxy.requests("POST")
    assert [(p.status, p.replayed) for p in posts] == [(None, False), (200, True)]
    assert len({p.idempotency_key for p in posts}) == 1
    assert HoldRow.objects.count() == 1
    assert UsageCounter.objects.values_list("used", "held").get() == (2, 2)

    proxy.fail("POST", drop=True)
    released = via_proxy.entitlements.holds.release("job-1")
    assert released.hold is not None
    assert released.hold.status == "released"
    assert UsageCounter.objects.values_list("used", "held").get() == (0, 0)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from tollgate_client import Tollgate

    url, key = sys.argv[1], sys.argv[2]
    with Tollgate(key, url, timeout=10) as tollgate:
        for n in range(2):
            tollgate.entitlements.holds.create(
                id=f"dying-{n}", customer="user-1", feature="seats", quantity=1, expires_in=1
            )
        print("held", flush=True)
        time.sleep(60)  # killed here, before any confirm or release
    """
)


def test_the_holds_of_a_process_killed_with_kill_9_are_given_back_by_the_sweep(
    tollgate, plans, live_server, tenant_a
):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, live_server.url, tenant_a.key],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "clients" / "python")},
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    seats = tollgate.entitlements.check(customer="user-1", feature="seats")
    assert (seats.used, seats.held, seats.remaining, seats.allowed) == (0, 2, 0, False)

    time.sleep(1.1)  # the holds' expiry
    assert holds_expire_sweep.delay().get() == 2
    assert sorted(HoldRow.objects.values_list("hold_id", "status")) == [
        ("dying-0", "expired"),
        ("dying-1", "expired"),
    ]
    seats = tollgate.entitlements.check(customer="user-1", feature="seats")
    assert (seats.used, seats.held, seats.remaining, seats.allowed) == (0, 0, 2, True)
    assert tollgate.entitlements.consume(id="s1", customer="user-1", feature="seats", quantity=2).allowed
