"""Usage corrections: `POST /usage/corrections` (void or amend a usage event by its id) and
`GET /usage/corrections/{id}`."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.actors import actor_from_request
from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.serializers import StrictSerializer
from core.throttling import ApiKeyRateThrottle
from entitlements import selectors
from entitlements.apis.params import MAX_ID_LENGTH, MAX_QUANTITY
from entitlements.models import UsageCorrection
from entitlements.services.usage_corrections import usage_correct, usage_correction_body
from projects.authentication import request_project

# The corrections a tenant makes; Tollgate's own (`allowance`) are never answered.
TENANT_ACTIONS = [
    (action.value, action.label) for action in (UsageCorrection.Action.VOID, UsageCorrection.Action.AMEND)
]


class UsageCorrectionInput(StrictSerializer):
    id = serializers.CharField(
        max_length=MAX_ID_LENGTH,
        help_text="Your idempotency id for this correction: the same id again is "
        "answered with the correction it made (200), never a second one.",
    )
    event = serializers.CharField(max_length=MAX_ID_LENGTH, help_text="The usage event's id (yours).")
    action = serializers.ChoiceField(
        choices=TENANT_ACTIONS,
        help_text="`void`: the event counts 0 from now on; `amend`: it counts `quantity`.",
    )
    quantity = serializers.IntegerField(
        min_value=0,
        max_value=MAX_QUANTITY,
        required=False,
        help_text="amend: the event's corrected quantity (required); never with `void`.",
    )
    reason = serializers.CharField(max_length=500, help_text="Why, for the audit log.")
    invoiced = serializers.ChoiceField(
        choices=["refuse", "credit"],
        default="refuse",
        help_text="Where Stripe has invoiced the event already (its period ended, or Stripe received it more than 24 "
        "hours ago): `refuse` (409 `usage_invoiced`, nothing changes) or `credit`: corrected here, and the "
        "customer's next invoice adjusted by what the corrected units change of what their metered price billed "
        "(`invoice_adjustment`; negative, a credit, for fewer units).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["action"] == UsageCorrection.Action.AMEND and "quantity" not in attrs:
            raise InvalidRequest(
                "quantity: required to amend an event.", code="parameter_missing", param="quantity"
            )
        if attrs["action"] == UsageCorrection.Action.VOID and "quantity" in attrs:
            raise InvalidRequest(
                "quantity: a voided event counts 0; send no quantity.",
                code="invalid_parameter",
                param="quantity",
            )
        return attrs


class UsageCorrectionMeterOutput(serializers.Serializer[Any]):
    status = serializers.ChoiceField(
        choices=UsageCorrection.Meter.choices,
        help_text="`none`: nothing to correct at Stripe (the event never reached its meter: the corrected quantity "
        "is what gets reported); `pending`: Stripe's meter is being corrected; `adjusted`: it was (the meter "
        "event canceled and, for an amount left, a replacement sent); `invoiced`: Stripe had invoiced it, its meter is "
        "left as it billed and the next invoice is adjusted (`invoice_adjustment`).",
    )
    adjusted_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class UsageCorrectionInvoiceAdjustmentOutput(serializers.Serializer[Any]):
    amount = serializers.IntegerField(help_text="Minor units on the next invoice; negative: a credit.")
    currency = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["none", "pending", "created"],
        help_text="`created` once the invoice item is at Stripe (`invoice_item`); `none` when nothing changes.",
    )
    invoice_item = serializers.CharField(allow_null=True, help_text="Stripe's pending invoice item (`ii_…`).")


class UsageCorrectionCreditsOutput(serializers.Serializer[Any]):
    feature = serializers.CharField(allow_null=True, help_text="The credits feature that paid (its key).")
    covered_before = serializers.IntegerField(help_text="The event's units paid from credits before.")
    covered_after = serializers.IntegerField(
        help_text="The event's units paid from credits after (an event's covered units are its last)."
    )
    returned = serializers.IntegerField(
        help_text="Credits given back to the lots they came from (negative: taken for units added)."
    )
    later_units = serializers.IntegerField(
        help_text="Units of the period's later events that credits paid and the allowance a correction down "
        "freed pays now, the latest first (as if the event had been so from the start): their credits go back "
        "(ledger entries `correction` naming each event) and Stripe's meter is sent their units when it had not "
        "been sent them yet. 0 otherwise."
    )
    later_returned = serializers.IntegerField(help_text="The credits given back for `later_units`.")


class UsageCorrectionOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="usage_correction")
    event = serializers.CharField()
    customer = serializers.CharField()
    feature = serializers.CharField()
    action = serializers.ChoiceField(choices=TENANT_ACTIONS)
    quantity_before = serializers.IntegerField()
    quantity_after = serializers.IntegerField()
    period_start = serializers.DateTimeField(allow_null=True, help_text="The period the event counts in.")
    reason = serializers.CharField()
    thresholds_uncrossed = serializers.ListField(
        child=serializers.CharField(),
        help_text="Usage thresholds the event had crossed that the corrected use no longer reaches ('0.8', '1.0', "
        "your threshold's id, or 'cap'); each stays crossed for the period (not announced again).",
    )
    credits = UsageCorrectionCreditsOutput(
        allow_null=True,
        help_text="Where a credits waterfall paid for some of the event's units, or pays for units added: what "
        "moved of the credits (ledger entries `correction` naming the event); null otherwise.",
    )
    stripe_meter = UsageCorrectionMeterOutput()
    invoice_adjustment = UsageCorrectionInvoiceAdjustmentOutput(
        allow_null=True,
        help_text="Where Stripe had invoiced the event and `invoiced` was `credit`: the customer's next invoice "
        "adjustment; null otherwise.",
    )
    created_at = serializers.DateTimeField()


class UsageCorrectionsApi(BaseApi):
    throttle_classes = [ApiKeyRateThrottle]

    @extend_schema(
        operation_id="usage_corrections_create",
        summary="Correct a usage event",
        description=(
            "Voids or amends a recorded usage event by its id, with a `reason` for the audit log. Everything "
            "derived from it follows at once: the period's usage (counters, an entity's use, rolling windows, "
            "the entitlement answers, `GET /usage`), the credits a credits waterfall paid (`credits`), the thresholds (`thresholds_uncrossed`), `as_of` answers from now on; and "
            "Stripe's meter, in the background (`stripe_meter`). Announced as `usage.corrected`. The same `id` "
            "again answers 200 with the correction it made. Errors: 404 for an unknown event; 409 "
            "`usage_invoiced` (Stripe invoiced its period, or received it more than 24 hours ago: its meter can "
            "no longer be corrected; nothing changed — unless `invoiced` is `credit`: then the next invoice is "
            "adjusted, `invoice_adjustment`), `usage_event_voided`, `correction_unsupported` (a hold's "
            "report, or not metered usage; or held units above the corrected use), `idempotency_id_reused`; 400 "
            "`correction_unchanged`."
        ),
        request=UsageCorrectionInput,
        responses={200: UsageCorrectionOutput, 201: UsageCorrectionOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = UsageCorrectionInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = request_project(request)
        correction, made = usage_correct(
            project=project,
            actor=actor_from_request(request),
            correction_id=data["id"],
            event_id=data["event"],
            action=data["action"],
            quantity=data.get("quantity"),
            reason=data["reason"],
            invoiced=data["invoiced"],
        )
        found = selectors.usage_correction_get(project=project, correction_id=correction.correction_id)
        return Response(
            UsageCorrectionOutput(_body(found)).data,
            status=status.HTTP_201_CREATED if made else status.HTTP_200_OK,
        )


class UsageCorrectionDetailApi(BaseApi):
    tenant_lookup = {"correction_id": UsageCorrection}

    @extend_schema(
        operation_id="usage_corrections_retrieve",
        summary="Retrieve a usage correction",
        description="A correction by your id, with how far Stripe's meter is corrected. 404 for an unknown id.",
        responses=UsageCorrectionOutput,
    )
    def get(self, request: Request, correction_id: str) -> Response:
        found = selectors.usage_correction_get(project=request_project(request), correction_id=correction_id)
        return Response(UsageCorrectionOutput(_body(found)).data)


def _body(correction: UsageCorrection) -> dict[str, Any]:
    return usage_correction_body(
        correction, customer=correction.customer.external_id, feature=correction.feature.key
    )
