"""Local answers of a test clock's customer: usage windows (an entity's own here) end on the clock's time, which
the snapshot carries (`clock`), so a local `retry_after` is the server's."""

from datetime import UTC, datetime, timedelta

import pytest
from tollgate_client.local import LocalEntitlements

from catalog.models import Feature
from customers.models import TestClock
from tests.clients.test_local_entitlements import FAST, counted  # noqa: F401  (a fixture)
from tests.entitlements.helpers import customer, feature, product, subscribe

pytestmark = pytest.mark.django_db(transaction=True)

CLOCK = datetime(2026, 10, 7, 15, 30, 10, tzinfo=UTC)  # a test clock's frozen time, in the past


def _same(local_answer, server_answer) -> None:
    answer, expected = local_answer.to_dict(), server_answer.to_dict()
    local_wait, server_wait = answer.pop("retry_after"), expected.pop("retry_after")
    assert answer == expected
    assert (local_wait, server_wait) == (server_wait, server_wait) or (
        local_wait is not None and server_wait is not None and abs(local_wait - server_wait) <= 1
    ), (local_wait, server_wait)


def test_a_test_clock_customers_entity_window_answers_locally_as_on_the_server(
    counted,  # noqa: F811
    tollgate,
    tenant_a,
):
    """A test clock's customer (frozen at 15:30:10) whose seat used its minute's 3: the server refuses a fourth
    with `retry_after` 50 (its minute ends at 15:31:00 on the clock), and so does the local answer (it said 1,
    counting on this machine's clock)."""
    p = tenant_a.project
    seats = feature(p, "seats", Feature.Type.ALLOCATION)
    summaries = feature(p, "summaries", Feature.Type.METERED)
    clock = TestClock.objects.create(
        project=p,
        frozen_time=CLOCK,
        deletes_after=CLOCK + timedelta(days=600),
        stripe_test_clock_id="clock_local_entity",
    )
    cust = customer(p, "team-9")
    cust.test_clock = clock
    cust.save(update_fields=["test_clock"])
    value = {"limit": 10, "per_entity": {"feature": "seats", "limit": 8, "windows": {"minute": 3, "day": 5}}}
    subscribe(cust, product(p, "pro", {seats: 2, summaries: value}), start=CLOCK - timedelta(days=1))
    tollgate.entitlements.entities.add(customer="team-9", feature="seats", entity="ana")
    used = tollgate.entitlements.consume(
        id="s1", customer="team-9", feature="summaries", quantity=3, entity="ana"
    )
    assert used.allowed is True
    client, http = counted
    with LocalEntitlements(client, **FAST) as local:
        mine = local.check(customer="team-9", feature="summaries", quantity=1, entity="ana")
        assert http.paths.count("/api/v1/entitlements/check") == 0
        server = tollgate.entitlements.check(customer="team-9", feature="summaries", quantity=1, entity="ana")
        assert (server.allowed, server.binding, server.entity.binding) == (False, "entity", "minute")
        assert 49 <= server.retry_after <= 50
        _same(mine, server)
