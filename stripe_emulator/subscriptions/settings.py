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

from collections.abc import Callable
from typing import Any

from stripe_emulator.core.account import Account
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import StripeObject

SETTINGS_ID = "emulator_billing_settings"
DEFAULTS: dict[str, Any] = {
    "retry_days": [1, 3, 5],
    "after_final_failure": "canceled",
    "incomplete_expiry_hours": 23,
}
DEFAULT_BASE_URL = "http://stripe-emulator.invalid"


def billing_settings(account: Account) -> StripeObject:
    settings = account.store.get("emulator.billing_settings", SETTINGS_ID)
    if settings is None:
        settings = {"id": SETTINGS_ID, "object": "emulator.billing_settings", **DEFAULTS}
        settings["retry_days"] = list(DEFAULTS["retry_days"])
        account.store.insert(settings)
    return settings


def public_url(account: Account, path: str) -> str:
    """``{base}{path}`` for hosted pages (invoice page and PDF, customer portal). The base is the
    scheme and host the account's last billing request came in on (its ``Host`` header), else
    ``http://stripe-emulator.invalid`` (the in-process SDK client sends no ``Host``)."""
    base = billing_settings(account).get("_base_url") or DEFAULT_BASE_URL
    return f"{str(base).rstrip('/')}{path}"


def remember_base_url(req: Request) -> None:
    """Record the scheme and host a request came in on as this account's base for hosted URLs (the
    in-process SDK client sends no ``Host``, so the default stays)."""
    host = req.headers.get("host")
    if host and req.account_or_none is not None:
        billing_settings(req.account)["_base_url"] = f"http://{host}"


def tracked(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """Wrap an API handler so it records the request's base URL first (see :func:`remember_base_url`)."""

    def wrapper(req: Request) -> Response:
        remember_base_url(req)
        return handler(req)

    wrapper.__name__ = handler.__name__
    wrapper.__doc__ = handler.__doc__
    return wrapper
