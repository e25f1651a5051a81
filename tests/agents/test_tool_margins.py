"""The `margins_report` tool reads as `GET /margins` does: a window of a year at most (the report reads every
event of it), its edges parsed the same way (a year-1 date is a window, never a server error)."""

import pytest

from agents.tools import ToolError
from core.models import AuditLogEntry

pytestmark = pytest.mark.django_db


def test_the_margins_window_is_bounded_as_the_apis(api, tenant_a, agent_key, call):
    reader = agent_key(tenant_a.project)
    with pytest.raises(ToolError) as too_long:
        call(reader, "margins_report", **{"from": "0001-01-01", "to": "9999-12-31"})
    assert (too_long.value.code, too_long.value.param, too_long.value.status) == (
        "invalid_range",
        "from",
        400,
    )
    api_answer = api.get("/api/v1/margins?from=0001-01-01&to=9999-12-31", key=tenant_a.key)
    assert (api_answer.status_code, api_answer.json()["error"]["code"]) == (400, "invalid_range")
    early = call(reader, "margins_report", **{"from": "0001-01-01T00:00:00+01:00", "to": "0001-06-01"})
    assert early == {"object": "list", "data": [], "has_more": False}
    outcomes = AuditLogEntry.objects.filter(action="agent.tool_call").values_list("after__outcome", flat=True)
    assert sorted(outcomes) == ["failed", "ok"]  # the refusal (an answer of the API's), then the report
