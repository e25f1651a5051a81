"""`/invoices`: the project's invoices, mirrored from Stripe, and their corrections at Stripe (void, mark
uncollectible)."""

from collections.abc import Callable

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.models import Invoice
from billing.representations import InvoiceOutput
from billing.services.invoice_corrections import invoice_mark_uncollectible, invoice_void
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.idempotency import operation_of
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import StrictSerializer
from projects.authentication import request_project


class InvoiceListApi(BaseApi):
    @extend_schema(
        operation_id="invoices_list",
        summary="List invoices",
        description=(
            "The project's Stripe invoices as mirrored, newest first, filtered by `customer` or `status`."
        ),
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("customer", OpenApiTypes.STR),
            OpenApiParameter("status", OpenApiTypes.STR),
        ],
        responses=list_serializer(InvoiceOutput, "InvoiceList"),
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.invoice_list(
            project=request_project(request),
            customer=request.query_params.get("customer"),
            status=request.query_params.get("status"),
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(InvoiceOutput(rows, many=True).data, has_more))


class InvoiceDetailApi(BaseApi):
    tenant_lookup = {"invoice_id": Invoice}

    @extend_schema(
        operation_id="invoices_retrieve",
        summary="Retrieve an invoice",
        description=(
            "One invoice with its totals in minor units, lines, and Stripe's hosted page and PDF links."
        ),
        responses=InvoiceOutput,
    )
    def get(self, request: Request, invoice_id: str) -> Response:
        invoice = selectors.invoice_get(project=request_project(request), invoice_id=invoice_id)
        return Response(InvoiceOutput(invoice).data)


class CorrectionInput(StrictSerializer):
    reason = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text="Recorded in the audit log."
    )


class InvoiceVoidApi(BaseApi):
    tenant_lookup = {"invoice_id": Invoice}

    @extend_schema(
        operation_id="invoices_void",
        summary="Void an invoice",
        description=(
            "Voids an open or uncollectible invoice at Stripe: it is no longer owed and Stripe stops collecting "
            "it (final). Decided on Stripe's invoice as it is now; retried with its Idempotency-Key, one write. "
            "Answers the invoice as voided; the tenant event `invoice.voided` follows once. 409 "
            "`invoice_not_voidable` for a draft, paid or void invoice (a paid one is refunded instead)."
        ),
        request=CorrectionInput,
        responses=InvoiceOutput,
    )
    def post(self, request: Request, invoice_id: str) -> Response:
        return _corrected(request, invoice_id, invoice_void)


class InvoiceMarkUncollectibleApi(BaseApi):
    tenant_lookup = {"invoice_id": Invoice}

    @extend_schema(
        operation_id="invoices_mark_uncollectible",
        summary="Mark an invoice uncollectible",
        description=(
            "Marks an open invoice uncollectible at Stripe (a bad debt: Stripe stops its retries; it can still "
            "be paid or voided). Answers the invoice; the tenant event `invoice.marked_uncollectible` follows "
            "once. 409 `invoice_not_open` for any other status."
        ),
        request=CorrectionInput,
        responses=InvoiceOutput,
    )
    def post(self, request: Request, invoice_id: str) -> Response:
        return _corrected(request, invoice_id, invoice_mark_uncollectible)


def _corrected(request: Request, invoice_id: str, correct: Callable[..., Invoice]) -> Response:
    """One of the project's invoices corrected at Stripe by `correct` (a service of invoice_corrections)."""
    invoice = selectors.invoice_get(project=request_project(request), invoice_id=invoice_id)
    serializer = CorrectionInput(data=request.data or {})
    serializer.is_valid(raise_exception=True)
    corrected = correct(
        invoice=invoice,
        actor=actor_from_request(request),
        reason=serializer.validated_data.get("reason", ""),
        operation=operation_of(request),
    )
    return Response(InvoiceOutput(corrected).data)
