"""Test clocks API: `/test_clocks` (create, list), `/test_clocks/{id}` (retrieve, delete) and
`/test_clocks/{id}/advance`, for projects whose Stripe key is a test key. Another project's clock is a missing
one (404)."""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.actors import actor_from_request
from core.base_api import BaseApi
from core.idempotency import operation_of
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import StrictSerializer
from customers import selectors
from customers.models import TestClock
from customers.services import test_clocks as services
from projects.authentication import request_project


class TestClockOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    name = serializers.CharField(allow_null=True)
    frozen_time = serializers.DateTimeField(
        help_text="The time the clock's customers live at: their subscriptions renew as if it were now."
    )
    status = serializers.CharField(
        help_text="`advancing` while Stripe moves the clock (renewals due are being made), `ready` when done, "
        "`internal_failure` if Stripe could not advance it (delete it)."
    )
    advancing_to = serializers.DateTimeField(
        allow_null=True, help_text="While `advancing`: the frozen time the clock moves to."
    )
    deletes_after = serializers.DateTimeField(help_text="Stripe deletes the clock and its customers then.")
    customers = serializers.SerializerMethodField(help_text="The external ids of the customers on the clock.")
    stripe_test_clock_id = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_object(self, obj: TestClock) -> str:
        return "test_clock"

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_customers(self, obj: TestClock) -> list[str]:
        return selectors.clock_customer_ids(clock=obj)

    def to_representation(self, instance: TestClock) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["name"] = instance.name or None
        return data


class TestClockDeletedOutput(TestClockOutput):
    deleted = serializers.BooleanField(help_text="Always true: the clock is gone, at Stripe too.")

    def to_representation(self, instance: TestClock) -> dict[str, Any]:
        return {**TestClockOutput(instance).data, "deleted": True}


class TestClockCreateInput(StrictSerializer):
    frozen_time = serializers.DateTimeField(
        help_text="Where the clock starts (ISO 8601; the past or the future). It only ever moves forward."
    )
    name = serializers.CharField(max_length=300, required=False, allow_blank=True)


class TestClockAdvanceInput(StrictSerializer):
    frozen_time = serializers.DateTimeField(
        help_text="The time to move the clock to: after its frozen_time, and at most two intervals of its "
        "shortest subscription ahead (two years without one)."
    )


def _clock(request: Request, test_clock: str) -> TestClock:
    return selectors.clock_get(project=request_project(request), test_clock_id=test_clock)


class TestClockListCreateApi(BaseApi):
    @extend_schema(
        operation_id="test_clocks_list",
        summary="List test clocks",
        description="The project's test clocks, newest first, as last seen from Stripe (retrieve one to see "
        "whether an advance has finished).",
        parameters=[*PAGINATION_PARAMETERS],
        responses=list_serializer(TestClockOutput, "TestClockList"),
    )
    def get(self, request: Request) -> Response:
        rows, has_more = paginate_queryset(selectors.clock_list(project=request_project(request)), request)
        return Response(list_body(TestClockOutput(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="test_clocks_create",
        summary="Create a test clock",
        description=(
            "Creates a Stripe test clock at `frozen_time`, to simulate renewals per customer: create customers "
            "on it (`POST /customers` with `test_clock`), subscribe them, then advance it. Test mode only: a "
            "project whose Stripe key is a live key gets 403 `test_mode_only`, and nothing is created."
        ),
        request=TestClockCreateInput,
        responses={201: TestClockOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = TestClockCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        clock = services.clock_create(
            project=request_project(request),
            actor=actor_from_request(request),
            operation=operation_of(request),
            **serializer.validated_data,
        )
        return Response(TestClockOutput(clock).data, status=status.HTTP_201_CREATED)


class TestClockDetailApi(BaseApi):
    tenant_lookup = {"test_clock": TestClock}

    @extend_schema(
        operation_id="test_clocks_retrieve",
        summary="Retrieve a test clock",
        description=(
            "One test clock. While it is `advancing` it is re-read from Stripe, so polling this until `ready` "
            "tells when the renewals it made are done (their events follow as webhooks)."
        ),
        responses=TestClockOutput,
    )
    def get(self, request: Request, test_clock: str) -> Response:
        clock = services.clock_refresh(clock=_clock(request, test_clock))
        return Response(TestClockOutput(clock).data)

    @extend_schema(
        operation_id="test_clocks_delete",
        summary="Delete a test clock",
        description=(
            "Deletes the clock at Stripe, which deletes the Stripe customers on it and ends their "
            "subscriptions (mirrored here from Stripe's events). The customers stay here, on no clock; their "
            "next purchase creates a new Stripe customer. Answers the deleted clock."
        ),
        responses={200: TestClockDeletedOutput},
    )
    def delete(self, request: Request, test_clock: str) -> Response:
        clock = _clock(request, test_clock)
        body = TestClockDeletedOutput(clock).data
        services.clock_delete(
            project=request_project(request), actor=actor_from_request(request), clock=clock
        )
        return Response(body)


class TestClockAdvanceApi(BaseApi):
    tenant_lookup = {"test_clock": TestClock}

    @extend_schema(
        operation_id="test_clocks_advance",
        summary="Advance a test clock",
        description=(
            "Moves the clock forward to `frozen_time`: Stripe renews, invoices and charges the subscriptions "
            "of the clock's customers that fall due by then (and runs trial ends, retries and cancellations), "
            'sending the same events as in real time, so renewal invoices and their `source: "invoice"` '
            "payments appear here. Other customers do not move. Answers the clock, `advancing` until Stripe is "
            "done. 400 for a time not after the clock's or past Stripe's limit; 409 `test_clock_advancing` "
            "while an advance is in progress."
        ),
        request=TestClockAdvanceInput,
        responses={200: TestClockOutput},
    )
    def post(self, request: Request, test_clock: str) -> Response:
        clock = _clock(request, test_clock)
        serializer = TestClockAdvanceInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        advanced = services.clock_advance(
            project=request_project(request),
            actor=actor_from_request(request),
            clock=clock,
            frozen_time=serializer.validated_data["frozen_time"],
        )
        return Response(TestClockOutput(advanced).data)
