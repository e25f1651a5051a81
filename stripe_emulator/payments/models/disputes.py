"""Disputes: the chargeback a ``4000000000000259`` payment draws, evidence and submission, accepting
(closing) it, and the issuer's decision (won / lost)."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.payments.models.balance_transactions import BalanceTransactions

DISPUTE_CLOSED = ("won", "lost", "warning_closed")
DISPUTE_RESPONSE_WINDOW = 7 * 86400

EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)


class Disputes(BalanceTransactions):
    def dispute_create(self, charge_id: str, *, reason: str = "fraudulent") -> StripeObject:
        """What the issuer does for ``4000000000000259``: a chargeback that needs a response."""
        charge = self.charge_require(charge_id, param="charge")
        now = self.now()
        pm_card = charge["payment_method_details"]["card"]
        dispute: StripeObject = {
            "id": ids.id_for("dispute"),
            "object": "dispute",
            "amount": charge["amount"] - charge["amount_refunded"],
            "balance_transactions": [],
            "charge": charge_id,
            "created": now,
            "currency": charge["currency"],
            "enhanced_eligibility_types": [],
            "evidence": {**dict.fromkeys(EVIDENCE_FIELDS), "enhanced_evidence": {}},
            "evidence_details": {
                "due_by": now + DISPUTE_RESPONSE_WINDOW,
                "enhanced_eligibility": {},
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
                "submission_method": "not_submitted",
            },
            "intended_submission_method": None,
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "network_reason_code": "10.4" if pm_card["brand"] == "visa" else "4837",
            "payment_intent": charge["payment_intent"],
            "payment_method_details": {
                "card": {
                    "brand": pm_card["brand"],
                    "case_type": "chargeback",
                    "network": pm_card["network"],
                    "network_reason_code": "10.4" if pm_card["brand"] == "visa" else "4837",
                },
                "type": "card",
            },
            "reason": reason,
            "status": "needs_response",
        }
        self.store.insert(dispute)
        # The funds leave at once: both events carry the withdrawal.
        self.balance_transaction_for_dispute(dispute, charge["customer"], reinstated=False)
        charge["disputed"] = True
        self.emit("charge.dispute.created", dispute)
        self.emit("charge.dispute.funds_withdrawn", dispute)
        return dispute

    def dispute_require(self, dispute_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("dispute", dispute_id, param=param)

    def dispute_update(
        self,
        dispute_id: str,
        *,
        evidence: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        submit: bool = False,
    ) -> StripeObject:
        dispute = self.dispute_require(dispute_id)
        if dispute["status"] in DISPUTE_CLOSED and (evidence or submit):
            raise InvalidRequestError(
                f"This dispute is already closed ({dispute['status']}); evidence can no longer be submitted.",
            )
        before = clone(dispute)
        if metadata is not None:
            dispute["metadata"] = metadata
        if evidence:
            dispute["evidence"].update(evidence)
            dispute["evidence_details"]["has_evidence"] = True
        if submit and dispute["status"] in ("needs_response", "warning_needs_response"):
            dispute["status"] = (
                "under_review" if dispute["status"] == "needs_response" else "warning_under_review"
            )
            dispute["evidence_details"]["submission_count"] += 1
            dispute["evidence_details"]["submission_method"] = "manual"
        self.emit_update("charge.dispute.updated", dispute, before)
        return dispute

    def dispute_close(self, dispute_id: str) -> StripeObject:
        """Accept the dispute: it is lost at once."""
        dispute = self.dispute_require(dispute_id)
        if dispute["status"] in DISPUTE_CLOSED:
            raise InvalidRequestError(f"This dispute is already closed ({dispute['status']}).")
        return self.dispute_resolve(dispute_id, won=False)

    def dispute_resolve(self, dispute_id: str, *, won: bool) -> StripeObject:
        """The issuer's decision (the ``/_emulator/disputes/{id}/resolve`` control)."""
        dispute = self.dispute_require(dispute_id)
        if dispute["status"] in DISPUTE_CLOSED:
            raise InvalidRequestError(f"This dispute is already closed ({dispute['status']}).")
        warning = dispute["status"].startswith("warning_")
        if warning:
            dispute["status"] = "warning_closed"
        else:
            dispute["status"] = "won" if won else "lost"
        if won and not warning:
            charge = self.store.get("charge", dispute["charge"])
            customer = charge["customer"] if charge is not None else None
            self.balance_transaction_for_dispute(dispute, customer, reinstated=True)
        self.emit("charge.dispute.closed", dispute)
        if won and not warning:
            self.emit("charge.dispute.funds_reinstated", dispute)
        return dispute

    def dispute_list(
        self,
        *,
        charge: str | None = None,
        payment_intent: str | None = None,
        created: dict[str, int] | None = None,
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "dispute",
            lambda d: (
                (charge is None or d["charge"] == charge)
                and (payment_intent is None or d["payment_intent"] == payment_intent)
                and in_range(d["created"], created)
            ),
        )

    def _open_dispute(self, charge_id: str) -> StripeObject | None:
        for dispute in self.store.iter_type("dispute"):
            if dispute["charge"] == charge_id and dispute["status"] != "won":
                return dispute
        return None
