"""Usage: `GET /usage` (a period's summary), `POST /usage` (one event) and `POST /usage/batch` (all or nothing),
the parsing of a usage event into `UsageInput`, and how a stored event is rendered.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.formulas import MAX_DIMENSION_QUANTITY, MAX_DIMENSIONS, NAME
from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.serializers import StrictSerializer
from core.throttling import ApiKeyRateThrottle, ProjectUsageRateThrottle
from entitlements import selectors
from entitlements.apis.params import (
    CUSTOMER,
    CUSTOMER_PARAMETER,
    FEATURE,
    FEATURE_PARAMETER,
    MAX_ID_LENGTH,
    MAX_QUANTITY,
    IdParam,
)
from entitlements.models import UsageEvent
from entitlements.resolver import iso
from entitlements.services.usage import UsageInput, usage_record, usage_record_batch
from projects.authentication import request_project

MAX_BATCH = 1000


@extend_schema_field(
    {
        "type": "object",
        "minProperties": 1,
        "maxProperties": MAX_DIMENSIONS,
        "additionalProperties": {"type": "integer", "minimum": 0, "maximum": MAX_DIMENSION_QUANTITY},
    }
)
class DimensionsField(serializers.DictField):
    """A usage event's dimensions: name → quantity (parsed by hand, `_dimensions_parse`)."""


class UsageEventInput(StrictSerializer):
    id = serializers.CharField(max_length=MAX_ID_LENGTH, help_text="Your idempotency id for this event.")
    customer = serializers.CharField(max_length=MAX_ID_LENGTH)
    feature = serializers.CharField(max_length=100, help_text="A metered feature's key.")
    quantity = serializers.IntegerField(
        min_value=0,
        max_value=MAX_QUANTITY,
        required=False,
        help_text="Required unless the event gives `dimensions` (then never with them).",
    )
    timestamp = serializers.DateTimeField(
        required=False,
        help_text="When it happened (default: now; for a customer on a test clock, the clock's frozen_time).",
    )
    no_billing_side_effects = serializers.BooleanField(
        required=False,
        default=False,
        help_text="A backfill with no billing side effects: the event may be stamped in any closed period (counted "
        "there and in `as_of` answers) and is never sent to Stripe's meter (`stripe_meter.status` skipped). Not "
        "for a feature whose usage past its allowance is paid with credits, in a closed period.",
    )
    properties = serializers.DictField(
        required=False,
        help_text="Yours, stored with the event; `entity` is not a property's name (see `entity`).",
    )
    entity = serializers.CharField(
        max_length=MAX_ID_LENGTH,
        required=False,
        allow_null=True,
        help_text="One of the customer's entities, for a metered feature with a limit per entity: the event counts "
        "on the entity's use as well as the account's (never refused, as any recorded usage); stored as "
        "`properties.entity`. 400 `unknown_entity`, `entity_not_counted`.",
    )

    model = serializers.RegexField(
        NAME.pattern,
        max_length=100,
        required=False,
        allow_null=True,
        help_text="The model the call used (a feature with a usage formula): its cost table rates and the "
        "formula's own rates for it apply.",
    )
    dimensions = DimensionsField(
        required=False,
        allow_null=True,
        help_text="Instead of `quantity`, for a feature with a usage formula: what the call used, by dimension "
        '(`{"input_tokens": 1200, "output_tokens": 300}`); the formula makes the quantity of them, stored with '
        "the event with its cost. 400 `feature_has_no_formula`, `unknown_dimension`, `model_not_priced`.",
    )


_USAGE_FIELDS = frozenset(
    {
        "id",
        "customer",
        "feature",
        "quantity",
        "timestamp",
        "properties",
        "entity",
        "model",
        "dimensions",
        "no_billing_side_effects",
    }
)


def usage_event_parse(raw: Any, param: str = "") -> UsageInput:
    """Validates one usage event by hand (a batch holds up to 1,000: DRF field machinery would dominate).
    `param` prefixes the names of invalid fields (`events[3]`)."""

    def at(name: str) -> str:
        return f"{param}.{name}" if param else name

    if not isinstance(raw, dict):
        raise InvalidRequest(
            f"{param or 'event'}: an event is an object.", code="invalid_parameter", param=param or None
        )
    unknown = [] if _USAGE_FIELDS.issuperset(raw) else sorted(set(raw) - _USAGE_FIELDS)
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
    model, dimensions = _dimensions_parse(raw, at)
    quantity = raw.get("quantity")
    if dimensions is not None:
        if quantity is not None:
            raise InvalidRequest(
                f"{at('quantity')}: give `quantity` or `dimensions`, not both (the feature's formula makes the "
                "quantity of the dimensions).",
                code="parameter_conflict",
                param=at("quantity"),
            )
        quantity = 0  # made by the formula when the event is recorded
    if quantity is None:
        raise InvalidRequest(
            f"{at('quantity')}: This field is required.", code="parameter_missing", param=at("quantity")
        )
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 <= quantity <= MAX_QUANTITY:
        raise InvalidRequest(
            f"{at('quantity')}: an integer ≥ 0.", code="invalid_parameter", param=at("quantity")
        )
    timestamp = raw.get("timestamp")
    if timestamp is not None:
        timestamp = _timestamp_parse(timestamp, at("timestamp"))
    properties = raw.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise InvalidRequest(
            f"{at('properties')}: an object.", code="invalid_parameter", param=at("properties")
        )
    if properties is not None and "entity" in properties:
        raise InvalidRequest(
            f"{at('properties.entity')}: Tollgate's (it keeps there the entity an event names); name one of the "
            "customer's entities with `entity`, or give your property another name.",
            code="invalid_parameter",
            param=at("properties.entity"),
        )
    entity = raw.get("entity")
    if entity is not None and (not isinstance(entity, str) or not entity or len(entity) > MAX_ID_LENGTH):
        raise InvalidRequest(
            f"{at('entity')}: a string of 1 to {MAX_ID_LENGTH} characters.",
            code="invalid_parameter",
            param=at("entity"),
        )
    no_billing = raw.get("no_billing_side_effects", False)
    if not isinstance(no_billing, bool):
        raise InvalidRequest(
            f"{at('no_billing_side_effects')}: true or false.",
            code="invalid_parameter",
            param=at("no_billing_side_effects"),
        )
    return UsageInput(
        values["id"],
        values["customer"],
        values["feature"],
        quantity,
        timestamp,
        properties,
        entity,
        model,
        dimensions,
        no_billing,
    )


def _dimensions_parse(
    raw: dict[str, Any], at: Callable[[str], str]
) -> tuple[str | None, dict[str, int] | None]:
    """An event's `model` and `dimensions` (each optional; `model` only with `dimensions`)."""
    model, dimensions = raw.get("model"), raw.get("dimensions")
    if model is not None and (not isinstance(model, str) or not NAME.fullmatch(model)):
        raise InvalidRequest(
            f"{at('model')}: a model's name (letters, digits, . _ : / -, up to 100).",
            code="invalid_parameter",
            param=at("model"),
        )
    if dimensions is None:
        if model is not None:
            raise InvalidRequest(
                f"{at('dimensions')}: an event naming its model gives its dimensions.",
                code="parameter_missing",
                param=at("dimensions"),
            )
        return None, None
    if not isinstance(dimensions, dict) or not dimensions or len(dimensions) > MAX_DIMENSIONS:
        raise InvalidRequest(
            f"{at('dimensions')}: an object of 1 to {MAX_DIMENSIONS} dimensions, each an integer ≥ 0.",
            code="invalid_parameter",
            param=at("dimensions"),
        )
    for name, value in dimensions.items():  # a name the formula doesn't price is refused when it is priced
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DIMENSION_QUANTITY:
            raise InvalidRequest(
                f"{at('dimensions.' + name)}: an integer ≥ 0.",
                code="invalid_parameter",
                param=at("dimensions." + name),
            )
    return model, dimensions


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
        "model": event.dimensions["model"] if event.dimensions else None,
        "dimensions": event.dimensions["values"] if event.dimensions else None,
        "cost": (
            None
            if event.cost_micros is None or not event.dimensions
            else {
                "micros": event.cost_micros,
                "currency": event.dimensions["currency"],
                "cost_table": event.dimensions["cost_table"],
            }
        ),
        "period_start": iso(event.period_start),
        "stripe_meter": {
            "status": event.meter_status or None,
            "reported_at": iso(event.meter_reported_at),
            "attempts": event.meter_attempts,
            "error": event.meter_error or None,
        },
        "created_at": iso(event.created_at),
    }


class UsageCostOutput(serializers.Serializer[Any]):
    micros = serializers.IntegerField(
        help_text="Micro-units of the currency, rounded to the nearest (half up)."
    )
    currency = serializers.CharField()
    cost_table = serializers.IntegerField(help_text="The version of your cost table that priced it.")


class UsageEventOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="usage_event")
    customer = serializers.CharField()
    feature = serializers.CharField()
    quantity = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    properties = serializers.DictField()
    model = serializers.CharField(allow_null=True, help_text="The model the event named, or null.")
    dimensions = serializers.DictField(
        child=serializers.IntegerField(),
        allow_null=True,
        help_text="The dimensions the event gave (its `quantity` is what the feature's formula made of them), "
        "or null.",
    )
    cost = UsageCostOutput(
        allow_null=True,
        help_text="What the call cost you, by your cost table in force at its time; null when none priced it.",
    )
    period_start = serializers.DateTimeField(allow_null=True)
    stripe_meter = serializers.DictField(
        help_text="Reporting to Stripe's billing meter: status null (not billed by a meter), pending, reported, "
        "skipped or failed."
    )
    created_at = serializers.DateTimeField()


class UsageSummaryOutput(serializers.Serializer[Any]):
    object = serializers.CharField(default="usage_summary")
    customer = serializers.CharField()
    feature = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    quantity = serializers.IntegerField(help_text="Usage counted by Tollgate in the period.")
    billed_quantity = serializers.IntegerField(help_text="Of it, what Stripe's meter has been sent.")
    pending_quantity = serializers.IntegerField(help_text="Of it, what is still to be sent to the meter.")
    price = serializers.CharField(
        allow_null=True, help_text="The metered price the customer subscribes to, or null: nobody is billed."
    )
    currency = serializers.CharField(allow_null=True)
    amount_due_estimate = serializers.IntegerField(
        help_text="What the metered price invoices for `quantity` at the period's end, in minor units (tiers "
        "applied). Before discounts and tax. 0 in a trial: Stripe bills no usage of a trial."
    )


PERIOD = IdParam("period", "Which period: `current` (the only one for now).", required=False, max_length=20)


class UsageApi(BaseApi):
    """`GET /usage` (a period's usage summary) and `POST /usage` (record one event)."""

    # The key's limit, and the project's for usage intake (POST only): per-tenant fairness.
    throttle_classes = [ApiKeyRateThrottle, ProjectUsageRateThrottle]

    @extend_schema(
        operation_id="usage_retrieve",
        summary="Retrieve a period's usage",
        description=(
            "A metered feature's usage in the customer's current period: counted by Tollgate "
            "(`quantity`), reported to the Stripe meter (`billed_quantity`) or still to be "
            "(`pending_quantity`), and `amount_due_estimate`, what the metered price the "
            "customer subscribes to will invoice for it. A customer Tollgate has not seen has "
            "zero usage. Errors: 400 `feature_not_metered`; 404 for an unknown feature."
        ),
        parameters=[
            CUSTOMER_PARAMETER,
            FEATURE_PARAMETER,
            # The only value the server takes, stated as such (it is parsed by hand below).
            OpenApiParameter(
                "period",
                {"type": "string", "enum": ["current"]},
                required=False,
                description=PERIOD.description,
            ),
        ],
        responses=UsageSummaryOutput,
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        if params.get("period", "current") != "current":
            raise InvalidRequest(
                "period: only `current` is supported.", code="invalid_parameter", param="period"
            )
        summary = selectors.usage_summary(
            project=request_project(request),
            external_id=CUSTOMER.parse(params),
            feature_key=FEATURE.parse(params),
        )
        return Response(UsageSummaryOutput(summary).data)

    @extend_schema(
        operation_id="usage_create",
        summary="Record usage",
        description=(
            "Records usage that happened (never refused for being over a limit). `id` is yours: "
            "the same id again is counted once and answered 200 with the stored event (201 the "
            "first time). Usage of a feature sold with a metered price is reported to its Stripe "
            "meter in the background. A backfill of a closed period states "
            "`no_billing_side_effects` (counted in its period, never sent to the meter). Errors: 400 "
            "`timestamp_too_old` (past the project's grace window, without `no_billing_side_effects`), "
            "`timestamp_in_future`, `feature_not_metered`, `unknown_feature`."
        ),
        request=UsageEventInput,
        responses={200: UsageEventOutput, 201: UsageEventOutput},
    )
    def post(self, request: Request) -> Response:
        event = usage_event_parse(request.data)
        stored, created = usage_record(project=request_project(request), event=event)
        return Response(
            usage_event_body(stored), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class UsageBatchInput(StrictSerializer):
    events = serializers.ListField(child=UsageEventInput(), min_length=1, max_length=MAX_BATCH)


class UsageBatchOutput(serializers.Serializer[Any]):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()


class UsageBatchApi(BaseApi):
    throttle_classes = [ApiKeyRateThrottle, ProjectUsageRateThrottle]

    @extend_schema(
        operation_id="usage_batch",
        summary="Record usage in bulk",
        description=(
            "Up to 1,000 usage events at once, each deduplicated by its `id` like a single one; "
            "answers how many were `accepted` and how many were `duplicates`. All or nothing: one "
            "invalid event rejects the batch (400, `param` names its index) and nothing is "
            "recorded."
        ),
        request=UsageBatchInput,
        responses=UsageBatchOutput,
    )
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
        accepted, duplicates, _ = usage_record_batch(project=request_project(request), events=events)
        return Response({"accepted": accepted, "duplicates": duplicates})
