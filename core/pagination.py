"""Cursor pagination in API.md's list shape: `?limit=` (1–100, default 20), `?starting_after=<id>`, newest first.

The cursor is an object id, resolved inside the caller's (project-scoped) queryset, so a cursor naming another
project's object is simply unknown. The page after it is `(created_at, id) < (the cursor's)`: on PostgreSQL one
row comparison, which an index on `(project, created_at, id)` takes as its scan's bound (the lists that grow
large — customers, payments, invoices, subscriptions, events — have one), so a page deep in a list reads as few
rows as the first page. Spelled `created_at < … OR (created_at = … AND id < …)`, it made PostgreSQL walk the index
from the newest row and filter out every row newer than the cursor.

The cursor's `created_at` is read inside the page's own query, `(created_at, id) < ((SELECT created_at … WHERE id
= cursor), cursor)`: PostgreSQL runs that subquery once, before the scan (an InitPlan), and bounds the scan with
its value, so a page after a cursor costs one query, as the first page does. An unknown cursor makes the bound
NULL and the page empty; only then does a second query tell an unknown cursor from the end of the list.

A stream (`stream_page`) goes the other way, oldest first, and its cursor is opaque: the position of the last row
served, `(created_at, id)`, so a page after it is `(created_at, id) > (the cursor's)` with no lookup, the same row
comparison bounding the same index scan. What a stream may serve (rows old enough that none can still commit
before them) is its caller's rule.
"""

import base64
import binascii
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db.models import BooleanField, F, Func, Model, QuerySet, Subquery, Value
from django.db.models.fields.tuple_lookups import Tuple
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request

from core.errors import InvalidRequest

M = TypeVar("M", bound=Model)

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def page_params(request: Request) -> tuple[int, str | None]:
    raw_limit = request.query_params.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit not in (None, ""):
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest(
                f"limit must be an integer from 1 to {MAX_LIMIT}.", code="invalid_limit", param="limit"
            )
    return limit, request.query_params.get("starting_after") or None


def paginate_queryset(queryset: QuerySet[M], request: Request) -> tuple[list[M], bool]:
    """One page of `queryset` (which must have `created_at`), newest first, and whether more follow."""
    limit, starting_after = page_params(request)
    queryset = queryset.order_by("-created_at", "-pk")
    if starting_after:
        cursor_created_at = Subquery(queryset.filter(pk=starting_after).values("created_at")[:1])
        rows = list(queryset.filter(_before(cursor_created_at, starting_after))[: limit + 1])
        if not rows and not queryset.filter(pk=starting_after).exists():
            raise InvalidRequest(
                f"No object {starting_after!r} to start after.", code="invalid_cursor", param="starting_after"
            )
    else:
        rows = list(queryset[: limit + 1])
    return rows[:limit], len(rows) > limit


def _before(created_at: Subquery, pk: str) -> Func:
    """`(created_at, id) < (created_at, pk)`: one row comparison, the form an index scan takes as its bound."""
    return _compare(created_at, pk, "<")


def _compare(created_at: Subquery | datetime, pk: str, operator: str) -> Func:
    return Func(
        Tuple(F("created_at"), F("pk")),
        Tuple(created_at if isinstance(created_at, Subquery) else Value(created_at), Value(pk)),
        template="%(expressions)s",
        arg_joiner=f" {operator} ",
        output_field=BooleanField(),
    )


StreamPosition = tuple[datetime, str]  # (created_at, id) of the last row a stream served


def stream_cursor(position: StreamPosition) -> str:
    """The opaque cursor of a stream's position: URL-safe, and nothing a caller should read."""
    created_at, pk = position
    raw = f"{created_at.astimezone(UTC).isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def stream_position(cursor: str, *, param: str) -> StreamPosition:
    """The position a cursor of `stream_cursor` names; 400 `invalid_cursor` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, pk = raw.split("|", 1)
        created_at = datetime.fromisoformat(moment)
        if created_at.tzinfo is None or not pk:
            raise ValueError(raw)
        return created_at.astimezone(UTC), pk
    except (ValueError, OverflowError, binascii.Error) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidRequest(
            "Not a cursor of this list: pass the `next` of its previous page.",
            code="invalid_cursor",
            param=param,
        ) from exc


def stream_page(queryset: QuerySet[M], *, after: StreamPosition | None, limit: int) -> tuple[list[M], bool]:
    """One page of `queryset` (which must have `created_at`) oldest first, ties broken by id, after `after`
    (from the start without one), and whether more follow."""
    queryset = queryset.order_by("created_at", "pk")
    if after is not None:
        queryset = queryset.filter(_compare(after[0], after[1], ">"))
    rows = list(queryset[: limit + 1])
    return rows[:limit], len(rows) > limit


def list_body(data: Any, has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more}


def list_serializer(item: type[serializers.Serializer[Any]], name: str) -> serializers.Serializer[Any]:
    """An OpenAPI description of the list envelope around `item`."""
    return inline_serializer(
        name=name,
        fields={
            "object": serializers.CharField(default="list"),
            "data": item(many=True),
            "has_more": serializers.BooleanField(),
        },
    )


PAGINATION_PARAMETERS = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        description=f"1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}.",
    ),
    OpenApiParameter(
        "starting_after", OpenApiTypes.STR, description="The id of the last object of the previous page."
    ),
]
