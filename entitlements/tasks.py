"""Tasks of the entitlements app: thin — ids in, one service call."""

from celery import shared_task

from entitlements.services.meters import (
    METER_BATCH,
    meter_events_report,
    meter_projects_due,
    meter_report_queue,
)


@shared_task(acks_late=True)
def usage_report_to_stripe(project_id: str) -> int:
    """Reports a batch of the project's due meter events to Stripe; queues the next batch if this one was full."""
    claimed = meter_events_report(project_id=project_id)
    if claimed >= METER_BATCH:
        meter_report_queue(project_id=project_id)
    return claimed


@shared_task(acks_late=True)
def usage_report_sweep() -> int:
    """The periodic sweep: retries failed reports whose backoff has passed, and anything never queued."""
    projects = meter_projects_due()
    for project_id in projects:
        meter_report_queue(project_id=project_id)
    return len(projects)
