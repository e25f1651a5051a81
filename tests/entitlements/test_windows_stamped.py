"""Usage windows and recorded usage stamped late or ahead: what counts where, `usage.window_reached` and `as_of`
answering as live did."""

from datetime import timedelta

import pytest
import time_machine

from events.models import Event
from tests.entitlements.test_usage_window_edges import START, _z, check, consume, windowed  # noqa: F401

pytestmark = pytest.mark.django_db


def _reached():
    return [
        (e.data["object"]["window"], e.data["object"]["used"], e.data["object"]["window_start"])
        for e in Event.objects.filter(type="usage.window_reached").order_by("sequence")
    ]


def test_a_late_event_of_a_minute_already_over_announces_no_window_reached(api, tenant_a, windowed):  # noqa: F811
    """An event of a window already over counts in none of that size: at 10:01:05 an event stamped 10:00:30
    (minute 10:00, over) of 5 units, with no earlier use, counts in the hour (current: 5 of 8, not reached) and
    the period only, and announces nothing (it moved the minute's row back to 10:00 and announced it filled)."""
    with time_machine.travel(START + timedelta(seconds=45), tick=False):  # 10:01:05
        late = {
            "id": "late",
            "customer": "u1",
            "feature": "api_calls",
            "quantity": 5,
            "timestamp": _z(START + timedelta(seconds=10)),  # 10:00:30
        }
        assert api.post("/api/v1/usage", late, key=tenant_a.key).status_code == 201
        answer = check(api, tenant_a)
    assert [(w["window"], w["used"]) for w in answer["windows"]] == [("minute", 0), ("hour", 5)]
    assert answer["used"] == 5
    assert _reached() == []


def test_as_of_counts_usage_stamped_ahead_in_the_window_it_counted_in_live(api, tenant_a, windowed):  # noqa: F811
    """Usage stamped ahead of the present (clock skew) counts live in the window running now (docs; the check
    at 10:00:20 answers minute 5 of 5). `as_of` 10:00:30 must answer as live did then: minute used 5, remaining
    0, refused by the minute for 30 s (it placed events by their `timestamp`: 4 used, allowed)."""
    with time_machine.travel(START, tick=False):
        for i in range(4):
            consume(api, tenant_a, f"c{i}")
        ahead = {
            "id": "skewed",
            "customer": "u1",
            "feature": "api_calls",
            "quantity": 1,
            "timestamp": _z(START + timedelta(seconds=90)),  # 10:01:50
        }
        assert api.post("/api/v1/usage", ahead, key=tenant_a.key).status_code == 201
        live = check(api, tenant_a)
        assert [(w["window"], w["used"], w["remaining"]) for w in live["windows"]] == [
            ("minute", 5, 0),
            ("hour", 5, 3),
        ]
    with time_machine.travel(START + timedelta(minutes=10), tick=False):
        past = check(api, tenant_a, extra=f"&as_of={_z(START + timedelta(seconds=10))}")
    assert [(w["window"], w["used"], w["remaining"]) for w in past["windows"]] == [
        ("minute", 5, 0),
        ("hour", 5, 3),
    ]
    assert (past["allowed"], past["binding"], past["retry_after"]) == (False, "minute", 30)
