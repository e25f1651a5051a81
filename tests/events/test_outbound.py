"""Outbound events: endpoints, signed deliveries to a real loopback server, retries on a database schedule,
disabling, redelivery, type filters, secret rolls and the SSRF guard."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone
from tollgate_client.webhooks import SignatureVerificationError, construct_event

from events.models import Delivery, Event, WebhookEndpoint
from events.services import record
from events.tasks import deliveries_sweep
from tests.events.factories import WebhookEndpointFactory
from tests.events.receiver import Receiver


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def _endpoint(api, tenant, url, events=("*",)):
    response = api.post(
        "/api/v1/webhook_endpoints",
        {"url": url, "events": list(events), "description": "app"},
        key=tenant.key,
    )
    assert response.status_code == 201, response.content
    return response.json()


def _record(project, capture, event_type="payment.succeeded", obj=None):
    with capture(execute=True), transaction.atomic():
        return record.event_record(
            project=project, type=event_type, data_object=obj or {"id": "pay_1", "object": "payment"}
        )


def test_endpoint_crud_and_secret_shown_once(api, tenant_a, receiver):
    created = _endpoint(api, tenant_a, receiver.url, events=["payment.succeeded", "checkout.completed"])
    assert created["object"] == "webhook_endpoint"
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["checkout.completed", "payment.succeeded"]
    fetched = api.get(f"/api/v1/webhook_endpoints/{created['id']}", key=tenant_a.key).json()
    assert "secret" not in fetched
    patched = api.patch(
        f"/api/v1/webhook_endpoints/{created['id']}", {"enabled": False}, key=tenant_a.key
    ).json()
    assert patched["enabled"] is False
    listed = api.get("/api/v1/webhook_endpoints", key=tenant_a.key).json()
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert api.delete(f"/api/v1/webhook_endpoints/{created['id']}", key=tenant_a.key).status_code == 200
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"url": "http://example.com/hook", "events": ["*"]}, "url", "https_required"),
        ({"url": "ftp://example.com/hook", "events": ["*"]}, "url", "invalid_url"),
        (
            {"url": "https://example.com/hook", "events": ["payment.teleported"]},
            "events",
            "unknown_event_type",
        ),
        ({"url": "https://example.com/hook", "events": []}, "events", "parameter_missing"),
        ({"url": "https://example.com/hook"}, "events", "parameter_missing"),
    ],
)
def test_bad_endpoints_are_400_and_create_nothing(api, tenant_a, body, param, code):
    response = api.post("/api/v1/webhook_endpoints", body, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == code
    assert WebhookEndpoint.objects.count() == 0


@override_settings(OUTBOUND_WEBHOOK_REQUIRE_HTTPS=True)
def test_https_is_required_in_production_even_for_localhost(api, tenant_a, receiver):
    response = api.post("/api/v1/webhook_endpoints", {"url": receiver.url, "events": ["*"]}, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "https_required"


def test_delivery_end_to_end_is_signed_and_verifiable(
    api, tenant_a, receiver, django_capture_on_commit_callbacks
):
    endpoint = _endpoint(api, tenant_a, receiver.url)
    event = _record(
        tenant_a.project,
        django_capture_on_commit_callbacks,
        obj={"id": "pay_9", "object": "payment", "amount": 1500},
    )
    assert len(receiver.received) == 1
    delivery = receiver.received[0]
    assert delivery.headers["Tollgate-Event-Id"] == event.pk
    parsed = construct_event(delivery.body, delivery.headers["Tollgate-Signature"], endpoint["secret"])
    assert (parsed.id, parsed.type, parsed.project, parsed.sequence) == (
        event.pk,
        "payment.succeeded",
        tenant_a.project.pk,
        1,
    )
    assert parsed.object == {"id": "pay_9", "object": "payment", "amount": 1500}
    assert parsed.created.endswith("Z")
    with pytest.raises(SignatureVerificationError):
        construct_event(delivery.body, delivery.headers["Tollgate-Signature"], "whsec_wrong")
    stored = Delivery.objects.get()
    assert (stored.status, stored.attempts) == ("succeeded", 1)
    attempt = stored.attempt_log.get()
    assert attempt.status_code == 200
    assert attempt.response_body == '{"ok": true}'


def test_sequence_is_strictly_increasing_per_project(tenant_a, tenant_b, django_capture_on_commit_callbacks):
    seqs_a = [_record(tenant_a.project, django_capture_on_commit_callbacks).sequence for _ in range(3)]
    seqs_b = [_record(tenant_b.project, django_capture_on_commit_callbacks).sequence for _ in range(2)]
    assert seqs_a == [1, 2, 3]
    assert seqs_b == [1, 2]


def test_an_event_costs_its_number_and_row_its_endpoints_and_its_deliveries(
    tenant_a, django_assert_num_queries
):
    """What each use case pays for every tenant event it records: on PostgreSQL one statement numbers it, inserts it
    and reads the endpoints, and one INSERT makes all its deliveries (SQLite: number, row, endpoints apart)."""

    def _record_now():
        return record.event_record(
            project=tenant_a.project,
            type="payment.succeeded",
            data_object={"id": "pay_1", "object": "payment"},
        )

    with transaction.atomic():
        _record_now()  # the project's first event makes its sequence row
    hooks = [
        WebhookEndpointFactory(project=tenant_a.project),
        WebhookEndpointFactory(project=tenant_a.project),
    ]
    WebhookEndpointFactory(project=tenant_a.project, events=["invoice.paid"])
    WebhookEndpointFactory(project=tenant_a.project, enabled=False)
    with transaction.atomic(), django_assert_num_queries(2 if connection.vendor == "postgresql" else 4):
        event = _record_now()
    assert event.sequence == 2
    assert Event.objects.get(pk=event.pk).sequence == 2
    assert sorted(Delivery.objects.filter(event=event).values_list("endpoint_id", flat=True)) == sorted(
        h.pk for h in hooks
    )
    assert set(Delivery.objects.filter(event=event).values_list("status", "project_id")) == {
        ("pending", tenant_a.project.pk)
    }


def test_endpoint_gets_only_the_types_it_asked_for(
    api, tenant_a, receiver, django_capture_on_commit_callbacks
):
    _endpoint(api, tenant_a, receiver.url, events=["checkout.completed"])
    _record(tenant_a.project, django_capture_on_commit_callbacks, "payment.succeeded")
    _record(tenant_a.project, django_capture_on_commit_callbacks, "checkout.completed")
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["checkout.completed"]


def test_failures_retry_on_the_database_schedule_then_fail_after_three_days(
    api, tenant_a, receiver, django_capture_on_commit_callbacks
):
    """One event the receiver always refuses, while it accepts others: the endpoint stays enabled and the
    refused delivery is retried with backoff until three days have passed."""
    receiver.status_for = lambda body: 500 if b'"pay_doomed"' in body else 200
    _endpoint(api, tenant_a, receiver.url)
    start = timezone.now()
    doomed = _record(tenant_a.project, django_capture_on_commit_callbacks, obj={"id": "pay_doomed"})
    delivery = Delivery.objects.get(event=doomed)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    first_delay = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 24 <= first_delay <= 36  # 30 s ± 20% jitter
    assert len(delivery.attempt_log.get().response_body) == 2048  # truncated
    # Not due yet: the sweep sends nothing.
    assert deliveries_sweep.delay().get() == 0
    now = start
    while Delivery.objects.get(event=doomed).status == "pending":
        now = Delivery.objects.get(event=doomed).next_attempt_at + timedelta(seconds=1)
        with time_machine.travel(now), django_capture_on_commit_callbacks(execute=True):
            _record(tenant_a.project, django_capture_on_commit_callbacks)  # other traffic keeps succeeding
            deliveries_sweep.delay().get()
    delivery = Delivery.objects.get(event=doomed)
    assert delivery.status == "failed"
    assert delivery.next_attempt_at is None
    assert timedelta(hours=60) < now - start <= timedelta(hours=73)
    assert delivery.attempts == delivery.attempt_log.count() >= 12
    assert WebhookEndpoint.objects.get().enabled is True


def test_endpoint_failing_for_a_day_is_disabled_and_the_owner_told(
    api, tenant_a, receiver, django_capture_on_commit_callbacks
):
    receiver.default_status = 503
    endpoint = _endpoint(api, tenant_a, receiver.url, events=["payment.succeeded"])
    _record(tenant_a.project, django_capture_on_commit_callbacks)
    with (
        time_machine.travel(timezone.now() + timedelta(hours=25)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        deliveries_sweep.delay().get()
    stored = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert stored.enabled is False
    assert stored.disabled_reason == "Every delivery failed for 24 hours."
    assert Event.objects.filter(project=tenant_a.project, type="webhook_endpoint.disabled").count() == 1
    from core.models import AuditLogEntry

    assert (
        AuditLogEntry.objects.filter(action="webhook_endpoint.disabled", target_id=endpoint["id"]).count()
        == 1
    )


def test_a_success_clears_the_failing_streak(api, tenant_a, receiver, django_capture_on_commit_callbacks):
    receiver.statuses = [500]
    endpoint = _endpoint(api, tenant_a, receiver.url)
    _record(tenant_a.project, django_capture_on_commit_callbacks)
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).failing_since is not None
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=2)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        deliveries_sweep.delay().get()
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).failing_since is None
    assert Delivery.objects.get().status == "succeeded"


def test_redeliver_sends_again(api, tenant_a, receiver, django_capture_on_commit_callbacks):
    _endpoint(api, tenant_a, receiver.url)
    event = _record(tenant_a.project, django_capture_on_commit_callbacks)
    response = api.post(f"/api/v1/events/{event.pk}/redeliver", key=tenant_a.key)
    assert response.status_code == 202
    assert [d["status"] for d in response.json()["deliveries"]] == [
        "pending"
    ]  # queued; sent after the answer
    assert len(receiver.received) == 2
    assert Delivery.objects.get().status == "succeeded"
    assert {r.headers["Tollgate-Event-Id"] for r in receiver.received} == {event.pk}


def test_events_api_lists_filters_and_shows_deliveries(
    api, tenant_a, tenant_b, receiver, django_capture_on_commit_callbacks
):
    _endpoint(api, tenant_a, receiver.url)
    paid = _record(tenant_a.project, django_capture_on_commit_callbacks, "payment.succeeded")
    _record(tenant_a.project, django_capture_on_commit_callbacks, "checkout.completed")
    _record(tenant_b.project, django_capture_on_commit_callbacks, "payment.succeeded")
    listed = api.get("/api/v1/events", key=tenant_a.key).json()
    assert [e["sequence"] for e in listed["data"]] == [2, 1]
    filtered = api.get("/api/v1/events", key=tenant_a.key, json_body={"type": "payment.succeeded"}).json()
    assert [e["id"] for e in filtered["data"]] == [paid.pk]
    detail = api.get(f"/api/v1/events/{paid.pk}", key=tenant_a.key).json()
    assert detail["data"] == {"object": {"id": "pay_1", "object": "payment"}}
    assert [d["status"] for d in detail["deliveries"]] == ["succeeded"]
    assert api.get("/api/v1/events", key=tenant_a.key, json_body={"type": "nope"}).status_code == 400


def test_secret_roll_sends_both_signatures_during_the_overlap(
    api, tenant_a, receiver, django_capture_on_commit_callbacks
):
    endpoint = _endpoint(api, tenant_a, receiver.url)
    rolled = api.post(
        f"/api/v1/webhook_endpoints/{endpoint['id']}/roll_secret", {"overlap_seconds": 3600}, key=tenant_a.key
    ).json()
    assert rolled["secret"] != endpoint["secret"]
    _record(tenant_a.project, django_capture_on_commit_callbacks)
    delivery = receiver.received[-1]
    header = delivery.headers["Tollgate-Signature"]
    assert header.count("v1=") == 2
    construct_event(delivery.body, header, endpoint["secret"])
    construct_event(delivery.body, header, rolled["secret"])
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        _record(tenant_a.project, django_capture_on_commit_callbacks)
        late = receiver.received[-1]
        assert late.headers["Tollgate-Signature"].count("v1=") == 1
        construct_event(late.body, late.headers["Tollgate-Signature"], rolled["secret"])
        with pytest.raises(SignatureVerificationError):
            construct_event(late.body, late.headers["Tollgate-Signature"], endpoint["secret"])


@override_settings(OUTBOUND_WEBHOOK_ALLOW_PRIVATE_ADDRESSES=False)
def test_ssrf_guard_refuses_private_destinations(api, tenant_a, receiver, django_capture_on_commit_callbacks):
    _endpoint(api, tenant_a, receiver.url)
    _record(tenant_a.project, django_capture_on_commit_callbacks)
    assert receiver.received == []
    attempt = Delivery.objects.get().attempt_log.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("destination not allowed")


def test_redirects_are_not_followed(api, tenant_a, receiver, django_capture_on_commit_callbacks):
    receiver.statuses = [302]
    _endpoint(api, tenant_a, receiver.url)
    _record(tenant_a.project, django_capture_on_commit_callbacks)
    assert len(receiver.received) == 1
    assert Delivery.objects.get().status == "pending"  # a redirect is not a success, and not followed
