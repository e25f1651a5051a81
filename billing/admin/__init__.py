"""Billing records in the back office. Stripe-mirrored and money fields are read-only: changes go through
services, as audited actions that ask for a reason (`core.admin_actions`). The customer page, which gathers
billing and entitlements, is `backoffice.admin.customers`; products and prices are `catalog.admin`.

Django's admin discovery imports this package; importing the modules below registers their ModelAdmins:

- `payments`: carts, payments, checkout sessions, refunds (and the refund action);
- `subscriptions`: subscriptions (cancel and resume actions) and invoices;
- `reconciliation`: reconciliation runs and drift;
- `adoptions`: adoption runs of existing Stripe accounts.
"""

from billing.admin import payments, subscriptions

# isort: split
from billing.admin import adoptions, reconciliation

__all__ = ["adoptions", "payments", "reconciliation", "subscriptions"]
