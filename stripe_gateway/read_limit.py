"""Stripe's read rate limit, per Stripe account: each read the mirror, reconciliation or adoption sends is counted
first (in the shared cache's one-second windows, `core.ratelimit`), so that together they stay under it.

Stripe allows 25 reads/s in test mode (100 live); they stay under the stricter one per account. With the cache down
a read goes ahead: Stripe's own 429 then stops a runaway, and the caller retries."""

import logging
import time

from core.errors import RateLimited
from core.ratelimit import hit

logger = logging.getLogger(__name__)

STRIPE_READS_PER_SECOND = 20


def stripe_read_allowed(account: str) -> None:
    """Counts one Stripe read for the account; raises RateLimited (retry later) past the read limit."""
    try:
        count, _ = hit(f"stripe-read:{account}", 1)
    except Exception:  # the counter lives in Redis; its outage must not stop webhook processing
        logger.warning("Stripe read limiter unavailable; reading without it.")
        return
    if count > STRIPE_READS_PER_SECOND:
        raise RateLimited("Stripe read rate limit reached; retry shortly.", code="provider_rate_limited")


def stripe_read_wait(account: str) -> None:
    """Counts one Stripe read for the account, waiting (50 ms at a time) while the read limit is reached: for the
    long runs (reconciliation, adoption) that pace themselves instead of failing."""
    while True:
        try:
            stripe_read_allowed(account)
            return
        except RateLimited:
            time.sleep(0.05)
