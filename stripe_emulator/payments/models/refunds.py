"""Refunds: full and partial refunds of a succeeded charge (refused once a dispute has charged it back), their
asynchronous outcome, refund updates and lists, and the ``refunds`` list embedded in the charge.

Stripe's refunds are asynchronous (https://docs.stripe.com/testing#refunds): with most cards a refund is
``succeeded`` at once and stays so; a refund of a ``4000000000007726`` (``pm_card_pendingRefund``) payment
starts ``pending`` and succeeds later; one of a ``4000000000005126`` (``pm_card_refundFail``) payment starts
``succeeded`` and fails later with ``expired_or_canceled_card``. Stripe only says "some time later"; here it
is :data:`REFUND_SETTLEMENT_DELAY` seconds after ``created``, on the clock in force (a test clock's for its
customers), and happens in the advance hook ``settle_refunds``, lazily before refund and charge reads
(:meth:`Refunds.refunds_settle_before_read`), or at once through the emulator-only ``/_emulator/refunds/{id}/settle``
control (:meth:`Refunds.refund_settle`), which can also fail any ``pending`` or ``succeeded`` refund.

A pending refund already counts in the charge's ``amount_refunded``, so the same money cannot be refunded
twice; a failed one no longer does: Stripe "adds it back to your Stripe account balance", and the charge can
be refunded again.
"""

from __future__ import annotations

from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.context import RequestContext, current_request, request_scope
from stripe_emulator.core.currencies import ZERO_DECIMAL
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.payments import cards
from stripe_emulator.payments.models.disputes import Disputes

REFUND_SETTLEMENT_DELAY = 60
"""Seconds from a refund's ``created`` until a test card's asynchronous outcome (Stripe's test mode takes a
few seconds; a minute keeps a refund's first state readable in a test that runs on wall time)."""

FAILURE_REASONS = (
    "charge_for_pending_refund_disputed",
    "declined",
    "expired_or_canceled_card",
    "insufficient_funds",
    "lost_or_stolen_card",
    "merchant_request",
    "unknown",
)
"""Stripe's ``failure_reason`` values at this API version."""


class Refunds(Disputes):
    def refund_create(
        self,
        *,
        charge: str | None = None,
        payment_intent: str | None = None,
        amount: int | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> StripeObject:
        if charge is None and payment_intent is None:
            raise InvalidRequestError(
                "One of the following params should be provided for this request: payment_intent or charge.",
                code="parameter_missing",
            )
        if charge is not None and payment_intent is not None:
            target = self.charge_require(charge, param="charge")
            if target["payment_intent"] != payment_intent:
                raise InvalidRequestError(
                    f"The charge {charge} does not belong to the PaymentIntent {payment_intent}.",
                    param="charge",
                )
        elif charge is not None:
            target = self.charge_require(charge, param="charge")
        else:
            assert payment_intent is not None
            pi = self.payment_intent_require(payment_intent, param="payment_intent")
            if pi["status"] != "succeeded" or pi["latest_charge"] is None:
                raise InvalidRequestError(
                    f"This PaymentIntent ({payment_intent}) does not have a successful charge to refund.",
                    code="charge_not_refundable",
                    param="payment_intent",
                )
            target = self.charge_require(pi["latest_charge"], param="payment_intent")
        if target["status"] != "succeeded" or not target["captured"]:
            raise InvalidRequestError(
                f"Charge {target['id']} has not succeeded and cannot be refunded.",
                code="charge_not_refundable",
                param="charge" if charge else "payment_intent",
            )
        remaining = target["amount_captured"] - target["amount_refunded"]
        if remaining <= 0:
            raise InvalidRequestError(
                f"Charge {target['id']} has already been refunded.", code="charge_already_refunded"
            )
        dispute = self._open_dispute(target["id"])
        if dispute is not None and dispute["status"] not in (
            "warning_needs_response",
            "warning_under_review",
        ):
            raise InvalidRequestError(
                f"Charge {target['id']} has been charged back; cannot issue a refund.", code="charge_disputed"
            )
        if amount is None:
            amount = remaining
        if amount < 1:
            raise InvalidRequestError("This value must be greater than or equal to 1.", param="amount")
        if amount > remaining:
            raise InvalidRequestError(
                f"Refund amount ({_money(amount, target['currency'])}) is greater than unrefunded amount on "
                f"charge ({_money(remaining, target['currency'])})",
                code="amount_too_large",
                param="amount",
            )
        card = self._card_of(target)
        later = card.refund if card is not None else None
        refund: StripeObject = {
            "id": ids.id_for("refund"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": target["id"],
            "created": self.now(),
            "currency": target["currency"],
            "customer": target["customer"],
            "customer_account": None,
            "destination_details": {
                "card": {
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                    "reference": None,
                },
                "type": "card",
            },
            "metadata": metadata or {},
            "payment_intent": target["payment_intent"],
            "payment_method": target["payment_method"],
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "pending" if later == "succeed" else "succeeded",
            "transfer_reversal": None,
        }
        if later == "succeed":
            refund["pending_reason"] = "processing"
        if later is not None:
            refund["_settles_at"] = refund["created"] + REFUND_SETTLEMENT_DELAY
            refund["_outcome"] = "succeeded" if later == "succeed" else "failed"
        self.store.insert(refund)
        # The funds leave the balance at once, even while the refund is pending.
        self.balance_transaction_for_refund(refund, target)
        target["amount_refunded"] += amount
        target["refunded"] = target["amount_refunded"] >= target["amount_captured"]
        self._sync_charge_refunds(target)
        self.emit("refund.created", refund)
        self.emit("charge.refunded", target)
        return refund

    def refund_require(self, refund_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("refund", refund_id, param=param)

    def refund_update(self, refund_id: str, changes: dict[str, Any]) -> StripeObject:
        refund = self.refund_require(refund_id)
        before = clone(refund)
        refund.update(changes)
        if self.emit_update("refund.updated", refund, before) is not None:
            charge = self.store.get("charge", refund["charge"])
            if charge is not None:
                self._sync_charge_refunds(charge)
            self.emit_update("charge.refund.updated", refund, before)
        return refund

    def refund_settle(
        self, refund_id: str, *, succeed: bool, failure_reason: str = "expired_or_canceled_card"
    ) -> StripeObject:
        """The ``/_emulator/refunds/{id}/settle`` control: a ``pending`` refund succeeds or fails now, or a
        ``succeeded`` one fails now (a live-mode card refund can fail after appearing to succeed)."""
        refund = self.refund_require(refund_id)
        status = refund["status"]
        if succeed and status != "pending":
            raise InvalidRequestError(
                f"Refund {refund_id} has a status of {status}; only a pending refund can succeed."
            )
        if not succeed and status not in ("pending", "succeeded"):
            raise InvalidRequestError(
                f"Refund {refund_id} has a status of {status}; only a pending or succeeded refund can fail."
            )
        self._settle(refund, "succeeded" if succeed else "failed", failure_reason)
        return refund

    def refunds_settle_before_read(self) -> None:
        """Before a read of refunds or charges: the outcomes due by now happen first, so a read never shows a
        state Stripe would already have left. Their events are automatic ones (``request.id`` null), sent
        after the reading request has answered, like that request's own."""
        request = current_request()
        if request is None:
            self.refunds_settle_due(self.now())
            return
        with request_scope(RequestContext(outbox=request.outbox)):
            self.refunds_settle_due(self.now())

    def refunds_settle_due(self, now: int) -> None:
        """Every asynchronous outcome due by ``now`` on the clock in force, oldest first."""
        due = sorted(
            (
                r
                for r in self.store.iter_type("refund")
                if r.get("_settles_at") is not None
                and r["_settles_at"] <= now
                and self.account.on_current_clock(r["customer"])
            ),
            key=lambda r: (r["_settles_at"], r["_seq"]),
        )
        for refund in due:
            self._settle(refund, refund["_outcome"], "expired_or_canceled_card")

    def _settle(self, refund: StripeObject, outcome: str, failure_reason: str) -> None:
        """Move a refund to its final status. Success: ``refund.updated`` + ``charge.refund.updated``.
        Failure: ``refund.failed`` + ``charge.refund.updated``, as Stripe sends for ``pm_card_refundFail``
        (``refund.updated`` does not fire on that transition; ``previous_attributes`` only on ``*.updated``
        events), and the amount leaves the charge's ``amount_refunded``."""
        before = clone(refund)
        refund.pop("_settles_at", None)
        refund.pop("_outcome", None)
        refund.pop("pending_reason", None)
        refund["status"] = outcome
        charge = self.store.get("charge", refund["charge"])
        if outcome == "failed":
            # The refunded funds come back to the balance.
            self.balance_transaction_for_refund_failure(refund, charge)
            refund["failure_reason"] = failure_reason
            if charge is not None:
                charge["amount_refunded"] -= refund["amount"]
                charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        if charge is not None:
            self._sync_charge_refunds(charge)
        if outcome == "failed":
            self.emit("refund.failed", refund)
        else:
            self.emit_update("refund.updated", refund, before)
        self.emit_update("charge.refund.updated", refund, before)

    def _card_of(self, charge: StripeObject) -> cards.TestCard | None:
        pm = self.store.get("payment_method", charge["payment_method"]) if charge["payment_method"] else None
        return cards.lookup(pm["_number"]) if pm is not None and "_number" in pm else None

    def refund_list(
        self,
        *,
        charge: str | None = None,
        payment_intent: str | None = None,
        created: dict[str, int] | None = None,
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "refund",
            lambda r: (
                (charge is None or r["charge"] == charge)
                and (payment_intent is None or r["payment_intent"] == payment_intent)
                and in_range(r["created"], created)
            ),
        )

    def _sync_charge_refunds(self, charge: StripeObject) -> None:
        refunds = self.refund_list(charge=charge["id"])
        charge["refunds"] = {
            "object": "list",
            "data": [clone(r) for r in refunds[:10]],
            "has_more": len(refunds) > 10,
            "url": f"/v1/charges/{charge['id']}/refunds",
        }


def _money(amount: int, currency: str) -> str:
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    if currency == "usd":
        return f"${amount / 100:.2f}"
    return f"{amount / 100:.2f} {currency.upper()}"
