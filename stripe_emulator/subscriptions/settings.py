"""Per-account billing settings (the emulator's stand-in for Dashboard → Billing → Revenue recovery) and the
public URLs of hosted pages.

Settings live in the account's store as one private object, so ``reset`` and ``--data`` persistence cover
them. Change them with ``POST /_emulator/billing/settings`` (authenticated: it acts on the caller's account):

* ``retry_days[]`` — Smart Retries schedule, days after the first failed attempt (default ``1, 3, 5``);
* ``after_final_failure`` — what a subscription becomes when the last retry fails: ``canceled`` (default),
  ``unpaid`` or ``past_due`` (left as is);
* ``incomplete_expiry_hours`` — how long an ``incomplete`` subscription waits for its first payment (23).
"""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.account import Account
from stripe_emulator.core.store import StripeObject

SETTINGS_ID = "emulator_billing_settings"
DEFAULTS: dict[str, Any] = {
    "retry_days": [1, 3, 5],
    "after_final_failure": "canceled",
    "incomplete_expiry_hours": 23,
}


def billing_settings(account: Account) -> StripeObject:
    settings = account.store.get("emulator.billing_settings", SETTINGS_ID)
    if settings is None:
        settings = {"id": SETTINGS_ID, "object": "emulator.billing_settings", **DEFAULTS}
        settings["retry_days"] = list(DEFAULTS["retry_days"])
        account.store.insert(settings)
    return settings


def public_url(account: Account, path: str) -> str:
    """``{base}{path}`` for hosted pages (invoice page and PDF, customer portal): the emulator's public URL
    (see :attr:`Emulator.base_url <stripe_emulator.core.emulator.Emulator.base_url>`)."""
    return account.emulator.url_for(path)
