"""The hot path: `GET /entitlements/check` parses its three query parameters by hand and renders a plain
dict, and the rate limiter reads the customer's snapshot in its own round trip (`read_ahead_keys`), so that a
warm answer costs no SQL and one Redis round trip in all. Consume and release read ahead the same way. Also
`GET /entitlements` and the output shapes these views document.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.drainage import get_override
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.formulas import NAME
from catalog.selectors import feature_by_key
from core.actors import actor_from_request
from core.base_api import BaseApi, deep_object_key
from core.errors import InvalidRequest
from core.serializers import StrictSerializer
from core.throttling import ApiKeyRateThrottle, ProjectUsageRateThrottle
from entitlements import cache, selectors
from entitlements.apis.params import (
    AS_OF,
    AS_OF_PARAMETER,
    CUSTOMER,
    CUSTOMER_PARAMETER,
    ENTITY,
    ENTITY_PARAMETER,
    FEATURE,
    FEATURE_PARAMETER,
    MAX_ID_LENGTH,
    MAX_QUANTITY,
    QUANTITY,
    QUANTITY_PARAMETER,
)
from entitlements.apis.usage import DimensionsField, _dimensions_parse
from entitlements.services.consume import entitlement_consume
from entitlements.services.hold_pricing import dimensions_price
from entitlements.services.release import entitlement_release
from projects.authentication import request_project
from projects.models import Project

# --- output shapes (documentation; the views render plain dicts) ---------------------------------------------

HELD_HELP = (
    "metered, allocation and credits features: units set aside by active holds. They count against the limit "
    "(`remaining` is net of them) but are not `used`; held credits are out of `balance`."
)
OVERAGE_HELP = (
    "metered features: `allowed` when the plan lets use go past `limit` (any use is allowed, `remaining` goes "
    "below 0, and the feature's metered price bills it), else `blocked`; null for other features."
)
REMAINING_HELP = (
    "limit − (used + held), the units credits paid not counted; below 0 only where `overage` is `allowed`; "
    "credits: the balance."
)
BINDING_HELP = (
    "metered features, when `quantity` more does not fit: what refuses it — `period` (the period's limit, and the "
    "waterfall's credits), `cap` "
    "(the feature's spend cap), `account_cap` (the customer's account cap), `entity` (the limit of the entity "
    "named) or a usage window (`minute`, `hour`, `day`, `week`); of several, the one that frees up last. "
    "null when it fits."
)
RETRY_AFTER_HELP = (
    "Whole seconds until `binding` frees up (its window or period ends); null when it fits, or when `quantity` "
    "is more than that window or period ever allows."
)


class WindowOutput(serializers.Serializer[Any]):
    window = serializers.ChoiceField(choices=["minute", "hour", "day", "week"])
    limit = serializers.IntegerField(help_text="The most units used in one window.")
    used = serializers.IntegerField(help_text="Used in the current window (held units not included).")
    held = serializers.IntegerField(help_text="Set aside by active holds in the current window.")
    remaining = serializers.IntegerField(help_text="limit − (used + held), never below 0.")
    resets_at = serializers.DateTimeField(help_text="The end of the current window (calendar windows, UTC).")


class CapOutput(serializers.Serializer[Any]):
    at_cap = serializers.ChoiceField(
        choices=["block", "alert"],
        help_text="At the cap use is refused (`block`) or goes on, announced (`alert`).",
    )
    set_by = serializers.ChoiceField(
        choices=["catalog", "customer"], help_text="The plan's cap, or the customer's own (`/spend_caps`)."
    )
    units = serializers.IntegerField(allow_null=True, help_text="A cap in units past the limit.")
    amount = serializers.IntegerField(
        allow_null=True,
        help_text="A cap in money: the most the metered price bills for the period (minor units).",
    )
    currency = serializers.CharField(allow_null=True, help_text="The metered price's; null without one.")
    used_units = serializers.IntegerField(
        help_text="Units used past the limit this period (held ones included)."
    )
    used_amount = serializers.IntegerField(
        help_text="What the metered price bills for the period's use so far (0 without one)."
    )
    left_units = serializers.IntegerField(
        allow_null=True,
        help_text="Units left before the cap; null when nothing bounds them (no price bills).",
    )
    left_amount = serializers.IntegerField(allow_null=True, help_text="Money left before a money cap.")


CAP_HELP = "metered features whose plan allows overage, with a spend cap: how much of it is used and left."


class AccountCapOutput(serializers.Serializer[Any]):
    at_cap = serializers.ChoiceField(
        choices=["block", "alert"],
        help_text="At the cap use past a limit is refused (`block`) or goes on, announced (`alert`).",
    )
    set_by = serializers.ChoiceField(
        choices=["customer", "plan"],
        help_text="The customer's own (`/spend_caps`), or their plan's (a product's `account_cap`).",
    )
    amount = serializers.IntegerField(
        help_text="The most the customer's metered prices in `currency` bill together for the period."
    )
    currency = serializers.CharField(help_text="The cap's currency: only prices in it are summed.")
    used_amount = serializers.IntegerField(help_text="What they bill together for the period's use so far.")
    left_amount = serializers.IntegerField(help_text="amount − used_amount, never below 0.")
    left_units = serializers.IntegerField(
        allow_null=True,
        help_text=(
            "Units of this feature that still fit (past its limit, what its price bills within what is left); "
            "null when nothing bounds them (no overage, or no price in the cap's currency)."
        ),
    )


ACCOUNT_CAP_HELP = (
    "metered features of a customer with an account cap (one amount across their metered features' prices): "
    "how much of it is used and left; null without one."
)


class WaterfallOutput(serializers.Serializer[Any]):
    feature = serializers.CharField(help_text="The credits feature that pays for use past the limit.")
    cost = serializers.IntegerField(help_text="Credits one unit past the limit spends.")
    balance = serializers.IntegerField(
        help_text=(
            "That feature's spendable balance now: the account's; naming an entity that holds credits of that "
            "feature, its own too (they pay first)."
        )
    )
    units = serializers.IntegerField(
        help_text="The units past the limit the balance pays for: balance ÷ cost."
    )
    covered = serializers.IntegerField(
        help_text="Units of this period's use credits paid (held ones included); not billed as overage."
    )


WATERFALL_HELP = (
    "metered features with a credits waterfall: the credits that pay for use past the limit, before any overage; "
    "null without one."
)
STEP_HELP = (
    "metered features: where `quantity` more would come from — `allowance` (the period's limit), `credits` "
    "(the waterfall's credits, past the limit) or `overage` (past the limit, billed); null when it does not fit "
    "and for other features."
)


class EntityUseOutput(serializers.Serializer[Any]):
    id = serializers.CharField(help_text="The entity named (your id for it).")
    feature = serializers.CharField(help_text="The allocation feature that counts it.")
    limit = serializers.IntegerField(
        allow_null=True, help_text="Its own limit a period (`per_entity`); null for a credits feature."
    )
    used = serializers.IntegerField(
        allow_null=True, help_text="Its use this period; null for a credits feature."
    )
    remaining = serializers.IntegerField(
        allow_null=True, help_text="limit − used, never below 0; null for a credits feature."
    )
    windows = WindowOutput(
        many=True,
        help_text="Its own usage windows now (`per_entity.windows`), as the account's are answered; [] when none.",
    )
    binding = serializers.CharField(
        allow_null=True,
        help_text=(
            "What of its own refuses `quantity` for longest: a window (`minute`, `hour`, `day`, `week`) or "
            "`period` (its limit a period); null when it fits, and for a credits feature."
        ),
    )
    balance = serializers.IntegerField(
        allow_null=True,
        help_text="A credits feature: its own credits, spent before the account's (the answer's `balance` is "
        "both); null for a metered feature.",
    )


class CheckOutput(serializers.Serializer[Any]):
    allowed = serializers.BooleanField()
    feature = serializers.CharField()
    type = serializers.CharField(help_text="boolean, metered, credits, allocation or static.")
    enabled = serializers.BooleanField()
    value = serializers.JSONField(allow_null=True)
    limit = serializers.IntegerField(allow_null=True, help_text="null: unlimited (or not a counted feature).")
    used = serializers.IntegerField(allow_null=True)
    remaining = serializers.IntegerField(allow_null=True, help_text=REMAINING_HELP)
    balance = serializers.IntegerField(allow_null=True, help_text="credits features: the spendable balance.")
    held = serializers.IntegerField(allow_null=True, help_text=HELD_HELP)
    overage = serializers.ChoiceField(choices=["allowed", "blocked"], allow_null=True, help_text=OVERAGE_HELP)
    cap = CapOutput(allow_null=True, help_text=CAP_HELP)
    account_cap = AccountCapOutput(allow_null=True, help_text=ACCOUNT_CAP_HELP)
    credits = WaterfallOutput(allow_null=True, help_text=WATERFALL_HELP)
    step = serializers.ChoiceField(
        choices=["allowance", "credits", "overage"], allow_null=True, help_text=STEP_HELP
    )
    windows = WindowOutput(many=True, help_text="metered features: each usage window now; [] when none.")
    binding = serializers.CharField(allow_null=True, help_text=BINDING_HELP)
    retry_after = serializers.IntegerField(allow_null=True, help_text=RETRY_AFTER_HELP)
    entity = EntityUseOutput(
        required=False,
        help_text="Only when the request named an `entity`: that entity's own use; past its limit or one of its "
        "windows, `allowed` is false; refused by it for longer than by the account's (or alone), `binding` is "
        "`entity` and `retry_after` when the entity's binding frees up.",
    )
    quantity = serializers.IntegerField(
        required=False,
        help_text="Only when the check gave `dimensions`: the units the feature's usage formula makes of them "
        "(as a usage event's `quantity` would be, priced now), the quantity the answer is judged for.",
    )


class ConsumeOutput(CheckOutput):
    duplicate = serializers.BooleanField(required=False, help_text="true when this id was recorded before.")


class EntitlementOutput(serializers.Serializer[Any]):
    feature = serializers.CharField()
    type = serializers.CharField(help_text="boolean, metered, credits, allocation or static.")
    enabled = serializers.BooleanField()
    value = serializers.JSONField(allow_null=True)
    limit = serializers.IntegerField(allow_null=True)
    used = serializers.IntegerField(allow_null=True)
    remaining = serializers.IntegerField(allow_null=True, help_text=REMAINING_HELP)
    balance = serializers.IntegerField(allow_null=True)
    held = serializers.IntegerField(allow_null=True, help_text=HELD_HELP)
    overage = serializers.ChoiceField(choices=["allowed", "blocked"], allow_null=True, help_text=OVERAGE_HELP)
    cap = CapOutput(allow_null=True, help_text=CAP_HELP)
    account_cap = AccountCapOutput(allow_null=True, help_text=ACCOUNT_CAP_HELP)
    credits = WaterfallOutput(allow_null=True, help_text=WATERFALL_HELP)
    step = serializers.ChoiceField(
        choices=["allowance", "credits", "overage"], allow_null=True, help_text=STEP_HELP
    )
    windows = WindowOutput(many=True, help_text="metered features: each usage window now; [] when none.")
    binding = serializers.CharField(allow_null=True, help_text=BINDING_HELP + " (For one more unit.)")
    retry_after = serializers.IntegerField(allow_null=True, help_text=RETRY_AFTER_HELP)
    resets_at = serializers.DateTimeField(
        allow_null=True, help_text="metered: the end of the current period."
    )
    sources = serializers.ListField(child=serializers.DictField(), help_text="Where each part came from.")


class EntitlementsOutput(serializers.Serializer[Any]):
    customer = serializers.CharField()
    entitlements = EntitlementOutput(many=True)


# --- entitlements -------------------------------------------------------------------------------------------

MODEL_PARAMETER = OpenApiParameter(
    "model",
    {"type": "string", "pattern": NAME.pattern, "maxLength": 100},
    required=False,
    description="With `dimensions`: the model the call uses (its cost table rates and the formula's own rates for "
    "it apply).",
)
DIMENSIONS_PARAMETER = OpenApiParameter(
    "dimensions",
    get_override(DimensionsField, "field"),
    required=False,
    style="deepObject",
    explode=True,
    description="Instead of `quantity`, for a metered feature with a usage formula: what the call would use, by "
    "dimension (`dimensions[input_tokens]=1200&dimensions[output_tokens]=300`). The check is for the units the "
    "formula makes of them, priced by the cost table in force now (with `as_of`, then), and the answer's "
    "`quantity` says how many. 400 `feature_has_no_formula`, `unknown_dimension`, `model_not_priced`, "
    "`usage_too_large`; `parameter_conflict` with `quantity`.",
)


def check_dimensions_parse(params: Any) -> tuple[str | None, dict[str, Any] | None]:
    """A check's `model` and `dimensions[<name>]=<quantity>` (deepObject), as a usage event's
    (`usage._dimensions_parse`); (None, None) without them."""
    if "dimensions" in params:
        raise InvalidRequest(
            "dimensions: give each dimension as dimensions[<name>]=<quantity>.",
            code="invalid_parameter",
            param="dimensions",
        )
    raw: dict[str, Any] = {}
    for key in params:
        deep = deep_object_key(key)
        if deep is not None and deep[0] == "dimensions":
            name = deep[1]
            value = params.get(key)
            raw[name] = int(value) if value.isascii() and value.isdigit() and len(value) <= 13 else value
    return _dimensions_parse(
        {"model": params.get("model") or None, "dimensions": raw or None}, lambda name: name
    )


def check_units(
    *, project: Project, feature_key: str, model: str | None, dimensions: dict[str, int], at: datetime
) -> int:
    """The units the feature's formula makes of a use's dimensions at `at` (the usage API's pricing: a test
    clock's customer's too, by the real time); 404 for an unknown feature, 400 as a usage event's."""
    feature = feature_by_key(project=project, key=feature_key)
    return dimensions_price(project=project, feature=feature, model=model, dimensions=dimensions, at=at).units


class EntitlementCheckApi(BaseApi):
    @extend_schema(
        operation_id="entitlements_check",
        summary="Check one entitlement",
        description=(
            "Whether `customer` may use `quantity` of `feature` now — or, with `as_of`, whether they could "
            "then. Records nothing. A customer the project has never seen gets the default product's answer "
            "(200, not 404); an unknown feature is 404. A metered feature with a usage formula may be asked "
            "for a call's `model` and `dimensions` instead of `quantity`: the answer is for the units its "
            "formula makes of them, and says them in `quantity`."
        ),
        parameters=[
            CUSTOMER_PARAMETER,
            FEATURE_PARAMETER,
            QUANTITY_PARAMETER,
            AS_OF_PARAMETER,
            ENTITY_PARAMETER,
            MODEL_PARAMETER,
            DIMENSIONS_PARAMETER,
        ],
        responses=CheckOutput,
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        project = request_project(request)
        customer, feature = CUSTOMER.parse(params), FEATURE.parse(params)
        quantity, as_of = QUANTITY.parse(params), AS_OF.parse(params)
        model, dimensions = check_dimensions_parse(params)
        if dimensions is not None:
            if params.get(QUANTITY.name) not in (None, ""):
                raise InvalidRequest(
                    "quantity: give `quantity` or `dimensions`, not both (the feature's formula makes the "
                    "quantity of the dimensions).",
                    code="parameter_conflict",
                    param="quantity",
                )
            quantity = check_units(
                project=project,
                feature_key=feature,
                model=model,
                dimensions=dimensions,
                at=as_of or timezone.now(),
            )
        answer = selectors.entitlement_check(
            project=project,
            external_id=customer,
            feature_key=feature,
            quantity=quantity,
            read_ahead=self.read_ahead,
            as_of=as_of,
            entity=ENTITY.parse_optional(params),
        )
        if dimensions is not None:
            answer["quantity"] = quantity
        return Response(answer)

    def read_ahead_keys(self, request: Request) -> Sequence[str]:
        return snapshot_read_keys(request, request.query_params.get("customer"), with_usage=True)


class EntitlementListApi(BaseApi):
    @extend_schema(
        operation_id="entitlements_list",
        summary="List a customer's entitlements",
        description=(
            "Every feature of the project as it applies to `customer` now (or, with `as_of`, as it did then): "
            "enabled, value, limit, used, remaining, balance, when it resets, and which purchases, grants or "
            "revocations it comes from. Records nothing."
        ),
        parameters=[CUSTOMER_PARAMETER, AS_OF_PARAMETER],
        responses=EntitlementsOutput,
    )
    def get(self, request: Request) -> Response:
        customer = CUSTOMER.parse(request.query_params)
        as_of = AS_OF.parse(request.query_params)
        return Response(
            selectors.entitlements_list(project=request_project(request), external_id=customer, as_of=as_of)
        )


_CONSUME_FIELDS = frozenset({"id", "customer", "feature", "quantity"})
_ENTITY_FIELD = "entity"


def snapshot_read_keys(request: Request, customer: Any, *, with_usage: bool) -> Sequence[str]:
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
        return snapshot_read_keys(request, customer, with_usage=False)


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
    if _ENTITY_FIELD in fields and raw.get(_ENTITY_FIELD) is not None:
        entity = raw[_ENTITY_FIELD]
        if not isinstance(entity, str) or not entity or len(entity) > MAX_ID_LENGTH:
            raise InvalidRequest(
                f"entity: a string of 1 to {MAX_ID_LENGTH} characters.",
                code="invalid_parameter",
                param="entity",
            )
        data[_ENTITY_FIELD] = entity
    reason = raw.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise InvalidRequest("reason: at most 500 characters.", code="invalid_parameter", param="reason")
    data["reason"] = reason
    return data


class EntitlementConsumeApi(_ConsumeBaseApi):
    throttle_classes = [ApiKeyRateThrottle, ProjectUsageRateThrottle]

    class InputSerializer(StrictSerializer):
        id = serializers.CharField(max_length=MAX_ID_LENGTH, help_text="Your idempotency id for this use.")
        customer = serializers.CharField(max_length=MAX_ID_LENGTH)
        feature = serializers.CharField(max_length=100)
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)
        entity = serializers.CharField(
            max_length=MAX_ID_LENGTH,
            required=False,
            allow_null=True,
            help_text=(
                "One of the customer's entities (a seat, a workspace: your id for it), for a metered feature whose "
                "plan gives each entity its own limit a period (`per_entity`): the use must fit that limit as "
                "well as the account's, and counts for both; for a credits feature whose plan lets each entity "
                "hold credits of its own: the use spends them first, then the account's."
            ),
        )

    @extend_schema(
        operation_id="entitlements_consume",
        summary="Consume an entitlement",
        description=(
            "Checks and records usage in one atomic step (`metered`, `allocation`, `credits`): "
            "limits hold under concurrency. When not allowed nothing is recorded and the answer "
            "is still 200 with `allowed: false`. `id` is yours: the same id again records nothing "
            "and answers `duplicate: true`; 409 `idempotency_id_reused` for the same id with "
            "another body. 400 `feature_not_consumable`; with `entity`, 400 `unknown_entity` (not a live "
            "entity of the customer counted by the feature's `per_entity` feature) or `entity_not_counted` "
            "(the feature has no limit, or no credits, per entity), nothing recorded."
        ),
        request=InputSerializer,
        responses=ConsumeOutput,
    )
    def post(self, request: Request) -> Response:
        # by hand: this is a hot path
        data = consume_parse(self.body(request), fields=_CONSUME_FIELDS | {_ENTITY_FIELD})
        answer = entitlement_consume(
            project=request_project(request),
            event_id=data["id"],
            external_id=data["customer"],
            feature_key=data["feature"],
            quantity=data["quantity"],
            read_ahead=self.read_ahead,
            entity=data.get(_ENTITY_FIELD),
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

    @extend_schema(
        operation_id="entitlements_release",
        summary="Release allocation units",
        description=(
            "Gives back units of an `allocation` feature (a seat freed), audited. The same `id` "
            "again changes nothing. Errors: 400 `release_exceeds_allocation` (more than is held), "
            "`feature_not_releasable`."
        ),
        request=InputSerializer,
        responses=ConsumeOutput,
    )
    def post(self, request: Request) -> Response:
        data = consume_parse(self.body(request), fields=_CONSUME_FIELDS | {"reason"})
        answer = entitlement_release(
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
