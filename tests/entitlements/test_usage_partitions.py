"""Usage events in monthly partitions (PostgreSQL) with one key per (project, event id) across months: the
migration that converts a table holding rows, partitions made once under a race, dedupe across months under
concurrency, and retention that drops old months whole but never one with an open or unreported period."""

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from catalog.models import Feature
from core.ids import new_id
from core.models import AuditLogEntry
from entitlements.models import UsageCounter, UsageEvent, UsageEventKey, UsageMeterTotal, UsagePartitionDrop
from entitlements.services import usage_partitions
from entitlements.services.counters import _events_insert
from entitlements.services.meter_totals import meter_totals_rebuild
from entitlements.tasks import usage_partitions_maintain
from tests.connection_races import one_race_at_a_time
from tests.entitlements.helpers import customer, feature, product

TABLE = UsageEvent._meta.db_table
on_postgres = pytest.mark.postgres


@pytest.fixture
def calls(tenant_a: Any) -> Feature:
    p = tenant_a.project
    api_calls = feature(p, "api_calls", Feature.Type.METERED)
    product(p, "free", {api_calls: 10_000})
    p.default_product = "free"
    p.save()
    return api_calls


@pytest.fixture
def partitions_restored() -> Iterator[None]:
    """The partitions a test makes for months of its own are dropped after it (DDL outlives its transaction)."""
    before = set(usage_partitions.usage_partitions_list())
    yield
    if not usage_partitions.partitioned():
        return
    with connection.cursor() as cursor:
        for _, table in set(usage_partitions.usage_partitions_list()) - before:
            cursor.execute(f"DROP TABLE {table}")
        cursor.execute(f"DELETE FROM {usage_partitions.DEFAULT}")
    usage_partitions._known.clear()
    usage_partitions._uncommitted.clear()


def _row(project: Any, cust: Any, feat: Any, event_id: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": new_id("uev"),
        "project_id": project.pk,
        "customer_id": cust.pk,
        "feature_id": feat.pk,
        "event_id": event_id,
        "kind": UsageEvent.Kind.USAGE,
        "quantity": 1,
        "timestamp": at,
        "period_start": extra.pop("period_start", None),
        "properties": {},
        "meter_status": "",
        "meter_next_attempt_at": None,
        "created_at": at,
        **extra,
    }


def _partition_of(event_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE event_id = %s", [event_id])
        return str(cursor.fetchone()[0])


def _concurrently(count: int, work: Any) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    with one_race_at_a_time():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return results


# --- the migration ------------------------------------------------------------------------------------------


def _migrate(target: str | None = None) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    if target is None:
        (target,) = (name for app, name in executor.loader.graph.leaf_nodes() if app == "entitlements")
    executor.migrate([("entitlements", target)])
    usage_partitions._known.clear()
    usage_partitions._uncommitted.clear()


@pytest.fixture
def schema_restored(partitions_restored: None) -> Iterator[None]:
    yield
    _migrate()


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_the_rows_and_their_idempotency(api, tenant_a, calls, schema_restored):
    project, cust = tenant_a.project, customer(tenant_a.project, "u1")
    _migrate("0016_subscription_versions")  # the plain table, unique (project, event id), no keys
    moments = {
        "old-jan": datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC),
        "old-feb": datetime(2026, 2, 1, tzinfo=UTC),
        "now": timezone.now(),
    }
    columns = ["id", "project_id", "customer_id", "feature_id", "event_id", "kind", "quantity", "timestamp"]
    columns += ["period_start", "properties", "meter_status", "meter_attempts", "meter_error", "created_at"]
    stored = []
    with connection.cursor() as cursor:
        for event_id, at in moments.items():
            values = [
                new_id("uev"),
                project.pk,
                cust.pk,
                calls.pk,
                event_id,
                "usage",
                7,
                connection.ops.adapt_datetimefield_value(at),
                None,
                "{}",
                "",
                0,
                "",
            ]
            cursor.execute(
                f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
                [*values, connection.ops.adapt_datetimefield_value(at)],
            )
            stored.append((values[0], event_id, at))

    _migrate()

    assert sorted(UsageEvent.objects.values_list("id", "event_id", "timestamp")) == sorted(stored)
    assert sorted(UsageEventKey.objects.values_list("usage_event_id", "event_id", "timestamp")) == sorted(
        stored
    )
    if connection.vendor == "postgresql":
        assert _partition_of("old-jan") == f"{TABLE}_p2026_01"
        assert _partition_of("old-feb") == f"{TABLE}_p2026_02"
        assert _partition_of("now") == usage_partitions.partition_name(
            usage_partitions.month_of(moments["now"])
        )
        current = usage_partitions.month_of(timezone.now())
        months = [m for m, _ in usage_partitions.usage_partitions_list()]
        assert months[-4:] == [usage_partitions.month_add(current, n) for n in range(4)]
    # Behaviour kept: the same id again is the stored event, counted once; a new one is recorded.
    again = api.post(
        "/api/v1/usage",
        {"id": "now", "customer": "u1", "feature": "api_calls", "quantity": 7},
        key=tenant_a.key,
    )
    assert again.status_code == 200, again.json()
    assert again.json()["id"] == "now"
    assert again.json()["quantity"] == 7
    new = api.post(
        "/api/v1/usage",
        {"id": "new", "customer": "u1", "feature": "api_calls", "quantity": 2},
        key=tenant_a.key,
    )
    assert new.status_code == 201, new.json()
    assert UsageEvent.objects.count() == 4
    assert UsageEventKey.objects.count() == 4


# --- partitions made on demand ------------------------------------------------------------------------------


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_twelve_processes_making_the_same_month_make_it_once(tenant_a, calls, partitions_restored):
    project, cust = tenant_a.project, customer(tenant_a.project, "u1")
    month = date(2031, 5, 1)
    # A row of that month arrived before its partition: the default partition took it.
    early = _row(project, cust, calls, "early", datetime(2031, 5, 20, tzinfo=UTC))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {usage_partitions.DEFAULT} (id, project_id, customer_id, feature_id, event_id, kind, "
            "quantity, timestamp, properties, meter_status, meter_attempts, meter_error, created_at) "
            "VALUES (%s, %s, %s, %s, %s, 'usage', 1, %s, '{}', '', 0, '', %s)",
            [early["id"], project.pk, cust.pk, calls.pk, "early", early["timestamp"], early["timestamp"]],
        )
    assert _partition_of("early") == usage_partitions.DEFAULT

    results = _concurrently(12, lambda i: usage_partitions.usage_partitions_ensure(months=[month]))

    assert results.count([month]) == 1
    assert results.count([]) == 11
    assert (month, f"{TABLE}_p2031_05") in usage_partitions.usage_partitions_list()
    assert _partition_of("early") == f"{TABLE}_p2031_05"  # moved out of the default partition
    assert UsageEvent.objects.filter(event_id="early").count() == 1


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_an_insert_into_a_month_without_partition_makes_it(tenant_a, calls, partitions_restored):
    project, cust = tenant_a.project, customer(tenant_a.project, "u1")
    at = datetime(2032, 7, 4, 12, tzinfo=UTC)
    assert _events_insert([_row(project, cust, calls, "july", at)]) == {"july"}
    assert _partition_of("july") == f"{TABLE}_p2032_07"


# --- dedupe across months -----------------------------------------------------------------------------------


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_one_id_sent_at_once_in_two_months_is_recorded_once(tenant_a, calls, partitions_restored):
    project, cust = tenant_a.project, customer(tenant_a.project, "u1")
    months = [datetime(2030, 1, 31, 23, 59, tzinfo=UTC), datetime(2030, 2, 1, 0, 1, tzinfo=UTC)]
    usage_partitions.usage_partitions_ensure(months=[usage_partitions.month_of(m) for m in months])

    results = _concurrently(
        16, lambda i: _events_insert([_row(project, cust, calls, "same-id", months[i % 2], quantity=i + 1)])
    )

    assert sorted(map(sorted, results)) == [[]] * 15 + [["same-id"]]
    (winner,) = (i for i, result in enumerate(results) if result)
    assert list(UsageEvent.objects.filter(event_id="same-id").values_list("quantity", "timestamp")) == [
        (winner + 1, months[winner % 2])
    ]
    assert UsageEventKey.objects.filter(project=project, event_id="same-id").count() == 1


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_copies_of_a_batch_count_it_once(tenant_a, calls, partitions_restored):
    events = [
        {"id": f"b-{i}", "customer": f"u{i % 5}", "feature": "api_calls", "quantity": 2} for i in range(50)
    ]

    def post(index: int) -> dict[str, Any]:
        response = Client().post(
            "/api/v1/usage/batch",
            {"events": events},
            content_type="application/json",
            headers={"Authorization": f"Bearer {tenant_a.key}"},
        )
        assert response.status_code == 200, response.json()
        return dict(response.json())

    results = _concurrently(8, post)

    assert sum(r["accepted"] for r in results) == 50
    assert sum(r["duplicates"] for r in results) == 7 * 50
    assert UsageEvent.objects.filter(project=tenant_a.project).count() == 50
    assert sorted(UsageCounter.objects.values_list("customer__external_id", "used")) == [
        (f"u{i}", 20) for i in range(5)
    ]


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_batches_sent_at_once_count_each_id_once(tenant_a, calls, partitions_restored):
    """Batches sharing some ids, at once from eight connections: a batch whose keys' COPY meets a key another
    batch holds waits for it, fails, and claims its keys one by one; every id is counted exactly once."""
    batches = [
        [
            {"id": f"o-{i}", "customer": f"u{i % 5}", "feature": "api_calls", "quantity": i % 7 + 1}
            for i in range(start, start + 40)
        ]
        for start in range(0, 8 * 20, 20)  # each shares 20 ids with the next
    ]

    def post(index: int) -> dict[str, Any]:
        response = Client().post(
            "/api/v1/usage/batch",
            {"events": batches[index]},
            content_type="application/json",
            headers={"Authorization": f"Bearer {tenant_a.key}"},
        )
        assert response.status_code == 200, response.json()
        return dict(response.json())

    results = _concurrently(8, post)

    ids = range(8 * 20 + 20)
    assert sum(r["accepted"] for r in results) == len(ids)
    assert sum(r["accepted"] + r["duplicates"] for r in results) == 8 * 40
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == sorted(f"o-{i}" for i in ids)
    assert UsageEventKey.objects.filter(project=tenant_a.project).count() == len(ids)
    assert sorted(UsageCounter.objects.values_list("customer__external_id", "used")) == [
        (f"u{c}", sum(i % 7 + 1 for i in ids if i % 5 == c)) for c in range(5)
    ]


# --- retention ----------------------------------------------------------------------------------------------


@pytest.fixture
def old_months(tenant_a, calls, partitions_restored) -> dict[str, Any]:
    """Three old months, each a case: 2025-01 closed and reported, 2025-02 with an event still pending for
    Stripe's meter, 2025-03 counted in a yearly period that has not ended."""
    project, cust = tenant_a.project, customer(tenant_a.project, "u1")
    jan, feb, mar = (datetime(2025, m, 15, tzinfo=UTC) for m in (1, 2, 3))
    rows = [
        _row(
            project,
            cust,
            calls,
            f"jan-{i}",
            jan,
            meter_status="reported",
            period_start=datetime(2025, 1, 1, tzinfo=UTC),
        )
        for i in range(3)
    ]
    rows.append(_row(project, cust, calls, "feb-0", feb, meter_status="reported"))
    rows.append(_row(project, cust, calls, "feb-1", feb, meter_status="pending", meter_next_attempt_at=feb))
    year = datetime(2025, 3, 1, tzinfo=UTC)
    rows.append(_row(project, cust, calls, "mar-0", mar, period_start=year))
    UsageCounter.objects.create(
        project=project,
        customer=cust,
        feature=calls,
        period_start=year,
        period_end=datetime(2027, 3, 1, tzinfo=UTC),
        used=1,
    )
    assert len(_events_insert(rows)) == 6
    return {"project": project}


def _state() -> tuple[list[Any], int, int, int, int]:
    return (
        usage_partitions.usage_partitions_list(),
        UsageEvent.objects.count(),
        UsageEventKey.objects.count(),
        UsagePartitionDrop.objects.count(),
        AuditLogEntry.objects.filter(action="usage_partition.drop").count(),
    )


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_a_dry_run_says_what_it_would_do_and_changes_nothing(old_months):
    before = _state()
    out = StringIO()
    call_command(
        "usage_partitions", "--drop-older-than", "12", "--create-ahead", "30", "--dry-run", stdout=out
    )
    lines = out.getvalue().splitlines()
    assert "would drop 2025-01 (entitlements_usageevent_p2025_01: 3 event(s))" in lines
    assert (
        "kept 2025-02 (entitlements_usageevent_p2025_02): 1 event(s) not reported to Stripe yet (pending or failed)"
        in lines
    )
    assert (
        "kept 2025-03 (entitlements_usageevent_p2025_03): usage of 1 period(s) not closed (open, or ended less than 7 days ago: late usage)"
        in lines
    )
    assert lines[-1] == "Dry run: nothing was changed."
    # This month and the 30 after it, less those that exist: the migration made this month's and 3 ahead, in the
    # month the test database was made (4; 3 once that month has passed).
    this_month = datetime.now(UTC).date().replace(day=1)
    existing = sum(1 for month, _ in before[0] if month >= this_month)
    assert existing in (3, 4)
    assert sum(line.startswith("would make ") for line in lines) == 31 - existing
    assert _state() == before


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_retention_drops_old_months_exactly_and_refuses_open_or_unreported_ones(old_months, settings):
    settings.USAGE_RETENTION_MONTHS = 12
    kept_keys = set(
        UsageEventKey.objects.exclude(event_id__startswith="jan-").values_list("event_id", flat=True)
    )
    jan = datetime(2025, 1, 1, tzinfo=UTC)
    assert list(UsageMeterTotal.objects.values_list("period_start", "meter_status", "quantity")) == [
        (jan, "reported", 3)
    ]

    outcome = usage_partitions_maintain()

    assert outcome["dropped"] == ["2025-01"]
    assert outcome["kept"] == [
        "2025-02: 1 event(s) not reported to Stripe yet (pending or failed)",
        "2025-03: usage of 1 period(s) not closed (open, or ended less than 7 days ago: late usage)",
    ]
    months = [month for month, _ in usage_partitions.usage_partitions_list()]
    assert date(2025, 1, 1) not in months
    assert {date(2025, 2, 1), date(2025, 3, 1)} <= set(months)
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == sorted(kept_keys)
    assert set(UsageEventKey.objects.values_list("event_id", flat=True)) == kept_keys
    drop = UsagePartitionDrop.objects.get()
    assert (drop.month, drop.table, drop.events, drop.keys) == (date(2025, 1, 1), f"{TABLE}_p2025_01", 3, 3)
    # The dropped month's events left their period's meter totals: the totals are still the events' sums.
    assert not UsageMeterTotal.objects.exists()
    assert meter_totals_rebuild() == []
    audit = AuditLogEntry.objects.get(action="usage_partition.drop")
    assert (audit.actor_repr, audit.target_id, audit.after) == (
        "usage retention (beat)",
        str(drop.pk),
        {"month": "2025-01", "events": 3, "keys": 3},
    )
    # Once reported and once the period ended, they go too; a second run then finds nothing to do.
    UsageEvent.objects.filter(event_id="feb-1").update(meter_status="reported")
    UsageCounter.objects.update(
        period_end=timezone.now() - timedelta(days=6, hours=23)
    )  # late usage may come
    late = "2025-03: usage of 1 period(s) not closed (open, or ended less than 7 days ago: late usage)"
    assert usage_partitions_maintain() == {"made": [], "dropped": ["2025-02"], "kept": [late]}
    UsageCounter.objects.update(period_end=timezone.now() - timedelta(days=7, minutes=1))
    assert usage_partitions_maintain() == {"made": [], "dropped": ["2025-03"], "kept": []}
    assert UsageEvent.objects.count() == UsageEventKey.objects.count() == 0
    assert usage_partitions_maintain() == {"made": [], "dropped": [], "kept": []}


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_when_it_keeps_a_month(old_months):
    out = StringIO()
    with pytest.raises(CommandError, match=r"^2 month\(s\) kept"):
        call_command("usage_partitions", "--drop-older-than", "12", stdout=out)
    assert "dropped 2025-01 (entitlements_usageevent_p2025_01: 3 event(s) and 3 key(s))" in out.getvalue()
    assert UsagePartitionDrop.objects.count() == 1


@pytest.mark.skipif(
    connection.vendor == "postgresql", reason="SQLite's answer: the table is not partitioned there"
)
@pytest.mark.django_db
def test_on_sqlite_the_command_explains_and_changes_nothing(tenant_a, calls):
    project, cust = tenant_a.project, customer(tenant_a.project, "u1")
    _events_insert([_row(project, cust, calls, "old", datetime(2020, 1, 1, tzinfo=UTC))])
    out = StringIO()
    call_command("usage_partitions", "--drop-older-than", "1", "--create-ahead", "3", stdout=out)
    assert out.getvalue() == (
        "Usage events are partitioned by month on PostgreSQL only; this database (sqlite) keeps one plain table, "
        "so there is nothing to make or drop. Nothing was changed.\n"
    )
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["old"]
    assert UsageEventKey.objects.count() == 1


@pytest.mark.django_db
def test_a_deleted_customer_takes_its_events_and_a_deleted_project_its_keys(tenant_a, tenant_b, calls):
    project, cust = tenant_a.project, customer(tenant_a.project, "u1")
    other = feature(tenant_b.project, "api_calls", Feature.Type.METERED)
    now = timezone.now()
    _events_insert([_row(project, cust, calls, "a-1", now)])
    _events_insert([_row(tenant_b.project, customer(tenant_b.project, "u1"), other, "a-1", now)])
    cust.delete()
    assert list(UsageEvent.objects.values_list("project_id", "event_id")) == [(tenant_b.project.pk, "a-1")]
    assert UsageEventKey.objects.filter(project=project).count() == 0
    again = customer(project, "u1")  # the id is free again, as it was before the keys
    assert _events_insert([_row(project, again, calls, "a-1", now)]) == {"a-1"}
    project.delete()
    assert list(UsageEventKey.objects.values_list("project_id", "event_id")) == [(tenant_b.project.pk, "a-1")]
