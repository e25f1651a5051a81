"""Charges: the Charge each confirmation that reaches the card network creates (succeeded or failed, with
its outcome and card details), and charge reads and updates."""

from __future__ import annotations

import uuid
from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.payments.cards import Decline, TestCard
from stripe_emulator.payments.models.balance_transactions import BalanceTransactions


class Charges(BalanceTransactions):
    def _new_charge(
        self,
        pi: StripeObject,
        pm: StripeObject,
        card: TestCard,
        *,
        decline: Decline | None,
        authenticated: bool,
    ) -> StripeObject:
        charge_id = ids.id_for("charge")
        paid = decline is None
        if paid:
            outcome = {
                "advice_code": None,
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "approved_by_network",
                "reason": None,
                "risk_level": "normal",
                "risk_score": 20,
                "seller_message": "Payment complete.",
                "type": "authorized",
            }
        else:
            assert decline is not None
            outcome = {
                "advice_code": "try_again_later" if decline.decline_code == "generic_decline" else None,
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "declined_by_network",
                "reason": decline.decline_code,
                "risk_level": "normal",
                "risk_score": 20,
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined",
            }
        pm_card = pm["card"]
        three_d_secure = None
        if authenticated:
            three_d_secure = {
                "authentication_flow": "challenge",
                "electronic_commerce_indicator": "05",
                "exemption_indicator": None,
                "result": "authenticated",
                "result_reason": None,
                "transaction_id": str(uuid.uuid4()),
                "version": "2.2.0",
            }
        charge: StripeObject = {
            "id": charge_id,
            "object": "charge",
            "amount": pi["amount"],
            "amount_captured": pi["amount"] if paid else 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": None,
            "billing_details": clone(pm["billing_details"]),
            "calculated_statement_descriptor": "TOLLGATE",
            "captured": paid,
            "created": self.now(),
            "currency": pi["currency"],
            "customer": pi["customer"],
            "description": pi["description"],
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": decline.code if decline else None,
            "failure_message": decline.message if decline else None,
            "fraud_details": {},
            "livemode": False,
            "metadata": dict(pi["metadata"]),
            "on_behalf_of": None,
            "outcome": outcome,
            "paid": paid,
            "payment_intent": pi["id"],
            "payment_method": pm["id"],
            "payment_method_details": {
                "card": {
                    "amount_authorized": pi["amount"] if paid else None,
                    "authorization_code": ids.random_token(6).upper() if paid else None,
                    "brand": pm_card["brand"],
                    "checks": clone(pm_card["checks"]),
                    "country": pm_card["country"],
                    "exp_month": pm_card["exp_month"],
                    "exp_year": pm_card["exp_year"],
                    "extended_authorization": {"status": "disabled"},
                    "fingerprint": pm_card["fingerprint"],
                    "funding": pm_card["funding"],
                    "incremental_authorization": {"status": "unavailable"},
                    "installments": None,
                    "last4": pm_card["last4"],
                    "mandate": None,
                    "multicapture": {"status": "unavailable"},
                    "network": pm_card["brand"],
                    "network_token": {"used": False},
                    "network_transaction_id": ids.random_token(15) if paid else None,
                    "overcapture": {"maximum_amount_capturable": pi["amount"], "status": "unavailable"},
                    "regulated_status": "unregulated",
                    "three_d_secure": three_d_secure,
                    "transaction_link_id": None,
                    "wallet": None,
                },
                "type": "card",
            },
            "receipt_email": pi["receipt_email"],
            "receipt_number": None,
            "receipt_url": None,
            "refunded": False,
            "refunds": {
                "object": "list",
                "data": [],
                "has_more": False,
                "url": f"/v1/charges/{charge_id}/refunds",
            },
            "review": None,
            "shipping": None,
            "source": None,
            "source_transfer": None,
            "statement_descriptor": pi["statement_descriptor"],
            "statement_descriptor_suffix": pi["statement_descriptor_suffix"],
            "status": "succeeded" if paid else "failed",
            "transfer_data": None,
            "transfer_group": None,
        }
        self.store.insert(charge)
        if paid:
            self.balance_transaction_for_charge(charge)
        return charge

    def charge_list(
        self,
        *,
        customer: str | None = None,
        payment_intent: str | None = None,
        created: dict[str, int] | None = None,
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "charge",
            lambda c: (
                (customer is None or c["customer"] == customer)
                and (payment_intent is None or c["payment_intent"] == payment_intent)
                and in_range(c["created"], created)
            ),
        )

    def charge_update(self, charge_id: str, changes: dict[str, Any]) -> StripeObject:
        charge = self.charge_require(charge_id)
        before = clone(charge)
        charge.update(changes)
        self.emit_update("charge.updated", charge, before)
        return charge
