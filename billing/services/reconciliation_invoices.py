"""Reconciliation of invoices and their payment attempts: every Stripe invoice compared with its mirror (status,
amounts, the subscription it belongs to), and the payment of a paid or attempted invoice with Stripe's
`invoice_payments`; repaired through `invoice_apply` and `invoice_payment_apply`.
"""

from functools import partial
from typing import Any

from billing.models import Invoice, Payment, Subscription
from billing.services.invoices import (
    invoice_apply,
    invoice_link_payment_intent,
    invoice_payment_apply,
    invoice_subscription_id,
)
from billing.services.reconciliation_reader import _Reader
from billing.services.reconciliation_recording import Expected, _Recording
from customers.models import Customer
from customers.services.customers import customer_for_stripe
from projects.models import Project
from stripe_gateway.gateway import stripe_id


class _InvoiceChecks(_Recording):
    """Invoices and their payment attempts (see the module docstring)."""

    def invoices(self, reader: _Reader, projects: list[Project]) -> None:
        for stripe_invoice in reader.each("invoices", self._created()):
            self.run.checked += 1
            customer = customer_for_stripe(
                account=reader.account, stripe_customer_id=stripe_id(stripe_invoice.get("customer"))
            )
            if customer is None or customer.project not in projects:
                continue
            local_id = (
                Invoice.objects.filter(project=customer.project, stripe_invoice_id=stripe_invoice["id"])
                .values_list("pk", flat=True)
                .first()
                or ""
            )
            # Whether the invoice and its payment should name a subscription: one read for both comparisons.
            subscription = _mirrored_subscription(customer, stripe_invoice)
            self.check(
                customer.project,
                "invoice",
                stripe_invoice["id"],
                local_id=local_id,
                compare=partial(self._invoice_pairs, customer, stripe_invoice, subscription),
                repair=partial(self._invoice_repair, reader, stripe_invoice),
            )
            attempts = self._attempts(reader, customer, stripe_invoice)
            if attempts is None:
                continue
            self.check(
                customer.project,
                "payment",
                stripe_invoice["id"],
                local_id=Payment.objects.filter(
                    project=customer.project, stripe_invoice_id=stripe_invoice["id"]
                )
                .values_list("pk", flat=True)
                .first()
                or "",
                compare=partial(self._payment_pairs, customer, stripe_invoice, subscription, attempts),
                repair=partial(self._payment_repair, reader, stripe_invoice, attempts),
            )

    @staticmethod
    def _invoice_pairs(
        customer: Customer, stripe_invoice: dict[str, Any], stripe_subscription: str
    ) -> Expected | None:
        local = (
            Invoice.objects.filter(project=customer.project, stripe_invoice_id=stripe_invoice["id"])
            .select_related("subscription")
            .first()
        )
        if local is None:
            return None
        pairs: Expected = {
            name: (getattr(local, name), int(stripe_invoice.get(name) or 0))
            for name in ("subtotal", "total", "amount_due", "amount_paid", "amount_remaining")
        }
        pairs["status"] = (local.status, stripe_invoice.get("status"))
        pairs["number"] = (local.number, stripe_invoice.get("number") or "")
        if stripe_subscription:
            pairs["subscription"] = (
                local.subscription.stripe_subscription_id if local.subscription else "",
                stripe_subscription,
            )
        return pairs

    def _invoice_repair(self, reader: _Reader, stripe_invoice: dict[str, Any]) -> None:
        invoice_apply(
            account=reader.account,
            stripe_invoice=stripe_invoice,
            event_created=self.as_of(stripe_invoice),
            force=True,
        )

    def _attempts(
        self, reader: _Reader, customer: Customer, stripe_invoice: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        """Stripe's payment attempts of the invoice when there is one to mirror (a paid invoice, or an open
        one that was attempted), read only when the local payment does not already match; None: nothing to
        mirror."""
        status = stripe_invoice.get("status")
        attempted = int(stripe_invoice.get("attempt_count") or 0) > 0
        if not (status == "paid" or (status in ("open", "uncollectible") and attempted)):
            return None
        payment = Payment.objects.filter(
            project=customer.project, stripe_invoice_id=stripe_invoice["id"]
        ).first()
        paid_amount = int(stripe_invoice.get("amount_paid") or 0)
        if payment is not None and status == "paid":
            settled = payment.status in (*Payment.PAID_STATUSES, Payment.Status.NO_PAYMENT_REQUIRED)
            if settled and (payment.stripe_payment_intent_id or not paid_amount):
                return []  # matches without a read
        if (
            payment is not None
            and status != "paid"
            and payment.stripe_payment_intent_id
            and payment.status == Payment.Status.REQUIRES_PAYMENT_METHOD
        ):
            return []
        return reader.invoice_payments(invoice=stripe_invoice["id"])

    @staticmethod
    def _intent_of(attempts: list[dict[str, Any]]) -> str:
        for record in attempts:  # newest first: the latest attempt's intent
            intent = stripe_id((record.get("payment") or {}).get("payment_intent"))
            if intent:
                return intent
        return ""

    def _payment_pairs(
        self,
        customer: Customer,
        stripe_invoice: dict[str, Any],
        stripe_subscription: str,
        attempts: list[dict[str, Any]],
    ) -> Expected | None:
        payment = Payment.objects.filter(
            project=customer.project, stripe_invoice_id=stripe_invoice["id"]
        ).first()
        if payment is None:
            return None
        paid = stripe_invoice.get("status") == "paid"
        pairs: Expected = {}
        if paid:
            expected = (
                Payment.Status.NO_PAYMENT_REQUIRED
                if not int(stripe_invoice.get("amount_paid") or 0)
                else Payment.Status.SUCCEEDED
            )
            settled = (
                payment.status
                if payment.status not in (*Payment.PAID_STATUSES, Payment.Status.NO_PAYMENT_REQUIRED)
                else expected
            )
            pairs["status"] = (settled, expected)
        else:
            failed = (Payment.Status.REQUIRES_PAYMENT_METHOD, Payment.Status.FAILED)
            pairs["status"] = ("failed" if payment.status in failed else payment.status, "failed")
        intent = self._intent_of(attempts)
        if intent:
            pairs["stripe_payment_intent_id"] = (payment.stripe_payment_intent_id, intent)
        if stripe_subscription:  # linked with the invoice; repaired by invoice_payment_apply once it is
            pairs["stripe_subscription_id"] = (payment.stripe_subscription_id, stripe_subscription)
        return pairs

    def _payment_repair(
        self, reader: _Reader, stripe_invoice: dict[str, Any], attempts: list[dict[str, Any]]
    ) -> None:
        invoice = invoice_apply(
            account=reader.account, stripe_invoice=stripe_invoice, event_created=self.as_of(stripe_invoice)
        )
        if invoice is None:
            return
        intent = self._intent_of(attempts)
        invoice_link_payment_intent(invoice=invoice, payment_intent_id=intent)
        invoice_payment_apply(
            invoice=invoice,
            stripe_invoice=stripe_invoice,
            payment_intent_id=intent,
            paid=stripe_invoice.get("status") == "paid",
        )


def _mirrored_subscription(customer: Customer, stripe_invoice: dict[str, Any]) -> str:
    """The Stripe id of the invoice's subscription when that subscription is mirrored (else ""): the invoice
    and its payment are then expected to name it."""
    stripe_subscription = invoice_subscription_id(stripe_invoice)
    if stripe_subscription and (
        Subscription.objects.filter(
            project=customer.project, stripe_subscription_id=stripe_subscription
        ).exists()
    ):
        return stripe_subscription
    return ""
