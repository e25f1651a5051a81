"""Customer and customer balance transaction routes."""

from stripe_emulator.core.routing import Route
from stripe_emulator.customers import balance_responses, responses

ROUTES = [
    Route("POST", "/v1/customers", responses.customer_create),
    Route("GET", "/v1/customers", responses.customer_list),
    Route("GET", "/v1/customers/search", responses.customer_search),  # before {id}, which would take it
    Route("GET", "/v1/customers/{id}", responses.customer_retrieve),
    Route("POST", "/v1/customers/{id}", responses.customer_update),
    Route("DELETE", "/v1/customers/{id}", responses.customer_delete),
    Route("GET", "/v1/customers/{customer}/sources", responses.customer_source_list),
    Route(
        "POST", "/v1/customers/{customer}/balance_transactions", balance_responses.balance_transaction_create
    ),
    Route("GET", "/v1/customers/{customer}/balance_transactions", balance_responses.balance_transaction_list),
    Route(
        "GET",
        "/v1/customers/{customer}/balance_transactions/{transaction}",
        balance_responses.balance_transaction_retrieve,
    ),
    Route(
        "POST",
        "/v1/customers/{customer}/balance_transactions/{transaction}",
        balance_responses.balance_transaction_update,
    ),
]
