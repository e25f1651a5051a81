"""Billing tasks: thin wrappers that take ids and call one service."""

import logging

from celery import shared_task

from billing.services import (
    auto_recharge,
    first_invoice_voids,
    late_usage,
    margin_alerts,
    meter_corrections,
    meter_reports,
    refunds,
    revenue_figures,
    version_moves,
)
from billing.services import payment_closing as closing

logger = logging.getLogger(__name__)


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


@shared_task(acks_late=True)
def revenue_fold() -> int:
    """Beat: folds the revenue figures' journal into their totals until it is empty (at most a hundred batches
    a run; the next run takes the rest)."""
    folded = 0
    for _ in range(100):
        batch = revenue_figures.revenue_fold()
        folded += batch
        if batch < revenue_figures.FOLD_BATCH:
            break
    return folded


@shared_task(acks_late=True)
def recognition_sync_all(full: bool = False) -> int:
    """Beat: brings every project's revenue schedules up to the mirror (what changed since each one's last sync;
    nightly, `full`: every document again), then posts the revenue they recognised to the journal (each month
    once it has ended); returns the rows and entries written, each logged when a full run wrote any."""
    from billing.services.journal_recognition import journal_recognition
    from billing.services.recognition import recognition_sync
    from projects.models import Project

    written = 0
    for project in Project.objects.order_by("pk"):
        rows = recognition_sync(project, full=full)
        entries = journal_recognition(project, full=full)
        if full and rows:
            logger.warning("Revenue schedules of %s repaired: %s row(s) written.", project.slug, rows)
        written += rows + entries
    return written


@shared_task(acks_late=True)
def revenue_figures_repair() -> int:
    """Beat: nightly, brings rows written around the billing services (a direct write, an import) to what they
    should count in the revenue figures; each one it changes is logged."""
    return revenue_figures.revenue_figures_repair()


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
    """Beat: retries failed meter reports whose backoff has passed, and anything never queued; the meter
    corrections still to make; and the invoice items of late usage whose backoff has passed. Returns how many
    projects' reports and late charges it queued."""
    projects = meter_reports.meter_projects_due()
    for project_id in projects:
        meter_reports.meter_report_queue(project_id=project_id)
    for correction_id in meter_corrections.meter_corrections_due():
        usage_correction_to_stripe.delay(correction_id)
    charges = late_usage.late_charges_due()
    for charge_id in charges:
        late_usage_to_stripe.delay(charge_id)
    return len(projects) + len(charges)


# Entitlements queues it by this name after a usage correction of an event Stripe's meter may hold.
@shared_task(name="billing.tasks.usage_correction_to_stripe", acks_late=True)
def usage_correction_to_stripe(correction_id: str) -> float | None:
    """Corrects Stripe's meter for a usage correction. While a report or an earlier correction of the event is in
    flight it waits for nothing: the sweep queues it again (returns how long that may be)."""
    return meter_corrections.meter_correction_apply(correction_id=correction_id)


@shared_task(acks_late=True)
def late_usage_to_stripe(charge_id: int) -> bool:
    """Makes a late usage charge's invoice item (the sweep queues it again after a backoff while Stripe fails)."""
    return late_usage.late_charge_bill(charge_id=charge_id)


# Entitlements queues the charge by this name when a spend leaves a balance at its auto-recharge mark.
@shared_task(name="billing.tasks.auto_recharge_charge", acks_late=True)
def auto_recharge_charge(recharge_id: str) -> str:
    """Charges an auto-recharge's current attempt. When Stripe cannot be reached (after the SDK's own retries),
    the attempt stays `charging` and the sweep continues it, under the same payment and key."""
    try:
        return auto_recharge.auto_recharge_charge(recharge_id=recharge_id)
    except auto_recharge.ChargeInterrupted:
        return "interrupted"


@shared_task(acks_late=True)
def auto_recharges_resume() -> int:
    """Beat: continues auto-recharges still charging a minute after they started (Stripe unreachable, a task
    lost, a process killed after Stripe acted): each continues its attempt's one payment."""
    due = auto_recharge.auto_recharges_due()
    for recharge_id in due:
        try:
            auto_recharge.auto_recharge_charge(recharge_id=recharge_id)
        except auto_recharge.ChargeInterrupted:
            break  # Stripe is unreachable: the next run tries again
    return len(due)


@shared_task(acks_late=True)
def margin_alerts_sweep() -> int:
    """Beat: announces `customer.margin_low` for the customers of every project with a margin threshold whose
    margin this month fell below it, once per customer, month and currency (a re-run announces nothing again)."""
    return margin_alerts.margin_alerts_sweep()


@shared_task(acks_late=True)
def adoption_run(run_id: str) -> str:
    """Runs a queued adoption of a Stripe account (a run already taken is left alone: redelivery is harmless)."""
    from billing.services.adoption import adoption_execute

    return adoption_execute(run_id=run_id).status


@shared_task(acks_late=True)
def first_invoice_voids_sweep() -> int:
    """Beat: cancels the subscriptions whose first invoice was voided unpaid in the last week, where the project
    says so and the invoice's own event did not already (dropped, or its worker killed between the two)."""
    return first_invoice_voids.first_invoice_voids_sweep()


@shared_task(acks_late=True)
def version_moves_due() -> int:
    """Beat: makes final, and announces, the moves to another product version scheduled for a period's end that
    has passed (`billing.services.version_moves`)."""
    return version_moves.version_moves_due()
