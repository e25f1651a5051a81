"""Which handler applies each type of Stripe event: the inbox dispatches through this table, and
`stripe_setup_webhooks` subscribes Tollgate's endpoints to exactly these types. A type not listed is ignored.

Every handler's effect is monotone or compare-and-set (an open payment settles once; refunds recompute from
their own rows), so duplicates and any arrival order converge on Stripe's state.
"""

from collections.abc import Callable

from billing.handlers.charge import charge_refunded
from billing.handlers.checkout_session import checkout_session_async_payment_failed, checkout_session_settled
from billing.handlers.credit_note import credit_note_changed
from billing.handlers.customer import customer_deleted, customer_updated
from billing.handlers.dispute import dispute_changed
from billing.handlers.event import StripeEventIn
from billing.handlers.invoice import invoice_changed
from billing.handlers.invoice_payment import invoice_payment_paid
from billing.handlers.payment_intent import payment_intent_changed
from billing.handlers.refund import refund_changed
from billing.handlers.subscription import subscription_changed
from billing.handlers.subscription_schedule import subscription_schedule_changed

Handler = Callable[[StripeEventIn], None]

HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": checkout_session_settled,
    "checkout.session.expired": checkout_session_settled,
    "checkout.session.async_payment_succeeded": checkout_session_settled,
    "checkout.session.async_payment_failed": checkout_session_async_payment_failed,
    "payment_intent.succeeded": payment_intent_changed,
    "payment_intent.payment_failed": payment_intent_changed,
    "payment_intent.requires_action": payment_intent_changed,
    "payment_intent.canceled": payment_intent_changed,
    "payment_intent.processing": payment_intent_changed,
    "charge.refunded": charge_refunded,
    "refund.created": refund_changed,
    "refund.updated": refund_changed,
    "refund.failed": refund_changed,
    "charge.refund.updated": refund_changed,
    "charge.dispute.created": dispute_changed,
    "charge.dispute.updated": dispute_changed,
    "charge.dispute.closed": dispute_changed,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
    "customer.subscription.trial_will_end": subscription_changed,
    "customer.subscription.paused": subscription_changed,
    "customer.subscription.resumed": subscription_changed,
    "subscription_schedule.created": subscription_schedule_changed,
    "subscription_schedule.updated": subscription_schedule_changed,
    "subscription_schedule.released": subscription_schedule_changed,
    "subscription_schedule.canceled": subscription_schedule_changed,
    "subscription_schedule.completed": subscription_schedule_changed,
    "invoice.created": invoice_changed,
    "invoice.finalized": invoice_changed,
    "invoice.updated": invoice_changed,
    "invoice.paid": invoice_changed,
    "invoice.payment_succeeded": invoice_changed,
    "invoice.payment_failed": invoice_changed,
    "invoice.voided": invoice_changed,
    "invoice.marked_uncollectible": invoice_changed,
    "invoice_payment.paid": invoice_payment_paid,
    "credit_note.created": credit_note_changed,
    "credit_note.updated": credit_note_changed,
    "credit_note.voided": credit_note_changed,
    "customer.updated": customer_updated,
    "customer.deleted": customer_deleted,
}
