"""The client's usage, entitlements and credits methods on the live server, with exact answers: recording usage
(once per id, batches all or nothing), checks and lists for a user never seen, consume until denied, allocation
consume and release, entities added, renamed and removed and their own limits in checks and consumes, credits
granted, spent and taken back, revocations and grants ended with a reason."""

from datetime import UTC, datetime, timedelta

import pytest
from tollgate_client import ConflictError, InvalidRequestError, NotFoundError, Page
from tollgate_client.types import (
    CreditBalance,
    CustomerEntitlements,
    Entitlement,
    EntitlementCheck,
    EntitlementEntity,
    EntitlementSource,
    Entity,
    EntityFeatureUse,
    Grant,
    Revocation,
    UsageBatchResult,
    UsageCorrection,
    UsageEvent,
    UsageSummary,
)

from core.models import AuditLogEntry
from customers.models import Customer
from entitlements.models import UsageEvent as UsageEventRow

pytestmark = pytest.mark.django_db(transaction=True)


def _events() -> int:
    return UsageEventRow.objects.count()


# --- usage --------------------------------------------------------------------------------------------------


def test_record_counts_a_repeated_id_once(tollgate, plans):
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    first = tollgate.usage.record(
        id="export-1",
        customer="user-1",
        feature="exports",
        quantity=2,
        timestamp=at,
        properties={"fmt": "csv"},
    )
    assert isinstance(first, UsageEvent)
    assert (first.id, first.object, first.customer, first.feature, first.quantity, first.properties) == (
        "export-1",
        "usage_event",
        "user-1",
        "exports",
        2,
        {"fmt": "csv"},
    )
    assert datetime.fromisoformat(first.timestamp) == at
    assert first.period_start is not None
    assert first.stripe_meter is not None
    assert (first.stripe_meter.status, first.stripe_meter.attempts) == (None, 0)  # no metered price

    again = tollgate.usage.record(id="export-1", customer="user-1", feature="exports", quantity=2)
    assert again.raw == first.raw  # the stored event, not a second one
    assert tollgate.entitlements.check(customer="user-1", feature="exports").used == 2
    assert _events() == 1


def test_summary_shows_the_periods_usage(tollgate, plans):
    tollgate.usage.record(id="export-1", customer="user-1", feature="exports", quantity=2)
    tollgate.usage.record(id="export-2", customer="user-1", feature="exports", quantity=3)

    summary = tollgate.usage.summary(customer="user-1", feature="exports")

    assert isinstance(summary, UsageSummary)
    # No metered price sells exports: counted, never sent to a meter, billed to nobody.
    assert (summary.object, summary.customer, summary.feature, summary.quantity) == (
        "usage_summary",
        "user-1",
        "exports",
        5,
    )
    billed = (summary.billed_quantity, summary.pending_quantity, summary.price, summary.amount_due_estimate)
    assert billed == (0, 0, None, 0)
    assert summary.period_start < summary.period_end


def test_correct_voids_and_amends_an_event_once_per_id(tollgate, plans):
    tollgate.usage.record(id="export-1", customer="user-1", feature="exports", quantity=5)
    tollgate.usage.record(id="export-2", customer="user-1", feature="exports", quantity=3)

    fixed = tollgate.usage.correct(
        id="fix-1", event="export-1", action="amend", quantity=2, reason="double count"
    )

    assert isinstance(fixed, UsageCorrection)
    assert (
        fixed.id,
        fixed.object,
        fixed.event,
        fixed.action,
        fixed.quantity_before,
        fixed.quantity_after,
    ) == (
        "fix-1",
        "usage_correction",
        "export-1",
        "amend",
        5,
        2,
    )
    assert (fixed.customer, fixed.feature, fixed.reason, fixed.thresholds_uncrossed) == (
        "user-1",
        "exports",
        "double count",
        [],
    )
    assert fixed.stripe_meter.status == "none"  # no metered price sells exports: nothing at Stripe
    again = tollgate.usage.correct(
        id="fix-1", event="export-1", action="amend", quantity=2, reason="double count"
    )
    assert again.raw == fixed.raw == tollgate.usage.correction("fix-1").raw
    voided = tollgate.usage.correct(id="fix-2", event="export-2", action="void", reason="test traffic")
    assert (voided.quantity_before, voided.quantity_after) == (3, 0)
    assert tollgate.usage.summary(customer="user-1", feature="exports").quantity == 2
    with pytest.raises(ConflictError) as caught:
        tollgate.usage.correct(id="fix-3", event="export-2", action="void", reason="again")
    assert (caught.value.status, caught.value.code) == (409, "usage_event_voided")
    with pytest.raises(NotFoundError):
        tollgate.usage.correction("fix-3")
    assert AuditLogEntry.objects.filter(action__startswith="usage_event.").count() == 2


def test_record_of_a_feature_that_is_not_metered_is_refused(tollgate, plans):
    with pytest.raises(InvalidRequestError) as caught:
        tollgate.usage.record(id="seat-1", customer="user-1", feature="seats", quantity=1)
    assert (caught.value.status, caught.value.code, caught.value.param) == (
        400,
        "feature_not_metered",
        "feature",
    )
    assert _events() == 0


def test_record_batch_counts_duplicates_once(tollgate, plans):
    tollgate.usage.record(id="e-0", customer="user-1", feature="exports", quantity=1)
    result = tollgate.usage.record_batch(
        events=[
            {"id": "e-1", "customer": "user-1", "feature": "exports", "quantity": 1},
            {"id": "e-2", "customer": "user-2", "feature": "exports", "quantity": 2, "properties": {"a": 1}},
            {"id": "e-1", "customer": "user-1", "feature": "exports", "quantity": 1},  # repeated in the batch
            {"id": "e-0", "customer": "user-1", "feature": "exports", "quantity": 1},  # recorded before
            {
                "id": "e-3",
                "customer": "user-1",
                "feature": "exports",
                "quantity": 1,
                "timestamp": datetime.now(UTC) - timedelta(seconds=5),
            },
        ]
    )
    assert isinstance(result, UsageBatchResult)
    assert (result.accepted, result.duplicates) == (3, 2)
    assert tollgate.entitlements.check(customer="user-1", feature="exports").used == 3
    assert tollgate.entitlements.check(customer="user-2", feature="exports").used == 2

    # The whole batch again (its answer was lost): nothing counted twice.
    again = tollgate.usage.record_batch(
        events=[
            {"id": f"e-{n}", "customer": "user-1", "feature": "exports", "quantity": 1} for n in (0, 1, 3)
        ]
    )
    assert (again.accepted, again.duplicates) == (0, 3)
    assert _events() == 4


@pytest.mark.parametrize(
    ("bad", "param", "code"),
    [
        (
            {"id": "x-2", "customer": "user-1", "feature": "exports", "quantity": -1},
            "events[1].quantity",
            None,
        ),
        ({"id": "x-2", "customer": "user-1", "feature": "nope", "quantity": 1}, "events[1].feature", None),
        (
            {"id": "x-2", "customer": "user-1", "feature": "exports"},
            "events[1].quantity",
            "parameter_missing",
        ),
        (
            {"id": "x-2", "customer": "user-1", "feature": "exports", "quantity": 1, "extra": True},
            "events[1].extra",
            "unknown_parameter",
        ),
    ],
)
def test_record_batch_with_an_invalid_event_writes_nothing(tollgate, plans, bad, param, code):
    with pytest.raises(InvalidRequestError) as caught:
        tollgate.usage.record_batch(
            events=[{"id": "x-1", "customer": "user-1", "feature": "exports", "quantity": 1}, bad]
        )
    error = caught.value
    assert (error.status, error.type, error.param) == (400, "invalid_request_error", param)
    if code is not None:
        assert error.code == code
    assert error.request_id
    assert _events() == 0
    assert not Customer.objects.filter(external_id="user-1").exists()


# --- checks and lists ---------------------------------------------------------------------------------------


def test_check_and_list_as_of_a_past_instant(tollgate, plans):
    """`as_of` as a datetime (sent in ISO 8601 with its offset URL-encoded) answers what was recorded by then."""
    tollgate.entitlements.consume(id="a1", customer="user-1", feature="exports", quantity=2)
    between = datetime.now(UTC)
    tollgate.entitlements.consume(id="a2", customer="user-1", feature="exports", quantity=1)
    then = tollgate.entitlements.check(customer="user-1", feature="exports", as_of=between)
    now = tollgate.entitlements.check(customer="user-1", feature="exports")
    assert (then.used, then.remaining, now.used, now.remaining) == (2, 1, 3, 0)
    listed = tollgate.entitlements.list(customer="user-1", as_of=between)
    assert next(row for row in listed.entitlements if row.feature == "exports").used == 2
    with pytest.raises(InvalidRequestError) as refused:
        tollgate.entitlements.check(customer="user-1", feature="exports", as_of=between + timedelta(hours=1))
    assert refused.value.param == "as_of"


def test_check_for_a_user_never_seen_answers_the_default_product(tollgate, plans):
    check = tollgate.entitlements.check(customer="never-seen", feature="exports")
    assert isinstance(check, EntitlementCheck)
    assert check == EntitlementCheck(
        allowed=True,
        feature="exports",
        type="metered",
        enabled=True,
        value=3,
        limit=3,
        used=0,
        remaining=3,
        balance=None,
        held=0,
        overage="blocked",
        cap=None,
        account_cap=None,
        credits=None,
        step="allowance",
        windows=[],
        binding=None,
        retry_after=None,
    )
    assert tollgate.entitlements.check(customer="never-seen", feature="exports", quantity=4).allowed is False
    assert tollgate.entitlements.check(customer="never-seen", feature="sso").allowed is True
    credits = tollgate.entitlements.check(customer="never-seen", feature="ai_credits")
    assert (credits.allowed, credits.enabled, credits.balance) == (False, False, 0)
    tier = tollgate.entitlements.check(customer="never-seen", feature="tier")
    assert (tier.allowed, tier.value) == (True, {"name": "free"})
    assert not Customer.objects.exists()  # reading creates nobody

    with pytest.raises(NotFoundError) as caught:
        tollgate.entitlements.check(customer="never-seen", feature="nope")
    assert (caught.value.status, caught.value.param) == (404, "feature")


def test_list_for_a_user_never_seen_answers_the_default_product(tollgate, plans, tenant_a):
    listed = tollgate.entitlements.list(customer="never-seen")
    assert isinstance(listed, CustomerEntitlements)
    assert listed.customer == "never-seen"
    assert sorted(e.feature for e in listed.entitlements) == ["ai_credits", "exports", "seats", "sso", "tier"]
    exports = listed.get("exports")
    assert isinstance(exports, Entitlement)
    assert (exports.type, exports.enabled, exports.limit, exports.used, exports.remaining) == (
        "metered",
        True,
        3,
        0,
        3,
    )
    assert exports.resets_at is not None
    assert datetime.fromisoformat(exports.resets_at) > datetime.now(UTC)
    free_id = tenant_a.project.products.get(key="free").pk
    assert exports.sources == [EntitlementSource(type="default_product", id=free_id, product="free", value=3)]
    seats = listed.get("seats")
    assert seats is not None
    assert (seats.type, seats.limit, seats.used, seats.resets_at) == ("allocation", 2, 0, None)
    credits = listed.get("ai_credits")
    assert credits is not None
    assert (credits.enabled, credits.balance, credits.sources) == (False, 0, [])
    assert not Customer.objects.exists()


# --- consume and release ------------------------------------------------------------------------------------


def test_consume_until_denied(tollgate, plans):
    answers = [
        tollgate.entitlements.consume(id=f"export-{n}", customer="user-1", feature="exports")
        for n in (1, 2, 3)
    ]
    assert [(a.allowed, a.used, a.remaining) for a in answers] == [(True, 1, 2), (True, 2, 1), (True, 3, 0)]
    denied = tollgate.entitlements.consume(id="export-4", customer="user-1", feature="exports")
    assert (denied.allowed, denied.used, denied.remaining, denied.limit, denied.duplicate) == (
        False,
        3,
        0,
        3,
        False,
    )
    assert _events() == 3  # the denied one recorded nothing

    # A retry of an allowed consume with the same id: the current state, nothing more recorded.
    replay = tollgate.entitlements.consume(id="export-3", customer="user-1", feature="exports")
    assert (replay.allowed, replay.duplicate, replay.used) == (True, True, 3)
    with pytest.raises(ConflictError) as caught:
        tollgate.entitlements.consume(id="export-3", customer="user-1", feature="exports", quantity=2)
    assert (caught.value.code, caught.value.param) == ("idempotency_id_reused", "id")
    with pytest.raises(InvalidRequestError) as caught:
        tollgate.entitlements.consume(id="sso-1", customer="user-1", feature="sso")
    assert (caught.value.code, caught.value.param) == ("feature_not_consumable", "feature")
    assert _events() == 3
    assert tollgate.entitlements.check(customer="user-1", feature="exports").used == 3


def test_allocation_consume_and_release(tollgate, plans, tenant_a):
    taken = tollgate.entitlements.consume(id="seat-a", customer="team-1", feature="seats", quantity=2)
    assert (taken.allowed, taken.type, taken.limit, taken.used, taken.remaining) == (
        True,
        "allocation",
        2,
        2,
        0,
    )
    full = tollgate.entitlements.consume(id="seat-b", customer="team-1", feature="seats")
    assert (full.allowed, full.used) == (False, 2)

    freed = tollgate.entitlements.release(
        id="free-1", customer="team-1", feature="seats", quantity=1, reason="ada left"
    )
    assert isinstance(freed, EntitlementCheck)
    assert (freed.allowed, freed.used, freed.remaining, freed.duplicate) == (True, 1, 1, False)
    again = tollgate.entitlements.release(id="free-1", customer="team-1", feature="seats", quantity=1)
    assert (again.duplicate, again.used) == (True, 1)
    entry = AuditLogEntry.objects.get(project_id=tenant_a.project.pk, action="entitlement.released")
    assert (entry.reason, entry.before, entry.after["in_use"]) == ("ada left", {"in_use": 2}, 1)

    with pytest.raises(InvalidRequestError) as caught:
        tollgate.entitlements.release(id="free-2", customer="team-1", feature="seats", quantity=5)
    assert (caught.value.code, caught.value.param) == ("release_exceeds_allocation", "quantity")
    with pytest.raises(InvalidRequestError) as caught:
        tollgate.entitlements.release(id="free-3", customer="team-1", feature="exports")
    assert caught.value.code == "feature_not_releasable"
    assert tollgate.entitlements.check(customer="team-1", feature="seats").used == 1
    assert tollgate.entitlements.consume(id="seat-c", customer="team-1", feature="seats").allowed is True


# --- entities -----------------------------------------------------------------------------------------------


def test_entities_added_renamed_listed_and_removed(tollgate, tollgate_b, per_seat, tenant_a):
    ana = tollgate.entitlements.entities.add(customer="team-1", feature="seats", entity="ana", name="Ana")
    assert isinstance(ana, Entity)
    assert (ana.object, ana.customer, ana.feature, ana.entity, ana.name, ana.removed_at) == (
        "entity",
        "team-1",
        "seats",
        "ana",
        "Ana",
        None,
    )
    assert ana.id.startswith("ent_")
    again = tollgate.entitlements.entities.add(customer="team-1", feature="seats", entity="ana", name="Other")
    assert (again.id, again.name) == (ana.id, "Ana")  # the same id: as it is, nothing taken twice
    bo = tollgate.entitlements.entities.add(customer="team-1", feature="seats", entity="bo")
    assert bo.name == ""
    seats = tollgate.entitlements.check(customer="team-1", feature="seats")
    assert (seats.used, seats.remaining) == (2, 0)

    with pytest.raises(ConflictError) as caught:
        tollgate.entitlements.entities.add(customer="team-1", feature="seats", entity="cy")
    assert (caught.value.code, caught.value.param) == ("allocation_exhausted", "feature")
    with pytest.raises(InvalidRequestError) as caught:
        tollgate.entitlements.entities.add(customer="team-1", feature="summaries", entity="cy")
    assert (caught.value.code, caught.value.param) == ("feature_not_allocation", "feature")

    page = tollgate.entitlements.entities.list(customer="team-1")
    assert isinstance(page, Page)
    assert ([(e.id, e.entity, e.name) for e in page.data], page.has_more) == (
        [(ana.id, "ana", "Ana"), (bo.id, "bo", "")],
        False,
    )
    renamed = tollgate.entitlements.entities.rename(bo.id, name="Bo")
    assert (renamed.id, renamed.entity, renamed.name) == (bo.id, "bo", "Bo")
    with pytest.raises(NotFoundError):  # another project's entity
        tollgate_b.entitlements.entities.rename(bo.id, name="Not mine")
    with pytest.raises(NotFoundError):
        tollgate_b.entitlements.entities.remove(bo.id)

    removed = tollgate.entitlements.entities.remove(ana.id, reason="left the team")
    assert (removed.id, removed.entity) == (ana.id, "ana")
    assert removed.removed_at is not None
    assert tollgate.entitlements.entities.remove(ana.id).removed_at == removed.removed_at  # changes nothing
    with pytest.raises(InvalidRequestError) as caught:
        tollgate.entitlements.entities.rename(ana.id, name="Ana P.")
    assert caught.value.code == "entity_removed"
    assert [e.entity for e in tollgate.entitlements.entities.list(customer="team-1")] == ["bo"]
    assert tollgate.entitlements.check(customer="team-1", feature="seats").used == 1
    used = tollgate.usage.record(id="bo-1", customer="team-1", feature="summaries", quantity=2, entity="bo")
    assert used.properties == {"entity": "bo"}
    assert tollgate.entitlements.check(customer="team-1", feature="summaries", entity="bo").entity.used == 2
    entries = AuditLogEntry.objects.filter(project_id=tenant_a.project.pk, target_id=ana.id)
    assert sorted(entries.values_list("action", "reason")) == [
        ("entity.added", ""),
        ("entity.removed", "left the team"),
    ]


def test_an_entitys_own_limit_in_checks_and_consumes(tollgate, per_seat):
    for seat in ("ana", "bo"):
        tollgate.entitlements.entities.add(customer="team-1", feature="seats", entity=seat)
    first = tollgate.entitlements.consume(
        id="sum-1", customer="team-1", feature="summaries", quantity=3, entity="ana"
    )
    assert (first.allowed, first.used, first.remaining, first.binding) == (True, 3, 7, None)
    assert first.entity == EntitlementEntity.from_dict(
        {
            "id": "ana",
            "feature": "seats",
            "limit": 4,
            "used": 3,
            "remaining": 1,
            "windows": [],
            "binding": None,
        }
    )
    refused = tollgate.entitlements.consume(
        id="sum-2", customer="team-1", feature="summaries", quantity=2, entity="ana"
    )
    assert (refused.allowed, refused.binding, refused.used, refused.remaining) == (False, "entity", 3, 7)
    assert (refused.entity.used, refused.entity.remaining) == (3, 1)
    assert refused.retry_after is not None
    assert refused.retry_after > 0
    assert _events() == 1  # the refused one recorded nothing

    # The same id again counts once, for the entity as for the account.
    replay = tollgate.entitlements.consume(
        id="sum-1", customer="team-1", feature="summaries", quantity=3, entity="ana"
    )
    assert (replay.duplicate, replay.used, replay.entity.used) == (True, 3, 3)
    asked = tollgate.entitlements.check(customer="team-1", feature="summaries", quantity=4, entity="bo")
    assert (asked.allowed, asked.entity.used, asked.entity.remaining) == (True, 0, 4)
    over = tollgate.entitlements.check(customer="team-1", feature="summaries", quantity=2, entity="ana")
    assert (over.allowed, over.binding, over.entity.remaining) == (False, "entity", 1)
    # Without an entity: the account's answer only, with 7 left.
    account = tollgate.entitlements.check(customer="team-1", feature="summaries", quantity=7)
    assert (account.allowed, account.remaining, account.entity) == (True, 7, None)

    with pytest.raises(InvalidRequestError) as caught:
        tollgate.entitlements.consume(id="sum-3", customer="team-1", feature="summaries", entity="nobody")
    assert (caught.value.code, caught.value.param) == ("unknown_entity", "entity")
    with pytest.raises(InvalidRequestError) as caught:
        tollgate.entitlements.check(customer="team-1", feature="summaries", entity="nobody")
    assert caught.value.code == "unknown_entity"
    with pytest.raises(InvalidRequestError) as caught:
        tollgate.entitlements.consume(id="exp-1", customer="team-1", feature="exports", entity="ana")
    assert caught.value.code == "entity_not_counted"
    assert _events() == 1
    listed = {row.entity: row.usage for row in tollgate.entitlements.entities.list(customer="team-1")}
    assert listed == {
        "ana": [
            EntityFeatureUse.from_dict(
                {"feature": "summaries", "limit": 4, "used": 3, "remaining": 1, "windows": []}
            )
        ],
        "bo": [
            EntityFeatureUse.from_dict(
                {"feature": "summaries", "limit": 4, "used": 0, "remaining": 4, "windows": []}
            )
        ],
    }


# --- credits ------------------------------------------------------------------------------------------------


def test_credits_granted_consumed_and_taken_back_with_the_ledger(tollgate, plans, tenant_a):
    empty = tollgate.credits.retrieve(customer="user-1", feature="ai_credits")
    assert (empty.balance, empty.lots, empty.ledger) == (0, [], [])

    grant = tollgate.entitlements.grants.create(
        customer="user-1", feature="ai_credits", value=100, reason="welcome credits"
    )
    assert isinstance(grant, Grant)
    assert (grant.object, grant.customer, grant.feature, grant.value, grant.reason, grant.deleted) == (
        "entitlement_grant",
        "user-1",
        "ai_credits",
        100,
        "welcome credits",
        False,
    )
    spent = tollgate.entitlements.consume(id="gen-1", customer="user-1", feature="ai_credits", quantity=30)
    assert (spent.allowed, spent.balance, spent.remaining) == (True, 70, 70)
    short = tollgate.entitlements.consume(id="gen-2", customer="user-1", feature="ai_credits", quantity=80)
    assert (short.allowed, short.balance) == (False, 70)

    credits = tollgate.credits.retrieve(customer="user-1", feature="ai_credits")
    assert isinstance(credits, CreditBalance)
    assert (credits.object, credits.customer, credits.feature, credits.balance) == (
        "credit_balance",
        "user-1",
        "ai_credits",
        70,
    )
    (lot,) = credits.lots
    assert (lot.source, lot.amount, lot.remaining, lot.voided, lot.expires_at) == (
        "grant",
        100,
        70,
        False,
        None,
    )
    assert [(e.type, e.amount, e.lot, e.reference) for e in credits.ledger] == [
        ("consume", -30, lot.id, "gen-1"),
        ("grant", 100, lot.id, grant.id),
    ]

    # Ending the grant takes back what is left of it.
    ended = tollgate.entitlements.grants.delete(grant.id, reason="promotion over")
    assert (ended.id, ended.deleted) == (grant.id, True)
    after = tollgate.credits.retrieve(customer="user-1", feature="ai_credits")
    assert after.balance == 0
    assert [(e.type, e.amount) for e in after.ledger] == [("revoke", -70), ("consume", -30), ("grant", 100)]
    assert after.lots[0].remaining == 0
    assert tollgate.entitlements.check(customer="user-1", feature="ai_credits").allowed is False

    with pytest.raises(InvalidRequestError) as caught:
        tollgate.credits.retrieve(customer="user-1", feature="exports")
    assert (caught.value.code, caught.value.param) == ("feature_not_credits", "feature")


# --- grants and revocations ---------------------------------------------------------------------------------


def test_a_top_up_grant_ended_with_a_reason(tollgate, tollgate_b, plans, tenant_a):
    for n in (1, 2, 3):
        tollgate.entitlements.consume(id=f"export-{n}", customer="user-1", feature="exports")
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    grant = tollgate.entitlements.grants.create(
        customer="user-1", feature="exports", value=2, expires_at=expires, reason="support ticket 12"
    )
    assert (grant.value, datetime.fromisoformat(grant.expires_at)) == (2, expires)
    check = tollgate.entitlements.check(customer="user-1", feature="exports", quantity=2)
    assert (check.allowed, check.limit, check.remaining) == (True, 5, 2)
    sources = tollgate.entitlements.list(customer="user-1").get("exports").sources
    assert [(s.type, s.id, s.value, s.reason) for s in sources] == [
        ("default_product", tenant_a.project.products.get(key="free").pk, 3, None),
        ("grant", grant.id, 2, "support ticket 12"),
    ]

    # Another project cannot see or end it.
    with pytest.raises(NotFoundError):
        tollgate_b.entitlements.grants.delete(grant.id, reason="not mine")

    ended = tollgate.entitlements.grants.delete(grant.id, reason="ticket closed")
    assert (ended.id, ended.deleted, ended.reason) == (grant.id, True, "support ticket 12")
    assert tollgate.entitlements.check(customer="user-1", feature="exports").allowed is False
    entry = AuditLogEntry.objects.get(action="entitlement_grant.deleted", target_id=grant.id)
    assert (entry.reason, entry.project_id, entry.actor_type) == (
        "ticket closed",
        tenant_a.project.pk,
        "api_key",
    )
    with pytest.raises(NotFoundError):
        tollgate.entitlements.grants.delete(grant.id)  # already ended


def test_revocation_created_and_deleted(tollgate, plans, tenant_a):
    assert tollgate.entitlements.check(customer="user-1", feature="sso").allowed is True
    revocation = tollgate.entitlements.revocations.create(customer="user-1", feature="sso", reason="abuse")
    assert isinstance(revocation, Revocation)
    assert (revocation.object, revocation.customer, revocation.feature, revocation.reason) == (
        "entitlement_revocation",
        "user-1",
        "sso",
        "abuse",
    )
    assert (revocation.expires_at, revocation.deleted) == (None, False)
    check = tollgate.entitlements.check(customer="user-1", feature="sso")
    assert (check.allowed, check.enabled, check.value) == (False, False, False)
    sso = tollgate.entitlements.list(customer="user-1").get("sso")
    assert sso is not None
    assert [(s.type, s.reason) for s in sso.sources] == [("default_product", None), ("revocation", "abuse")]

    ended = tollgate.entitlements.revocations.delete(revocation.id, reason="appeal accepted")
    assert (ended.id, ended.deleted) == (revocation.id, True)
    assert tollgate.entitlements.check(customer="user-1", feature="sso").allowed is True
    entry = AuditLogEntry.objects.get(action="entitlement_revocation.deleted", target_id=revocation.id)
    assert entry.reason == "appeal accepted"

    # Without a reason the DELETE has no body, and that is fine too.
    second = tollgate.entitlements.revocations.create(customer="user-1", feature="sso", reason="again")
    assert tollgate.entitlements.revocations.delete(second.id).deleted is True
    assert (
        AuditLogEntry.objects.get(action="entitlement_revocation.deleted", target_id=second.id).reason == ""
    )
