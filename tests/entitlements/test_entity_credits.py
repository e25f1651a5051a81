"""An entity's own credits (issue #51 point 5): a credits value may let each entity of an allocation feature hold
credits of its own (`"per_entity": {"feature": "seats", "on_remove": "return" | "forfeit"}`). A grant naming the
entity gives them; a use naming it spends them first, then the account's; no other use spends them. Removing the
entity returns what it left to the account or forfeits it, as the plan declares; added again, the same id starts
with none."""

import threading
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from catalog.models import Feature, Product
from core.models import AuditLogEntry
from customers.models import Customer
from entitlements.explain import GIVES, entitlements_explain
from entitlements.models import CreditLedgerEntry, CreditLot, Grant, Hold, UsageEvent
from events.models import Event
from tests.entitlements.helpers import customer, feature, product, subscribe, until_waiting_on_a_lock
from tests.entitlements.test_consume import _concurrently, _post
from tests.entitlements.test_credit_cadence import MONTHLY, _subscribe_yearly, yearly_plan  # noqa: F401
from tests.entitlements.test_entities import add

GRANTS = "/api/v1/entitlements/grants"
CONSUME = "/api/v1/entitlements/consume"
HOLDS = "/api/v1/entitlements/holds"


def _team(tenant, on_remove="return"):
    """u1 on a team plan: 3 seats, and `ai_credits` each seat may hold of its own (`on_remove` as given)."""
    project = tenant.project
    seats = feature(project, "seats", Feature.Type.ALLOCATION)
    credits = feature(project, "ai_credits", Feature.Type.CREDITS)
    per_seat = {"limit": 0, "per_entity": {"feature": "seats", "on_remove": on_remove}}
    subscribe(customer(project, "u1"), product(project, "team", {seats: 3, credits: per_seat}))
    return credits


@pytest.fixture
def returned(tenant_a):
    return _team(tenant_a, "return")


@pytest.fixture
def forfeited(tenant_a):
    return _team(tenant_a, "forfeit")


def grant(api, tenant, value, entity=None, status=201, feature="ai_credits"):
    body = {"customer": "u1", "feature": feature, "value": value, "reason": "seat budget"}
    if entity is not None:
        body["entity"] = entity
    response = api.post(GRANTS, body, key=tenant.key)
    assert response.status_code == status, response.json()
    return response.json()


def spend(api, tenant, event_id, quantity, entity=None, status=200):
    body = {"id": event_id, "customer": "u1", "feature": "ai_credits", "quantity": quantity}
    if entity is not None:
        body["entity"] = entity
    response = api.post(CONSUME, body, key=tenant.key)
    assert response.status_code == status, response.json()
    return response.json()


def check(api, tenant, quantity, entity=None, as_of=None, status=200):
    url = f"/api/v1/entitlements/check?customer=u1&feature=ai_credits&quantity={quantity}"
    if entity is not None:
        url += f"&entity={entity}"
    if as_of is not None:
        url += f"&as_of={as_of.isoformat().replace('+00:00', 'Z')}"
    response = api.get(url, key=tenant.key)
    assert response.status_code == status, response.json()
    return response.json()


def balance(api, tenant, entity=None):
    url = "/api/v1/credits?customer=u1&feature=ai_credits" + (f"&entity={entity}" if entity else "")
    response = api.get(url, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def _entity_id(api, tenant, entity):
    listed = api.get("/api/v1/entitlements/entities?customer=u1", key=tenant.key).json()["data"]
    return next(row["id"] for row in listed if row["entity"] == entity)


def remove(api, tenant, entity):
    response = api.delete(
        f"/api/v1/entitlements/entities/{_entity_id(api, tenant, entity)}", {"reason": "left"}, key=tenant.key
    )
    assert response.status_code == 200, response.json()


def test_a_grant_naming_an_entity_is_its_own_and_spent_only_by_uses_naming_it(api, tenant_a, returned):
    add(api, tenant_a, "ana")
    add(api, tenant_a, "bo")
    made = grant(api, tenant_a, 30, entity="ana")
    assert (made["entity"], made["value"]) == ("ana", 30)
    assert grant(api, tenant_a, 50)["entity"] is None  # the account's
    assert CreditLot.objects.get(grant_id=made["id"]).entity == "ana"

    assert balance(api, tenant_a)["balance"] == 50
    own = balance(api, tenant_a, "ana")
    assert (own["balance"], [lot["entity"] for lot in own["lots"]]) == (30, ["ana"])
    ana = check(api, tenant_a, 80, entity="ana")
    assert (ana["allowed"], ana["balance"], ana["entity"]["balance"], ana["entity"]["feature"]) == (
        True,
        80,
        30,
        "seats",
    )
    assert (ana["entity"]["limit"], ana["entity"]["used"], ana["entity"]["windows"]) == (None, None, [])
    assert check(api, tenant_a, 81, entity="ana")["allowed"] is False
    bo = check(api, tenant_a, 51, entity="bo")  # ana's credits are not bo's
    assert (bo["allowed"], bo["balance"], bo["entity"]["balance"]) == (False, 50, 0)
    account = check(api, tenant_a, 51)  # nor the account's
    assert (account["allowed"], account["balance"], "entity" in account) == (False, 50, False)

    spent = spend(api, tenant_a, "e1", 40, entity="ana")  # her 30 first, then 10 of the account's
    assert (spent["allowed"], spent["balance"], spent["entity"]["balance"]) == (True, 40, 0)
    assert balance(api, tenant_a)["balance"] == 40
    assert balance(api, tenant_a, "ana")["balance"] == 0
    ledger = balance(api, tenant_a, "ana")["ledger"]
    assert [(row["type"], row["amount"], row["reference"]) for row in ledger] == [
        ("consume", -30, "e1"),
        ("grant", 30, made["id"]),
    ]


def test_a_use_not_naming_the_entity_never_spends_its_credits(api, tenant_a, returned):
    add(api, tenant_a, "ana")
    grant(api, tenant_a, 30, entity="ana")
    refused = spend(api, tenant_a, "e1", 1)
    assert (refused["allowed"], refused["balance"]) == (False, 0)
    assert not UsageEvent.objects.filter(event_id="e1").exists()  # refused: nothing recorded
    add(api, tenant_a, "bo")
    assert spend(api, tenant_a, "e2", 1, entity="bo")["allowed"] is False
    assert CreditLot.objects.get(entity="ana").remaining == 30
    assert CreditLedgerEntry.objects.filter(type="consume").count() == 0


def test_a_grant_naming_no_entity_of_the_customers_or_a_feature_without_credits_per_entity_is_refused(
    api, tenant_a, returned
):
    add(api, tenant_a, "ana")
    unknown = grant(api, tenant_a, 30, entity="zed", status=400)["error"]
    assert (unknown["code"], unknown["param"]) == ("unknown_entity", "entity")
    plain = feature(tenant_a.project, "plain_credits", Feature.Type.CREDITS)
    not_counted = grant(api, tenant_a, 30, entity="ana", feature=plain.key, status=400)["error"]
    assert (not_counted["code"], not_counted["param"]) == ("entity_not_counted", "entity")
    feature(tenant_a.project, "exports", Feature.Type.METERED)
    metered = grant(api, tenant_a, 30, entity="ana", feature="exports", status=400)["error"]
    assert (metered["code"], metered["param"]) == ("invalid_parameter", "entity")
    assert Grant.objects.count() == 0
    assert CreditLot.objects.count() == 0


def test_removing_an_entity_returns_its_credits_to_the_account_where_the_plan_says_so(
    api, tenant_a, returned
):
    add(api, tenant_a, "ana")
    made = grant(api, tenant_a, 30, entity="ana")
    spend(api, tenant_a, "e1", 12, entity="ana")
    before = timezone.now()
    remove(api, tenant_a, "ana")
    lot = CreditLot.objects.get(grant_id=made["id"])
    assert (lot.entity, lot.remaining, lot.voided_at, lot.returned_at is not None) == ("ana", 18, None, True)
    assert balance(api, tenant_a)["balance"] == 18
    assert balance(api, tenant_a, "ana")["balance"] == 0
    assert spend(api, tenant_a, "e2", 18)["allowed"] is True  # the account spends them now
    gone = check(api, tenant_a, 1, entity="ana", status=400)["error"]
    assert gone["code"] == "unknown_entity"
    removal = AuditLogEntry.objects.get(action="entity.removed")
    assert removal.after == {"credits": {"ai_credits": {"returned": 18, "forfeited": 0}}}
    # As of before the removal, the 18 were ana's, not the account's.
    then = check(api, tenant_a, 1, entity="ana", as_of=before)
    assert (then["balance"], then["entity"]["balance"]) == (18, 18)
    assert check(api, tenant_a, 1, as_of=before)["balance"] == 0

    add(api, tenant_a, "ana")  # added again: the same id starts with none
    again = check(api, tenant_a, 1, entity="ana")
    assert (again["allowed"], again["entity"]["balance"]) == (False, 0)


def test_removing_an_entity_forfeits_its_credits_where_the_plan_says_so(api, tenant_a, forfeited):
    add(api, tenant_a, "ana")
    made = grant(api, tenant_a, 30, entity="ana")
    grant(api, tenant_a, 5)
    spend(api, tenant_a, "e1", 12, entity="ana")
    remove(api, tenant_a, "ana")
    lot = CreditLot.objects.get(grant_id=made["id"])
    assert (lot.remaining, lot.voided_at is not None, lot.returned_at) == (0, True, None)
    assert balance(api, tenant_a)["balance"] == 5  # the account's alone
    forfeit = CreditLedgerEntry.objects.get(type="forfeited")
    assert (forfeit.lot_id, forfeit.amount) == (lot.pk, -18)
    assert AuditLogEntry.objects.get(action="entity.removed").after == {
        "credits": {"ai_credits": {"returned": 0, "forfeited": 18}}
    }
    add(api, tenant_a, "ana")
    assert check(api, tenant_a, 1, entity="ana")["entity"]["balance"] == 0


def _hold(api, tenant, hold_id, quantity, entity):
    body = {"id": hold_id, "customer": "u1", "feature": "ai_credits", "quantity": quantity, "entity": entity}
    response = api.post(HOLDS, body, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def _release(api, tenant, hold_id):
    response = api.post(f"{HOLDS}/{hold_id}/release", {}, key=tenant.key)
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(("on_remove", "account_after"), [("return", 25), ("forfeit", 0)])
def test_a_hold_naming_the_entity_takes_its_credits_and_gives_them_back_as_its_removal_declared(
    api, tenant_a, on_remove, account_after
):
    _team(tenant_a, on_remove)
    add(api, tenant_a, "ana")
    grant(api, tenant_a, 30, entity="ana")
    held = _hold(api, tenant_a, "h1", 25, "ana")
    assert held["allowed"] is True
    assert Hold.objects.get(hold_id="h1").lots == [[CreditLot.objects.get(entity="ana").pk, 25]]
    assert balance(api, tenant_a, "ana")["balance"] == 5
    remove(api, tenant_a, "ana")
    _release(api, tenant_a, "h1")  # after the removal: to the account, or to nobody
    assert balance(api, tenant_a)["balance"] == account_after + (5 if on_remove == "return" else 0)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"feature": "seats", "on_remove": "keep"}, 'per_entity is {"feature": key, "on_remove"'),
        ({"feature": "seats", "limit": 4}, 'per_entity is {"feature": key, "on_remove"'),
        ({"feature": "ai_credits", "on_remove": "return"}, "'ai_credits' is not an allocation feature"),
    ],
)
def test_a_malformed_credits_per_entity_is_refused_and_nothing_is_created(api, tenant_a, given, message):
    feature(tenant_a.project, "seats", Feature.Type.ALLOCATION)
    feature(tenant_a.project, "ai_credits", Feature.Type.CREDITS)
    body = {"key": "bad", "name": "Bad", "features": {"ai_credits": {"limit": 10, "per_entity": given}}}
    response = api.post("/api/v1/products", body, key=tenant_a.key)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_feature_value", "features.ai_credits.per_entity")
    assert message in error["message"]
    assert not Product.objects.filter(key="bad").exists()


def test_a_products_credits_per_entity_is_answered_as_declared(api, tenant_a):
    feature(tenant_a.project, "seats", Feature.Type.ALLOCATION)
    feature(tenant_a.project, "ai_credits", Feature.Type.CREDITS)
    per_seat = {"feature": "seats", "on_remove": "forfeit"}
    body = {"key": "crew", "name": "Crew", "features": {"ai_credits": {"limit": 10, "per_entity": per_seat}}}
    response = api.post("/api/v1/products", body, key=tenant_a.key)
    assert response.status_code == 201, response.json()
    assert response.json()["features"]["ai_credits"] == {"limit": 10, "per_entity": per_seat}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_uses_naming_an_entity_spend_its_credits_and_the_accounts_exactly(tenant_a):
    _team(tenant_a)
    client = Client()
    for path, body in (
        ("/api/v1/entitlements/entities", {"customer": "u1", "feature": "seats", "entity": "ana"}),
        (GRANTS, {"customer": "u1", "feature": "ai_credits", "value": 12, "entity": "ana", "reason": "r"}),
        (GRANTS, {"customer": "u1", "feature": "ai_credits", "value": 3, "reason": "r"}),
    ):
        response = client.post(
            path, body, content_type="application/json", headers={"Authorization": f"Bearer {tenant_a.key}"}
        )
        assert response.status_code == 201, response.json()
    results = _concurrently(
        20,
        lambda i, client: _post(
            client,
            tenant_a.key,
            CONSUME,
            {"id": f"c{i}", "customer": "u1", "feature": "ai_credits", "quantity": 1, "entity": "ana"},
        ),
    )
    assert sum(answer["allowed"] for answer in results) == 15
    assert CreditLot.objects.get(entity="ana").remaining == 0
    assert CreditLot.objects.get(entity="").remaining == 0
    assert UsageEvent.objects.count() == 15


def waterfall_seats(project, external_id="u1"):
    """`external_id` on `team`: 3 seats; 2 summaries a month past which `ai_credits` pay (1 a summary), 20 for
    each seat; each seat may hold `ai_credits` of its own (returned when it is removed)."""
    seats = feature(project, "seats", Feature.Type.ALLOCATION)
    credits = feature(project, "ai_credits", Feature.Type.CREDITS)
    summaries = feature(project, "summaries", Feature.Type.METERED)
    values = {
        seats: 3,
        credits: {"limit": 0, "per_entity": {"feature": "seats", "on_remove": "return"}},
        summaries: {
            "limit": 2,
            "credits": {"feature": "ai_credits", "cost": 1},
            "per_entity": {"feature": "seats", "limit": 20},
        },
    }
    subscribe(customer(project, external_id), product(project, "team", values))


def _waterfall_team(api, tenant):
    """`waterfall_seats` for u1, with seats ana and bo; ana holds 3 credits of her own, the account 10."""
    waterfall_seats(tenant.project)
    add(api, tenant, "ana")
    add(api, tenant, "bo")
    grant(api, tenant, 3, entity="ana")
    grant(api, tenant, 10)


def _summaries(api, tenant, quantity, entity=None):
    url = f"/api/v1/entitlements/check?customer=u1&feature=summaries&quantity={quantity}"
    checked = api.get(url + (f"&entity={entity}" if entity else ""), key=tenant.key).json()
    return checked["allowed"], checked["step"], checked["credits"]["balance"]


def _balances():
    return {lot.entity: lot.remaining for lot in CreditLot.objects.all()}


def test_a_credits_waterfall_pays_a_use_naming_an_entity_from_its_own_credits_first(api, tenant_a):
    """Past the account's 2 summaries, a use naming ana pays from her own credits first, then the account's; its
    answers count her credits with the account's. A use naming bo (none of his own), or no one, sees the
    account's only."""
    _waterfall_team(api, tenant_a)
    assert _summaries(api, tenant_a, 15, "ana") == (True, "credits", 13)
    assert _summaries(api, tenant_a, 16, "ana") == (False, None, 13)
    assert _summaries(api, tenant_a, 12, "bo") == (True, "credits", 10)
    assert _summaries(api, tenant_a, 13, "bo") == (False, None, 10)
    assert _summaries(api, tenant_a, 13) == (False, None, 10)
    body = {"id": "w1", "customer": "u1", "feature": "summaries", "quantity": 6, "entity": "ana"}
    answer = api.post(CONSUME, body, key=tenant_a.key).json()
    assert (answer["allowed"], answer["used"], answer["credits"]["balance"]) == (True, 6, 9)
    assert _balances() == {"ana": 0, "": 9}
    assert UsageEvent.objects.get(event_id="w1").covered == 4
    assert list(
        CreditLedgerEntry.objects.filter(type="consume")
        .order_by("lot__entity")
        .values_list("lot__entity", "amount")
    ) == [("", -1), ("ana", -3)]
    # the same id again: the duplicate, answered as she sees it, nothing spent twice
    again = api.post(CONSUME, body, key=tenant_a.key).json()
    assert (again["duplicate"], again["credits"]["balance"]) == (True, 9)
    assert _balances() == {"ana": 0, "": 9}


def test_a_hold_and_recorded_usage_naming_an_entity_pay_from_its_own_credits_first(api, tenant_a):
    """A hold naming ana past the allowance holds her credits first, and its release gives them back to her;
    recorded usage naming her (`POST /usage`) pays from hers first too."""
    _waterfall_team(api, tenant_a)
    body = {"id": "h1", "customer": "u1", "feature": "summaries", "quantity": 4, "entity": "ana"}
    held = api.post(HOLDS, body, key=tenant_a.key)
    assert held.status_code == 200, held.json()
    assert (held.json()["allowed"], held.json()["entitlement"]["credits"]["balance"]) == (True, 11)
    assert _balances() == {"ana": 1, "": 10}
    released = api.post(f"{HOLDS}/h1/release", {}, key=tenant_a.key)
    assert released.status_code == 200, released.json()
    assert _balances() == {"ana": 3, "": 10}
    event = {"id": "u9", "customer": "u1", "feature": "summaries", "quantity": 6, "entity": "ana"}
    recorded = api.post("/api/v1/usage", event, key=tenant_a.key)
    assert recorded.status_code == 201, recorded.json()
    assert _balances() == {"ana": 0, "": 9}
    assert UsageEvent.objects.get(event_id="u9").covered == 4


def test_a_past_check_naming_an_entity_counts_its_own_credits_then(api, tenant_a):
    """As of before ana spent her credits, her check counts them with the account's; now, only what is left."""
    _waterfall_team(api, tenant_a)
    before = timezone.now()
    body = {"id": "w1", "customer": "u1", "feature": "summaries", "quantity": 6, "entity": "ana"}
    assert api.post(CONSUME, body, key=tenant_a.key).json()["allowed"] is True
    at = before.isoformat().replace("+00:00", "Z")
    url = f"/api/v1/entitlements/check?customer=u1&feature=summaries&quantity=6&entity=ana&as_of={at}"
    then = api.get(url, key=tenant_a.key).json()
    assert (then["allowed"], then["step"], then["credits"]["balance"]) == (True, "credits", 13)
    assert _summaries(api, tenant_a, 1, "ana") == (True, "credits", 9)


def test_the_entitys_credits_answer_lists_only_the_ledger_of_its_own_lots(api, tenant_a):
    """Once removing ana returned her lot to the account, the lot and its movements are the account's: added
    again, ana's answer has no lots and an empty ledger."""
    _team(tenant_a, "return")
    add(api, tenant_a, "ana")
    grant(api, tenant_a, 30, entity="ana")
    remove(api, tenant_a, "ana")
    spend(api, tenant_a, "e1", 5)  # the account spends the returned lot
    add(api, tenant_a, "ana")
    own = balance(api, tenant_a, "ana")
    assert (own["balance"], own["lots"]) == (0, [])
    assert own["ledger"] == [], own["ledger"]


def test_the_explain_page_gives_only_the_credit_lots_the_balance_counts(api, tenant_a):
    """The explain page says ana's own 30 give the account nothing: the lots it says give sum to the account's
    balance, 5."""
    _team(tenant_a, "return")
    add(api, tenant_a, "ana")
    grant(api, tenant_a, 30, entity="ana")
    grant(api, tenant_a, 5)
    explained = entitlements_explain(
        project=tenant_a.project, customer=Customer.objects.get(external_id="u1")
    )
    credits = next(f for f in explained.features if f.key == "ai_credits")
    giving = [s.value for s in credits.sources if s.kind == "credit_lot" and s.effect == GIVES]
    assert credits.answer["balance"] == 5
    assert sum(giving) == credits.answer["balance"], giving


def test_credits_an_entitys_removal_returns_re_arm_the_accounts_balance_thresholds(api, tenant_a):
    """A balance threshold fires once per funding of the account: ana's 100, returned to the account at her
    removal, fund it anew (whenever her grant was made), so falling past 50 again is announced again."""
    _team(tenant_a, "return")
    add(api, tenant_a, "ana")
    grant(api, tenant_a, 100, entity="ana")  # older than the account's lot below
    grant(api, tenant_a, 100)
    body = {"customer": "u1", "feature": "ai_credits", "quantity": 50}
    assert api.post("/api/v1/entitlements/thresholds", body, key=tenant_a.key).status_code == 201
    spend(api, tenant_a, "c1", 60)  # 100 → 40: announced
    assert Event.objects.filter(type="credits.threshold_reached").count() == 1
    remove(api, tenant_a, "ana")  # 40 → 140: ana's 100 are the account's now
    assert balance(api, tenant_a)["balance"] == 140
    spend(api, tenant_a, "c2", 100)  # 140 → 40: past 50 again, in a new funding
    assert Event.objects.filter(type="credits.threshold_reached").count() == 2


def test_the_credits_answer_naming_an_entity_schedules_no_plan_credits_to_it(
    api,
    tenant_a,
    yearly_plan,  # noqa: F811
    stripe_emulator,
    stripe_webhooks,
):
    """A yearly plan's months of credits to come are the account's: an entity's credits answer schedules none."""
    created = api.post(
        "/api/v1/features", {"key": "seats", "name": "Seats", "type": "allocation"}, key=tenant_a.key
    )
    assert created.status_code == 201, created.json()
    per_seat = {**MONTHLY, "per_entity": {"feature": "seats", "on_remove": "return"}}
    answer = api.patch(
        "/api/v1/products/pro", {"features": {"ai_credits": per_seat, "seats": 3}}, key=tenant_a.key
    )
    assert answer.status_code == 200, answer.json()
    _subscribe_yearly(api, tenant_a, stripe_emulator, stripe_webhooks)
    add(api, tenant_a, "ana", customer="user-1")
    url = "/api/v1/credits?customer=user-1&feature=ai_credits"
    account = api.get(url, key=tenant_a.key).json()
    assert len(account["scheduled"]) == 11  # the account's months to come
    own = api.get(url + "&entity=ana", key=tenant_a.key).json()
    assert (own["balance"], own["lots"]) == (0, [])
    assert own["scheduled"] == [], len(own["scheduled"])


def test_the_entities_list_says_each_ones_own_credits(api, tenant_a, returned):
    add(api, tenant_a, "ana")
    add(api, tenant_a, "bo")
    grant(api, tenant_a, 30, entity="ana")
    spend(api, tenant_a, "e1", 4, entity="ana")
    listed = api.get("/api/v1/entitlements/entities?customer=u1", key=tenant_a.key).json()["data"]
    assert [(row["entity"], row["credits"]) for row in listed] == [
        ("ana", [{"feature": "ai_credits", "balance": 26}]),
        ("bo", [{"feature": "ai_credits", "balance": 0}]),
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_uses_racing_the_entitys_removal_spend_each_credit_once_and_the_rest_is_returned(tenant_a):
    """Eight uses naming ana race her removal (credits returned): each is allowed (her 10 cover them all) or, once
    she is removed, refused as naming no entity; each credit is spent once, what she had left is the account's
    after, and every lot's ledger sums to what it holds."""
    _team(tenant_a, "return")
    client = Client()
    auth = {"Authorization": f"Bearer {tenant_a.key}"}
    made = client.post(
        "/api/v1/entitlements/entities",
        {"customer": "u1", "feature": "seats", "entity": "ana"},
        content_type="application/json",
        headers=auth,
    ).json()
    body = {"customer": "u1", "feature": "ai_credits", "value": 10, "entity": "ana", "reason": "r"}
    assert client.post(GRANTS, body, content_type="application/json", headers=auth).status_code == 201

    def work(i, client):
        if i == 0:
            response = client.delete(
                f"/api/v1/entitlements/entities/{made['id']}",
                {},
                content_type="application/json",
                headers=auth,
            )
            return response.status_code
        response = client.post(
            CONSUME,
            {"id": f"r{i}", "customer": "u1", "feature": "ai_credits", "quantity": 1, "entity": "ana"},
            content_type="application/json",
            headers=auth,
        )
        return response.json().get("allowed", response.json().get("error", {}).get("code"))

    results = _concurrently(9, work)
    assert results[0] == 200
    spent = sum(1 for answer in results[1:] if answer is True)
    assert all(answer in (True, "unknown_entity") for answer in results[1:]), results
    lot = CreditLot.objects.get(entity="ana")
    assert lot.returned_at is not None
    assert lot.remaining == 10 - spent
    assert UsageEvent.objects.count() == spent
    for each in CreditLot.objects.all():
        assert sum(each.entries.values_list("amount", flat=True)) == each.remaining


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_grant_racing_the_entitys_removal_gives_it_nothing_the_removal_missed(tenant_a):
    """A grant to ana has found her live when her removal (credits forfeited) commits: another transaction holds
    the customer's row, so the grant's insert waits. The grant is then refused (400 unknown_entity) or its lot is
    forfeited with hers; never a lot left to a removed entity, and the account gains nothing."""
    _team(tenant_a, "forfeit")
    client = Client()
    auth = {"Authorization": f"Bearer {tenant_a.key}"}
    made = client.post(
        "/api/v1/entitlements/entities",
        {"customer": "u1", "feature": "seats", "entity": "ana"},
        content_type="application/json",
        headers=auth,
    ).json()
    holder_in = threading.Event()
    holder_out = threading.Event()
    answers: dict[str, Any] = {}

    def hold_the_customer():
        try:
            with transaction.atomic():
                Customer.objects.select_for_update().get(external_id="u1")
                holder_in.set()
                holder_out.wait(20)
        finally:
            connection.close()

    def give():
        try:
            body = {"customer": "u1", "feature": "ai_credits", "value": 30, "entity": "ana", "reason": "r"}
            answers["grant"] = Client().post(GRANTS, body, content_type="application/json", headers=auth)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_customer)
    holder.start()
    assert holder_in.wait(20)
    giver = threading.Thread(target=give)
    giver.start()
    until_waiting_on_a_lock()

    def remove_her():
        try:
            url = f"/api/v1/entitlements/entities/{made['id']}"
            answers["remove"] = Client().delete(url, {}, content_type="application/json", headers=auth)
        finally:
            connection.close()

    removed = threading.Thread(target=remove_her)
    removed.start()
    removed.join(3)
    holder_out.set()
    for each in (holder, giver, removed):
        each.join(30)
    assert answers["remove"].status_code == 200
    assert answers["grant"].status_code in (201, 400), answers["grant"].json()
    if answers["grant"].status_code == 400:
        assert answers["grant"].json()["error"]["code"] == "unknown_entity"
        assert not CreditLot.objects.exists()
    else:
        lot = CreditLot.objects.get(entity="ana")
        assert (lot.remaining, lot.voided_at is not None) == (0, True)
    assert not CreditLot.objects.filter(
        voided_at__isnull=True, returned_at__isnull=True, entity="ana"
    ).exists()
    assert Client().get("/api/v1/credits?customer=u1&feature=ai_credits", headers=auth).json()["balance"] == 0
