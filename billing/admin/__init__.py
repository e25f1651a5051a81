"""Billing records in the back office. Stripe-mirrored and money fields are read-only: changes go through
services, as audited actions that ask for a reason (`core.admin_actions`). The customer page gathers what an
operator needs: billing and entitlement inlines, "explain entitlements", and grant/revoke.

Django's admin discovery imports this package; importing the modules below registers their ModelAdmins:

- `display`: money columns, read-only pages, Stripe dashboard links;
- `customers`: the customer page;
- `catalog`: products and prices;
- `payments`: carts, payments, checkout sessions, refunds (and the refund action);
- `subscriptions`: subscriptions (cancel and resume actions) and invoices;
- `reconciliation`: reconciliation runs and drift.
"""

# In the order the pages were in when this package was one module (the customer page first: it brings the
# entitlements admin along), so apps and models register as they did.
from billing.admin import customers

# isort: split
from billing.admin import catalog, payments, subscriptions

# isort: split
from billing.admin import reconciliation

__all__ = ["catalog", "customers", "payments", "reconciliation", "subscriptions"]
