"""Events and webhook endpoints, wire side."""

from __future__ import annotations

import re
from typing import Any

from stripe_emulator.core.errors import InvalidRequestError, ParameterInvalid
from stripe_emulator.core.params import Params, merge_metadata
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.events.models import EventsBackend, WebhookEndpointsBackend

# Stripe checks enabled_events against its catalogue of event types; the emulator checks the shape only, so
# endpoints may subscribe to types whose resources later phases add.
_EVENT_TYPE_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
_URL_RE = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)


def _url(p: Params, *, required: bool) -> str | None:
    url = p.string("url", required=required)
    if url is not None and not _URL_RE.match(url):
        raise ParameterInvalid(f"Invalid URL: {url}. URLs must begin with http:// or https://", param="url")
    return url


def _enabled_events(p: Params, *, required: bool) -> list[str] | None:
    events = p.strings("enabled_events")
    if events is None or events == []:
        if required:
            raise InvalidRequestError(
                "Missing required param: enabled_events.", code="parameter_missing", param="enabled_events"
            )
        return None
    for i, event_type in enumerate(events):
        if event_type != "*" and not _EVENT_TYPE_RE.match(event_type):
            raise ParameterInvalid(f"Invalid event type: {event_type}", param=f"enabled_events[{i}]")
    return events


def _api_version(p: Params) -> str | None:
    version = p.string("api_version")
    if version is not None and not _VERSION_RE.match(version):
        raise ParameterInvalid(f"Invalid API version: {version}", param="api_version")
    return version


def endpoint_create(req: Request) -> Response:
    p = req.params
    p.only("url", "enabled_events", "description", "metadata", "api_version", "connect")
    if p.boolean("connect"):
        raise InvalidRequestError("Connect webhook endpoints are not emulated.", param="connect")
    endpoint = req.backend(WebhookEndpointsBackend).endpoint_create(
        url=_url(p, required=True) or "",
        enabled_events=_enabled_events(p, required=True) or [],
        description=p.string("description"),
        metadata=merge_metadata({}, p),
        api_version=_api_version(p),
    )
    response = req.respond(endpoint)
    # The secret is shown once, on creation, as Stripe does.
    body = response.data()
    body["secret"] = endpoint["_secret"]
    return Response.json(body)


def account_api_version(req: Request) -> Response:
    """``POST /_emulator/account/api_version`` (``api_version=…``): the calling account's default API version,
    as the Dashboard's upgrade sets it at Stripe (or an old account's, to emulate one)."""
    p = req.params
    p.only("api_version")
    version = p.string("api_version", required=True) or ""
    if not _VERSION_RE.match(version):
        raise ParameterInvalid(f"Invalid API version: {version}", param="api_version")
    req.account.api_version = version
    return Response.json({"object": "emulator.account", "api_version": version})


def endpoint_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(WebhookEndpointsBackend).endpoint_require(req.path_params["id"]))


def endpoint_update(req: Request) -> Response:
    p = req.params
    p.only("url", "enabled_events", "description", "metadata", "disabled")
    backend = req.backend(WebhookEndpointsBackend)
    endpoint = backend.endpoint_require(req.path_params["id"])
    changes: dict[str, Any] = {}
    if p.has("url"):
        changes["url"] = _url(p, required=True)
    if p.has("enabled_events"):
        changes["enabled_events"] = _enabled_events(p, required=True)
    if p.has("description"):
        changes["description"] = p.string("description")
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(endpoint["metadata"], p)
    if p.has("disabled"):
        changes["disabled"] = bool(p.boolean("disabled", required=True))
    return req.respond(backend.endpoint_update(endpoint["id"], changes))


def endpoint_delete(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(WebhookEndpointsBackend).endpoint_delete(req.path_params["id"]))


def endpoint_list(req: Request) -> Response:
    req.params.only("limit", "starting_after", "ending_before")
    endpoints = req.backend(WebhookEndpointsBackend).endpoint_list()
    return req.respond_list(endpoints, url="/v1/webhook_endpoints", object_type="webhook_endpoint")


def event_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(EventsBackend).event_require(req.path_params["id"]))


def event_list(req: Request) -> Response:
    p = req.params
    p.only("type", "types", "created", "delivery_success", "limit", "starting_after", "ending_before")
    if p.has("type") and p.has("types"):
        raise InvalidRequestError("You may only specify one of these parameters: type, types.", param="types")
    single = p.string("type")
    types = [single] if single else p.strings("types", max_items=20)
    events = req.backend(EventsBackend).event_list(types=types, created=p.range_filter("created"))
    return req.respond_list(events, url="/v1/events", object_type="event")
