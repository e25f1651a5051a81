"""A person's data in the billing rows (issue #29): what the tenant wrote on a payment (description, metadata,
reference, return links), refund reasons, invoice lines. Amounts, currencies, tax, discounts, invoice numbers,
statuses, dates and Stripe ids stay, so the revenue figures and reconciliation are what they were."""

from billing.models import CheckoutSession, Invoice, Payment, Refund, Subscription
from core.errors import Conflict
from core.privacy import ERASED, Erasure, matching, scrub_rows
from customers.models import Customer


def customer_erasable_check(*, customer: Customer) -> None:
    """An erasure deletes the Stripe customer, and Stripe cancels its live subscriptions with it: refused
    (409 `customer_has_live_subscriptions`) until the tenant has canceled them, so that nothing ends unasked."""
    live = list(
        Subscription.objects.filter(customer=customer, status__in=Subscription.LIVE_STATUSES)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:10]
    )
    if live:
        raise Conflict(
            f"The customer has live subscriptions ({', '.join(live)}): cancel them first "
            "(`POST /subscriptions/{id}/cancel`), then erase.",
            code="customer_has_live_subscriptions",
        )


def billing_anonymise(*, customer: Customer, erasure: Erasure) -> int:
    """Scrubs the customer's billing rows of the person, in the erasure's transaction. Returns how many rows
    changed."""
    payments = Payment.objects.filter(customer=customer)
    changed = scrub_rows(
        payments, json_fields=("metadata", "items"), text_fields=("description",), erasure=erasure
    )
    # A reference is unique per project: one that quotes the person becomes one of its own, never a shared
    # "[erased]" two erased customers' references would collide on.
    quoting = payments.filter(matching(("reference",), erasure.needles)).values_list("pk", "reference")
    for pk, reference in list(quoting):
        if reference and erasure.text(reference) != reference:
            Payment.objects.filter(pk=pk).update(reference=f"{ERASED} {pk}")
            changed += 1
    changed += scrub_rows(
        CheckoutSession.objects.filter(customer=customer),
        text_fields=("success_url", "cancel_url"),
        erasure=erasure,
    )
    changed += scrub_rows(
        Refund.objects.filter(payment__customer=customer), text_fields=("reason",), erasure=erasure
    )
    changed += scrub_rows(Invoice.objects.filter(customer=customer), json_fields=("lines",), erasure=erasure)
    return changed
