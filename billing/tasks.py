"""Billing tasks: thin wrappers that take ids and call one service."""

from celery import shared_task

from billing.payments import closing, refunds


@shared_task(acks_late=True)
def payments_expire_due() -> int:
    """Beat: expires payments still pending after their project's payment_ttl_seconds."""
    return closing.payments_expire_due()


@shared_task(acks_late=True)
def reconcile_all() -> str:
    """Beat: nightly reconciliation of every project with Stripe (applying Stripe's state when configured)."""
    from django.conf import settings

    from billing.reconciliation.run import reconcile

    return reconcile(fix=settings.RECONCILE_AUTOFIX).pk


@shared_task(acks_late=True)
def refunds_settle_sweep() -> int:
    """Beat: settles refunds whose outcome is not known here (an answer lost, a process killed after Stripe
    acted) and refunds long pending at Stripe, by reading Stripe."""
    return refunds.refunds_settle_sweep()
