"""`as_of` of an allocation feature whose units entities hold."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from core.serializers import api_time
from tests.entitlements.test_entities import _team_plan, add

HOUR = timedelta(hours=1)


def test_as_of_counts_the_allocation_units_live_entities_hold(api, tenant_a):
    """Adding an entity takes a unit of its allocation feature (the live check says seats used 2 of 3) and
    records no usage event: `as_of` counts the entities live then, used 2, remaining 1, and after one is removed
    used 1 (it recomputed allocation use from usage events only: used 0, remaining 3)."""
    start = timezone.now().replace(microsecond=0) - timedelta(hours=5)
    with time_machine.travel(start, tick=False) as clock:
        _team_plan(tenant_a)
        clock.shift(HOUR)
        add(api, tenant_a, "ana")
        made = add(api, tenant_a, "bo")
        clock.shift(HOUR)
        assert (
            api.delete(f"/api/v1/entitlements/entities/{made['id']}", {}, key=tenant_a.key).status_code == 200
        )
    live = api.get("/api/v1/entitlements/check?customer=u1&feature=seats", key=tenant_a.key).json()
    assert (live["used"], live["remaining"]) == (1, 2)

    def then(moment):
        url = f"/api/v1/entitlements/check?customer=u1&feature=seats&as_of={api_time(moment)}"
        response = api.get(url, key=tenant_a.key)
        assert response.status_code == 200, response.json()
        return response.json()

    both = then(start + HOUR + HOUR / 2)
    assert (both["used"], both["remaining"], both["allowed"]) == (2, 1, True)
    one = then(start + 2 * HOUR + HOUR / 2)
    assert (one["used"], one["remaining"]) == (1, 2)
