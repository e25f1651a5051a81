"""Billing meter routes."""

from stripe_emulator.core.routing import Route
from stripe_emulator.meters import responses

ROUTES = [
    Route("POST", "/v1/billing/meters", responses.meter_create),
    Route("GET", "/v1/billing/meters", responses.meter_list),
    Route("GET", "/v1/billing/meters/{id}", responses.meter_retrieve),
    Route("POST", "/v1/billing/meters/{id}", responses.meter_update),
    Route("POST", "/v1/billing/meters/{id}/deactivate", responses.meter_deactivate),
    Route("POST", "/v1/billing/meters/{id}/reactivate", responses.meter_reactivate),
    Route("GET", "/v1/billing/meters/{id}/event_summaries", responses.meter_event_summaries),
    Route("POST", "/v1/billing/meter_events", responses.meter_event_create),
    Route("POST", "/v1/billing/meter_event_adjustments", responses.meter_event_adjustment_create),
]
