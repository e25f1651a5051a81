"""Subscriptions and invoices: mirrors of Stripe kept by webhooks, and the changes tenants ask for.

Stripe is the source of truth. An event's object is applied only when the event is at least as new as the
last one applied to that object (`stripe_event_created`); two events of the same second are ambiguous, so the
object is re-fetched from Stripe (within its read rate limit) and Stripe's current state is applied. Any
arrival order therefore ends in the same local state.

- `mirror`: Stripe subscriptions applied (`subscription_apply`), routing by Stripe ids, the read rate limit;
- `invoices`: Stripe invoices and their payments applied (`invoice_apply`, `invoice_payment_apply`);
- `items`: the items a tenant asks for, checked (`subscription_items_parse`);
- `create`: a subscription created server-side on the saved payment method (`subscription_create`);
- `changes`: the tenant-requested change (`subscription_change`, `subscription_automatic_tax_set`), checked by
  `change_checks` and previewed by `preview` (`subscription_preview`); `stripe_writes`: how those writes reach
  Stripe (the state decided on, the idempotency key, the answer, the audit);
- `cancel`: cancel and resume (`subscription_cancel`, `subscription_resume`);
- `apis`: `/subscriptions`, `/invoices`.
"""
