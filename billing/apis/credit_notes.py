"""`/credit_notes`: credit notes of the project's invoices, issued and voided at Stripe and mirrored from it."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.models import CreditNote, Invoice
from billing.representations import CreditNoteOutput
from billing.services.credit_notes import credit_note_create, credit_note_void
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.idempotency import operation_of
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import StrictSerializer
from projects.authentication import request_project

REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")


class CreditNoteLineInput(StrictSerializer):
    invoice_line = serializers.IntegerField(
        min_value=0, help_text="The index of the invoice line credited, in the invoice's `lines`."
    )
    quantity = serializers.IntegerField(
        min_value=1, required=False, help_text="How many of the line's units are credited."
    )
    amount = serializers.IntegerField(
        min_value=1, required=False, help_text="How much of the line is credited (minor units)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "quantity" in attrs and "amount" in attrs:
            raise serializers.ValidationError("Give a line's quantity or its amount, not both.")
        return attrs


class CreditNoteCreateApi(BaseApi):
    tenant_lookup = {"invoice_id": Invoice}

    class InputSerializer(StrictSerializer):
        amount = serializers.IntegerField(
            min_value=1, required=False, help_text="The amount credited (minor units), without lines."
        )
        lines = serializers.ListField(
            child=CreditNoteLineInput(), required=False, min_length=1, max_length=100
        )
        refund_amount = serializers.IntegerField(
            min_value=0, default=0, help_text="Given back to the payment method that paid the invoice."
        )
        credit_amount = serializers.IntegerField(
            min_value=0,
            default=0,
            help_text="Credited to the customer's Stripe balance (their next invoices).",
        )
        out_of_band_amount = serializers.IntegerField(
            min_value=0, default=0, help_text="Given back outside Stripe."
        )
        reason = serializers.ChoiceField(choices=REASONS, required=False)
        memo = serializers.CharField(
            max_length=500, required=False, allow_blank=True, help_text="Shown on the credit note."
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if ("amount" in attrs) == ("lines" in attrs):
                raise serializers.ValidationError("Give the credit note's amount or its lines (one of them).")
            return attrs

    @extend_schema(
        operation_id="credit_notes_create",
        summary="Credit an invoice",
        description=(
            "Issues a credit note of an open or paid invoice at Stripe, of an `amount` or of invoice `lines` (by "
            "quantity or amount). It first lowers what is still due on the invoice; what it credits beyond that "
            "is given back exactly as `refund_amount` (to the card) + `credit_amount` (the customer's balance) + "
            "`out_of_band_amount` (outside Stripe). Decided on Stripe's invoice as it is now; every attempt "
            "under one Idempotency-Key is one credit note at Stripe. The tenant event `credit_note.created` "
            "follows once. 409 `invoice_not_creditable` for a draft, void or uncollectible invoice; 400 "
            "`invalid_request` with Stripe's reason for amounts it refuses (more than the invoice has left, a "
            "split that does not add up)."
        ),
        request=InputSerializer,
        responses={201: CreditNoteOutput},
    )
    def post(self, request: Request, invoice_id: str) -> Response:
        invoice = selectors.invoice_get(project=request_project(request), invoice_id=invoice_id)
        serializer = self.InputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        note = credit_note_create(
            invoice=invoice,
            actor=actor_from_request(request),
            amount=data.get("amount"),
            lines=[dict(line) for line in data["lines"]] if "lines" in data else None,
            refund_amount=data["refund_amount"],
            credit_amount=data["credit_amount"],
            out_of_band_amount=data["out_of_band_amount"],
            reason=data.get("reason", ""),
            memo=data.get("memo", ""),
            operation=operation_of(request),
        )
        return Response(CreditNoteOutput(note).data, status=status.HTTP_201_CREATED)


class CreditNoteListApi(BaseApi):
    @extend_schema(
        operation_id="credit_notes_list",
        summary="List credit notes",
        description="The project's credit notes as mirrored, newest first, filtered by `invoice` or `customer`.",
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("invoice", OpenApiTypes.STR),
            OpenApiParameter("customer", OpenApiTypes.STR),
        ],
        responses=list_serializer(CreditNoteOutput, "CreditNoteList"),
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.credit_note_list(
            project=request_project(request),
            invoice=request.query_params.get("invoice"),
            customer=request.query_params.get("customer"),
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(CreditNoteOutput(rows, many=True).data, has_more))


class CreditNoteDetailApi(BaseApi):
    tenant_lookup = {"credit_note_id": CreditNote}

    @extend_schema(
        operation_id="credit_notes_retrieve",
        summary="Retrieve a credit note",
        description="One credit note with its amounts in minor units, how they were given back, and its lines.",
        responses=CreditNoteOutput,
    )
    def get(self, request: Request, credit_note_id: str) -> Response:
        note = selectors.credit_note_get(project=request_project(request), credit_note_id=credit_note_id)
        return Response(CreditNoteOutput(note).data)


class CreditNoteVoidInput(StrictSerializer):
    reason = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text="Recorded in the audit log."
    )


class CreditNoteVoidApi(BaseApi):
    tenant_lookup = {"credit_note_id": CreditNote}

    @extend_schema(
        operation_id="credit_notes_void",
        summary="Void a credit note",
        description=(
            "Voids an issued credit note at Stripe (final): the invoice owes again what it took off, and a "
            "balance credit is taken back. The tenant event `credit_note.voided` follows once. 409 "
            "`credit_note_not_voidable` for a void note, one that refunded money (a refund cannot be taken "
            "back), and one that lowered the amount due of an invoice that is no longer open."
        ),
        request=CreditNoteVoidInput,
        responses=CreditNoteOutput,
    )
    def post(self, request: Request, credit_note_id: str) -> Response:
        note = selectors.credit_note_get(project=request_project(request), credit_note_id=credit_note_id)
        serializer = CreditNoteVoidInput(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        voided = credit_note_void(
            credit_note=note,
            actor=actor_from_request(request),
            reason=serializer.validated_data.get("reason", ""),
            operation=operation_of(request),
        )
        return Response(CreditNoteOutput(voided).data)
