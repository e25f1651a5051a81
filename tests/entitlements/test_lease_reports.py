"""A lease's report (`POST /entitlements/holds/{id}/usage`) names each use by an id that is idempotent within the
project, like a consume's: the same use again is a duplicate, but an id already used by another customer, another
feature or for another quantity is refused with 409 `idempotency_id_reused`, as a consume is, and nothing of the
report is recorded."""

import pytest

from catalog.models import Feature
from entitlements.models import Hold
from tests.entitlements.helpers import customer, feature, product, subscribe
from tests.entitlements.test_consume import consume
from tests.entitlements.test_holds import _state, hold, report


@pytest.fixture
def plan(tenant_a):
    p = tenant_a.project
    exports = feature(p, "exports", Feature.Type.METERED)
    imports = feature(p, "imports", Feature.Type.METERED)
    pro = product(p, "pro", {exports: 20, imports: 20})
    for external_id in ("u1", "u2"):
        subscribe(customer(p, external_id), pro)
    return pro


def _consumed(hold_id: str) -> int:
    return Hold.objects.values_list("consumed", flat=True).get(hold_id=hold_id)


@pytest.mark.parametrize(
    ("customer_id", "feature_key", "quantity"),
    [("u2", "exports", 1), ("u1", "imports", 1), ("u1", "exports", 2)],
    ids=["another_customer", "another_feature", "another_quantity"],
)
def test_a_lease_report_reusing_an_id_of_another_use_is_409_and_records_nothing(
    api, tenant_a, plan, customer_id, feature_key, quantity
):
    assert consume(api, tenant_a.key, "req-1", feature_key, customer=customer_id)["allowed"] is True
    hold(api, tenant_a.key, "lease-1", "exports", 5, customer="u1")
    before = _state("exports")
    error = report(api, tenant_a.key, "lease-1", [("fresh", 1), ("req-1", quantity)], status=409)["error"]
    assert (error["code"], error["param"]) == ("idempotency_id_reused", "events")
    assert _state("exports") == before  # "fresh" is not recorded either: all or nothing
    assert _consumed("lease-1") == 0


def test_a_lease_report_repeating_a_consume_of_the_same_use_is_a_duplicate(api, tenant_a, plan):
    assert consume(api, tenant_a.key, "req-1", "exports", customer="u1")["allowed"] is True
    hold(api, tenant_a.key, "lease-1", "exports", 5, customer="u1")
    answer = report(api, tenant_a.key, "lease-1", [("fresh", 1), ("req-1", 1)])
    assert (answer["accepted"], answer["duplicates"], answer["hold"]["consumed"]) == (1, 1, 1)
    again = report(api, tenant_a.key, "lease-1", [("fresh", 1)])
    assert (again["accepted"], again["duplicates"], again["hold"]["consumed"]) == (0, 1, 1)
