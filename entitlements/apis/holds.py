"""Holds: `POST /entitlements/holds` sets units aside, `POST /entitlements/holds/{id}/confirm` turns them into
usage (the same or fewer), `POST /entitlements/holds/{id}/release` gives them back, `GET /entitlements/holds/{id}`
reads one, and `POST /entitlements/holds/{id}/usage` records usage against it as it goes (a lease: units used
in the tenant's process, reported in batches). `{id}` is the tenant's own hold id. Every answer but the usage
report's: `{allowed, hold, entitlement, duplicate?}`.
"""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.base_api import BaseApi
from core.serializers import StrictSerializer
from entitlements.apis.check import CheckOutput
from entitlements.apis.params import MAX_ID_LENGTH, MAX_QUANTITY
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


class HoldAnswerOutput(serializers.Serializer[Any]):
    allowed = serializers.BooleanField(
        help_text="false: the limit or balance refused the hold; nothing recorded."
    )
    hold = HoldOutput(allow_null=True)
    entitlement = CheckOutput(
        help_text="The feature's check now (for one more unit; a refused hold: its units)."
    )
    duplicate = serializers.BooleanField(required=False, help_text="true when this call was made before.")


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
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)
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
            "400 `feature_not_holdable`; with `entity`, `unknown_entity` or `entity_not_counted`."
        ),
        request=InputSerializer,
        responses=HoldAnswerOutput,
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return _render(
            hold_place(
                project=request_project(request),
                hold_id=data["id"],
                external_id=data["customer"],
                feature_key=data["feature"],
                quantity=data["quantity"],
                expires_in=data["expires_in"],
                entity=data.get("entity"),
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

    @extend_schema(
        operation_id="entitlements_holds_confirm",
        summary="Confirm a hold",
        description=(
            "Turns `quantity` of the held units into usage (one usage event, billed by a Stripe meter "
            "like a consume) and gives the rest back. The same confirm again answers `duplicate: true`. "
            "400 `confirm_exceeds_hold`; 409 `hold_released`, `hold_expired` or `hold_confirmed` (another "
            "quantity)."
        ),
        request=InputSerializer,
        responses=HoldAnswerOutput,
    )
    def post(self, request: Request, hold_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data if isinstance(request.data, dict) else {})
        serializer.is_valid(raise_exception=True)
        return _render(
            hold_confirm(
                project=request_project(request),
                hold_id=hold_id,
                quantity=serializer.validated_data.get("quantity"),
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
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


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
        events = [(event["id"], event["quantity"]) for event in serializer.validated_data["events"]]
        outcome = hold_usage(project=request_project(request), hold_id=hold_id, events=events)
        return Response(
            {
                "accepted": outcome.accepted,
                "duplicates": outcome.duplicates,
                "hold": HoldOutput(outcome.hold).data,
                "entitlement": outcome.entitlement,
            }
        )
