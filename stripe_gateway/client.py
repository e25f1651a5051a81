"""One `StripeClient` per Stripe account and API base, with the pinned API version, timeouts and network retries;
tests route every call through the emulator's in-process HTTP client (`install_http_client`)."""

import hashlib
import threading
from typing import Any

import stripe
from django.conf import settings

from core.errors import ProviderError

# Tests install the emulator's in-process HTTP client here (stripe_emulator.sdk.EmulatorHTTPClient).
_http_client: stripe.HTTPClient | None = None
_clients: dict[tuple[str, str, int], stripe.StripeClient] = {}
_lock = threading.Lock()


def install_http_client(http_client: stripe.HTTPClient | None) -> None:
    """Routes every Stripe call through `http_client` (None: the SDK's default, over the network)."""
    global _http_client
    with _lock:
        _http_client = http_client
        _clients.clear()


def client_for(secret_key: str) -> stripe.StripeClient:
    if not secret_key:
        raise ProviderError(
            "No Stripe secret key is configured for this project or the platform.",
            code="provider_not_configured",
            status_code=503,
        )
    cache_key = (hashlib.sha256(secret_key.encode()).hexdigest(), settings.STRIPE_API_BASE, id(_http_client))
    client = _clients.get(cache_key)
    if client is None:
        kwargs: dict[str, Any] = {
            "stripe_version": settings.STRIPE_API_VERSION,
            "max_network_retries": settings.STRIPE_MAX_NETWORK_RETRIES,
        }
        if settings.STRIPE_API_BASE:
            kwargs["base_addresses"] = {"api": settings.STRIPE_API_BASE}
        if _http_client is not None:
            kwargs["http_client"] = _http_client
        else:
            kwargs["http_client"] = stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS)
        client = stripe.StripeClient(secret_key, **kwargs)
        with _lock:
            _clients[cache_key] = client
    return client


def call_seconds_at_most() -> float:
    """How long one Stripe call may take, the SDK's retries included, as configured: each attempt's connect and
    read (requests applies STRIPE_TIMEOUT_SECONDS to each) and the SDK's pause before each of
    STRIPE_MAX_NETWORK_RETRIES retries (at most `stripe.HTTPClient.MAX_DELAY`). What a claim on work that calls
    Stripe must outlast. (An answer that trickles in slower than the timeout between its bytes is not bounded by
    it; Stripe's are not.)"""
    retries = int(settings.STRIPE_MAX_NETWORK_RETRIES)
    attempt = 2 * float(settings.STRIPE_TIMEOUT_SECONDS)
    return (retries + 1) * attempt + retries * float(stripe.HTTPClient.MAX_DELAY)
