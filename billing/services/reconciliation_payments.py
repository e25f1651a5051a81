"""Reconciliation of payments: every charge's refunded amount and every dispute's status compared with the
payment of their PaymentIntent, every refund both ways (Stripe's refunds we lack or hold otherwise, ours that
Stripe lacks), and every open payment with its Checkout Session or PaymentIntent; repaired through the same
functions the webhook processors and the refund settle sweep use.
"""

from functools import partial
from typing import Any

from django.utils import timezone

from billing.models import Payment, Refund
from billing.services.payment_transitions import intent_status, payment_apply_checkout, payment_apply_intent
from billing.services.reconciliation_reader import _Reader
from billing.services.reconciliation_recording import Expected, _Recording
from billing.services.refunds import (
    DISPUTE_RANK,
    UNSENT_AFTER,
    payment_apply_charge,
    payment_apply_dispute,
    payment_refunds_sync,
    refund_mirror,
    refund_of_stripe,
)
from projects.models import Project
from stripe_gateway.gateway import stripe_account_of, stripe_id


class _PaymentChecks(_Recording):
    """Charges, disputes and open payments (see the module docstring)."""

    def charges(self, reader: _Reader, projects: list[Project]) -> None:
        for charge in reader.each("charges", self._created()):
            intent = stripe_id(charge.get("payment_intent"))
            if not intent:
                continue
            self.run.checked += 1
            payment = self._payment_of_intent(reader.account, projects, intent)
            if payment is None:
                continue
            self.check(
                payment.project,
                "charge",
                charge["id"],
                local_id=payment.pk,
                compare=partial(self._charge_pairs, payment, charge),
                repair=partial(self._charge_repair, payment, charge),
            )

    @staticmethod
    def _payment_of_intent(account: str, projects: list[Project], intent: str) -> Payment | None:
        payment = (
            Payment.objects.filter(project__in=projects, stripe_payment_intent_id=intent)
            .select_related("project", "customer")
            .first()
        )
        if payment is None or stripe_account_of(payment.project) != account:
            return None
        return payment

    @staticmethod
    def _charge_pairs(payment: Payment, charge: dict[str, Any]) -> Expected:
        local = Payment.objects.get(pk=payment.pk)
        refunded = min(int(charge.get("amount_refunded") or 0), local.amount)
        pairs: Expected = {"amount_refunded": (local.amount_refunded, refunded)}
        if charge.get("status") == "succeeded":
            pairs["paid"] = (local.status in Payment.PAID_STATUSES, True)
        return pairs

    @staticmethod
    def _charge_repair(payment: Payment, charge: dict[str, Any]) -> None:
        payment_apply_charge(payment=Payment.objects.get(pk=payment.pk), charge=charge)

    def disputes(self, reader: _Reader, projects: list[Project]) -> None:
        for dispute in reader.each("disputes", self._created()):
            intent = stripe_id(dispute.get("payment_intent"))
            self.run.checked += 1
            payment = self._payment_of_intent(reader.account, projects, intent) if intent else None
            if payment is None:
                continue
            self.check(
                payment.project,
                "dispute",
                dispute["id"],
                local_id=payment.pk,
                compare=partial(self._dispute_pairs, payment, dispute),
                repair=partial(self._dispute_repair, payment, dispute),
            )

    @staticmethod
    def _dispute_pairs(payment: Payment, dispute: dict[str, Any]) -> Expected:
        local = Payment.objects.get(pk=payment.pk)
        outcome = str(dispute.get("status") or "")
        held = local.dispute_status
        # A payment held at a later dispute state than this dispute's (a second dispute) is not drift.
        if DISPUTE_RANK.get(held, 0) > DISPUTE_RANK.get(outcome, 0):
            return {"dispute_status": (outcome, outcome)}
        return {
            "dispute_status": (held, outcome),
            "dispute_amount": (local.dispute_amount, int(dispute.get("amount") or 0)),
        }

    @staticmethod
    def _dispute_repair(payment: Payment, dispute: dict[str, Any]) -> None:
        payment_apply_dispute(payment=Payment.objects.get(pk=payment.pk), dispute=dispute)

    # --- refunds --------------------------------------------------------------------------------------------

    def refunds(self, reader: _Reader, projects: list[Project]) -> None:
        """Stripe's refunds against ours (missing here, or another status or amount), then ours that Stripe
        does not have: one with a Stripe id Stripe no longer lists, or one asked and never answered that is
        past any attempt still in flight (its repair reads the payment's refunds: settled, or `failed`)."""
        seen: set[str] = set()
        for stripe_refund in reader.each("refunds", self._created()):
            intent = stripe_id(stripe_refund.get("payment_intent"))
            self.run.checked += 1
            payment = self._payment_of_intent(reader.account, projects, intent) if intent else None
            if payment is None:
                continue
            seen.add(stripe_refund["id"])
            if asked := str((stripe_refund.get("metadata") or {}).get("tollgate_refund") or ""):
                seen.add(asked)
            self.check(
                payment.project,
                "refund",
                stripe_refund["id"],
                local_id=payment.pk,
                compare=partial(self._refund_pairs, payment, stripe_refund),
                repair=partial(self._refund_repair, payment, stripe_refund),
            )
        ours = (
            Refund.objects.filter(project__in=projects)
            .exclude(payment__stripe_payment_intent_id="")
            .exclude(stripe_refund_id="", status__in=(Refund.Status.FAILED, Refund.Status.CANCELED))
            .select_related("project", "payment")
        )
        if self.since is not None:
            ours = ours.filter(created_at__gte=self.since)
        for refund in ours:
            if stripe_account_of(refund.project) != reader.account:
                continue
            if refund.stripe_refund_id in seen or refund.pk in seen:
                continue
            self.run.checked += 1
            self.check(
                refund.project,
                "refund",
                refund.stripe_refund_id or refund.pk,
                local_id=refund.pk,
                compare=partial(self._unknown_refund_pairs, refund),
                repair=partial(self._unknown_refund_repair, refund),
            )

    @staticmethod
    def _refund_pairs(payment: Payment, stripe_refund: dict[str, Any]) -> Expected | None:
        local = refund_of_stripe(payment=payment, stripe_refund=stripe_refund)
        if local is None:
            return None
        return {
            "stripe_refund_id": (local.stripe_refund_id, stripe_refund["id"]),
            "status": (local.status, str(stripe_refund.get("status") or "")),
            "amount": (local.amount, int(stripe_refund["amount"])),
        }

    @staticmethod
    def _refund_repair(payment: Payment, stripe_refund: dict[str, Any]) -> None:
        refund_mirror(payment=Payment.objects.get(pk=payment.pk), stripe_refund=stripe_refund)

    @staticmethod
    def _unknown_refund_pairs(refund: Refund) -> Expected:
        local = Refund.objects.get(pk=refund.pk)
        if local.stripe_refund_id:
            return {"at_stripe": (True, False)}
        if local.status in (Refund.Status.FAILED, Refund.Status.CANCELED):
            return {}
        if local.updated_at > timezone.now() - UNSENT_AFTER:
            return {}  # its attempt may still be in flight
        return {"status": (local.status, Refund.Status.FAILED.value)}

    @staticmethod
    def _unknown_refund_repair(refund: Refund) -> None:
        payment_refunds_sync(payment=Payment.objects.select_related("project").get(pk=refund.payment_id))

    # --- open payments --------------------------------------------------------------------------------------

    def open_payments(self, reader: _Reader, projects: list[Project]) -> None:
        open_payments = Payment.objects.filter(
            project__in=projects, status__in=Payment.OPEN_STATUSES
        ).select_related("project", "customer")
        for payment in open_payments:
            if stripe_account_of(payment.project) != reader.account:
                continue
            if payment.source == Payment.Source.INVOICE:
                continue  # an invoice's payment follows its invoice (checked above)
            self.run.checked += 1
            if payment.stripe_checkout_session_id:
                session = reader.checkout_session(payment.stripe_checkout_session_id)
                if session["status"] != "open":
                    self.check(
                        payment.project,
                        "checkout_session",
                        session["id"],
                        local_id=payment.pk,
                        compare=partial(self._checkout_pairs, payment),
                        repair=partial(self._checkout_repair, payment, session),
                    )
            elif payment.stripe_payment_intent_id:
                intent = reader.payment_intent(payment.stripe_payment_intent_id)
                if intent["status"] in (
                    "succeeded",
                    "canceled",
                    "processing",
                    "requires_action",
                ) or intent.get("last_payment_error"):
                    self.check(
                        payment.project,
                        "payment_intent",
                        intent["id"],
                        local_id=payment.pk,
                        compare=partial(self._intent_pairs, payment, intent),
                        repair=partial(self._intent_repair, payment, intent),
                    )

    @staticmethod
    def _checkout_pairs(payment: Payment) -> Expected:
        return {"open": (Payment.objects.get(pk=payment.pk).is_open, False)}

    @staticmethod
    def _intent_pairs(payment: Payment, intent: dict[str, Any]) -> Expected:
        return {"status": (Payment.objects.get(pk=payment.pk).status, intent_status(intent))}

    @staticmethod
    def _checkout_repair(payment: Payment, session: dict[str, Any]) -> None:
        payment_apply_checkout(payment=Payment.objects.get(pk=payment.pk), stripe_session=session)

    @staticmethod
    def _intent_repair(payment: Payment, intent: dict[str, Any]) -> None:
        payment_apply_intent(payment=Payment.objects.get(pk=payment.pk), intent=intent)
