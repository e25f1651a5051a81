"""`/payments`: the universal payment request, its status, refunds and cancel."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.apis.checkout import MAX_QUANTITY, _ItemSerializer
from billing.models import Payment
from billing.representations import (
    PaymentOutput,
    PaymentStatusOutput,
)
from billing.services.checkout import payment_submit
from billing.services.payment_closing import payment_cancel
from billing.services.payment_transitions import payment_refresh
from billing.services.refunds import payment_refund
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.idempotency import operation_of
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import MAX_LINE_ITEMS, CurrencyField, MetadataField, StrictSerializer, WebUrlField
from projects.authentication import request_project

# What a tenant may ask for: off-session payments are started by Tollgate itself (auto-recharge).
TENANT_FLOWS = [(Payment.Flow.CHECKOUT.value, "checkout"), (Payment.Flow.INTENT.value, "intent")]


class PaymentListCreateApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=255)
        price = serializers.CharField(required=False)
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)
        # Not empty: `minItems` in the schema (a ListField states it; a ListSerializer's min_length is not read).
        items = serializers.ListField(
            child=_ItemSerializer(),
            required=False,
            allow_empty=False,
            min_length=1,
            max_length=MAX_LINE_ITEMS,
        )
        amount = serializers.IntegerField(
            min_value=1, required=False, help_text="Minor units (with currency)."
        )
        currency = CurrencyField(required=False)
        description = serializers.CharField(max_length=500, required=False, allow_blank=True)
        type = serializers.ChoiceField(choices=Payment.Type.choices, required=False)
        flow = serializers.ChoiceField(choices=TENANT_FLOWS, required=False)
        reference = serializers.CharField(max_length=255, required=False)
        success_url = WebUrlField(required=False)
        cancel_url = WebUrlField(required=False)
        metadata = MetadataField(required=False)
        trial_days = serializers.IntegerField(min_value=0, max_value=730, required=False)
        automatic_tax = serializers.BooleanField(
            default=False,
            help_text="Checkout flow only: Stripe Tax as in the checkouts (a PaymentIntent has no automatic "
            "tax: 400 `automatic_tax_not_supported` with `flow: intent`).",
        )
        promotion_code = serializers.CharField(
            max_length=100, required=False, help_text="A promotion code to redeem (checkout flow only)."
        )
        allow_promotion_codes = serializers.BooleanField(
            required=False,
            default=False,
            help_text="Stripe's page asks for a code (checkout flow only). Needs the project's own Stripe "
            "account: on the platform's shared one it is 400 `promotion_codes_need_own_account` (pass the "
            "customer's code as `promotion_code` instead).",
        )

    @extend_schema(
        operation_id="payments_list",
        summary="List payments",
        description=(
            "The project's payments, newest first, filtered by `customer`, `status` or "
            "`reference`. Renewal invoices of subscriptions are payments too (`source: invoice`)."
        ),
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("customer", OpenApiTypes.STR),
            OpenApiParameter("status", {"type": "string", "enum": list(Payment.Status.values)}),
            OpenApiParameter("reference", OpenApiTypes.STR),
        ],
        responses=list_serializer(PaymentOutput, "PaymentList"),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        if (status_filter := params.get("status")) and status_filter not in Payment.Status.values:
            raise InvalidRequest(
                f"Unknown status {status_filter!r}.", code="invalid_parameter", param="status"
            )
        queryset = selectors.payment_search(
            project=request_project(request),
            customer=params.get("customer"),
            status=status_filter,
            reference=params.get("reference"),
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(PaymentOutput(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="payments_create",
        summary="Create a payment",
        description=(
            "The universal purchase: a price, several `items`, or a custom `amount` and "
            "`currency`, through Stripe Checkout (`flow: checkout`, answers `checkout_url`) or a "
            "PaymentIntent your page confirms (`flow: intent`, answers `client_secret` and "
            "`publishable_key`). The payment is created before its Stripe object; a retry with "
            "the same Idempotency-Key resumes it. `reference` (your order id) makes the call safe "
            "across keys: the same reference answers the same payment (200), whatever its status. "
            "Errors: 409 `reference_conflict` (same reference, different body), "
            "`already_subscribed`, `currency_mismatch`; 400 `redirect_not_allowed`, "
            "`currency_mixed`."
        ),
        request=InputSerializer,
        responses={200: PaymentOutput, 201: PaymentOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payment, created = payment_submit(
            project=request_project(request),
            customer=data["customer"],
            price=data.get("price"),
            quantity=data["quantity"],
            items=[(item["price"], item["quantity"]) for item in data["items"]] if "items" in data else None,
            amount=data.get("amount"),
            currency=data.get("currency"),
            description=data.get("description", ""),
            payment_type=data.get("type"),
            flow=data.get("flow"),
            reference=data.get("reference"),
            success_url=data.get("success_url", ""),
            cancel_url=data.get("cancel_url", ""),
            metadata=data.get("metadata"),
            trial_days=data.get("trial_days"),
            automatic_tax=data["automatic_tax"],
            idempotency_key=request.headers.get("Idempotency-Key", ""),
            promotion_code=data.get("promotion_code"),
            allow_promotion_codes=data["allow_promotion_codes"],
        )
        return Response(
            PaymentOutput(payment).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class PaymentDetailApi(BaseApi):
    tenant_lookup = {"payment_id": Payment}

    @extend_schema(
        operation_id="payments_retrieve",
        summary="Retrieve a payment",
        description=(
            "One payment with its status, amounts (minor units), refunded amount and the Stripe "
            "ids behind it."
        ),
        responses=PaymentOutput,
    )
    def get(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(project=request_project(request), payment_id=payment_id)
        return Response(PaymentOutput(payment_refresh(payment=payment)).data)


class PaymentStatusApi(BaseApi):
    tenant_lookup = {"payment_id": Payment}

    @extend_schema(
        operation_id="payments_status",
        summary="Read a payment's status",
        description=(
            "The light status read for pollers: `{id, status, amount_refunded}` as Tollgate holds "
            "them (kept current by Stripe's events), without asking Stripe. 404 for a payment of "
            "another project or an unknown id."
        ),
        responses=PaymentStatusOutput,
    )
    def get(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(project=request_project(request), payment_id=payment_id)
        return Response(PaymentStatusOutput(payment).data)


class PaymentRefundApi(BaseApi):
    tenant_lookup = {"payment_id": Payment}

    class InputSerializer(StrictSerializer):
        amount = serializers.IntegerField(
            min_value=1, required=False, help_text="Minor units; default: all that is left."
        )
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True)

    @extend_schema(
        operation_id="payments_refund",
        summary="Refund a payment",
        description=(
            "Refunds all of a paid payment, or `amount` of it, at Stripe, and records the refund "
            "(`refunded` or `partially_refunded`). Send an `Idempotency-Key`: a retry with the same key "
            "after any failure (a 5xx, a lost answer) continues the same refund — Stripe makes it once — "
            "and answers the payment as it now is; without a key every request is a refund of its own. "
            "Errors: 409 `payment_not_refundable` when it is not paid; 400 `invalid_amount` for more "
            "than what is left."
        ),
        request=InputSerializer,
        responses=PaymentOutput,
    )
    def post(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(project=request_project(request), payment_id=payment_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        operation = operation_of(request)
        payment = payment_refund(
            payment=payment,
            amount=serializer.validated_data.get("amount"),
            reason=serializer.validated_data.get("reason", ""),
            actor=actor_from_request(request),
            operation=f"api:{operation.identity}" if operation else "",
        )
        return Response(PaymentOutput(payment).data)


class PaymentCancelApi(BaseApi):
    tenant_lookup = {"payment_id": Payment}

    @extend_schema(
        operation_id="payments_cancel",
        summary="Cancel a payment",
        description=(
            "Cancels an open payment: its Checkout Session is expired (or its PaymentIntent "
            "canceled) at Stripe first; if Stripe says it was paid meanwhile, the payment is "
            "answered `succeeded` instead. 409 `payment_not_open` for a payment that is no longer "
            "open."
        ),
        request=None,
        responses=PaymentOutput,
    )
    def post(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(project=request_project(request), payment_id=payment_id)
        return Response(
            PaymentOutput(payment_cancel(payment=payment, actor=actor_from_request(request))).data
        )
