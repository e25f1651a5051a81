"""Entitlements' periodic work: holds past their expiry given back (`holds_expire`, beat every 30 s); plan credits
granted on a cadence as their month or week comes (`plan_credits_grant_due`, every 30 s); the usage
events' monthly partitions made ahead and retention applied (`usage_partitions_maintain`, daily)."""

from celery import shared_task
from django.conf import settings

from core.actors import Actor
from entitlements.services.hold_sweep import holds_expire
from entitlements.services.plan_credits import plan_credit_slices_grant
from entitlements.services.usage_partitions import usage_partitions_create_ahead, usage_partitions_drop


@shared_task(name="entitlements.tasks.holds_expire", acks_late=True)
def holds_expire_sweep() -> int:
    """Ends every hold past its `expires_at`, 500 at a time until none is left; the number ended."""
    ended = 0
    while batch := holds_expire(limit=500):
        ended += batch
    return ended


@shared_task(name="entitlements.tasks.plan_credits_grant_due", acks_late=True)
def plan_credits_grant_due() -> int:
    """Grants every plan credit slice that is due, 100 at a time until none is left; the number granted."""
    granted = 0
    while batch := plan_credit_slices_grant(limit=100):
        granted += batch
    return granted


@shared_task(name="entitlements.tasks.usage_partitions_maintain", acks_late=True)
def usage_partitions_maintain() -> dict[str, list[str]]:
    """Makes the coming months' partitions (`USAGE_PARTITIONS_AHEAD`) and, when `USAGE_RETENTION_MONTHS` is set,
    drops the months past it that may go; what it made, dropped and kept (with why). Idempotent: a second run
    finds the months made and the old ones gone."""
    made = usage_partitions_create_ahead(months_ahead=settings.USAGE_PARTITIONS_AHEAD)
    verdicts = []
    if settings.USAGE_RETENTION_MONTHS > 0:
        verdicts = usage_partitions_drop(
            older_than_months=settings.USAGE_RETENTION_MONTHS, actor=Actor.system("usage retention (beat)")
        )
    return {
        "made": [f"{month:%Y-%m}" for month in made],
        "dropped": [f"{v.month:%Y-%m}" for v in verdicts if v.droppable],
        "kept": [f"{v.month:%Y-%m}: {'; '.join(v.refused)}" for v in verdicts if not v.droppable],
    }
