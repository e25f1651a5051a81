"""Outbound events: the endpoints Tollgate delivers them to, and the events themselves."""

from __future__ import annotations

from collections.abc import Sequence

from tollgate_client.pagination import Page
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import Event, WebhookEndpoint


class WebhookEndpoints(Resource):
    def create(
        self,
        *,
        url: str,
        events: Sequence[str] = ("*",),
        description: str | None = None,
        enabled: bool | None = None,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        """The answer carries the signing `secret`, shown this once: store it for `construct_event`."""
        body = compact(url=url, events=list(events), description=description, enabled=enabled)
        return self._post(WebhookEndpoint, "/webhook_endpoints", body, idempotency_key=idempotency_key)

    def retrieve(self, endpoint_id: str) -> WebhookEndpoint:
        return self._get(WebhookEndpoint, path("/webhook_endpoints/{}", endpoint_id))

    def update(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        body = compact(
            url=url,
            events=list(events) if events is not None else None,
            description=description,
            enabled=enabled,
        )
        endpoint = path("/webhook_endpoints/{}", endpoint_id)
        return self._patch(WebhookEndpoint, endpoint, body, idempotency_key=idempotency_key)

    def delete(self, endpoint_id: str, *, idempotency_key: str | None = None) -> None:
        self._delete(path("/webhook_endpoints/{}", endpoint_id), idempotency_key=idempotency_key)

    def list(self, *, limit: int | None = None, starting_after: str | None = None) -> Page[WebhookEndpoint]:
        return self._list(
            WebhookEndpoint, "/webhook_endpoints", {"limit": limit, "starting_after": starting_after}
        )

    def roll_secret(
        self, endpoint_id: str, *, overlap_seconds: int | None = None, idempotency_key: str | None = None
    ) -> WebhookEndpoint:
        """A new signing secret (in the answer). For `overlap_seconds` deliveries are signed with both, so
        receivers can switch without losing any: pass both secrets to `construct_event` meanwhile."""
        url = path("/webhook_endpoints/{}/roll_secret", endpoint_id)
        body = compact(overlap_seconds=overlap_seconds)
        return self._post(WebhookEndpoint, url, body, idempotency_key=idempotency_key)


class Events(Resource):
    def retrieve(self, event_id: str) -> Event:
        """The event with its `deliveries`."""
        return self._get(Event, path("/events/{}", event_id))

    def list(
        self, *, type: str | None = None, limit: int | None = None, starting_after: str | None = None
    ) -> Page[Event]:
        return self._list(Event, "/events", {"type": type, "limit": limit, "starting_after": starting_after})

    def redeliver(self, event_id: str, *, idempotency_key: str | None = None) -> Event:
        """Queues the event again for every endpoint that subscribes to it."""
        return self._post(Event, path("/events/{}/redeliver", event_id), idempotency_key=idempotency_key)
