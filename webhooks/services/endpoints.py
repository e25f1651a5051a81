"""Tollgate's webhook endpoint at a Stripe account (`stripe_setup_webhooks`): registered at the pinned API
version, its signing secret stored encrypted, and an endpoint at another version replaced — the new one created
first, its secret stored (the old one's still accepted for SWITCH_SECONDS), then the old one deleted."""

from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.handlers.registry import HANDLERS
from projects.models import Project
from stripe_gateway.endpoints import webhook_endpoint_delete, webhook_endpoint_ensure
from stripe_gateway.gateway import PLATFORM_ACCOUNT, gateway_for, platform_gateway
from webhooks.models import StripeWebhookEndpoint

# How long the replaced endpoint's secret is still accepted: what it signed before it was deleted arrives within
# seconds, and a signature older than the intake's tolerance (5 minutes) is refused anyway.
SWITCH_SECONDS = 15 * 60


class Registered(NamedTuple):
    url: str
    endpoint_id: str
    # "created", "up_to_date", or "secret_unknown" (registered at Stripe, its secret not stored here).
    outcome: str
    # The endpoints at another API version deleted now: (id, their version, "" for the account's default).
    replaced: list[tuple[str, str]]


def webhook_endpoint_register(*, project: Project | None, base_url: str) -> Registered:
    account = project.pk if project else PLATFORM_ACCOUNT
    base = base_url.rstrip("/")
    url = f"{base}/webhooks/stripe/{project.pk}" if project else f"{base}/webhooks/stripe"
    gateway = gateway_for(project) if project else platform_gateway()
    ensured = webhook_endpoint_ensure(
        gateway, url=url, events=sorted(HANDLERS), description=f"Tollgate ({account})"
    )
    endpoint = ensured.endpoint
    with transaction.atomic(durable=True):
        stored = StripeWebhookEndpoint.objects.select_for_update().filter(account=account).first()
        if ensured.created:
            previous = (
                stored.secret if stored is not None and stored.stripe_endpoint_id != endpoint["id"] else ""
            )
            StripeWebhookEndpoint.objects.update_or_create(
                account=account,
                defaults={
                    "project": project,
                    "stripe_endpoint_id": endpoint["id"],
                    "url": url,
                    "secret": endpoint.get("secret") or "",
                    "api_version": settings.STRIPE_API_VERSION,
                    "previous_secret": previous,
                    "previous_secret_until": timezone.now() + timedelta(seconds=SWITCH_SECONDS)
                    if previous
                    else None,
                },
            )
            outcome = "created"
        elif stored is None or stored.stripe_endpoint_id != endpoint["id"]:
            outcome = "secret_unknown"
        else:
            if stored.api_version != settings.STRIPE_API_VERSION:
                stored.api_version = settings.STRIPE_API_VERSION
                stored.save(update_fields=["api_version", "updated_at"])
            outcome = "up_to_date"
    replaced: list[tuple[str, str]] = []
    if outcome != "secret_unknown":  # the old endpoint keeps delivering until the new one's secret is stored
        for stale in ensured.stale:
            webhook_endpoint_delete(gateway, stale["id"])
            replaced.append((stale["id"], stale.get("api_version") or ""))
    return Registered(url, endpoint["id"], outcome, replaced)
