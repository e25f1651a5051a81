"""A voided first invoice ends its subscription where the project says so (`first_invoice_void_ends_subscription`,
#53): Stripe leaves a `send_invoice` subscription running when its first invoice is voided, granting its plan without
a cent paid. On, Tollgate cancels it at Stripe once, whoever voided the invoice and however often the event comes;
its entitlements end with it. Off, or a first invoice partly paid, or another invoice: nothing happens."""

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from billing import tasks
from billing.models import Invoice, Subscription
from billing.services.first_invoice_voids import first_invoice_void_end
from catalog.models import Feature, ProductFeature
from core.models import AuditLogEntry
from events.models import Event
from projects.models import Project
from tests.billing.stripe_invoices import open_invoice_at_stripe
from tests.billing.test_subscription_items import _stripe_customer
from tests.entitlements.helpers import check, feature
from webhooks.models import StripeEvent
from webhooks.services.replay import stripe_event_replay

CANCELED = "subscription.canceled"


def _invoiced_subscriber(
    api, tenant, catalog, stripe_sdk, stripe_webhooks, *, ends: bool
) -> tuple[Any, Invoice]:
    """A subscriber of `pro` (which gives `exports`) billed by invoice (`send_invoice`), as a tenant's sales team
    makes one at Stripe: active at once, its first invoice open. The project's setting as `ends` says."""
    Project.objects.filter(pk=tenant.project.pk).update(first_invoice_void_ends_subscription=ends)
    ProductFeature.objects.create(
        product=catalog.pro, feature=feature(tenant.project, "exports", Feature.Type.BOOLEAN), value=True
    )
    sdk = stripe_sdk()
    created = sdk.v1.subscriptions.create(
        {
            "customer": _stripe_customer(api, tenant, sdk, card=False),
            "items": [{"price": catalog.pro_monthly.stripe_price_id}],
            "collection_method": "send_invoice",
            "days_until_due": 30,
        }
    )
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get(stripe_subscription_id=created.id)
    first = Invoice.objects.get(stripe_invoice_id=created.latest_invoice)
    assert (subscription.status, first.status, first.billing_reason, first.amount_remaining) == (
        "active",
        "open",
        "subscription_create",
        catalog.pro_monthly.unit_amount,
    )
    assert check(api, tenant.key, "user-1", "exports")["allowed"] is True
    return created, first


def _void(api, tenant, invoice: Invoice) -> None:
    response = api.post(f"/api/v1/invoices/{invoice.pk}/void", {"reason": "never ordered"}, key=tenant.key)
    assert response.status_code == 200, response.content


def test_a_voided_first_invoice_cancels_its_subscription_once_and_ends_its_access(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, django_capture_on_commit_callbacks
):
    created, first = _invoiced_subscriber(api, tenant_a, catalog, stripe_sdk, stripe_webhooks, ends=True)

    _void(api, tenant_a, first)
    stripe_webhooks.deliver()

    assert stripe_sdk().v1.subscriptions.retrieve(created.id).status == "canceled"
    subscription = Subscription.objects.get(stripe_subscription_id=created.id)
    assert subscription.status == "canceled"
    answer = check(api, tenant_a.key, "user-1", "exports")
    assert answer["allowed"] is False
    [audit] = AuditLogEntry.objects.filter(action=CANCELED)
    assert (audit.target_id, audit.actor_type, audit.actor_repr) == (
        subscription.pk,
        "system",
        "first invoice voided",
    )
    assert audit.reason == f"Its first invoice {first.stripe_invoice_id} was voided before anything was paid."
    assert (audit.before["status"], audit.after["status"]) == ("active", "canceled")

    # Stripe's invoice.voided run again (an operator's replay; a duplicate delivery is stored once), and the
    # sweep: nothing more happens.
    voided = StripeEvent.objects.get(type="invoice.voided")
    with django_capture_on_commit_callbacks(execute=True):
        stripe_event_replay(event=voided)
    assert StripeEvent.objects.get(pk=voided.pk).status == "processed"
    assert tasks.first_invoice_voids_sweep() == 0
    assert AuditLogEntry.objects.filter(action=CANCELED).count() == 1
    [announced] = Event.objects.filter(type="subscription.canceled")
    assert announced.data["object"]["id"] == subscription.pk


def test_with_the_setting_off_the_subscription_runs_on(api, tenant_a, catalog, stripe_sdk, stripe_webhooks):
    created, first = _invoiced_subscriber(api, tenant_a, catalog, stripe_sdk, stripe_webhooks, ends=False)

    _void(api, tenant_a, first)
    stripe_webhooks.deliver()
    assert tasks.first_invoice_voids_sweep() == 0

    assert Invoice.objects.get(pk=first.pk).status == "void"
    assert stripe_sdk().v1.subscriptions.retrieve(created.id).status == "active"
    assert Subscription.objects.get(stripe_subscription_id=created.id).status == "active"
    assert check(api, tenant_a.key, "user-1", "exports")["allowed"] is True
    assert not AuditLogEntry.objects.filter(action=CANCELED).exists()


def test_a_dropped_void_event_is_made_good_by_the_sweep(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, stripe_emulator, django_capture_on_commit_callbacks
):
    """The tenant's void is in the mirror at once; Stripe's invoice.voided (and all that follows) is lost."""
    created, first = _invoiced_subscriber(api, tenant_a, catalog, stripe_sdk, stripe_webhooks, ends=True)

    _void(api, tenant_a, first)
    stripe_emulator.webhooks.clear()
    assert Invoice.objects.get(pk=first.pk).status == "void"
    assert Subscription.objects.get(stripe_subscription_id=created.id).status == "active"

    with django_capture_on_commit_callbacks(execute=True):  # what its commit runs (the entitlements' change)
        assert tasks.first_invoice_voids_sweep() == 1

    assert stripe_sdk().v1.subscriptions.retrieve(created.id).status == "canceled"
    assert Subscription.objects.get(stripe_subscription_id=created.id).status == "canceled"
    assert check(api, tenant_a.key, "user-1", "exports")["allowed"] is False
    assert AuditLogEntry.objects.filter(action=CANCELED).count() == 1
    stripe_webhooks.deliver()  # nothing queued: the events were lost
    assert tasks.first_invoice_voids_sweep() == 0
    assert AuditLogEntry.objects.filter(action=CANCELED).count() == 1
    assert Event.objects.filter(type="subscription.canceled").count() == 1


def test_a_voided_invoice_that_is_not_the_first_ends_nothing(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    created, first = _invoiced_subscriber(api, tenant_a, catalog, stripe_sdk, stripe_webhooks, ends=True)
    stripe_customer = Subscription.objects.get(stripe_subscription_id=created.id).customer.stripe_customer_id
    later = open_invoice_at_stripe(stripe_sdk(), stripe_customer, 700)
    stripe_webhooks.deliver()

    _void(api, tenant_a, Invoice.objects.get(stripe_invoice_id=later))
    stripe_webhooks.deliver()

    assert Invoice.objects.get(pk=first.pk).status == "open"
    assert stripe_sdk().v1.subscriptions.retrieve(created.id).status == "active"
    assert check(api, tenant_a.key, "user-1", "exports")["allowed"] is True
    assert not AuditLogEntry.objects.filter(action=CANCELED).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_four_workers_ending_it_at_once_cancel_it_once(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, stripe_emulator
):
    """The invoice's event and the sweep, or two deliveries on two workers, at the same moment: one cancel at
    Stripe, one audit entry."""
    created, first = _invoiced_subscriber(api, tenant_a, catalog, stripe_sdk, stripe_webhooks, ends=True)
    _void(api, tenant_a, first)
    stripe_emulator.webhooks.clear()
    barrier = threading.Barrier(4)

    def end(_: int) -> Subscription | None:
        invoice = Invoice.objects.select_related("project").get(pk=first.pk)
        barrier.wait()
        try:
            return first_invoice_void_end(invoice=invoice)
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(end, range(4)))

    assert [result.status for result in results if result is not None] == ["canceled"]
    assert stripe_sdk().v1.subscriptions.retrieve(created.id).status == "canceled"
    assert Subscription.objects.get(stripe_subscription_id=created.id).status == "canceled"
    assert AuditLogEntry.objects.filter(action=CANCELED).count() == 1
