"""Billing records in the back office. Stripe-mirrored and money fields are read-only: changes go through
services, as audited actions that ask for a reason (`core.admin_actions`). The customer page, which gathers
billing and entitlements, is `backoffice.admin.customers`; products and prices are `catalog.admin`.

Django's admin discovery imports this package; importing the modules below registers their ModelAdmins:

- `payments`: carts, payments, checkout sessions, refunds (and the refund action);
- `subscriptions`: subscriptions (cancel and resume actions) and invoices (void, mark uncollectible, credit, and
  edit a draft's lines);
- `credit_notes`: credit notes of invoices (the void action, and the invoices' credit note action);
- `invoice_lines`: the invoices' actions adding a line to a draft, and changing or removing one of its lines;
- `reconciliation`: reconciliation runs and drift, and Stripe's balance transactions the tie-out reads;
- `journal`: the double-entry journal's entries and their lines;
- `recognition`: the revenue schedules of paid lines;
- `adoptions`: adoption runs of existing Stripe accounts;
- `late_usage`: usage billed on the next invoice because Stripe had invoiced its period before it was reported.
"""

from billing.admin import credit_notes, invoice_lines, payments, subscriptions

# isort: split
from billing.admin import adoptions, journal, late_usage, recognition, reconciliation

__all__ = [
    "adoptions",
    "credit_notes",
    "invoice_lines",
    "journal",
    "late_usage",
    "payments",
    "recognition",
    "reconciliation",
    "subscriptions",
]
