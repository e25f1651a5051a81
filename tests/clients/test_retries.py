"""Retries reuse the idempotency key, so a retried call never acts twice — shown on a live server behind a
proxy that fails on cue."""

import time

import pytest
from tollgate_client import (
    APIConnectionError,
    APITimeoutError,
    ConflictError,
    ProviderError,
    RateLimitError,
    Tollgate,
)

from billing.models import Payment
from core.models import AuditLogEntry
from customers.models import Customer
from entitlements.models import Grant, Revocation, UsageEvent
from tests.clients.conftest import CANCEL, OK

pytestmark = pytest.mark.django_db(transaction=True)


def _one_key(seen):
    keys = {s.idempotency_key for s in seen}
    assert len(keys) == 1
    (key,) = keys
    assert key
    return key


def test_a_503_before_tollgate_is_retried_with_the_same_key_and_creates_one_customer(
    via_proxy, proxy, tenant_a
):
    proxy.fail("POST", 503)
    customer = via_proxy.customers.create(external_id="user-1", email="ada@example.com")
    posts = proxy.requests("POST")
    assert [p.status for p in posts] == [503, 201]
    _one_key(posts)
    assert Customer.objects.filter(project=tenant_a.project).count() == 1
    assert customer.external_id == "user-1"


def test_a_lost_answer_is_replayed_not_repeated(via_proxy, proxy, tenant_a, catalog):
    # Tollgate created the payment, then the answer was lost (503 on the way back): the retry gets the stored
    # answer with `Idempotent-Replayed`, and there is still one payment.
    proxy.fail("POST", 503, forward=True)
    payment = via_proxy.payments.create(
        customer="user-1", price="credits-1000", flow="checkout", success_url=OK, cancel_url=CANCEL
    )
    posts = proxy.requests("POST")
    assert [(p.status, p.replayed) for p in posts] == [(503, False), (201, True)]
    _one_key(posts)
    assert list(Payment.objects.filter(project=tenant_a.project).values_list("pk", flat=True)) == [payment.id]


def test_a_dropped_connection_is_retried_with_the_same_key(via_proxy, proxy, tenant_a):
    proxy.fail("POST", drop=True)
    via_proxy.customers.create(external_id="user-1")
    posts = proxy.requests("POST")
    assert [(p.status, p.replayed) for p in posts] == [(None, False), (201, True)]
    _one_key(posts)
    assert Customer.objects.filter(project=tenant_a.project).count() == 1


def test_a_timeout_is_retried_with_the_same_key(proxy, tenant_a):
    # The first answer is held well past the client's timeout, and the timeout leaves the retry's answer (a
    # replay) seconds on a loaded machine: a 0.5 s timeout timed the retry out too under CI's load.
    proxy.fail("POST", delay=8)
    with Tollgate(tenant_a.key, proxy.url, timeout=3, max_retries=1) as client:
        client.customers.create(external_id="user-1")
    posts = proxy.requests("POST")
    assert [p.replayed for p in posts] == [False, True]
    _one_key(posts)
    assert Customer.objects.filter(project=tenant_a.project).count() == 1


def test_the_callers_key_is_used_for_every_attempt(via_proxy, proxy):
    proxy.fail("POST", 502)
    via_proxy.customers.create(external_id="user-1", idempotency_key="signup-user-1")
    assert _one_key(proxy.requests("POST")) == "signup-user-1"
    # The same key later, with the same request: the first answer again, nothing done twice.
    again = via_proxy.customers.create(external_id="user-1", idempotency_key="signup-user-1")
    assert again.external_id == "user-1"
    assert proxy.requests("POST")[-1].replayed is True
    # The same key for another request is refused.
    with pytest.raises(ConflictError) as caught:
        via_proxy.customers.create(external_id="user-2", idempotency_key="signup-user-1")
    assert caught.value.code == "idempotency_key_reused"


def test_each_logical_call_gets_its_own_key(via_proxy, proxy):
    via_proxy.customers.create(external_id="user-1")
    via_proxy.customers.create(external_id="user-1")
    keys = [p.idempotency_key for p in proxy.requests("POST")]
    assert len(set(keys)) == 2
    assert not any(p.replayed for p in proxy.requests("POST"))


def test_429_waits_out_retry_after_then_succeeds(via_proxy, proxy):
    proxy.fail("POST", 429, retry_after="1")
    started = time.monotonic()
    via_proxy.customers.create(external_id="user-1")
    assert time.monotonic() - started >= 1.0
    assert [p.status for p in proxy.requests("POST")] == [429, 201]
    _one_key(proxy.requests("POST"))


def test_a_retry_after_beyond_a_minute_is_left_to_the_caller(via_proxy, proxy):
    proxy.fail("POST", 429, retry_after="3600")
    with pytest.raises(RateLimitError) as caught:
        via_proxy.customers.create(external_id="user-1")
    assert caught.value.retry_after == 3600
    assert len(proxy.requests("POST")) == 1


def test_idempotency_key_in_use_is_retried(via_proxy, proxy):
    proxy.fail("POST", 409, code="idempotency_key_in_use")
    via_proxy.customers.create(external_id="user-1")
    assert [p.status for p in proxy.requests("POST")] == [409, 201]
    _one_key(proxy.requests("POST"))


def test_other_conflicts_are_not_retried(via_proxy, proxy):
    proxy.fail("POST", 409, code="already_subscribed")
    with pytest.raises(ConflictError):
        via_proxy.customers.create(external_id="user-1")
    assert len(proxy.requests("POST")) == 1


def test_gets_are_retried_without_a_key(via_proxy, proxy):
    via_proxy.customers.create(external_id="user-1")
    proxy.fail("GET", 502).fail("GET", drop=True)
    assert via_proxy.customers.retrieve("user-1").external_id == "user-1"
    gets = proxy.requests("GET")
    assert [g.status for g in gets] == [502, None, 200]
    assert {g.idempotency_key for g in gets} == {None}


def test_after_max_retries_the_last_error_is_raised(via_proxy, proxy, tenant_a):
    for _ in range(3):
        proxy.fail("POST", 503, code="provider_unavailable")
    with pytest.raises(ProviderError) as caught:
        via_proxy.customers.create(external_id="user-1")
    assert (caught.value.status, caught.value.code, caught.value.request_id) == (
        503,
        "provider_unavailable",
        "req_proxy",
    )
    assert len(proxy.requests("POST")) == 3  # the first attempt and max_retries=2 retries
    _one_key(proxy.requests("POST"))
    assert not Customer.objects.filter(project=tenant_a.project).exists()


def test_max_retries_zero_fails_at_once(via_proxy, proxy):
    proxy.fail("POST", 503)
    with pytest.raises(ProviderError):
        via_proxy.with_options(max_retries=0).customers.create(external_id="user-1")
    assert len(proxy.requests("POST")) == 1


def test_an_unreachable_server_is_a_connection_error(tenant_a):
    with (
        Tollgate(tenant_a.key, "http://127.0.0.1:9", timeout=2, max_retries=1) as client,
        pytest.raises(APIConnectionError) as caught,
    ):
        client.customers.create(external_id="user-1")
    assert caught.value.status is None
    assert not isinstance(caught.value, APITimeoutError)


# --- the usage, entitlements and credits calls ----------------------------------------------------------------


def test_a_lost_consume_answer_is_replayed_and_counted_once(via_proxy, proxy, plans):
    proxy.fail("POST", 503, forward=True)
    answer = via_proxy.entitlements.consume(id="export-1", customer="user-1", feature="exports")
    assert (answer.allowed, answer.used, answer.duplicate) == (True, 1, False)  # the first answer, replayed
    posts = proxy.requests("POST")
    assert [(p.path, p.status, p.replayed) for p in posts] == [
        ("/api/v1/entitlements/consume", 503, False),
        ("/api/v1/entitlements/consume", 200, True),
    ]
    _one_key(posts)
    assert UsageEvent.objects.filter(event_id="export-1").count() == 1
    assert via_proxy.entitlements.check(customer="user-1", feature="exports").used == 1


def test_a_dropped_batch_is_retried_with_the_same_key(via_proxy, proxy, plans):
    proxy.fail("POST", drop=True)
    events = [{"id": f"e-{n}", "customer": "user-1", "feature": "exports", "quantity": 1} for n in (1, 2)]
    result = via_proxy.usage.record_batch(events=events)
    assert (result.accepted, result.duplicates) == (2, 0)  # the first answer, not "2 duplicates"
    posts = proxy.requests("POST")
    assert [(p.status, p.replayed) for p in posts] == [(None, False), (200, True)]
    _one_key(posts)
    assert UsageEvent.objects.count() == 2


def test_a_usage_record_retried_after_a_429_uses_the_same_key(via_proxy, proxy, plans):
    proxy.fail("POST", 429, retry_after="0")
    via_proxy.usage.record(id="e-1", customer="user-1", feature="exports", quantity=2)
    posts = proxy.requests("POST")
    assert [p.status for p in posts] == [429, 201]
    _one_key(posts)


def test_grants_and_revocations_are_retried_with_the_same_key(via_proxy, proxy, plans, tenant_a):
    proxy.fail("POST", 502)
    grant = via_proxy.entitlements.grants.create(
        customer="user-1", feature="exports", value=2, reason="support"
    )
    _one_key(proxy.requests("POST"))
    assert Grant.objects.filter(project=tenant_a.project).count() == 1

    # The DELETE and its reason body went through; the answer was lost: the retry replays it.
    proxy.fail("DELETE", 500, forward=True)
    ended = via_proxy.entitlements.grants.delete(grant.id, reason="ticket closed")
    assert ended.deleted is True
    deletes = proxy.requests("DELETE")
    assert [(d.status, d.replayed) for d in deletes] == [(500, False), (200, True)]
    _one_key(deletes)
    assert AuditLogEntry.objects.filter(action="entitlement_grant.deleted", target_id=grant.id).count() == 1

    proxy.fail("POST", drop=True)
    revocation = via_proxy.entitlements.revocations.create(customer="user-1", feature="sso", reason="abuse")
    assert [p.replayed for p in proxy.requests("POST")[-2:]] == [False, True]
    assert Revocation.objects.filter(project=tenant_a.project).count() == 1
    proxy.fail("DELETE", 503)
    assert via_proxy.entitlements.revocations.delete(revocation.id, reason="appeal").deleted is True
    _one_key(proxy.requests("DELETE")[-2:])


def test_a_release_retried_after_a_timeout_frees_one_seat(proxy, tenant_a, plans):
    with Tollgate(tenant_a.key, proxy.url, timeout=0.5, max_retries=1) as client:
        client.entitlements.consume(id="seat-1", customer="team-1", feature="seats", quantity=2)
        proxy.fail("POST", delay=1.5)
        freed = client.entitlements.release(id="free-1", customer="team-1", feature="seats", reason="left")
    assert (freed.used, freed.duplicate) == (1, False)
    posts = proxy.requests("POST")[-2:]
    assert [p.replayed for p in posts] == [False, True]
    _one_key(posts)
    assert AuditLogEntry.objects.filter(action="entitlement.released").count() == 1
