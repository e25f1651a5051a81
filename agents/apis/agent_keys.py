"""`/agent_keys`: a project's keys for AI agents (the MCP server's), each narrowed to a set of tools."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from agents import selectors
from agents.models import AgentKey
from agents.services import keys as services
from agents.tools import TOOLS
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import StrictSerializer
from projects.authentication import request_project


class AgentKeyOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    project = serializers.CharField(source="project_id")
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The start of the key, to tell keys apart; never the secret.")
    tools = serializers.ListField(child=serializers.CharField(), help_text="The tools the key may call.")
    can_confirm = serializers.BooleanField(
        help_text="Whether the key may confirm money moves (`move_confirm`)."
    )
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)

    def get_object(self, obj: AgentKey) -> str:
        return "agent_key"


class AgentKeyCreatedOutput(AgentKeyOutput):
    agent_key = serializers.CharField(help_text="The secret key (`tg_ak_…`). Shown this once; store it now.")


class AgentKeyListCreateApi(BaseApi):
    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=100, required=False, allow_blank=True)
        tools = serializers.ListField(
            child=serializers.ChoiceField(choices=list(TOOLS)),
            required=False,
            max_length=len(TOOLS),
            help_text="The tools the key may call; default the read-only ones.",
        )
        can_confirm = serializers.BooleanField(
            required=False,
            default=False,
            help_text="The key may confirm money moves (with `move_confirm` among its tools).",
        )

    @extend_schema(
        operation_id="agent_keys_list",
        summary="List agent keys",
        description=(
            "The project's agent keys (for the MCP server), newest first, revoked ones too: their tools, "
            "whether they may confirm money moves, prefixes and last use; never a secret."
        ),
        parameters=PAGINATION_PARAMETERS,
        responses=list_serializer(AgentKeyOutput, "AgentKeyList"),
    )
    def get(self, request: Request) -> Response:
        rows, has_more = paginate_queryset(
            selectors.agent_key_list(project=request_project(request)), request
        )
        return Response(list_body(AgentKeyOutput(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="agent_keys_create",
        summary="Create an agent key",
        description=(
            "A key for an AI agent to call the project's tools through the MCP server (`Authorization: Bearer "
            "tg_ak_…`): only the `tools` it names (default: the read-only ones), and money moves confirmed only "
            "when `can_confirm`. It is no API key: the REST API refuses it. The secret `agent_key` is in this "
            "answer only."
        ),
        request=InputSerializer,
        responses={201: AgentKeyCreatedOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        agent_key, secret = services.agent_key_create(
            actor=actor_from_request(request),
            project=request_project(request),
            name=data.get("name", ""),
            tools=data.get("tools"),
            can_confirm=data["can_confirm"],
        )
        return Response(
            {**AgentKeyOutput(agent_key).data, "agent_key": secret}, status=status.HTTP_201_CREATED
        )


class AgentKeyRevokeApi(BaseApi):
    tenant_lookup = {"agent_key_id": AgentKey}

    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(
            max_length=500, required=False, allow_blank=True, help_text="Recorded in the audit log."
        )

    @extend_schema(
        operation_id="agent_keys_revoke",
        summary="Revoke an agent key",
        description=(
            "Revokes one of the project's agent keys: its next tool call is refused. Repeating it changes "
            "nothing."
        ),
        request=InputSerializer,
        responses={200: AgentKeyOutput},
    )
    def delete(self, request: Request, agent_key_id: str) -> Response:
        agent_key = selectors.agent_key_get(project=request_project(request), agent_key_id=agent_key_id)
        serializer = self.InputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        revoked = services.agent_key_revoke(
            actor=actor_from_request(request),
            agent_key=agent_key,
            reason=serializer.validated_data.get("reason", ""),
        )
        return Response(AgentKeyOutput(revoked).data)
