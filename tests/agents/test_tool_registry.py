"""The registry: every tool's schema is a JSON Schema (what MCP clients are shown), an object of named
properties and no other, and the hand-written check in `agents.arguments` agrees with a JSON Schema validator."""

import jsonschema
import pytest

from agents.arguments import ArgumentError, arguments_check
from agents.models import AgentKey, MoveConfirmation
from agents.tools import TOOLS
from tests.agents.factories import MoveConfirmationFactory

SAMPLES = [
    {},
    {"customer": "u1"},
    {"customer": ""},
    {"customer": 1},
    {"customer": "u1", "unknown": True},
    {"customer": "u1", "feature": "x" * 101},
    {"payment": "pay_1", "reason": "r", "amount": 0},
    {"payment": "pay_1", "reason": "r", "amount": 5},
    {"payment": "pay_1", "reason": "r", "amount": True},
    {"subscription": "sub_1", "at_period_end": "yes"},
    {"subscription": "sub_1", "at_period_end": False},
    {"customer": "u1", "feature": "f", "reason": "r", "value": {"any": ["json"]}},
    {"customer": "u1", "feature": "f", "reason": "r", "expires_at": "2030-01-01T00:00:00Z"},
    {"confirmation_id": "mvc_1"},
    {"from": "2026-01-01", "to": "2026-02-01"},
]


@pytest.mark.parametrize("name", list(TOOLS))
def test_each_tools_schema_is_a_closed_json_schema_object(name):
    tool = TOOLS[name]
    jsonschema.Draft202012Validator.check_schema(tool.parameters)
    assert tool.parameters["type"] == "object"
    assert tool.parameters["additionalProperties"] is False
    assert set(tool.parameters["required"]) <= set(tool.parameters["properties"])
    assert tool.kind in ("read", "write", "money", "confirm")
    assert tool.description.endswith((".", ")"))


@pytest.mark.parametrize("name", list(TOOLS))
def test_the_argument_check_agrees_with_a_json_schema_validator(name):
    validator = jsonschema.Draft202012Validator(
        TOOLS[name].parameters, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for sample in SAMPLES:
        try:
            arguments_check(TOOLS[name].parameters, sample)
            ours = True
        except ArgumentError:
            ours = False
        assert ours == validator.is_valid(sample), (name, sample)


@pytest.mark.django_db
def test_a_projects_deletion_takes_its_agent_keys_and_their_moves():
    confirmation = MoveConfirmationFactory()
    confirmation.project.delete()
    assert not AgentKey.objects.exists()
    assert not MoveConfirmation.objects.exists()


@pytest.mark.parametrize(
    ("arguments", "param"),
    [
        ({"customer": "u1\x00"}, "customer"),
        ({"cust\x00omer": "u1"}, "cust\\u0000omer"),
        ({"customer": "u1", "value": {"a": ["b", {"c\x00": 1}]}}, "value"),
        ({"customer": "u1", "value": [["\x00"]]}, "value"),
    ],
)
def test_a_nul_character_anywhere_in_the_arguments_is_refused(arguments, param):
    # No tool takes one, and PostgreSQL can store none (neither in text nor in the audit log's JSON).
    with pytest.raises(ArgumentError) as refused:
        arguments_check(TOOLS["grant_create"].parameters, arguments)
    assert refused.value.param == param
    assert "\x00" not in str(refused.value)
