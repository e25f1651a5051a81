"""The fulfilment race: every Stripe event that can settle one purchase, processed at the same time by
concurrent requests on PostgreSQL, applies it once."""

import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from billing.models import Payment
from events.models import Event
from webhooks.models import StripeEvent

OK = "https://app.example.com/ok"


def _captured_deliveries(
    stripe_emulator: Any, stripe_webhooks: Any
) -> list[tuple[str, bytes, dict[str, str]]]:
    """Lets the emulator 'send' its queued deliveries into a list instead of to Tollgate."""
    captured: list[tuple[str, bytes, dict[str, str]]] = []
    stripe_emulator.webhooks.sender = lambda url, body, headers: (
        captured.append((url, body, dict(headers))) or 200
    )
    stripe_emulator.flush_webhooks()
    stripe_emulator.webhooks.sender = stripe_webhooks.send
    return captured


def _deliver_concurrently(deliveries: list[tuple[str, bytes, dict[str, str]]], copies: int = 3) -> list[int]:
    work = [d for d in deliveries for _ in range(copies)]
    barrier = threading.Barrier(len(work))
    statuses: list[int] = []

    def post(delivery: tuple[str, bytes, dict[str, str]]) -> None:
        _, body, headers = delivery
        client = Client()
        barrier.wait()
        response = client.post(
            "/webhooks/stripe",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": headers["Stripe-Signature"]},
        )
        statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=post, args=(d,)) for d in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("price", ["credits-1000", "pro-monthly"])
def test_every_settling_event_at_once_applies_the_purchase_once(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, price
):
    endpoint = "/api/v1/checkout/subscription" if price == "pro-monthly" else "/api/v1/checkout/item"
    created = api.post(
        endpoint,
        {"customer": "user-1", "price": price, "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    ).json()
    stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{created['stripe_session_id']}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    deliveries = _captured_deliveries(stripe_emulator, stripe_webhooks)
    statuses = _deliver_concurrently(deliveries)
    assert set(statuses) == {200}
    assert not StripeEvent.objects.filter(status="failed").exists()
    payments = Payment.objects.filter(project=tenant_a.project)
    assert payments.count() == 1
    assert payments.get().status == "succeeded"
    assert Event.objects.filter(project=tenant_a.project, type="payment.succeeded").count() == 1
    assert Event.objects.filter(project=tenant_a.project, type="checkout.completed").count() == 1
