"""`/invoices`: the project's invoices, mirrored from Stripe."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.models import Invoice
from billing.representations import InvoiceOutput
from core.base_api import BaseApi
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
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
