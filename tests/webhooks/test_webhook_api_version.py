"""Stripe API versions of webhook events: the endpoint is registered at the pinned version; one registered at
another version (or at the account's default, as before endpoints were pinned) is replaced — the new endpoint
first, its secret stored, then the old one deleted — and an event rendered at another version is never applied
from its body: its object is read again at the pinned version, or the event is held `failed` with the reason."""

import io
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import stripe
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from billing.handlers.registry import HANDLERS
from billing.models import Invoice, Subscription
from stripe_emulator.sdk import EmulatorHTTPClient
from stripe_gateway.client import install_http_client
from tests.conftest import WebhookBridge
from webhooks.models import StripeEvent, StripeWebhookEndpoint
from webhooks.services.endpoints import SWITCH_SECONDS
from webhooks.services.receive import _endpoint_secrets as endpoint_secrets

URL = "http://testserver/webhooks/stripe"
PINNED = "2026-10-28.endive"
OLD = "2024-06-20"
OK = "https://app.example.com/ok"


class Recording(EmulatorHTTPClient):
    """In front of the emulator: the Stripe calls Tollgate makes, and the secret stored when each was made."""

    def __init__(self, emulator: Any) -> None:
        super().__init__(emulator)
        self.calls: list[tuple[str, str, str]] = []

    def request(self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any) -> Any:
        stored = StripeWebhookEndpoint.objects.values_list("stripe_endpoint_id", flat=True).first() or ""
        self.calls.append((method.upper(), urlsplit(url).path, stored))
        return super().request(method, url, headers, post_data, **kwargs)


def _setup(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("stripe_setup_webhooks", "--url", "http://testserver", *args, stdout=out)
    return out.getvalue().splitlines()


def _registered_before_pinning(sdk: Any) -> Any:
    """Tollgate's endpoint as `stripe_setup_webhooks` registered it before endpoints were pinned (no
    `api_version`: Stripe renders its events at the account's default version), its secret stored."""
    old = sdk.v1.webhook_endpoints.create(
        {"url": URL, "enabled_events": sorted(HANDLERS), "description": "Tollgate (platform)"}
    )
    StripeWebhookEndpoint.objects.create(
        account="platform", stripe_endpoint_id=old.id, url=URL, secret=old.secret
    )
    return old


def _account_default_version(emulator: Any, version: str) -> None:
    response = emulator.handle(
        "POST",
        "/_emulator/account/api_version",
        body=f"api_version={version}".encode(),
        headers={
            "Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status == 200


def test_registration_sends_the_pinned_version(stripe_webhooks, stripe_sdk):
    endpoints = stripe_sdk().v1.webhook_endpoints.list().data
    assert [(e.url, e.api_version) for e in endpoints] == [(URL, PINNED)]
    stored = StripeWebhookEndpoint.objects.get()
    assert (stored.stripe_endpoint_id, stored.api_version, stored.previous_secret) == (
        endpoints[0].id,
        PINNED,
        "",
    )
    assert settings.STRIPE_API_VERSION == PINNED


def test_endpoint_at_the_accounts_default_version_is_replaced_new_first_then_old_deleted(
    db, stripe_emulator, stripe_sdk, django_capture_on_commit_callbacks
):
    sdk = stripe_sdk()
    old = _registered_before_pinning(sdk)
    customer = sdk.v1.customers.create({"email": "a@example.com"})
    # A delivery the old endpoint signs just before the switch and that arrives after it (Tollgate was busy).
    held: list[tuple[bytes, str]] = []
    stripe_emulator.webhooks.sender = lambda url, body, headers: (
        held.append((body, headers["Stripe-Signature"])) or 503
    )
    sdk.v1.customers.update(customer.id, {"name": "Ada"})
    stripe_emulator.flush_webhooks()
    stripe_emulator.webhooks.clear()
    assert {json.loads(body)["type"] for body, _ in held} == {"customer.updated"}  # every attempt refused
    recording = Recording(stripe_emulator)
    install_http_client(recording)

    lines = _setup()

    new = next(e for e in sdk.v1.webhook_endpoints.list().data)
    assert new.id != old.id
    assert [(e.id, e.url, e.api_version) for e in sdk.v1.webhook_endpoints.list().data] == [
        (new.id, URL, PINNED)
    ]
    assert lines == [
        f"Registered {URL} ({new.id}) at API version {PINNED}; signing secret stored encrypted.",
        f"Replaced {old.id} (the account's default API version) by {new.id}: its secret is accepted for a while "
        "longer, and it is deleted at Stripe.",
    ]
    # Created first, its secret stored, and only then the old endpoint deleted.
    assert recording.calls == [
        ("GET", "/v1/webhook_endpoints", old.id),
        ("POST", "/v1/webhook_endpoints", old.id),
        ("DELETE", f"/v1/webhook_endpoints/{old.id}", new.id),
    ]
    stored = StripeWebhookEndpoint.objects.get()
    assert (stored.stripe_endpoint_id, stored.api_version, stored.previous_secret) == (
        new.id,
        PINNED,
        old.secret,
    )
    assert stored.secret not in ("", old.secret)

    # The old endpoint's delivery still verifies during the switch; the new endpoint's deliveries verify too.
    body, signature = held[0]
    with django_capture_on_commit_callbacks(execute=True):
        answer = Client().post(
            URL, data=body, content_type="application/json", headers={"Stripe-Signature": signature}
        )
    assert (answer.status_code, answer.json()["duplicate"]) == (200, False)
    bridge = WebhookBridge(stripe_emulator, django_capture_on_commit_callbacks)
    sdk.v1.customers.update(customer.id, {"name": "Grace"})
    bridge.deliver()
    assert [r.status_code for r in bridge.responses] == [200]
    assert StripeEvent.objects.filter(type="customer.updated").count() == 2

    # After the switch, the old secret is refused (the old endpoint is gone: nothing it signs is Stripe's).
    late = json.dumps({**json.loads(body), "id": "evt_after_the_switch"})
    with time_machine.travel(timezone.now() + timedelta(seconds=SWITCH_SECONDS + 1)):
        endpoint_secrets.clear()
        header = stripe.WebhookSignature.generate_signature_header(late, old.secret)
        refused = Client().post(
            URL, data=late, content_type="application/json", headers={"Stripe-Signature": header}
        )
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid_signature")
    assert not StripeEvent.objects.filter(stripe_event_id="evt_after_the_switch").exists()

    # Run again: nothing to replace, nothing written at Stripe.
    recording.calls.clear()
    assert _setup() == [
        f"{URL} is already registered ({new.id}) at API version {PINNED}; event types up to date."
    ]
    assert recording.calls == [("GET", "/v1/webhook_endpoints", new.id)]


def _subscribe(api, tenant, stripe_emulator, bridge):
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-1", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant.key,
    ).json()
    stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{created['stripe_session_id']}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    bridge.deliver()
    return Subscription.objects.get()


def test_event_at_another_version_is_applied_from_its_object_read_again_not_from_its_body(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, django_capture_on_commit_callbacks
):
    _account_default_version(stripe_emulator, OLD)  # an adopted account, its default version old
    sdk = stripe_sdk()
    old = _registered_before_pinning(sdk)
    bridge = WebhookBridge(stripe_emulator, django_capture_on_commit_callbacks)
    subscription = _subscribe(api, tenant_a, stripe_emulator, bridge)
    # Every event came at the old version; each object was read again, so the subscription was applied.
    assert set(StripeEvent.objects.values_list("api_version", flat=True)) == {OLD}
    assert set(StripeEvent.objects.values_list("status", flat=True)) <= {"processed", "ignored"}
    assert (subscription.status, subscription.cancel_at_period_end) == ("active", False)

    # An event whose body is stale: the subscription changed again at Stripe before it was delivered. (A minute
    # apart, so the mirror would take the event's body as the newest state it knows.)
    stripe_emulator.advance(60)
    sdk.v1.subscriptions.update(subscription.stripe_subscription_id, {"cancel_at_period_end": True})
    sdk.v1.webhook_endpoints.update(old.id, {"disabled": True})
    stripe_emulator.advance(60)
    sdk.v1.subscriptions.update(subscription.stripe_subscription_id, {"cancel_at_period_end": False})
    sdk.v1.webhook_endpoints.update(old.id, {"disabled": False})
    bridge.deliver()

    event = StripeEvent.objects.filter(type="customer.subscription.updated").latest("stripe_created")
    assert (event.api_version, event.status, event.last_error) == (OLD, "processed", "")
    assert event.payload["data"]["object"]["cancel_at_period_end"] is True
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end is False  # Stripe's state, not the event's body


def test_event_at_another_version_whose_object_is_gone_is_held_failed_and_nothing_applied(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, django_capture_on_commit_callbacks
):
    _account_default_version(stripe_emulator, OLD)
    sdk = stripe_sdk()
    _registered_before_pinning(sdk)
    bridge = WebhookBridge(stripe_emulator, django_capture_on_commit_callbacks)
    _subscribe(api, tenant_a, stripe_emulator, bridge)
    customer = Subscription.objects.get().customer.stripe_customer_id
    invoices_before = Invoice.objects.count()
    draft = sdk.v1.invoices.create(
        {"customer": customer}
    )  # invoice.created, delivered after the draft is deleted
    sdk.v1.invoices.delete(draft.id)
    bridge.deliver()

    event = StripeEvent.objects.get(type="invoice.created", payload__data__object__id=draft.id)
    assert (event.status, event.attempts) == ("failed", 1)
    assert event.last_error == (
        f"Rendered at Stripe API version {OLD}, not the pinned {PINNED}, and its invoice {draft.id} is gone at "
        "Stripe: not applied. Run stripe_setup_webhooks."
    )
    assert Invoice.objects.count() == invoices_before
    assert not Invoice.objects.filter(stripe_invoice_id=draft.id).exists()
