"""A voided first invoice ends its subscription, where the project says so (`first_invoice_void_ends_subscription`).

Stripe leaves a subscription running when its first invoice (`billing_reason` `subscription_create`) is voided: a
`send_invoice` subscription stays `active` and keeps granting its plan without a cent paid. A project that turns the
setting on has such a subscription canceled at once at Stripe, so what it granted ends with it (the mirror's
cancellation ends the entitlements, as any cancellation does; plan credits come only with a paid invoice, so there
are none to take back). A first invoice voided after a part of it was paid is a correction, not a refusal to pay: the
subscription runs on.

Decided on state, not on the event: the invoice's handler asks after every apply of a void invoice (a duplicated,
late or replayed `invoice.voided` asks again and finds the subscription ended), and the beat's sweep asks for the
void first invoices of the last `SWEEP_DAYS` (a dropped event, a worker killed between the void and the cancel). The
cancel is decided on Stripe's subscription as it is now and sent by `subscription_cancel` (a DELETE: Stripe refuses a
second one, which is read as done); a named lock per invoice keeps two workers from sending it both at once; the
mirror takes Stripe's state at once (stamped with Stripe's clock, so an older event arriving later is not applied
over it). Audited once, as `subscription.canceled` by the system, with the invoice in the reason.
"""

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from billing.models import Invoice, Subscription
from billing.services.subscription_cancel import subscription_cancel
from billing.services.subscription_mirror import subscription_refetch_and_apply
from billing.services.subscription_stripe_writes import subscription_gateway
from core.actors import Actor
from core.errors import ApiError
from core.locks import lock_taken
from stripe_gateway.gateway import stripe_account_of

logger = logging.getLogger(__name__)

# How far back the sweep looks for void first invoices (by their last change): a void older than this whose
# subscription still runs was there before the project turned the setting on, or was looked at already.
SWEEP_DAYS = 7
ACTOR = Actor.system("first invoice voided")


def _ends_subscription(invoice: Invoice) -> bool:
    return (
        invoice.status == "void"
        and invoice.billing_reason == "subscription_create"
        and invoice.amount_paid == 0
        and invoice.subscription_id is not None
        and invoice.project.first_invoice_void_ends_subscription
    )


def first_invoice_void_end(*, invoice: Invoice) -> Subscription | None:
    """Cancels, at once and at Stripe, the subscription whose first invoice `invoice` was voided unpaid, when its
    project says so; the subscription as the mirror then has it, or None when there was nothing to end (another
    invoice, the setting off, the subscription ended already, another worker ending it now)."""
    if not _ends_subscription(invoice):
        return None
    with lock_taken(f"first-invoice-void:{invoice.pk}") as taken:
        if not taken:
            return None
        subscription = Subscription.objects.select_related("project", "customer").get(
            pk=invoice.subscription_id
        )
        if subscription.status in Subscription.ENDED_STATUSES:
            return None
        gateway = subscription_gateway(subscription)
        live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
        if live.get("status") not in Subscription.ENDED_STATUSES:
            subscription_cancel(
                subscription=subscription,
                actor=ACTOR,
                at_period_end=False,
                reason=f"Its first invoice {invoice.stripe_invoice_id} was voided before anything was paid.",
            )
        return subscription_refetch_and_apply(
            account=stripe_account_of(subscription.project),
            gateway=gateway,
            stripe_subscription_id=subscription.stripe_subscription_id,
            event_created=0,
        )


def first_invoice_voids_sweep(*, now: datetime | None = None, limit: int = 100) -> int:
    """The beat's sweep: ends the subscriptions of the first invoices voided unpaid in the last `SWEEP_DAYS`
    whose projects say so and which still run in the mirror; how many it ended. Stripe unreachable for one: the
    next sweep asks again."""
    now = now or timezone.now()
    due = (
        Invoice.objects.filter(
            status="void",
            billing_reason="subscription_create",
            amount_paid=0,
            project__first_invoice_void_ends_subscription=True,
            updated_at__gte=now - timedelta(days=SWEEP_DAYS),
        )
        .exclude(subscription=None)
        .exclude(subscription__status__in=Subscription.ENDED_STATUSES)
        .select_related("project")
        .order_by("updated_at")[:limit]
    )
    ended = 0
    for invoice in due:
        try:
            if first_invoice_void_end(invoice=invoice) is not None:
                ended += 1
        except ApiError as exc:
            logger.warning("Could not end the subscription of voided invoice %s: %s", invoice.pk, exc.code)
    return ended
