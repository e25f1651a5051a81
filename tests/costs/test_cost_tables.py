"""Cost tables (#54): a project's versioned price table of what its own product costs it. Versions are numbered
1, 2, 3 …, apply from their start on (never retroactively, never before the latest), are never changed, are
audited with the key that wrote them, and are another project's secret."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from threading import Barrier
from typing import Any

import pytest
import time_machine
from django.db import connection

from core.actors import Actor
from core.errors import InvalidRequest
from core.models import AuditLogEntry
from costs.models import CostTable
from costs.pricing import CostTableRow
from costs.selectors import cost_table_rows, cost_tables
from costs.services.cost_tables import cost_table_create

URL = "/api/v1/cost_tables"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
GPT = {
    "gpt-4o": {
        "input_tokens": {"micros": 2_500_000, "per": 1_000_000},
        "output_tokens": {"micros": 10_000_000, "per": 1_000_000},
        "images": 40_000,
    }
}
GPT_STORED = {
    "gpt-4o": {
        "images": {"micros": 40_000, "per": 1},
        "input_tokens": {"micros": 2_500_000, "per": 1_000_000},
        "output_tokens": {"micros": 10_000_000, "per": 1_000_000},
    }
}
ACTOR = Actor.system("test")


def _z(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _representation(table: CostTable, *, current: bool) -> dict[str, Any]:
    return {
        "id": table.pk,
        "object": "cost_table",
        "version": table.version,
        "currency": table.currency,
        "starts_at": _z(table.starts_at),
        "models": table.models,
        "current": current,
        "created_at": _z(table.created_at),
    }


def _error(response: Any) -> tuple[int, str, str | None, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["param"], error["message"]


def test_versions_are_created_numbered_and_answered_exactly(api, tenant_a):
    with time_machine.travel(T0, tick=False):
        first = api.post(URL, {"currency": "USD", "models": GPT}, key=tenant_a.key)
        second = api.post(
            URL,
            {
                "currency": "eur",
                "starts_at": "2026-03-02T12:00:00Z",
                "models": {"gpt-4o-mini": {"input_tokens": {"micros": 150_000, "per": 1_000_000}}},
            },
            key=tenant_a.key,
        )
    assert first.status_code == 201, first.json()
    assert second.status_code == 201, second.json()
    v1, v2 = CostTable.objects.order_by("version")
    assert v1.pk.startswith("ctab_")
    assert first.json() == {
        "id": v1.pk,
        "object": "cost_table",
        "version": 1,
        "currency": "usd",
        "starts_at": "2026-03-01T12:00:00Z",
        "models": GPT_STORED,
        "current": True,
        "created_at": "2026-03-01T12:00:00Z",
    }
    assert second.json() == {
        "id": v2.pk,
        "object": "cost_table",
        "version": 2,
        "currency": "eur",
        "starts_at": "2026-03-02T12:00:00Z",
        "models": {"gpt-4o-mini": {"input_tokens": {"micros": 150_000, "per": 1_000_000}}},
        "current": False,
        "created_at": "2026-03-01T12:00:00Z",
    }
    assert (v1.project, v2.project) == (tenant_a.project, tenant_a.project)
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        assert api.get(f"{URL}/{v1.pk}", key=tenant_a.key).json() == first.json()
        assert api.get(URL, key=tenant_a.key).json() == {
            "object": "list",
            "data": [second.json(), first.json()],
            "has_more": False,
        }


def test_current_moves_to_the_next_version_exactly_at_its_start(api, tenant_a):
    project = tenant_a.project
    v1 = cost_table_create(project=project, actor=ACTOR, currency="usd", models=GPT, now=T0)
    v2 = cost_table_create(
        project=project, actor=ACTOR, currency="usd", models=GPT, starts_at=T0 + timedelta(days=1), now=T0
    )
    v3 = cost_table_create(
        project=project, actor=ACTOR, currency="usd", models=GPT, starts_at=T0 + timedelta(days=2), now=T0
    )
    assert [(t.version, t.starts_at) for t in (v1, v2, v3)] == [
        (1, T0),
        (2, T0 + timedelta(days=1)),
        (3, T0 + timedelta(days=2)),
    ]

    def current(at: datetime) -> list[tuple[int, bool]]:
        return [(t.version, t.current) for t in cost_tables(project=project, now=at)]

    assert current(T0 - US) == [(3, False), (2, False), (1, False)]
    assert current(T0) == [(3, False), (2, False), (1, True)]
    assert current(v2.starts_at - US) == [(3, False), (2, False), (1, True)]
    assert current(v2.starts_at) == [(3, False), (2, True), (1, False)]
    assert current(v3.starts_at) == [(3, True), (2, False), (1, False)]
    # The API's `current` is the version in force by the server's clock.
    with time_machine.travel(v2.starts_at, tick=False):
        listed = api.get(URL, key=tenant_a.key).json()["data"]
        assert [(t["version"], t["current"]) for t in listed] == [(3, False), (2, True), (1, False)]
        assert api.get(f"{URL}/{v3.pk}", key=tenant_a.key).json()["current"] is False
    with time_machine.travel(v3.starts_at, tick=False):
        assert api.get(f"{URL}/{v3.pk}", key=tenant_a.key).json()["current"] is True


def test_the_rows_a_batch_prices_with_are_every_version_by_start(tenant_a, tenant_b):
    project = tenant_a.project
    cost_table_create(project=project, actor=ACTOR, currency="usd", models=GPT, now=T0)
    cost_table_create(
        project=project,
        actor=ACTOR,
        currency="eur",
        models={"m": {"s": 7}},
        starts_at=T0 + timedelta(days=1),
        now=T0,
    )
    cost_table_create(project=tenant_b.project, actor=ACTOR, currency="usd", models={"x": {"y": 1}}, now=T0)
    assert cost_table_rows(project_id=project.pk) == [
        CostTableRow(
            1,
            "usd",
            T0,
            {
                "gpt-4o": {
                    "images": (40_000, 1),
                    "input_tokens": (2_500_000, 1_000_000),
                    "output_tokens": (10_000_000, 1_000_000),
                }
            },
        ),
        CostTableRow(2, "eur", T0 + timedelta(days=1), {"m": {"s": (7, 1)}}),
    ]


def test_a_start_in_the_past_is_refused_and_nothing_is_written(api, tenant_a):
    project = tenant_a.project
    with time_machine.travel(T0, tick=False):
        response = api.post(
            URL, {"currency": "usd", "starts_at": "2026-03-01T11:59:58Z", "models": GPT}, key=tenant_a.key
        )
    assert _error(response) == (
        400,
        "starts_in_past",
        "starts_at",
        "starts_at: 2026-03-01T11:59:58Z is in the past; a version applies from its start on, never to what "
        "already happened.",
    )
    assert not CostTable.objects.exists()
    assert not AuditLogEntry.objects.exists()
    # A second of slack for the caller's clock ("now" as they sent it), not a microsecond more.
    with pytest.raises(InvalidRequest) as refused:
        cost_table_create(
            project=project,
            actor=ACTOR,
            currency="usd",
            models=GPT,
            starts_at=T0 - timedelta(seconds=1) - US,
            now=T0,
        )
    assert (refused.value.code, refused.value.param) == ("starts_in_past", "starts_at")
    table = cost_table_create(
        project=project, actor=ACTOR, currency="usd", models=GPT, starts_at=T0 - timedelta(seconds=1), now=T0
    )
    assert (table.version, table.starts_at) == (1, T0 - timedelta(seconds=1))


def test_a_version_starts_after_the_latest_one(api, tenant_a):
    project = tenant_a.project
    v1 = cost_table_create(
        project=project, actor=ACTOR, currency="usd", models=GPT, starts_at=T0 + timedelta(hours=1), now=T0
    )
    with time_machine.travel(T0, tick=False):
        at_the_same_time = api.post(
            URL, {"currency": "usd", "starts_at": _z(v1.starts_at), "models": GPT}, key=tenant_a.key
        )
        now = api.post(URL, {"currency": "usd", "models": GPT}, key=tenant_a.key)
    message = "starts_at: version 1 starts at 2026-03-01T13:00:00Z; a new version starts after it."
    assert _error(at_the_same_time) == (400, "starts_before_latest", "starts_at", message)
    assert _error(now) == (400, "starts_before_latest", "starts_at", message)
    assert list(CostTable.objects.values_list("version", flat=True)) == [1]
    assert AuditLogEntry.objects.count() == 1
    v2 = cost_table_create(
        project=project, actor=ACTOR, currency="usd", models=GPT, starts_at=v1.starts_at + US, now=T0
    )
    assert v2.version == 2


def test_each_project_numbers_its_own_versions(tenant_a, tenant_b):
    a1 = cost_table_create(project=tenant_a.project, actor=ACTOR, currency="usd", models=GPT, now=T0)
    b1 = cost_table_create(project=tenant_b.project, actor=ACTOR, currency="usd", models=GPT, now=T0)
    a2 = cost_table_create(
        project=tenant_a.project, actor=ACTOR, currency="usd", models=GPT, starts_at=T0 + US, now=T0
    )
    assert (a1.version, b1.version, a2.version) == (1, 1, 2)


@pytest.mark.parametrize(
    ("body", "param", "code", "message"),
    [
        ({"currency": "usd"}, "models", "parameter_missing", "models: This field is required."),
        ({"models": GPT}, "currency", "parameter_missing", "currency: This field is required."),
        (
            {"currency": "dollars", "models": GPT},
            "currency",
            "invalid_parameter",
            "currency: Must be a three-letter ISO currency code.",
        ),
        (
            {"currency": "usd", "models": GPT, "version": 3},
            "version",
            "unknown_parameter",
            "version: Unknown parameter.",
        ),
        (
            {"currency": "usd", "models": GPT, "starts_at": "tomorrow"},
            "starts_at",
            "invalid_parameter",
            "starts_at: Datetime has wrong format. Use one of these formats instead: "
            "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
        ),
        (
            {"currency": "usd", "models": None},
            "models",
            "parameter_missing",
            "models: This field may not be null.",
        ),
        (
            {"currency": "usd", "models": {}},
            "models",
            "invalid_parameter",
            'models: give at least one model, as {"<model>": {"<dimension>": {"micros": n, "per": n}}}.',
        ),
        (
            {"currency": "usd", "models": {"gpt-4o": {}}},
            "models.gpt-4o",
            "invalid_parameter",
            'models.gpt-4o: give at least one dimension, as {"<dimension>": {"micros": n, "per": n}}.',
        ),
        (
            {"currency": "usd", "models": {"gpt 4o": {"input_tokens": 1}}},
            "models.gpt 4o",
            "invalid_parameter",
            "models.gpt 4o: 'gpt 4o' is not a model name: 1 to 100 letters, digits and . _ : / -, starting with "
            "a letter or a digit.",
        ),
        (
            {"currency": "usd", "models": {"gpt-4o": {"input tokens": 1}}},
            "models.gpt-4o.input tokens",
            "invalid_parameter",
            "models.gpt-4o.input tokens: 'input tokens' is not a dimension name: 1 to 100 letters, digits and "
            ". _ : / -, starting with a letter or a digit.",
        ),
        (
            {"currency": "usd", "models": {"gpt-4o": {"input_tokens": {"micros": 2.5}}}},
            "models.gpt-4o.input_tokens",
            "invalid_parameter",
            "models.gpt-4o.input_tokens: micros is a whole number of micro-units of the currency, from 0 to "
            "1000000000000000; got 2.5.",
        ),
        (
            {"currency": "usd", "models": {"gpt-4o": {"input_tokens": {"micros": 1, "per": 0}}}},
            "models.gpt-4o.input_tokens",
            "invalid_parameter",
            "models.gpt-4o.input_tokens: per is a whole number of units, from 1 to 1000000000000; got 0.",
        ),
        (
            {"currency": "usd", "models": {"gpt-4o": {"input_tokens": {"micros": 1, "pre": 2}}}},
            "models.gpt-4o.input_tokens",
            "invalid_parameter",
            'models.gpt-4o.input_tokens: unknown field \'pre\'; a rate is {"micros": n, "per": n}.',
        ),
    ],
)
def test_a_malformed_table_is_refused_and_nothing_is_written(api, tenant_a, body, param, code, message):
    assert _error(api.post(URL, body, key=tenant_a.key)) == (400, code, param, message)
    assert not CostTable.objects.exists()
    assert not AuditLogEntry.objects.exists()


def test_another_projects_table_is_unknown(api, tenant_a, tenant_b):
    table = cost_table_create(project=tenant_a.project, actor=ACTOR, currency="usd", models=GPT, now=T0)
    response = api.get(f"{URL}/{table.pk}", key=tenant_b.key)
    assert _error(response) == (404, "resource_missing", "id", f"No such cost table: {table.pk!r}.")
    assert api.get(URL, key=tenant_b.key).json() == {"object": "list", "data": [], "has_more": False}
    assert api.get(f"{URL}/{table.pk}", key=tenant_a.key).status_code == 200
    # Project B's first version is its version 1, whatever A holds.
    with time_machine.travel(T0, tick=False):
        created = api.post(URL, {"currency": "usd", "models": GPT}, key=tenant_b.key).json()
    assert created["version"] == 1
    assert [t["id"] for t in api.get(URL, key=tenant_b.key).json()["data"]] == [created["id"]]


def test_versions_cannot_be_changed_or_deleted_over_the_api(api, tenant_a):
    table = cost_table_create(project=tenant_a.project, actor=ACTOR, currency="usd", models=GPT, now=T0)
    for method in ("PATCH", "PUT", "DELETE"):
        response = api.request(method, f"{URL}/{table.pk}", key=tenant_a.key, json_body={"currency": "eur"})
        assert response.status_code == 405
    assert list(CostTable.objects.values_list("version", "currency", "models")) == [(1, "usd", GPT_STORED)]


def test_a_version_is_audited_with_the_key_that_wrote_it(api, tenant_a):
    with time_machine.travel(T0, tick=False):
        response = api.post(
            URL, {"currency": "usd", "starts_at": "2026-03-05T00:00:00Z", "models": GPT}, key=tenant_a.key
        )
    assert response.status_code == 201
    entry = AuditLogEntry.objects.get()
    table = CostTable.objects.get()
    assert (
        entry.project_id,
        entry.actor_type,
        entry.actor_id,
        entry.action,
        entry.target_type,
        entry.target_id,
        entry.before,
        entry.after,
    ) == (
        tenant_a.project.pk,
        "api_key",
        tenant_a.api_key.pk,
        "cost_table.created",
        "costs.costtable",
        table.pk,
        None,
        {"version": 1, "currency": "usd", "starts_at": "2026-03-05T00:00:00Z", "models": GPT_STORED},
    )


def test_the_list_is_every_version_newest_first(api, tenant_a):
    """Ordered by version, not by when each was written: versions written in the same instant keep their order."""
    with time_machine.travel(T0, tick=False):
        for day in range(3):
            cost_table_create(
                project=tenant_a.project,
                actor=ACTOR,
                currency="usd",
                models=GPT,
                starts_at=T0 + timedelta(days=day),
            )
        listed = api.get(URL, key=tenant_a.key).json()
    assert ([t["version"] for t in listed["data"]], listed["has_more"]) == ([3, 2, 1], False)
    refused = api.get(URL, key=tenant_a.key, json_body={"limit": 2})
    assert _error(refused) == (
        400,
        "unknown_parameter",
        "limit",
        "Unknown query parameter 'limit' (this operation takes: none).",
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_never_share_a_version(tenant_a):
    """Eight creates at once, each starting now: the project's row lock numbers them in turn. Each one is
    version n+1 of the one before it or, when a later clock reading took the lock first, refused as not after
    the latest; never a duplicate number or a unique-constraint error."""
    barrier = Barrier(8)

    def create(_: int) -> str:
        barrier.wait()
        try:
            cost_table_create(project=tenant_a.project, actor=ACTOR, currency="usd", models=GPT)
        except InvalidRequest as refused:
            return refused.code
        finally:
            connection.close()
        return "created"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(create, range(8)))
    created = outcomes.count("created")
    assert set(outcomes) <= {"created", "starts_before_latest"}
    assert created >= 1
    rows = list(CostTable.objects.order_by("version").values_list("version", "starts_at"))
    assert [version for version, _ in rows] == list(range(1, created + 1))
    assert [starts for _, starts in rows] == sorted(starts for _, starts in rows)
    assert AuditLogEntry.objects.filter(action="cost_table.created").count() == created
