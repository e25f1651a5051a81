"""`/customers/{external_id}/export` and `/customers/{external_id}/erase`: a person's data requests (issue #29)."""

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from backoffice.services.customer_erase import customer_erase
from backoffice.services.customer_export import customer_export, export_kinds
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.serializers import StrictSerializer
from customers.models import Customer
from customers.representations import CustomerOutput
from projects.authentication import request_project

CustomerExportOutput = type(
    "CustomerExportOutput",
    (serializers.Serializer,),
    {
        "object": serializers.CharField(default="customer_export"),
        "exported_at": serializers.DateTimeField(),
        "customer": CustomerOutput(),
        **{
            kind: serializers.ListField(
                child=serializers.DictField(), help_text=f"Every row of this kind ({description})."
            )
            for kind, description in export_kinds().items()
        },
    },
)


class CustomerErasureOutput(serializers.Serializer[Any]):
    object = serializers.CharField(default="customer_erasure")
    id = serializers.CharField(help_text="Our id of the customer (its row stays, without the person).")
    customer = serializers.CharField(
        help_text="What now stands for your user id on the customer's payments, subscriptions and invoices: "
        "random, linked to nothing."
    )
    erased_at = serializers.DateTimeField()
    stripe_customer_deleted = serializers.BooleanField(
        help_text="Whether a Stripe customer was deleted (false: the customer never reached Stripe)."
    )
    rows_scrubbed = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows rewritten, per kind of store."
    )


class CustomerExportApi(BaseApi):
    tenant_lookup = {"customer_id": Customer}

    @extend_schema(
        operation_id="customers_export",
        summary="Export a customer's data",
        description=(
            "Every row Tollgate keeps keyed to the customer, in one JSON document grouped by kind, in the API's "
            "representations where it has one (payments, checkout sessions, subscriptions, invoices, events); "
            "other rows with their own fields. Streamed: no paging and no cap, memory stays bounded whatever "
            "the history. Audited (`customer.exported`). 404 for an unknown or erased customer."
        ),
        responses=CustomerExportOutput,
    )
    def get(self, request: Request, customer_id: str) -> StreamingHttpResponse:
        chunks = customer_export(
            project=request_project(request), external_id=customer_id, actor=actor_from_request(request)
        )
        response = StreamingHttpResponse(chunks, content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="customer-export.json"'
        return response


class CustomerEraseApi(BaseApi):
    tenant_lookup = {"customer_id": Customer}

    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(
            max_length=1000, help_text="Why (e.g. the request's reference); kept in the audit log."
        )

    class LenientInputSerializer(StrictSerializer):
        """What is parsed: a missing or blank reason is the service's 400 (`reason_required`), after the
        customer is found, so another project's customer is a 404 whatever the body."""

        reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="customers_erase",
        summary="Erase a customer's personal data",
        description=(
            "Removes the person for good: the customer's email, name and metadata values, and the same "
            "values wherever Tollgate stored them (Stripe's events, tenant events and delivery answers, "
            "stored idempotent answers, audit rows, payments' descriptions and metadata), and deletes the "
            "Stripe customer. Amounts, currencies, invoice numbers, tax, statuses, dates and Stripe ids stay, "
            "so revenue and reconciliation are unchanged. Your user id is replaced by a random `customer` id on "
            "the money rows; afterwards the customer answers 404 everywhere (a new customer may take the user "
            "id). Refused with 409 `customer_has_live_subscriptions` while a subscription is live: cancel it "
            "first. Send an `Idempotency-Key`: a retry then continues the erasure, and replays its answer once "
            "done. Audited (`customer.erased`), with no personal data in the audit row."
        ),
        request=InputSerializer,
        responses={200: CustomerErasureOutput},
    )
    def post(self, request: Request, customer_id: str) -> Response:
        serializer = self.LenientInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        erased = customer_erase(
            project=request_project(request),
            external_id=customer_id,
            reason=serializer.validated_data["reason"],
            actor=actor_from_request(request),
        )
        return Response(
            CustomerErasureOutput(
                {
                    "id": erased.customer.pk,
                    "customer": erased.customer.external_id,
                    "erased_at": erased.erased_at,
                    "stripe_customer_deleted": erased.stripe_customer_deleted,
                    "rows_scrubbed": erased.scrubbed,
                }
            ).data
        )
