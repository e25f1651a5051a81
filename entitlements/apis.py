"""Usage, entitlements and credits API (API.md "Usage, entitlements, credits").

`GET /entitlements/check` is the hot path of every tenant request: it parses its three query parameters by hand
and renders a plain dict, and the rate limiter reads the customer's snapshot in its own round trip
(`read_ahead_keys`), so that a warm answer costs no SQL and one Redis round trip in all. Consume and release
read ahead the same way.
The other views follow the house pattern (nested Input serializers, services for writes).
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from billing.models import Customer
from core.actors import actor_from_request
from core.apis import BaseApi
from core.errors import InvalidRequest
from core.serializers import StrictSerializer
from entitlements import cache, selectors, services
from entitlements.models import CreditLot, Feature, Grant, Revocation, UsageEvent
from entitlements.resolver import iso
from projects import selectors as project_selectors
from projects.authentication import request_project
from projects.permissions import IsPlatformKey

MAX_ID_LENGTH = 255
MAX_BATCH = 1000
MAX_QUANTITY = 10**12

# --- query parameters ---------------------------------------------------------------------------------------


def _required(params: Any, name: str) -> str:
    value = params.get(name)
    if not value:
        raise InvalidRequest(f"{name}: this parameter is required.", code="parameter_missing", param=name)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidRequest(
            f"{name}: at most {MAX_ID_LENGTH} characters.", code="invalid_parameter", param=name
        )
    return str(value)


def _quantity_param(params: Any) -> int:
    raw = params.get("quantity")
    if raw in (None, ""):
        return 1
    try:
        quantity = int(raw)
    except ValueError:
        quantity = -1
    if not 0 <= quantity <= MAX_QUANTITY:
        raise InvalidRequest("quantity: an integer ≥ 0.", code="invalid_parameter", param="quantity")
    return quantity


CUSTOMER_PARAMETER = OpenApiParameter(
    "customer", OpenApiTypes.STR, required=True, description="The tenant's own user id (`external_id`)."
)
FEATURE_PARAMETER = OpenApiParameter(
    "feature", OpenApiTypes.STR, required=True, description="The feature key."
)


# --- output shapes (documentation; the views render plain dicts) ---------------------------------------------


class CheckOutput(serializers.Serializer):
    allowed = serializers.BooleanField()
    feature = serializers.CharField()
    type = serializers.CharField(help_text="boolean, metered, credits, allocation or static.")
    enabled = serializers.BooleanField()
    value = serializers.JSONField(allow_null=True)
    limit = serializers.IntegerField(allow_null=True, help_text="null: unlimited (or not a counted feature).")
    used = serializers.IntegerField(allow_null=True)
    remaining = serializers.IntegerField(allow_null=True)
    balance = serializers.IntegerField(allow_null=True, help_text="credits features: the spendable balance.")


class ConsumeOutput(CheckOutput):
    duplicate = serializers.BooleanField(required=False, help_text="true when this id was recorded before.")


class EntitlementOutput(serializers.Serializer):
    feature = serializers.CharField()
    type = serializers.CharField(help_text="boolean, metered, credits, allocation or static.")
    enabled = serializers.BooleanField()
    value = serializers.JSONField(allow_null=True)
    limit = serializers.IntegerField(allow_null=True)
    used = serializers.IntegerField(allow_null=True)
    remaining = serializers.IntegerField(allow_null=True)
    balance = serializers.IntegerField(allow_null=True)
    resets_at = serializers.DateTimeField(
        allow_null=True, help_text="metered: the end of the current period."
    )
    sources = serializers.ListField(child=serializers.DictField(), help_text="Where each part came from.")


class EntitlementsOutput(serializers.Serializer):
    customer = serializers.CharField()
    entitlements = EntitlementOutput(many=True)


# --- entitlements -------------------------------------------------------------------------------------------


class EntitlementCheckApi(BaseApi):
    @extend_schema(
        operation_id="entitlements_check",
        parameters=[
            CUSTOMER_PARAMETER,
            FEATURE_PARAMETER,
            OpenApiParameter("quantity", OpenApiTypes.INT, description="Units wanted (default 1)."),
        ],
        responses=CheckOutput,
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        answer = selectors.entitlement_check(
            project=request_project(request),
            external_id=_required(params, "customer"),
            feature_key=_required(params, "feature"),
            quantity=_quantity_param(params),
            read_ahead=self.read_ahead,
        )
        return Response(answer)

    def read_ahead_keys(self, request: Request) -> Sequence[str]:
        return _snapshot_keys(request, request.query_params.get("customer"), with_usage=True)


class EntitlementListApi(BaseApi):
    @extend_schema(
        operation_id="entitlements_list", parameters=[CUSTOMER_PARAMETER], responses=EntitlementsOutput
    )
    def get(self, request: Request) -> Response:
        customer = _required(request.query_params, "customer")
        return Response(selectors.entitlements_list(project=request_project(request), external_id=customer))


_CONSUME_FIELDS = frozenset({"id", "customer", "feature", "quantity"})


def _snapshot_keys(request: Request, customer: Any, *, with_usage: bool) -> Sequence[str]:
    """The cache keys of the customer's snapshot, for the rate limiter to read in its round trip (nothing when
    the customer is missing or invalid: the view then answers 400 as usual)."""
    if not isinstance(customer, str) or not customer or len(customer) > MAX_ID_LENGTH:
        return ()
    project = getattr(request.auth, "project", None)
    if project is None:
        return ()
    return cache.snapshot_keys(project_id=project.pk, external_id=customer, with_usage=with_usage)


class _ConsumeBaseApi(BaseApi):
    """Consume and release: the rate limiter reads the customer's structure ahead, from the body's `customer`."""

    def read_ahead_keys(self, request: Request) -> Sequence[str]:
        try:
            data = self.body(request)
        except APIException:  # raised again when the view asks for the body
            return ()
        customer = data.get("customer") if isinstance(data, dict) else None
        return _snapshot_keys(request, customer, with_usage=False)


def consume_parse(raw: Any, *, fields: frozenset[str]) -> dict[str, Any]:
    """Validates a consume or release body by hand (what its InputSerializer documents, without DRF's field
    machinery on the hot path)."""
    if not isinstance(raw, dict):
        raise InvalidRequest("The body must be a JSON object.", code="invalid_parameter")
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise InvalidRequest(f"{unknown[0]}: Unknown parameter.", code="unknown_parameter", param=unknown[0])
    data: dict[str, Any] = {}
    for name, longest in (("id", MAX_ID_LENGTH), ("customer", MAX_ID_LENGTH), ("feature", 100)):
        value = raw.get(name)
        if value is None or value == "":
            raise InvalidRequest(f"{name}: This field is required.", code="parameter_missing", param=name)
        if not isinstance(value, str) or len(value) > longest:
            raise InvalidRequest(
                f"{name}: a string of at most {longest} characters.", code="invalid_parameter", param=name
            )
        data[name] = value
    quantity = raw.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidRequest("quantity: an integer ≥ 1.", code="invalid_parameter", param="quantity")
    data["quantity"] = quantity
    reason = raw.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise InvalidRequest("reason: at most 500 characters.", code="invalid_parameter", param="reason")
    data["reason"] = reason
    return data


class EntitlementConsumeApi(_ConsumeBaseApi):
    class InputSerializer(StrictSerializer):
        id = serializers.CharField(max_length=MAX_ID_LENGTH, help_text="Your idempotency id for this use.")
        customer = serializers.CharField(max_length=MAX_ID_LENGTH)
        feature = serializers.CharField(max_length=100)
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)

    @extend_schema(operation_id="entitlements_consume", request=InputSerializer, responses=ConsumeOutput)
    def post(self, request: Request) -> Response:
        data = consume_parse(self.body(request), fields=_CONSUME_FIELDS)  # by hand: this is a hot path
        answer = services.entitlement_consume(
            project=request_project(request),
            event_id=data["id"],
            external_id=data["customer"],
            feature_key=data["feature"],
            quantity=data["quantity"],
            read_ahead=self.read_ahead,
        )
        return Response(answer)


class EntitlementReleaseApi(_ConsumeBaseApi):
    class InputSerializer(StrictSerializer):
        id = serializers.CharField(
            max_length=MAX_ID_LENGTH, help_text="Your idempotency id for this release."
        )
        customer = serializers.CharField(max_length=MAX_ID_LENGTH)
        feature = serializers.CharField(max_length=100)
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True)

    @extend_schema(operation_id="entitlements_release", request=InputSerializer, responses=ConsumeOutput)
    def post(self, request: Request) -> Response:
        data = consume_parse(self.body(request), fields=_CONSUME_FIELDS | {"reason"})
        answer = services.entitlement_release(
            project=request_project(request),
            actor=actor_from_request(request),
            event_id=data["id"],
            external_id=data["customer"],
            feature_key=data["feature"],
            quantity=data["quantity"],
            reason=data.get("reason", ""),
            read_ahead=self.read_ahead,
        )
        return Response(answer)


# --- grants and revocations ---------------------------------------------------------------------------------


class GrantOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="entitlement_grant")
    customer = serializers.CharField(source="customer.external_id")
    feature = serializers.CharField(source="feature.key")
    value = serializers.JSONField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()
    deleted = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_deleted(self, grant: Grant) -> bool:
        return grant.deleted_at is not None


class RevocationOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="entitlement_revocation")
    customer = serializers.CharField(source="customer.external_id")
    feature = serializers.CharField(source="feature.key")
    expires_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()
    deleted = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_deleted(self, revocation: Revocation) -> bool:
        return revocation.deleted_at is not None


class ReasonInput(StrictSerializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


def _reason(request: Request) -> str:
    serializer = ReasonInput(data=request.data if isinstance(request.data, dict) else {})
    serializer.is_valid(raise_exception=True)
    return str(serializer.validated_data.get("reason", ""))


class GrantCreateApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=MAX_ID_LENGTH)
        feature = serializers.CharField(max_length=100)
        value = serializers.JSONField(
            required=False,
            allow_null=True,
            help_text="metered/allocation: units added to the limit (null: unlimited, the default); credits: "
            "credits granted (required); boolean: true/false (default true); static: the value (required).",
        )
        expires_at = serializers.DateTimeField(required=False, allow_null=True)
        reason = serializers.CharField(max_length=500)

    @extend_schema(
        operation_id="entitlements_grants_create", request=InputSerializer, responses={201: GrantOutput}
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = request_project(request)
        grant = services.grant_create(
            project=project,
            actor=actor_from_request(request),
            external_id=data["customer"],
            feature=selectors.feature_get(project=project, key=data["feature"]),
            reason=data["reason"],
            value=data.get("value"),
            value_given="value" in data,
            expires_at=data.get("expires_at"),
        )
        return Response(GrantOutput(grant).data, status=status.HTTP_201_CREATED)


class GrantDeleteApi(BaseApi):
    tenant_lookup = {"grant_id": Grant}

    @extend_schema(operation_id="entitlements_grants_delete", request=ReasonInput, responses=GrantOutput)
    def delete(self, request: Request, grant_id: str) -> Response:
        grant = selectors.grant_get(project=request_project(request), grant_id=grant_id)
        deleted = services.grant_delete(
            grant=grant, actor=actor_from_request(request), reason=_reason(request)
        )
        return Response(GrantOutput(deleted).data)


class RevocationCreateApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=MAX_ID_LENGTH)
        feature = serializers.CharField(max_length=100)
        expires_at = serializers.DateTimeField(required=False, allow_null=True)
        reason = serializers.CharField(max_length=500)

    @extend_schema(
        operation_id="entitlements_revocations_create",
        request=InputSerializer,
        responses={201: RevocationOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = request_project(request)
        revocation = services.revocation_create(
            project=project,
            actor=actor_from_request(request),
            external_id=data["customer"],
            feature=selectors.feature_get(project=project, key=data["feature"]),
            reason=data["reason"],
            expires_at=data.get("expires_at"),
        )
        return Response(RevocationOutput(revocation).data, status=status.HTTP_201_CREATED)


class RevocationDeleteApi(BaseApi):
    tenant_lookup = {"revocation_id": Revocation}

    @extend_schema(
        operation_id="entitlements_revocations_delete", request=ReasonInput, responses=RevocationOutput
    )
    def delete(self, request: Request, revocation_id: str) -> Response:
        revocation = selectors.revocation_get(project=request_project(request), revocation_id=revocation_id)
        deleted = services.revocation_delete(
            revocation=revocation, actor=actor_from_request(request), reason=_reason(request)
        )
        return Response(RevocationOutput(deleted).data)


# --- usage --------------------------------------------------------------------------------------------------


class UsageEventInput(StrictSerializer):
    id = serializers.CharField(max_length=MAX_ID_LENGTH, help_text="Your idempotency id for this event.")
    customer = serializers.CharField(max_length=MAX_ID_LENGTH)
    feature = serializers.CharField(max_length=100, help_text="A metered feature's key.")
    quantity = serializers.IntegerField(min_value=0, max_value=MAX_QUANTITY)
    timestamp = serializers.DateTimeField(required=False, help_text="When it happened (default: now).")
    properties = serializers.DictField(required=False)


_USAGE_FIELDS = frozenset({"id", "customer", "feature", "quantity", "timestamp", "properties"})


def usage_event_parse(raw: Any, param: str = "") -> services.UsageInput:
    """Validates one usage event by hand (a batch holds up to 1,000: DRF field machinery would dominate).
    `param` prefixes the names of invalid fields (`events[3]`)."""

    def at(name: str) -> str:
        return f"{param}.{name}" if param else name

    if not isinstance(raw, dict):
        raise InvalidRequest(
            f"{param or 'event'}: an event is an object.", code="invalid_parameter", param=param or None
        )
    unknown = sorted(set(raw) - _USAGE_FIELDS)
    if unknown:
        raise InvalidRequest(
            f"{at(unknown[0])}: Unknown parameter.",
            code="unknown_parameter",
            param=at(unknown[0]),
        )
    values: dict[str, str] = {}
    for name in ("id", "customer", "feature"):
        value = raw.get(name)
        if value is None or value == "":
            raise InvalidRequest(
                f"{at(name)}: This field is required.", code="parameter_missing", param=at(name)
            )
        if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
            raise InvalidRequest(
                f"{at(name)}: a string of at most {MAX_ID_LENGTH} characters.",
                code="invalid_parameter",
                param=at(name),
            )
        values[name] = value
    quantity = raw.get("quantity")
    if quantity is None:
        raise InvalidRequest(
            f"{at('quantity')}: This field is required.", code="parameter_missing", param=at("quantity")
        )
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 <= quantity <= MAX_QUANTITY:
        raise InvalidRequest(
            f"{at('quantity')}: an integer ≥ 0.", code="invalid_parameter", param=at("quantity")
        )
    timestamp = None
    if raw.get("timestamp") is not None:
        timestamp = _timestamp_parse(raw["timestamp"], at("timestamp"))
    properties = raw.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise InvalidRequest(
            f"{at('properties')}: an object.", code="invalid_parameter", param=at("properties")
        )
    return services.UsageInput(
        id=values["id"],
        customer=values["customer"],
        feature=values["feature"],
        quantity=quantity,
        timestamp=timestamp,
        properties=properties,
    )


def _timestamp_parse(raw: Any, param: str) -> datetime:
    parsed: datetime | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        parsed = datetime.fromtimestamp(raw, UTC)
    elif isinstance(raw, str):
        try:
            parsed = parse_datetime(raw)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
    if parsed is None:
        raise InvalidRequest(
            f"{param}: an ISO 8601 time (or Unix seconds).", code="invalid_parameter", param=param
        )
    return parsed


def usage_event_body(event: UsageEvent) -> dict[str, Any]:
    return {
        "id": event.event_id,
        "object": "usage_event",
        "customer": event.customer.external_id,
        "feature": event.feature.key,
        "quantity": event.quantity,
        "timestamp": iso(event.timestamp),
        "properties": event.properties,
        "period_start": iso(event.period_start),
        "stripe_meter": {
            "status": event.meter_status or None,
            "reported_at": iso(event.meter_reported_at),
            "attempts": event.meter_attempts,
            "error": event.meter_error or None,
        },
        "created_at": iso(event.created_at),
    }


class UsageEventOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="usage_event")
    customer = serializers.CharField()
    feature = serializers.CharField()
    quantity = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    properties = serializers.DictField()
    period_start = serializers.DateTimeField(allow_null=True)
    stripe_meter = serializers.DictField(
        help_text="Reporting to Stripe's billing meter: status null (not billed by a meter), pending, reported, "
        "skipped or failed."
    )
    created_at = serializers.DateTimeField()


class UsageCreateApi(BaseApi):
    @extend_schema(
        operation_id="usage_create",
        request=UsageEventInput,
        responses={200: UsageEventOutput, 201: UsageEventOutput},
    )
    def post(self, request: Request) -> Response:
        event = usage_event_parse(request.data)
        stored, created = services.usage_record(project=request_project(request), event=event)
        return Response(
            usage_event_body(stored), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class UsageBatchInput(StrictSerializer):
    events = UsageEventInput(many=True)


class UsageBatchOutput(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()


class UsageBatchApi(BaseApi):
    @extend_schema(operation_id="usage_batch", request=UsageBatchInput, responses=UsageBatchOutput)
    def post(self, request: Request) -> Response:
        data = request.data
        if not isinstance(data, dict) or set(data) - {"events"}:
            extra = sorted(set(data) - {"events"}) if isinstance(data, dict) else []
            raise InvalidRequest(
                f"{extra[0]}: Unknown parameter." if extra else 'The body is {"events": [...]}.',
                code="unknown_parameter" if extra else "invalid_parameter",
                param=extra[0] if extra else None,
            )
        raw_events = data.get("events")
        if not isinstance(raw_events, list) or not raw_events:
            raise InvalidRequest(
                "events: a non-empty list of usage events.", code="parameter_missing", param="events"
            )
        if len(raw_events) > MAX_BATCH:
            raise InvalidRequest(
                f"events: at most {MAX_BATCH} events per batch.", code="batch_too_large", param="events"
            )
        events = [usage_event_parse(raw, f"events[{index}]") for index, raw in enumerate(raw_events)]
        accepted, duplicates, _ = services.usage_record_batch(project=request_project(request), events=events)
        return Response({"accepted": accepted, "duplicates": duplicates})


# --- credits ------------------------------------------------------------------------------------------------


class CreditLotOutput(serializers.Serializer):
    id = serializers.CharField()
    source = serializers.ChoiceField(choices=CreditLot.Source.choices)  # type: ignore[assignment]
    amount = serializers.IntegerField()
    remaining = serializers.IntegerField()
    expires_at = serializers.DateTimeField(allow_null=True)
    voided = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class CreditLedgerOutput(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField(help_text="grant, consume or revoke.")
    amount = serializers.IntegerField(help_text="+ granted, − consumed or taken back.")
    lot = serializers.CharField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()


class CreditsOutput(serializers.Serializer):
    object = serializers.CharField(default="credit_balance")
    customer = serializers.CharField()
    feature = serializers.CharField()
    balance = serializers.IntegerField()
    lots = CreditLotOutput(many=True)
    ledger = CreditLedgerOutput(many=True, help_text="Newest first (the latest 100 movements).")


class CreditsApi(BaseApi):
    @extend_schema(
        operation_id="credits_retrieve",
        parameters=[CUSTOMER_PARAMETER, FEATURE_PARAMETER],
        responses=CreditsOutput,
    )
    def get(self, request: Request) -> Response:
        project = request_project(request)
        external_id = _required(request.query_params, "customer")
        feature = selectors.feature_get(project=project, key=_required(request.query_params, "feature"))
        if feature.type != Feature.Type.CREDITS:
            raise InvalidRequest(
                f"feature: {feature.key!r} is a {feature.type} feature, not a credits feature.",
                code="feature_not_credits",
                param="feature",
            )
        customer: Customer | None = selectors.customer_find(project=project, external_id=external_id)
        body: dict[str, Any] = {
            "object": "credit_balance",
            "customer": external_id,
            "feature": feature.key,
            "balance": 0,
            "lots": [],
            "ledger": [],
        }
        if customer is not None:
            body["balance"] = selectors.credit_balance(project=project, customer=customer, feature=feature)
            body["lots"] = [
                {
                    "id": lot.pk,
                    "source": lot.source,
                    "amount": lot.amount,
                    "remaining": lot.remaining,
                    "expires_at": iso(lot.expires_at),
                    "voided": lot.voided_at is not None,
                    "created_at": iso(lot.created_at),
                }
                for lot in selectors.credit_lots(project=project, customer=customer, feature=feature)
            ]
            body["ledger"] = [
                {
                    "id": entry.pk,
                    "type": entry.type,
                    "amount": entry.amount,
                    "lot": entry.lot_id,
                    "reference": entry.reference,
                    "created_at": iso(entry.created_at),
                }
                for entry in selectors.credit_ledger(project=project, customer=customer, feature=feature)
            ]
        return Response(body)


# --- a project's entitlement settings (platform key) ----------------------------------------------------------


class EntitlementSettingsApi(BaseApi):
    """`GET|PATCH /projects/{id or slug}/entitlement_settings`: grace periods and the `credits.low` mark."""

    permission_classes = [IsPlatformKey]

    class InputSerializer(StrictSerializer):
        past_due_grace_seconds = serializers.IntegerField(
            min_value=0,
            max_value=90 * 86_400,
            required=False,
            help_text="How long a past_due subscription keeps giving access from the start of its unpaid period.",
        )
        usage_grace_seconds = serializers.IntegerField(
            min_value=0,
            max_value=7 * 86_400,
            required=False,
            help_text="How long after a period ends usage events for it are still accepted.",
        )
        credits_low_percent = serializers.IntegerField(
            min_value=0,
            max_value=100,
            required=False,
            help_text="`credits.low` fires when a balance falls to this share of the credits still valid.",
        )
        reason = serializers.CharField(
            max_length=500, required=False, allow_blank=True, help_text="Recorded in the audit log."
        )

    class OutputSerializer(serializers.Serializer):
        object = serializers.CharField(default="entitlement_settings")
        project = serializers.CharField(source="project_id")
        past_due_grace_seconds = serializers.IntegerField()
        usage_grace_seconds = serializers.IntegerField()
        credits_low_percent = serializers.IntegerField()

    @extend_schema(operation_id="projects_entitlement_settings_retrieve", responses=OutputSerializer)
    def get(self, request: Request, project_id: str) -> Response:
        project = project_selectors.project_get(id_or_slug=project_id)
        return Response(self.OutputSerializer(selectors.entitlement_settings_get(project=project)).data)

    @extend_schema(
        operation_id="projects_entitlement_settings_update",
        request=InputSerializer,
        responses=OutputSerializer,
    )
    def patch(self, request: Request, project_id: str) -> Response:
        project = project_selectors.project_get(id_or_slug=project_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        reason = changes.pop("reason", "")
        updated = services.entitlement_settings_update(
            project=project, actor=actor_from_request(request), reason=reason, **changes
        )
        return Response(self.OutputSerializer(updated).data)
