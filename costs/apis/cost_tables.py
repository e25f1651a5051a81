"""A project's cost tables (what its own product costs it, versioned): `GET /cost_tables`, `POST /cost_tables`,
`GET /cost_tables/{id}`. Versions are never changed or deleted; each one is audited with the key that wrote it."""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.actors import actor_from_request
from core.base_api import BaseApi
from core.pagination import list_body, list_serializer
from core.serializers import CurrencyField, StrictSerializer
from costs.models import CostTable
from costs.pricing import MAX_MICROS, MAX_NAME_LENGTH, MAX_PER, NAME_PATTERN
from costs.selectors import cost_table_get, cost_tables
from costs.services.cost_tables import cost_table_create
from projects.authentication import request_project

NAMES_HELP = (
    f"Model and dimension names are 1 to {MAX_NAME_LENGTH} letters, digits and . _ : / -, starting with a letter "
    f"or a digit (`{NAME_PATTERN}`)."
)
MODELS_HELP = (
    'The rates, per model (or any cost dimension you name): {"<model>": {"<dimension>": {"micros": m, "per": p}}} '
    "is m micro-units of the currency per p units of the dimension (input tokens, output tokens, cached tokens, "
    'images, seconds …): gpt-4o\'s input tokens at $2.50 a million are {"micros": 2500000, "per": 1000000}. '
)
RATE_OUTPUT_SCHEMA = {
    "type": "object",
    "required": ["micros", "per"],
    "properties": {
        "micros": {"type": "integer", "minimum": 0, "maximum": MAX_MICROS},
        "per": {"type": "integer", "minimum": 1, "maximum": MAX_PER},
    },
}
RATE_INPUT_SCHEMA = {
    "oneOf": [
        {"type": "integer", "minimum": 0, "maximum": MAX_MICROS, "description": "Micro-units per one unit."},
        {
            "type": "object",
            "required": ["micros"],
            "additionalProperties": False,
            "properties": {
                "micros": {"type": "integer", "minimum": 0, "maximum": MAX_MICROS},
                "per": {"type": "integer", "minimum": 1, "maximum": MAX_PER, "default": 1},
            },
        },
    ]
}


def _models_schema(rate: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": {"type": "object", "minProperties": 1, "additionalProperties": rate},
        # OpenAPI 3.0 has no `propertyNames`: the rule on names is stated in words.
        "description": description,
    }


@extend_schema_field(_models_schema(RATE_OUTPUT_SCHEMA, MODELS_HELP + "Every rate with both fields."))
class ModelsOutputField(serializers.JSONField):
    pass


@extend_schema_field(
    _models_schema(
        RATE_INPUT_SCHEMA,
        MODELS_HELP
        + 'A rate may be a bare integer (micros per one unit); "per" defaults to 1. '
        + NAMES_HELP,
    )
)
class ModelsInputField(serializers.JSONField):
    pass


class CostTableOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="cost_table")
    version = serializers.IntegerField(help_text="1, 2, 3 … within the project.")
    currency = serializers.CharField(help_text="Three-letter ISO code, lowercase.")
    starts_at = serializers.DateTimeField(help_text="The version applies to uses from then on.")
    models = ModelsOutputField()
    current = serializers.BooleanField(
        help_text="Whether this is the version in force now: the latest whose `starts_at` has passed."
    )
    created_at = serializers.DateTimeField()


class CostTablesApi(BaseApi):
    class InputSerializer(StrictSerializer):
        currency = CurrencyField(help_text="Three-letter ISO code of the rates' micro-units.")
        starts_at = serializers.DateTimeField(
            required=False,
            help_text=(
                "When the version applies from (default now): not in the past, and after the latest "
                "version's `starts_at`."
            ),
        )
        models = ModelsInputField()

    @extend_schema(
        operation_id="cost_tables_list",
        summary="List cost table versions",
        description=(
            "Every version of the project's cost table (what its own product costs it), newest version first, "
            "in one page; `current` marks the one in force now."
        ),
        responses=list_serializer(CostTableOutput, "CostTableList"),
    )
    def get(self, request: Request) -> Response:
        rows = cost_tables(project=request_project(request))
        return Response(list_body(CostTableOutput(rows, many=True).data, has_more=False))

    @extend_schema(
        operation_id="cost_tables_create",
        summary="Create a cost table version",
        description=(
            "The project's next version (numbered 1, 2, 3 …), applying to uses from `starts_at` on; the one "
            "before it keeps pricing what came earlier, so a cost already incurred never changes. Versions "
            "cannot be changed or deleted. 400 `invalid_parameter` (the rates' shape, naming "
            "`models.<model>.<dimension>`), `starts_in_past`, `starts_before_latest` (not after the latest "
            "version's start)."
        ),
        request=InputSerializer,
        responses={201: CostTableOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = request_project(request)
        table = cost_table_create(
            project=project,
            actor=actor_from_request(request),
            currency=data["currency"],
            models=data["models"],
            starts_at=data.get("starts_at"),
        )
        table = cost_table_get(project=project, table_id=table.pk)
        return Response(CostTableOutput(table).data, status=status.HTTP_201_CREATED)


class CostTableDetailApi(BaseApi):
    tenant_lookup = {"table_id": CostTable}

    @extend_schema(
        operation_id="cost_tables_retrieve",
        summary="Retrieve a cost table version",
        description="One version of the project's cost table, with its rates. 404 for an id of another project.",
        responses=CostTableOutput,
    )
    def get(self, request: Request, table_id: str) -> Response:
        return Response(
            CostTableOutput(cost_table_get(project=request_project(request), table_id=table_id)).data
        )
