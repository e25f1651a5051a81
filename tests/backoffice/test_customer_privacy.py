"""Privacy requests (issue #29, point 2): a customer's data exported, then erased — through the API, with a
realistic history run through the emulator — and the proof: the whole database dumped holds no trace of the
person's email, name or address, every money figure is what it was, and the other customer is untouched."""

import json
import os
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from backoffice.dashboard import history
from billing.models import Invoice, Payment, Refund, Subscription
from billing.services.reconcile import reconcile
from core.models import AuditLogEntry, IdempotencyKey
from customers.models import Customer
from events.models import DeliveryAttempt, Event
from tests.events.receiver import Receiver
from webhooks.models import StripeEvent

OK = "https://app.example.com/ok"
EMAIL = "Zelda.Quixote-Privacy@Example.org"
NAME = "Zelda Quixotemarch"
LINE1 = "42 Wisteria Lantern Lane"
CITY = "Quillborough"
PHONE = "+15550107734"
PERSON = "user-zq-7734"
OTHER_EMAIL = "other.person@example.net"
OTHER_NAME = "Otto Keepmeintact"


@pytest.fixture
def receiver():
    server = Receiver(echo=True).start()
    yield server
    server.stop()


def _complete(stripe_emulator: Any, session_id: str) -> None:
    stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{session_id}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def _checkout_item(api: Any, tenant: Any, stripe_emulator: Any, stripe_webhooks: Any, customer: str) -> dict:
    created = api.post(
        "/api/v1/checkout/item",
        {"customer": customer, "price": "sticker", "quantity": 2, "success_url": OK, "cancel_url": OK},
        key=tenant.key,
    ).json()
    _complete(stripe_emulator, created["stripe_session_id"])
    stripe_webhooks.deliver()
    return created


def _history(
    api: Any, tenant: Any, stripe_emulator: Any, stripe_sdk: Any, stripe_webhooks: Any, url: str
) -> None:
    """The person's life at the tenant: registered (with an Idempotency-Key), a one-time purchase paid at
    Checkout, an address and phone given at Stripe, a subscription paid then canceled, a partial refund, a grant
    and usage that quote them, tenant events delivered to the tenant's endpoint."""
    key = tenant.key
    assert api.post("/api/v1/webhook_endpoints", {"url": url, "events": ["*"]}, key=key).status_code == 201
    registered = api.post(
        "/api/v1/customers",
        {
            "external_id": PERSON,
            "email": EMAIL,
            "name": NAME,
            "metadata": {"nickname": "Zeldaqx", "tier": "vip"},
        },
        key=key,
        headers={"Idempotency-Key": "register-zq"},
    )
    assert registered.status_code == 201, registered.content
    one_time = _checkout_item(api, tenant, stripe_emulator, stripe_webhooks, PERSON)
    customer = Customer.objects.get(external_id=PERSON)
    stripe_sdk().v1.customers.update(
        customer.stripe_customer_id,
        {"address": {"line1": LINE1, "city": CITY, "postal_code": "77341", "country": "FR"}, "phone": PHONE},
    )
    subscription = api.post(
        "/api/v1/checkout/subscription",
        {"customer": PERSON, "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=key,
    ).json()
    _complete(stripe_emulator, subscription["stripe_session_id"])
    stripe_webhooks.deliver()
    sub = Subscription.objects.get(customer=customer)
    canceled = api.post(f"/api/v1/subscriptions/{sub.pk}/cancel", {"at_period_end": False}, key=key)
    assert canceled.status_code == 200, canceled.content
    refund = api.post(
        f"/api/v1/payments/{one_time['payment']}/refund",
        {"amount": 100, "reason": f"goodwill for {NAME}"},
        key=key,
    )
    assert refund.status_code in (200, 201), refund.content
    stripe_webhooks.deliver()
    api.post("/api/v1/features", {"key": "api_calls", "name": "API calls", "type": "metered"}, key=key)
    api.post("/api/v1/features", {"key": "sso", "name": "SSO", "type": "boolean"}, key=key)
    grant = {"customer": PERSON, "feature": "sso", "value": True, "reason": f"asked by {EMAIL}"}
    assert api.post("/api/v1/entitlements/grants", grant, key=key).status_code == 201
    usage = {
        "id": "u-1",
        "customer": PERSON,
        "feature": "api_calls",
        "quantity": 3,
        "properties": {"by": NAME},
    }
    assert api.post("/api/v1/usage", usage, key=key).status_code in (200, 201, 202)


def _figures(api: Any, tenant: Any) -> dict[str, Any]:
    key = tenant.key
    window = {"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "interval": "month"}
    return {
        # The default window ends now: all but its end.
        "revenue": {k: v for k, v in api.get("/api/v1/metrics/revenue", key=key).json().items() if k != "to"},
        "revenue_window": api.get("/api/v1/metrics/revenue", key=key, json_body=window).json(),
        "subscriptions": api.get("/api/v1/metrics/subscriptions", key=key).json(),
        "dashboard": json.loads(json.dumps(history(timezone.now()), default=str)),
        "drift": reconcile(project=tenant.project).drift_count,
        "money_rows": sorted(
            Payment.objects.values_list("id", "amount", "amount_refunded", "amount_tax", "currency", "status")
        ),
        "invoices": sorted(
            Invoice.objects.values_list("id", "number", "total", "tax", "amount_paid", "status")
        ),
        "refunds": sorted(
            Refund.objects.values_list("id", "amount", "currency", "status", "stripe_refund_id")
        ),
    }


def _database_text() -> str:
    """Every row of every table, as text: `pg_dump` of the test database on PostgreSQL, each table's rows on
    SQLite."""
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
        command = ["pg_dump", "--data-only", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432)]
        command += ["-U", db["USER"] or "postgres", db["NAME"]]
        return subprocess.run(command, check=True, capture_output=True, env=env, text=True).stdout
    lines = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                lines.append(
                    repr(
                        [
                            bytes(v).decode(errors="replace") if isinstance(v, bytes | memoryview) else v
                            for v in row
                        ]
                    )
                )
    return "\n".join(lines)


def _lines_with(text: str, value: str) -> list[str]:
    return [line[:300] for line in text.splitlines() if value.lower() in line.lower()]


def _traces(text: str, values: list[str]) -> list[str]:
    lowered = text.lower()
    return [value for value in values if value.lower() in lowered]


@pytest.mark.django_db(transaction=True)
def test_erase_leaves_no_trace_of_the_person_and_every_money_figure_as_it_was(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, stripe_webhooks, receiver
):
    _history(api, tenant_a, stripe_emulator, stripe_sdk, stripe_webhooks, receiver.url)
    other = api.post(
        "/api/v1/customers",
        {"external_id": "other-1", "email": OTHER_EMAIL, "name": OTHER_NAME},
        key=tenant_a.key,
    ).json()
    _checkout_item(api, tenant_a, stripe_emulator, stripe_webhooks, "other-1")
    customer = Customer.objects.get(external_id=PERSON)
    stripe_customer_id = customer.stripe_customer_id
    person = [EMAIL, NAME, LINE1, CITY, PHONE]
    # The person is everywhere before: Stripe's payloads, tenant events, deliveries, idempotent answers, audit.
    before_text = _database_text()
    assert _traces(before_text, person) == person
    assert StripeEvent.objects.filter(payload__icontains=LINE1).exists()
    assert DeliveryAttempt.objects.filter(status_code=200).exists()
    assert Event.objects.filter(data__icontains=EMAIL).exists()
    other_row = Customer.objects.filter(external_id="other-1").values().get()
    figures = _figures(api, tenant_a)

    erased = api.post(
        f"/api/v1/customers/{PERSON}/erase",
        {"reason": f"GDPR art. 17 request from {EMAIL}"},
        key=tenant_a.key,
        headers={"Idempotency-Key": "erase-zq"},
    )
    assert erased.status_code == 200, erased.content
    body = erased.json()
    stripe_webhooks.deliver()  # Stripe's customer.deleted (with the person in it) arrives afterwards

    customer.refresh_from_db()
    assert body == {
        "object": "customer_erasure",
        "id": customer.pk,
        "customer": customer.external_id,
        "erased_at": body["erased_at"],
        "stripe_customer_deleted": True,
        "rows_scrubbed": body["rows_scrubbed"],
    }
    assert customer.external_id.startswith("erased_")
    assert len(customer.external_id) == 31
    assert (customer.email, customer.name, customer.metadata) == (
        "",
        "",
        {"nickname": "[erased]", "tier": "[erased]"},
    )
    assert customer.erased_at is not None
    assert customer.stripe_customer_id == stripe_customer_id
    # Stripe: the customer deleted (its tombstone), the subscription already canceled, the money kept.
    at_stripe = stripe_sdk().v1.customers.retrieve(stripe_customer_id)
    assert at_stripe.to_dict() == {"id": stripe_customer_id, "object": "customer", "deleted": True}
    assert stripe_sdk().v1.subscriptions.retrieve(
        Subscription.objects.get().stripe_subscription_id
    ).status == ("canceled")
    deleted_event = StripeEvent.objects.get(type="customer.deleted")
    assert deleted_event.payload["data"]["object"]["email"] is None
    assert deleted_event.payload["data"]["object"]["address"] is None
    assert deleted_event.payload["data"]["object"]["id"] == stripe_customer_id
    assert deleted_event.status == "processed"

    # The whole database: no email, name, address line, city, phone or user id of the person, in any case.
    after_text = _database_text()
    assert _traces(before_text, [PERSON]) == [PERSON]
    assert _traces(after_text, [*person, PERSON]) == [], _lines_with(after_text, PERSON)
    assert _traces(after_text, [OTHER_EMAIL, OTHER_NAME]) == [OTHER_EMAIL, OTHER_NAME]
    # Every money figure is what it was, and reconciliation finds no more drift than before.
    assert _figures(api, tenant_a) == figures
    # The other customer is untouched.
    assert Customer.objects.filter(external_id="other-1").values().get() == other_row
    assert api.get("/api/v1/customers/other-1", key=tenant_a.key).json()["email"] == OTHER_EMAIL
    assert other["email"] == OTHER_EMAIL
    # The audit row names the actor and the reason without the person.
    audit = AuditLogEntry.objects.get(action="customer.erased")
    assert (audit.actor_type, audit.actor_id, audit.target_id) == (
        "api_key",
        tenant_a.api_key.pk,
        customer.pk,
    )
    assert audit.reason == "GDPR art. 17 request from [erased]"
    assert audit.target_repr == customer.external_id
    assert audit.after == {"stripe_customer_deleted": True, "rows_scrubbed": body["rows_scrubbed"]}
    # Afterwards: 404 by the old id (and by ours); a retry with the same key replays the same answer.
    assert api.get(f"/api/v1/customers/{PERSON}", key=tenant_a.key).status_code == 404
    assert api.get(f"/api/v1/customers/{customer.pk}", key=tenant_a.key).status_code == 404
    assert api.get(f"/api/v1/customers/{PERSON}/export", key=tenant_a.key).status_code == 404
    again = api.post(
        f"/api/v1/customers/{PERSON}/erase",
        {"reason": f"GDPR art. 17 request from {EMAIL}"},
        key=tenant_a.key,
        headers={"Idempotency-Key": "erase-zq"},
    )
    assert (again.status_code, again.json()) == (200, body)
    assert (
        IdempotencyKey.objects.filter(key="erase-zq").get().path
        == f"/api/v1/customers/{customer.external_id}/erase"
    )
    # An old event of the person's Stripe customer sent again is stored without them.
    assert _replayed_customer_event_is_scrubbed(stripe_webhooks, stripe_customer_id)


def _replayed_customer_event_is_scrubbed(stripe_webhooks: Any, stripe_customer_id: str) -> bool:
    from webhooks.services.receive import stripe_event_store

    body = {
        "id": "evt_replayed_after_erasure",
        "object": "event",
        "type": "customer.updated",
        "created": int(datetime.now(UTC).timestamp()),
        "data": {"object": {"id": stripe_customer_id, "object": "customer", "email": EMAIL, "name": NAME}},
    }
    event, created = stripe_event_store(account="platform", project=None, body=body)
    stored = StripeEvent.objects.get(pk=event.pk).payload["data"]["object"]
    return created and stored == {"id": stripe_customer_id, "object": "customer", "email": None, "name": None}


def test_export_holds_every_row_of_the_person_grouped_by_kind(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, stripe_webhooks, receiver
):
    _history(api, tenant_a, stripe_emulator, stripe_sdk, stripe_webhooks, receiver.url)
    _checkout_item(api, tenant_a, stripe_emulator, stripe_webhooks, "other-1")
    customer = Customer.objects.get(external_id=PERSON)
    response = api.get(f"/api/v1/customers/{PERSON}/export", key=tenant_a.key)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = json.loads(b"".join(response.streaming_content))
    assert document["object"] == "customer_export"
    assert document["customer"]["email"] == EMAIL
    assert document["customer"]["name"] == NAME
    payments = Payment.objects.filter(customer=customer).order_by("pk")
    assert [p["id"] for p in document["payments"]] == [p.pk for p in payments]
    assert {p["customer"] for p in document["payments"]} == {PERSON}
    assert [s["id"] for s in document["subscriptions"]] == [Subscription.objects.get(customer=customer).pk]
    assert [i["number"] for i in document["invoices"]] == list(
        Invoice.objects.filter(customer=customer).order_by("pk").values_list("number", flat=True)
    )
    assert [r["id"] for r in document["refunds"]] == list(
        Refund.objects.order_by("pk").values_list("pk", flat=True)
    )
    assert [g["reason"] for g in document["grants"]] == [f"asked by {EMAIL}"]
    assert [u["properties"] for u in document["usage_events"]] == [{"by": NAME}]
    assert len(document["checkout_sessions"]) == 2
    # Tenant events naming the person, not the other customer's.
    assert document["events"]
    assert all(PERSON in json.dumps(e["data"]) for e in document["events"])
    assert not any("other-1" in json.dumps(e["data"]) for e in document["events"])
    # Stripe's events about their Stripe customer, the address they gave there among them.
    assert LINE1 in json.dumps(document["stripe_events"])
    assert {e["type"] for e in document["stripe_events"]} >= {
        "customer.updated",
        "checkout.session.completed",
    }
    assert "client_secret" not in json.dumps(document["checkout_sessions"])
    # Every kind of row with a foreign key to the customer is in the document.
    from backoffice.services.customer_export import export_kinds

    assert list(document)[3:] == list(export_kinds())
    # The export itself is audited, with the key that asked.
    audit = AuditLogEntry.objects.get(action="customer.exported")
    assert (audit.actor_type, audit.target_id) == ("api_key", customer.pk)


def _snapshot() -> dict[str, Any]:
    return {
        "customers": sorted(Customer.objects.values_list("id", "external_id", "email", "name", "erased_at")),
        "audit": AuditLogEntry.objects.filter(action__startswith="customer.").count(),
        "events": StripeEvent.objects.count(),
    }


def test_erase_of_another_projects_customer_is_404_and_changes_nothing(
    api, tenant_a, tenant_b, catalog, stripe_emulator, stripe_sdk, stripe_webhooks
):
    api.post("/api/v1/customers", {"external_id": PERSON, "email": EMAIL, "name": NAME}, key=tenant_a.key)
    _checkout_item(api, tenant_a, stripe_emulator, stripe_webhooks, PERSON)
    before = _snapshot()
    for path in (f"/api/v1/customers/{PERSON}/erase", f"/api/v1/customers/{Customer.objects.get().pk}/erase"):
        response = api.post(path, {"reason": "gdpr"}, key=tenant_b.key)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "resource_missing")
    assert api.get(f"/api/v1/customers/{PERSON}/export", key=tenant_b.key).status_code == 404
    assert _snapshot() == before
    stripe_customer = Customer.objects.get().stripe_customer_id
    assert stripe_sdk().v1.customers.retrieve(stripe_customer).email == EMAIL


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}])
def test_erase_without_a_reason_is_400_and_changes_nothing(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, body
):
    api.post("/api/v1/customers", {"external_id": PERSON, "email": EMAIL, "name": NAME}, key=tenant_a.key)
    before = _snapshot()
    response = api.post(f"/api/v1/customers/{PERSON}/erase", body, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "reason"
    assert _snapshot() == before


def test_erase_with_a_live_subscription_is_409_and_changes_nothing(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, stripe_webhooks
):
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": PERSON, "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    ).json()
    api.post("/api/v1/customers", {"external_id": PERSON, "email": EMAIL, "name": NAME}, key=tenant_a.key)
    _complete(stripe_emulator, created["stripe_session_id"])
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get()
    before = _snapshot()
    response = api.post(f"/api/v1/customers/{PERSON}/erase", {"reason": "gdpr"}, key=tenant_a.key)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "customer_has_live_subscriptions"
    assert subscription.pk in response.json()["error"]["message"]
    assert _snapshot() == before
    stripe_customer = stripe_sdk().v1.customers.retrieve(Customer.objects.get().stripe_customer_id)
    assert stripe_customer.email == EMAIL
    assert stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id).status == "active"


def test_erase_of_a_customer_never_at_stripe_and_a_new_customer_under_the_old_id(api, tenant_a):
    api.post("/api/v1/customers", {"external_id": PERSON, "email": EMAIL, "name": NAME}, key=tenant_a.key)
    erased = api.post(f"/api/v1/customers/{PERSON}/erase", {"reason": "gdpr"}, key=tenant_a.key)
    assert erased.status_code == 200
    assert erased.json()["stripe_customer_deleted"] is False
    assert (
        api.post(f"/api/v1/customers/{PERSON}/erase", {"reason": "gdpr"}, key=tenant_a.key).status_code == 404
    )
    assert [c["external_id"] for c in api.get("/api/v1/customers", key=tenant_a.key).json()["data"]] == []
    again = api.post(
        "/api/v1/customers", {"external_id": PERSON, "email": "new@example.com"}, key=tenant_a.key
    )
    assert again.status_code == 201
    assert Customer.objects.count() == 2


def test_references_quoting_two_erased_people_stay_unique(api, tenant_a, catalog, stripe_emulator):
    ids = []
    for user, email in (("user-a", "a.person@example.org"), ("user-b", "b.person@example.org")):
        api.post("/api/v1/customers", {"external_id": user, "email": email}, key=tenant_a.key)
        body = {"customer": user, "price": "sticker", "flow": "intent", "reference": f"order for {email}"}
        created = api.post("/api/v1/payments", body, key=tenant_a.key)
        assert created.status_code == 201, created.content
        ids.append(created.json()["id"])
        assert (
            api.post(f"/api/v1/customers/{user}/erase", {"reason": "dsr"}, key=tenant_a.key).status_code
            == 200
        )
    assert sorted(Payment.objects.values_list("reference", flat=True)) == sorted(
        f"[erased] {pk}" for pk in ids
    )
    assert sorted(Payment.objects.values_list("amount", flat=True)) == [200, 200]


def test_a_subscription_live_at_stripe_before_its_events_arrive_is_refused_too(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, stripe_webhooks
):
    api.post("/api/v1/customers", {"external_id": PERSON, "email": EMAIL, "name": NAME}, key=tenant_a.key)
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": PERSON, "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    ).json()
    _complete(stripe_emulator, created["stripe_session_id"])  # paid at Stripe; its events not delivered yet
    assert not Subscription.objects.exists()
    before = _snapshot()
    response = api.post(f"/api/v1/customers/{PERSON}/erase", {"reason": "gdpr"}, key=tenant_a.key)
    assert (response.status_code, response.json()["error"]["code"]) == (
        409,
        "customer_has_live_subscriptions",
    )
    assert _snapshot() == before
    stripe_customer = stripe_sdk().v1.customers.retrieve(Customer.objects.get().stripe_customer_id)
    assert (stripe_customer.email, stripe_customer.to_dict().get("deleted")) == (EMAIL, None)
