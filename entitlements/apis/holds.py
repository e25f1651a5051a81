"""Holds: `POST /entitlements/holds` sets units aside, `POST /entitlements/holds/{id}/confirm` turns them into
usage (the same or fewer), `POST /entitlements/holds/{id}/release` gives them back, `GET /entitlements/holds/{id}`
reads one, and `POST /entitlements/holds/{id}/usage` records usage against it as it goes (a lease: units used
in the tenant's process, reported in batches). `{id}` is the tenant's own hold id. Every answer but the usage
report's: `{allowed, hold, entitlement, duplicate?}`.
"""

from typing import Any, cast

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.formulas import NAME
from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.serializers import StrictSerializer
from entitlements.apis.check import CheckOutput
from entitlements.apis.params import MAX_ID_LENGTH, MAX_QUANTITY
from entitlements.apis.usage import DimensionsField, UsageCostOutput, _dimensions_parse
from entitlements.models import Hold
from entitlements.selectors import hold_exists
from entitlements.services.hold_usage import hold_usage
from entitlements.services.holds import (
    DEFAULT_HOLD_SECONDS,
    MAX_HOLD_SECONDS,
    HoldOutcome,
    hold_confirm,
    hold_get,
    hold_place,
    hold_release,
)
from projects.authentication import request_project


class HoldCallOutput(serializers.Serializer[Any]):
    model = serializers.CharField(allow_null=True)
    dimensions = serializers.DictField(child=serializers.IntegerField(), source="values")
    units = serializers.IntegerField(help_text="What the feature's usage formula made of them.")
    cost = UsageCostOutput(
        allow_null=True, help_text="What they cost by your cost table; null when none priced them."
    )


def _call_body(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    priced = stored.get("cost_micros") is not None and "cost_table" in stored
    return {
        "model": stored["model"],
        "dimensions": stored["values"],
        "units": stored["units"],
        "cost": (
            {
                "micros": stored["cost_micros"],
                "currency": stored["currency"],
                "cost_table": stored["cost_table"],
            }
            if priced
            else None
        ),
    }


class HoldOutput(serializers.Serializer[Any]):
    id = serializers.CharField(source="hold_id", help_text="Your id for the hold.")
    object = serializers.CharField(default="entitlement_hold")
    customer = serializers.CharField(source="customer.external_id")
    feature = serializers.CharField(source="feature.key")
    quantity = serializers.IntegerField(help_text="Units held.")
    consumed = serializers.IntegerField(help_text="Units reported as used against the hold so far.")
    confirmed = serializers.IntegerField(
        allow_null=True, help_text="Units the confirm kept as usage (those reported included)."
    )
    status = serializers.ChoiceField(choices=Hold.Status.choices)
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(
        allow_null=True, help_text="When it was confirmed, released or expired."
    )
    estimate = serializers.SerializerMethodField(
        help_text="A model call's hold: the estimate it was placed with (its units are `quantity`); else null."
    )
    actual = serializers.SerializerMethodField(
        help_text="A model call's confirm: what the call used, priced; else null."
    )
    overrun = serializers.IntegerField(
        help_text="Units the confirmed call used beyond the hold, recorded now as a usage event of their own (id: "
        "Tollgate's id for the hold + `.overrun`; `properties.hold`: yours)."
    )

    @extend_schema_field(HoldCallOutput(allow_null=True))
    def get_estimate(self, hold: Hold) -> dict[str, Any] | None:
        return _call_body((hold.dimensions or {}).get("estimate"))

    @extend_schema_field(HoldCallOutput(allow_null=True))
    def get_actual(self, hold: Hold) -> dict[str, Any] | None:
        return _call_body((hold.dimensions or {}).get("confirmed"))


class HoldAnswerOutput(serializers.Serializer[Any]):
    allowed = serializers.BooleanField(
        help_text="false: the limit or balance refused the hold; nothing recorded."
    )
    hold = HoldOutput(allow_null=True)
    entitlement = CheckOutput(
        help_text="The feature's check now (for one more unit; a refused hold: its units)."
    )
    duplicate = serializers.BooleanField(required=False, help_text="true when this call was made before.")


def _call(data: Any, quantity: int | None) -> tuple[str | None, dict[str, int]] | None:
    """A model call's `model` and `dimensions`, given instead of `quantity` (400 `parameter_conflict` with it)."""
    model, dimensions = _dimensions_parse(data if isinstance(data, dict) else {}, lambda name: name)
    if dimensions is None:
        return None
    if quantity is not None:
        raise InvalidRequest(
            "quantity: give `quantity` or `dimensions`, not both (the feature's formula makes the quantity of the "
            "dimensions).",
            code="parameter_conflict",
            param="quantity",
        )
    return model, dimensions


def _model_field() -> serializers.RegexField:
    return serializers.RegexField(
        NAME.pattern,
        max_length=100,
        required=False,
        allow_null=True,
        help_text="The model the call uses, with `dimensions`.",
    )


def _render(outcome: HoldOutcome) -> Response:
    body: dict[str, Any] = {
        "allowed": outcome.allowed,
        "hold": HoldOutput(outcome.hold).data if outcome.hold is not None else None,
        "entitlement": outcome.entitlement,
    }
    if outcome.duplicate:
        body["duplicate"] = True
    return Response(body)


class HoldCreateApi(BaseApi):
    class InputSerializer(StrictSerializer):
        id = serializers.CharField(max_length=MAX_ID_LENGTH, help_text="Your idempotency id for the hold.")
        customer = serializers.CharField(max_length=MAX_ID_LENGTH)
        feature = serializers.CharField(max_length=100, help_text="A metered, credits or allocation feature.")
        quantity = serializers.IntegerField(
            min_value=1,
            max_value=MAX_QUANTITY,
            required=False,
            help_text="Units to hold; required unless the hold gives a model call's `dimensions`.",
        )
        model = _model_field()
        dimensions = DimensionsField(
            required=False,
            allow_null=True,
            help_text="Instead of `quantity`, for a feature with a usage formula: a model call's estimated "
            'dimensions (`{"input_tokens": 1200, "output_tokens": 800}`, from the prompt\'s size); the hold '
            "holds the units the formula makes of them now. 400 as a usage event's dimensions.",
        )
        expires_in = serializers.IntegerField(
            min_value=1,
            max_value=MAX_HOLD_SECONDS,
            default=DEFAULT_HOLD_SECONDS,
            help_text=f"Seconds until the hold expires and its units go back (default {DEFAULT_HOLD_SECONDS}, at "
            "most 24 h).",
        )
        entity = serializers.CharField(
            max_length=MAX_ID_LENGTH,
            required=False,
            allow_null=True,
            help_text="One of the customer's entities, for a metered feature with a limit per entity: the hold "
            "takes its units on the entity's limit as well as the account's, and gives back to both; for a "
            "credits feature whose entities hold credits of their own: it sets aside the entity's first, then "
            "the account's, and gives each back to the lot it came from.",
        )

    @extend_schema(
        operation_id="entitlements_holds_create",
        summary="Hold units",
        description=(
            "Sets `quantity` units of a `metered`, `credits` or `allocation` feature aside for the customer, "
            "in one atomic step under the same limits as a consume: held units count against the limit (the "
            "check's `held`), held credits leave the balance. When the limit or balance refuses them all, "
            "nothing is recorded and the answer is still 200 with `allowed: false`. The same `id` again "
            "answers the stored hold with `duplicate: true`; 409 `idempotency_id_reused` for another body. "
            "Every hold ends confirmed, released or expired (a sweep gives back expired holds within 30 s). "
            "A model call's hold gives its estimated `model` and `dimensions` instead of `quantity` (a retry is "
            "the same hold if it names the same call, whatever it costs now). "
            "400 `feature_not_holdable`; with `entity`, `unknown_entity` or `entity_not_counted`; with "
            "`dimensions`, `feature_has_no_formula`, `unknown_dimension`, `model_not_priced`, "
            "`usage_too_large`, `parameter_conflict`."
        ),
        request=InputSerializer,
        responses=HoldAnswerOutput,
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        call = _call(request.data, data.get("quantity"))
        if call is None and data.get("quantity") is None:
            raise InvalidRequest(
                "quantity: This field is required.", code="parameter_missing", param="quantity"
            )
        return _render(
            hold_place(
                project=request_project(request),
                hold_id=data["id"],
                external_id=data["customer"],
                feature_key=data["feature"],
                quantity=data.get("quantity"),
                expires_in=data["expires_in"],
                entity=data.get("entity"),
                model=call[0] if call else None,
                dimensions=call[1] if call else None,
            )
        )


class HoldDetailApi(BaseApi):
    tenant_lookup = {"hold_id": Hold}

    @extend_schema(
        operation_id="entitlements_holds_retrieve",
        summary="Read a hold",
        description="The hold and its feature's check now. 404 for an id the project never held.",
        responses=HoldAnswerOutput,
    )
    def get(self, request: Request, hold_id: str) -> Response:
        return _render(hold_get(project=request_project(request), hold_id=hold_id))


class HoldConfirmApi(BaseApi):
    tenant_lookup = {"hold_id": Hold}

    class InputSerializer(StrictSerializer):
        quantity = serializers.IntegerField(
            min_value=0,
            max_value=MAX_QUANTITY,
            required=False,
            help_text="Units used, at most the hold's (default: all of them); the rest go back.",
        )
        model = _model_field()
        dimensions = DimensionsField(
            required=False,
            allow_null=True,
            help_text="Instead of `quantity`, for a feature with a usage formula: what the model call used "
            '(`{"input_tokens": 1180, "output_tokens": 2400}`). Its units, priced now, become usage: at '
            "most the hold's, the rest given back; units beyond the hold are recorded as usage of their own "
            "(`overrun`; the call was made, so never refused).",
        )

    @extend_schema(
        operation_id="entitlements_holds_confirm",
        summary="Confirm a hold",
        description=(
            "Turns `quantity` of the held units into usage (one usage event, billed by a Stripe meter "
            "like a consume) and gives the rest back. The same confirm again answers `duplicate: true`. "
            "A model call's confirm gives its actual `model` and `dimensions` instead: the event carries them "
            "and their cost, and what the call used beyond the hold is recorded too (`overrun`). "
            "400 `confirm_exceeds_hold`, `hold_has_reports` (dimensions for a hold with usage reported), the "
            "dimensions' errors as at placing; 409 `hold_released`, `hold_expired` or `hold_confirmed` "
            "(another quantity or call), `idempotency_id_reused` (a usage event of yours has the overrun's id; "
            "nothing recorded)."
        ),
        request=InputSerializer,
        responses=HoldAnswerOutput,
    )
    def post(self, request: Request, hold_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data if isinstance(request.data, dict) else {})
        serializer.is_valid(raise_exception=True)
        quantity = serializer.validated_data.get("quantity")
        call = _call(request.data, quantity)
        return _render(
            hold_confirm(
                project=request_project(request),
                hold_id=hold_id,
                quantity=quantity,
                model=call[0] if call else None,
                dimensions=call[1] if call else None,
            )
        )


class HoldReleaseApi(BaseApi):
    tenant_lookup = {"hold_id": Hold}

    class InputSerializer(StrictSerializer):
        pass

    @extend_schema(
        operation_id="entitlements_holds_release",
        summary="Release a hold",
        description=(
            "Gives every held unit back. The same release again answers `duplicate: true`; 409 "
            "`hold_confirmed` or `hold_expired`."
        ),
        request=InputSerializer,
        responses=HoldAnswerOutput,
    )
    def post(self, request: Request, hold_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data if isinstance(request.data, dict) else {})
        serializer.is_valid(raise_exception=True)
        return _render(hold_release(project=request_project(request), hold_id=hold_id))


class HoldUsageOutput(serializers.Serializer[Any]):
    accepted = serializers.IntegerField(help_text="Events recorded now.")
    duplicates = serializers.IntegerField(help_text="Events whose id the project had already (counted once).")
    hold = HoldOutput()
    entitlement = CheckOutput()


class HoldUsageEventInput(StrictSerializer):
    id = serializers.CharField(max_length=MAX_ID_LENGTH, help_text="Your idempotency id for this use.")
    quantity = serializers.IntegerField(
        min_value=1,
        max_value=MAX_QUANTITY,
        required=False,
        help_text="Required unless the use gives a model call's `dimensions`.",
    )
    model = _model_field()
    dimensions = DimensionsField(
        required=False,
        allow_null=True,
        help_text="Instead of `quantity`, for a feature with a usage formula: what the model call used; its "
        "units are priced when reported, and the event stores them with their cost.",
    )


class HoldUsageApi(BaseApi):
    tenant_lookup = {"hold_id": Hold}

    class InputSerializer(StrictSerializer):
        events = serializers.ListField(child=HoldUsageEventInput(), min_length=1, max_length=1000)

    @extend_schema(
        operation_id="entitlements_holds_usage",
        summary="Report usage against a hold",
        description=(
            "Records uses made from an active hold (a lease: units taken once, used in your process, "
            "reported in batches): each event once, idempotent by its `id` like a consume; the new events' "
            "units stop being held and become used. All or nothing: events that use more than the hold has "
            "left → 400 `usage_exceeds_hold`, nothing recorded; the same id twice in one report → 400; an id "
            "already used for another customer, feature or quantity → 409 `idempotency_id_reused`, nothing "
            "recorded (as a consume). An ended hold → 409 `hold_expired`, `hold_released` or `hold_confirmed`."
        ),
        request=InputSerializer,
        responses=HoldUsageOutput,
    )
    def post(self, request: Request, hold_id: str) -> Response:
        hold_exists(project=request_project(request), hold_id=hold_id)  # another project's id: 404, not 400
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        events: list[tuple[str, int]] = []
        calls: dict[str, tuple[str | None, dict[str, int]]] = {}
        for index, event in enumerate(serializer.validated_data["events"]):
            call = _hold_use_call(
                cast(dict[str, Any], request.data)["events"][index], event.get("quantity"), f"events[{index}]"
            )
            if call is not None:
                calls[event["id"]] = call
            events.append((event["id"], event.get("quantity") or 0))
        outcome = hold_usage(
            project=request_project(request), hold_id=hold_id, events=events, calls=calls or None
        )
        return Response(
            {
                "accepted": outcome.accepted,
                "duplicates": outcome.duplicates,
                "hold": HoldOutput(outcome.hold).data,
                "entitlement": outcome.entitlement,
            }
        )


def _hold_use_call(
    raw: dict[str, Any], quantity: int | None, param: str
) -> tuple[str | None, dict[str, int]] | None:
    """A use's model call, or None for a use of `quantity` units (400 when it gives neither or both)."""

    def at(name: str) -> str:
        return f"{param}.{name}"

    model, dimensions = _dimensions_parse(raw, at)
    if dimensions is None and quantity is None:
        raise InvalidRequest(
            f"{at('quantity')}: This field is required.", code="parameter_missing", param=at("quantity")
        )
    if dimensions is not None and quantity is not None:
        raise InvalidRequest(
            f"{at('quantity')}: give `quantity` or `dimensions`, not both.",
            code="parameter_conflict",
            param=at("quantity"),
        )
    return (model, dimensions) if dimensions is not None else None
