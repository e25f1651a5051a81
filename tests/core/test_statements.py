"""`core.statements.Statement`: a read compiled once per connection answers what its queryset answers, on both
backends, and refuses what it cannot run again with new values."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Count, F, Q
from django.test.utils import CaptureQueriesContext

from core.statements import Statement, statements_compiled
from customers.models import Customer
from entitlements.models import Grant

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def customers(tenant_a, tenant_b):
    made = {}
    for tenant, external_id in ((tenant_a, "u1"), (tenant_a, "u2"), (tenant_b, "u1")):
        made[tenant.project.slug, external_id] = Customer.objects.create(
            project=tenant.project, external_id=external_id, metadata={"n": external_id}
        )
    return made


def _grants(customer, *expiries):
    from catalog.models import Feature

    feature = Feature.objects.create(
        project=customer.project, key=f"f-{Feature.objects.count()}", name="F", type="boolean"
    )
    return [
        Grant.objects.create(
            project=customer.project,
            customer=customer,
            feature=feature,
            value={"on": i},
            expires_at=at,
            reason="r",
        )
        for i, at in enumerate(expiries)
    ]


_CUSTOMER = Statement(
    lambda project_id, external_id: (
        Customer.objects.filter(project_id=project_id, external_id=external_id)
        .select_related("project")
        .order_by("pk")[:1]
    )
)
_IDS = Statement(
    lambda project_id: (
        Customer.objects.filter(project_id=project_id)
        .order_by("external_id")
        .values_list("external_id", flat=True)
    )
)
_LIVE_GRANTS = Statement(
    lambda customer_id, now: (
        Grant.objects.filter(customer_id=customer_id)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("expires_at", "pk")
        .values_list("pk", "value", "expires_at")
    ),
    now=datetime,
)


def test_a_statement_answers_as_its_queryset_for_every_set_of_values(customers, tenant_a, tenant_b):
    for (slug, external_id), customer in customers.items():
        project = customer.project
        found = _CUSTOMER.first(project_id=project.pk, external_id=external_id)
        assert found == customer
        assert found.metadata == {"n": external_id}  # converted as the ORM converts it
        assert found.created_at == Customer.objects.get(pk=customer.pk).created_at
        assert found.project.slug == slug  # select_related populated
    assert _CUSTOMER.first(project_id=tenant_a.project.pk, external_id="nobody") is None
    assert _IDS.rows(project_id=tenant_a.project.pk) == ["u1", "u2"]
    assert _IDS.rows(project_id=tenant_b.project.pk) == ["u1"]


def test_datetime_values_are_prepared_as_the_orm_prepares_them(customers, tenant_a):
    customer = customers["alpha", "u1"]
    soon, later = _grants(customer, T0 + timedelta(hours=1), T0 + timedelta(days=1))
    (forever,) = _grants(customer, None)
    expected = [(soon.pk, {"on": 0}, soon.expires_at), (later.pk, {"on": 1}, later.expires_at)]
    never = [(forever.pk, {"on": 0}, None)]

    def orm(now):
        return list(_LIVE_GRANTS._build(customer_id=customer.pk, now=now))

    for now, answer in (
        (T0, expected),
        (T0 + timedelta(hours=2), expected[1:]),
        (T0 + timedelta(days=2), []),
    ):
        rows = _LIVE_GRANTS.rows(customer_id=customer.pk, now=now)
        assert rows == orm(now)
        assert sorted(rows, key=str) == sorted(answer + never, key=str)


def test_it_is_compiled_once_per_connection_and_runs_one_statement(customers, tenant_a):
    statement = Statement(
        lambda project_id: Customer.objects.filter(project_id=project_id).order_by("external_id")
    )
    before = statements_compiled()
    with CaptureQueriesContext(connection) as queries:
        first = statement.rows(project_id=tenant_a.project.pk)
        second = statement.rows(project_id=tenant_a.project.pk)
    assert first == second == [customers["alpha", "u1"], customers["alpha", "u2"]]
    assert statements_compiled() == before + 1
    assert len(queries) == 2
    assert queries[0]["sql"] == queries[1]["sql"]


def test_annotations_come_back_on_the_instances(customers, tenant_a):
    statement = Statement(
        lambda project_id: (
            Customer.objects.filter(project_id=project_id)
            .annotate(twice=F("project__id"))
            .order_by("external_id")
        )
    )
    assert [(c.external_id, c.twice) for c in statement.rows(project_id=tenant_a.project.pk)] == [
        ("u1", tenant_a.project.pk),
        ("u2", tenant_a.project.pk),
    ]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        # A value made into another before it reaches the SQL: it cannot be put back in.
        (lambda name: Customer.objects.filter(pk__in=[name, name + "-2"]).order_by("pk"), "transformed"),
        # The lookup transforms the value: it cannot be put back in.
        (lambda name: Customer.objects.filter(name__contains=name).order_by("pk"), "transformed"),
        # A value the SQL never takes.
        (lambda name: Customer.objects.order_by("pk"), "does not take"),
        # Rows as dicts are not made.
        (lambda name: Customer.objects.filter(name=name).values("pk"), "instances or values_list"),
        # A prefetch would run a second query.
        (lambda name: Customer.objects.filter(name=name).prefetch_related("project"), "prefetching"),
    ],
)
def test_what_it_cannot_run_again_is_refused_on_its_first_run(customers, build, message):
    statement = Statement(build)
    with CaptureQueriesContext(connection) as queries, pytest.raises(ValueError, match=message):
        statement.rows(name="x")
    assert len(queries) == 0


def test_an_aggregate_grouped_by_a_column(customers, tenant_a, tenant_b):
    statement = Statement(
        lambda project_id: (
            Customer.objects.filter(project_id=project_id)
            .values_list("project_id")
            .annotate(n=Count("pk"))
            .order_by("project_id")
        )
    )
    assert statement.rows(project_id=tenant_a.project.pk) == [(tenant_a.project.pk, 2)]
    assert statement.rows(project_id=tenant_b.project.pk) == [(tenant_b.project.pk, 1)]


def test_value_types_it_does_not_take_are_refused_when_declared():
    with pytest.raises(TypeError, match="not values"):
        Statement(lambda project_id: Customer.objects.filter(project_id=project_id), other=str)


def test_a_list_value_is_compiled_once_for_each_length_it_comes_in(customers, tenant_a):
    statement = Statement(
        lambda project_id, skipped: (
            Customer.objects.filter(project_id=project_id)
            .exclude(external_id__in=skipped)
            .order_by("external_id")
            .values_list("external_id", flat=True)
        ),
        skipped=list,
    )
    before = statements_compiled()
    project_id = tenant_a.project.pk
    assert statement.rows(project_id=project_id, skipped=[]) == ["u1", "u2"]
    assert statement.rows(project_id=project_id, skipped=["u1"]) == ["u2"]
    assert statement.rows(project_id=project_id, skipped=["u2"]) == ["u1"]
    assert statement.rows(project_id=project_id, skipped=["u2", "u1"]) == []
    assert statement.rows(project_id=project_id, skipped=["x", "y"]) == ["u1", "u2"]
    assert statements_compiled() == before + 3  # lengths 0, 1 and 2


def test_a_list_of_datetimes_or_integers_is_prepared_as_the_orm_prepares_each_of_them(customers):
    customer = customers["alpha", "u1"]
    grants = _grants(customer, T0, T0 + timedelta(days=1), T0 + timedelta(days=2), None)
    for priority, grant in enumerate(grants):
        Grant.objects.filter(pk=grant.pk).update(priority=priority)
    statement = Statement(
        lambda customer_id, expiries, values: (
            Grant.objects.filter(customer_id=customer_id, expires_at__in=expiries, priority__in=values)
            .order_by("expires_at")
            .values_list("pk", flat=True)
        ),
        expiries=list[datetime],
        values=list[int],
    )
    for expiries, values in (
        ([T0 + timedelta(days=2), T0], [0, 1, 2]),
        ([T0 + timedelta(days=1)], [1]),
        ([T0 + timedelta(days=1)], [0]),
        ([T0, T0 + timedelta(days=1), T0 + timedelta(days=2)], [2, 1]),
    ):
        expected = list(
            Grant.objects.filter(customer_id=customer.pk, expires_at__in=expiries, priority__in=values)
            .order_by("expires_at")
            .values_list("pk", flat=True)
        )
        assert statement.rows(customer_id=customer.pk, expiries=expiries, values=values) == expected
    assert statement.rows(customer_id=customer.pk, expiries=[T0, T0 + timedelta(days=2)], values=[0, 2]) == [
        grants[0].pk,
        grants[2].pk,
    ]
    # An integer stand-in out of a small integer column's range would compile to no query (always nothing).
    by_priority = Statement(
        lambda customer_id, priority: Grant.objects.filter(
            customer_id=customer_id, priority=priority
        ).values_list("pk", flat=True),
        priority=int,
    )
    assert [by_priority.rows(customer_id=customer.pk, priority=p) for p in (3, 0, 9)] == [
        [grants[3].pk],
        [grants[0].pk],
        [],
    ]
    with pytest.raises(TypeError, match="not <class 'bytes'>"):
        Statement(lambda ids: Customer.objects.filter(pk__in=ids), ids=list[bytes])


def test_an_empty_list_that_matches_nothing_runs_no_query(customers, tenant_a):
    statement = Statement(
        lambda project_id, ids: Customer.objects.filter(project_id=project_id, external_id__in=ids).order_by(
            "pk"
        ),
        ids=list,
    )
    with CaptureQueriesContext(connection) as queries:
        assert statement.rows(project_id=tenant_a.project.pk, ids=[]) == []
    assert len(queries) == 0
    assert statement.rows(project_id=tenant_a.project.pk, ids=["u2"]) == [customers["alpha", "u2"]]


def test_values_it_does_not_take_or_misses_are_refused(customers, tenant_a):
    with pytest.raises(TypeError, match="exactly"):
        _IDS.rows(project_id=tenant_a.project.pk, other="x")
    with pytest.raises(TypeError, match="exactly"):
        _IDS.rows()
