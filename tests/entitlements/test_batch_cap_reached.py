"""A batch of recorded usage that reaches a feature's spend cap: the announcement says the use at the event
that reached it."""

from catalog.models import Feature
from events.models import Event
from tests.entitlements.helpers import customer, feature, product, subscribe


def test_a_batch_announces_the_feature_cap_at_the_use_that_reached_it(api, tenant_a):
    """Limit 100 with overage and an alert cap of 20 units (cap_limit 120). A batch of 100, 20, 5: the second event
    takes use to exactly 120 and reaches the cap. `usage.cap_reached` (scope "feature") says the use at the event
    that reached it, used 120, as the same events sent one by one do and as the account cap's batch announcement
    does (it said the batch's total, 125)."""
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    value = {"limit": 100, "overage": "allowed", "cap": {"units": 20, "at_cap": "alert"}}
    subscribe(customer(p, "u1"), product(p, "pro", {calls: value}))
    events = [
        {"id": f"e{i}", "customer": "u1", "feature": "api_calls", "quantity": q}
        for i, q in enumerate((100, 20, 5))
    ]
    response = api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key)
    assert response.status_code == 200, response.json()
    reached = [
        (o["scope"], o["feature"], o["at_cap"], o["cap_limit"], o["used"])
        for o in (
            e.data["object"] for e in Event.objects.filter(type="usage.cap_reached").order_by("sequence")
        )
    ]
    assert reached == [("feature", "api_calls", "alert", 120, 120)]
