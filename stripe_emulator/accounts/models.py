"""The account behind the API key, as ``GET /v1/account`` returns it.

Every emulated account is a fully activated test-mode Standard account in the US (charges and payouts
enabled, nothing required). The object is built from the account's id and creation time, which is all the
state it has: nothing can change it through the API, so nothing of it lives in the store. Connect (other
accounts, ``/v1/accounts``) is not emulated.
"""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.store import StripeObject

COUNTRY = "US"
DEFAULT_CURRENCY = "usd"
DISPLAY_NAME = "Stripe emulator"


def _no_requirements() -> dict[str, Any]:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": [],
        "disabled_reason": None,
        "errors": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": [],
    }


class AccountsBackend(BaseBackend):
    def account_get(self) -> StripeObject:
        account_id = self.account.id
        email = f"{account_id.lower()}@example.com"
        return {
            "id": account_id,
            "object": "account",
            "business_profile": {
                "annual_revenue": None,
                "estimated_worker_count": None,
                "mcc": None,
                "minority_owned_business_designation": None,
                "name": DISPLAY_NAME,
                "product_description": None,
                "support_address": None,
                "support_email": email,
                "support_phone": None,
                "support_url": None,
                "url": None,
            },
            "business_type": None,
            "capabilities": {"card_payments": "active", "transfers": "active"},
            "charges_enabled": True,
            "controller": {"type": "account"},
            "country": COUNTRY,
            "created": self.account.created,
            "default_currency": DEFAULT_CURRENCY,
            "details_submitted": True,
            "email": email,
            "external_accounts": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/accounts/{account_id}/external_accounts",
            },
            "future_requirements": _no_requirements(),
            "metadata": {},
            "payouts_enabled": True,
            "requirements": _no_requirements(),
            "settings": {
                "bacs_debit_payments": {"display_name": None, "service_user_number": None},
                "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
                "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
                "card_payments": {
                    "decline_on": {"avs_failure": False, "cvc_failure": False},
                    "statement_descriptor_prefix": None,
                    "statement_descriptor_prefix_kana": None,
                    "statement_descriptor_prefix_kanji": None,
                },
                "dashboard": {"display_name": DISPLAY_NAME, "timezone": "Etc/UTC"},
                "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": None},
                "payments": {
                    "statement_descriptor": None,
                    "statement_descriptor_kana": None,
                    "statement_descriptor_kanji": None,
                    "statement_descriptor_prefix_kana": None,
                    "statement_descriptor_prefix_kanji": None,
                },
                "payouts": {
                    "debit_negative_balances": True,
                    "schedule": {"delay_days": 2, "interval": "daily"},
                    "statement_descriptor": None,
                },
                "sepa_debit_payments": {},
            },
            "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
            "type": "standard",
        }
