"""Stripe webhook intake: verify, store once, queue, 200 — and every rejection stores nothing."""

import hashlib
import hmac
import json
import threading
import time

import pytest
import stripe
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from billing.handlers import registry
from tests.connection_races import one_race_at_a_time
from tests.projects.factories import ProjectFactory
from webhooks.models import StripeEvent, StripeWebhookEndpoint

SECRET = "whsec_test_platform_secret"
ROTATED = "whsec_test_previous_secret"


def _event(event_id="evt_1", event_type="balance.available", created=1_800_000_000):
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": created,
            "api_version": "2026-10-28.endive",
            "data": {"object": {"id": "cus_x", "object": "customer"}},
        }
    )


def _post(client, body, secret=SECRET, timestamp=None, path="/webhooks/stripe", header=None):
    if header is None:
        header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)
    return client.post(path, data=body, content_type="application/json", headers={"Stripe-Signature": header})


@pytest.fixture
def client_on_commit(db, django_capture_on_commit_callbacks):
    client = Client()

    def post(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return _post(client, *args, **kwargs)

    return post


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
def test_valid_event_is_stored_once_and_processed(client_on_commit):
    first = client_on_commit(_event())
    assert first.status_code == 200
    assert first.json() == {"received": True, "id": "evt_1", "duplicate": False}
    duplicate = client_on_commit(_event())
    assert duplicate.status_code == 200
    assert duplicate.json()["duplicate"] is True
    event = StripeEvent.objects.get()
    assert (event.account, event.stripe_event_id, event.type, event.stripe_created) == (
        "platform",
        "evt_1",
        "balance.available",
        1_800_000_000,
    )
    assert event.status == "ignored"  # a type Tollgate does not handle: stored, marked, replayable
    assert event.attempts == 1


@override_settings(STRIPE_WEBHOOK_SECRET=f"{SECRET},{ROTATED}")
def test_every_secret_of_a_rotation_verifies(client_on_commit):
    assert client_on_commit(_event("evt_a"), secret=SECRET).status_code == 200
    assert client_on_commit(_event("evt_b"), secret=ROTATED).status_code == 200
    assert StripeEvent.objects.count() == 2


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
@pytest.mark.parametrize(
    "case",
    [
        "wrong_secret",
        "stale",
        "future",
        "tampered",
        "no_header",
        "garbage_header",
        "not_json",
        "not_an_event",
    ],
)
def test_rejections_are_400_and_store_nothing(client_on_commit, case):
    body = _event()
    kwargs = {}
    if case == "wrong_secret":
        kwargs["secret"] = "whsec_wrong"
    elif case == "stale":
        kwargs["timestamp"] = int(time.time()) - 301
    elif case == "future":
        kwargs["timestamp"] = int(time.time()) + 600
    elif case == "tampered":
        kwargs["header"] = stripe.WebhookSignature.generate_signature_header(body, SECRET)
        body = body.replace("balance.available", "balance.pending")
    elif case == "no_header":
        kwargs["header"] = ""
    elif case == "garbage_header":
        kwargs["header"] = "t=abc,v9=zzz"
    elif case == "not_json":
        body = "this is not json"
    elif case == "not_an_event":
        body = json.dumps({"hello": "world"})
    response = client_on_commit(body, **kwargs)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert StripeEvent.objects.count() == 0


def _signed(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    """Stripe's v1 signature (HMAC-SHA256 of `t.body`) over the raw bytes, which the SDK's helper cannot make for a
    body that is not UTF-8 (it signs text)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def test_the_raw_signature_is_stripes():
    body = _event()
    stamp = int(time.time())
    assert _signed(body.encode(), timestamp=stamp) == stripe.WebhookSignature.generate_signature_header(
        body, SECRET, timestamp=stamp
    )


NOT_UTF8 = b'{"id": "evt_1", "type": "balance.available", "x": "\xff\xfe"}'
_EVENT = json.loads(_event())


def _without(*names: str) -> bytes:
    return json.dumps({k: v for k, v in _EVENT.items() if k not in names}).encode()


def _with(**fields: object) -> bytes:
    return json.dumps({**_EVENT, **fields}).encode()


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
@pytest.mark.parametrize(
    ("body", "header", "code"),
    [
        pytest.param(NOT_UTF8, "t=abc,v1=zzz", "invalid_payload", id="not_utf8_garbage_signature"),
        pytest.param(NOT_UTF8, None, "invalid_payload", id="not_utf8_valid_signature"),
        pytest.param(b"\xef\xbb\xbf" + _event().encode(), None, "invalid_payload", id="utf8_bom"),
        pytest.param(b"this is not json", None, "invalid_payload", id="not_json_valid_signature"),
        pytest.param(b"", None, "invalid_payload", id="empty_valid_signature"),
        pytest.param(b"[]", None, "invalid_payload", id="array"),
        pytest.param(b'"evt_1"', None, "invalid_payload", id="string"),
        pytest.param(b"42", None, "invalid_payload", id="number"),
        pytest.param(b"null", None, "invalid_payload", id="null"),
        pytest.param(_without("id"), None, "invalid_payload", id="no_id"),
        pytest.param(_without("type"), None, "invalid_payload", id="no_type"),
        pytest.param(_without("id", "type"), None, "invalid_payload", id="no_id_no_type"),
        pytest.param(_with(id=""), None, "invalid_payload", id="empty_id"),
        pytest.param(_with(id="cus_1"), None, "invalid_payload", id="id_not_an_event"),
        pytest.param(_with(id=["evt_1"]), None, "invalid_payload", id="id_not_a_string"),
        pytest.param(_with(id="evt_" + "x" * 300), None, "invalid_payload", id="id_too_long"),
        pytest.param(_with(type=""), None, "invalid_payload", id="empty_type"),
        pytest.param(_with(type={"a": 1}), None, "invalid_payload", id="type_not_a_string"),
        pytest.param(_with(type="x" * 101), None, "invalid_payload", id="type_too_long"),
        pytest.param(_with(created="soon"), None, "invalid_payload", id="created_not_a_number"),
        pytest.param(_with(created=[1]), None, "invalid_payload", id="created_a_list"),
        pytest.param(_with(created=10**30), None, "invalid_payload", id="created_out_of_range"),
        pytest.param(_with(api_version=["x"]), None, "invalid_payload", id="api_version_not_a_string"),
        pytest.param(_with(data={"object": {"id": "a\x00b"}}), None, "invalid_payload", id="nul_in_a_string"),
        pytest.param(_with(data="x"), None, "invalid_payload", id="data_not_an_object"),
        pytest.param(
            _event()[:-1].encode() + b', "deep": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            None,
            "invalid_payload",
            id="nested_5000_levels",
        ),
        pytest.param(
            _event().encode(),
            "t=1,v1=" + "0" * 64 + ",v1=" + "1" * 64,
            "invalid_signature",
            id="v1s_none_valid",
        ),
        pytest.param(_event().encode(), "t=1,v1=\u00e9\u00e9", "invalid_signature", id="v1_not_ascii"),
        pytest.param(
            _event().encode(), "t=\u00b2,v1=" + "0" * 64, "invalid_signature", id="t_superscript_digit"
        ),
        pytest.param(
            _event().encode(), "t=" + "9" * 5000 + ",v1=" + "0" * 64, "invalid_signature", id="t_5000_digits"
        ),
        pytest.param(_event().encode(), "t=,v1=,=,,", "invalid_signature", id="empty_parts"),
    ],
)
def test_hostile_deliveries_are_400_and_store_nothing(client_on_commit, body, header, code):
    response = client_on_commit(body, header=_signed(body) if header is None else header)
    assert (response.status_code, response.json()["error"]["type"], response.json()["error"]["code"]) == (
        400,
        "invalid_request_error",
        code,
    ), response.content
    assert response.json()["error"]["param"] is None
    assert StripeEvent.objects.count() == 0


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
def test_a_signature_far_in_the_future_is_refused_however_many_digits(client_on_commit):
    body = _event().encode()
    stamp = 10**13  # a 14-digit timestamp, valid signature
    response = client_on_commit(body, header=_signed(body, timestamp=stamp))
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_signature")
    assert "future" in response.json()["error"]["message"]
    assert StripeEvent.objects.count() == 0


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET, API_MAX_BODY_BYTES=1000)
def test_an_oversized_delivery_is_413_and_stores_nothing(client_on_commit):
    body = _with(data={"object": {"id": "cus_x", "object": "customer", "note": "x" * 1000}})
    response = client_on_commit(body, header=_signed(body))
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
    assert StripeEvent.objects.count() == 0


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
def test_one_valid_v1_among_several_is_accepted_as_stripe_sends_during_a_secret_roll(client_on_commit):
    """Stripe signs with every secret of an endpoint being rolled, one `v1=` each; any one that verifies will do
    (and a header of only wrong ones is refused above)."""
    body = _event().encode()
    header = _signed(body)
    stamp, good = header.split(",")
    response = client_on_commit(body, header=f"{stamp},v1={'0' * 64},{good},v0=abc")
    assert response.status_code == 200, response.content
    assert StripeEvent.objects.count() == 1


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
def test_a_timestamp_within_five_minutes_ahead_is_accepted(client_on_commit):
    """A sender's clock a little ahead of ours (as far ahead as the tolerance allows behind) is not refused."""
    response = client_on_commit(_event(), timestamp=int(time.time()) + 240)
    assert response.status_code == 200, response.content
    assert StripeEvent.objects.count() == 1


def test_unknown_project_is_400(client_on_commit):
    response = client_on_commit(_event(), path="/webhooks/stripe/proj_doesnotexist")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_project"
    assert StripeEvent.objects.count() == 0


def test_project_account_uses_the_projects_secret(client_on_commit, db):
    project = ProjectFactory(stripe_secret_key="sk_test_own", stripe_webhook_secret="whsec_project_own")
    path = f"/webhooks/stripe/{project.pk}"
    assert client_on_commit(_event(), secret=SECRET, path=path).status_code == 400
    assert client_on_commit(_event(), secret="whsec_project_own", path=path).status_code == 200
    event = StripeEvent.objects.get()
    assert (event.account, event.project_id) == (project.pk, project.pk)


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
def test_same_event_id_in_two_accounts_is_two_events(client_on_commit, db):
    project = ProjectFactory(stripe_secret_key="sk_test_own", stripe_webhook_secret="whsec_project_own")
    client_on_commit(_event())
    client_on_commit(_event(), secret="whsec_project_own", path=f"/webhooks/stripe/{project.pk}")
    assert StripeEvent.objects.count() == 2


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
def test_get_is_405(client):
    response = client.get("/webhooks/stripe")
    assert response.status_code == 405


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
def test_processor_error_retries_then_fails_then_replay_succeeds(client_on_commit, monkeypatch):
    """A test-only processor registered for a test-only event type: it fails until told otherwise."""
    calls = []
    state = {"fail": True}

    def flaky(event):
        calls.append(event.stripe_event_id)
        if state["fail"]:
            raise RuntimeError("downstream unavailable")

    monkeypatch.setitem(registry.HANDLERS, "tollgate.test.flaky", flaky)
    assert client_on_commit(_event("evt_flaky", "tollgate.test.flaky")).status_code == 200
    event = StripeEvent.objects.get()
    assert event.status == "failed"
    assert event.attempts == 6  # the first try and five retries
    assert event.last_error == "RuntimeError: downstream unavailable"
    assert len(calls) == 6

    state["fail"] = False
    from django.core.management import call_command

    call_command("replay_webhooks", "--status", "failed", stdout=__import__("io").StringIO())
    event.refresh_from_db()
    assert event.status == "processed"
    assert event.last_error == ""
    assert len(calls) == 7


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
def test_twenty_concurrent_deliveries_store_and_process_once(monkeypatch):
    calls = []
    monkeypatch.setitem(
        registry.HANDLERS, "tollgate.test.count", lambda event: calls.append(event.stripe_event_id)
    )
    body = _event("evt_race", "tollgate.test.count")
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
    barrier = threading.Barrier(20)
    statuses = []

    def deliver():
        client = Client()
        barrier.wait()
        statuses.append(_post(client, body, header=header).status_code)
        connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    with one_race_at_a_time():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200] * 20
    assert StripeEvent.objects.filter(stripe_event_id="evt_race").count() == 1
    assert len(calls) == 1
    assert StripeEvent.objects.get().status == "processed"


def test_fetch_missing_stores_events_never_delivered(api, tenant_a, stripe_sdk, stripe_webhooks):
    """Stripe's events of the window that never arrived (Tollgate was down) are fetched, stored once, processed."""
    import io
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    stripe_sdk().v1.customers.create({"email": "lost@example.com"})  # its customer.created delivery is lost
    since = (timezone.now() - timedelta(minutes=5)).isoformat()
    out = io.StringIO()
    call_command("replay_webhooks", "--fetch-missing", "--since", since, "--status", "any", stdout=out)
    stored = StripeEvent.objects.get(type="customer.created")
    assert stored.status == "ignored"
    # A type Tollgate does not handle is stored (and ignored), and said so: not counted as applied.
    assert out.getvalue().splitlines()[0] == (
        f"Stripe listed 1 event(s) of the platform's account since {since}: 0 received before; 0 missing of "
        "types Tollgate handles, stored and queued to be applied; 1 missing of types it does not handle, stored "
        "as ignored (nothing applied)."
    )
    again = io.StringIO()
    call_command("replay_webhooks", "--fetch-missing", "--since", since, "--status", "failed", stdout=again)
    assert StripeEvent.objects.filter(type="customer.created").count() == 1
    assert again.getvalue().splitlines()[0] == (
        f"Stripe listed 1 event(s) of the platform's account since {since}: 1 received before; 0 missing of "
        "types Tollgate handles, stored and queued to be applied; 0 missing of types it does not handle, stored "
        "as ignored (nothing applied)."
    )
    # Later delivery of the same event by Stripe is a duplicate, not a second row.
    stripe_webhooks.deliver()
    assert StripeEvent.objects.filter(type="customer.created").count() == 1


@pytest.mark.postgres
@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
def test_database_unable_to_store_is_a_5xx_never_a_200(db):
    """The event table is gone (inside this test's transaction, rolled back afterwards): the intake cannot store
    the event, so Stripe must not be told it was received — it will retry."""
    from django.db import connection

    with connection.schema_editor() as editor:
        editor.delete_model(StripeEvent)
    client = Client(raise_request_exception=False)
    response = _post(client, _event("evt_lost"))
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "api_error"


def test_the_stored_endpoint_secret_is_kept_per_process_and_a_replaced_one_refused_at_once(client_on_commit):
    """The secret `stripe_setup_webhooks` stored is read once, not on every delivery; replacing it refuses the
    old one at once in the process that replaced it, and a secret stored by another process is accepted at once
    (a delivery no kept secret verifies is checked against the database again)."""
    endpoint = StripeWebhookEndpoint.objects.create(
        account="platform",
        stripe_endpoint_id="we_1",
        url="https://tollgate.example/webhooks/stripe",
        secret="whsec_one",
    )
    assert client_on_commit(_event("evt_a"), secret="whsec_one").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client_on_commit(_event("evt_b"), secret="whsec_one").status_code == 200
    assert not [q for q in queries if "webhooks_stripewebhookendpoint" in q["sql"]]

    endpoint.secret = "whsec_two"
    endpoint.save()
    assert client_on_commit(_event("evt_c"), secret="whsec_one").status_code == 400
    assert client_on_commit(_event("evt_d"), secret="whsec_two").status_code == 200

    StripeWebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        secret="whsec_three"
    )  # no signal: another process
    assert client_on_commit(_event("evt_e"), secret="whsec_three").status_code == 200
    assert sorted(StripeEvent.objects.values_list("stripe_event_id", flat=True)) == [
        "evt_a",
        "evt_b",
        "evt_d",
        "evt_e",
    ]
