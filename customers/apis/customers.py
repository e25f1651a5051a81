"""`/customers`: the project's customers, created or updated by the tenant's user id."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.base_api import BaseApi
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import MetadataField, StrictSerializer
from customers import selectors as customer_selectors
from customers.models import Customer
from customers.representations import CustomerOutput
from customers.services import customers as services
from projects.authentication import request_project


class CustomerListCreateApi(BaseApi):
    class InputSerializer(StrictSerializer):
        external_id = serializers.CharField(max_length=255)
        email = serializers.EmailField(required=False, allow_blank=True)
        name = serializers.CharField(max_length=255, required=False, allow_blank=True)
        metadata = MetadataField(required=False)
        test_clock = serializers.CharField(
            max_length=40,
            required=False,
            help_text="Test mode: a test clock of the project to create the Stripe customer on (a new customer, "
            "or one not yet at Stripe).",
        )

    @extend_schema(
        operation_id="customers_list",
        summary="List customers",
        description="The project's customers, newest first, optionally only those with one `email`.",
        parameters=[*PAGINATION_PARAMETERS, OpenApiParameter("email", OpenApiTypes.STR)],
        responses=list_serializer(CustomerOutput, "CustomerList"),
    )
    def get(self, request: Request) -> Response:
        queryset = customer_selectors.customer_list(
            project=request_project(request), email=request.query_params.get("email")
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(CustomerOutput(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="customers_upsert",
        summary="Create or update a customer",
        description=(
            "Upsert by `external_id` (your own user id, used as `customer` everywhere): 201 when "
            "created, 200 when it existed and the given fields were updated. A customer already "
            "known to Stripe has a changed `email` or `name` copied to its Stripe Customer in the "
            "background. Safe to repeat: the same body changes nothing the second time. With "
            "`test_clock` (projects on a Stripe test key; else 403) the Stripe customer is created on that "
            "test clock at once; a customer already at Stripe cannot move onto one (409 "
            "`test_clock_immutable`)."
        ),
        request=InputSerializer,
        responses={200: CustomerOutput, 201: CustomerOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer, created = services.customer_upsert(
            project=request_project(request),
            external_id=data["external_id"],
            email=data.get("email"),
            name=data.get("name"),
            metadata=data.get("metadata"),
            test_clock=data.get("test_clock"),
        )
        return Response(
            CustomerOutput(customer).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class CustomerDetailApi(BaseApi):
    tenant_lookup = {"customer_id": Customer}

    @extend_schema(
        operation_id="customers_retrieve",
        summary="Retrieve a customer",
        description="One customer by your `external_id`; 404 when the project has never seen it.",
        responses=CustomerOutput,
    )
    def get(self, request: Request, customer_id: str) -> Response:
        return Response(
            CustomerOutput(
                customer_selectors.customer_lookup(project=request_project(request), customer_id=customer_id)
            ).data
        )


# --- checkout -----------------------------------------------------------------------------------------------
