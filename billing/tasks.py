"""Billing tasks: thin wrappers that take ids and call one service."""

from celery import shared_task

from billing import payments, services


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def customer_sync_to_stripe(customer_id: str) -> None:
    services.customer_sync_to_stripe(customer_id=customer_id)


@shared_task(acks_late=True)
def customers_sync_to_stripe_sweep() -> int:
    """Beat: sends to Stripe the customer changes still pending (a task lost to a broker outage, or out of
    retries)."""
    return services.customers_stripe_sync_due()


@shared_task(acks_late=True)
def payments_expire_due() -> int:
    """Beat: expires payments still pending after their project's payment_ttl_seconds."""
    return payments.payments_expire_due()


@shared_task(acks_late=True)
def reconcile_all() -> str:
    """Beat: nightly reconciliation of every project with Stripe (applying Stripe's state when configured)."""
    from django.conf import settings

    from billing.reconciliation import reconcile

    return reconcile(fix=settings.RECONCILE_AUTOFIX).pk


@shared_task(acks_late=True)
def refunds_settle_sweep() -> int:
    """Beat: settles refunds whose outcome is not known here (an answer lost, a process killed after Stripe
    acted) and refunds long pending at Stripe, by reading Stripe."""
    return payments.refunds_settle_sweep()
