"""A `LeasedQuota` of a test clock's customer on a feature with usage windows."""

from datetime import UTC, datetime, timedelta

import pytest
from tollgate_client.leases import LeasedQuota

from catalog.models import Feature
from customers.models import TestClock
from entitlements.models import Hold
from tests.clients.conftest import tollgate  # noqa: F401  (fixture)
from tests.entitlements.helpers import customer, feature, product, subscribe

pytestmark = pytest.mark.django_db(transaction=True)

CLOCK = datetime(2026, 10, 7, 15, 30, 10, tzinfo=UTC)  # a test clock's frozen time, in the past


def test_a_lease_of_a_test_clock_customer_with_windows_is_usable(tollgate, tenant_a):  # noqa: F811
    """A test clock's customer's hold is judged at the clock's time, so the lease's answer carries the clock's
    window ends (`resets_at` 2026-10-07T15:31:00Z, weeks before the wall clock): the lease's end is counted from
    the hold's creation on that clock. Each of the 5 uses is allowed from the one lease, and after `close` the 5
    uses are counted and no hold is left active (the lease ended on arrival, counted on this machine's clock:
    every use refused, a fresh hold each)."""
    p = tenant_a.project
    calls = feature(p, "api_calls", Feature.Type.METERED)
    clock = TestClock.objects.create(
        project=p, frozen_time=CLOCK, deletes_after=CLOCK + timedelta(days=600), stripe_test_clock_id="clk_rv"
    )
    cust = customer(p, "u1")
    cust.test_clock = clock
    cust.save(update_fields=["test_clock"])
    subscribe(
        cust,
        product(p, "pro", {calls: {"limit": 1000, "windows": {"minute": 5, "hour": 8}}}),
        start=CLOCK - timedelta(days=1),
    )
    quota = LeasedQuota(tollgate, customer="u1", feature="api_calls", lease=5, flush_every=60)
    try:
        allowed = [quota.consume(id=f"u{n}") for n in range(5)]
    finally:
        quota.close()
    assert allowed == [True] * 5
    assert Hold.objects.count() == 1
    assert not Hold.objects.filter(status="active").exists()
    check = tollgate.entitlements.check(customer="u1", feature="api_calls")
    assert (check.used, check.held) == (5, 0)
