"""Checkout routes: the API, the hosted page, and the customer's actions on it."""

from stripe_emulator.checkout import responses
from stripe_emulator.core.routing import Route

ROUTES = [
    Route("POST", "/v1/checkout/sessions", responses.checkout_session_create),
    Route("GET", "/v1/checkout/sessions", responses.checkout_session_list),
    Route("GET", "/v1/checkout/sessions/{id}", responses.checkout_session_retrieve),
    Route("POST", "/v1/checkout/sessions/{id}", responses.checkout_session_update),
    Route("GET", "/v1/checkout/sessions/{id}/line_items", responses.checkout_session_line_items),
    Route("POST", "/v1/checkout/sessions/{id}/expire", responses.checkout_session_expire),
    Route("GET", "/checkout/pay/{id}", responses.checkout_page, auth=False),
    Route(
        "POST",
        "/_emulator/checkout/sessions/{id}/complete",
        responses.checkout_session_complete_control,
        auth=False,
    ),
    Route(
        "POST",
        "/_emulator/checkout/sessions/{id}/authenticate",
        responses.checkout_session_authenticate_control,
        auth=False,
    ),
]
