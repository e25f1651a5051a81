"""Customer portal routes: the API and the hosted page."""

from stripe_emulator.core.routing import Route
from stripe_emulator.portal import pages, responses

ROUTES = [
    Route("POST", "/v1/billing_portal/configurations", responses.configuration_create),
    Route("GET", "/v1/billing_portal/configurations", responses.configuration_list),
    Route("GET", "/v1/billing_portal/configurations/{configuration}", responses.configuration_retrieve),
    Route("POST", "/v1/billing_portal/configurations/{configuration}", responses.configuration_update),
    Route("POST", "/v1/billing_portal/sessions", responses.session_create),
    Route("GET", "/portal/{id}", pages.portal_page, auth=False),
    Route("POST", "/portal/{id}/subscriptions/{sub}/cancel", pages.portal_cancel, auth=False),
    Route("POST", "/portal/{id}/subscriptions/{sub}/renew", pages.portal_renew, auth=False),
    Route("POST", "/portal/{id}/subscriptions/{sub}/update", pages.portal_update, auth=False),
]
