"""Object ids and secrets with Stripe's prefixes (``cus_``, ``price_``, ``evt_``, ``whsec_`` …).

Ids are random (``secrets``), never sequential, so tests cannot accidentally depend on guessable ids and two
accounts never share one.
"""

from __future__ import annotations

import secrets

# Stripe's prefixes for the objects the emulator knows or will know; new resources may pass any prefix.
PREFIXES: dict[str, str] = {
    "account": "acct",
    "balance_transaction": "txn",
    "charge": "ch",
    "checkout.session": "cs_test",
    "customer": "cus",
    "dispute": "dp",
    "event": "evt",
    "invoice": "in",
    "invoice_payment": "inpay",
    "invoiceitem": "ii",
    "payment_intent": "pi",
    "payment_method": "pm",
    "price": "price",
    "product": "prod",
    "refund": "re",
    "request": "req",
    "setup_intent": "seti",
    "subscription": "sub",
    "subscription_item": "si",
    "subscription_schedule": "sub_sched",
    "test_helpers.test_clock": "clock",
    "webhook_endpoint": "we",
    "billing.meter": "mtr",
    "billing.meter_event": "mtrevt",
    "billing_portal.session": "bps",
    "billing_portal.configuration": "bpc",
}


def random_token(length: int = 24) -> str:
    # token_urlsafe is ~10x faster than choosing characters one by one; folding "-" and "_" onto letters
    # keeps ids alphanumeric like Stripe's at a negligible cost in entropy (ids are not secrets).
    return secrets.token_urlsafe(length).replace("-", "a").replace("_", "Z")[:length]


def new_id(prefix: str, length: int = 24) -> str:
    """``new_id("cus")`` -> ``cus_<24 random alphanumerics>``."""
    return f"{prefix}_{random_token(length)}"


def id_for(object_type: str) -> str:
    """An id for an object type listed in :data:`PREFIXES`."""
    return new_id(PREFIXES[object_type])


def webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(24)
