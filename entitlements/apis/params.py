"""What the entitlement views share: the limits on ids and quantities, and the query parameters the GET
views parse by hand (`customer`, `feature`, `quantity`) with their OpenAPI descriptions.
"""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from core.errors import InvalidRequest

MAX_ID_LENGTH = 255
MAX_QUANTITY = 10**12


def _required(params: Any, name: str) -> str:
    value = params.get(name)
    if not value:
        raise InvalidRequest(f"{name}: this parameter is required.", code="parameter_missing", param=name)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidRequest(
            f"{name}: at most {MAX_ID_LENGTH} characters.", code="invalid_parameter", param=name
        )
    return str(value)


def _quantity_param(params: Any) -> int:
    raw = params.get("quantity")
    if raw in (None, ""):
        return 1
    try:
        quantity = int(raw)
    except ValueError:
        quantity = -1
    if not 0 <= quantity <= MAX_QUANTITY:
        raise InvalidRequest("quantity: an integer ≥ 0.", code="invalid_parameter", param="quantity")
    return quantity


CUSTOMER_PARAMETER = OpenApiParameter(
    "customer", OpenApiTypes.STR, required=True, description="The tenant's own user id (`external_id`)."
)
FEATURE_PARAMETER = OpenApiParameter(
    "feature", OpenApiTypes.STR, required=True, description="The feature key."
)
