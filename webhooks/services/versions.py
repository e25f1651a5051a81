"""An event rendered at an API version other than the pinned one (an endpoint registered before endpoints were
pinned, an account's old default version, `/v1/events` of such an account) is never applied from its body: its
object is read again from Stripe at the pinned version — what Stripe recommends — and that is applied. An object
that cannot be read again holds the event `failed`, with the reason, for an operator (admin, `replay_webhooks`)."""

import logging
from typing import Any

from django.conf import settings

from projects.models import Project
from stripe_gateway.endpoints import stripe_object_read
from stripe_gateway.errors import StripeObjectMissing
from stripe_gateway.gateway import PLATFORM_ACCOUNT, gateway_for, platform_gateway, stripe_id
from webhooks.models import StripeEvent

logger = logging.getLogger(__name__)


class EventHeld(Exception):
    """The event is at another API version and its object cannot be read again at the pinned one."""


def object_read_again(event: StripeEvent) -> dict[str, Any]:
    """The object of an event rendered at another API version, as Stripe renders it now at the pinned one (what
    its handler applies instead of the event's body)."""
    body = event.data_object
    object_type, object_id = str(body.get("object") or ""), stripe_id(body.get("id"))
    project = Project.objects.filter(pk=event.account).first() if event.account != PLATFORM_ACCOUNT else None
    gateway = gateway_for(project) if project is not None else platform_gateway()
    why = (
        f"Rendered at Stripe API version {event.api_version}, not the pinned {settings.STRIPE_API_VERSION}, "
        f"and its {object_type or 'object'} {object_id}"
    )
    try:
        read = stripe_object_read(gateway, object_type=object_type, object_id=object_id)
    except StripeObjectMissing as exc:
        raise EventHeld(f"{why} is gone at Stripe: not applied. Run stripe_setup_webhooks.") from exc
    if read is None:
        raise EventHeld(f"{why} cannot be read again: not applied. Run stripe_setup_webhooks.")
    logger.info(
        "Stripe event %s at API version %s: %s %s read again at %s.",
        event.stripe_event_id,
        event.api_version,
        object_type,
        object_id,
        settings.STRIPE_API_VERSION,
    )
    return read
