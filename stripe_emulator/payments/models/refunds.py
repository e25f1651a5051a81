"""Refunds: full and partial refunds of a succeeded charge (refused once a dispute has charged it back),
refund updates and lists, and the ``refunds`` list embedded in the charge."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.currencies import ZERO_DECIMAL
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.payments.models.disputes import Disputes


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
            "status": "succeeded",
            "transfer_reversal": None,
        }
        self.store.insert(refund)
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
