"""An entity's own credits through the Python client: granted to a seat (`grants.create(entity=…)`), read back
(`credits.retrieve(entity=…)`), and answered from memory by `LocalEntitlements` as the server answers them — the
snapshot carries each live seat's own balance (`entity_credits.balances`), and a use naming the seat may spend its
own and the account's."""

import pytest
from tollgate_client.local import LocalEntitlements

from catalog.models import Feature
from tests.clients.test_local_entitlements import FAST, counted  # noqa: F401  (a fixture)
from tests.entitlements.helpers import customer, feature, product, subscribe
from tests.entitlements.test_entity_credits import waterfall_seats

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_seats_own_credits_answer_locally_as_on_the_server(counted, tollgate, tenant_a):  # noqa: F811
    p = tenant_a.project
    seats = feature(p, "seats", Feature.Type.ALLOCATION)
    credits = feature(p, "ai_credits", Feature.Type.CREDITS)
    per_seat = {"limit": 0, "per_entity": {"feature": "seats", "on_remove": "return"}}
    subscribe(customer(p, "team-3"), product(p, "team", {seats: 3, credits: per_seat}))
    tollgate.entitlements.entities.add(customer="team-3", feature="seats", entity="ana")
    tollgate.entitlements.entities.add(customer="team-3", feature="seats", entity="bo")
    given = tollgate.entitlements.grants.create(
        customer="team-3", feature="ai_credits", value=30, entity="ana", reason="ana's budget"
    )
    assert given.entity == "ana"
    tollgate.entitlements.grants.create(customer="team-3", feature="ai_credits", value=5, reason="pool")
    own = tollgate.credits.retrieve(customer="team-3", feature="ai_credits", entity="ana")
    assert (own.balance, [lot.entity for lot in own.lots]) == (30, ["ana"])
    assert tollgate.credits.retrieve(customer="team-3", feature="ai_credits").balance == 5

    client, http = counted
    with LocalEntitlements(client, **FAST) as local:
        for entity, quantity in (("ana", 35), ("ana", 36), ("bo", 5), ("bo", 6)):
            mine = local.check(customer="team-3", feature="ai_credits", quantity=quantity, entity=entity)
            server = tollgate.entitlements.check(
                customer="team-3", feature="ai_credits", quantity=quantity, entity=entity
            )
            assert mine.to_dict() == server.to_dict(), (entity, quantity)
        assert http.paths.count("/api/v1/entitlements/check") == 0
        ana = local.check(customer="team-3", feature="ai_credits", quantity=35, entity="ana")
        assert (ana.allowed, ana.balance, ana.entity.balance) == (True, 35, 30)
        bo = local.check(customer="team-3", feature="ai_credits", quantity=6, entity="bo")
        assert (bo.allowed, bo.balance, bo.entity.balance) == (False, 5, 0)
        spent = local.consume(id="c1", customer="team-3", feature="ai_credits", quantity=32, entity="ana")
        assert (spent.allowed, spent.balance, spent.entity.balance) == (True, 3, 0)
        # This process's snapshot counts it: the account's 3 left, ana's own 0.
        assert local.check(customer="team-3", feature="ai_credits", quantity=3).allowed is True
        assert local.check(customer="team-3", feature="ai_credits", quantity=4).allowed is False
        again = local.check(customer="team-3", feature="ai_credits", quantity=4, entity="ana")
        assert (again.allowed, again.balance, again.entity.balance) == (False, 3, 0)
        assert http.paths.count("/api/v1/entitlements/check") == 0


def test_a_waterfall_paying_a_seat_from_its_own_credits_answers_locally_as_on_the_server(
    counted,  # noqa: F811
    tollgate,
    tenant_a,
):
    """Past the account's 2 summaries, a use naming ana pays from her own credits first, then the account's: the
    local answers count hers as the server's do, for her, for bo (none of his own) and for the account; a local
    consume naming her lets the next snapshot say how much of each it spent."""
    waterfall_seats(tenant_a.project, "team-4")
    for seat in ("ana", "bo"):
        tollgate.entitlements.entities.add(customer="team-4", feature="seats", entity=seat)
    tollgate.entitlements.grants.create(
        customer="team-4", feature="ai_credits", value=3, entity="ana", reason="r"
    )
    tollgate.entitlements.grants.create(customer="team-4", feature="ai_credits", value=10, reason="pool")

    client, http = counted
    with LocalEntitlements(client, **FAST) as local:
        for entity, quantity in (("ana", 15), ("ana", 16), ("bo", 12), ("bo", 13), (None, 12), (None, 13)):
            mine = local.check(customer="team-4", feature="summaries", quantity=quantity, entity=entity)
            server = tollgate.entitlements.check(
                customer="team-4", feature="summaries", quantity=quantity, entity=entity
            )
            assert mine.to_dict() == server.to_dict(), (entity, quantity)
        assert http.paths.count("/api/v1/entitlements/check") == 0
        ana = local.check(customer="team-4", feature="summaries", quantity=15, entity="ana")
        assert (ana.allowed, ana.step, ana.credits.balance) == (True, "credits", 13)
        spent = local.consume(id="s1", customer="team-4", feature="summaries", quantity=6, entity="ana")
        assert (spent.allowed, spent.credits.balance) == (True, 9)
        for entity in ("ana", "bo", None):
            mine = local.check(customer="team-4", feature="summaries", quantity=9, entity=entity)
            server = tollgate.entitlements.check(
                customer="team-4", feature="summaries", quantity=9, entity=entity
            )
            assert mine.to_dict() == server.to_dict(), entity
            assert (mine.allowed, mine.credits.balance) == (True, 9)
            refused = local.check(customer="team-4", feature="summaries", quantity=10, entity=entity)
            assert (refused.allowed, refused.credits.balance) == (False, 9)
