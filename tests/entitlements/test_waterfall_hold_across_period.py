"""A credits waterfall hold placed near the end of a metered period and still active after it: the credits it
sets aside are out of the credits feature's balance whatever the period, live and `as_of` alike."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from catalog.models import Feature
from tests.entitlements.helpers import customer, feature, product, subscribe
from tests.entitlements.test_credits_waterfall import consume, grant

CHECK = "/api/v1/entitlements/check?customer=u1&feature=ai_credits"


def test_as_of_counts_credits_held_by_a_hold_of_the_previous_period(api, tenant_a):
    p = tenant_a.project
    summaries = feature(p, "summaries", Feature.Type.METERED)
    feature(p, "ai_credits", Feature.Type.CREDITS)
    value = {"limit": 10, "credits": {"feature": "ai_credits", "cost": 2}}
    now = timezone.now()
    subscribe(
        customer(p, "u1"),
        product(p, "pro", {summaries: value}),
        start=now - timedelta(days=30) + timedelta(hours=1),
    )
    grant(api, tenant_a, 10)
    consume(api, tenant_a, "c1", 10)
    body = {"id": "h1", "customer": "u1", "feature": "summaries", "quantity": 3, "expires_in": 86400}
    assert api.post("/api/v1/entitlements/holds", body, key=tenant_a.key).status_code == 200  # 6 credits held
    with time_machine.travel(now + timedelta(hours=2), tick=False):
        live = api.get(CHECK, key=tenant_a.key).json()
        assert (live["balance"], live["held"]) == (4, 6)
        at = (now + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
        past = api.get(f"{CHECK}&as_of={at}", key=tenant_a.key).json()
        assert (past["balance"], past["held"]) == (live["balance"], live["held"])
