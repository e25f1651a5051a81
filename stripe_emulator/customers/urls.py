"""Customer routes."""

from stripe_emulator.core.routing import Route
from stripe_emulator.customers import responses

ROUTES = [
    Route("POST", "/v1/customers", responses.customer_create),
    Route("GET", "/v1/customers", responses.customer_list),
    Route("GET", "/v1/customers/search", responses.customer_search),  # before {id}, which would take it
    Route("GET", "/v1/customers/{id}", responses.customer_retrieve),
    Route("POST", "/v1/customers/{id}", responses.customer_update),
    Route("DELETE", "/v1/customers/{id}", responses.customer_delete),
    Route("GET", "/v1/customers/{customer}/sources", responses.customer_source_list),
]
