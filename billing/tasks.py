"""Billing tasks: thin wrappers that take ids and call one service."""

from celery import shared_task

from billing.services import meter_reports, refunds
from billing.services import payment_closing as closing


@shared_task(acks_late=True)
def payments_expire_due() -> int:
    """Beat: expires payments still pending after their project's payment_ttl_seconds."""
    return closing.payments_expire_due()


@shared_task(acks_late=True)
def reconcile_all() -> str:
    """Beat: nightly reconciliation of every project with Stripe (applying Stripe's state when configured)."""
    from django.conf import settings

    from billing.services.reconcile import reconcile

    return reconcile(fix=settings.RECONCILE_AUTOFIX).pk


@shared_task(acks_late=True)
def refunds_settle_sweep() -> int:
    """Beat: settles refunds whose outcome is not known here (an answer lost, a process killed after Stripe
    acted) and refunds long pending at Stripe, by reading Stripe."""
    return refunds.refunds_settle_sweep()


# The Stripe-meter reporter's tasks keep the names they had in entitlements (queued messages and the beat
# schedule name them; entitlements queues the report by this name when it records reportable usage).
@shared_task(name="entitlements.tasks.usage_report_to_stripe", acks_late=True)
def usage_report_to_stripe(project_id: str) -> int:
    """Reports a batch of the project's due meter events to Stripe; queues the next batch if this one was full."""
    claimed = meter_reports.meter_events_report(project_id=project_id)
    if claimed >= meter_reports.METER_BATCH:
        meter_reports.meter_report_queue(project_id=project_id)
    return claimed


@shared_task(name="entitlements.tasks.usage_report_sweep", acks_late=True)
def usage_report_sweep() -> int:
    """Beat: retries failed meter reports whose backoff has passed, and anything never queued."""
    projects = meter_reports.meter_projects_due()
    for project_id in projects:
        meter_reports.meter_report_queue(project_id=project_id)
    return len(projects)
