"""What the entitlement views share: the limits on ids and quantities, and the query parameters the GET
views parse by hand (`customer`, `feature`, `quantity`, `as_of`).

Each parameter is declared once (`IdParam`, `QuantityParam`: name, type, whether required, limits,
description); its parser (`.parse(params)`, a few dict lookups: `GET /entitlements/check` is the hot path) and
its OpenAPI description (`.openapi()`) both come from that declaration, so they cannot drift.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request

from core.errors import InvalidRequest
from core.serializers import StrictSerializer

MAX_ID_LENGTH = 255
MAX_QUANTITY = 10**12


@dataclass(frozen=True, slots=True)
class QueryParam:
    """One hand-parsed query parameter: what `.openapi()` documents and `.parse()` enforces."""

    openapi_type: ClassVar[OpenApiTypes]  # each kind of parameter names its type
    name: str
    description: str
    required: bool

    def openapi(self) -> OpenApiParameter:
        return OpenApiParameter(
            self.name, self.schema(), required=self.required, description=self.description
        )

    def schema(self) -> dict[str, Any]:
        """The type and the limits `parse` enforces, for the OpenAPI schema."""
        return {"type": "string" if self.openapi_type == OpenApiTypes.STR else "integer"}


@dataclass(frozen=True, slots=True)
class IdParam(QueryParam):
    """A required id or key: a non-empty string of at most `max_length` characters."""

    openapi_type: ClassVar[OpenApiTypes] = OpenApiTypes.STR
    required: bool = True
    max_length: int = MAX_ID_LENGTH

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": self.max_length}

    def parse(self, params: Any) -> str:
        value = params.get(self.name)
        if not value:
            raise InvalidRequest(
                f"{self.name}: this parameter is required.", code="parameter_missing", param=self.name
            )
        if len(value) > self.max_length:
            raise InvalidRequest(
                f"{self.name}: at most {self.max_length} characters.",
                code="invalid_parameter",
                param=self.name,
            )
        return str(value)

    def parse_optional(self, params: Any) -> str | None:
        """`parse`, or None when the parameter is absent or empty (for an optional id)."""
        return None if params.get(self.name) in (None, "") else self.parse(params)


@dataclass(frozen=True, slots=True)
class QuantityParam(QueryParam):
    """An optional count: an integer from `minimum` to `maximum`, `default` when absent or empty."""

    required: bool = False
    default: int = 1
    minimum: int = 0
    maximum: int = MAX_QUANTITY
    openapi_type: ClassVar[OpenApiTypes] = OpenApiTypes.INT

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum, "default": self.default}

    def parse(self, params: Any) -> int:
        raw = params.get(self.name)
        if raw in (None, ""):
            return self.default
        try:
            quantity = int(raw)
        except ValueError:
            quantity = self.minimum - 1
        if not self.minimum <= quantity <= self.maximum:
            raise InvalidRequest(
                f"{self.name}: an integer ≥ {self.minimum}.", code="invalid_parameter", param=self.name
            )
        return quantity


@dataclass(frozen=True, slots=True)
class MomentParam(QueryParam):
    """An optional past instant in ISO 8601 (UTC unless it names an offset); None when absent or empty."""

    required: bool = False
    openapi_type: ClassVar[OpenApiTypes] = OpenApiTypes.DATETIME

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}

    def parse(self, params: Any) -> datetime | None:
        raw = params.get(self.name)
        if raw in (None, ""):
            return None
        try:
            moment = parse_datetime(str(raw))
        except ValueError:
            moment = None
        if moment is None:
            raise InvalidRequest(
                f"{self.name}: an ISO 8601 time, such as 2026-11-01T12:00:00Z (a `+` offset must be "
                "URL-encoded as %2B).",
                code="invalid_parameter",
                param=self.name,
            )
        moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        if moment > timezone.now():
            raise InvalidRequest(
                f"{self.name}: a time in the past; the answer for now needs no as_of.",
                code="invalid_parameter",
                param=self.name,
            )
        return moment


CUSTOMER = IdParam("customer", "The tenant's own user id (`external_id`).")
FEATURE = IdParam("feature", "The feature key.")
QUANTITY = QuantityParam("quantity", "Units wanted (default 1).")
ENTITY = IdParam(
    "entity",
    "One of the customer's entities (the tenant's id for a seat, a workspace), for a metered feature whose plan "
    "gives each entity its own limit a period (`per_entity`): the answer is judged against that limit as well as "
    "the account's; for a credits feature whose plan lets each entity hold credits of its own, the use spends "
    "them first, then the account's. With `as_of`, its use or balance then (an entity the customer did not have "
    "then is unknown). 400 `unknown_entity`, `entity_not_counted`.",
    required=False,
)
ENTITY_CREDITS = IdParam(
    "entity",
    "One of the customer's entities (the tenant's id): its own credits rather than the account's.",
    required=False,
)
AS_OF = MomentParam(
    "as_of",
    "A past instant (ISO 8601): the answer as of then, from what Tollgate had recorded by then — subscription "
    "versions, grants, revocations and purchases, the usage events, the credit ledger and the holds. The catalog, "
    "the settings and the customer's own thresholds are today's.",
)

CUSTOMER_PARAMETER = CUSTOMER.openapi()
FEATURE_PARAMETER = FEATURE.openapi()
QUANTITY_PARAMETER = QUANTITY.openapi()
ENTITY_PARAMETER = ENTITY.openapi()
ENTITY_CREDITS_PARAMETER = ENTITY_CREDITS.openapi()
AS_OF_PARAMETER = AS_OF.openapi()


class ReasonInput(StrictSerializer):
    """The body of a removal that asks only why (`DELETE` of a grant, a revocation, a spend cap)."""

    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


def reason_parse(request: Request) -> str:
    """The removal's reason, validated (`ReasonInput`: at most 500 characters, no other field): 400 otherwise."""
    serializer = ReasonInput(data=request.data if isinstance(request.data, dict) else {})
    serializer.is_valid(raise_exception=True)
    return str(serializer.validated_data.get("reason", ""))
