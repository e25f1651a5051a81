"""Entitlements' periodic work: holds past their expiry given back (`holds_expire`, beat every 30 s)."""

from celery import shared_task

from entitlements.services.holds import holds_expire


@shared_task(name="entitlements.tasks.holds_expire", acks_late=True)
def holds_expire_sweep() -> int:
    """Ends every hold past its `expires_at`, 500 at a time until none is left; the number ended."""
    ended = 0
    while batch := holds_expire(limit=500):
        ended += batch
    return ended
