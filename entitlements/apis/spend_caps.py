"""A customer's own spend cap on a metered feature's overage, or their account cap across their metered
features: `POST /entitlements/spend_caps` (set: created or replaced), `GET /entitlements/spend_caps?customer=`,
`DELETE /entitlements/spend_caps/{id}`. Every change is audited with the key and the reason."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.rules import AT_CAP, MAX_FEATURE_AMOUNT
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.pagination import list_body, list_serializer
from core.serializers import StrictSerializer
from entitlements.apis.params import CUSTOMER, CUSTOMER_PARAMETER, MAX_ID_LENGTH, ReasonInput, reason_parse
from entitlements.models import SpendCap
from entitlements.selectors import spend_caps
from entitlements.services.spend_caps import spend_cap_delete, spend_cap_set
from projects.authentication import request_project

CAP_HELP = (
    'How far use may go past the limit: {"units": n} (units past the limit) or {"amount": m} (the most, in '
    'minor units, the feature\'s metered price bills for the period), with "at_cap": "block" (use is '
    'refused there, the default) or "alert" (use goes on; `usage.cap_reached` announces it once a period).'
)


ACCOUNT_CAP_HELP = (
    'An account cap (no feature) is {"amount": m, "currency": "usd"}: the most the customer\'s metered prices '
    "in that currency bill together for the period; past it, use past a feature's limit is refused "
    '("at_cap": "block") or goes on and `usage.cap_reached` (`scope: "account"`) announces it once a period '
    '("alert"). Use within a feature\'s limit is never refused by it.'
)


class SpendCapOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="spend_cap")
    customer = serializers.CharField(source="customer.external_id")
    feature = serializers.CharField(
        source="feature.key", allow_null=True, help_text="The metered feature; null for the account cap."
    )
    cap = serializers.JSONField(help_text=CAP_HELP + " " + ACCOUNT_CAP_HELP)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    deleted = serializers.BooleanField(default=False, help_text="true in the answer of its deletion.")


class CapInput(StrictSerializer):
    units = serializers.IntegerField(
        min_value=0, max_value=MAX_FEATURE_AMOUNT, required=False, help_text="Units past the limit."
    )
    amount = serializers.IntegerField(
        min_value=0,
        max_value=MAX_FEATURE_AMOUNT,
        required=False,
        help_text="The most the metered price bills for the period, in its minor units.",
    )
    currency = serializers.RegexField(
        r"^[A-Za-z]{3}$",
        required=False,
        help_text="The account cap's currency (three-letter ISO code); only there.",
    )
    at_cap = serializers.ChoiceField(
        choices=list(AT_CAP), required=False, help_text="block (the default) or alert."
    )


class SpendCapsApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=MAX_ID_LENGTH)
        feature = serializers.CharField(
            max_length=100,
            required=False,
            allow_null=True,
            help_text="A metered feature's key; omitted (or null), the customer's account cap.",
        )
        cap = CapInput(
            help_text=CAP_HELP + " Exactly one of `units` and `amount`. " + ACCOUNT_CAP_HELP,
        )
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True)

    @extend_schema(
        operation_id="entitlements_spend_caps_set",
        summary="Set a customer's spend cap",
        description=(
            "The customer's own spend cap on a `metered` feature, in place of their plan's: it bounds the use "
            "past the limit where the plan allows overage. Without `feature`, the customer's account cap: one "
            "amount across all their metered features' prices in its currency. 201 when new, 200 when it "
            "replaced theirs. 400 `feature_not_metered`, `invalid_parameter` (the cap's shape), "
            "`cap_below_usage` (the customer already used more this period than the cap allows; nothing "
            "changed)."
        ),
        request=InputSerializer,
        responses={201: SpendCapOutput, 200: SpendCapOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        cap, created = spend_cap_set(
            project=request_project(request),
            external_id=data["customer"],
            feature_key=data.get("feature"),
            cap=dict(data["cap"]),
            actor=actor_from_request(request),
            reason=data.get("reason", ""),
        )
        cap = spend_caps(project=request_project(request)).get(pk=cap.pk)
        return Response(
            SpendCapOutput(cap).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(
        operation_id="entitlements_spend_caps_list",
        summary="List a customer's spend caps",
        description=(
            "The customer's own spend caps, one per feature at most and one account cap (`feature` null), "
            "oldest first."
        ),
        parameters=[CUSTOMER_PARAMETER],
        responses=list_serializer(SpendCapOutput, "SpendCapList"),
    )
    def get(self, request: Request) -> Response:
        external_id = CUSTOMER.parse(request.query_params)
        rows = spend_caps(project=request_project(request), external_id=external_id)
        return Response(list_body(SpendCapOutput(rows, many=True).data, has_more=False))


class SpendCapDeleteApi(BaseApi):
    tenant_lookup = {"cap_id": SpendCap}

    @extend_schema(
        operation_id="entitlements_spend_caps_delete",
        summary="Remove a customer's spend cap",
        description=(
            "The customer's plan's cap applies again. Audited with the `reason` given (at most 500 characters; "
            "400 for a longer one or another field, nothing removed). 404 for an id of another project."
        ),
        request=ReasonInput,
        responses={200: SpendCapOutput},
    )
    def delete(self, request: Request, cap_id: str) -> Response:
        cap = spend_cap_delete(
            project=request_project(request),
            cap_id=cap_id,
            actor=actor_from_request(request),
            reason=reason_parse(request),
        )
        cap.deleted = True  # type: ignore[attr-defined]
        return Response(SpendCapOutput(cap).data)
