"""Reads on a worker's hot path, built and compiled by the ORM once per connection, then run with new values.

Building a queryset and compiling it to SQL costs Django more CPU than the database spends running the statement:
in a Stripe burst they were 37 % of a worker's CPU, spread over some sixty reads of a dozen rows each
(docs/performance.md). A `Statement` is declared once, at module level, with the function that builds its
queryset from named values:

    _FEATURES = Statement(lambda project_id: Feature.objects.filter(project_id=project_id).order_by("key"))
    features = _FEATURES.rows(project_id=project.pk)

Its first run on a connection builds the queryset twice, with two sets of stand-in values, and compiles both. The
SQL must come out the same, and the parameters differ exactly where a value went in; anything else (a value that
changes the SQL's shape, such as a list of any length for `__in`, or one the lookup transforms, such as
`__contains`) is refused when the statement is first run, so a test of its caller catches it. Every later run
executes that SQL with the values put where the stand-ins were, prepared as the ORM prepares them, and turns the
rows into what the queryset itself yields (model instances, `values_list` tuples or flat values), through the same
converters (decrypted, JSON decoded, dates parsed on SQLite). The statement goes through the connection's cursor,
so it is logged, counted by tests and prepared by PostgreSQL like any other.

Only what the queryset builds is kept: the values are the caller's, passed by name, each a string, an integer, an
aware datetime or a list of one of those (for `__in`: compiled once for each length the statement meets; `list` is
a list of strings, `list[datetime]` one of datetimes).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar, get_args, get_origin

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, QuerySet
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesListIterable,
    get_related_populators,
)

R = TypeVar("R")

_CACHE_ATTRIBUTE = "_tollgate_statements"


_SERIALS = 10_000  # stand-in values per round: an integer one stays within a small integer column's range


def _stand_in(kind: type, name: str, round_: int, serial: int) -> Any:
    """A value no caller passes, distinct for each value (`serial`) and round, of the value's type. An integer
    one is small (10,000–29,999): a larger one would be out of a small integer column's range, which the ORM
    answers by compiling no query at all."""
    if serial >= _SERIALS:
        raise ValueError(f"{name}: a statement takes at most {_SERIALS} values")
    if kind is str:
        return f"\u2063stmt{round_}:{name}\u2063"
    if kind is int:
        return _SERIALS * round_ + serial
    if kind is datetime:
        return datetime(1901, 1, 1, tzinfo=UTC) + timedelta(days=round_, microseconds=serial + 1)
    raise TypeError(f"{name}: a statement takes str, int, datetime or list values, not {kind!r}")


def _item_kind(kind: Any) -> type | None:
    """The type of a list value's items (`list`: str), or None for a single value."""
    if kind is list:
        return str
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        return item
    return None


@dataclass(frozen=True)
class _Compiled:
    sql: str | None  # None: the queryset matches nothing (Django runs no query)
    params: tuple[Any, ...]
    # (position in params, value name, index in a list value or None, prepared as a datetime)
    slots: tuple[tuple[int, str, int | None, bool], ...]
    rows: Callable[[BaseDatabaseWrapper, list[Any]], list[Any]]


class Statement(Generic[R]):
    """One read, compiled once per connection (see the module docstring). `build` takes the values by name and
    returns the queryset; `kinds` names each value's type (str by default)."""

    def __init__(self, build: Callable[..., "QuerySet[Any, R]"], **kinds: Any) -> None:
        self._build = build
        self._names = tuple(build.__code__.co_varnames[: build.__code__.co_argcount])
        self._kinds: dict[str, Any] = {name: kinds.get(name, str) for name in self._names}
        unknown = set(kinds) - set(self._names)
        if unknown:
            raise TypeError(f"{sorted(unknown)}: not values of the statement's build function")
        for name, kind in self._kinds.items():
            _stand_in(_item_kind(kind) or kind, name, 1, 0)  # refuses a type it cannot stand in for
        self._lists = tuple(name for name in self._names if _item_kind(self._kinds[name]) is not None)

    def rows(self, **values: Any) -> list[R]:
        """What `list(build(**values))` would give."""
        if values.keys() != self._kinds.keys():
            raise TypeError(f"{sorted(values)}: a statement takes exactly {sorted(self._kinds)}")
        connection = connections[DEFAULT_DB_ALIAS]
        lengths = tuple(len(values[name]) for name in self._lists)
        compiled = self._compiled(connection, lengths)
        if compiled.sql is None:
            return []  # matches nothing whatever the values (an empty `__in` list): no query, as with the ORM
        params = list(compiled.params)
        for position, name, index, is_datetime in compiled.slots:
            value = values[name] if index is None else values[name][index]
            params[position] = connection.ops.adapt_datetimefield_value(value) if is_datetime else value
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        return compiled.rows(connection, fetched)

    def first(self, **values: Any) -> R | None:
        """The first row (the queryset should be ordered and sliced `[:1]`), or None."""
        found = self.rows(**values)
        return found[0] if found else None

    def _compiled(self, connection: BaseDatabaseWrapper, lengths: tuple[int, ...]) -> _Compiled:
        cache: dict[tuple[Statement[Any], tuple[int, ...]], _Compiled] = connection.__dict__.setdefault(
            _CACHE_ATTRIBUTE, {}
        )
        compiled = cache.get((self, lengths))
        if compiled is None:
            compiled = cache[self, lengths] = self._compile(
                connection, dict(zip(self._lists, lengths, strict=True))
            )
        return compiled

    def _stand_ins(self, round_: int, lengths: dict[str, int]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        serials = iter(range(_SERIALS + 1))
        for name in self._names:
            item = _item_kind(self._kinds[name])
            if item is not None:
                values[name] = [
                    _stand_in(item, f"{name}[{i}]", round_, next(serials)) for i in range(lengths[name])
                ]
            else:
                values[name] = _stand_in(self._kinds[name], name, round_, next(serials))
        return values

    def _compile(self, connection: BaseDatabaseWrapper, lengths: dict[str, int]) -> _Compiled:
        rounds = []
        for round_ in (1, 2):
            values = self._stand_ins(round_, lengths)
            queryset = self._build(**values)
            if queryset.db != connection.alias:
                raise ValueError(f"{queryset.model.__name__}: a statement reads the default database only")
            compiler = queryset.query.get_compiler(connection=connection)
            try:
                sql, params = compiler.as_sql()
            except EmptyResultSet:
                sql, params = None, ()
            rounds.append((values, queryset, compiler, sql, tuple(params)))
        (first, queryset, compiler, sql, params), (second, _, _, sql_again, params_again) = rounds
        if sql is None and sql_again is None:
            return _Compiled(None, (), (), lambda connection, rows: [])
        if sql != sql_again or len(params) != len(params_again):
            raise ValueError(f"{queryset.model.__name__}: the statement's SQL changes with its values")
        slots = []
        for position, (one, other) in enumerate(zip(params, params_again, strict=True)):
            if one == other:
                continue
            slot = next(
                (
                    (position, name, index, is_datetime)
                    for name in self._names
                    for index in (range(lengths[name]) if name in lengths else (None,))
                    for is_datetime in (False, True)
                    if _prepared(connection, _at(first[name], index), is_datetime) == one
                    and _prepared(connection, _at(second[name], index), is_datetime) == other
                ),
                None,
            )
            if slot is None:
                raise ValueError(
                    f"{queryset.model.__name__}: parameter {position} is a value the lookup transformed"
                )
            slots.append(slot)
        missing = {name for name in self._names if lengths.get(name, 1)} - {name for _, name, _, _ in slots}
        if missing:
            raise ValueError(f"{sorted(missing)}: values the statement's SQL does not take")
        return _Compiled(sql, params, tuple(slots), _row_maker(queryset, compiler))


def _at(value: Any, index: int | None) -> Any:
    return value if index is None else value[index]


def _prepared(connection: BaseDatabaseWrapper, value: Any, is_datetime: bool) -> Any:
    if is_datetime:
        return connection.ops.adapt_datetimefield_value(value) if isinstance(value, datetime) else object()
    return value


def _row_maker(
    queryset: QuerySet[Any, Any], compiler: Any
) -> Callable[[BaseDatabaseWrapper, list[Any]], list[Any]]:
    """How the rows of the compiled SQL become what the queryset yields, as its iterable class makes them."""
    unsupported = ("_prefetch_related_lookups", "_known_related_objects")
    if any(getattr(queryset, name) for name in unsupported) or queryset.query.extra_select:
        raise ValueError(
            f"{queryset.model.__name__}: a statement does no prefetching, extra or known objects"
        )
    columns = [column[0] for column in compiler.select[: compiler.col_count]]
    converters = compiler.get_converters(columns)
    width = compiler.col_count if compiler.has_extra_select else None

    def converted(rows: list[Any]) -> Iterator[Any]:
        trimmed: Any = rows if width is None else (row[:width] for row in rows)
        return compiler.apply_converters(trimmed, converters) if converters else iter(trimmed)

    iterable = queryset._iterable_class
    if iterable is FlatValuesListIterable:
        return lambda connection, rows: [row[0] for row in converted(rows)]
    if iterable is ValuesListIterable:
        return lambda connection, rows: [tuple(row) for row in converted(rows)]
    if iterable is not ModelIterable:
        raise ValueError(f"{queryset.model.__name__}: a statement yields instances or values_list rows")
    klass_info, annotations = compiler.klass_info, compiler.annotation_col_map
    model = klass_info["model"]
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    init_list = [column[0].target.attname for column in compiler.select[start:end]]

    def instances(connection: BaseDatabaseWrapper, rows: list[Any]) -> list[Any]:
        # select_related's instances, made as ModelIterable makes them (the stubs name a later Django's signature)
        populators = get_related_populators(klass_info, compiler.select, connection.alias)  # type: ignore[call-arg]
        made = []
        for row in converted(rows):
            instance = model.from_db(connection.alias, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, instance)
            for name, column in (annotations or {}).items():
                setattr(instance, name, row[column])
            made.append(instance)
        return made

    return instances


def statements_compiled() -> int:
    """How many statements this thread's default connection has compiled."""
    return len(connections[DEFAULT_DB_ALIAS].__dict__.get(_CACHE_ATTRIBUTE, {}))


# --- The other Django internals the product relies on, here so that the version pin covers them ------------------


def prefetched(instance: Model, relation: str) -> bool:
    """Whether `instance.<relation>.all()` answers from a prefetch (prefetch_related's, or `prefetch_set`'s)."""
    return relation in getattr(instance, "_prefetched_objects_cache", {})


def prefetch_set(instance: Model, relation: str, rows: list[Any]) -> None:
    """Gives `instance` the `rows` of its reverse relation as prefetch_related would, so that
    `instance.<relation>.all()` yields them without a query. Django has no public way to put rows read
    otherwise into the prefetch cache."""
    cache = getattr(instance, "_prefetched_objects_cache", {})
    cache.pop(relation, None)
    loaded = getattr(instance, relation).all()
    loaded._result_cache = rows
    instance._prefetched_objects_cache = {**cache, relation: loaded}  # type: ignore[attr-defined]


def prefetch_forget(instance: Model, relation: str) -> None:
    """Drops a prefetch of `instance`'s relation: the next `.all()` reads the database again."""
    getattr(instance, "_prefetched_objects_cache", {}).pop(relation, None)


def opened_by_test_case(block: Any) -> bool:
    """Whether an atomic block of `connection.atomic_blocks` is one Django's TestCase wraps around a test (they
    are marked `_from_testcase`), not one the product opened."""
    return bool(getattr(block, "_from_testcase", False))
