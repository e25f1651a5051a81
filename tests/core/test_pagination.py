"""Cursor pages (core.pagination): every object once, newest first, ties on `created_at` broken by id; and on
PostgreSQL the page after a cursor is read from the list's index with the cursor as the scan's bound, so a page
deep in a large list reads no more rows than the first page does."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from customers.models import Customer
from tests.billing.payment_factories import CustomerFactory

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _customers(project, created):
    """One customer per entry of `created` (a datetime each: equal ones make ties), in that order."""
    ids = []
    for n, at in enumerate(created):
        customer = CustomerFactory(project=project, external_id=f"user-{n:03d}")
        Customer.objects.filter(pk=customer.pk).update(created_at=at)
        ids.append(customer.pk)
    return ids


def _walk(api, key, limit):
    seen, pages, cursor = [], 0, ""
    while True:
        query = f"?limit={limit}" + (f"&starting_after={cursor}" if cursor else "")
        page = api.get(f"/api/v1/customers{query}", key=key).json()
        pages += 1
        seen += [row["id"] for row in page["data"]]
        if not page["has_more"]:
            return seen, pages
        cursor = page["data"][-1]["id"]


def test_pages_give_every_customer_once_newest_first_with_ties_broken_by_id(api, tenant_a, tenant_b):
    # Seven customers over three instants (ties of three and two), and another project's at the same instants.
    created = [T0, T0, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=1), T0 - timedelta(days=1), T0]
    ids = _customers(tenant_a.project, created)
    _customers(tenant_b.project, [T0, T0 + timedelta(seconds=1)])
    expected = [pk for _, pk in sorted(zip(created, ids, strict=True), reverse=True)]

    for limit in (1, 2, 3, 7, 100):
        seen, pages = _walk(api, tenant_a.key, limit)
        assert seen == expected
        assert pages == max(1, -(-len(expected) // limit))


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's plan; SQLite has no such index bound"
)
def test_a_deep_page_is_read_from_the_index_bounded_by_the_cursor(api, tenant_a):
    ids = _customers(tenant_a.project, [T0 + timedelta(seconds=n // 2) for n in range(40)])
    cursor = sorted(zip([T0 + timedelta(seconds=n // 2) for n in range(40)], ids, strict=True), reverse=True)[
        29
    ][1]
    with CaptureQueriesContext(connection) as queries:
        page = api.get(f"/api/v1/customers?limit=5&starting_after={cursor}", key=tenant_a.key).json()
    assert len(page["data"]) == 5
    listing = [q["sql"] for q in queries.captured_queries if "LIMIT 6" in q["sql"]]
    assert len(listing) == 1
    with transaction.atomic(), connection.cursor() as cursor_:
        # A 40-row table would be read whole and sorted otherwise: ask for the plan a large list gets.
        cursor_.execute("SET LOCAL enable_seqscan = off")
        cursor_.execute("SET LOCAL enable_sort = off")
        cursor_.execute("EXPLAIN " + listing[0])
        plan = "\n".join(row[0] for row in cursor_.fetchall())
    assert "customer_list_page" in plan
    # The cursor's instant is read once before the scan (an InitPlan), inside the page's own query…
    assert "InitPlan" in plan, plan
    index_cond = next(line for line in plan.splitlines() if "Index Cond" in line and "ROW(" in line)
    # …and the cursor bounds the scan (a row comparison in the index condition), not a filter over newer rows.
    assert re.search(r"ROW\(created_at, \(?id\)?(::text)?\) < ROW\(\$0, ", index_cond), plan
    # The cursor is the scan's bound, never a filter; the one filter is the erased customers' (rare rows).
    filters = [line.strip() for line in plan.splitlines() if line.strip().startswith("Filter:")]
    assert all(line == "Filter: (erased_at IS NULL)" for line in filters), plan
    assert "Sort" not in plan, plan


def _queries(api, key, path):
    with CaptureQueriesContext(connection) as queries:
        response = api.get(path, key=key)
    return response, len(queries.captured_queries)


def test_a_page_after_a_cursor_makes_as_many_queries_as_the_first_page(api, tenant_a):
    ids = _customers(tenant_a.project, [T0 + timedelta(seconds=n) for n in range(6)])
    api.get("/api/v1/customers?limit=2", key=tenant_a.key)  # the key and the project cached alike for both

    first, first_queries = _queries(api, tenant_a.key, "/api/v1/customers?limit=2")
    after, after_queries = _queries(api, tenant_a.key, f"/api/v1/customers?limit=2&starting_after={ids[3]}")

    assert [row["id"] for row in first.json()["data"]] == [ids[5], ids[4]]
    assert [row["id"] for row in after.json()["data"]] == [ids[2], ids[1]]
    assert after.json()["has_more"] is True
    # The cursor is resolved inside the page's query, not by a query of its own.
    assert after_queries == first_queries


def test_the_page_after_the_oldest_object_is_empty_and_an_unknown_cursor_is_refused(api, tenant_a, tenant_b):
    ids = _customers(tenant_a.project, [T0 + timedelta(seconds=n) for n in range(3)])
    (other,) = _customers(tenant_b.project, [T0])

    last = api.get(f"/api/v1/customers?limit=2&starting_after={ids[0]}", key=tenant_a.key)
    assert (last.status_code, last.json()) == (200, {"object": "list", "data": [], "has_more": False})
    for unknown in ("cust_nope", other):  # another project's customer is as unknown as a missing one
        refused = api.get(f"/api/v1/customers?limit=2&starting_after={unknown}", key=tenant_a.key)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_cursor"
        assert refused.json()["error"]["param"] == "starting_after"
