"""Subscriptions and invoices: mirrors of Stripe kept by webhooks, and the changes tenants ask for.

Stripe is the source of truth. An event's object is applied only when the event is at least as new as the
last one applied to that object (`stripe_event_created`); two events of the same second are ambiguous, so the
object is re-fetched from Stripe (within its read rate limit) and Stripe's current state is applied. Any
arrival order therefore ends in the same local state.

- `mirror`: Stripe subscriptions applied (`subscription_apply`), routing by Stripe ids, the read rate limit;
- `invoices`: Stripe invoices and their payments applied (`invoice_apply`, `invoice_payment_apply`);
- `items`: the items a tenant asks for, checked (`subscription_items_parse`);
- `create`: a subscription created server-side on the saved payment method (`subscription_create`);
- `changes`: the tenant-requested change (and its preview), cancel and resume;
- `apis`: `/subscriptions`, `/invoices`.

The names other modules use are re-exported here: `from billing import subscriptions; subscriptions.X`.
"""

from billing.subscriptions.changes import (
    subscription_automatic_tax_set,
    subscription_cancel,
    subscription_change,
    subscription_preview,
    subscription_resume,
)
from billing.subscriptions.create import subscription_create
from billing.subscriptions.invoices import (
    invoice_apply,
    invoice_link_payment_intent,
    invoice_payment_apply,
    invoice_subscription_id,
)
from billing.subscriptions.mirror import (
    Ambiguous,
    customer_for_stripe,
    primary_item,
    stripe_read_allowed,
    subscription_apply,
    subscription_items_resolve,
    subscription_refetch_and_apply,
)

__all__ = [
    "Ambiguous",
    "customer_for_stripe",
    "invoice_apply",
    "invoice_link_payment_intent",
    "invoice_payment_apply",
    "invoice_subscription_id",
    "primary_item",
    "stripe_read_allowed",
    "subscription_apply",
    "subscription_automatic_tax_set",
    "subscription_cancel",
    "subscription_change",
    "subscription_create",
    "subscription_items_resolve",
    "subscription_preview",
    "subscription_refetch_and_apply",
    "subscription_resume",
]
