"""Event and webhook endpoint routes."""

from stripe_emulator.core.routing import Route
from stripe_emulator.events import responses

ROUTES = [
    Route("GET", "/v1/events", responses.event_list),
    Route("GET", "/v1/events/{id}", responses.event_retrieve),
    Route("POST", "/v1/webhook_endpoints", responses.endpoint_create),
    Route("GET", "/v1/webhook_endpoints", responses.endpoint_list),
    Route("GET", "/v1/webhook_endpoints/{id}", responses.endpoint_retrieve),
    Route("POST", "/v1/webhook_endpoints/{id}", responses.endpoint_update),
    Route("DELETE", "/v1/webhook_endpoints/{id}", responses.endpoint_delete),
    # A test control on the calling account (authenticated, like Stripe's Dashboard setting it).
    Route("POST", "/_emulator/account/api_version", responses.account_api_version),
]
