"""`LeasedQuota(entity=…)` at a window's end: a lease's units are the windows' current at its hold's creation, so
a lease whose window ended on the way back is given back and taken again in the next window, and a refusal by a
window that turned over meanwhile is asked once more."""

import time

import pytest
import time_machine
from tollgate_client.leases import LeasedQuota

from entitlements.models import EntityWindowCounter, Hold, UsageEvent
from entitlements.services import holds as holds_service

pytestmark = pytest.mark.django_db(transaction=True)


def _seat_windows(tollgate) -> None:
    """`summaries`: 100 a month for team-1, each of its seats ana and bo 40, at most 3 a minute."""
    free = tollgate.products.retrieve("free")
    value = {"limit": 100, "per_entity": {"feature": "seats", "limit": 40, "windows": {"minute": 3}}}
    tollgate.products.update("free", features={**free.features, "summaries": value})
    for seat in ("ana", "bo"):
        tollgate.entitlements.entities.add(customer="team-1", feature="seats", entity=seat)


def test_a_lease_taken_at_a_minutes_end_is_not_used_in_the_next_minute(
    tollgate,
    per_seat,
    monkeypatch,
):
    """ana may use 3 a minute. Her first lease's hold is made 10 ms before the minute ends (its units are that
    minute's: `Hold.entity_windows`), and the request answers 20 ms later, in the next minute. That lease is
    given back unused and a new one taken in the new minute; a second process then gets none of the new
    minute's 3, and ana uses exactly 3 in it (the first lease was used into the next minute: 5 of 3)."""
    end = (int(time.time()) // 60 + 2) * 60
    with time_machine.travel(end - 0.01, tick=False) as traveller:
        _seat_windows(tollgate)
        take = holds_service._take

        def slow_take(*args, **kwargs):  # the request's work crosses the minute's end after the hold is made
            take(*args, **kwargs)
            traveller.move_to(end + 0.01)

        monkeypatch.setattr(holds_service, "_take", slow_take)
        first = LeasedQuota(
            tollgate, customer="team-1", feature="summaries", entity="ana", lease=3, flush_every=60
        )
        second = LeasedQuota(
            tollgate, customer="team-1", feature="summaries", entity="ana", lease=3, flush_every=60
        )
        try:
            assert first.consume(id="a0") is True  # in a lease of the new minute
            monkeypatch.setattr(holds_service, "_take", take)
            old, new = Hold.objects.filter(entity="ana").order_by("created_at")
            assert (old.created_at.timestamp() < end, list(old.entity_windows.values())) == (True, [end - 60])
            assert (old.status, old.consumed) == ("released", 0)  # the old minute's: given back unused
            assert (new.status, list(new.entity_windows.values())) == ("active", [end])
            assert [second.consume(id=f"b{n}") for n in range(3)] == [False] * 3  # the first holds the 3
            assert [first.consume(id=f"a{n}") for n in range(1, 4)] == [True, True, False]
        finally:
            first.close()
            second.close()
        assert EntityWindowCounter.objects.values_list("span", "window_start", "used", "held").get()[2:] == (
            3,
            0,
        )
        assert UsageEvent.objects.filter(properties__entity="ana").count() == 3


def test_a_lease_refused_at_a_minutes_end_is_taken_in_the_next_minute(
    tollgate,
    per_seat,
    monkeypatch,
):
    """ana used her minute's 3. A lease asked 10 ms before the minute ends is refused by that minute, and the
    refusal is answered 20 ms later, in the next minute, where her 3 are free (`entity.windows[0].remaining` 3):
    the lease is asked once more and the use allowed (it answered False, the answer showing as much left as was
    asked taken for a refusal by nothing it could shrink to)."""
    end = (int(time.time()) // 60 + 2) * 60
    with time_machine.travel(end - 0.01, tick=False) as traveller:
        _seat_windows(tollgate)
        used = tollgate.entitlements.consume(
            id="u0", customer="team-1", feature="summaries", quantity=3, entity="ana"
        )
        assert used.allowed is True
        take = holds_service._take

        def slow_take(*args, **kwargs):  # the request's work crosses the minute's end after the refusal
            try:
                take(*args, **kwargs)
            finally:
                traveller.move_to(end + 0.01)

        monkeypatch.setattr(holds_service, "_take", slow_take)
        quota = LeasedQuota(
            tollgate, customer="team-1", feature="summaries", entity="ana", lease=3, flush_every=60
        )
        try:
            assert quota.consume(id="a0") is True
        finally:
            monkeypatch.setattr(holds_service, "_take", take)
            quota.close()
        check = tollgate.entitlements.check(customer="team-1", feature="summaries", entity="ana")
        assert (check.entity.windows[0].used, check.entity.used) == (1, 4)
