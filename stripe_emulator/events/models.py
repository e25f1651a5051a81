"""Events (read-only history written by ``Account.emit``) and webhook endpoints (where they are sent).

An endpoint's signing secret is kept in the private ``_secret`` field: Stripe shows ``secret`` only in the
create response, and :mod:`stripe_emulator.core.webhooks` signs with it.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject


class EventsBackend(BaseBackend):
    def event_require(self, event_id: str) -> StripeObject:
        return self.store.require("event", event_id)

    def event_list(
        self, *, types: list[str] | None = None, created: dict[str, int] | None = None
    ) -> list[StripeObject]:
        """``types`` may use Stripe's ``*`` wildcard (``customer.*``)."""

        def keep(event: StripeObject) -> bool:
            if types is not None and not any(fnmatch.fnmatchcase(event["type"], t) for t in types):
                return False
            return in_range(event["created"], created)

        return self.store.newest_first("event", keep)


class WebhookEndpointsBackend(BaseBackend):
    def endpoint_create(
        self,
        *,
        url: str,
        enabled_events: list[str],
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        api_version: str | None = None,
    ) -> StripeObject:
        endpoint: StripeObject = {
            "id": ids.id_for("webhook_endpoint"),
            "object": "webhook_endpoint",
            "api_version": api_version,
            "application": None,
            "created": self.now(),
            "description": description,
            "enabled_events": enabled_events,
            "livemode": False,
            "metadata": metadata or {},
            "status": "enabled",
            "url": url,
            "_secret": ids.webhook_secret(),
        }
        return self.store.insert(endpoint)

    def endpoint_require(self, endpoint_id: str) -> StripeObject:
        return self.store.require("webhook_endpoint", endpoint_id)

    def endpoint_update(self, endpoint_id: str, changes: dict[str, Any]) -> StripeObject:
        endpoint = self.endpoint_require(endpoint_id)
        if "disabled" in changes:
            endpoint["status"] = "disabled" if changes.pop("disabled") else "enabled"
        endpoint.update(changes)
        return endpoint

    def endpoint_delete(self, endpoint_id: str) -> StripeObject:
        self.endpoint_require(endpoint_id)
        self.store.remove(endpoint_id)
        return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}

    def endpoint_list(self) -> list[StripeObject]:
        return self.store.newest_first("webhook_endpoint")
