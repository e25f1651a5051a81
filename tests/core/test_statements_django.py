"""The Django internals `core.statements` compiles its reads with, pinned to the Django it was written for: an
upgrade fails here first, by name, and every item below is checked against the new version before the pin moves.
No other product module uses them (each app's compiled reads are querysets in its `statements.py`)."""

import inspect
import re

import django
import pytest
from django.db import connection, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import Count, Model
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    RelatedPopulator,
    ValuesListIterable,
    get_related_populators,
)
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.query import Query

from core.db import in_transaction
from core.statements import opened_by_test_case, prefetch_forget, prefetch_set, prefetched
from customers.models import Customer
from tests.billing.payment_factories import CustomerFactory
from tests.entitlements.grant_factories import GrantFactory
from tests.test_floor_plan import APPS, ROOT

PINNED = (5, 2)

# What core/statements.py reaches that Django does not document, by name (for the scan below).
PRIVATE_NAMES = (
    "_iterable_class",
    "_prefetch_related_lookups",
    "_known_related_objects",
    "extra_select",
    "get_compiler",
    "col_count",
    "has_extra_select",
    "get_converters",
    "apply_converters",
    "klass_info",
    "annotation_col_map",
    "get_related_populators",
    "ModelIterable",
    "ValuesListIterable",
    "FlatValuesListIterable",
    "_prefetched_objects_cache",
    "_result_cache",
    "_from_testcase",
)


def test_django_is_the_version_core_statements_was_written_for():
    assert django.VERSION[:2] == PINNED, (
        f"Django {django.get_version()}: core/statements.py compiles its reads on Django {PINNED}'s internals "
        "(tests/core/test_statements_django.py lists them). Check each against this version, then move the pin."
    )


@pytest.mark.parametrize(
    ("function", "parameters"),
    [
        (get_related_populators, ["klass_info", "select", "db"]),
        (RelatedPopulator.populate, ["self", "row", "from_obj"]),
        (Query.get_compiler, ["self", "using", "connection", "elide_empty"]),
        (SQLCompiler.as_sql, ["self", "with_limits", "with_col_aliases"]),
        (SQLCompiler.get_converters, ["self", "expressions"]),
        (SQLCompiler.apply_converters, ["self", "rows", "converters"]),
        (BaseDatabaseOperations.adapt_datetimefield_value, ["self", "value"]),
        (Model.from_db, ["db", "field_names", "values"]),
    ],
    ids=lambda value: getattr(value, "__qualname__", None),
)
def test_the_internal_functions_it_calls_take_what_it_passes(function, parameters):
    assert list(inspect.signature(function).parameters) == parameters


@pytest.mark.django_db
def test_the_queryset_and_compiler_state_it_reads_is_there():
    assert Customer.objects.all()._iterable_class is ModelIterable
    assert Customer.objects.values_list("pk")._iterable_class is ValuesListIterable
    assert Customer.objects.values_list("pk", flat=True)._iterable_class is FlatValuesListIterable
    queryset = (
        Customer.objects.select_related("project")
        .annotate(grant_count=Count("grants"))
        .filter(external_id="u")
    )
    assert queryset._prefetch_related_lookups == ()
    assert queryset._known_related_objects == {}
    assert queryset.query.extra_select == {}
    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    assert isinstance(sql, str)
    assert list(params) == ["u"]
    assert compiler.has_extra_select is False
    assert isinstance(compiler.col_count, int)
    assert compiler.col_count == len(compiler.select)
    klass_info = compiler.klass_info
    assert klass_info["model"] is Customer
    fields = klass_info["select_fields"]
    assert [compiler.select[i][0].target.attname for i in fields] == [
        field.attname for field in Customer._meta.concrete_fields
    ]
    assert set(compiler.annotation_col_map) == {"grant_count"}
    assert isinstance(compiler.get_converters([column[0] for column in compiler.select]), dict)
    (populator,) = get_related_populators(klass_info, compiler.select, connection.alias)
    assert callable(populator.populate)


@pytest.mark.django_db
def test_a_prefetch_set_by_hand_is_read_as_prefetch_related_leaves_it(django_assert_num_queries):
    customer = CustomerFactory()
    grants = [GrantFactory(project=customer.project, customer=customer) for _ in range(2)]
    fresh = Customer.objects.get(pk=customer.pk)
    assert prefetched(fresh, "grants") is False
    prefetch_set(fresh, "grants", grants[:1])
    assert prefetched(fresh, "grants") is True
    with django_assert_num_queries(0):
        assert list(fresh.grants.all()) == grants[:1]
    prefetch_forget(fresh, "grants")
    assert prefetched(fresh, "grants") is False
    with django_assert_num_queries(1):
        assert sorted(g.pk for g in fresh.grants.all()) == sorted(g.pk for g in grants)
    loaded = Customer.objects.prefetch_related("grants").get(pk=customer.pk)
    assert prefetched(loaded, "grants") is True


@pytest.mark.django_db
def test_the_test_case_blocks_are_marked_as_such():
    assert [opened_by_test_case(block) for block in connection.atomic_blocks] == [True] * len(
        connection.atomic_blocks
    )
    with transaction.atomic():
        assert opened_by_test_case(connection.atomic_blocks[-1]) is False
        assert in_transaction() is True
    assert in_transaction() is False


def test_no_other_product_module_uses_them():
    pattern = re.compile(r"\b(" + "|".join(PRIVATE_NAMES) + r")\b")
    found = {
        str(path.relative_to(ROOT)): sorted(set(pattern.findall(path.read_text())))
        for app in (*APPS, "config")
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and path != ROOT / "core" / "statements.py"
    }
    assert {path: names for path, names in found.items() if names} == {}
