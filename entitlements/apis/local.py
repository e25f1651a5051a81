"""What a client needs to answer checks from its own memory (`tollgate_client.local`): a customer's signed
snapshot (`GET /entitlements/snapshot`) and the change feed that tells it which snapshots to drop
(`GET /entitlements/changes`).

The snapshot is signed with HMAC-SHA256 over the exact bytes of the body, in the `Tollgate-Snapshot-Signature` header
(`v1=<hex>`), under a key derived from the API key that asked for it: HMAC-SHA256(api key, SNAPSHOT_KEY_LABEL).
Only the holder of that project key can make or check it, nothing new is stored on the server, and a snapshot
checked by a process that holds another key (a rolled one) simply fails its check and is fetched again.
"""

import hashlib
import hmac
import json
import time
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.models import Feature
from core.base_api import BaseApi
from core.errors import ApiError
from core.throttling import ApiKeyRateThrottle
from costs.pricing import models_stored
from costs.selectors import cost_table_rows
from entitlements import cache, changes
from entitlements.apis.check import snapshot_read_keys
from entitlements.apis.params import CUSTOMER, CUSTOMER_PARAMETER, QuantityParam
from entitlements.entities import (
    entities_credits,
    entities_used,
    entities_windows_now,
    entity_credits_end,
    entity_windows_end,
)
from entitlements.snapshot import FeatureEntry, StructureSnapshot, UsageSnapshot
from entitlements.windows import window_bounds, windows_answer
from projects.authentication import request_project
from projects.models import Project
from projects.versions import project_version_key

SNAPSHOT_KEY_LABEL = b"tollgate-entitlement-snapshot-v1"
SIGNATURE_HEADER = "Tollgate-Snapshot-Signature"
MAX_WAIT_SECONDS = 10

SINCE = QuantityParam(
    "since", "The feed position the client holds (`version` of its last answer).", default=0
)
FEED = QuantityParam(
    "feed", "The feed id the client holds (`feed` of its last answer).", default=0, maximum=2**63
)
WAIT = QuantityParam(
    "wait",
    f"Seconds to hold the request open until something changes (0–{MAX_WAIT_SECONDS}, default 0: answer at once). "
    "Each waiting request holds a server worker: long-poll only against threaded or async workers.",
    default=0,
    maximum=MAX_WAIT_SECONDS,
)


def snapshot_signature(secret: str, body: bytes) -> str:
    key = hmac.new(secret.encode(), SNAPSHOT_KEY_LABEL, hashlib.sha256).digest()
    return "v1=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _request_secret(request: Request) -> str:
    """The API key the request was authenticated with (the authentication class accepted this header)."""
    return str(request.META.get("HTTP_AUTHORIZATION", "")).partition(" ")[2].strip()


def _feature(
    key: str, entry: FeatureEntry, usage: UsageSnapshot, now: float, customer_id: str | None
) -> dict[str, Any]:
    kind = entry["type"]
    used: int | None = None
    held: int | None = None
    if kind in (Feature.Type.METERED, Feature.Type.ALLOCATION, Feature.Type.CREDITS):
        held = usage["held"].get(key, 0)
    if kind == Feature.Type.METERED:
        used = usage["used"].get(key, 0) - (held or 0)
    elif kind == Feature.Type.ALLOCATION:
        used = usage["in_use"].get(key, 0) - (held or 0)
    return {
        "type": kind,
        "enabled": entry["enabled"],
        "revoked": entry["revoked"],
        "value": entry["value"],
        "limit": entry["limit"],
        "used": used,
        "balance": usage["balance"].get(key, 0) if kind == Feature.Type.CREDITS else None,
        "held": held,
        "overage": bool(entry.get("overage", False)),
        "period_end": entry.get("period_end"),
        "windows": _windows(key, entry, usage, now),
        "cap": entry.get("cap"),
        "account_cap": _account_cap(entry),
        "credits": entry.get("credits"),
        "covered": usage.get("covered", {}).get(key, 0) if kind == Feature.Type.METERED else None,
        "per_entity": _per_entity(entry, customer_id, now),
        "entity_credits": entities_credits(customer_id=customer_id, entry=entry, now=now)
        if kind == Feature.Type.CREDITS
        else None,
    }


def _per_entity(entry: FeatureEntry, customer_id: str | None, now: float) -> dict[str, Any] | None:
    """A metered feature's limit per entity with each live entity's use this period and, where the entities have
    windows of their own, each one's windows at `now` (from the database, as of no earlier than the snapshot's
    feed position: a use after it is named by the feed), or None."""
    per_entity = entry.get("per_entity")
    if per_entity is None or entry["revoked"]:
        return None
    used = dict(entities_used(customer_id=customer_id, entry=entry)) if customer_id is not None else {}
    windows = (
        entities_windows_now(customer_id=customer_id, entry=entry, entity_ids=list(used), now=now)
        if customer_id is not None
        else {}
    )
    return {"feature": per_entity["feature"], "limit": per_entity["limit"], "used": used, "windows": windows}


def _account_cap(entry: FeatureEntry) -> dict[str, Any] | None:
    """The customer's account cap as a snapshot carries it: without its id (the API's `spend_caps` has it) and a
    plan's cap's `anchor` (where the server remembers it was reached)."""
    cap = entry.get("account_cap")
    return (
        None if cap is None else {name: value for name, value in cap.items() if name not in ("id", "anchor")}
    )


def _windows(key: str, entry: FeatureEntry, usage: UsageSnapshot, now: float) -> list[dict[str, Any]]:
    """A metered feature's usage windows at `now`, as the check answers them but with `resets_at` in Unix
    seconds (the snapshot's times are)."""
    if "windows" not in entry:
        return []
    answers, _, _ = windows_answer(entry["windows"], usage.get("windows", {}).get(key, {}), 0, now)
    for answer in answers:
        answer["resets_at"] = window_bounds(answer["window"], now)[1]
    return answers


def _pricing(
    project: Project, structure: StructureSnapshot, now: float
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """What a client needs to make units of a use's dimensions as the server does: each metered feature's usage
    formula, by key (from the cached structure: no query), and, when one of them follows the cost, the project's
    cost table versions still to apply at `now` (the one in force and the later ones; an older one never prices a
    use again)."""
    formulas = {
        key: entry["usage_formula"]
        for key, entry in structure["features"].items()
        if "usage_formula" in entry
    }
    if not any(formula["type"] == "cost" for _, formula in formulas.items()):
        return formulas, None
    rows = cost_table_rows(project_id=project.pk)
    start = max(bisect_right(rows, now, key=lambda row: row.starts_at.timestamp()) - 1, 0)
    tables = [
        {
            "version": row.version,
            "currency": row.currency,
            "starts_at": row.starts_at.timestamp(),
            "models": models_stored(row.models),
        }
        for row in rows[start:]
    ]
    return formulas, tables


class SnapshotWindow(serializers.Serializer[Any]):
    window = serializers.ChoiceField(choices=["minute", "hour", "day", "week"])
    limit = serializers.IntegerField()
    used = serializers.IntegerField(help_text="Used in the current window (held units not included).")
    held = serializers.IntegerField()
    remaining = serializers.IntegerField()
    resets_at = serializers.FloatField(
        help_text="Unix time the window ends (the snapshot is valid until no later than its first window's end)."
    )


class SnapshotFeature(serializers.Serializer[Any]):
    type = serializers.CharField(help_text="boolean, metered, credits, allocation or static.")
    enabled = serializers.BooleanField()
    revoked = serializers.BooleanField(help_text="A revocation ends the feature whatever the balance.")
    value = serializers.JSONField(allow_null=True)
    limit = serializers.IntegerField(allow_null=True, help_text="null: unlimited (or not a counted feature).")
    used = serializers.IntegerField(
        allow_null=True, help_text="metered: this period; allocation: units in use."
    )
    balance = serializers.IntegerField(allow_null=True, help_text="credits: the spendable balance.")
    held = serializers.IntegerField(
        allow_null=True,
        help_text="Units set aside by active holds: they count against the limit (credits: out of the balance).",
    )
    overage = serializers.BooleanField(
        help_text="metered: use may go past `limit` (checks allow it and `remaining` goes below 0)."
    )
    period_end = serializers.FloatField(
        allow_null=True, help_text="metered: Unix time the period ends (when its limit frees up)."
    )
    windows = SnapshotWindow(many=True, help_text="metered: each usage window now; [] when none.")
    cap = serializers.JSONField(
        allow_null=True,
        help_text=(
            "metered with overage: the spend cap — `at_cap`, `set_by`, `units` or `amount` and `currency`, "
            "`limit` (the units allowed in all; null: no bound) and `price` (the metered price's `billing_scheme`, "
            "`unit_amount`, `tiers_mode`, `tiers`: the cap's money is what they bill), or null."
        ),
    )
    account_cap = serializers.JSONField(
        allow_null=True,
        help_text=(
            "metered, of a customer with an account cap: `at_cap`, `set_by`, `amount`, `currency` and `prices` "
            "(by feature key, the terms of each metered price in that currency it sums: what they bill together "
            "for the period's use, each feature's `used` + `held` − `covered`, is judged against `amount`); null "
            "without one."
        ),
    )
    credits = serializers.JSONField(
        allow_null=True,
        help_text=(
            "metered with a credits waterfall: `{feature, cost}`, the credits feature (in this snapshot) whose "
            "balance pays for use past the limit, `cost` credits a unit, before any overage; or null."
        ),
    )
    covered = serializers.IntegerField(
        allow_null=True,
        help_text="metered: the units of this period's use (held ones included) that credits paid; not counted "
        "against the limit or the cap.",
    )
    entity_credits = serializers.JSONField(
        allow_null=True,
        help_text=(
            "credits whose plan lets each entity hold credits of its own: `{feature, on_remove, balances}` — the "
            "allocation feature whose entities hold them, what their removal does with them (`return` to the "
            "account or `forfeit`), and each live entity's own balance by its id. A use naming an entity may "
            "spend `balance + balances[entity]` (its own first); an entity not in `balances` is unknown. null "
            "without."
        ),
    )
    usage_formula = serializers.JSONField(
        required=False,
        help_text=(
            "Only on a metered feature with a usage formula (the feature's, as `GET /features` answers it): how a "
            "use's `model` and `dimensions` make its units, rounded up once — a `cost` formula from the exact cost "
            "by `cost_tables`."
        ),
    )
    per_entity = serializers.JSONField(
        allow_null=True,
        help_text=(
            "metered with a limit per entity: `{feature, limit, used, windows}` — the allocation feature whose "
            "entities each may use `limit` a period, `used`, each live entity's use this period by its id (held "
            "units included), and `windows`, each live entity's own usage windows by its id (as `windows` is the "
            "account's; {} when the entities have none). A use naming an entity fits when it fits the account, "
            "`used[entity] + quantity <= limit` and every window of its own has `used + held + quantity <= "
            "limit`; an entity not in `used` is unknown. null without one."
        ),
    )


class SnapshotRate(serializers.Serializer[Any]):
    micros = serializers.IntegerField(
        help_text="Micro-units of the currency per `per` units of the dimension."
    )
    per = serializers.IntegerField()


class SnapshotCostTable(serializers.Serializer[Any]):
    version = serializers.IntegerField()
    currency = serializers.CharField()
    starts_at = serializers.FloatField(help_text="Unix time the version applies from (until the next one's).")
    models = serializers.DictField(
        child=serializers.DictField(child=SnapshotRate()),
        help_text="By model, each dimension's rate: what a use costs is Σ quantity × micros / per, exactly.",
    )


class SnapshotOutput(serializers.Serializer[Any]):
    object = serializers.CharField(help_text="entitlement_snapshot")
    customer = serializers.CharField()
    feed = serializers.IntegerField(
        help_text="The change feed this snapshot is placed in (0: none, the cache was unreachable)."
    )
    version = serializers.IntegerField(
        help_text="The feed position it includes: a change past it may have made it wrong."
    )
    answers = serializers.CharField(
        help_text="The project's answers version it was computed under; a feed answer with another drops it."
    )
    issued_at = serializers.FloatField(help_text="Unix time, seconds.")
    clock = serializers.FloatField(
        help_text=(
            "The customer's time when issued (Unix seconds): a test clock's frozen time for a customer on one, "
            "else `issued_at`. Usage windows and periods end on it: count `retry_after` from it."
        )
    )
    valid_until = serializers.FloatField(help_text="Unix time after which it must not be used.")
    ttl = serializers.FloatField(help_text="valid_until − issued_at: count it from the request's start.")
    features = serializers.DictField(child=SnapshotFeature())
    cost_tables = SnapshotCostTable(
        many=True,
        required=False,
        help_text=(
            "Only when a feature's `usage_formula` follows the cost: the project's cost table versions in force "
            "at `issued_at` and after, by `starts_at`; a use is priced by the latest that has started (by the "
            "server's clock, not a test clock's)."
        ),
    )


class ChangesOutput(serializers.Serializer[Any]):
    object = serializers.CharField(help_text="entitlement_changes")
    feed = serializers.IntegerField()
    version = serializers.IntegerField(help_text="Ask again with `since` set to this.")
    answers = serializers.CharField(help_text="The project's answers version now.")
    resync = serializers.BooleanField(
        help_text="Drop every snapshot: the changes in between cannot be listed."
    )
    customers = serializers.ListField(
        child=serializers.CharField(), help_text="Whose entitlements changed after `since`, in order."
    )


class EntitlementSnapshotApi(BaseApi):
    @extend_schema(
        operation_id="entitlements_snapshot",
        summary="A customer's signed entitlement snapshot",
        description=(
            "Everything `customer` may use now, for a client to answer checks from memory until `valid_until` "
            "or until the change feed names the customer. Signed: the `Tollgate-Snapshot-Signature` header is "
            "`v1=` + hex HMAC-SHA256 of the body under HMAC-SHA256(your API key, "
            "`tollgate-entitlement-snapshot-v1`). Records nothing."
        ),
        parameters=[CUSTOMER_PARAMETER],
        responses={
            200: OpenApiResponse(SnapshotOutput, description="Signed in `Tollgate-Snapshot-Signature`.")
        },
    )
    def get(self, request: Request) -> HttpResponse:
        project = request_project(request)
        external_id = CUSTOMER.parse(request.query_params)
        # The feed position is read no later than the snapshot (`read_ahead_keys`): a change committed after the
        # read lands past `version`.
        try:
            position = changes.feed_position(project_id=project.pk, read_ahead=self.read_ahead)
        except Exception:  # the cache is down: the snapshot is answered from the database, in no feed
            position = changes.Position(feed=0, version=0)
        snapshot = cache.snapshot_get(project=project, external_id=external_id, read_ahead=self.read_ahead)
        now = time.time()
        clock = snapshot.structure.get("clock_time", now)
        # An entity's windows and its credit lots end on the customer's clock; valid_until is on this machine's.
        ends = [entity_windows_end(snapshot.structure, clock), entity_credits_end(snapshot.structure, clock)]
        valid_until = min(
            snapshot.structure["valid_until"],
            snapshot.usage["valid_until"] or snapshot.structure["valid_until"],
            now + settings.ENTITLEMENT_SNAPSHOT_SECONDS,
            *(end - clock + now for end in ends if end is not None),
        )
        features = {
            key: _feature(key, entry, snapshot.usage, clock, snapshot.structure["customer_id"])
            for key, entry in snapshot.structure["features"].items()
        }
        formulas, tables = _pricing(project, snapshot.structure, now)
        for key, formula in formulas.items():
            if key in features:
                features[key]["usage_formula"] = formula
        body = json.dumps(
            {
                "object": "entitlement_snapshot",
                "customer": external_id,
                "feed": position.feed,
                "version": position.version,
                "answers": cache.snapshot_answers_version(snapshot.structure),
                "issued_at": round(now, 3),
                "clock": round(clock, 3),
                "valid_until": round(valid_until, 3),
                "ttl": round(max(valid_until - now, 0.0), 3),
                "features": features,
                **({} if tables is None else {"cost_tables": tables}),
            },
            separators=(",", ":"),
        ).encode()
        response = HttpResponse(body, content_type="application/json")
        response[SIGNATURE_HEADER] = snapshot_signature(_request_secret(request), body)
        return response

    def read_ahead_keys(self, request: Request) -> Sequence[str]:
        """The feed's position and the snapshot's keys in one MGET: Redis answers both as of one instant, and the
        version bump and the feed append of a change land together (one script), so a snapshot read with a
        position from before a change is either recomputed (its version moved) or older than the change's
        position, which clients then drop it for."""
        keys = snapshot_read_keys(request, request.query_params.get("customer"), with_usage=True)
        project = getattr(request.auth, "project", None)
        if not keys or project is None:
            return ()
        return [*changes.feed_keys(project.pk), *keys]


class ChangesRateThrottle(ApiKeyRateThrottle):
    """The feed is polled by every client process: it has its own budget per key,
    ENTITLEMENT_CHANGES_RATE_PER_MINUTE, so polling never eats the API's."""

    def allow_request(self, request: Request, view: Any) -> bool:
        limit = settings.ENTITLEMENT_CHANGES_RATE_PER_MINUTE
        principal: Any = request.auth
        if not limit or principal is None:
            return True
        return self._count(f"changes:{principal.key_id}", limit, request, view)


class EntitlementChangesApi(BaseApi):
    throttle_classes = [ChangesRateThrottle]

    @extend_schema(
        operation_id="entitlements_changes",
        summary="Which customers' entitlements changed",
        description=(
            "The change feed of the project: the customers whose entitlements changed after position `since` "
            "of feed `feed` (a grant, a revocation, a subscription or purchase starting, changing or ending, a "
            "refund or a lost dispute). Start without `since`, then ask again with the `feed` and `version` of "
            "each answer. `resync: true` (another feed, too many or too old changes) or another `answers` "
            "(a catalog or project change) means: drop every snapshot. 503 when the feed cannot be read. "
            "Polling counts against ENTITLEMENT_CHANGES_RATE_PER_MINUTE, not the API's rate limit."
        ),
        parameters=[SINCE.openapi(), FEED.openapi(), WAIT.openapi()],
        responses=ChangesOutput,
    )
    def get(self, request: Request) -> Response:
        project = request_project(request)
        params = request.query_params
        started = "since" in params or "feed" in params  # one without the other names no feed: `resync`
        since, feed, wait = SINCE.parse(params), FEED.parse(params), WAIT.parse(params)
        try:
            position = changes.feed_position(project_id=project.pk, read_ahead=self.read_ahead)
            answers = cache.answers_version(project_id=project.pk, read_ahead=self.read_ahead)
            if wait and started and position == changes.Position(feed, since):
                position = changes.position_wait(
                    project_id=project.pk,
                    start=position,
                    seconds=wait,
                    moved=lambda: cache.answers_version(project_id=project.pk) != answers,
                )
                answers = cache.answers_version(project_id=project.pk)
            found = (
                changes.changes_since(project_id=project.pk, since=since, feed=feed, position=position)
                if started
                else changes.Changes(position, resync=False, customers=[])
            )
        except Exception as exc:
            raise ApiError(
                "The change feed cannot be read now; retry.", code="feed_unavailable", status_code=503
            ) from exc
        return Response(
            {
                "object": "entitlement_changes",
                "feed": found.position.feed,
                "version": found.position.version,
                "answers": answers,
                "resync": found.resync or not answers,
                "customers": found.customers,
            }
        )

    def read_ahead_keys(self, request: Request) -> Sequence[str]:
        project = getattr(request.auth, "project", None)
        if project is None:
            return ()
        return [*changes.feed_keys(project.pk), project_version_key(project.pk)]
