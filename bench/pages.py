"""List pages deep in a large list, as a ratio to the list's first page measured in the same run.

A project with `BENCH_PAGES_CUSTOMERS` customers (default 100,000; created in bulk, a second apart, every tenth
sharing its `created_at` with the one before, as imports make ties), then `GET /api/v1/customers?limit=20`:
the first page (the baseline), a page from the middle of the list and the page after the 100,000th newest
customer (its last page), each warm, per-call median and p99 over ROUNDS × CALLS calls. With the cursor as the
index scan's bound (core.pagination), the database reads as few rows for any page as for the first; a page after a
cursor still makes one more query than the first page (the one that resolves the cursor).

The back office's customer list (`/admin/customers/customer/`, a superuser, the project's customers) is measured
twice in the same run: with the project's first 200 customers (the baseline: full pages, as later) and with all of them, the list's first
page and a currency filter's. Its paginator counts at most 10,001 rows and its currency filter reads the catalog,
not the customers table (core.admin_lists). The rows and the user are deleted at the end.
"""

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bench.setup import call_times, p99

ROUNDS = 5
CALLS = 60
CUSTOMERS = int(os.environ.get("BENCH_PAGES_CUSTOMERS", "100000"))
# The back office's baseline: enough customers for two full pages of its list (100 rows each).
FEW = 200
# An admin page renders 100 rows: fewer calls per round than the API's pages.
ADMIN_CALLS = 12


def _times(call: Callable[[], object], calls: int = CALLS) -> list[float]:
    return call_times(call, rounds=ROUNDS, calls=calls)


def run() -> None:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from bench.setup import report
    from core.actors import Actor
    from core.ids import new_ids, random_token
    from customers.models import Customer
    from projects.models import Project
    from projects.services import projects as services

    slug = f"bench-pages-{random_token(8).lower()}"
    project, _, secret = services.project_create(actor=Actor.system("bench"), slug=slug, name="Bench pages")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    created = [start + timedelta(seconds=n - (1 if n % 10 == 9 else 0)) for n in range(CUSTOMERS)]
    rows = [
        Customer(
            id=pk,
            project=project,
            external_id=f"user-{n}",
            email=f"user-{n}@example.com",
            currency="usd" if n % 2 else "eur",
            created_at=at,
        )
        for n, (pk, at) in enumerate(zip(new_ids("cust", CUSTOMERS), created, strict=True))
    ]
    operator = User.objects.create_superuser(f"{slug}-operator", password=random_token(20))
    back_office = Client()
    back_office.force_login(operator)

    def admin_list(query: str) -> Callable[[], object]:
        path = f"/admin/customers/customer/?project__id__exact={project.pk}{query}"

        def call() -> object:
            response = back_office.get(path)
            assert response.status_code == 200, response.content[:300]
            return response

        return call

    created_at = Customer._meta.get_field("created_at")
    created_at.auto_now_add = False  # type: ignore[attr-defined]  # keep the instants given (a seed, not a request)
    try:
        Customer.objects.bulk_create(rows[:FEW])
        admin_few = _times(admin_list(""), ADMIN_CALLS)
        admin_few_usd = _times(admin_list("&currency=usd"), ADMIN_CALLS)
        started = time.perf_counter()
        Customer.objects.bulk_create(rows[FEW:], batch_size=5000)
    finally:
        created_at.auto_now_add = True  # type: ignore[attr-defined]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE billing_customer")
    seeded = time.perf_counter() - started

    newest_first = list(
        Customer.objects.filter(project=project).order_by("-created_at", "-pk").values_list("pk", flat=True)
    )
    client = Client()
    headers = {"Authorization": f"Bearer {secret}"}

    def page(cursor: str | None) -> Callable[[], object]:
        path = "/api/v1/customers?limit=20" + (f"&starting_after={cursor}" if cursor else "")

        def call() -> object:
            response = client.get(path, headers=headers)
            assert response.status_code == 200, response.content
            assert len(response.json()["data"]) == 20
            return response

        return call

    try:
        with override_settings(API_RATE_LIMIT_PER_MINUTE=0):
            first = _times(page(None))
            middle = _times(page(newest_first[CUSTOMERS // 2]))
            last = _times(page(newest_first[-21]))
        admin_many = _times(admin_list(""), ADMIN_CALLS)
        admin_many_usd = _times(admin_list("&currency=usd"), ADMIN_CALLS)
    finally:
        Customer.objects.filter(project=project)._raw_delete(connection.alias)  # type: ignore[attr-defined]
        Project.objects.filter(pk=project.pk).delete()
        operator.delete()

    baseline = statistics.median(first)
    report(
        f"List pages of {CUSTOMERS:,} customers (database: {connection.vendor}; seeded in {seeded:.0f} s) "
        "— lower is better",
        [
            ("first page (baseline), median", baseline, "µs/call"),
            ("first page, p99", p99(first), "µs/call"),
            (f"page after customer {CUSTOMERS // 2:,}, median", statistics.median(middle), "µs/call"),
            (
                f"page after customer {CUSTOMERS - 21:,} (the last), median",
                statistics.median(last),
                "µs/call",
            ),
            (f"page after customer {CUSTOMERS - 21:,} (the last), p99", p99(last), "µs/call"),
        ],
        baseline,
    )
    admin_baseline = statistics.median(admin_few)
    report(
        f"The back office's customer list, {FEW} customers (baseline) and {CUSTOMERS:,} — lower is better",
        [
            (f"first page, {FEW} customers (baseline), median", admin_baseline, "µs/call"),
            (f"first page, {CUSTOMERS:,} customers, median", statistics.median(admin_many), "µs/call"),
            (f"first page, {CUSTOMERS:,} customers, p99", p99(admin_many), "µs/call"),
            (f"currency filter, {FEW} customers, median", statistics.median(admin_few_usd), "µs/call"),
            (
                f"currency filter, {CUSTOMERS:,} customers, median",
                statistics.median(admin_many_usd),
                "µs/call",
            ),
        ],
        admin_baseline,
    )
