"""Routes that exist only in tests: views that fail on purpose, to prove what is (not) stored."""

from django.db import transaction
from django.urls import include, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from core.actors import actor_from_request
from core.audit import audit_record
from core.base_api import BaseApi
from core.errors import Conflict

CALLS: list[str] = []


class FailingApi(BaseApi):
    """Counts its calls, then fails as asked: `?fail=500` (an unexpected exception), `503`, `409`."""

    @extend_schema(parameters=[OpenApiParameter("fail", str)])
    def post(self, request: Request) -> Response:
        CALLS.append(request.query_params.get("fail", ""))
        fail = request.query_params.get("fail")
        if fail == "500":
            raise RuntimeError("boom: sk_test_shouldnotleak123")
        if fail == "503":
            return Response({"error": {"type": "payment_provider_error"}}, status=503)
        if fail == "409":
            raise Conflict("Business conflict.", code="already_subscribed")
        with transaction.atomic():
            audit_record(actor=actor_from_request(request), action="test.called", target=request.auth.project)
        return Response({"calls": len(CALLS)}, status=201)


urlpatterns = [
    path("api/v1/_test/fail", FailingApi.as_view()),
    path("", include("config.urls")),
]
