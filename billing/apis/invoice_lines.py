"""`/invoices/{id}/lines`: a draft invoice's lines edited at Stripe before it is finalized (added, changed,
removed)."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.apis.invoices import CorrectionInput
from billing.models import Invoice
from billing.representations import InvoiceOutput
from billing.services.invoice_lines import invoice_line_add, invoice_line_remove, invoice_line_update
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.idempotency import operation_of
from projects.authentication import request_project

# Stripe takes amounts of 8 digits at most, either way.
MAX_LINE_AMOUNT = 99_999_999


def _amount(*, required: bool) -> serializers.IntegerField:
    return serializers.IntegerField(
        required=required,
        min_value=-MAX_LINE_AMOUNT,
        max_value=MAX_LINE_AMOUNT,
        help_text="The line's amount in minor units of the invoice's currency; negative: a credit. Not 0.",
    )


def _not_zero(value: int) -> int:
    if value == 0:
        raise serializers.ValidationError("A line's amount is not 0: remove the line instead.")
    return value


class InvoiceLineCreateApi(BaseApi):
    tenant_lookup = {"invoice_id": Invoice}

    class InputSerializer(CorrectionInput):
        amount = _amount(required=True)
        description = serializers.CharField(max_length=500, help_text="Shown on the invoice.")

        def validate_amount(self, value: int) -> int:
            return _not_zero(value)

    @extend_schema(
        operation_id="invoices_lines_create",
        summary="Add a line to a draft invoice",
        description=(
            "Adds a line of an `amount` (minor units of the invoice's currency; negative: a credit) to a draft "
            "invoice at Stripe, as an invoice item on the draft, before it is finalized. Decided on Stripe's "
            "invoice as it is now; retried with its Idempotency-Key, one line. Answers the invoice (201) with "
            "its new totals and lines. 409 `invoice_not_draft` once the invoice is finalized (correct it with a "
            "credit note then)."
        ),
        request=InputSerializer,
        responses={201: InvoiceOutput},
    )
    def post(self, request: Request, invoice_id: str) -> Response:
        invoice = selectors.invoice_get(project=request_project(request), invoice_id=invoice_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        edited = invoice_line_add(
            invoice=invoice,
            actor=actor_from_request(request),
            amount=data["amount"],
            description=data["description"],
            reason=data.get("reason", ""),
            operation=operation_of(request),
        )
        return Response(InvoiceOutput(edited).data, status=status.HTTP_201_CREATED)


class InvoiceLineDetailApi(BaseApi):
    tenant_lookup = {"invoice_id": Invoice, "line_id": None}

    class UpdateSerializer(CorrectionInput):
        amount = _amount(required=False)
        description = serializers.CharField(max_length=500, required=False, help_text="Shown on the invoice.")

        def validate_amount(self, value: int) -> int:
            return _not_zero(value)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if "amount" not in attrs and "description" not in attrs:
                raise serializers.ValidationError("Give the line's new amount, its description, or both.")
            return attrs

    @extend_schema(
        operation_id="invoices_lines_update",
        summary="Change a draft invoice's line",
        description=(
            "Changes the `amount` and/or `description` of a draft's line of an invoice item at Stripe (the line "
            "keeps its id and place); retried with its Idempotency-Key, one change. Answers the invoice. 404 "
            "`invoice_line_not_found`; 409 `invoice_line_not_editable` for a subscription's own line (it follows "
            "the subscription), `invoice_not_draft` once the invoice is finalized."
        ),
        request=UpdateSerializer,
        responses=InvoiceOutput,
    )
    def post(self, request: Request, invoice_id: str, line_id: str) -> Response:
        invoice = selectors.invoice_get(project=request_project(request), invoice_id=invoice_id)
        serializer = self.UpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        edited = invoice_line_update(
            invoice=invoice,
            line_id=line_id,
            actor=actor_from_request(request),
            amount=data.get("amount"),
            description=data.get("description"),
            reason=data.get("reason", ""),
            operation=operation_of(request),
        )
        return Response(InvoiceOutput(edited).data)

    @extend_schema(
        operation_id="invoices_lines_delete",
        summary="Remove a draft invoice's line",
        description=(
            "Removes a draft's line of an invoice item at Stripe (the invoice item is deleted); retried with its "
            "Idempotency-Key, one removal (a retry whose first attempt removed it answers the invoice). Answers "
            "the invoice. 404 `invoice_line_not_found`; 409 `invoice_line_not_editable` for a subscription's own "
            "line, `invoice_not_draft` once the invoice is finalized."
        ),
        request=CorrectionInput,
        responses={200: InvoiceOutput},
    )
    def delete(self, request: Request, invoice_id: str, line_id: str) -> Response:
        invoice = selectors.invoice_get(project=request_project(request), invoice_id=invoice_id)
        serializer = CorrectionInput(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        edited = invoice_line_remove(
            invoice=invoice,
            line_id=line_id,
            actor=actor_from_request(request),
            reason=serializer.validated_data.get("reason", ""),
            operation=operation_of(request),
        )
        return Response(InvoiceOutput(edited).data)
