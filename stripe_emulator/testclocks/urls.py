"""Test clock routes."""

from stripe_emulator.core.routing import Route
from stripe_emulator.testclocks import responses

ROUTES = [
    Route("POST", "/v1/test_helpers/test_clocks", responses.clock_create),
    Route("GET", "/v1/test_helpers/test_clocks", responses.clock_list),
    Route("GET", "/v1/test_helpers/test_clocks/{id}", responses.clock_retrieve),
    Route("DELETE", "/v1/test_helpers/test_clocks/{id}", responses.clock_delete),
    Route("POST", "/v1/test_helpers/test_clocks/{id}/advance", responses.clock_advance),
]
