"""Agent keys through the Python client, on a live server: made read-only by default or with the tools asked,
listed, never taken by the REST API, revoked once."""

import pytest
from tollgate_client import Tollgate
from tollgate_client.errors import AuthenticationError, InvalidRequestError

from agents.models import AgentKey

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_agent_key_made_listed_refused_by_the_rest_api_and_revoked(tollgate, live_server):
    read_only = tollgate.agent_keys.create(name="support bot")
    assert read_only.agent_key is not None
    assert read_only.agent_key.startswith("tg_ak_")
    assert sorted(read_only.tools) == [
        "customer_lookup",
        "entitlements_explain",
        "invoices_list",
        "margins_report",
        "subscriptions_list",
        "usage_summary",
    ]
    assert read_only.can_confirm is False
    refunds = tollgate.agent_keys.create(tools=["refund_request", "move_confirm"], can_confirm=True)
    assert (sorted(refunds.tools), refunds.can_confirm) == (["move_confirm", "refund_request"], True)
    assert {key.id for key in tollgate.agent_keys.list().auto_paging_iter()} == {read_only.id, refunds.id}
    with (
        Tollgate(read_only.agent_key, live_server.url, timeout=10, max_retries=0) as agent,
        pytest.raises(AuthenticationError),
    ):
        agent.customers.list()
    with pytest.raises(InvalidRequestError) as refused:
        tollgate.agent_keys.create(tools=["refund_everything"])
    assert refused.value.param.startswith("tools")
    assert AgentKey.objects.count() == 2
    revoked = tollgate.agent_keys.revoke(read_only.id, reason="rotated")
    assert revoked.revoked_at is not None
    assert tollgate.agent_keys.revoke(read_only.id).revoked_at == revoked.revoked_at
