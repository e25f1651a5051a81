"""Local evaluation of an entity removed while a process holds the customer's snapshot."""

import time

import pytest
from tollgate_client import InvalidRequestError, Tollgate
from tollgate_client.local import LocalEntitlements

from tests.clients.conftest import *  # noqa: F403  (the clients' fixtures: tollgate, plans, per_seat)

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"poll_interval": 0.05, "stale_after": 2.0}


def test_a_removed_entity_is_refused_locally_as_on_the_server(live_server, tenant_a, per_seat, tollgate):
    """Removing an entity reaches the change feed: once it is polled, a process holding the customer's snapshot
    refuses a local check naming the removed entity as the server does, `unknown_entity` (only the usage version
    moved, so the process kept the entity and allowed checks naming it from memory)."""
    added = tollgate.entitlements.entities.add(customer="team-1", feature="seats", entity="ana")
    with (
        Tollgate(tenant_a.key, live_server.url, timeout=10) as client,
        LocalEntitlements(client, **FAST) as local,
    ):
        first = local.check(customer="team-1", feature="summaries", entity="ana")
        assert (first.allowed, first.entity.used) == (True, 0)
        tollgate.entitlements.entities.remove(added.id)
        with pytest.raises(InvalidRequestError) as on_server:
            tollgate.entitlements.check(customer="team-1", feature="summaries", entity="ana")
        assert on_server.value.code == "unknown_entity"
        time.sleep(0.5)  # ten polls of the change feed
        with pytest.raises(InvalidRequestError) as caught:
            local.check(customer="team-1", feature="summaries", entity="ana")
        assert caught.value.code == "unknown_entity"
